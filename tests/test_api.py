"""The public API: the lines docs/python-api.md shows, run as they are."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import codesearch
from codesearch.api import Index, IndexStatus

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def _doc_example() -> str:
    match = re.search(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert match, "docs/python-api.md has no python example"
    return match.group(1)


def test_the_documented_example_runs_as_written(minirepo: Path) -> None:
    code = _doc_example()
    assert len(code.strip().splitlines()) <= 10
    assert '"path/to/repo"' in code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace('"path/to/repo"', repr(str(minirepo))), str(DOC), "exec"), {})
    lines = out.getvalue().splitlines()
    files, chunks = (int(n) for n in re.findall(r"(\d+) (?:files|chunks)", lines[0]))
    assert files > 0 and chunks > 0
    assert lines[1].startswith("cmd/server/main.go:") and "ReverseString" in lines[1]
    model, n_files, n_chunks, pending = lines[-1].split()
    assert (int(n_files), int(n_chunks), int(pending)) == (files, chunks, 0)
    assert model == "minilm"



def test_top_level_names_are_the_api() -> None:
    assert codesearch.Index is Index
    assert codesearch.IndexStatus is IndexStatus
    with pytest.raises(AttributeError):
        _ = codesearch.NoSuchThing


def test_update_search_status_and_a_progress_callback(minirepo: Path, default_embedder) -> None:
    index = Index(minirepo, embedder=default_embedder)
    assert not index.exists
    seen: list[tuple[str, int, int | None]] = []
    report = index.update(progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert index.exists and report.files > 0
    stages = {stage for stage, _, _ in seen}
    assert {"chunk", "embed"} <= stages
    embed_done = [done for stage, done, _ in seen if stage == "embed"]
    assert embed_done[-1] == report.embedded
    hits = index.search("ReverseString", k=2, mode="text", lang="go")
    assert hits[0].symbol == "ReverseString" and all(h.language == "go" for h in hits)
    assert index.search("ReverseString", path="nowhere/*") == []
    info = index.status()
    assert (info.files, info.chunks, info.vectors_pending) == (report.files, report.chunks_total, 0)
    assert info.to_json()["root"] == str(minirepo.resolve())


def test_a_long_lived_index_sees_a_rewrite_on_disk(minirepo: Path, default_embedder) -> None:
    index = Index(minirepo, embedder=default_embedder)
    index.update()
    assert not index.search("frobnicate_the_widgets", mode="text")
    (minirepo / "widgets.py").write_text("def frobnicate_the_widgets():\n    return 42\n")
    Index(minirepo, embedder=default_embedder).update()  # another writer
    hits = index.search("frobnicate_the_widgets", mode="text", k=1)
    assert hits and hits[0].path == "widgets.py"


def test_per_file_keeps_each_files_best_hits_in_their_order(minirepo: Path, default_embedder) -> None:
    from collections import Counter

    (minirepo / "parsers.py").write_text("".join(
        f"def parse_config_{n}(text):\n    return parse_config_line(text, {n})\n\n\n" for n in range(6)))
    index = Index(minirepo, embedder=default_embedder)
    index.update()
    every = index.search("parse config", k=30, mode="text")
    assert Counter(h.path for h in every)["parsers.py"] >= 4
    capped = index.search("parse config", k=30, mode="text", per_file=2)
    assert max(Counter(h.path for h in capped).values()) == 2
    assert [h.rank for h in capped] == list(range(1, len(capped) + 1))
    shown: Counter[str] = Counter()
    expected = []
    for hit in every:
        shown[hit.path] += 1
        if shown[hit.path] <= 2:
            expected.append((hit.path, hit.start_line))
    assert [(h.path, h.start_line) for h in capped][: len(expected)] == expected
    assert index.search("parse config", k=30, mode="text", per_file=0) == every
    with pytest.raises(ValueError, match="per_file"):
        index.search("parse config", per_file=-1)


def test_no_index_is_one_clear_error(tmp_path: Path) -> None:
    from codesearch.core.errors import CodesearchError

    with pytest.raises(CodesearchError, match="run `codesearch index` first"):
        Index(tmp_path).search("anything")
    with pytest.raises(CodesearchError, match="run `codesearch index` first"):
        Index(tmp_path).status()


def test_the_documented_example_runs_as_a_script_on_a_folder_for_the_worker_pool(tmp_path: Path) -> None:
    """Run as a file with no `if __name__ == "__main__":` guard, on a folder big enough for
    the chunking pool: spawned workers must not run the script again (each would index
    and wait on the lock its parent holds, for ever)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for n in range(60):
        (repo / f"mod_{n}.py").write_text(f"def reverse_{n}(text):\n    return text[::-1]\n")
    script = tmp_path / "example.py"
    script.write_text(_doc_example().replace('"path/to/repo"', repr(str(repo))))
    env = {**os.environ, "CODESEARCH_CHUNK_WORKERS": "2", "CODESEARCH_NO_DAEMON": "1"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.findall(r"^(\d+) files", done.stdout, flags=re.M) == ["60"]  # its top level ran once
    assert "reverse_" in done.stdout
