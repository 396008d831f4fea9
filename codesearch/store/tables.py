"""The on-disk index: LanceDB tables plus a JSON manifest.

Layout of `<root>/.codesearch/`:
  manifest.json   model settings and counts; read by `status` without LanceDB
  lance/chunks    one row per chunk: metadata, text, lexical columns (full-text indexed)
  lance/files     one row per indexed file: size, mtime, content hash
  lance/vectors   one row per distinct chunk content: the embedding (also the embedding cache)

Crash safety: every LanceDB write is one atomic commit. A batch of files is
written chunks first, files second, so a file's hash is recorded only after
its chunks are; a run killed in between is repaired by the next run, which
sees the stale hash and redoes that file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesearch.core.errors import IndexError_, damaged  # noqa: F401 (re-exported)
from codesearch.core.types import INDEX_DIRNAME  # noqa: F401 (re-exported)
from codesearch.store.manifest import (  # noqa: F401 (re-exported)
    SCHEMA_VERSION,
    Manifest,
    manifest_path,
    read_manifest,
    write_manifest,
)

if TYPE_CHECKING:  # numpy stays out of `status` and the warm-query client
    import numpy as np


LEXICAL_COLUMNS = ("lex_symbol", "lex_path", "lex_body")
# A fast model's float32 vectors by content hash (the static tier, index.build): they answer
# vector search until the index model has embedded the chunks.
INTERIM_VECTORS = "interim_vectors"


# What lancedb imports for REST namespaces, which a local index never uses: registered
# without running their package `__init__` (see _deferred_package). True: the names
# taken from the package are placeholders until first used.
DEFERRED_PACKAGES = (
    ("lance_namespace_urllib3_client", False),
    ("lance_namespace_urllib3_client.models", False),
    ("lance_namespace", True),
)


def import_lancedb() -> Any:
    """`import lancedb`, minus about two thirds of its cost.

    lancedb imports `lance_namespace`, which imports models from a generated REST
    client whose package `__init__` eagerly builds every API class (0.2-0.3 s here,
    measured with -X importtime); see also `_lean_import`. A local index never
    talks to a REST namespace, so these packages are registered without running
    their `__init__`; the first use of one of their names runs the real body, so
    remote namespaces still work.
    """
    if "lancedb" in sys.modules:
        import lancedb  # waits for an import still running on another thread

        return lancedb
    with _IMPORT_LOCK:  # cli.query imports it on a thread while it waits for an index
        for name, placeholders in DEFERRED_PACKAGES:
            if name not in sys.modules:
                with contextlib.suppress(ImportError, AttributeError, ValueError):
                    spec = importlib.util.find_spec(name)
                    if spec is not None and spec.loader is not None and spec.submodule_search_locations:
                        sys.modules[name] = _deferred_package(spec, placeholders)
        with _lean_import():
            import lancedb

    return lancedb


_IMPORT_LOCK = threading.Lock()


class _HidePandas:  # a meta path finder (importlib.abc costs an import)
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


@contextlib.contextmanager
def _lean_import() -> Iterator[None]:
    """While lancedb is imported: pandas looks absent, and `overrides` is a no-op.

    - pyarrow.dataset imports pandas at once only to ask whether a scalar is
      array-like (0.3-0.5 s of a cold query here); codesearch hands lancedb Arrow
      data and lists, never DataFrames. pyarrow asks again later, so `to_pandas`
      still works once the import is over; a process that loaded pandas already (a
      notebook, Ray) is untouched: sys.modules answers before finders.
    - Before Python 3.12 lancedb checks every `@override` with the `overrides`
      package, which disassembles each method's callers (0.2 s); from 3.12 on it uses
      `typing.override`, which only marks the method. The stub does what 3.12 does,
      and leaves sys.modules afterwards.
    """
    finder = None if "pandas" in sys.modules else _HidePandas()
    stub = None
    if sys.version_info < (3, 12) and "overrides" not in sys.modules:
        stub = sys.modules["overrides"] = _overrides_stub()
    if finder is not None:
        sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if finder is not None:
            sys.meta_path.remove(finder)
            _pandas_for_lancedb()
        if stub is not None and sys.modules.get("overrides") is stub:
            del sys.modules["overrides"]


def _overrides_stub() -> Any:
    import types

    def override(method: Any) -> Any:
        with contextlib.suppress(AttributeError, TypeError):
            method.__override__ = True
        return method

    module = types.ModuleType("overrides", "typing.override's behaviour, for lancedb's import")
    module.override = override  # type: ignore[attr-defined]
    module.overrides = override  # type: ignore[attr-defined]
    module.EnforceOverrides = type("EnforceOverrides", (), {})  # type: ignore[attr-defined]
    return module


def _pandas_for_lancedb() -> None:
    """lancedb noted pandas as missing while it was hidden: a caller handing it a
    DataFrame later must still be understood (its proxy imports pandas on first use)."""
    deps = sys.modules.get("lancedb.dependencies")
    if deps is None or getattr(deps, "_PANDAS_AVAILABLE", True):
        return
    with contextlib.suppress(ImportError, ValueError):
        if importlib.util.find_spec("pandas") is None:
            return
    with contextlib.suppress(AttributeError):
        deps.pandas._module_available = True
        deps._PANDAS_AVAILABLE = True


def _deferred_package(spec: Any, placeholders: bool = False) -> Any:
    """The package of `spec`, its `__init__` run when a name is first asked of it (or,
    with `placeholders`, when such a name is first called, read or checked against)."""
    module = importlib.util.module_from_spec(spec)
    state = {"loaded": False}

    def load() -> None:
        if not state["loaded"]:
            state["loaded"] = True
            spec.loader.exec_module(module)

    def __getattr__(attr: str) -> Any:  # noqa: N807 (module-level __getattr__, PEP 562)
        if state["loaded"] or attr.startswith("__"):
            raise AttributeError(attr)
        if placeholders:
            return _DeferredName(module, attr, load)
        load()
        return getattr(module, attr)

    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return module


class _DeferredName:
    """A name imported from a deferred package: the package loads when it is used."""

    __slots__ = ("_load", "_module", "_name")

    def __init__(self, module: Any, name: str, load: Callable[[], None]) -> None:
        self._module, self._name, self._load = module, name, load

    def _target(self) -> Any:
        self._load()
        return getattr(self._module, self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __instancecheck__(self, obj: object) -> bool:
        return isinstance(obj, self._target())

    def __subclasscheck__(self, cls: type) -> bool:
        return issubclass(cls, self._target())

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[Any, ...]:
        return (self._target(),)

    def __repr__(self) -> str:
        return f"<deferred {self._module.__name__}.{self._name}>"



@dataclass(frozen=True)
class FileState:
    path: str
    size: int
    mtime_ns: int
    file_hash: str
    language: str
    chunks: int
    decode_errors: bool = False


@dataclass(frozen=True)
class ChunkRow:
    id: str
    path: str
    language: str
    symbol: str
    kind: str
    start_line: int
    end_line: int
    text: str
    context: str
    content_type: str
    content_hash: str
    file_hash: str
    lex_symbol: str
    lex_path: str
    lex_body: str
    # JSON [[symbol, kind, start_line, end_line], ...] of the definitions inside the
    # chunk (source.chunk.Chunk.members); "" when there are none.
    members: str = ""
    repo: str = ""  # the repository, in a store of many (store.shared); "" in a local index
    commit: str = ""  # the commit that repository was published at; "" in a local index
    # Lines with code on them, comments and blank lines left out (source.comments); 0 in
    # rows written before chunker version 8.
    code_lines: int = 0


RowColumns = dict[str, list[Any]]  # ChunkRow fields, each a list over the same rows
_NUMBER_COLUMNS = frozenset(f.name for f in fields(ChunkRow) if f.type in ("int", int))


@dataclass(frozen=True)
class PackedColumns:
    """Chunk rows as they cross from a chunking worker to the writing process: each text
    column one UTF-8 buffer and its offsets, which is how Arrow holds it.

    Arrow reads these in about 2 ms for 17k rows, where converting the same rows from
    lists of Python strings took 0.16-0.4 s of the writing process, the one that also
    imports LanceDB and commits while the workers chunk a first build. Packing costs a
    worker about a fifth of that. Only the standard library: workers import no pyarrow.
    """

    rows: int
    texts: dict[str, tuple[bytes, bytes]]  # column -> (int32 offsets, UTF-8 data)
    numbers: dict[str, list[int]]

    @classmethod
    def pack(cls, rows: Sequence[ChunkRow]) -> PackedColumns:
        import array
        from itertools import accumulate

        texts: dict[str, tuple[bytes, bytes]] = {}
        numbers: dict[str, list[int]] = {}
        for f in fields(ChunkRow):
            values = [getattr(r, f.name) for r in rows]
            if f.name in _NUMBER_COLUMNS:
                numbers[f.name] = values
                continue
            encoded = [v.encode("utf-8") for v in values]
            offsets = array.array("i", accumulate(map(len, encoded), initial=0))
            if sys.byteorder != "little":
                offsets.byteswap()  # Arrow buffers are little-endian
            texts[f.name] = (offsets.tobytes(), b"".join(encoded))
        return cls(len(rows), texts, numbers)

    def unpack(self) -> RowColumns:
        """The rows as lists again (tests, and writers of other formats)."""
        return {f.name: self.column(f.name) for f in fields(ChunkRow)}

    def column(self, name: str) -> list[Any]:
        """One column's values as a list."""
        if name in self.numbers:
            return list(self.numbers[name])
        return [value.decode("utf-8") for value in self.encoded(name)]

    def encoded(self, name: str, rows: Sequence[int] | None = None) -> list[bytes]:
        """A text column's values (or those of some rows), UTF-8 encoded."""
        import array

        raw, data = self.texts[name]
        offsets = array.array("i")
        offsets.frombytes(raw)
        if sys.byteorder != "little":
            offsets.byteswap()
        if rows is not None:
            return [data[offsets[i]:offsets[i + 1]] for i in rows]
        return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    def to_arrow(self, schema: Any) -> Any:
        import pyarrow as pa

        arrays = []
        for f in schema:
            if f.name in self.texts:
                offsets, data = self.texts[f.name]
                arrays.append(pa.StringArray.from_buffers(self.rows, pa.py_buffer(offsets),
                                                          pa.py_buffer(data)))
            else:
                arrays.append(pa.array(self.numbers[f.name], type=f.type))
        return pa.Table.from_arrays(arrays, schema=schema)


