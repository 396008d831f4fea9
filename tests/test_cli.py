"""The command line, through typer's runner and through real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codesearch.cli.main import app
from codesearch.core.types import INDEX_DIRNAME
from tests.conftest import wait_for_server

runner = CliRunner()

RESULT_KEYS = {"rank", "path", "start_line", "end_line", "symbol", "kind", "language", "score",
               "lexical_rank", "vector_rank", "rerank_score", "match_start_line",
               "match_end_line", "snippet"}


@pytest.fixture()
def no_daemon(monkeypatch):
    monkeypatch.setenv("CODESEARCH_NO_DAEMON", "1")


def _run(args: list[str], cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, args, catch_exceptions=False)
    finally:
        os.chdir(old)


def test_index_query_status_json(minirepo, no_daemon):
    result = _run(["index", ".", "--lexical-only", "--json"], minirepo)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["files"] >= 9 and summary["chunks"] > 0 and summary["embedded"] == 0
    assert summary["vectors_pending"] == summary["chunks"]

    result = _run(["query", "ReverseString", "--json", "-k", "3"], minirepo / "web")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1 and data["query"] == "ReverseString"
    assert data["vectors_pending"] == data["chunks"] > 0
    assert data["index"] == str(minirepo.resolve() / ".codesearch")
    top = data["results"][0]
    assert set(top) == RESULT_KEYS
    assert (top["path"], top["symbol"], top["start_line"]) == ("cmd/server/main.go", "ReverseString", 15)
    assert top["snippet"].startswith("// ReverseString")
    assert top["start_line"] <= top["match_start_line"] <= top["match_end_line"] <= top["end_line"]

    result = _run(["status", "--json"], minirepo)
    status = json.loads(result.stdout)
    assert status["chunks"] == summary["chunks"] and status["vectors_pending"] == summary["chunks"]
    assert status["model"] == "minilm" and status["dim"] == 384 and not status["complete"]
    assert status["runtime"] == "onnx-int8"  # what `auto` chose for the bundled model
    assert status["changed_since"] == 0
    (minirepo / "web/debounce.js").unlink()
    (minirepo / "src/net/urls.py").write_text("def host(url):\n    return url\n")
    (minirepo / "src/net/new.py").write_text("def fresh():\n    pass\n")
    status = json.loads(_run(["status", "--json"], minirepo).stdout)
    assert status["changed_since"] == 3  # one removed, one modified, one added


def test_human_output_shows_location_symbol_and_snippet(minirepo, no_daemon):
    _run(["index", ".", "--lexical-only", "-q"], minirepo)
    result = _run(["query", "backoff delays jitter", "--mode", "text", "-k", "1", "--lines", "3"], minirepo)
    assert result.exit_code == 0
    assert "src/net/retry.py:1-7" in result.stdout and "backoff_delays" in result.stdout
    assert "not embedded yet" in result.stdout


def test_errors_are_one_line_without_traceback(tmp_path, no_daemon):
    result = _run(["index", str(tmp_path / "missing")], tmp_path)
    assert result.exit_code == 1 and "no such folder" in result.stderr
    result = _run(["query", "anything"], tmp_path)
    assert result.exit_code == 1 and "run `codesearch index`" in result.stderr
    result = _run(["query", "x", "--mode", "fuzzy"], tmp_path)
    assert result.exit_code == 2 and "unknown mode" in result.stderr
    result = _run(["query", "x", "--per-file", "-1"], tmp_path)
    assert result.exit_code == 2 and "--per-file must be 0 (no limit) or more, not -1" in result.stderr
    result = _run(["index", ".", "--model", "no-such-model"], tmp_path)
    assert result.exit_code == 1 and "unknown model" in result.stderr
    for out in (result.stdout, result.stderr):
        assert "Traceback" not in out


def test_empty_folder_query_says_the_index_is_empty(tmp_path, no_daemon):
    assert _run(["index", ".", "-q"], tmp_path).exit_code == 0
    result = _run(["query", "parse"], tmp_path)
    assert result.exit_code == 0 and "index is empty" in result.stdout


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codesearch", *args], cwd=cwd, text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=300)


def test_real_process_with_warm_query_server(minirepo):
    """First query starts the server; later ones use it; a re-index is seen at once."""
    assert _cli(["index", "--lexical-only", "-q"], minirepo).returncode == 0
    try:
        first = _cli(["query", "ReverseString", "--mode", "text", "--json"], minirepo)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["results"][0]["symbol"] == "ReverseString"
        wait_for_server(minirepo / INDEX_DIRNAME)  # started after the first answer
        (minirepo / "src/net/ports.py").write_text("def parse_port_number(value):\n    return int(value)\n")
        assert _cli(["index", "--lexical-only", "-q"], minirepo).returncode == 0
        second = _cli(["query", "parse_port_number", "--mode", "text", "--json"], minirepo)
        assert json.loads(second.stdout)["results"][0]["path"] == "src/net/ports.py"
    finally:
        stopped = _cli(["stop-server"], minirepo)
    assert "stopped" in stopped.stdout


def test_help_and_status_do_not_import_torch_or_lancedb(minirepo):
    _cli(["index", "--lexical-only", "-q"], minirepo)
    # `status --quick` reads the manifest only; `status` also opens the tables to check
    # them (LanceDB), but never a model.
    for args, heavy in ((["status", "--quick"], "[]"), (["status"], "['lancedb']")):
        code = (
            "import sys, runpy\n"
            f"sys.argv = ['codesearch', *{args!r}]\n"
            "try:\n    runpy.run_module('codesearch', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'lancedb', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=minirepo, text=True, capture_output=True, timeout=120)
        assert f"HEAVY {heavy}" in out.stdout, out.stdout + out.stderr
        assert "chunks" in out.stdout


def test_eval_self_and_labelled_queries(minirepo, tmp_path, no_daemon):
    result = _run(["eval", "--self", "--limit", "5", "--json", "--mode", "text"], minirepo)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert 3 <= data["queries"] <= 5
    labels = [r["label"] for r in data["reports"]]
    assert labels == ["text (no ranking signals)", "text + ranking signals"]
    assert not (minirepo / ".codesearch").exists()  # --self indexes a blanked copy, not the repo

    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"query": "ReverseString", "relevant": [{"path": "cmd/server/main.go", "start_line": 14, "end_line": 21}]}) + "\n"
        + json.dumps({"query": "exponential backoff", "relevant": ["src/net/retry.py"]}) + "\n"
    )
    result = _run(["eval", str(queries), "--root", str(minirepo), "--json", "--mode", "text"], minirepo)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["reports"][1]
    assert report["overall"]["ndcg@10"] == pytest.approx(1.0)
    result = _run(["eval", str(tmp_path / "missing.jsonl"), "--root", str(minirepo)], minirepo)
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_query_server_ignores_packages_in_the_indexed_repository(minirepo, monkeypatch):
    """A repo with its own top-level `lancedb/` (say, LanceDB's own source) must not shadow
    the installed package in the server we spawn from inside it."""
    from codesearch.index.build import IndexOptions, build_index
    from codesearch.serve import daemon
    from codesearch.store.tables import INDEX_DIRNAME

    (minirepo / "lancedb").mkdir()
    (minirepo / "lancedb" / "__init__.py").write_text("raise ImportError('shadowed by the repo')\n")
    build_index(minirepo, IndexOptions(embed=False))
    index_dir = minirepo / INDEX_DIRNAME
    monkeypatch.chdir(minirepo)
    try:
        assert daemon.start(Path(INDEX_DIRNAME), wait=60.0)
        answer = daemon.request(index_dir, {"op": "search", "query": "ReverseString",
                                            "options": {"mode": "text", "k": 3}})
        assert answer is not None and answer["ok"], answer
        assert answer["result"]["results"][0]["symbol"] == "ReverseString"
    finally:
        daemon.request(index_dir, {"op": "stop"})
    assert "shadowed" not in (index_dir / "daemon.log").read_text()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_background_embedding_finishes_the_index(minirepo):
    """`index --background` returns after the full-text tier; the detached process embeds
    the rest, even in a repo whose own `lancedb/` would shadow the installed package."""
    from codesearch.store.tables import INDEX_DIRNAME, read_manifest

    (minirepo / "lancedb").mkdir()
    (minirepo / "lancedb" / "__init__.py").write_text("raise ImportError('shadowed by the repo')\n")
    # The installed command, from inside the repo (as a user runs it): unlike `python -m`,
    # it does not put the cwd on sys.path, so only the process it spawns could be shadowed.
    script = Path(sys.executable).with_name("codesearch")
    assert script.is_file(), "the console script is installed with the package"
    done = subprocess.run([str(script), "index", "--background", "--json"], cwd=minirepo,
                          text=True, capture_output=True, timeout=300,
                          env={**os.environ, "CODESEARCH_NO_DAEMON": "1"})
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["vectors_pending"] == summary["chunks"] > 0 and summary["background_pid"]
    index_dir = minirepo / INDEX_DIRNAME
    deadline = time.monotonic() + 240
    manifest = read_manifest(index_dir)
    while time.monotonic() < deadline and not (manifest and manifest.complete):
        time.sleep(0.5)
        manifest = read_manifest(index_dir)
        if not _alive(summary["background_pid"]):
            manifest = read_manifest(index_dir)  # it ended: finished, or failed (see the log)
            break
    log = (index_dir / "index.log").read_text()
    assert manifest is not None and manifest.complete and manifest.vectors_pending == 0, log
    assert "shadowed" not in log
