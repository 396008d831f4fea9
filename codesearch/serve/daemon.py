"""A warm query process per index, so `codesearch query` answers in well under a second.

Importing lancedb costs about 2 s and a model more; a CLI process that paid
that on every query could never be fast. The first query searches in its own
process and, once it has printed its answer, starts this server in the background
(one per index, on a Unix socket); later queries send it a line of JSON and get the
result back (cli/thin.py, without importing the CLI). It reloads the index whenever the
manifest changes (never stale after a re-index) and exits after an idle
timeout. Any failure to reach it falls back to searching in-process.

At most CODESEARCH_MAX_SERVERS (default 4) run per user: one that starts stops the
least recently used. None starts for a read-only or an empty index (cli.main).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesearch.core.checks import clean_query
from codesearch.core.wire import PROTOCOL, ROWS_MARKER, socket_folder, socket_name

if TYPE_CHECKING:  # imported where used: `codesearch index` must not load numpy before its workers fork
    from codesearch.core.types import SearchOptions, SearchResult
    from codesearch.search.searcher import Searcher
    from codesearch.store.manifest import Manifest
    from codesearch.store.tables import PackedColumns

DEFAULT_IDLE_SECONDS = 900.0
# Warm servers one user may run at once (each holds 180-310 MB); the least recently
# used exits when another starts.
DEFAULT_MAX_SERVERS = 4
MAX_SERVERS_ENV = "CODESEARCH_MAX_SERVERS"


def socket_dir() -> Path:
    """This user's folder of server sockets; OSError when it cannot be used safely
    (another user's, open to others, or not a folder): queries then run in-process."""
    import stat

    base = socket_folder()
    base.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(base)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"{base} is not a folder of this user's")
    if info.st_mode & 0o077:
        os.chmod(base, 0o700)  # ours, but readable by others: a socket there is a door
    return base


def socket_path(index_dir: Path) -> Path:
    return socket_dir() / socket_name(index_dir)