def _columns_table(items: Sequence[Any], schema: Any) -> Any:
    """Arrow table from dataclass rows, column by column (asdict() is ~10x slower)."""
    import pyarrow as pa

    columns = {f.name: [getattr(item, f.name) for item in items] for f in schema}
    return pa.Table.from_pydict(columns, schema=schema)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_list(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(_sql_str(v) for v in values)})"


class IndexStore:
    """LanceDB tables of one index. Open with `IndexStore(index_dir)`."""

    def __init__(self, index_dir: Path, dim: int | None = None, precision: str = "float32",
                 *, db: Any = None):
        lancedb = import_lancedb()
        self.index_dir = index_dir
        self._local = db is None  # a store of many repositories reports its own errors
        if self._local:
            _check_tables_folder(index_dir)
        self.db = db if db is not None else lancedb.connect(str(index_dir / "lance"))
        names = set(self.table_names())
        if self._local:
            _check_table_names(index_dir, names)
        self.chunks = self._open_or_create("chunks", self._chunk_schema(), names)
        if "chunks" not in names:
            # Empty full-text indexes at once: until `ensure_fts` builds them, queries
            # search the rows written so far without an index (same answers, slower),
            # so a first build is queryable as soon as its rows are written.
            for column in LEXICAL_COLUMNS:
                self._create_fts(column)
        self.files = self._open_or_create("files", self._file_schema(), names)
        self.vectors = None
        self._interim: Any | None = None
        if "vectors" in names:
            self.vectors = self._open("vectors")
        elif dim:
            self.vectors = self.db.create_table("vectors", schema=self._vector_schema(dim, precision))

    @classmethod
    def at(cls, uri: str, options: dict[str, str], create: bool = False) -> IndexStore:
        """The tables at a folder or object-store URI (a store of many repositories);
        nothing is created unless `create`."""
        db = import_lancedb().connect(uri, storage_options=options or None)
        if not create and "chunks" not in listed_tables(db):
            raise IndexError_(f"no codesearch store at {uri}: index a repository into it first "
                              "(codesearch index PATH --store URI --repo NAME)")
        return cls(Path(uri), db=db)

    def table_names(self) -> list[str]:
        if self._local:
            # What LanceDB's own listing reads for a local folder, without its REST
            # response model (loading that costs a cold query 0.15 s: import_lancedb).
            with contextlib.suppress(OSError):
                return sorted(entry.name[: -len(".lance")] for entry in os.scandir(self.index_dir / "lance")
                              if entry.name.endswith(".lance") and entry.is_dir())
        return sorted(listed_tables(self.db))

    # -- schema -----------------------------------------------------------

    def _open_or_create(self, name: str, schema: Any, names: set[str]) -> Any:
        if name in names:
            return self._open(name)
        return self.db.create_table(name, schema=schema)

    def _open(self, name: str) -> Any:
        try:
            return self.db.open_table(name)
        except Exception as err:  # noqa: BLE001 (a truncated or garbled version file)
            if not self._local:
                raise
            raise damaged(self.index_dir, f"table {name} cannot be opened: {lance_reason(err)}") from None

    @staticmethod
    def _chunk_schema() -> Any:
        import pyarrow as pa

        fields = [
            ("id", pa.string()), ("path", pa.string()), ("language", pa.string()),
            ("symbol", pa.string()), ("kind", pa.string()), ("start_line", pa.int32()),
            ("end_line", pa.int32()), ("text", pa.string()), ("context", pa.string()),
            ("content_type", pa.string()), ("content_hash", pa.string()),
            ("file_hash", pa.string()),
        ] + [(name, pa.string()) for name in LEXICAL_COLUMNS] + [
            ("members", pa.string()), ("repo", pa.string()), ("commit", pa.string()),
            ("code_lines", pa.int32()),
        ]
        return pa.schema(fields)

    def add_missing_columns(self) -> None:
        """Bring a chunks table written by an older codesearch up to the current schema
        (new columns start empty; the indexer re-chunks such an index on its next run)."""
        have = set(self.chunks.schema.names)
        missing = [f for f in self._chunk_schema() if f.name not in have]
        if missing:
            self.chunks.add_columns(missing)

    @staticmethod
    def _file_schema() -> Any:
        import pyarrow as pa

        return pa.schema([
            ("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
            ("file_hash", pa.string()), ("language", pa.string()), ("chunks", pa.int32()),
            ("decode_errors", pa.bool_()),
        ])

    @staticmethod
    def _vector_schema(dim: int, precision: str) -> Any:
        """float32: `vector`; int8: `codes`; binary: packed sign `bits` plus `codes` to rescore."""
        import pyarrow as pa

        fields = [("content_hash", pa.string())]
        if precision == "float32":
            fields.append(("vector", pa.list_(pa.float32(), dim)))
        else:
            fields.append(("codes", pa.list_(pa.int8(), dim)))
        if precision == "binary":
            fields.append(("bits", pa.list_(pa.uint8(), (dim + 7) // 8)))
        return pa.schema(fields)

    # -- writes -----------------------------------------------------------
    def replace_files(
        self, states: Sequence[FileState], columns: Sequence[PackedColumns], fresh: bool = False,
    ) -> None:
        """Replace every chunk of these files in one commit, then record the files.

        `columns`: the rows, packed in parts (`PackedColumns`, in order).
        `fresh`: the chunks table was empty when this run started, so none of these
        paths can have rows yet (a crashed first build leaves rows, so its rerun
        is not fresh).
        """

        if not states:
            return
        import pyarrow as pa

        paths = [s.path for s in states]
        schema = self._chunk_schema()
        table = pa.concat_tables([part.to_arrow(schema) for part in columns or [PackedColumns.pack(())]])
        if fresh:
            # A first build into empty tables: plain appends, no per-path matching.
            if table.num_rows:
                self.chunks.add(table)
            self.files.add(_columns_table(states, self._file_schema()))
            return
        (
            self.chunks.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(_in_list("path", paths))
            .execute(table)
        )
        self.update_files(states)

    def update_files(self, states: Sequence[FileState]) -> None:

        file_table = _columns_table(states, self._file_schema())
        (
            self.files.merge_insert("path")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(file_table)
        )

    def delete_paths(self, paths: Sequence[str]) -> None:
        for start in range(0, len(paths), 500):
            part = paths[start : start + 500]
            self.chunks.delete(_in_list("path", part))
            self.files.delete(_in_list("path", part))

    def add_vectors(
        self, hashes: Sequence[str], columns: dict[str, np.ndarray], table: Any | None = None
    ) -> None:
        """Store one row per content hash; `columns` as the vectors schema names them.
        `table`: another vectors table than the index model's (`interim_vectors`)."""
        import numpy as np
        import pyarrow as pa

        if not hashes:
            return
        target = table if table is not None else self.vectors
        assert target is not None, "vectors table needs a dimension"
        data: dict[str, Any] = {"content_hash": pa.array(list(hashes))}
        for name, matrix in columns.items():
            flat = pa.array(np.ascontiguousarray(matrix).ravel())
            data[name] = pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])
        (
            target.merge_insert("content_hash")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(pa.table(data))
        )

    def interim_vectors(self, dim: int | None = None) -> Any | None:
        """The interim tier's table (INTERIM_VECTORS): opened if it exists, else created
        when `dim` is given, else None."""
        if self._interim is None:
            if INTERIM_VECTORS in self.table_names():
                self._interim = self._open(INTERIM_VECTORS)
            elif dim:
                self._interim = self.db.create_table(
                    INTERIM_VECTORS, schema=self._vector_schema(dim, "float32"))
        return self._interim

    def drop_interim_vectors(self) -> None:
        """Drop the interim tier (vectors of another model than the one now asked for)."""
        if INTERIM_VECTORS in self.table_names():
            self.db.drop_table(INTERIM_VECTORS)
        self._interim = None

    def ensure_fts(self) -> bool:
        """Build the full-text indexes of a new table; later rows are folded in by optimize().

        The three are built at once on threads (each build runs on one core), while
        the first queries already search the unindexed rows. One that fails there is
        built again on its own.
        """
        from concurrent.futures import ThreadPoolExecutor

        missing = left = self._missing_fts()
        if len(missing) > 1:
            with ThreadPoolExecutor(len(missing)) as pool, contextlib.suppress(Exception):
                list(pool.map(self._create_fts, missing))
            left = self._missing_fts()
        for column in left:
            self._create_fts(column)
        return bool(missing)

    def _missing_fts(self) -> list[str]:
        """Columns to index: without a full-text index of the current recipe (one of an
        older recipe, which stemmed again what is stemmed already, is rebuilt), or whose
        index holds fewer rows than it leaves out (a new table's)."""
        current = {
            i.columns[0] for i in self.chunks.list_indices()
            if len(i.columns) == 1 and _bare_fts(getattr(i, "index_details", None) or {})
            and (i.num_indexed_rows or 0) >= (i.num_unindexed_rows or 0)
        }
        # The body first: it takes longest, so it starts at once.
        ordered = sorted(LEXICAL_COLUMNS, key=lambda c: c != "lex_body")
        return [c for c in ordered if c not in current]

    def _create_fts(self, column: str) -> None:
        from lancedb.index import FTS

        # The columns hold analyzed terms already (tokens.index_terms: split, stemmed,
        # stop words out), so the index only splits on spaces.
        config = FTS(with_position=False, base_tokenizer="whitespace", lower_case=False,
                     stem=False, remove_stop_words=False, ascii_folding=False)
        self.chunks.create_index(column, config=config, replace=True)

    def optimize(self) -> None:
        """Fold new rows into the indexes and drop old versions' files.

        Versions younger than ten minutes are kept: a query process that opened
        the table a moment ago may still be reading one of them.
        """
        from datetime import timedelta

        for table in (self.chunks, self.files, self.vectors, self._interim):
            if table is not None:
                table.optimize(cleanup_older_than=timedelta(minutes=10))

    # -- reads ------------------------------------------------------------
    def file_states(self) -> dict[str, FileState]:
        rows = self.files.to_arrow().to_pylist()  # small: a few columns a file
        return {r["path"]: FileState(**r) for r in rows}

    def chunk_content_hashes(self) -> list[str]:
        """The content hash of every chunk (repeats when chunks share content)."""
        return scan(self.chunks, ["content_hash"])["content_hash"].to_pylist()

    def vector_hashes(self, table: Any | None = None) -> set[str]:
        """Content hashes with a vector in the index model's table (or in `table`)."""
        table = table if table is not None else self.vectors
        if table is None:
            return set()
        return set(scan(table, ["content_hash"])["content_hash"].to_pylist())

    def rows_by_id(self, ids: Sequence[str], columns: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            out.extend(scan(self.chunks, columns, _in_list("id", part)).to_pylist())
        return out

    def texts_at(self, positions: Sequence[int], ids: Sequence[str]) -> dict[str, str]:
        """Chunk texts by id, fetched by row position (a few ms, where an id filter scans
        the table: 10–15 ms at 20k chunks). Rows that moved since the positions were
        read (a concurrent write) are fetched by id instead."""
        found: dict[str, str] = {}
        with contextlib.suppress(Exception):  # an older LanceDB, or positions past the end
            taken = self.chunks.take_offsets(list(positions)).select(["id", "text"]).to_arrow()
            found = dict(zip(taken["id"].to_pylist(), taken["text"].to_pylist(), strict=True))
        wanted = set(ids)
        found = {k: v for k, v in found.items() if k in wanted}
        missing = [i for i in ids if i not in found]
        if missing:
            found.update((r["id"], r["text"]) for r in self.rows_by_id(missing, ["id", "text"]))
        return found

    def count_chunks(self) -> int:
        return self.chunks.count_rows()

    def table_version(self) -> int:
        """The chunks table's version: rows read at one version stay valid while it holds."""
        return int(self.chunks.version)

    def catalog_columns(self, names: Sequence[str]) -> dict[str, list[Any]]:
        """These columns of every chunk, in table order (those an older index lacks are left out)."""
        have = set(self.chunks.schema.names)
        data = scan(self.chunks, [c for c in names if c in have])
        return {name: data[name].to_pylist() for name in data.column_names}

    def full_text(self, terms: str, boosts: tuple[float, float, float], limit: int,
                  other_terms: str = "", other_weight: float = 0.0) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) of the best `limit` rows for these index terms (see
        `full_text_query`), best first."""
        query = full_text_query(terms, boosts, other_terms, other_weight)
        rows = self.chunks.search(query, query_type="fts").select(["id", "_score"]).limit(limit).to_arrow()
        return list(zip(rows["id"].to_pylist(), rows["_score"].to_pylist(), strict=True))



# A Rust source location LanceDB appends to its messages, and the raw bytes it quotes:
# noise for the user.
_RUST_PLACE = re.compile(r",?\s*/\S+\.rs:\d+:\d+\s*$")
_RAW_BYTES = re.compile(r",\s*bytes: b(\"|').*$")


def lance_reason(err: BaseException) -> str:
    """The useful first line of a LanceDB or Arrow error."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    text = _RAW_BYTES.sub("", _RUST_PLACE.sub("", text)).removeprefix("lance error: ").strip()
    return text[:160]


def _recorded(index_dir: Path) -> bool:
    """Whether an index run ever recorded rows here (a first build killed before that
    has tables still to create, which is no damage)."""
    manifest = read_manifest(index_dir)
    return manifest is not None and manifest.indexed_at > 0


def _check_tables_folder(index_dir: Path) -> None:
    # Checked before connecting: LanceDB would create the folder, and an empty index
    # would answer every query with nothing.
    if not (index_dir / "lance").is_dir() and _recorded(index_dir):
        raise damaged(index_dir, "its tables are gone (no lance folder)")


def _check_table_names(index_dir: Path, names: set[str]) -> None:
    missing = [name for name in ("chunks", "files") if name not in names]
    if missing and _recorded(index_dir):
        # Recreated empty, the files table would call every file indexed (or the chunks
        # table would hold rows no file owns): nothing short of a rebuild is right.
        raise damaged(index_dir, f"table {missing[0]} is missing")


def _bare_fts(details: dict[str, Any]) -> bool:
    return details.get("base_tokenizer") == "whitespace" and details.get("stem") is False


def vector_columns(table: Any) -> dict[str, np.ndarray]:
    """Every stored vector column as a matrix, plus the content hashes in row order."""
    import numpy as np

    names = [f.name for f in table.schema if f.name != "content_hash"]
    data = scan(table, ["content_hash", *names])
    out: dict[str, np.ndarray] = {"content_hash": np.array(data["content_hash"].to_pylist(), dtype=object)}
    for name in names:
        column = data[name].combine_chunks()
        width = column.type.list_size
        out[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width)
    return out


def listed_tables(db: Any) -> set[str]:
    """The table names LanceDB lists for a connection (any lancedb version's API)."""
    listing = db.list_tables() if hasattr(db, "list_tables") else db.table_names()
    return set(getattr(listing, "tables", listing))


def full_text_query(terms: str, boosts: tuple[float, float, float], other_terms: str = "",
                    other_weight: float = 0.0) -> Any:
    """The full-text query of these terms over the three lexical columns.

    A row scores the weighted sum of its fields' BM25 scores (SHOULD clauses add up);
    MultiMatchQuery would keep only its best field. `other_terms` (other spellings of
    the words) count `other_weight` times as much. store.memory.MemoryRows scores the
    same query without LanceDB.
    """
    from lancedb.query import BooleanQuery, MatchQuery, Occur

    return BooleanQuery([
        (Occur.SHOULD, MatchQuery(text, column, boost=boost * weight))
        for text, weight in weighted_terms(terms, other_terms, other_weight)
        for column, boost in zip(LEXICAL_COLUMNS, boosts, strict=True)
    ])


def weighted_terms(terms: str, other_terms: str, other_weight: float) -> list[tuple[str, float]]:
    """The query's terms, and the other spellings when they count at all, with their weights."""
    return [(terms, 1.0)] + ([(other_terms, other_weight)] if other_terms and other_weight > 0 else [])


def scan(table: Any, columns: Sequence[str], where: str | None = None) -> Any:
    """Arrow table of some columns of every row (optionally filtered)."""
    query = table.search().select(list(columns))
    if where:
        query = query.where(where)
    return query.limit(None).to_arrow()


def index_size_bytes(index_dir: Path) -> int:
    return sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
