"""The public Python API: `from codesearch import Index`.

One `Index` per indexed folder: build or update it, search it, ask its status. The
CLI, the warm query server and the benchmark go through this class; so will the MCP
server and the distributed indexer. It keeps one searcher open and reopens it when
the index changes on disk, so a long-lived `Index` never answers from stale tables.

Imports stay lazy: constructing an `Index` or asking its status loads neither numpy,
LanceDB nor a model.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesearch.core.errors import CodesearchError, IndexError_, one_line
from codesearch.core.types import INDEX_DIRNAME, Hit, SearchOptions, SearchResult

if TYPE_CHECKING:
    from codesearch.index.build import Engine, IndexOptions, IndexReport, Progress, ServeFactory
    from codesearch.search.searcher import Searcher
    from codesearch.store.manifest import Manifest
    from codesearch.store.shared import RepoInfo

__all__ = ["Hit", "Index", "IndexOptions", "IndexReport", "IndexStatus", "ProgressCallback",
           "SearchOptions", "SearchResult", "SharedIndex"]

# (stage, done so far, total or None): stages are "discover", "chunk" and "embed".
ProgressCallback = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class IndexStatus:
    """Where an index is, what built it, how big and how fresh it is."""

    index: str
    root: str
    model: str
    dim: int
    precision: str
    runtime: str
    files: int
    chunks: int
    vectors_pending: int
    complete: bool
    size_bytes: int
    indexed_at: float
    changed_since: int | None  # files changed on disk since; None: not counted
    codesearch_version: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _CallbackProgress:
    """A plain callback seen through the `Progress` protocol the indexer reports to."""

    def __init__(self, callback: ProgressCallback):
        self.callback = callback
        self.done: dict[str, int] = {}
        self.totals: dict[str, int | None] = {}

    def start(self, stage: str, total: int | None) -> None:
        self.done[stage], self.totals[stage] = 0, total
        self.callback(stage, 0, total)

    def advance(self, stage: str, amount: int = 1) -> None:
        self.done[stage] = self.done.get(stage, 0) + amount
        self.callback(stage, self.done[stage], self.totals.get(stage))

    def finish(self, stage: str) -> None:
        done = self.done.get(stage, 0)
        self.callback(stage, done, self.totals.get(stage) or done)

    def message(self, text: str) -> None:
        pass


def __getattr__(name: str) -> Any:
    # The indexer's types load on first use: `status` and search need none of it.
    if name in ("IndexOptions", "IndexReport"):
        from codesearch.index import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _as_progress(progress: Progress | ProgressCallback | None) -> Progress:
    from codesearch.index.build import NullProgress

    if progress is None:
        return NullProgress()
    if hasattr(progress, "advance"):
        return progress  # type: ignore[return-value]
    return _CallbackProgress(progress)  # type: ignore[arg-type]


class Index:
    """The index of one folder (kept in `<root>/.codesearch/`).

    `Index(root)` touches nothing on disk; `update()` builds or refreshes the index,
    `search()` answers queries (one searcher is kept open between them), `status()`
    reports. Safe to share between threads: searches take turns.
    """

    def __init__(self, root: str | Path = ".", *, embedder: Any | None = None):
        self.root = Path(root).resolve()
        self.index_dir = self.root / INDEX_DIRNAME
        self._embedder = embedder  # lent by the caller: no second copy of the model
        self._searcher: Searcher | None = None
        self._manifest_mtime = -1
        self._lock = threading.RLock()

    @classmethod
    def at(cls, index_dir: str | Path, *, embedder: Any | None = None) -> Index:
        """The index stored in `index_dir` (a `.codesearch` folder)."""
        index_dir = Path(index_dir).resolve()
        if index_dir.name != INDEX_DIRNAME:
            raise IndexError_(f"{index_dir} is not an index folder (named {INDEX_DIRNAME})")
        return cls(index_dir.parent, embedder=embedder)

    def __repr__(self) -> str:
        return f"Index({str(self.root)!r})"

    @property
    def exists(self) -> bool:
        return (self.index_dir / "manifest.json").exists()

    @property
    def manifest(self) -> Manifest | None:
        from codesearch.store.manifest import read_manifest

        return read_manifest(self.index_dir)

    # --- building ---------------------------------------------------------------

    def update(
        self,
        paths: Sequence[str] | None = None,
        *,
        model: str | None = None,
        rebuild: bool = False,
        embed: bool = True,
        progress: Progress | ProgressCallback | None = None,
        options: IndexOptions | None = None,
        serve: ServeFactory | None = None,
        engine: Engine | None = None,
    ) -> IndexReport:
        """Build the index, or bring it up to date with the folder (only what changed).

        `paths` limits the walk to these files (relative to the root, as a git hook
        passes them). `engine` runs chunking and embedding elsewhere
        (`codesearch.index.distributed.RayEngine`). `embed=False` writes the full-text tier only; vectors follow on
        a later update. `options` sets everything else (`IndexOptions`); `progress`
        is a `Progress` object or a callback `(stage, done, total)`.
        """
        from dataclasses import replace

        from codesearch.index.build import IndexOptions, build_index

        options = replace(options or IndexOptions())
        if model is not None:
            options.model = model
        if paths is not None:
            options.paths = list(paths)
        options.rebuild = options.rebuild or rebuild
        options.embed = options.embed and embed
        return build_index(self.root, options, _as_progress(progress), self._embedder, serve, engine)

    # --- searching --------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        lang: str | Sequence[str] | None = None,
        path: str | None = None,
        content: str = "code",
        rerank: str | None = None,
        per_file: int = 0,
    ) -> list[Hit]:
        """The `k` best definitions for `query`, best first.

        `mode`: hybrid, text or vector; `lang`: only these languages; `path`: only
        paths matching this glob; `content`: code, docs or all; `rerank`: a reranker
        spec such as `qwen3-reranker-0.6b`; `per_file`: at most this many hits from one
        file (0: no limit).
        """
        languages = (lang,) if isinstance(lang, str) else tuple(lang or ())
        options = SearchOptions(k=k, mode=mode, languages=languages, path_glob=path,
                                content=content, rerank=rerank, per_file=per_file)
        return self.run(query, options).hits

    def run(self, query: str, options: SearchOptions | None = None) -> SearchResult:
        """`search` with every option (`SearchOptions`), and the whole result: hits,
        chunk count, vectors still pending and timings."""
        with self._lock:
            return self.searcher().search(query, options or SearchOptions())

    def searcher(self) -> Searcher:
        """The open searcher, reopened whenever the index was rewritten since."""
        from codesearch.search.searcher import Searcher

        with self._lock:
            try:
                mtime = (self.index_dir / "manifest.json").stat().st_mtime_ns
            except FileNotFoundError:
                raise IndexError_(
                    f"no index at {self.index_dir}: run `codesearch index` first") from None
            if self._searcher is None or mtime != self._manifest_mtime:
                old = self._searcher
                embedder = self._embedder
                if old is not None and embedder is None and self._same_model(old):
                    embedder = old.loaded_embedder
                searcher = Searcher(self.index_dir, embedder=embedder)
                if old is not None:
                    searcher.adopt_catalog(old)  # the indexer rewrites the manifest every 20 s
                self._searcher, self._manifest_mtime = searcher, mtime
            return self._searcher

    def _same_model(self, old: Searcher) -> bool:
        # The model survives reloads: it does not change without --rebuild, and a
        # rebuild with another model changes the manifest's fingerprint.
        manifest = self.manifest
        return manifest is not None and manifest.fingerprint == old.manifest.fingerprint

    @property
    def is_warm(self) -> bool:
        """Whether a searcher is open with its chunk catalog loaded."""
        return self._searcher is not None and self._searcher.catalog_loaded

    def lend_embedder(self, embedder: Any) -> None:
        """Use this loaded model for queries (a process that already holds it)."""
        with self._lock:
            self._embedder = embedder
            if self._searcher is not None:
                self._searcher.lend_embedder(embedder)

    def warm(self) -> None:
        """Open the tables and load the catalog, the full-text index and the vectors now,
        so the first query pays only its own search."""
        with self._lock:
            searcher = self.searcher()
            searcher.search("warm up", SearchOptions(mode="text", k=1))
            searcher.vectors()

    # --- reporting --------------------------------------------------------------

    def status(self, count_changes: bool = True) -> IndexStatus:
        """What `codesearch status` shows. `count_changes` walks the folder (at most
        about 2 s) to count files changed since the last index run."""
        from codesearch.store.tables import index_size_bytes

        manifest = self.manifest
        if manifest is None:
            raise IndexError_(f"no index at {self.index_dir}: run `codesearch index` first")
        changed = self.changed_since(manifest.indexed_at) if count_changes else None
        return IndexStatus(
            index=str(self.index_dir), root=str(self.root), model=manifest.model,
            dim=manifest.dim, precision=manifest.precision,
            runtime=str(manifest.extra.get("backend", "auto")), files=manifest.files,
            chunks=manifest.chunks, vectors_pending=manifest.vectors_pending,
            complete=manifest.complete, size_bytes=index_size_bytes(self.index_dir),
            indexed_at=manifest.indexed_at, changed_since=changed,
            codesearch_version=manifest.codesearch_version,
        )

    def changed_since(self, indexed_at: float, limit_seconds: float = 2.0) -> int | None:
        """Files added, modified or removed since the last complete index run.

        Compared with the (size, mtime) snapshot the last run left; without one,
        files modified after that run. None if the walk takes too long.
        """
        from codesearch.source.discover import discover

        try:
            snapshot = json.loads((self.index_dir / "files.json").read_text())
        except (OSError, ValueError):
            snapshot = None
        started = time.perf_counter()
        changed, seen = 0, 0
        for source in discover(self.root):
            if snapshot is None:
                changed += source.mtime_ns / 1e9 > indexed_at
            else:
                seen += source.path in snapshot
                changed += snapshot.get(source.path) != [source.size, source.mtime_ns]
            if time.perf_counter() - started > limit_seconds:
                return None
        if snapshot is not None:
            changed += len(snapshot) - seen  # removed since
        return changed

    def file_states(self) -> dict[str, tuple[int, int]] | None:
        """(size, mtime_ns) of every indexed file as the last finished index run saw it;
        None before one finishes (a run removes the record when it starts)."""
        try:
            data = json.loads((self.index_dir / "files.json").read_text())
            return {path: (int(state[0]), int(state[1])) for path, state in data.items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            return None

    def changed_files(self, known: Mapping[str, tuple[int, int]] | None = None) -> list[str]:
        """Paths added, modified or removed since the last finished index run, sorted: the
        folder walked as the indexer walks it, compared with `file_states()` (or `known`)."""
        from codesearch.source.discover import discover

        states = (self.file_states() or {}) if known is None else known
        seen: set[str] = set()
        changed: list[str] = []
        for source in discover(self.root):
            seen.add(source.path)
            state = states.get(source.path)
            if state is None or tuple(state) != (source.size, source.mtime_ns):
                changed.append(source.path)
        changed.extend(path for path in states if path not in seen)
        return sorted(changed)

    def definitions(self, name: str) -> list[Hit]:
        """Every definition whose own name is `name` (case-insensitive; the last part of a
        qualified symbol, so `push` finds the method `ColumnStats.push`), in index order.
        Each Hit has the stored symbol, the definition's lines and its whole text."""
        from codesearch.search.ranking import last_part

        wanted = last_part(name.strip().rstrip("()")).lower()
        if not wanted:
            raise ValueError("give a symbol name, e.g. read_csv or Class.method")
        with self._lock:
            searcher = self.searcher()
            catalog = searcher.catalog
            rows = sorted(set(catalog.rows_named(wanted)))
            hits = [Hit(rank=0, path=catalog.paths[i], start_line=catalog.starts[i],
                        end_line=catalog.ends[i], symbol=catalog.symbols[i], kind=catalog.kinds[i],
                        language=catalog.languages[i], score=1.0, repo=catalog.repos[i] or "")
                    for i in rows]
            searcher.attach_definitions(hits, rows)  # the whole definition, its parts joined
            members = [catalog.members(i) for i in rows]
        found: list[Hit] = []
        for hit, row_members in zip(hits, members, strict=True):
            if last_part(hit.symbol).lower() == wanted:
                found.append(hit)
            for symbol, kind, start, end in row_members:
                if last_part(symbol).lower() == wanted:
                    lines = hit.text.split("\n")[start - hit.start_line : end - hit.start_line + 1]
                    found.append(Hit(rank=0, path=hit.path, start_line=start, end_line=end,
                                     symbol=symbol, kind=kind, language=hit.language, score=1.0,
                                     text="\n".join(lines), repo=hit.repo))
        for rank, hit in enumerate(found, 1):
            hit.rank = rank
            hit.match_start_line, hit.match_end_line = hit.start_line, hit.end_line
        return found



