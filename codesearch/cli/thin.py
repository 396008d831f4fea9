"""`codesearch query` through a warm server, without loading the CLI.

Starting Python and importing typer, rich and the search stack costs most of a query
from the shell (333 ms median with the server warm, 12-32 ms of it searching). When
the index's warm server answers, this module forwards the parsed command line and a
description of the terminal over its socket and prints the server's rendered answer:
the server renders with the CLI's own code (search/render.py), so text and JSON are
byte for byte what the full command prints.

It imports only the standard library (never typer, rich, numpy, lancedb or
onnxruntime: tests/test_thin.py checks). Whenever it is unsure (an option it does not
know, no index, no server, any error) `run` returns None and the full CLI handles the
command, starting a server if one is worth it.

A query started with a first build waits here for its full-text tier: the indexing
process answers it then. Waiting without the CLI's imports leaves both cores to the
build (the full CLI's wait imported the search stack meanwhile, 0.7 s of CPU).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
from pathlib import Path

from codesearch.core.lockprobe import lock_is_held
from codesearch.core.wire import (
    INDEX_DIRNAME,
    PROTOCOL,
    ROWS_MARKER,
    TERMINAL_ENV,
    WAITING_MARKER,
    socket_folder,
    socket_name,
)

TYPE_CHECKING = False  # not `from typing import ...`: importing typing costs 2 ms here
if TYPE_CHECKING:
    from typing import Any

TIMEOUT = 30.0
# A query started with a first build waits this long for its full-text tier, saying so
# (the full CLI's wait, cli.main, uses both too).
WAIT_TIMEOUT = 900.0
WAITING = "waiting for `codesearch index` to finish the full-text tier"

# `codesearch query` options this client understands, by spelling -> (name, kind). Any
# other (--store, --repo, --no-daemon, --help, ...) is left to the full CLI; a test
# checks that every name here is an option of the typer command with the same meaning.
_OPTIONS: dict[str, tuple[str, str]] = {
    "-k": ("k", "int"), "--top": ("k", "int"), "--mode": ("mode", "str"),
    "--lang": ("lang", "list"), "--path": ("path_glob", "str"), "--content": ("content", "str"),
    "--lines": ("lines", "int"), "--index": ("index_path", "str"), "--json": ("as_json", "flag"),
    "--rerank": ("rerank", "str"), "--rerank-top": ("rerank_top", "int"),
    "--no-rerank": ("no_rerank", "flag"), "--query-model": ("query_model", "str"),
    "--per-file": ("per_file", "int"),
}
_DEFAULTS: dict[str, Any] = {
    "k": 10, "mode": "hybrid", "lang": [], "path_glob": None, "content": "code", "lines": 8,
    "index_path": None, "as_json": False, "rerank": None, "rerank_top": 40, "no_rerank": False,
    "query_model": None, "per_file": 0,
}


class _Unsure(Exception):
    """Leave this command to the full CLI."""


def run(argv: list[str]) -> int | None:
    """Answer `codesearch query ARGV` from a warm server: the exit code, or None when the
    full CLI must handle it (nothing has been printed then)."""
    try:
        if os.environ.get("CODESEARCH_NO_DAEMON", "") not in ("", "0"):
            return None
        args = parse(argv)
        index_dir = find_index(Path.cwd(), args["index_path"], quiet=args["as_json"])
        answer = _request(socket_path(index_dir), _payload(args), TIMEOUT)
        if answer is None or not answer.get("ok") or not isinstance(answer.get("stdout"), str):
            return None
        # Encoded before anything is written: a terminal that cannot show the answer gets the
        # full CLI's own failure, not half an answer.
        data = answer["stdout"].encode(sys.stdout.encoding or "utf-8", sys.stdout.errors or "strict")
    except Exception:  # noqa: BLE001 (any doubt: the full CLI answers, and says what is wrong)
        return None
    finally:
        _stop_waiting()
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:  # `codesearch query ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def parse(argv: list[str]) -> dict[str, Any]:
    """The query command's arguments as click would read them, or _Unsure."""
    args = dict(_DEFAULTS, lang=[])
    text: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--":
            text.extend(items)
            break
        if not item.startswith("-") or item == "-":
            text.append(item)
            continue
        name, value = _option(item, items)
        if _OPTIONS[name][1] == "flag":
            args[_OPTIONS[name][0]] = True
        elif _OPTIONS[name][1] == "list":
            args[_OPTIONS[name][0]].append(value)
        elif _OPTIONS[name][1] == "int":
            args[_OPTIONS[name][0]] = int(value)  # click's INT: int() of the text
        else:
            args[_OPTIONS[name][0]] = value
    if len(text) != 1 or args["lines"] < 1:
        raise _Unsure()
    args["text"] = text[0]
    return args


