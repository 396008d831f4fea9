"""A warm query process per index, so `codesearch query` answers in well under a second.

Importing lancedb costs about 2 s and a model more; a CLI process that paid
that on every query could never be fast. The first query starts this server
in the background (one per index, on a Unix socket); later queries send it a
line of JSON and get the result back. It reloads the index whenever the
manifest changes (never stale after a re-index) and exits after an idle
timeout. Any failure to reach it falls back to searching in-process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

PROTOCOL = 1
DEFAULT_IDLE_SECONDS = 900.0


def socket_path(index_dir: Path) -> Path:
    """Short and per-user: Unix socket paths are limited to about 100 bytes."""
    key = hashlib.blake2b(str(index_dir.resolve()).encode(), digest_size=8).hexdigest()
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"codesearch-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    return base / f"{key}.sock"


def request(index_dir: Path, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any] | None:
    """Send one request to the index's server; None if no server answers."""
    path = socket_path(index_dir)
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
        return json.loads(data) if data else None
    except (OSError, ValueError):
        return None


def launch_detached(args: list[str], index_dir: Path, log_name: str) -> subprocess.Popen[bytes]:
    """`python -m codesearch ARGS` in its own session, output appended to index_dir/log_name.

    It runs from the index folder: `python -m` puts the cwd first on sys.path, and a
    repository with a top-level `numpy/` or `rich/` folder would shadow installed packages.
    """
    from codesearch.core.process import launch_detached as launch

    index_dir = index_dir.resolve()
    return launch([sys.executable, "-m", "codesearch", *args], index_dir, index_dir / log_name)


def _launch(index_dir: Path, idle_seconds: float) -> subprocess.Popen[bytes]:
    index_dir = index_dir.resolve()
    return launch_detached(["serve", "--index", str(index_dir), "--idle", str(idle_seconds)],
                           index_dir, "daemon.log")


def start(index_dir: Path, idle_seconds: float = DEFAULT_IDLE_SECONDS, wait: float = 60.0) -> bool:
    """Start a server for this index in the background and wait until it answers."""
    proc = _launch(index_dir, idle_seconds)
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
    def __init__(self, index_dir: Path, idle_seconds: float, embedder: Any = None):
        from codesearch.api import Index

        self.index_dir = index_dir
        self.idle_seconds = idle_seconds
        self.last_used = time.monotonic()
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
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            try:
                payload = json.loads(line)
                answer = _answer(state, payload, result_to_json)
            except Exception as err:  # noqa: BLE001 (the client shows the one line)
                answer = {"ok": False, "error": str(err).splitlines()[0] if str(err) else repr(err)}
            self.wfile.write(json.dumps(answer).encode() + b"\n")
            if payload_is_stop(line):
                threading.Thread(target=server.shutdown, daemon=True).start()

    server = _Server(str(path), Handler)
    os.chmod(path, 0o600)
    server.socket_inode = os.stat(path).st_ino
    return server


def serve(index_dir: Path, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> int:
    if request(index_dir, {"op": "ping"}, timeout=2.0):
        return 0  # another server already answers for this index
    state = _State(index_dir, idle_seconds)
    server = _bind(state)
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
        self.server = _bind(self.state)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="codesearch-query-server", daemon=True)
        self.thread.start()

    def lend_embedder(self, embedder: Any) -> None:
        with self.state.lock:
            self.state.index.lend_embedder(embedder)

    def load_catalog(self) -> None:
        """Read the chunk catalog now (the rows are written, the index not yet declared
        queryable): the first query, a moment later, then finds it loaded."""
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
        self.server.shutdown()
        self.server.server_close()
        _unlink_if_ours(self.index_dir, self.server)

    def hand_over(self) -> None:
        """Stop serving; if anyone queried meanwhile, leave a standalone server behind."""
        self.close()
        if self.queries:
            spawn(self.index_dir)


def serve_in_thread(index_dir: Path, embedder: Any = None) -> ThreadServer | None:
    """Start answering queries for this index on a thread; None if a server already answers."""
    if request(index_dir, {"op": "ping"}, timeout=2.0):
        return None
    try:
        return ThreadServer(index_dir, embedder)
    except OSError:
        return None  # no socket here (permissions, path): queries fall back as usual


def serve_while_indexing(index_dir: Path) -> ThreadServer | None:
    """The `serve` hook of `build_index`: answer queries from the indexing process
    while it embeds, unless CODESEARCH_NO_DAEMON is set or a server already answers."""
    if os.environ.get("CODESEARCH_NO_DAEMON", "") not in ("", "0"):
        return None
    return serve_in_thread(index_dir)


def spawn(index_dir: Path, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
    """Start a standalone server without waiting for it (an indexer hands over on exit)."""
    with contextlib.suppress(OSError):
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


def _answer(state: _State, payload: dict[str, Any], to_json: Any) -> dict[str, Any]:
    op = payload.get("op")
    state.last_used = time.monotonic()
    if op == "ping":
        return {"ok": True, "pid": os.getpid(), "index": str(state.index_dir), "protocol": PROTOCOL}
    if op == "stop":
        return {"ok": True}
    if op == "search":
        state.queries += 1
        with state.lock:
            options = options_from_dict(payload.get("options", {}))
            result = state.index.run(payload["query"], options)
            data = to_json(result, str(state.index_dir), state.index.searcher().manifest.model)
        return {"ok": True, "result": data}
    return {"ok": False, "error": f"unknown request '{op}'"}
