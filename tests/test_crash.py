"""Crash safety and concurrency, for real: `python -m codesearch index` in a subprocess,
killed with SIGKILL (and once interrupted with SIGINT) at several points of a run over
real code copied from site-packages, then checked: queries work, the chunks and files
tables agree, and a re-index ends in exactly the state of a clean build.

Phases are detected from the LanceDB table folders: every write is one commit, i.e.
one new file in `<table>.lance/_versions/`, so "a chunks commit happened" and "k
vector batches were written" are observable without touching the indexer.
"""

from __future__ import annotations

import math
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from codesearch.index.build import IndexOptions, build_index
from codesearch.search.searcher import Searcher, SearchOptions
from codesearch.store.tables import IndexStore, read_manifest, scan

pytestmark = pytest.mark.slow
PACKAGES = ("markdown_it", "requests")
# Left out to keep ~270 chunks: the machine is shared, and embedding runs 3-25 chunks/s.
SKIPPED = ("markdown_it/rules_block", "markdown_it/rules_inline", "markdown_it/common")
EMBED_BATCH = 64  # IndexOptions.embed_batch: one vectors commit per batch
TRUNCATED = ("markdown_it/renderer.py", "markdown_it/token.py", "markdown_it/utils.py")


def _site_packages() -> Path:
    import requests

    return Path(requests.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real code nobody here wrote: parts of two installed packages, ~270 chunks."""
    site = _site_packages()
    dest = tmp_path_factory.mktemp("corpus") / "tree"
    for package in PACKAGES:
        for source in sorted((site / package).rglob("*.py")):
            rel = source.relative_to(site).as_posix()
            if 1_000 <= source.stat().st_size <= 12_000 and not rel.startswith(SKIPPED):
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    assert len(list(dest.rglob("*.py"))) > 25
    return dest


@dataclass(frozen=True)
class Snapshot:
    rows: frozenset[tuple[str, int, int, str]]  # (path, start_line, end_line, content_hash)
    files: frozenset[tuple[str, str]]  # (path, file_hash)
    pending: int


def snapshot(index_dir: Path) -> Snapshot:
    store = IndexStore(index_dir)
    chunks = scan(store.chunks, ["path", "start_line", "end_line", "content_hash"]).to_pylist()
    rows = frozenset((c["path"], c["start_line"], c["end_line"], c["content_hash"]) for c in chunks)
    files = frozenset((f["path"], f["file_hash"]) for f in store.files.to_arrow().to_pylist())
    pending = len({c["content_hash"] for c in chunks} - store.vector_hashes())
    return Snapshot(rows, files, pending)


def check_consistent(index_dir: Path) -> int:
    """No duplicate chunk ids; no file half replaced; every recorded file has its chunks.

    LanceDB commits one table at a time, and a batch writes chunks before files, so a
    kill between the two commits leaves a file whose chunks are already the new
    version while its files row is still the old one (or, for a new file, no row
    yet). Such a file is *stale*, not mixed: all its chunks are one version, and
    the next run sees the old hash and redoes it. Returns the number of stale files.
    """
    store = IndexStore(index_dir)
    chunks = scan(store.chunks, ["id", "path", "file_hash"]).to_pylist()
    ids = Counter(c["id"] for c in chunks)
    assert not [i for i, n in ids.items() if n > 1], "duplicate chunk ids"
    by_path: dict[str, list[str]] = {}
    for c in chunks:
        by_path.setdefault(c["path"], []).append(c["file_hash"])
    for path, hashes in by_path.items():
        assert len(set(hashes)) == 1, f"{path}: chunks of two versions of the file"
    files = store.files.to_arrow().to_pylist()
    stale = set(by_path) - {f["path"] for f in files}
    for f in files:
        hashes = by_path.get(f["path"], [])
        if f["chunks"]:
            assert hashes, f"{f['path']}: recorded with {f['chunks']} chunks, has none"
        if hashes and hashes[0] != f["file_hash"]:
            stale.add(f["path"])
            continue
        assert len(hashes) == f["chunks"], f"{f['path']}: {len(hashes)} chunks, files says {f['chunks']}"
    return len(stale)


def check_queries(index_dir: Path, embedder: object) -> None:
    searcher = Searcher(index_dir, embedder=embedder)
    text = searcher.search("render markdown tokens", SearchOptions(mode="text", k=5))
    assert text.hits, "text query found nothing"
    hybrid = searcher.search("render markdown tokens to html", SearchOptions(mode="hybrid", k=5))
    assert hybrid.hits, "hybrid query found nothing"


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """One clean build of the final tree, shared by every test here.

    Lexical tier only: the rows and files compared do not depend on the vectors, and
    the model's work is checked by `pending == 0` on the repaired index.
    """
    root = tmp_path_factory.mktemp("reference") / "tree"
    shutil.copytree(corpus, root)
    build_index(root, IndexOptions(embed=False))
    snap = snapshot(root / ".codesearch")
    assert len(snap.rows) > 150
    return snap


def versions(index_dir: Path, table: str) -> int:
    folder = index_dir / "lance" / f"{table}.lance" / "_versions"
    try:
        return sum(1 for p in folder.iterdir() if p.suffix == ".manifest")
    except OSError:
        return 0


def start_index(root: Path, *args: str) -> subprocess.Popen[str]:
    """`codesearch index` in its own process, to be killed.

    The default runtime (ONNX Runtime): each of the five runs starts in about a second
    instead of ~7 s of torch imports, which is what keeps this file near a minute.
    """
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen(
        [sys.executable, "-m", "codesearch", "index", str(root), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # A shell starts background jobs with SIGINT ignored, and Python then keeps it
        # ignored: the Ctrl-C step must not depend on how the tests were launched.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(proc: subprocess.Popen[str], condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"index finished before {what} (exit {proc.returncode}): {err[-500:]}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def kill(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_kill_at_each_phase_then_repair(
    corpus: Path, reference: Snapshot, tmp_path: Path, default_embedder: object
) -> None:
    root = tmp_path / "tree"
    index_dir = root / ".codesearch"
    # The last complete index: an older tree (one package, three files cut short).
    shutil.copytree(corpus / PACKAGES[0], root / PACKAGES[0])
    for rel in TRUNCATED:
        text = (corpus / rel).read_text()
        (root / rel).write_text(text[: len(text) // 2].rsplit("\n", 1)[0] + "\n")
    build_index(root, IndexOptions(embed=False))
    previous = snapshot(index_dir)
    # Now the tree moves on to its final state and indexing starts.
    shutil.copytree(corpus, root, dirs_exist_ok=True)

    # 1. SIGKILL in the lexical tier, right after the first chunks commit.
    base = versions(index_dir, "chunks")
    proc = start_index(root, "-q")
    wait_for(proc, lambda: versions(index_dir, "chunks") > base, 120, "a chunks commit")
    assert kill(proc)[0] == -signal.SIGKILL
    stale = check_consistent(index_dir)
    check_queries(index_dir, default_embedder)
    after_lexical_kill = snapshot(index_dir)
    manifest = read_manifest(index_dir)
    assert manifest is not None and not manifest.complete  # really interrupted
    assert after_lexical_kill.pending == len({r[3] for r in after_lexical_kill.rows})
    # Either the files commit had not happened yet (stale files) or it had.
    assert stale > 0 or after_lexical_kill.files == reference.files
    assert stale == 0 or after_lexical_kill.files & previous.files

    # 2. SIGKILL early in embedding: after the first vector batch.
    base = versions(index_dir, "vectors")
    proc = start_index(root, "-q")
    wait_for(proc, lambda: versions(index_dir, "vectors") > base, 180, "a first vector batch")
    assert kill(proc)[0] == -signal.SIGKILL
    check_consistent(index_dir)
    check_queries(index_dir, default_embedder)
    mid = snapshot(index_dir)
    assert mid.rows == reference.rows  # the lexical tier was complete before embedding
    assert 0 < mid.pending < len({r[3] for r in reference.rows})

    # 3. Ctrl-C mid-way through embedding: exit 130, the "interrupted" line, a usable index.
    # Sent once the vector tier has begun (its first line): deterministic, where waiting
    # for a vector commit raced with the run's end.
    proc = start_index(root)
    assert proc.stderr is not None
    said = ""
    while "loading model" not in said:
        line = proc.stderr.readline()
        assert line, f"index ended before embedding (exit {proc.wait()}): {said}"
        said += line
    time.sleep(0.3)  # into model loading or the first batch, most chunks still to embed
    code, err = kill(proc, signal.SIGINT)
    err = said + err
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    check_consistent(index_dir)
    check_queries(index_dir, default_embedder)

    # 4. SIGKILL late: once all but the last batch are written.
    pending = snapshot(index_dir).pending
    assert pending > EMBED_BATCH  # at least two batches left, so "late" is not "done"
    base = versions(index_dir, "vectors")
    batches = math.ceil(pending / EMBED_BATCH)
    proc = start_index(root, "-q")
    wait_for(proc, lambda: versions(index_dir, "vectors") >= base + batches - 1, 180,
             "the last vector batch")
    kill(proc)
    check_consistent(index_dir)
    check_queries(index_dir, default_embedder)
    assert snapshot(index_dir).pending < pending

    # The next run repairs and finishes: the same state as a clean build.
    proc = start_index(root, "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    final = snapshot(index_dir)
    assert final.rows == reference.rows
    assert final.files == reference.files
    assert final.pending == 0
    manifest = read_manifest(index_dir)
    assert manifest is not None and manifest.complete and manifest.vectors_pending == 0
    assert check_consistent(index_dir) == 0


def _read_pty(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> str:
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break  # the child closed its side
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", "replace")


def test_two_index_runs_at_once_serialize(corpus: Path, reference: Snapshot, tmp_path: Path) -> None:
    from codesearch.core.lock import current_holder

    root = tmp_path / "tree"
    shutil.copytree(corpus, root)
    index_dir = root / ".codesearch"
    first = start_index(root, "--lexical-only", "-q")
    wait_for(first, lambda: current_holder(index_dir) is not None, 120, "the first run's lock")
    # The second run's stderr is a terminal, as in the two-terminals case.
    leader, follower = pty.openpty()
    second = subprocess.Popen(
        [sys.executable, "-m", "codesearch", "index", str(root), "--lexical-only"],
        stdout=follower, stderr=follower, env=dict(os.environ, COLUMNS="200"),
    )
    os.close(follower)
    try:
        output = _read_pty(leader, second, timeout=240)
    finally:
        os.close(leader)
    assert second.wait(timeout=60) == 0, output
    _, first_err = first.communicate(timeout=60)
    assert first.returncode == 0, first_err
    assert "waiting for the index lock held by pid" in output
    assert f"pid {first.pid}" in output
    assert check_consistent(index_dir) == 0
    final = snapshot(index_dir)
    assert final.rows == reference.rows
    assert final.files == reference.files
