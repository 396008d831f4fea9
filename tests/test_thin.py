"""The thin client: `codesearch query` answered by a warm server without loading the CLI."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from codesearch.cli import thin
from codesearch.cli.main import app
from codesearch.core.types import INDEX_DIRNAME
from codesearch.search import render
from codesearch.serve import daemon
from tests.conftest import wait_for_server

HEAVY = ("typer", "rich", "numpy", "lancedb", "onnxruntime", "click", "torch")
QUERY = "least recently used cache"


def _console_script(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The `codesearch` console script's own entry point (`codesearch:main`)."""
    code = "import sys, codesearch; sys.argv = ['codesearch', *sys.argv[1:]]; codesearch.main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=300)


def _full_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The full CLI (`python -m codesearch` never takes the thin path), same server."""
    return subprocess.run([sys.executable, "-m", "codesearch", *args], cwd=cwd, text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=300)


@pytest.fixture()
def served(minirepo: Path) -> Iterator[Path]:
    """An indexed copy of the fixture repository with its warm server running."""
    done = _full_cli(["index", "-q"], minirepo)
    assert done.returncode == 0, done.stderr
    first = _full_cli(["query", QUERY, "-k", "1"], minirepo)  # starts the server
    assert first.returncode == 0, first.stderr
    index_dir = minirepo / INDEX_DIRNAME
    wait_for_server(index_dir)
    try:
        yield minirepo
    finally:
        daemon.stop(index_dir)


def test_the_fast_path_imports_none_of_the_heavy_modules(served: Path) -> None:
    code = (
        "import atexit, sys\n"
        f"heavy = {HEAVY!r}\n"
        "atexit.register(lambda: print('HEAVY', sorted(m for m in heavy if m in sys.modules), file=sys.stderr))\n"
        f"sys.argv = ['codesearch', 'query', {QUERY!r}, '--json', '-k', '2']\n"
        "import codesearch\n"
        "codesearch.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=served / "web", text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr
    data = json.loads(done.stdout)
    assert data["results"][0]["path"] == "java/com/example/LruCache.java"
    assert data["index"] == str((served / INDEX_DIRNAME).resolve())


def _without_timings(text: str) -> dict[str, object]:
    data = json.loads(text)
    assert set(data["timings_ms"]) >= {"total"}
    data.pop("timings_ms")
    return data


@pytest.mark.parametrize("args", [
    [QUERY, "--json", "-k", "3"],
    ["--lang", "python", "--json", "--top=2", "join a url"],
    ["ReverseString", "--mode", "text", "--json", "--content", "all"],
    ["parse config file", "--json", "--per-file", "1", "-k", "4"],
])
def test_json_is_the_full_clis_json(served: Path, args: list[str]) -> None:
    fast, full = _console_script(["query", *args], served), _full_cli(["query", *args], served)
    assert fast.returncode == full.returncode == 0, fast.stderr + full.stderr
    # Byte for byte but for the timings of two different searches: the same document,
    # written out the way `print_json` writes it.
    assert _without_timings(fast.stdout) == _without_timings(full.stdout)
    assert fast.stdout == render.json_text(json.loads(fast.stdout))
    assert full.stdout == render.json_text(json.loads(full.stdout))


@pytest.mark.parametrize("env", [{}, {"COLUMNS": "57", "FORCE_COLOR": "1"}, {"NO_COLOR": "1", "FORCE_COLOR": "1"},
                                 {"TERM": "dumb", "FORCE_COLOR": "1"}])
def test_text_is_the_full_clis_text_byte_for_byte(served: Path, env: dict[str, str]) -> None:
    args = ["query", QUERY, "-k", "3", "--lines", "4"]
    fast, full = _console_script(args, served, **env), _full_cli(args, served, **env)
    assert fast.returncode == full.returncode == 0, fast.stderr + full.stderr
    assert fast.stdout == full.stdout and "LruCache.java" in fast.stdout
    if env.get("COLUMNS"):
        assert "\x1b[" in fast.stdout  # coloured as on a terminal, at its width


def _on_a_terminal(argv: list[str], cwd: Path, columns: int) -> bytes:
    """What `argv` writes to a real pseudo-terminal `columns` wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in thin.TERMINAL_ENV}
    proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm-256color"})
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                part = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not part:
                break
            out += part
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, out
    return out


def test_on_a_terminal_colours_and_width_are_the_full_clis(served: Path) -> None:
    fast = ["-c", "import sys, codesearch; sys.argv = ['codesearch', *sys.argv[1:]]; codesearch.main()"]
    args = ["query", QUERY, "-k", "2", "--lines", "3"]
    mine = _on_a_terminal([sys.executable, *fast, *args], served, 64)
    theirs = _on_a_terminal([sys.executable, "-m", "codesearch", *args], served, 64)
    assert mine == theirs and b"\x1b[" in mine and b"LruCache.java" in mine


