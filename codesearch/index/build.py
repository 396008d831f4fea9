"""discover -> chunk -> store (lexical tier) -> embed (vector tier).

The lexical tier is written first and is queryable on its own; vectors follow
and are resumable: whatever chunk content has no vector yet is embedded by the
next run (or by `index --background`).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from codesearch.core.errors import ReadOnlyIndexError, damaged
from codesearch.core.lock import index_lock
from codesearch.core.tokens import path_words, symbol_words
from codesearch.core.types import ASIDE_DIRNAME, REBUILD_DIRNAME
from codesearch.core.version import VERSION
from codesearch.core.wire import ROWS_MARKER, WAITING_MARKER
from codesearch.embed.registry import (
    DEFAULT_MODEL,
    PRECISIONS,
    ModelProfile,
    resolve_model,
    validate_dim,
)
from codesearch.index.rows import (  # noqa: F401 (content_hash, chunk_rows: re-exported)
    BudgetSpec,
    ChunkedBatch,
    ChunkJob,
    RowPool,
    chunk_rows,
    content_hash,
    discard_spare_workers,
    file_hash,
    make_budget,
    tokenizer_file,
    tokenizer_rate,
)
from codesearch.source.chunk import ChunkBudget
from codesearch.source.discover import DiscoveryOptions, DiscoveryStats, SourceFile, discover
from codesearch.store.manifest import (  # noqa: F401 (re-exported)
    index_backend,
    index_profile,
    load_index_embedder,
)
from codesearch.store.tables import (
    INDEX_DIRNAME,
    FileState,
    IndexError_,
    IndexStore,
    Manifest,
    PackedColumns,
    read_manifest,
    write_manifest,
)

# numpy is imported where vectors are handled, not here: a first build's chunking
# workers wait for this module (0.05 s of it was numpy) before they get any files.
if TYPE_CHECKING:
    import numpy as np

    from codesearch.embed.cache import EmbeddingCache


class QueryServer(Protocol):
    """A query server this process runs while it indexes (see `build_index`'s `serve`)."""

    def serve_rows(self, parts: Sequence[PackedColumns], manifest: Manifest) -> None: ...
    def load_catalog(self) -> None: ...
    def warm(self) -> None: ...
    def lend_embedder(self, embedder: object) -> None: ...
    def hand_over(self) -> None: ...


class Engine(Protocol):
    """Where the heavy steps run (index.distributed.RayEngine); None: this machine."""

    embed_batch: int  # texts per embed call

    def row_pool(self, jobs: list[ChunkJob], spec: BudgetSpec) -> RowPool: ...
    def embedder(self, profile: ModelProfile, dim: int, backend: str, precision: str) -> object: ...


# Starts answering queries for an index folder; None when another server already does.
ServeFactory = Callable[[Path], "QueryServer | None"]


class Progress(Protocol):
    def start(self, stage: str, total: int | None) -> None: ...
    def advance(self, stage: str, amount: int = 1) -> None: ...
    def finish(self, stage: str) -> None: ...
    def message(self, text: str) -> None: ...


class NullProgress:
    def start(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, stage: str, amount: int = 1) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass


# The interim tier's model: static embeddings, about a thousand times MiniLM's speed
# (docs/speed.md), so vector search works seconds after a first `index` starts.
INTERIM_MODEL = "minilm-static"
# A first build's pool starts on this many files (four tasks: two a worker on two cores)
# while the rest of the tree is looked at.
FIRST_FILES = 64
INTERIM_BATCH = 4096  # texts per embed call and write: the model is no bottleneck, commits are


@dataclass
class IndexOptions:
    # None: the existing index's setting, or the default for a new index.
    model: str | None = None
    dim: int | None = None
    precision: str | None = None
    query_prompt: str | None = None
    document_prompt: str | None = None
    backend: str = "auto"
    rebuild: bool = False
    embed: bool = True  # False: lexical tier only, vectors left pending
    max_file_bytes: int = 1_000_000
    paths: Sequence[str] | None = None  # only these paths (git hook); None = full walk
    batch_files: int = 64
    embed_batch: int = 64
    lock_timeout: float = 600.0
    record_texts: bool = False
    # The user-level embedding cache (codesearch.embed.cache), shared by every index on the
    # machine; CODESEARCH_EMBED_CACHE=0 turns it off too.
    shared_cache: bool = True
    # A static model whose vectors answer vector search until the index model's arrive
    # (`_interim_tier`); None: no interim tier.
    interim_model: str | None = INTERIM_MODEL


@dataclass
class IndexReport:
    root: str = ""
    files: int = 0
    files_changed: int = 0
    files_deleted: int = 0
    chunks_written: int = 0
    chunks_total: int = 0
    embedded: int = 0  # chunk contents the model embedded in this run
    from_cache: int = 0  # chunk contents whose vectors came from the shared cache
    vectors_pending: int = 0
    decode_errors: int = 0
    unreadable: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    bad_names: int = 0  # files skipped because their names are not UTF-8
    seconds_lexical: float = 0.0
    interim_embedded: int = 0  # chunk contents the interim (static) model embedded
    seconds_interim: float = 0.0  # from the start until every chunk had an interim vector
    seconds_total: float = 0.0
    # The texts sent to the model, kept only with IndexOptions(record_texts=True)
    # (tests count exactly what was re-embedded; a large run must not hold them all).
    embedded_texts: list[str] = field(default_factory=list, repr=False)

    @property
    def chunks_per_second(self) -> float:
        return self.embedded / self.seconds_total if self.seconds_total else 0.0


EmbedderFactory = Callable[[ModelProfile, int | None], object]


def index_dir_for(root: Path) -> Path:
    return root / INDEX_DIRNAME


def embedding_text(path: str, symbol: str, context: str, text: str) -> str:
    """What the model reads: path and qualified symbol (also as plain words), then the code."""
    header = f"{path} {symbol}".strip()
    words = " ".join(dict.fromkeys((symbol_words(symbol) + " " + path_words(path)).split()))
    body = f"{context}\n{text}" if context else text
    return f"{header}\n{words}\n{body}"


# Chunks may run past the model's input: the model reads the head (header, signature,
# docstring, start of the body) and the full-text index reads all of it. Measured on
# the dev benchmark (hybrid NDCG@10): chunks capped at the model's input minus the
# header gave 0.661; the earlier ~4 chars/token cap (≈ 1.3x the input) gave 0.683.
CHUNK_TOKENS_PER_MODEL_TOKEN = 1.25
# Bump when chunking changes what a file's chunks are: an index made by another
# version is re-chunked on its next run (vectors of unchanged chunks are reused).
# 3: one token rate per tokenizer (REFERENCE_CODE), not per file; 4: lex_body keeps
# only the words a query can ask for (tokens.searchable); 5: full-text columns hold
# analyzed terms (tokens.index_terms; search.ANALYZED_SINCE); 6: chunks list the
# definitions inside them (`members`); 7: C and C++ are parsed without comments inside
# multi-line #defines and export macros (chunk._parse_view), C sees into `extern "C"`;
# 8: rows count their lines of code (`code_lines`, for the size prior).
CHUNKER_VERSION = 8
# Bump when source.discover.read_text reads non-UTF-8 bytes differently: the files that
# had such bytes (FileState.decode_errors) are read and chunked again, no others.
# 2: Windows-1252 instead of U+FFFD (`def café_menu` was stored as `_menu`).
DECODER_VERSION = 2


def budget_spec(profile: ModelProfile) -> BudgetSpec:
    """Chunk sizes in tokens of the index's model, counted by its own tokenizer.

    Falls back to the ~4 characters a token estimate when the tokenizer file is
    not on this machine (remote models, weights not downloaded).
    """
    from codesearch.embed.registry import local_weights

    limit = max(64, round(profile.max_tokens_cpu * CHUNK_TOKENS_PER_MODEL_TOKEN))
    folder, _ = local_weights(profile)
    return tokenizer_rate(BudgetSpec(max_tokens=limit, tokenizer_file=tokenizer_file(folder)))


def model_budget(profile: ModelProfile) -> ChunkBudget:
    return make_budget(budget_spec(profile))


def new_manifest(profile: ModelProfile, dim: int, precision: str) -> Manifest:
    return Manifest(
        codesearch_version=VERSION, model=profile.name,
        fingerprint=profile.fingerprint(dim, precision), dim=dim, precision=precision,
        created_at=time.time(), profile=profile.to_manifest(),
    )


def wanted_manifest(options: IndexOptions, existing: Manifest | None) -> Manifest:
    """What this run asks for: explicit options, else the index's settings, else defaults."""
    keep = existing is not None and not options.rebuild
    explicit_model = options.model is not None or options.query_prompt or options.document_prompt
    if keep and not explicit_model:
        assert existing is not None
        profile = index_profile(existing)
    else:
        profile = resolve_model(options.model or DEFAULT_MODEL, options.query_prompt,
                                options.document_prompt)
    default_dim = existing.dim if keep and existing and not explicit_model else None
    dim = validate_dim(profile, options.dim or default_dim)
    precision = options.precision or (existing.precision if keep and existing else "float32")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (choose {', '.join(PRECISIONS)})")
    manifest = new_manifest(profile, dim, precision)
    from codesearch.embed.local import resolve_backend

    if options.backend == "auto" and keep and existing and existing.extra.get("backend"):
        manifest.extra["backend"] = existing.extra["backend"]
    else:
        manifest.extra["backend"] = resolve_backend(profile, options.backend)
    return manifest


def check_compatible(existing: Manifest, wanted: Manifest) -> None:
    if existing.schema_version != wanted.schema_version:
        raise IndexError_(
            f"index was written by an incompatible codesearch (schema {existing.schema_version}); "
            "run `codesearch index --rebuild`"
        )
    if existing.fingerprint != wanted.fingerprint:
        raise IndexError_(
            f"index uses model {existing.model} (dim {existing.dim}, {existing.precision}); "
            f"asked for {wanted.model} (dim {wanted.dim}, {wanted.precision}): "
            "add --rebuild to re-embed everything with the new model"
        )
    had, want = existing.extra.get("backend"), wanted.extra.get("backend")
    if had and want and had != want:
        raise IndexError_(
            f"index was embedded with the {had} runtime, asked for {want}: their vectors "
            "differ slightly; add --rebuild to re-embed everything"
        )


def check_options(options: IndexOptions) -> None:
    """Refuse impossible settings before anything is touched (a negative size limit would
    skip every file, and so remove every file from the index)."""
    positive = {"max_file_bytes": options.max_file_bytes, "batch_files": options.batch_files,
                "embed_batch": options.embed_batch}
    for name, value in positive.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    if options.dim is not None and (isinstance(options.dim, bool) or not isinstance(options.dim, int)
                                    or options.dim < 1):
        raise ValueError(f"dim must be at least 1, not {options.dim!r}")
    if options.precision is not None and options.precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{options.precision}' (choose {', '.join(PRECISIONS)})")
    if not options.lock_timeout >= 0:
        raise ValueError(f"lock_timeout must be 0 or more seconds, not {options.lock_timeout!r}")


def _check_writable(root: Path, index_dir: Path, rebuild: bool) -> None:
    """A read-only index (a shared copy, a read-only mount) is searched, never written."""
    if index_dir.exists() and not index_dir.is_dir() and not rebuild:
        raise damaged(index_dir, "not a folder")
    if index_dir.is_dir() and not os.access(index_dir, os.W_OK):
        raise ReadOnlyIndexError(f"{index_dir} is read-only: codesearch cannot write the index "
                                 "(queries still work)")
    if not index_dir.exists() and not os.access(root, os.W_OK):
        raise ReadOnlyIndexError(f"{root} is read-only: codesearch cannot create its index "
                                 f"folder {INDEX_DIRNAME} there")


def _rebuild(
    root: Path, index_dir: Path, options: IndexOptions, progress: Progress,
    embedder: object | None, engine: Engine | None, started: float,
) -> IndexReport:
    """A new index built beside the old one, then swapped in: the old one answers queries
    meanwhile, and a rebuild killed at any point leaves it as it was, however damaged it
    is (nothing of it is read)."""
    from dataclasses import replace

    _clear_garbage(index_dir)
    index_dir = index_dir.resolve()  # an index folder linked elsewhere is rebuilt there
    index_dir.mkdir(exist_ok=True)
    staging = index_dir.with_name(REBUILD_DIRNAME)
    with index_lock(index_dir, timeout=options.lock_timeout, on_wait=progress.message):
        _remove_tree(staging)
        staging.mkdir()
        # The whole folder, whatever paths were named; no query server for a folder
        # nobody asks (queries go to the old index until the swap).
        fresh = replace(options, rebuild=False, paths=None)
        with index_lock(staging, timeout=options.lock_timeout):
            report = _build_locked(root, staging, fresh, progress, embedder, None, engine, started)
            _swap(staging, index_dir)
        _remove_tree(staging)  # the old index, now
    report.seconds_total = time.perf_counter() - started
    return report


def _clear_garbage(index_dir: Path) -> None:
    """What a rebuild may remove before it can even take the lock: an index "folder"
    that is a file, a lock that is a folder. Rebuilding means replacing them anyway."""
    import shutil

    if index_dir.is_symlink() and not index_dir.exists():
        index_dir.unlink()  # dangling
    elif index_dir.exists() and not index_dir.is_dir():
        index_dir.unlink()
    lock = index_dir / "lock"
    if lock.is_dir() and not lock.is_symlink():
        shutil.rmtree(lock)


def _remove_tree(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _swap(new: Path, old: Path) -> None:
    """Put `new` where `old` is, and `old` where `new` was: one atomic exchange where the
    kernel has one (Linux), else two renames that `_finish_interrupted_swap` completes."""
    if _exchange(new, old):
        return
    aside = old.with_name(ASIDE_DIRNAME)
    _remove_tree(aside)
    os.rename(old, aside)
    os.rename(new, old)  # a kill just before this leaves `aside` and `new`: see below
    os.rename(aside, new)


def _finish_interrupted_swap(root: Path, index_dir: Path) -> None:
    """After a kill between the two renames of a non-atomic swap there is no index folder,
    the finished new index beside it and the old one set aside: take the new one."""
    from codesearch.core.lock import current_holder

    aside = root / ASIDE_DIRNAME
    if index_dir.exists() or not aside.is_dir() or current_holder(aside) is not None:
        return  # nothing to finish, or the rebuild holding the old lock is swapping now
    staging = root / REBUILD_DIRNAME
    if (staging / "files.json").exists():  # written last: the new index is complete
        os.rename(staging, index_dir)
        _remove_tree(aside)
    else:
        os.rename(aside, index_dir)


def _exchange(a: Path, b: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): both paths swapped at once; False where unsupported."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False  # not Linux, or a libc without it
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # a file system without the exchange
    raise OSError(code, os.strerror(code), str(b))


def _ensure_git_exclude(root: Path) -> None:
    """Keep the index out of `git status` without touching the user's .gitignore."""
    git_dir = root / ".git"
    if not git_dir.is_dir():
        return
    exclude = git_dir / "info" / "exclude"
    try:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        current = exclude.read_text() if exclude.exists() else ""
        # The index, and the folders a rebuild uses beside it.
        missing = [p for p in (f"/{INDEX_DIRNAME}/", f"/{INDEX_DIRNAME}.*/") if p not in current.split()]
        if missing:
            sep = "" if current.endswith("\n") or not current else "\n"
            exclude.write_text(current + sep + "".join(f"{p}\n" for p in missing))
    except OSError:
        pass


def build_index(
    root: Path,
    options: IndexOptions | None = None,
    progress: Progress | None = None,
    embedder: object | None = None,
    serve: ServeFactory | None = None,
    engine: Engine | None = None,
) -> IndexReport:
    """Index `root` incrementally. Safe to interrupt at any point.

    `serve`, if given, starts a query server in this process once the full-text tier
    is written (the CLI's `index` answers queries while it embeds); it is handed over
    when the run ends.
    """
    options = options or IndexOptions()
    check_options(options)
    progress = progress or NullProgress()
    root = root.resolve()
    if not root.is_dir():
        raise IndexError_(f"no such folder: {root}")
    index_dir = index_dir_for(root)
    _check_writable(root, index_dir, options.rebuild)
    _finish_interrupted_swap(root, index_dir)
    started = time.perf_counter()
    _ensure_git_exclude(root)
    if options.rebuild:
        return _rebuild(root, index_dir, options, progress, embedder, engine, started)
    index_dir.mkdir(exist_ok=True)
    with index_lock(index_dir, timeout=options.lock_timeout, on_wait=progress.message):
        # Any rebuild holds this lock while it builds beside the index: one seen now was killed.
        _remove_tree(root / REBUILD_DIRNAME)
        _remove_tree(root / ASIDE_DIRNAME)
        return _build_locked(root, index_dir, options, progress, embedder, serve, engine, started)


def _build_locked(
    root: Path, index_dir: Path, options: IndexOptions, progress: Progress,
    embedder: object | None, serve: ServeFactory | None, engine: Engine | None, started: float,
) -> IndexReport:
    """build_index's work, with the lock of `index_dir` taken."""
    existing = read_manifest(index_dir)
    wanted = wanted_manifest(options, existing)
    if existing is not None:
        check_compatible(existing, wanted)
        existing.extra["backend"] = wanted.extra["backend"]
        quick = _nothing_to_do(root, index_dir, existing, options)
        if quick is not None:
            quick.seconds_total = quick.seconds_lexical = time.perf_counter() - started
            return quick
    manifest = existing or wanted
    _snapshot_path(index_dir).unlink(missing_ok=True)
    (index_dir / ROWS_MARKER).unlink(missing_ok=True)  # left by a build killed while it answered
    manifest.complete = False
    write_manifest(index_dir, manifest)
    report = IndexReport(root=str(root))
    # Queries wait only for a first build; a run without embedding is over too soon to
    # serve otherwise.
    serving = serve is not None and (options.embed or existing is None)
    early: list[QueryServer] = []

    def answer_from_rows(parts: list[PackedColumns]) -> None:
        server = serve(index_dir) if serve is not None else None
        if server is None:
            return
        early.append(server)
        try:
            server.serve_rows(parts, manifest)
        except Exception:  # noqa: BLE001 - the written rows answer instead, a moment later
            return
        _answer_waiting_queries(index_dir)

    try:
        store = _lexical_tier(root, index_dir, manifest, options, progress, report,
                              new=existing is None, engine=engine,
                              answer_from_rows=answer_from_rows if serving and existing is None else None)
    except BaseException:
        for server in early:
            server.hand_over()
        raise
    report.seconds_lexical = time.perf_counter() - started
    # Bound before the manifest says the full-text tier is ready, so a query that
    # waited for it finds this process answering (cli/thin.py).
    server = early[0] if early else (serve(index_dir) if serving else None)
    try:
        if server is not None:
            server.load_catalog()
        # Queryable now: until the full-text indexes are built (0.25 s for 23k chunks)
        # a query searches the unindexed rows, with the same answers.
        _record(index_dir, manifest, store, report, complete=False)
        if server is not None:
            _answer_waiting_queries(index_dir)
        if store.ensure_fts():
            write_manifest(index_dir, manifest)  # a new mtime: servers reopen the tables
        if server is not None and options.embed:
            server.warm()
        if options.embed:
            _interim_tier(store, index_dir, manifest, options, report)
            report.seconds_interim = time.perf_counter() - started
            _vector_tier(store, manifest, options, progress, report, embedder,
                         server.lend_embedder if server is not None else None, engine)
        # Compaction costs about 1 s on a 10k-chunk index, and rows written since the
        # last one are searchable anyway: skip it when nothing was written, and leave
        # it to the next embedding run after a lexical-only update of a few paths (hook).
        wrote = report.chunks_written or report.files_deleted or report.embedded
        if wrote and (options.embed or options.paths is None):
            store.optimize()
        _record(index_dir, manifest, store, report, complete=True)
        _write_snapshot(index_dir, store)
    finally:
        if server is not None:
            server.hand_over()
    report.seconds_total = time.perf_counter() - started
    return report


# A query that waited for a first build (cli/thin.py) leaves a WAITING_MARKER until it
# has its answer. Its search over the rows not indexed yet took twice as long beside the
# build of the full-text indexes, so that build waits for it (at most
# WAITING_QUERIES_SECONDS: a marker may outlive a killed query).
WAITING_QUERIES_SECONDS = 2.0


# A first build holds its rows in memory for a waiting query up to this much source
# (a 1,131-file repository of 10.3 MB makes about 35 MB of rows); past it, it writes
# as it chunks and the query waits for the written rows.
ROWS_IN_MEMORY_BYTES = 64 * 1024 * 1024


def _answer_waiting_queries(index_dir: Path, limit: float = WAITING_QUERIES_SECONDS) -> None:
    """Return once no query waiting for this first build is left without its answer."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not _queries_waiting(index_dir):
            return
        time.sleep(0.01)


def _queries_waiting(index_dir: Path) -> bool:
    """Whether a live query waits for this first build (markers of dead ones are removed)."""
    waiting = False
    for marker in index_dir.glob(f"{WAITING_MARKER}*"):
        pid = marker.name.removeprefix(WAITING_MARKER)
        if pid.isdigit() and _alive(int(pid)):
            waiting = True
        else:
            marker.unlink(missing_ok=True)
    return waiting


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's: alive
    return True


def _snapshot_path(index_dir: Path) -> Path:
    return index_dir / "files.json"


def _write_snapshot(index_dir: Path, store: IndexStore) -> None:
    """(size, mtime) of every indexed file, so a run with nothing to do needs no LanceDB.

    Written only after a run completes and removed when one starts, so it never
    claims more than the tables hold.
    """
    import json

    data = {p: [s.size, s.mtime_ns] for p, s in store.file_states().items()}
    path = _snapshot_path(index_dir)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _nothing_to_do(
    root: Path, index_dir: Path, manifest: Manifest, options: IndexOptions
) -> IndexReport | None:
    """A report if no file changed since the last complete run (and nothing waits to be
    embedded); None when the real work must run. Opening LanceDB costs 2 s or more."""
    import json

    if options.rebuild or (options.embed and not manifest.complete):
        return None
    if manifest.extra.get("chunker") != CHUNKER_VERSION:
        return None
    if manifest.extra.get("decoder") != DECODER_VERSION:
        return None
    try:
        snapshot = json.loads(_snapshot_path(index_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(snapshot, dict) or not _tables_present(index_dir):
        return None  # the real run opens the tables and says what is wrong
    disc_options = DiscoveryOptions(max_file_bytes=options.max_file_bytes)
    if options.paths is not None:
        from codesearch.source.discover import files_from_paths

        files, gone = files_from_paths(root, options.paths, disc_options)
        if any(p in snapshot for p in gone):
            return None
        if any(snapshot.get(f.path) != [f.size, f.mtime_ns] for f in files):
            return None
    else:
        current = {f.path: [f.size, f.mtime_ns] for f in discover(root, disc_options)}
        if current != snapshot:
            return None
    return IndexReport(root=str(root), files=len(snapshot), chunks_total=manifest.chunks,
                       vectors_pending=manifest.vectors_pending)


def _tables_present(index_dir: Path) -> bool:
    """The tables' folders are where a finished run left them (a look, not a read)."""
    return all((index_dir / "lance" / f"{name}.lance" / "_versions").is_dir()
               for name in ("chunks", "files", "vectors"))


def _record(
    index_dir: Path, manifest: Manifest, store: IndexStore, report: IndexReport, complete: bool
) -> None:
    report.chunks_total = store.count_chunks()
    # Counted per chunk, as queries count it (chunks may share one content hash).
    have = store.vector_hashes()
    if have:
        report.vectors_pending = sum(h not in have for h in store.chunk_content_hashes())
    else:  # a first build's full-text tier: no need to read every hash
        report.vectors_pending = report.chunks_total
    manifest.files = store.files.count_rows()
    manifest.chunks = report.chunks_total
    manifest.vectors_pending = report.vectors_pending
    manifest.indexed_at = time.time()
    manifest.complete = complete and report.vectors_pending == 0
    write_manifest(index_dir, manifest)


def _changed_files(
    files: Sequence[SourceFile], known: dict[str, FileState], redecode: bool = False
) -> list[SourceFile]:
    changed = []
    for f in files:
        state = known.get(f.path)
        moved = state is None or state.size != f.size or state.mtime_ns != f.mtime_ns
        if moved or (redecode and state.decode_errors):
            changed.append(f)
    return changed


def _lexical_tier(
    root: Path, index_dir: Path, manifest: Manifest, options: IndexOptions, progress: Progress,
    report: IndexReport, new: bool, engine: Engine | None = None,
    answer_from_rows: Callable[[list[PackedColumns]], None] | None = None,
) -> IndexStore:
    """Chunk what changed and write it with its full-text columns; returns the open store.

    For a new index the chunking pool starts before LanceDB is imported (about
    1 s), so workers chunk while this process opens the store. When a query already
    waits for it (and the source fits in ROWS_IN_MEMORY_BYTES), every row is held in
    memory first and handed to `answer_from_rows`, which answers that query, and only
    then is LanceDB imported and written: both cores chunk until the answer.
    """
    disc_options = DiscoveryOptions(max_file_bytes=options.max_file_bytes)
    stats = DiscoveryStats()
    spec = budget_spec(index_profile(manifest))
    make_pool = engine.row_pool if engine is not None else RowPool
    pool = None
    progress.start("discover", None)
    gone: list[str] | None = None
    if options.paths is not None:
        from codesearch.source.discover import files_from_paths

        files, gone = files_from_paths(root, options.paths, disc_options)
    elif new:
        # The workers start on the first files found while the rest are looked at.
        found = discover(root, disc_options, stats)
        files = list(itertools.islice(found, FIRST_FILES))
        pool = make_pool([ChunkJob(f) for f in files], spec).start()
        try:
            rest = list(found)
        except BaseException:
            pool.close()
            raise
        pool.extend([ChunkJob(f) for f in rest])
        files += rest
    else:
        files = list(discover(root, disc_options, stats))
    progress.finish("discover")
    report.skipped_binary = stats.skipped_binary
    report.skipped_large = stats.skipped_large
    report.unreadable = stats.skipped_unreadable
    report.bad_names = stats.skipped_bad_name
    held: list[ChunkedBatch] | None = None
    try:
        if (pool is not None and answer_from_rows is not None and _queries_waiting(index_dir)
                and sum(f.size for f in files) <= ROWS_IN_MEMORY_BYTES):
            held = list(_chunked(pool, progress))
            # What the manifest will say of these rows once they are written.
            manifest.extra["chunker"] = CHUNKER_VERSION
            manifest.extra["decoder"] = DECODER_VERSION
            answer_from_rows([b.columns for b in held if b.columns.rows])
        store = IndexStore(index_dir, dim=manifest.dim, precision=manifest.precision)
        store.add_missing_columns()
        known = store.file_states()
        if gone is not None:
            deleted = [p for p in gone if p in known]
            # Files of the index after this run: known ones, new ones, minus removed ones.
            report.files = len(known.keys() | {f.path for f in files}) - len(deleted)
        else:
            present = {f.path for f in files}
            # Only what is really gone: not what sits in a folder we could not read now.
            unseen = [p for p in known if p not in present]
            deleted = [p for p in unseen if not stats.may_hold(p)]
            report.files = len(files) + len(unseen) - len(deleted)
        if pool is None:
            rechunk = manifest.extra.get("chunker") != CHUNKER_VERSION
            redecode = manifest.extra.get("decoder") != DECODER_VERSION
            candidates = list(files) if rechunk else _changed_files(files, known, redecode)
            jobs = [ChunkJob(f, None if rechunk else known.get(f.path)) for f in candidates]
            pool = make_pool(jobs, spec)
        # A crashed first build leaves rows behind: its rerun must replace, not append.
        fresh = not known and store.count_chunks() == 0
        batches = held if held is not None else _chunked(pool, progress)
        _write_rows(store, batches, options.batch_files * (4 if fresh else 1), fresh, progress, report)
    finally:
        if pool is not None:
            pool.close()
        discard_spare_workers()  # prestarted for a pool this run did not need
    manifest.extra["chunker"] = CHUNKER_VERSION
    manifest.extra["decoder"] = DECODER_VERSION
    if deleted:
        store.delete_paths(deleted)
    report.files_deleted = len(deleted)
    return store


def _chunked(pool: RowPool, progress: Progress) -> Iterator[ChunkedBatch]:
    """The pool's batches as they come, counted on the progress bar."""
    progress.start("chunk", len(pool.jobs))
    for batch in pool.results():
        yield batch
        progress.advance("chunk", len(batch.files))


def _write_rows(
    store: IndexStore, batches: Iterable[ChunkedBatch], write_files: int, fresh: bool,
    progress: Progress, report: IndexReport,
) -> None:
    states: list[FileState] = []
    touched: list[FileState] = []
    columns: list[PackedColumns] = []

    def flush() -> None:
        if states:
            store.replace_files(states, columns, fresh=fresh)
            report.chunks_written += sum(part.rows for part in columns)
        if touched:
            store.update_files(touched)
        states.clear()
        touched.clear()
        columns.clear()

    for batch in batches:
        for item in batch.files:
            if item.state is None:
                report.unreadable += 1
                continue
            report.decode_errors += int(item.decode_error)
            if not item.changed:
                touched.append(item.state)
            else:
                report.files_changed += 1
                states.append(item.state)
        if batch.columns.rows:
            columns.append(batch.columns)
        if len(states) + len(touched) >= write_files:
            flush()
    flush()
    progress.finish("chunk")


def _vector_tier(
    store: IndexStore,
    manifest: Manifest,
    options: IndexOptions,
    progress: Progress,
    report: IndexReport,
    embedder: object | None,
    lend_model: Callable[[object], None] | None = None,
    engine: Engine | None = None,
) -> None:
    """Embed every chunk content without a vector, from the shared cache or the model.

    `lend_model` receives the model once loaded (the query server answering from
    this process embeds queries with it).
    """
    if report.vectors_pending == 0:  # just counted by _record: skip the text scan
        return
    pending = _pending(store)
    if not pending:
        return
    cache = _open_cache(manifest, options)
    cached = cache.lookup([h for h, _ in pending]) if cache is not None else {}
    # Everything cached: no model load at all (0.5 s for ONNX, 7 s for torch).
    if embedder is None and engine is not None:
        embedder = engine.embedder(index_profile(manifest), manifest.dim, index_backend(manifest),
                                   manifest.precision)
    if embedder is None and any(h not in cached for h, _ in pending):
        progress.message(f"loading model {manifest.model}")
        embedder = load_index_embedder(index_profile(manifest), manifest.dim, index_backend(manifest))
    if lend_model is not None and embedder is not None:
        lend_model(embedder)
    sink = _CacheSink(cache)
    progress.start("embed", len(pending))
    ordered = sorted(pending, key=lambda item: len(item[1]))  # similar lengths pad less
    pending_progress = _PendingProgress(store, manifest, report)
    try:
        if manifest.precision != "float32" and manifest.calibration is None:
            ordered = _calibrate(store, manifest, ordered, embedder, progress, report,
                                 options.record_texts, cached, sink)
        ordered = _store_cached(store, manifest, ordered, cached, progress, report)
        pending_progress.done.extend(h for h, _ in pending if h in cached)
        step = engine.embed_batch if engine is not None else options.embed_batch
        for start in range(0, len(ordered), step):
            part = ordered[start : start + step]
            _embed_batch(store, manifest, part, embedder, report, options.record_texts, sink)
            progress.advance("embed", min(step, len(ordered) - start))
            pending_progress.maybe_record([h for h, _ in part])
    finally:
        sink.flush()  # an interrupted run still shares what it embedded
    progress.finish("embed")


class _PendingProgress:
    """Every REFRESH_SECONDS of embedding, the manifest's pending count catches up.

    `status` then shows progress, and a query server reloads (it watches the
    manifest) so hybrid queries use the vectors embedded so far.
    """

    REFRESH_SECONDS = 20.0

    def __init__(self, store: IndexStore, manifest: Manifest, report: IndexReport):
        self.store, self.manifest, self.report = store, manifest, report
        self.last = time.monotonic()
        self.per_hash: dict[str, int] | None = None  # chunks sharing each content hash
        self.done: list[str] = []

    def maybe_record(self, hashes: Sequence[str]) -> None:
        self.done.extend(hashes)
        if time.monotonic() - self.last < self.REFRESH_SECONDS:
            return
        if self.per_hash is None:
            from collections import Counter

            self.per_hash = Counter(self.store.chunk_content_hashes())
        covered = sum(self.per_hash.get(h, 0) for h in self.done)
        self.manifest.vectors_pending = max(0, self.report.vectors_pending - covered)
        write_manifest(self.store.index_dir, self.manifest)
        self.last = time.monotonic()


def _embed_batch(
    store: IndexStore, manifest: Manifest, part: Sequence[tuple[str, str]], embedder: object,
    report: IndexReport, record: bool = False, sink: _CacheSink | None = None,
) -> None:
    texts = [text for _, text in part]
    vectors = embedder.embed_documents(texts)  # type: ignore[attr-defined]
    hashes = [h for h, _ in part]
    store.add_vectors(hashes, storage_columns(vectors, manifest))
    if sink is not None:
        sink.add(hashes, vectors)
    report.embedded += len(part)
    if record:
        report.embedded_texts.extend(texts)


def _calibrate(
    store: IndexStore, manifest: Manifest, ordered: list[tuple[str, str]], embedder: object,
    progress: Progress, report: IndexReport, record: bool = False,
    cached: dict[str, np.ndarray] | None = None, sink: _CacheSink | None = None,
) -> list[tuple[str, str]]:
    """int8 ranges from an even sample of this corpus, persisted before any code is stored.

    Cached float32 vectors are model output like fresh ones: the sample takes them
    as they are and embeds only the rest.
    """
    import numpy as np

    from codesearch.embed.quantize import Calibration

    cached = cached or {}
    step = max(1, len(ordered) // 1024)
    sample = ordered[::step][:1024]
    missing = [(h, text) for h, text in sample if h not in cached]
    fresh: dict[str, np.ndarray] = {}
    if missing:
        texts = [text for _, text in missing]
        embedded = embedder.embed_documents(texts)  # type: ignore[attr-defined]
        fresh = dict(zip([h for h, _ in missing], np.asarray(embedded, dtype=np.float32), strict=True))
        if sink is not None:
            sink.add(list(fresh), embedded)
        report.embedded += len(missing)
        if record:
            report.embedded_texts.extend(texts)
    report.from_cache += len(sample) - len(missing)
    vectors = np.stack([fresh[h] if h in fresh else cached[h] for h, _ in sample])
    manifest.calibration = Calibration.from_embeddings(vectors).to_json()
    write_manifest(store.index_dir, manifest)
    store.add_vectors([h for h, _ in sample], storage_columns(vectors, manifest))
    progress.advance("embed", len(sample))
    taken = {h for h, _ in sample}
    return [item for item in ordered if item[0] not in taken]


# Names how `embedding_text` and `content_hash` turn a chunk into what the model reads:
# bump it when either changes, so the shared cache stops serving the old vectors.
EMBEDDING_TEXT_RECIPE = "embedding_text-1"
CACHE_WRITE_ROWS = 2048  # vectors per cache shard: fewer files, little lost to a kill


def _open_cache(manifest: Manifest, options: IndexOptions) -> EmbeddingCache | None:
    """The shared cache for this index's model, dimension and runtime (None: off)."""
    if not options.shared_cache:
        return None
    from codesearch.embed.cache import EmbeddingCache
    from codesearch.embed.local import runtime_id

    profile = index_profile(manifest)
    # Chunks may run past the model's input, so its token limit shapes the vectors too.
    recipe = f"{EMBEDDING_TEXT_RECIPE};max_tokens={profile.max_tokens_cpu}"
    runtime = runtime_id(index_backend(manifest))
    return EmbeddingCache.open(profile, manifest.dim, runtime, recipe)


def _store_cached(
    store: IndexStore, manifest: Manifest, ordered: list[tuple[str, str]],
    cached: dict[str, np.ndarray], progress: Progress, report: IndexReport,
) -> list[tuple[str, str]]:
    """Write the cached vectors into the index; return what is left to embed."""
    import numpy as np

    hits = [h for h, _ in ordered if h in cached]
    for start in range(0, len(hits), CACHE_WRITE_ROWS):
        part = hits[start : start + CACHE_WRITE_ROWS]
        vectors = np.stack([cached[h] for h in part])
        store.add_vectors(part, storage_columns(vectors, manifest))
        report.from_cache += len(part)
        progress.advance("embed", len(part))
    return [item for item in ordered if item[0] not in cached]


class _CacheSink:
    """Buffers fresh model output for the shared cache (a shard per ~2k vectors)."""

    def __init__(self, cache: EmbeddingCache | None) -> None:
        self.cache = cache
        self.hashes: list[str] = []
        self.parts: list[np.ndarray] = []

    def add(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        if self.cache is None:
            return
        import numpy as np

        self.hashes.extend(hashes)
        self.parts.append(np.asarray(vectors, dtype=np.float32))
        if len(self.hashes) >= CACHE_WRITE_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.cache is None or not self.hashes:
            return
        import numpy as np

        hashes, parts = self.hashes, self.parts
        self.hashes, self.parts = [], []
        self.cache.store(hashes, np.concatenate(parts))


def storage_columns(vectors: np.ndarray, manifest: Manifest) -> dict[str, np.ndarray]:
    """Vectors as the index stores them: float32, int8 codes, or packed bits + codes."""
    import numpy as np

    if manifest.precision == "float32":
        return {"vector": np.asarray(vectors, dtype=np.float32)}
    from codesearch.embed.quantize import Calibration, pack_binary, quantize_int8

    assert manifest.calibration is not None
    cal = Calibration.from_json(manifest.calibration)
    columns = {"codes": quantize_int8(vectors, cal)}
    if manifest.precision == "binary":
        columns["bits"] = pack_binary(vectors)
    return columns


def _interim_tier(
    store: IndexStore, index_dir: Path, manifest: Manifest, options: IndexOptions,
    report: IndexReport,
) -> None:
    """Interim vectors for every chunk content, while the index model still has some to
    embed: `Searcher` answers vector search from them until the index model has embedded
    most of the index (search.searcher.INTERIM_UNTIL). About a second per 10k chunks."""
    if not options.interim_model or report.vectors_pending == 0:
        return
    from codesearch.embed.local import load_embedder, resolve_backend

    profile = resolve_model(options.interim_model)
    fingerprint = profile.fingerprint(profile.dims)
    if fingerprint == manifest.fingerprint:
        return  # the index model is the interim one
    record = manifest.extra.get("interim")
    if isinstance(record, dict) and record.get("fingerprint") != fingerprint:
        store.drop_interim_vectors()  # another interim model's vectors
    table = store.interim_vectors(profile.dims)
    pending = _pending(store, store.vector_hashes(table))
    if pending:
        embedder = load_embedder(profile, profile.dims)
        for start in range(0, len(pending), INTERIM_BATCH):
            part = pending[start : start + INTERIM_BATCH]
            vectors = embedder.embed_documents([text for _, text in part])
            store.add_vectors([h for h, _ in part], {"vector": vectors}, table)
        report.interim_embedded = len(pending)
    manifest.extra["interim"] = {"model": profile.name, "fingerprint": fingerprint,
                                 "dim": profile.dims, "runtime": resolve_backend(profile),
                                 "profile": profile.to_manifest()}
    write_manifest(index_dir, manifest)  # a new mtime: servers reopen and use the tier


def _pending(store: IndexStore, have: set[str] | None = None) -> list[tuple[str, str]]:
    """(content_hash, text to embed) for chunk contents without a vector (in the index
    model's table, or among `have`)."""
    from codesearch.store.tables import scan

    have = store.vector_hashes() if have is None else have
    table = scan(store.chunks, ["content_hash", "path", "symbol", "context", "text"])
    out: dict[str, str] = {}
    for row in table.to_pylist():
        h = row["content_hash"]
        if h not in have and h not in out:
            out[h] = embedding_text(row["path"], row["symbol"], row["context"], row["text"])
    return list(out.items())