def max_servers() -> int:
    """How many warm servers one user may have at once (CODESEARCH_MAX_SERVERS, default 4;
    0: none, every query searches in its own process)."""
    raw = os.environ.get(MAX_SERVERS_ENV, "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_MAX_SERVERS
    except ValueError:
        return DEFAULT_MAX_SERVERS


def request(index_dir: Path, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any] | None:
    """Send one request to the index's server; None if no server answers."""
    try:
        path = socket_path(index_dir)
    except OSError:
        return None
    return _request_at(path, payload, timeout)


def _request_at(path: Path, payload: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(payload).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                part = sock.recv(1 << 16)
                if not part:
                    break
                data += part
        answer = json.loads(data) if data else None
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None  # garbage that parses is no answer


def launch_detached(args: list[str], index_dir: Path, log_name: str) -> subprocess.Popen[bytes]:
    """`python -m codesearch ARGS` in its own session, output appended to index_dir/log_name.

    It runs from the index folder: `python -m` puts the cwd first on sys.path, and a
    repository with a top-level `numpy/` or `rich/` folder would shadow installed packages.
    """
    from codesearch.core.process import launch_detached as launch

    index_dir = index_dir.resolve()
    return launch([sys.executable, "-m", "codesearch", *args], index_dir, index_dir / log_name)


def _launch(index_dir: Path, idle_seconds: float) -> subprocess.Popen[bytes] | None:
    """A server process for this index, started in the background; None when none can
    run (the limit at 0, no socket folder, an unwritable log)."""
    if max_servers() == 0:
        return None
    index_dir = index_dir.resolve()
    try:
        socket_dir()
        return launch_detached(["serve", "--index", str(index_dir), "--idle", str(idle_seconds)],
                               index_dir, "daemon.log")
    except OSError:
        return None


def start(index_dir: Path, idle_seconds: float = DEFAULT_IDLE_SECONDS, wait: float = 60.0) -> bool:
    """Start a server for this index in the background and wait until it answers
    (False when none can run: no socket folder, an unwritable log, the limit at 0)."""
    proc = _launch(index_dir, idle_seconds)
    if proc is None:
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        answer = request(index_dir, {"op": "ping"}, timeout=2.0)
        if answer and answer.get("ok"):
            return True
        if proc.poll() is not None:
            # Exited: it failed (see daemon.log), or another server won the socket.
            return bool(request(index_dir, {"op": "ping"}, timeout=2.0))
        time.sleep(0.05)
    return False


def stop(index_dir: Path) -> bool:
    answer = request(index_dir, {"op": "stop"}, timeout=5.0)
    return bool(answer and answer.get("ok"))


def options_to_dict(options: Any) -> dict[str, Any]:
    data = asdict(options)
    data["languages"] = list(data["languages"])
    data["repos"] = list(data["repos"])
    return data


def options_from_dict(data: dict[str, Any]) -> Any:
    from codesearch.core.types import SearchOptions
    from codesearch.search.ranking import RankingConfig

    known = {f.name for f in fields(SearchOptions)}
    values = {k: v for k, v in data.items() if k in known}
    values["languages"] = tuple(values.get("languages", ()))
    values["repos"] = tuple(values.get("repos", ()))
    if isinstance(values.get("ranking"), dict):
        values["ranking"] = RankingConfig(**values["ranking"])
    return SearchOptions(**values)


class _State:
    def __init__(self, index_dir: Path, idle_seconds: float, embedder: Any = None,
                 standalone: bool = False):
        from codesearch.api import Index

        self.index_dir = index_dir
        self.idle_seconds = idle_seconds
        self.last_used = time.monotonic()
        self.last_used_at = time.time()  # compared across servers: least recently used exits
        # A standalone server logs tracebacks to its log; a thread server inside `codesearch
        # index` writes to the user's terminal, which gets the one line only.
        self.standalone = standalone
        self.lock = threading.Lock()
        # An indexer serving on a thread lends its model: no second copy, no load time.
        self.index = Index.at(index_dir, embedder=embedder)
        self.queries = 0


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    socket_inode = 0  # of the socket file this server bound (the path may be reused)


def _bind(state: _State) -> _Server:
    """A server answering for `state`'s index on its socket (replacing a dead socket file)."""
    from codesearch.search.render import result_to_json

    path = socket_path(state.index_dir)
    _clear_path(path)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            if not line.strip():
                return  # a connection that only checks someone listens
            try:
                payload = json.loads(line)
                if not isinstance(payload, dict):
                    raise ValueError("a request is one JSON object a line")
                answer = _answer(state, payload, result_to_json)
            except Exception as err:  # noqa: BLE001 (the client shows the one line)
                answer = {"ok": False, "error": _error_line(state, err)}
            self.wfile.write(json.dumps(answer).encode() + b"\n")
            if payload_is_stop(line) or answer.get("stale"):
                threading.Thread(target=server.shutdown, daemon=True).start()

    server = _Server(str(path), Handler)
    os.chmod(path, 0o600)
    server.socket_inode = os.stat(path).st_ino
    return server


def _clear_path(path: Path) -> None:
    """Make room for our socket: a dead server's socket, or garbage left at the path (the
    folder is this user's alone, so whatever is there is ours to remove)."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _error_line(state: _State, err: Exception) -> str:
    """What the client shows: one line; the traceback goes to a standalone server's log."""
    from codesearch.core.errors import one_line
    from codesearch.store.health import storage_error

    known = storage_error(state.index_dir, err)
    if known is None and state.standalone:
        import traceback

        traceback.print_exc(file=sys.stderr)
    return one_line(known if known is not None else err)


def serve(index_dir: Path, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> int:
    if request(index_dir, {"op": "ping"}, timeout=2.0):
        return 0  # another server already answers for this index
    state = _State(index_dir, idle_seconds, standalone=True)
    server = _bind(state)
    evict_least_recent(max_servers() - 1, keep=socket_path(index_dir))
    watchdog = threading.Thread(target=_idle_watch, args=(state, server), daemon=True)
    watchdog.start()
    try:
        state.index.searcher()  # warm: open tables, read the catalog
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        _unlink_if_ours(index_dir, server)
    return 0


def _unlink_if_ours(index_dir: Path, server: _Server) -> None:
    """Remove the socket file unless another server has bound the path since."""
    path = socket_path(index_dir)
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == server.socket_inode:
            path.unlink()


class ThreadServer:
    """The query server on a thread of another process: an indexer answers queries
    while it embeds, so the first query after the full-text tier pays no start-up
    (a separate server would import LanceDB and open the tables first: 1.5 s or more).
    """

    def __init__(self, index_dir: Path, embedder: Any = None):
        self.index_dir = index_dir
        self.state = _State(index_dir, idle_seconds=float("inf"), embedder=embedder)
        self._written: Any = None  # the index of written rows, while rows in memory answer
        self.server = _bind(self.state)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="codesearch-query-server", daemon=True)
        self.thread.start()

    def serve_rows(self, parts: Sequence[PackedColumns], manifest: Manifest) -> None:
        """Answer from a first build's rows held in memory (store.memory) until
        `load_catalog`, and tell waiting queries so (ROWS_MARKER)."""
        from codesearch.search.searcher import Searcher
        from codesearch.store.memory import MemoryRows

        rows = MemoryRows(parts)
        count = rows.count_chunks()
        # As the manifest will say once the rows are written: every chunk waits for a vector.
        searcher = Searcher(self.index_dir, store=rows,
                            manifest=replace(manifest, chunks=count, vectors_pending=count))
        _ = searcher.catalog
        with self.state.lock:
            if self._written is None:
                self._written = self.state.index
            self.state.index = _RowsIndex(searcher)
        (self.index_dir / ROWS_MARKER).touch()

    def _end_rows(self) -> None:
        with self.state.lock:
            if self._written is not None:
                self.state.index, self._written = self._written, None
        (self.index_dir / ROWS_MARKER).unlink(missing_ok=True)

    def lend_embedder(self, embedder: Any) -> None:
        with self.state.lock:
            self.state.index.lend_embedder(embedder)

    def load_catalog(self) -> None:
        """Read the chunk catalog now (the rows are written, the index not yet declared
        queryable): the first query, a moment later, then finds it loaded."""
        self._end_rows()
        with self.state.lock, contextlib.suppress(Exception):
            _ = self.state.index.searcher().catalog

    def warm(self) -> None:
        """Open the tables, load the chunk catalog and the full-text index now, before
        embedding takes both cores: the first query then pays only its own search.
        A failure here only costs the first query its speed."""
        # Any real problem (a damaged table, say) is reported by the query that meets it.
        with self.state.lock, contextlib.suppress(Exception):
            self.state.index.warm()

    @property
    def queries(self) -> int:
        return self.state.queries

    def close(self) -> None:
        self._end_rows()
        self.server.shutdown()
        self.server.server_close()
        _unlink_if_ours(self.index_dir, self.server)

    def hand_over(self) -> None:
        """Stop serving; if anyone queried meanwhile, leave a standalone server behind
        (not for an index with nothing in it)."""
        self.close()
        if self.queries and has_chunks(self.index_dir):
            spawn(self.index_dir)


class _RowsIndex:
    """What the server asks of an Index (`api.Index`), answered by a Searcher over rows in memory."""

    def __init__(self, searcher: Searcher):
        self._searcher = searcher

    def run(self, query: str, options: SearchOptions | None = None) -> SearchResult:
        from codesearch.core.types import SearchOptions

        return self._searcher.search(query, options or SearchOptions())

    def searcher(self) -> Searcher:
        return self._searcher

    def lend_embedder(self, embedder: Any) -> None:
        self._searcher.lend_embedder(embedder)


def serve_in_thread(index_dir: Path, embedder: Any = None) -> ThreadServer | None:
    """Start answering queries for this index on a thread; None if a server already answers."""
    if request(index_dir, {"op": "ping"}, timeout=2.0):
        return None
    try:
        return ThreadServer(index_dir, embedder)
    except OSError:
        return None  # no socket here (permissions, path): queries fall back as usual


def stop_stale(index_dir: Path) -> None:
    """Before a first build: a server still bound to this index's socket answers for an
    index that is gone (removed, and now built again, while its server idled). It stops
    now, so the build's own server can answer the queries that wait for it. (A first
    build running in another process holds the lock: its server is left alone.)"""
    from codesearch.core.lockprobe import lock_is_held

    if not has_chunks(index_dir) and not lock_is_held(index_dir):
        stop(index_dir)


def serve_while_indexing(index_dir: Path) -> ThreadServer | None:
    """The `serve` hook of `build_index`: answer queries from the indexing process
    while it embeds, unless CODESEARCH_NO_DAEMON is set or a server already answers."""
    if os.environ.get("CODESEARCH_NO_DAEMON", "") not in ("", "0"):
        return None
    return serve_in_thread(index_dir)


def spawn(index_dir: Path, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
    """Start a standalone server without waiting for it (an indexer hands over on exit;
    a first query starts one once it has answered). One that finds a server already
    answering exits at once."""
    _launch(index_dir, idle_seconds)


def payload_is_stop(line: bytes) -> bool:
    try:
        return json.loads(line).get("op") == "stop"
    except ValueError:
        return False


def _idle_watch(state: _State, server: socketserver.BaseServer) -> None:
    while True:
        time.sleep(min(5.0, state.idle_seconds / 4))
        if time.monotonic() - state.last_used > state.idle_seconds:
            server.shutdown()
            return


def has_chunks(index_dir: Path) -> bool:
    """Whether the index holds anything to serve (a damaged one does not)."""
    from codesearch.store.manifest import read_manifest

    try:
        manifest = read_manifest(index_dir)
    except Exception:  # noqa: BLE001 (a damaged index gets no server either)
        return False
    return manifest is not None and manifest.chunks > 0


def rss_bytes() -> int | None:
    """This process's resident memory (Linux /proc; elsewhere the peak, or None)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return None


def servers() -> list[dict[str, Any]]:
    """The ping answers of this user's running servers (each with its socket `path`);
    sockets nobody listens on any more are removed on the way."""
    try:
        base = socket_dir()
    except OSError:
        return []
    found = []
    for path in sorted(base.glob("*.sock")):
        answer = _request_at(path, {"op": "ping"}, timeout=1.0)
        if answer is None:
            if _dead_socket(path):
                _clear_path(path)
            continue
        found.append({**answer, "path": str(path)})
    return found


def _dead_socket(path: Path) -> bool:
    """Nothing listens there (refused), or it is no socket at all; a busy server is alive."""
    import errno
    import stat

    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return True
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
        return False
    except FileNotFoundError:
        return False
    except OSError as err:
        return err.errno in (errno.ECONNREFUSED, errno.ENOTSOCK)


def evict_least_recent(keep_at_most: int, keep: Path | None = None) -> list[int]:
    """Stop this user's least recently used standalone servers until at most
    `keep_at_most` others than `keep` run; returns the pids asked to stop."""
    others = [s for s in servers() if s.get("standalone") and s["path"] != str(keep)]
    others.sort(key=lambda s: float(s.get("last_used_at") or 0.0))
    stopped = []
    for server in others[: max(0, len(others) - max(0, keep_at_most))]:
        if _request_at(Path(server["path"]), {"op": "stop"}, timeout=5.0):
            stopped.append(int(server.get("pid") or 0))
    return stopped


def _answer(state: _State, payload: dict[str, Any], to_json: Any) -> dict[str, Any]:
    op = payload.get("op")
    if op not in ("ping", "stop"):  # asking after a server is no use of it
        state.last_used = time.monotonic()
        state.last_used_at = time.time()
    if op == "ping":
        return {"ok": True, "pid": os.getpid(), "index": str(state.index_dir), "protocol": PROTOCOL,
                "standalone": state.standalone, "last_used_at": state.last_used_at,
                "queries": state.queries, "rss_bytes": rss_bytes()}
    if op == "stop":
        return {"ok": True}
    if op in ("search", "cli_query"):
        from codesearch.search.options import checked_options

        if payload.get("protocol", PROTOCOL) != PROTOCOL:
            return {"ok": False, "stale": True,
                    "error": f"this query server speaks protocol {PROTOCOL}, not {payload['protocol']}"}

        state.queries += 1
        with state.lock:
            options = checked_options(options_from_dict(payload.get("options", {})))
            result = state.index.run(clean_query(str(payload.get("query", ""))), options)
            data = to_json(result, str(state.index_dir), state.index.searcher().manifest.model)
        if op == "cli_query":  # the thin client (cli/thin.py) prints this as it is
            return {"ok": True, "stdout": _cli_text(data, payload)}
        return {"ok": True, "result": data}
    return {"ok": False, "error": f"unknown request '{op}'"}


def _cli_text(data: dict[str, Any], payload: dict[str, Any]) -> str:
    """What `codesearch query` prints for this result on the client's terminal."""
    from codesearch.search.render import answer_text

    lines, terminal = payload.get("lines"), payload.get("terminal")
    if not isinstance(lines, int) or lines < 1 or not isinstance(terminal, dict):
        raise ValueError("cli_query needs lines (at least 1) and terminal")
    return answer_text(data, lines, bool(payload.get("json")), terminal)
