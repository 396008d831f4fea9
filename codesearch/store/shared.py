"""One index of many repositories, in a folder or on object storage (s3://, gs://, az://).

A team's store holds the same tables as a local index, with a `repo` column on chunks,
plus `repos` (one row per repository: commit, counts, when) and `meta` (the store's
manifest: the model every repository was embedded with). Repositories are indexed
locally as usual and then *published*: each publish replaces one repository's chunks
in a single Lance commit (a reader sees the old or the new repository, never half of
it), so writers of different repositories run side by side; a commit conflict is
retried. Vectors are keyed by content hash and shared by every repository.

Credentials come from the standard environment (AWS_*, GOOGLE_*, AZURE_*); they are
handed to Lance and never written into the store, a log or an error message.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from codesearch.core.errors import IndexError_
from codesearch.store.manifest import Manifest
from codesearch.store.tables import IndexStore, scan

REMOTE_SCHEMES = ("s3", "s3+ddb", "gs", "az", "abfs")
COMMIT_RETRIES = 20  # with backoff capped at 2 s: a minute of another writer's commits
# Above this many vectors a query goes through an IVF_PQ index (with exact rescoring of
# its candidates) instead of scoring every stored vector.
ANN_THRESHOLD = 200_000

T = TypeVar("T")


@dataclass(frozen=True)
class RepoInfo:
    name: str
    commit: str
    files: int
    chunks: int
    indexed_at: float
    root: str


def is_uri(location: str) -> bool:
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme in (*REMOTE_SCHEMES, "file", "memory")


def storage_options(uri: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Lance storage options for `uri` from the standard environment variables."""
    env = os.environ if environ is None else environ
    if not uri.startswith(("s3://", "s3+ddb://")):
        return {}  # gs:// and az:// read their own variables (GOOGLE_*, AZURE_*)
    options: dict[str, str] = {}
    for key, var in (("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                     ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                     ("aws_session_token", "AWS_SESSION_TOKEN")):
        if env.get(var):
            options[key] = env[var]
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint"] = endpoint
        if endpoint.startswith("http://"):
            options["allow_http"] = "true"
    # Without keys here, Lance's own credential chain applies (instance roles, AWS_PROFILE).
    return options


def redact(text: str, options: dict[str, str]) -> str:
    """`text` with every secret value of `options` (and URL credentials) blanked out."""
    for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        value = options.get(key)
        if value:
            text = text.replace(value, "***")
    return re.sub(r"://[^/@\s]+:[^/@\s]+@", "://***@", text)


def _is_conflict(err: Exception) -> bool:
    text = str(err).lower()
    return any(word in text for word in ("conflict", "retryable", "precondition", "412"))


def with_retries(action: Callable[[], T], table: Any = None, retries: int = COMMIT_RETRIES) -> T:
    """Run a Lance commit, retrying when another writer committed first (on `table`
    moved to its latest version: a handle stays at the version it last saw)."""
    for attempt in range(retries):
        try:
            return action()
        except Exception as err:  # noqa: BLE001 (Lance raises plain errors for conflicts)
            if not _is_conflict(err) or attempt == retries - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt) * (1 + random.random()))
            if table is not None:
                table.checkout_latest()
    raise AssertionError("unreachable")