class SharedIndex:
    """One index of many repositories, in a folder or on object storage (`s3://bucket/prefix`,
    `gs://`, `az://`); see docs/scale.md.

    Each repository is indexed locally (`Index.update`) and then published here, replacing
    that repository's rows in one commit; searches cover every repository or a few.
    """

    def __init__(self, uri: str, *, embedder: Any | None = None):
        self.uri = uri.rstrip("/")
        self._embedder = embedder
        self._searcher: Searcher | None = None
        self._version = -1
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SharedIndex({self.uri!r})"

    def publish(self, index: Index, repo: str, commit: str | None = None) -> RepoInfo:
        """Make `index`'s current content repository `repo` of this store (one commit)."""
        from codesearch.store.shared import RepoInfo, SharedStore, local_rows

        _check_repo_name(repo)
        manifest = index.manifest
        if manifest is None or not manifest.complete or manifest.vectors_pending:
            raise IndexError_(f"the index of {index.root} is not complete: run `codesearch index` "
                              "there before publishing it")
        store = SharedStore(self.uri, create=True)
        try:
            store.adopt_manifest(manifest)
            commit = commit if commit is not None else git_commit(index.root)
            chunks, vectors = local_rows(index.index_dir, repo, commit)
            info = RepoInfo(repo, commit, manifest.files, chunks.num_rows, time.time(), str(index.root))
            store.publish(repo, chunks, vectors, info)
        except IndexError_:
            raise
        except Exception as err:  # noqa: BLE001 (object stores fail in many ways)
            raise IndexError_(f"publishing {repo} to {self.uri} failed: {store.describe(err)}") from None
        return info

    def remove(self, repo: str) -> int:
        """Drop one repository from the store; returns how many chunks it had."""
        from codesearch.store.shared import SharedStore

        return SharedStore(self.uri).remove(repo)

    def repos(self) -> list[RepoInfo]:
        from codesearch.store.shared import SharedStore

        return SharedStore(self.uri).repos()

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        repos: Sequence[str] = (),
        lang: str | Sequence[str] | None = None,
        path: str | None = None,
        content: str = "code",
        per_file: int = 0,
    ) -> list[Hit]:
        """The `k` best definitions across the store's repositories (or only `repos`);
        each hit's `repo` says where it is."""
        languages = (lang,) if isinstance(lang, str) else tuple(lang or ())
        options = SearchOptions(k=k, mode=mode, languages=languages, path_glob=path,
                                content=content, repos=tuple(repos), per_file=per_file)
        return self.run(query, options).hits

    def run(self, query: str, options: SearchOptions | None = None) -> SearchResult:
        options = options or SearchOptions()
        known = {r.name for r in self.repos()} if options.repos else set()
        unknown = [r for r in options.repos if r not in known]
        if unknown:
            raise IndexError_(f"no repository {unknown[0]!r} in the store at {self.uri} "
                              f"(it holds: {', '.join(sorted(known)) or 'none'})")
        with self._lock:
            return self.searcher().search(query, options)

    def searcher(self) -> Searcher:
        """The open searcher, reopened when a repository was published since."""
        from codesearch.search.searcher import Searcher
        from codesearch.store.shared import SharedStore

        with self._lock:
            store = SharedStore(self.uri)
            version = store.tables.chunks.version
            if self._searcher is None or version != self._version:
                manifest = store.manifest()
                if manifest is None:
                    raise IndexError_(f"no repository has been published to {self.uri} yet")
                old = self._searcher
                embedder = self._embedder or (old.loaded_embedder if old is not None else None)
                self._searcher = Searcher(Path(self.uri), embedder=embedder, store=store.tables,
                                          manifest=manifest, ann=True)
                self._version = version
            return self._searcher

    def status(self) -> dict[str, Any]:
        """The store's model and its repositories with their counts and commits."""
        from codesearch.store.shared import SharedStore

        store = SharedStore(self.uri)
        manifest = store.manifest()
        return {
            "store": self.uri,
            "model": manifest.model if manifest else None,
            "dim": manifest.dim if manifest else None,
            "precision": manifest.precision if manifest else None,
            "repos": [asdict(r) for r in store.repos()],
        }


