"""One store of many repositories on object storage: a real S3-compatible server on
127.0.0.1 (moto in server mode), real `codesearch` processes, real git repositories."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from codesearch.api import Index, SharedIndex

moto_server = pytest.importorskip("moto.server", reason="the scale tests need moto[server] (test extra)")
boto3 = pytest.importorskip("boto3")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KEY_ID = "AKIACODESEARCHTEST01"
SECRET = "s3cr3t-never-printed-anywhere-8f2c"
BUCKET = "team-index"


@pytest.fixture(scope="module")
def s3_env() -> dict[str, str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY_ID,
                          aws_secret_access_key=SECRET, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield {**os.environ, **env, "CODESEARCH_NO_DAEMON": "1"}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


def _git_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "one"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


def _cli(args: list[str], env: dict[str, str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "codesearch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert SECRET not in proc.stdout + proc.stderr and KEY_ID not in proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("repos")
    alpha = base / "alpha"
    shutil.copytree(FIXTURES / "minirepo", alpha)
    _git_repo(alpha, {})
    beta = _git_repo(base / "beta", {
        "billing/invoice.py": "def compute_invoice_total(lines):\n    return sum(l.amount for l in lines)\n",
        "billing/tax.py": "def apply_sales_tax(amount, rate):\n    return amount * (1 + rate)\n",
    })
    return alpha, beta


def test_index_query_status_update_remove_on_s3(s3_env: dict[str, str], repos: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    alpha, beta = repos
    store = f"s3://{BUCKET}/one"
    _cli(["index", str(alpha), "--store", store, "--repo", "alpha", "-q"], s3_env, tmp_path)
    _cli(["index", str(beta), "--store", store, "--repo", "beta", "-q"], s3_env, tmp_path)

    status = json.loads(_cli(["status", "--store", store, "--json"], s3_env, tmp_path).stdout)
    by_name = {r["name"]: r for r in status["repos"]}
    assert set(by_name) == {"alpha", "beta"} and status["model"] == "minilm"
    assert len(by_name["beta"]["commit"]) == 40 and by_name["beta"]["chunks"] >= 2

    found = json.loads(_cli(["query", "sales tax on an amount", "--store", store, "--json", "-k", "3"],
                            s3_env, tmp_path).stdout)
    top = found["results"][0]
    assert (top["repo"], top["path"], top["symbol"]) == ("beta", "billing/tax.py", "apply_sales_tax")
    only_alpha = json.loads(_cli(["query", "sales tax on an amount", "--store", store, "--repo", "alpha",
                                  "--json"], s3_env, tmp_path).stdout)
    assert only_alpha["results"] and {r["repo"] for r in only_alpha["results"]} == {"alpha"}

    # Updating one repository leaves the other's rows exactly as they were.
    shared = SharedIndex(store)
    alpha_rows = _rows_of(shared, "alpha")
    (beta / "billing" / "refund.py").write_text("def issue_refund_credit(order):\n    return -order.total\n")
    _cli(["index", str(beta), "--store", store, "--repo", "beta", "-q"], s3_env, tmp_path)
    assert _rows_of(shared, "alpha") == alpha_rows
    hits = shared.search("issue_refund_credit", k=1, mode="text")
    assert (hits[0].repo, hits[0].path) == ("beta", "billing/refund.py")

    removed = _cli(["remove-repo", "alpha", "--store", store], s3_env, tmp_path)
    assert "removed alpha" in removed.stdout
    assert [r.name for r in shared.repos()] == ["beta"]
    assert {h.repo for h in shared.search("reverse a string", k=5, mode="text")} <= {"beta"}
    bad = _cli(["query", "x", "--store", store, "--repo", "alpha"], s3_env, tmp_path, check=False)
    assert bad.returncode == 1 and "no repository 'alpha'" in bad.stderr


def _rows_of(shared: SharedIndex, repo: str) -> list[tuple[str, str, int]]:
    catalog = shared.searcher().catalog
    return sorted((catalog.ids[i], catalog.paths[i], catalog.starts[i])
                  for i in range(len(catalog)) if catalog.repos[i] == repo)


def test_credentials_never_reach_the_store_or_the_output(s3_env: dict[str, str], repos: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    alpha, _ = repos
    store = f"s3://{BUCKET}/secrets"
    _cli(["index", str(alpha), "--store", store, "--repo", "alpha", "-q"], s3_env, tmp_path)
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], aws_access_key_id=KEY_ID,
                          aws_secret_access_key=SECRET, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="secrets/")["Contents"]]
    assert keys
    for key in keys:
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert SECRET.encode() not in body and KEY_ID.encode() not in body
    wrong = {**s3_env, "AWS_SECRET_ACCESS_KEY": SECRET + "-wrong"}
    bad = _cli(["query", "x", "--store", f"s3://no-such-bucket-{os.getpid()}/x"], wrong, tmp_path, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def _big_repo(path: Path, version: int, files: int = 150) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        (path / f"mod{n:03d}.py").write_text(
            f"def handler_{n}_v{version}(request):\n    return request.value * {n} + {version}\n\n\n"
            f"class Model{n}V{version}:\n    def save(self):\n        return {n}\n")
    return path


def test_concurrent_writers_both_land_and_readers_see_whole_repositories(
    s3_env: dict[str, str], tmp_path: Path, default_embedder: object
) -> None:
    store = f"s3://{BUCKET}/busy"
    one, two = _big_repo(tmp_path / "one", 1), _big_repo(tmp_path / "two", 1)
    for path in (one, two):
        Index(path, embedder=default_embedder).update()
    shared = SharedIndex(store, embedder=default_embedder)
    shared.publish(Index(one), "one", commit="v1")
    before = len(_rows_of(shared, "one"))

    # Version 2 of "one" (more chunks) while "two" is published by another process.
    _big_repo(one, 2, files=180)
    Index(one, embedder=default_embedder).update()
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:
        reader = SharedIndex(store, embedder=default_embedder)
        while not stop.is_set():
            seen.append(len(_rows_of(reader, "one")))

    thread = threading.Thread(target=read)
    thread.start()
    procs = [subprocess.Popen([sys.executable, "-m", "codesearch", "index", str(path), "--store", store,
                               "--repo", name, "-q"], env=s3_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for path, name in ((one, "one"), (two, "two"))]
    outputs = [p.communicate(timeout=300) for p in procs]
    stop.set()
    thread.join()
    assert all(p.returncode == 0 for p in procs), outputs
    after = len(_rows_of(shared, "one"))
    assert after > before
    assert {r.name for r in shared.repos()} == {"one", "two"}
    assert set(seen) <= {before, after} and seen, sorted(set(seen))


def test_a_killed_writer_leaves_the_last_good_store(s3_env: dict[str, str], tmp_path: Path,
                                                    default_embedder: object) -> None:
    store = f"s3://{BUCKET}/killed"
    repo = _big_repo(tmp_path / "repo", 1)
    Index(repo, embedder=default_embedder).update()
    shared = SharedIndex(store, embedder=default_embedder)
    shared.publish(Index(repo), "repo", commit="v1")
    good = _rows_of(shared, "repo")
    _big_repo(repo, 2, files=200)
    Index(repo, embedder=default_embedder).update()
    for delay in (0.3, 0.8, 1.5):
        proc = subprocess.Popen([sys.executable, "-m", "codesearch", "index", str(repo), "--store", store,
                                 "--repo", "repo", "-q"], env=s3_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rows = _rows_of(SharedIndex(store, embedder=default_embedder), "repo")
        assert len(rows) in (len(good), len(_rows_of_local(repo)))
        assert SharedIndex(store, embedder=default_embedder).search("handler request value", k=3)


def _rows_of_local(repo: Path) -> list[int]:
    return list(range(Index(repo).status(count_changes=False).chunks))


def test_a_store_past_the_threshold_searches_through_an_ann_index(
    tmp_path: Path, default_embedder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codesearch.store import shared as shared_module

    repo = _big_repo(tmp_path / "repo", 1, files=200)
    Index(repo, embedder=default_embedder).update()
    exact = SharedIndex(str(tmp_path / "exact"), embedder=default_embedder)
    exact.publish(Index(repo), "repo", commit="v1")
    monkeypatch.setattr(shared_module, "ANN_THRESHOLD", 100)
    ann = SharedIndex(str(tmp_path / "ann"), embedder=default_embedder)
    ann.publish(Index(repo), "repo", commit="v1")
    assert ann.searcher().uses_ann and not exact.searcher().uses_ann
    query = "multiply the request value by a constant"
    want = [(h.path, h.start_line) for h in exact.search(query, k=5, mode="vector")]
    got = [(h.path, h.start_line) for h in ann.search(query, k=5, mode="vector")]
    assert len(set(want) & set(got)) >= 4, (want, got)