class SharedStore:
    """The tables of a many-repository store at a folder or an object-store URI."""

    def __init__(self, uri: str, create: bool = False):
        self.uri = uri.rstrip("/")
        self.options = storage_options(self.uri)
        try:
            self.tables = IndexStore.at(self.uri, self.options, create=create)
            self.db = self.tables.db
            names = set(self.tables.table_names())
            if "repos" not in names and create:
                self._create_small_tables()
            self.repos_table = self.db.open_table("repos") if ("repos" in names or create) else None
            self.meta_table = self.db.open_table("meta") if ("meta" in names or create) else None
        except IndexError_:
            raise
        except Exception as err:  # noqa: BLE001 (object stores fail in many ways)
            raise IndexError_(f"cannot open the store {self.uri}: {self.describe(err)}") from None
        if not create and self.meta_table is None:
            raise IndexError_(f"no codesearch store at {self.uri}: index a repository into it first "
                              "(codesearch index PATH --store URI --repo NAME)")

    def describe(self, err: BaseException) -> str:
        lines = str(err).strip().splitlines()
        return redact(lines[0] if lines else type(err).__name__, self.options)[:300]

    def _create_small_tables(self) -> None:
        import pyarrow as pa

        repos = pa.schema([("name", pa.string()), ("commit", pa.string()), ("files", pa.int64()),
                           ("chunks", pa.int64()), ("indexed_at", pa.float64()), ("root", pa.string())])
        meta = pa.schema([("key", pa.string()), ("value", pa.string())])
        for name, schema in (("repos", repos), ("meta", meta)):
            try:
                self.db.create_table(name, schema=schema)
            except Exception as err:  # noqa: BLE001
                if "exist" not in str(err).lower():  # another writer created it first
                    raise

    # -- the store's manifest -------------------------------------------------
    def manifest(self) -> Manifest | None:
        assert self.meta_table is not None
        self.meta_table.checkout_latest()
        rows = scan(self.meta_table, ["key", "value"], "key = 'manifest'").to_pylist()
        return Manifest.from_dict(json.loads(rows[0]["value"])) if rows else None

    def adopt_manifest(self, local: Manifest) -> Manifest:
        """The store's manifest, set from this repository's index on the first publish; a
        repository embedded with another model (or precision) is refused."""
        current = self.manifest()
        if current is not None:
            if current.fingerprint != local.fingerprint:
                raise IndexError_(
                    f"the store at {self.uri} holds {current.model} vectors (dim {current.dim}, "
                    f"{current.precision}); this repository was indexed with {local.model} "
                    f"(dim {local.dim}, {local.precision}): index it with --model {current.model}")
            return current
        shared = Manifest.from_dict({**asdict(local), "files": 0, "chunks": 0, "vectors_pending": 0})
        row = {"key": ["manifest"], "value": [json.dumps(asdict(shared), sort_keys=True)]}
        assert self.meta_table is not None
        with_retries(lambda: self.meta_table.merge_insert("key").when_matched_update_all()
                     .when_not_matched_insert_all().execute(_table(row)), self.meta_table)
        return self.manifest() or shared

    # -- repositories -----------------------------------------------------------
    def repos(self) -> list[RepoInfo]:
        if self.repos_table is None:
            return []
        self.repos_table.checkout_latest()
        rows = scan(self.repos_table, ["name", "commit", "files", "chunks", "indexed_at", "root"])
        return sorted((RepoInfo(**r) for r in rows.to_pylist()), key=lambda r: r.name)

    def publish(self, repo: str, chunk_rows: Any, vector_rows: Any, info: RepoInfo) -> None:
        """Make `chunk_rows` (an Arrow table of one repository's chunks) the repository's
        whole content, adding the vectors it needs first."""
        tables = self.tables
        if vector_rows is not None and vector_rows.num_rows:
            have = tables.vector_hashes() if tables.vectors is not None else set()
            fresh = vector_rows.filter(_not_in(vector_rows["content_hash"], have))
            if fresh.num_rows:
                if tables.vectors is None:
                    tables.vectors = with_retries(lambda: _create_or_open(self.db, "vectors", fresh))
                else:
                    with_retries(lambda: tables.vectors.merge_insert("content_hash")
                                 .when_not_matched_insert_all().execute(fresh), tables.vectors)
        with_retries(lambda: tables.chunks.merge_insert("id").when_matched_update_all()
                     .when_not_matched_insert_all()
                     .when_not_matched_by_source_delete(f"repo = {_sql(repo)}")
                     .execute(chunk_rows), tables.chunks)
        assert self.repos_table is not None
        with_retries(lambda: self.repos_table.merge_insert("name").when_matched_update_all()
                     .when_not_matched_insert_all().execute(_table({k: [v] for k, v in asdict(info).items()})),
                     self.repos_table)
        with_retries(tables.ensure_fts, tables.chunks)
        self._maybe_build_ann()

    def remove(self, repo: str) -> int:
        """Drop one repository's chunks (one commit) and its entry; returns chunks removed."""
        known = {r.name: r for r in self.repos()}
        if repo not in known:
            names = ", ".join(known) or "none"
            raise IndexError_(f"no repository {repo!r} in the store at {self.uri} (it holds: {names})")
        with_retries(lambda: self.tables.chunks.delete(f"repo = {_sql(repo)}"), self.tables.chunks)
        assert self.repos_table is not None
        with_retries(lambda: self.repos_table.delete(f"name = {_sql(repo)}"), self.repos_table)
        return known[repo].chunks

    # -- approximate search past a million chunks -------------------------------
    def _maybe_build_ann(self) -> None:
        vectors = self.tables.vectors
        if vectors is None or "vector" not in vectors.schema.names:
            return
        rows = vectors.count_rows()
        if rows < ANN_THRESHOLD or has_vector_index(vectors):
            return
        build_ann_index(vectors, rows)


def has_vector_index(table: Any) -> bool:
    return any("vector" in (getattr(i, "columns", None) or []) for i in table.list_indices())


def build_ann_index(table: Any, rows: int) -> None:
    """IVF_PQ over the float vectors: about sqrt(rows) partitions, 8-dim sub-vectors."""
    from lancedb.index import IvfPq

    dim = table.schema.field("vector").type.list_size
    config = IvfPq(distance_type="dot", num_partitions=max(16, int(rows ** 0.5)),
                   num_sub_vectors=max(1, dim // 8))
    table.create_index("vector", config=config, replace=True)


def _create_or_open(db: Any, name: str, data: Any) -> Any:
    try:
        return db.create_table(name, data=data)
    except Exception as err:  # noqa: BLE001
        if "exist" not in str(err).lower():
            raise
        table = db.open_table(name)
        table.merge_insert("content_hash").when_not_matched_insert_all().execute(data)
        return table


def _table(columns: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(columns)


def _not_in(column: Any, values: set[str]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.invert(pc.is_in(column, value_set=pa.array(sorted(values), pa.string())))


def _sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"



def local_rows(index_dir: Path, repo: str, commit: str) -> tuple[Any, Any]:
    """(chunk rows tagged with `repo` and `commit`, the vectors they use) of a local index."""
    import pyarrow as pa
    import pyarrow.compute as pc

    local = IndexStore(index_dir)
    chunks = local.chunks.to_arrow()
    ids = pc.binary_join_element_wise(pa.scalar(repo), chunks["id"], ":")
    chunks = chunks.drop_columns([c for c in ("repo", "commit") if c in chunks.schema.names])
    chunks = chunks.set_column(chunks.schema.get_field_index("id"), "id", ids)
    chunks = chunks.append_column("repo", pa.array([repo] * chunks.num_rows, pa.string()))
    chunks = chunks.append_column("commit", pa.array([commit] * chunks.num_rows, pa.string()))
    vectors = None
    if local.vectors is not None:
        wanted = pa.array(sorted(set(chunks["content_hash"].to_pylist())), pa.string())
        table = local.vectors.to_arrow()
        vectors = table.filter(pc.is_in(table["content_hash"], value_set=wanted))
    return chunks, vectors