def _option(item: str, rest: Any) -> tuple[str, str | None]:
    """(spelling, value) of one option; its value may be attached (`--k=3`, `-k3`) or next."""
    if item.startswith("--"):
        name, equals, attached = item.partition("=")
        value: str | None = attached if equals else None
    else:
        name, value = item[:2], (item[2:] or None)
    kind = _OPTIONS.get(name, ("", "unknown"))[1]
    if kind == "unknown" or (kind == "flag" and value is not None):
        raise _Unsure()
    if kind != "flag" and value is None:
        value = next(rest, None)
        if value is None:
            raise _Unsure()
    return name, value


def _payload(args: dict[str, Any]) -> dict[str, Any]:
    rerank = None if args["no_rerank"] else (args["rerank"] or os.environ.get("CODESEARCH_RERANK")
                                             or None)
    options = {"k": args["k"], "mode": args["mode"], "languages": args["lang"],
               "path_glob": args["path_glob"], "content": args["content"], "rerank": rerank,
               "rerank_top": args["rerank_top"], "query_model": args["query_model"],
               "per_file": args["per_file"]}
    return {"op": "cli_query", "protocol": PROTOCOL, "query": args["text"], "options": options,
            "lines": args["lines"], "json": args["as_json"], "terminal": terminal()}


def terminal() -> dict[str, Any]:
    """What rich's Console() would detect here (search.render.client_console rebuilds it)."""
    size = None
    for fd in (0, 1, 2):  # rich measures the first of stdin, stdout, stderr that is a terminal
        try:
            size = tuple(os.get_terminal_size(fd))
            break
        except (AttributeError, ValueError, OSError):
            continue
    try:
        isatty = sys.stdout.isatty()
    except ValueError:
        isatty = False
    environ = {k: os.environ[k] for k in TERMINAL_ENV if k in os.environ}
    return {"isatty": isatty, "encoding": (sys.stdout.encoding or "utf-8").lower(), "size": size,
            "environ": environ}


def find_index(start: Path, explicit: str | None, quiet: bool = True) -> Path:
    """The index folder the full CLI would search, once queryable (a first build is waited
    for), if a server may answer for it (writable, not empty); else _Unsure."""
    if explicit is not None:
        path = Path(explicit)
        index_dir = path if path.name == INDEX_DIRNAME else path / INDEX_DIRNAME
    else:
        index_dir = _walk_up(start.resolve())
    manifest = _queryable_manifest(index_dir, quiet)
    empty = manifest is not None and not (manifest.get("chunks", 0) or 0) > 0
    if not os.access(index_dir, os.W_OK) or empty:
        raise _Unsure()
    return index_dir


def _walk_up(here: Path) -> Path:
    for folder in (here, *here.parents):
        candidate = folder / INDEX_DIRNAME
        # A lock without a manifest: a first build is starting there.
        if (candidate / "manifest.json").exists() or (candidate / "lock").exists():
            return candidate
    raise _Unsure()


def _queryable_manifest(index_dir: Path, quiet: bool) -> dict[str, Any] | None:
    """The manifest once it says the index answers; while a first build writes its
    full-text tier, wait; None once that build answers from the rows it holds in memory
    (its server is bound then). _Unsure if no build is running (the full CLI says why)."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    said = False
    while True:
        building = lock_is_held(index_dir)  # looked at first: a build may end in between
        manifest = _manifest(index_dir)
        if manifest is not None and (manifest.get("indexed_at", 0) or 0) > 0:
            return manifest
        if not building or time.monotonic() > deadline:
            raise _Unsure()
        if (index_dir / ROWS_MARKER).exists():
            return None
        if not said:
            _start_waiting(index_dir)
            if not quiet:
                print(WAITING, file=sys.stderr, flush=True)
            said = True
        time.sleep(0.02)


_waiting: list[Path] = []  # this process's marker, while it has one


def _start_waiting(index_dir: Path) -> None:
    marker = index_dir / f"{WAITING_MARKER}{os.getpid()}"
    try:
        marker.touch()
    except OSError:
        return  # the build just builds its indexes first
    _waiting.append(marker)


def _stop_waiting() -> None:
    while _waiting:
        marker = _waiting.pop()
        try:
            marker.unlink()
        except OSError:
            continue  # gone already, or the folder with it


def _manifest(index_dir: Path) -> dict[str, Any] | None:
    """None while there is none yet; _Unsure if it cannot be read."""
    try:
        manifest = json.loads((index_dir / "manifest.json").read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise _Unsure() from err
    if not isinstance(manifest, dict):
        raise _Unsure()
    return manifest


def socket_path(index_dir: Path) -> Path:
    """serve.daemon.socket_path, without importing the server or making its folder.
    Only in a folder of this user's that nobody else may enter (as the server checks):
    a socket planted by someone else would read the queries and write the answers."""
    folder = socket_folder()
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise _Unsure()
    return folder / socket_name(index_dir)


def _request(path: Path, payload: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """One JSON line to the server, one back; None if no server answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(payload).encode() + b"\n")
        parts = []
        while True:
            part = sock.recv(1 << 16)
            if not part:
                break
            parts.append(part)
            if part.endswith(b"\n"):
                break
    answer = json.loads(b"".join(parts)) if parts else None
    return answer if isinstance(answer, dict) else None
