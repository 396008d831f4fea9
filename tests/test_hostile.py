"""Hostile states, for real: `python -m codesearch` in subprocesses against real indexes
that are read-only, truncated, deleted in parts, killed with SIGKILL mid-build or
mid-rebuild, fed bad arguments, odd queries and odd file names.

Every case checks the exit code, that what the user reads is one line (never a
traceback), and that a normal `index` and `query` afterwards work and lose nothing.
docs/reliability.md has the table of these states and what each prints.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, wait_for_server

pytestmark = pytest.mark.slow

PORTS_QUERY = "call_with_retries"  # minirepo: defined in src/net/retry.py
PORTS_FILE = "src/net/retry.py"
GEN_FILES = 120
GEN_QUERY = "split_gamma_7"  # defined in pkg7/mod_7.py (see _generate)
GEN_FILE = "pkg7/mod_7.py"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def line(self) -> str:
        """The one line on stderr (asserted: no traceback anywhere, exactly one line)."""
        assert "Traceback" not in self.out + self.err, self.out + self.err
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, self.err
        return lines[0]

    def json(self) -> dict:
        return json.loads(self.out)


def cli(args: list[str | bytes], cwd: Path, *, prefix: tuple[str, ...] = (), daemon: bool = False,
        env: dict[str, str] | None = None, timeout: float = 240) -> Run:
    """`python -m codesearch ARGS` (in-process search unless `daemon`)."""
    environ = dict(os.environ)
    environ.pop("CODESEARCH_NO_DAEMON", None)
    if not daemon:
        environ["CODESEARCH_NO_DAEMON"] = "1"
    environ.update(env or {})
    proc = subprocess.run([*prefix, sys.executable, "-m", "codesearch", *args], cwd=cwd, env=environ,
                          capture_output=True, timeout=timeout, check=False)
    return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"),
               proc.stderr.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Expected:
    files: int
    chunks: int


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)  # copy2: mtimes kept, the index stays fresh
    return target


def assert_whole(root: Path, expected: Expected, *, rebuild: bool = False) -> None:
    """A normal index run works and the index holds everything again."""
    args = ["index", "--lexical-only", "--json", *(["--rebuild"] if rebuild else [])]
    done = cli(args, root)
    assert done.code == 0, done.err
    summary = done.json()
    assert (summary["files"], summary["chunks"]) == (expected.files, expected.chunks)
    query, path = (PORTS_QUERY, PORTS_FILE) if expected.files < GEN_FILES else (GEN_QUERY, GEN_FILE)
    found = cli(["query", query, "--mode", "text", "--json"], root)
    assert found.code == 0, found.err
    data = found.json()
    assert data["chunks"] == expected.chunks and data["results"][0]["path"] == path


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    """minirepo with a finished full-text index."""
    root = copy_tree(FIXTURES / "minirepo", tmp_path_factory.mktemp("mini") / "repo")
    done = cli(["index", "--lexical-only", "--json"], root)
    assert done.code == 0, done.err
    summary = done.json()
    found = cli(["query", PORTS_QUERY, "--mode", "text", "--json"], root).json()
    assert found["results"][0]["path"] == PORTS_FILE
    return root, Expected(summary["files"], summary["chunks"])


@pytest.fixture()
def indexed(mini: tuple[Path, Expected], tmp_path: Path) -> tuple[Path, Expected]:
    return copy_tree(mini[0], tmp_path / "repo"), mini[1]


# --- a read-only index ------------------------------------------------------------


@contextmanager
def read_only(folder: Path) -> Iterator[tuple[str, ...]]:
    """A command prefix under which `folder` cannot be written. Root writes through any
    permission, so as root a read-only bind mount in a mount namespace of the command's
    own (EROFS, as on a read-only share); otherwise the permissions themselves."""
    if os.geteuid() == 0:
        script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
        probe = subprocess.run(["unshare", "-m", "sh", "-c", script, str(folder), "sh", "-c",
                                f'! touch "{folder}/probe" 2>/dev/null'], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip("running as root without mount namespaces: no folder can be read-only")
        yield ("unshare", "-m", "sh", "-c", script, str(folder))
        return
    paths = [folder, *folder.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(modes[p] & ~0o222)
    try:
        yield ()
    finally:
        for p in reversed(paths):
            p.chmod(modes[p])


def test_a_read_only_index_answers_queries_and_refuses_to_index(indexed: tuple[Path, Expected]) -> None:
    root, expected = indexed
    index_dir = root / ".codesearch"
    with read_only(index_dir) as prefix:
        found = cli(["query", PORTS_QUERY, "--mode", "text", "--json"], root, prefix=prefix, daemon=True)
        assert found.code == 0
        assert "read-only: searching without the warm server" in found.line()
        assert found.json()["results"][0]["path"] == PORTS_FILE
        for args in (["index", "."], ["index", "--rebuild", "."]):
            refused = cli(args, root, prefix=prefix)
            assert refused.code == 1 and "read-only" in refused.line()
        status = cli(["status", "--json"], root, prefix=prefix)
        assert status.code == 0 and status.json()["damaged"] is None
    assert not (index_dir / "daemon.log").exists()  # no server was even tried
    assert_whole(root, expected)


# --- damaged files ------------------------------------------------------------------


def _truncate_manifest(index_dir: Path) -> None:
    path = index_dir / "manifest.json"
    path.write_bytes(path.read_bytes()[:200])


def _truncate_data(index_dir: Path) -> None:
    for path in (index_dir / "lance" / "chunks.lance" / "data").iterdir():
        os.truncate(path, path.stat().st_size // 3)


def _truncate_version(index_dir: Path) -> None:
    # Lance names versions u64::MAX - n: the newest sorts first.
    newest = sorted((index_dir / "lance" / "chunks.lance" / "_versions").glob("*.manifest"))[0]
    os.truncate(newest, 10)


def _delete_table(index_dir: Path) -> None:
    shutil.rmtree(index_dir / "lance" / "files.lance")


def _garble_model_record(index_dir: Path) -> None:
    path = index_dir / "manifest.json"
    data = json.loads(path.read_text())
    data["profile"] = {"bogus": 1}
    path.write_text(json.dumps(data))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated manifest": _truncate_manifest,
    "truncated Lance data file": _truncate_data,
    "truncated Lance version file": _truncate_version,
    "deleted table folder": _delete_table,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_reported_in_one_line_and_rebuild_repairs_it(
    indexed: tuple[Path, Expected], damage: str
) -> None:
    root, expected = indexed
    DAMAGE[damage](root / ".codesearch")
    status = cli(["status"], root)
    assert status.code == 1 and "Traceback" not in status.out + status.err
    assert "damaged: " in status.out and "codesearch index --rebuild" in status.out
    assert not status.err.strip()
    found = cli(["query", PORTS_QUERY, "--mode", "text"], root)
    assert found.code == 1 and "codesearch index --rebuild" in found.line()
    if damage != "truncated Lance data file":  # a write that reads no old data may succeed
        # An index run that has to write meets the damage too, and says so in one line.
        (root / "src" / "extra.py").write_text("def extra_helper():\n    return 1\n")
        updated = cli(["index", "--lexical-only"], root)
        (root / "src" / "extra.py").unlink()
        assert updated.code == 1 and "--rebuild" in updated.line()
    assert_whole(root, expected, rebuild=True)
    assert not (root / ".codesearch.rebuild").exists()


def test_a_garbled_model_record(indexed: tuple[Path, Expected]) -> None:
    """Full-text search needs no model: it still answers; status and index say what is wrong."""
    root, expected = indexed
    _garble_model_record(root / ".codesearch")
    status = cli(["status"], root)
    assert status.code == 1 and "damaged: its manifest's model record is unreadable" in status.out
    assert cli(["query", PORTS_QUERY, "--mode", "text"], root).code == 0
    refused = cli(["index", "--lexical-only"], root)
    assert refused.code == 1 and "unreadable model record" in refused.line()
    assert_whole(root, expected, rebuild=True)


def test_status_reports_the_damage_as_json(indexed: tuple[Path, Expected]) -> None:
    root, _ = indexed
    _delete_table(root / ".codesearch")
    status = cli(["status", "--json"], root)
    assert status.code == 1
    assert status.json()["damaged"].startswith("table files is missing")


def test_an_index_folder_that_is_a_file_is_replaced_by_rebuild(indexed: tuple[Path, Expected]) -> None:
    root, expected = indexed
    shutil.rmtree(root / ".codesearch")
    (root / ".codesearch").write_text("not a folder")
    refused = cli(["index", "--lexical-only"], root)
    assert refused.code == 1 and "--rebuild" in refused.line()
    assert_whole(root, expected, rebuild=True)


# --- the warm servers ---------------------------------------------------------------


def _socket(root: Path) -> Path:
    from codesearch.serve.daemon import socket_path

    return socket_path(root / ".codesearch")


def _stop(root: Path) -> None:
    cli(["stop-server", str(root)], root)
    deadline = time.monotonic() + 10
    while _socket(root).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_garbage_at_the_socket_path_is_cleared(indexed: tuple[Path, Expected]) -> None:
    root, _ = indexed
    socket = _socket(root)
    for plant in (lambda: socket.write_text("garbage"), lambda: (socket / "deep").mkdir(parents=True)):
        plant()
        found = cli(["query", PORTS_QUERY, "--mode", "text", "--json"], root, daemon=True)
        assert found.code == 0 and "Traceback" not in found.err, found.err
        assert found.json()["results"][0]["path"] == PORTS_FILE
        wait_for_server(root / ".codesearch")  # started once the first answer is out
        assert socket.is_socket()  # a server took the path over
        _stop(root)
    # The socket folder itself is garbage: queries run in this process.
    folder = socket.parent
    shutil.rmtree(folder)
    folder.write_text("garbage")
    try:
        found = cli(["query", PORTS_QUERY, "--mode", "text", "--json"], root, daemon=True)
        assert found.code == 0 and not found.err.strip(), found.err
        assert found.json()["results"][0]["path"] == PORTS_FILE
    finally:
        folder.unlink()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_dead(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process checks read /proc")
def test_warm_servers_are_bounded_least_recently_used_first(
    mini: tuple[Path, Expected], tmp_path: Path
) -> None:
    from codesearch.serve.daemon import servers

    roots = [copy_tree(mini[0], tmp_path / name) for name in ("a", "b")]
    empty = tmp_path / "empty"
    empty.mkdir()
    limit = {"CODESEARCH_MAX_SERVERS": "1"}
    pids = {}
    try:
        for root in roots:
            found = cli(["query", PORTS_QUERY, "--mode", "text"], root, daemon=True, env=limit)
            assert found.code == 0, found.err
            wait_for_server(root / ".codesearch")
            pids[root.name] = next(s["pid"] for s in servers() if s["index"] == str(root / ".codesearch"))
        assert _wait_dead([pids["a"]], 10) == []  # the least recently used one exited
        running = {s["index"] for s in servers() if s.get("standalone")}
        assert running == {str(roots[1] / ".codesearch")}
        status = cli(["status", "--quick"], roots[1])
        assert status.code == 0
        assert f"pid {pids['b']}, " in status.out and " MB, last used " in status.out
        # An empty index gets no server at all.
        assert cli(["index", "--lexical-only", "-q"], empty).code == 0
        answered = cli(["query", "anything", "--mode", "text"], empty, daemon=True, env=limit)
        assert answered.code == 0 and "the index is empty" in answered.out
        assert str(empty / ".codesearch") not in {s["index"] for s in servers()}
    finally:
        for root in roots:
            _stop(root)


# --- kill -9 ------------------------------------------------------------------------


def _generate(root: Path, count: int = GEN_FILES) -> None:
    """Small Python modules, two definitions each."""
    words = ["alpha", "beta", "gamma", "delta", "parse", "render", "merge", "split", "load", "store"]
    for i in range(count):
        a, b = words[i % len(words)], words[(i * 7 + 3) % len(words)]
        folder = root / f"pkg{i % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod_{i}.py").write_text(
            f'"""Module {i}: {a} and {b}."""\n\n\ndef {a}_{b}_{i}(items):\n'
            f'    """{a.title()} the {b} items, number {i}."""\n    total = 0\n'
            f"    for item in items:\n        total += len(str(item)) * {i}\n    return total\n\n\n"
            f"class {a.title()}{b.title()}{i}:\n    def run(self, value):\n"
            f"        return {a}_{b}_{i}([value])\n"
        )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    """A tree of GEN_FILES small files with a finished full-text index."""
    root = tmp_path_factory.mktemp("gen") / "tree"
    _generate(root)
    done = cli(["index", "--lexical-only", "--json"], root)
    assert done.code == 0, done.err
    summary = done.json()
    assert summary["files"] == GEN_FILES
    return root, Expected(summary["files"], summary["chunks"])


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as fh:
                    children = [int(c) for c in fh.read().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found.append(child)
                    todo.append(child)
    return found


def _manifest(index_dir: Path) -> dict:
    try:
        return json.loads((index_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _has_data(index_dir: Path, table: str) -> bool:
    folder = index_dir / "lance" / f"{table}.lance" / "data"
    return folder.is_dir() and any(folder.iterdir())


# Five points of a run, seen from outside: the chunking pool is up; the manifest is
# written; rows are committed; the full-text tier is recorded; vectors are committed.
POINTS: dict[str, Callable[[int, Path], bool]] = {
    "workers started": lambda pid, d: len(_descendants(pid)) >= 2,
    "manifest written": lambda pid, d: (d / "manifest.json").exists(),
    "rows committed": lambda pid, d: _has_data(d, "chunks"),
    "full-text tier recorded": lambda pid, d: _manifest(d).get("indexed_at", 0) > 0,
    "vectors committed": lambda pid, d: _has_data(d, "vectors"),
}


def _kill_at(root: Path, args: list[str], watched: Path, point: str) -> list[int]:
    """Run `codesearch ARGS`, SIGKILL it when POINT is reached in `watched`; the pids of
    the processes it had started (all asserted gone soon after)."""
    environ = {**os.environ, "CODESEARCH_NO_DAEMON": "1", "CODESEARCH_CHUNK_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "codesearch", *args], cwd=root, env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    children: list[int] = []
    try:
        while not POINTS[point](proc.pid, watched):
            assert proc.poll() is None, f"the run ended before {point}"
            assert time.monotonic() < deadline, f"{point} never came"
            children = _descendants(proc.pid) or children
            time.sleep(0.01)
        children = list(dict.fromkeys(children + _descendants(proc.pid)))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return children


def _true_counts(index_dir: Path) -> tuple[int, int, int]:
    """(files, chunks, chunks without a vector) read from the tables themselves."""
    from codesearch.store.tables import import_lancedb, scan

    db = import_lancedb().connect(str(index_dir / "lance"))
    names = set(getattr(db.list_tables(), "tables", []))
    hashes = scan(db.open_table("chunks"), ["content_hash"])["content_hash"].to_pylist() if "chunks" in names else []
    files = db.open_table("files").count_rows() if "files" in names else 0
    vectors = (set(scan(db.open_table("vectors"), ["content_hash"])["content_hash"].to_pylist())
               if "vectors" in names else set())
    return files, len(hashes), sum(h not in vectors for h in hashes)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="child processes are found in /proc")
@pytest.mark.parametrize("point", list(POINTS))
def test_kill_during_a_first_build(generated: tuple[Path, Expected], tmp_path: Path, point: str) -> None:
    source, expected = generated
    root = tmp_path / "tree"
    shutil.copytree(source, root, ignore=shutil.ignore_patterns(".codesearch"))
    index_dir = root / ".codesearch"
    started = time.time()
    children = _kill_at(root, ["index", "."], index_dir, point)
    assert _wait_dead(children, 5) == [], "processes outlived the killed build"
    manifest = _manifest(index_dir)
    status = cli(["status", "--json"], root)
    if not manifest:  # killed before it wrote one: there is no index yet
        assert status.code == 1 and "no index found" in status.line()
    else:
        assert status.code == 0, status.out + status.err
        data = status.json()
        assert data["damaged"] is None  # interrupted is not damaged
        assert (data["files"], data["chunks"], data["vectors_pending"]) == _true_counts(index_dir)
        assert data["indexed_at"] == 0 or data["indexed_at"] >= started - 1
        text = cli(["status", "--quick"], root)
        assert "1970" not in text.out and "last indexed" in text.out
        found = cli(["query", GEN_QUERY, "--mode", "text"], root)
        if manifest.get("indexed_at", 0) > 0:
            assert found.code == 0, found.err
        else:
            assert found.code == 1 and "did not finish" in found.line()
    assert_whole(root, expected)


REBUILD_POINTS = ("workers started", "manifest written", "rows committed", "full-text tier recorded",
                  "vectors committed")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="child processes are found in /proc")
@pytest.mark.parametrize("point", REBUILD_POINTS)
def test_kill_during_a_rebuild_keeps_the_old_index(
    generated: tuple[Path, Expected], tmp_path: Path, point: str
) -> None:
    source, expected = generated
    root = copy_tree(source, tmp_path / "tree")
    before = cli(["query", GEN_QUERY, "--mode", "text", "--json"], root).json()["results"]
    children = _kill_at(root, ["index", "--rebuild", "."], root / ".codesearch.rebuild", point)
    assert _wait_dead(children, 5) == [], "processes outlived the killed rebuild"
    status = cli(["status", "--json"], root)
    assert status.code == 0, status.out + status.err
    data = status.json()
    assert data["damaged"] is None and (data["files"], data["chunks"]) == (expected.files, expected.chunks)
    after = cli(["query", GEN_QUERY, "--mode", "text", "--json"], root)
    assert after.code == 0 and after.json()["results"] == before
    assert_whole(root, expected)
    assert not (root / ".codesearch.rebuild").exists()  # the next run cleared what was left


# --- arguments ----------------------------------------------------------------------


BAD_ARGUMENTS: list[tuple[list[str], str]] = [
    (["index", "--max-file-size", "0"], "--max-file-size must be at least 1"),
    (["index", "--max-file-size", "-1"], "--max-file-size must be at least 1"),
    (["index", "--max-file-size", "big"], "is not a valid int"),
    (["index", "--dim", "0"], "--dim must be at least 1"),
    (["index", "--dim", "-8"], "--dim must be at least 1"),
    (["index", "--precision", "float8"], "unknown precision"),
    (["index", "--backend", "gpu"], "unknown backend"),
    (["index", "--engine", "spark"], "unknown engine"),
    (["index", "--workers", "0"], "at least 1"),
    (["index", "--batch-size", "-1"], "at least 1"),
    (["index", "--num-gpus-per-worker", "-1"], "at least 0"),
    (["query", "x", "-k", "0"], "-k must be at least 1"),
    (["query", "x", "-k", "-3"], "-k must be at least 1"),
    (["query", "x", "-k", "ten"], "is not a valid int"),
    (["query", "x", "--lines", "0"], "--lines must be at least 1"),
    (["query", "x", "--lines", "-5"], "--lines must be at least 1"),
    (["query", "x", "--rerank-top", "0"], "--rerank-top must be at least 1"),
    (["query", "x", "--mode", "fuzzy"], "unknown mode"),
    (["query", "x", "--content", "images"], "unknown content"),
    (["query", "x", "--lang", "klingon"], "python"),  # the known languages are listed
    (["query", "x", "--path", "["], "never closed"),
    (["query", "x", "--path", " "], "--path is empty"),
    (["query", ""], "the query is empty"),
    (["query", "   "], "the query is empty"),
    (["query"], "Missing argument"),
    (["eval", "--self", "--limit", "0"], "at least 1"),
    (["serve", "--index", ".codesearch", "--idle", "0"], "--idle must be more than 0"),
    (["index", "--bogus"], "No such option"),
]


def test_bad_arguments_are_refused_before_anything_is_touched(indexed: tuple[Path, Expected]) -> None:
    root, expected = indexed
    index_dir = root / ".codesearch"

    def state() -> list[tuple[str, int]]:
        return sorted((str(p), p.stat().st_mtime_ns) for p in index_dir.rglob("*") if p.name != "lock")

    before = state()
    for args, says in BAD_ARGUMENTS:
        refused = cli(args, root)
        assert refused.code == 2, (args, refused.out, refused.err)
        assert says in refused.line(), (args, refused.err)
    assert state() == before  # not a file of the index changed
    assert_whole(root, expected)


def test_languages_by_name_or_extension(indexed: tuple[Path, Expected]) -> None:
    root, _ = indexed
    for lang in ("python", "Python", "py"):
        found = cli(["query", PORTS_QUERY, "--mode", "text", "--json", "--lang", lang], root)
        assert found.code == 0 and found.json()["results"][0]["path"] == PORTS_FILE


# --- text ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_names(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files with a newline and a tab in their names, a Latin-1 file and a Latin-1 name."""
    root = tmp_path_factory.mktemp("odd") / "tree"
    root.mkdir()
    (root / "we\nird.py").write_text("def weird_thing():\n    return 1\n")
    (root / "tab\there.py").write_text("def tabbed_thing():\n    return 2\n")
    (root / "menu.py").write_bytes("def caf\u00e9_menu(x):\n    return x + 1\n".encode("latin-1"))
    (root / os.fsdecode(b"caf\xe9.py")).write_bytes(b"def latin_named():\n    return 3\n")
    return root


