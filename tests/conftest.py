from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests count what gets embedded, and must not write into the user's ~/.cache:
# the shared embedding cache is off unless a test turns it on (tests/test_cache.py).
os.environ.setdefault("CODESEARCH_EMBED_CACHE", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Warm query servers are bounded per user (least recently used exits first): a test run
# gets a socket folder of its own, so it never stops the servers of another run.
os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="codesearch-run-")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="session")
def default_embedder():
    """The real offline default model, loaded once for the whole run."""
    from codesearch.embed.local import load_embedder
    from codesearch.embed.registry import DEFAULT_MODEL, get_profile

    return load_embedder(get_profile(DEFAULT_MODEL))


@pytest.fixture()
def minirepo(tmp_path: Path) -> Path:
    target = tmp_path / "minirepo"
    shutil.copytree(FIXTURES / "minirepo", target)
    return target


def wait_for_server(index_dir: Path, timeout: float = 60.0) -> dict[str, object]:
    """The ping answer of the index's warm server, which a first query starts after its
    answer and does not wait for."""
    import time

    from codesearch.serve import daemon

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = daemon.request(index_dir, {"op": "ping"}, timeout=2.0)
        if answer is not None and answer.get("ok"):
            return answer
        time.sleep(0.1)
    raise AssertionError(f"no warm server answered for {index_dir} within {timeout:.0f} s")
