"""Is an index readable as it stands? What `codesearch status` checks, and how a storage
failure met anywhere else becomes one line that says what to do.

The check writes nothing (a read-only or shared index is checked as it is): it opens
each table at its latest version, reads one column of every row (which reads every data
file), asks each full-text index once, and compares the row counts with the manifest
when the last index run finished. An interrupted run is not damage: its counts are
reported as the tables hold them.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codesearch.core.errors import CodesearchError, ReadOnlyIndexError, damaged
from codesearch.store.manifest import Manifest, index_profile
from codesearch.store.tables import (
    LEXICAL_COLUMNS,
    import_lancedb,
    lance_reason,
    listed_tables,
    scan,
)

TABLES = ("chunks", "files", "vectors")
# How LanceDB and Arrow failures read (they come as RuntimeError, OSError or ValueError).
_STORAGE_WORDS = ("lance error", "lanceerror", "arrowinvalid", "arrowioerror", "corrupt")


@dataclass
class Health:
    """Counts read from the tables themselves, and what is wrong (empty: nothing)."""

    files: int = 0
    chunks: int = 0
    vectors_pending: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def damage(self) -> str | None:
        return "; ".join(self.problems) if self.problems else None


def check_index(index_dir: Path, manifest: Manifest, finished: bool) -> Health:
    """Open and read every table of the index; `finished`: the last run completed and
    none runs now, so the manifest's counts must match the tables'."""
    health = Health()
    try:
        index_profile(manifest)
    except Exception as err:  # noqa: BLE001 (a garbled model record, whatever it raises)
        health.problems.append(f"its manifest's model record is unreadable ({lance_reason(err)})")
    lance = index_dir / "lance"
    if not lance.is_dir():
        if manifest.indexed_at > 0:
            health.problems.append("its tables are gone (no lance folder)")
        return health  # a first build that never wrote a row
    tables = _open_tables(lance, manifest, health)
    chunk_hashes: list[str] = []
    if "chunks" in tables:
        chunk_hashes = _read_column(tables["chunks"], "content_hash", "chunks", health)
        health.chunks = len(chunk_hashes)
        _probe_full_text(tables["chunks"], health)
    if "files" in tables:
        health.files = len(_read_column(tables["files"], "path", "files", health))
    vector_hashes: set[str] = set()
    if "vectors" in tables:
        vector_hashes = set(_read_column(tables["vectors"], "content_hash", "vectors", health))
    health.vectors_pending = sum(h not in vector_hashes for h in chunk_hashes)
    if finished and not health.problems:
        _compare_counts(manifest, health)
    return health


def _open_tables(lance: Path, manifest: Manifest, health: Health) -> dict[str, Any]:
    try:
        db = import_lancedb().connect(str(lance))
        names = listed_tables(db)  # LanceDB's own listing, not the folder's: it checks more
    except Exception as err:  # noqa: BLE001 (any failure to list is damage)
        health.problems.append(f"its tables cannot be listed: {lance_reason(err)}")
        return {}
    recorded = manifest.indexed_at > 0
    tables: dict[str, Any] = {}
    for name in TABLES:
        if name not in names:
            # The vectors table is made with the first build; chunks and files too. A first
            # build killed before its first commit has none of them yet.
            if recorded:
                health.problems.append(f"table {name} is missing")
            continue
        try:
            tables[name] = db.open_table(name)
        except Exception as err:  # noqa: BLE001
            health.problems.append(f"table {name} cannot be opened: {lance_reason(err)}")
    return tables


def _read_column(table: Any, column: str, name: str, health: Health) -> list[str]:
    """One column of every row: reading it opens every data file of the version."""
    try:
        rows = table.count_rows()
        values: list[str] = scan(table, [column])[column].to_pylist()
    except Exception as err:  # noqa: BLE001
        health.problems.append(f"table {name} cannot be read: {lance_reason(err)}")
        return []
    if len(values) != rows:
        health.problems.append(f"table {name} has {len(values)} readable rows of {rows}")
    return values


def _probe_full_text(chunks: Any, health: Health) -> None:
    """Ask each full-text index for a word: a truncated index file fails here."""
    from lancedb.query import MatchQuery

    try:
        indexed = {i.columns[0] for i in chunks.list_indices() if len(i.columns) == 1}
        for column in LEXICAL_COLUMNS:
            if column in indexed:
                chunks.search(MatchQuery("codesearch", column), query_type="fts") \
                    .select(["id", "_score"]).limit(1).to_arrow()
    except Exception as err:  # noqa: BLE001
        health.problems.append(f"a full-text index cannot be read: {lance_reason(err)}")


def _compare_counts(manifest: Manifest, health: Health) -> None:
    pairs = (("files", manifest.files, health.files), ("chunks", manifest.chunks, health.chunks),
             ("chunks without a vector", manifest.vectors_pending, health.vectors_pending))
    for what, recorded, found in pairs:
        if recorded != found:
            health.problems.append(f"the manifest records {recorded} {what}, the tables hold {found}")


def storage_error(index_dir: Path, err: BaseException) -> CodesearchError | None:
    """The one-line error for a failure met while reading or writing an index, or None
    when it is not a storage problem (a bug: the caller lets it through)."""
    if isinstance(err, CodesearchError):
        return err
    if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        where = err.filename or index_dir
        return ReadOnlyIndexError(f"{where} is read-only for codesearch ({err.strerror}): "
                                  "queries still work; index a copy you can write")
    text = f"{type(err).__module__} {type(err).__name__} {err}".lower()
    if any(word in text for word in _STORAGE_WORDS) or type(err).__module__.startswith(("lance", "pyarrow")):
        return damaged(index_dir, lance_reason(err))
    return None