def test_file_names_with_control_characters_and_latin1_text(odd_names: Path) -> None:
    done = cli(["index", "--lexical-only"], odd_names)
    assert done.code == 0, done.err
    assert "1 not UTF-8, read as Windows-1252" in done.out.replace("\n", " ")
    assert "1 with names not UTF-8 skipped" in done.out.replace("\n", " ")
    text = cli(["query", "weird thing", "--mode", "text", "-k", "1"], odd_names)
    assert text.code == 0 and not text.err.strip()
    header = text.out.splitlines()[0]
    assert "we\\nird.py:1-2" in header and "weird_thing" in header  # one line, escaped
    found = cli(["query", "weird thing", "--mode", "text", "-k", "1", "--json"], odd_names).json()
    assert found["results"][0]["path"] == "we\nird.py"  # JSON keeps the name exact
    tabbed = cli(["query", "tabbed thing", "--mode", "text", "-k", "1"], odd_names)
    assert "tab\\there.py:1-2" in tabbed.out.splitlines()[0]
    menu = cli(["query", "menu", "--mode", "text", "-k", "1", "--json"], odd_names).json()
    assert menu["results"][0]["symbol"] == "caf\u00e9_menu"  # cut on characters, not bytes
    again = cli(["index", "--lexical-only", "--json"], odd_names).json()
    assert (again["files"], again["files_changed"], again["files_deleted"]) == (3, 0, 0)