@pytest.mark.parametrize("argv", [
    [QUERY, "--store", "s3://bucket"], [QUERY, "--no-daemon"], ["--help"], [QUERY, "-h"],
    [QUERY, "--json=yes"], [QUERY, "-k"], [QUERY, "two words", "apart"], [], [QUERY, "--lines", "0"],
    [QUERY, "-k", "three"], [QUERY, "--unknown"], ["-5"],
])
def test_anything_unusual_is_left_to_the_full_cli(served: Path, argv: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(served)
    assert thin.run(argv) is None


def test_no_server_no_index_or_no_daemon_is_left_to_the_full_cli(
        served: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert thin.run([QUERY]) is None  # no index here or above
    monkeypatch.chdir(served)
    monkeypatch.setenv("CODESEARCH_NO_DAEMON", "1")
    assert thin.run([QUERY]) is None
    monkeypatch.delenv("CODESEARCH_NO_DAEMON")
    daemon.stop(served / INDEX_DIRNAME)
    deadline = time.monotonic() + 30  # the server answers `stop` first, then shuts down
    while daemon.request(served / INDEX_DIRNAME, {"op": "ping"}, timeout=1.0) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert thin.run([QUERY]) is None


def test_a_bad_option_gets_the_full_clis_one_line_error(served: Path) -> None:
    for args, code in ((["query", QUERY, "-k", "0"], 2), (["query", QUERY, "--mode", "fuzzy"], 2)):
        fast, full = _console_script(args, served), _full_cli(args, served)
        assert fast.returncode == full.returncode == code
        assert fast.stderr == full.stderr and fast.stderr.startswith("error:") and fast.stdout == ""


@pytest.mark.parametrize(("argv", "expected"), [
    (["q"], {"text": "q"}),
    (["-k3", "q", "--json"], {"text": "q", "k": 3, "as_json": True}),
    (["--top=5", "--lang", "go", "--lang=rust", "q"], {"text": "q", "k": 5, "lang": ["go", "rust"]}),
    (["--", "-starts-with-a-dash"], {"text": "-starts-with-a-dash"}),
    (["q", "--index", "../x", "--no-rerank", "--rerank-top", "7"],
     {"text": "q", "index_path": "../x", "no_rerank": True, "rerank_top": 7}),
])
def test_parse_reads_the_command_line_as_click_does(argv: list[str], expected: dict[str, object]) -> None:
    parsed = thin.parse(argv)
    assert {k: parsed[k] for k in expected} == expected
    assert {k: v for k, v in parsed.items() if k not in expected} == \
        {k: v for k, v in thin._DEFAULTS.items() if k not in expected}


def test_the_option_table_matches_the_query_command() -> None:
    # typer may vendor its own click: the parameters are compared by their attributes.
    command = typer.main.get_command(app)
    params = {opt: p for p in command.commands["query"].params for opt in p.opts}  # type: ignore[attr-defined]
    for spelling, (name, kind) in thin._OPTIONS.items():
        param = params[spelling]
        assert param.name == name
        assert thin._DEFAULTS[name] == (param.default if param.default is not None or kind != "list" else [])
        if kind == "flag":
            assert param.is_flag
        elif kind == "list":
            assert param.multiple
        elif kind == "int":
            assert param.type.name in ("int", "integer")


def test_socket_path_agrees_with_the_server(tmp_path: Path) -> None:
    for folder in (tmp_path / "a" / INDEX_DIRNAME, Path("relative") / INDEX_DIRNAME):
        expected = daemon.socket_path(folder)  # makes the socket folder, as a server does
        assert thin.socket_path(folder) == expected


def test_a_server_speaking_another_protocol_stops_and_the_query_is_answered_here(served: Path) -> None:
    """A warm server outlives an upgrade of codesearch by up to its idle time: a request of
    another protocol gets a "stale" answer, the server stops, and the CLI searches itself."""
    index_dir = served / INDEX_DIRNAME
    payload = {"op": "search", "protocol": daemon.PROTOCOL + 1, "query": QUERY, "options": {"k": 1}}
    answer = daemon.request(index_dir, payload)
    assert answer is not None and answer["ok"] is False and answer["stale"] is True
    assert f"protocol {daemon.PROTOCOL}" in answer["error"]
    deadline = time.monotonic() + 30
    while daemon.request(index_dir, {"op": "ping"}, timeout=2.0) is not None:
        assert time.monotonic() < deadline, "the stale server kept running"
        time.sleep(0.1)
    done = _console_script(["query", QUERY, "--json", "-k", "1"], served)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["path"] == "java/com/example/LruCache.java"
    wait_for_server(index_dir)  # the query started a server of its own protocol
    current = dict(payload, protocol=daemon.PROTOCOL)
    assert daemon.request(index_dir, current)["ok"] is True


def test_a_socket_folder_open_to_others_is_not_trusted(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = tmp_path / f"codesearch-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    with pytest.raises(thin._Unsure):
        thin.socket_path(tmp_path / INDEX_DIRNAME)
    folder.chmod(0o700)
    assert thin.socket_path(tmp_path / INDEX_DIRNAME).parent == folder