@dataclass(frozen=True)
class RepoSource:
    """One line of a repositories file: a folder or a git URL, and the name to publish it as."""

    location: str
    name: str

    @property
    def is_url(self) -> bool:
        return "://" in self.location or self.location.startswith("git@")


@dataclass
class RepoOutcome:
    name: str
    status: str  # published | unchanged | failed
    commit: str = ""
    chunks: int = 0
    seconds: float = 0.0
    attempts: int = 0
    error: str = ""


def read_repo_list(path: Path) -> list[RepoSource]:
    """`PATH-or-URL [NAME]` a line; `#` comments and blank lines are skipped."""
    sources: list[RepoSource] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise IndexError_(f"cannot read {path}: {err.strerror or err}") from None
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2:
            raise ValueError(f"{path}:{number}: expected `PATH-or-URL [NAME]`, got {line.strip()!r}")
        location = words[0]
        name = words[1] if len(words) == 2 else location.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        _check_repo_name(name)
        sources.append(RepoSource(location, name))
    if len({s.name for s in sources}) != len(sources):
        raise ValueError(f"{path}: two repositories share a name: give each line a NAME")
    return sources


def checkout(source: RepoSource, cache: Path) -> Path:
    """The folder to index: the path itself, or a shallow clone of the URL kept in `cache`."""
    import subprocess

    if not source.is_url:
        folder = Path(source.location).expanduser()
        if not folder.is_dir():
            raise IndexError_(f"no such folder: {folder}")
        return folder
    folder = cache / source.name
    steps = ([["git", "-C", str(folder), "fetch", "-q", "--depth", "1", "origin", "HEAD"],
              ["git", "-C", str(folder), "reset", "-q", "--hard", "FETCH_HEAD"]]
             if (folder / ".git").is_dir()
             else [["git", "clone", "-q", "--depth", "1", source.location, str(folder)]])
    folder.parent.mkdir(parents=True, exist_ok=True)
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise IndexError_(f"git {step[1] if step[1] != '-C' else step[3]} of {source.location} "
                              f"failed: {lines[-1] if lines else proc.returncode}")
    return folder