def test_queries_that_are_not_utf8(odd_names: Path) -> None:
    cli(["index", "--lexical-only", "-q"], odd_names)
    latin = cli(["query", b"caf\xe9 menu", "--mode", "text", "--json"], odd_names)
    assert latin.code == 0 and not latin.err.strip()
    data = latin.json()
    assert data["query"] == "caf\u00e9 menu" and data["results"][0]["symbol"] == "caf\u00e9_menu"
    garbage = cli(["query", b"\xff\xfe\x80", "--mode", "text"], odd_names)
    assert garbage.code == 0 and "Traceback" not in garbage.err and not garbage.err.strip()
    hybrid = cli(["query", b"\xff weird", "--json"], odd_names)  # through the model's tokenizer
    assert hybrid.code == 0, hybrid.err
    assert hybrid.json()["results"][0]["path"] == "we\nird.py"


def test_markup_in_a_query_is_text(indexed: tuple[Path, Expected]) -> None:
    root, _ = indexed
    shown = cli(["query", "[/bold] [red]zzzqqq", "--mode", "text"], root)
    assert shown.code == 0 and "no results for [/bold] [red]zzzqqq" in shown.out


# --- unexpected failures ------------------------------------------------------------


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(
    indexed: tuple[Path, Expected],
) -> None:
    """A manifest whose int8 calibration lacks its ranges fails deep in the vector search,
    a failure no command foresees."""
    root, _ = indexed
    assert cli(["index", "-q"], root).code == 0  # vectors, for the vector search to read
    path = root / ".codesearch" / "manifest.json"
    data = json.loads(path.read_text())
    data.update(precision="int8", calibration={"scheme": "int8-minmax-v1"})
    path.write_text(json.dumps(data))
    failed = cli(["query", PORTS_QUERY, "--mode", "vector"], root)
    assert failed.code == 1
    assert "CODESEARCH_DEBUG=1" in failed.line()
    for how in ({"env": {"CODESEARCH_DEBUG": "1"}, "args": []}, {"env": {}, "args": ["--debug"]}):
        shown = cli([*how["args"], "query", PORTS_QUERY, "--mode", "vector"], root, env=how["env"])
        assert shown.code == 1 and "Traceback" in shown.err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_folder_does_not_remove_its_files(indexed: tuple[Path, Expected]) -> None:
    root, expected = indexed
    folder = root / "src" / "net"
    folder.chmod(0)
    try:
        done = cli(["index", "--lexical-only", "--json"], root)
        assert done.code == 0, done.err
        assert done.json()["files_deleted"] == 0
    finally:
        folder.chmod(0o755)
    assert_whole(root, expected)
