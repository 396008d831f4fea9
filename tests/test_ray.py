"""The ray engine on a real local Ray cluster (ray.init(num_cpus=2)): the same rows as
the local engine, many repositories into one store, a remote embedding server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codesearch.api import Index, SharedIndex, index_repositories, read_repo_list
from codesearch.store.tables import IndexStore, vector_columns
from tests.jsonserver import json_server
from tests.test_remote_embed import embeddings_handler

ray = pytest.importorskip("ray", reason="the ray engine needs the scale extra")

from codesearch.index.distributed import RayEngine, RayOptions, start_ray  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="module")
def engine() -> RayEngine:
    options = RayOptions(workers=2)
    start_ray(options)
    yield RayEngine(options)
    ray.shutdown()


def _rows(root: Path) -> tuple[list[tuple[str, str, str]], dict[str, np.ndarray]]:
    store = IndexStore(root / ".codesearch")
    chunks = store.chunks.to_arrow().select(["id", "text", "content_hash"]).to_pylist()
    assert store.vectors is not None
    columns = vector_columns(store.vectors)
    return (sorted((c["id"], c["text"], c["content_hash"]) for c in chunks),
            dict(zip(columns["content_hash"], columns["vector"], strict=True)))


def test_the_ray_engine_writes_the_rows_of_the_local_engine(tmp_path: Path, engine: RayEngine) -> None:
    local, distributed = tmp_path / "local", tmp_path / "ray"
    shutil.copytree(FIXTURES / "minirepo", local)
    shutil.copytree(FIXTURES / "minirepo", distributed)
    Index(local).update()  # the model the index records, as each actor loads it
    report = Index(distributed).update(engine=engine)
    assert report.embedded == report.chunks_total > 0
    rows_local, vectors_local = _rows(local)
    rows_ray, vectors_ray = _rows(distributed)
    assert rows_ray == rows_local
    assert vectors_ray.keys() == vectors_local.keys()
    assert max(float(np.abs(vectors_ray[h] - vectors_local[h]).max()) for h in vectors_local) < 1e-4
    top = Index(distributed).search("reverse a string", k=1)[0]
    assert top.symbol == "ReverseString"


def _git(path: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=path, check=True, capture_output=True,
                   env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(path), "PATH": "/usr/bin:/bin"})


def _repo(path: Path, name: str) -> Path:
    path.mkdir(parents=True)
    (path / f"{name}.py").write_text(f"def {name}_entry_point(x):\n    return x + 1\n")
    _git(path, "init", "-q")
    _git(path, "add", "-A")
    _git(path, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "one")
    return path


def test_many_repositories_one_store_failures_reported_reruns_skip(
    tmp_path: Path, engine: RayEngine
) -> None:
    first = _repo(tmp_path / "first", "first")
    second = _repo(tmp_path / "second", "second")
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(second), str(bare)], check=True, capture_output=True)
    listing = tmp_path / "repos.txt"
    listing.write_text(f"# team repositories\n{first}\nfile://{bare} cloned\n{tmp_path / 'missing'} broken\n")
    sources = read_repo_list(listing)
    assert [s.name for s in sources] == ["first", "cloned", "broken"]
    store = SharedIndex(str(tmp_path / "store"))
    outcomes = index_repositories(store, sources, engine=engine, cache=tmp_path / "cache")
    assert [o.status for o in outcomes] == ["published", "published", "failed"]
    assert outcomes[2].attempts == 2 and "no such folder" in outcomes[2].error
    assert {r.name for r in store.repos()} == {"first", "cloned"}
    hit = store.search("second_entry_point", k=1, mode="text")[0]
    assert (hit.repo, hit.path) == ("cloned", "second.py")

    again = index_repositories(store, sources[:2], engine=engine, cache=tmp_path / "cache")
    assert [o.status for o in again] == ["unchanged", "unchanged"]


def test_the_cli_reports_each_repository_and_fails_on_a_broken_one(tmp_path: Path) -> None:
    first = _repo(tmp_path / "first", "first")
    listing = tmp_path / "repos.txt"
    listing.write_text(f"{first}\n{tmp_path / 'missing'} broken\n")
    proc = subprocess.run(
        [sys.executable, "-m", "codesearch", "index", "--engine", "ray", "--workers", "1",
         "--store", str(tmp_path / "store"), "--repos", str(listing), "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [(r["name"], r["status"]) for r in data["repos"]] == [("first", "published"), ("broken", "failed")]
    assert "Traceback" not in proc.stderr


def test_actors_call_a_remote_embedding_server_with_bounded_concurrency(
    tmp_path: Path, engine: RayEngine
) -> None:
    busy = {"now": 0, "max": 0}
    lock = threading.Lock()
    inner = embeddings_handler(32, fail_first=1, status=429)

    def handler(path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        with lock:
            busy["now"] += 1
            busy["max"] = max(busy["max"], busy["now"])
        time.sleep(0.02)
        try:
            return inner(path, body, headers)
        finally:
            with lock:
                busy["now"] -= 1

    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "minirepo", repo)
    with json_server(handler) as server:
        from codesearch.api import IndexOptions

        options = IndexOptions(model=f"openai:fake-embedder@{server.url}/v1", dim=32)
        report = Index(repo).update(options=options, engine=engine)
        assert report.embedded == report.chunks_total > 0
        assert len(server.requests) >= 2  # one 429 retried, then the batches
        assert busy["max"] <= engine.options.workers
    assert Index(repo).status(count_changes=False).vectors_pending == 0