def index_repositories(
    store: SharedIndex,
    sources: Sequence[RepoSource],
    *,
    engine: Engine | None = None,
    options: IndexOptions | None = None,
    retries: int = 1,
    cache: Path | None = None,
    progress: Progress | ProgressCallback | None = None,
    on_done: Callable[[RepoOutcome], None] | None = None,
) -> list[RepoOutcome]:
    """Index every repository and publish it to `store`; a failed one is retried, then
    reported, and the others still land. A repository whose commit the store already
    holds is skipped."""
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codesearch" / "repos"
    try:
        published = {r.name: r.commit for r in store.repos()}
    except IndexError_:
        published = {}
    outcomes = []
    for source in sources:
        outcome = RepoOutcome(source.name, "failed")
        started = time.perf_counter()
        for attempt in range(1, retries + 2):
            outcome.attempts = attempt
            try:
                folder = checkout(source, cache)
                commit = git_commit(folder)
                if commit and published.get(source.name) == commit:
                    outcome.status, outcome.commit = "unchanged", commit
                    break
                index = Index(folder)
                index.update(options=options, progress=progress, engine=engine)
                info = store.publish(index, source.name, commit)
                outcome.status, outcome.commit, outcome.chunks = "published", info.commit, info.chunks
                outcome.error = ""
                break
            except (CodesearchError, ValueError, OSError) as err:
                outcome.error = one_line(err)
        outcome.seconds = time.perf_counter() - started
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes


_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@+-]{0,199}$")


def _check_repo_name(name: str) -> None:
    if not _REPO_NAME.match(name):
        raise ValueError(f"bad repository name {name!r}: use letters, digits and . _ / @ + -")


def git_commit(root: Path) -> str:
    """The commit checked out at `root`, or "" outside a git work tree."""
    import subprocess

    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""
