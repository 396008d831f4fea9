"""The shared embedding cache: one index's vectors serve every other index on the machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from codesearch.embed.cache import (
    HEADER,
    MAGIC,
    MAX_SMALL_SHARDS,
    SHARD_SUFFIX,
    EmbeddingCache,
    cache_key,
)
from codesearch.embed.registry import DEFAULT_MODEL, get_profile
from codesearch.index.build import IndexOptions, IndexReport, build_index
from codesearch.store.tables import INDEX_DIRNAME, IndexStore, vector_columns

REPO_ROOT = Path(__file__).resolve().parent.parent


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.texts = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed_documents(texts)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture()
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "user-cache"
    monkeypatch.setenv("CODESEARCH_CACHE_DIR", str(root))
    monkeypatch.setenv("CODESEARCH_EMBED_CACHE", "1")
    return root


def _copy(minirepo: Path, where: Path) -> Path:
    target = where / "minirepo"
    shutil.copytree(minirepo, target, ignore=shutil.ignore_patterns(INDEX_DIRNAME))
    return target


def _index(root: Path, embedder: object, **options: object) -> tuple[IndexReport, int]:
    counting = CountingEmbedder(embedder)
    report = build_index(root, IndexOptions(**options), embedder=counting)  # type: ignore[arg-type]
    return report, counting.texts


def _vectors(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """{column: {content_hash: row}} of an index's vectors table."""
    store = IndexStore(root / INDEX_DIRNAME)
    columns = vector_columns(store.vectors)
    hashes = list(columns.pop("content_hash"))
    return {name: dict(zip(hashes, matrix, strict=True)) for name, matrix in columns.items()}


def _shards(cache_root: Path) -> list[Path]:
    return sorted(cache_root.rglob(f"*{SHARD_SUFFIX}"))


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


# -- two indexes of one repository ---------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_second_worktree_embeds_nothing_and_gets_the_same_vectors(
    minirepo: Path, default_embedder: object, cache_root: Path, tmp_path: Path
) -> None:
    _git(minirepo, "init", "-q")
    _git(minirepo, "add", ".")
    _git(minirepo, "commit", "-q", "-m", "init")
    other = tmp_path / "other-worktree"
    _git(minirepo, "worktree", "add", "-q", str(other))

    first, first_calls = _index(minirepo, default_embedder)
    assert first.embedded == first_calls > 0 and first.from_cache == 0
    assert _shards(cache_root), "the first index filled the cache"

    second, second_calls = _index(other, default_embedder)
    assert second_calls == 0 and second.embedded == 0
    assert second.from_cache == first.embedded and second.vectors_pending == 0
    mine, theirs = _vectors(minirepo)["vector"], _vectors(other)["vector"]
    assert mine.keys() == theirs.keys()
    assert all(np.array_equal(mine[h], theirs[h]) for h in mine)


def test_int8_index_quantizes_cached_float_vectors(
    minirepo: Path, default_embedder: object, cache_root: Path, tmp_path: Path
) -> None:
    from codesearch.embed.quantize import Calibration, quantize_int8
    from codesearch.store.tables import read_manifest

    _index(minirepo, default_embedder)
    copy = _copy(minirepo, tmp_path / "int8")
    report, calls = _index(copy, default_embedder, precision="int8")
    assert calls == 0 and report.embedded == 0 and report.from_cache > 0  # calibration too
    manifest = read_manifest(copy / INDEX_DIRNAME)
    assert manifest is not None and manifest.calibration is not None
    floats, codes = _vectors(minirepo)["vector"], _vectors(copy)["codes"]
    calibration = Calibration.from_json(manifest.calibration)
    for h, row in codes.items():
        assert np.array_equal(row, quantize_int8(floats[h][None, :], calibration)[0])


def test_cli_json_reports_vectors_from_the_cache(
    minirepo: Path, default_embedder: object, cache_root: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from codesearch.cli.main import app

    first, _ = _index(minirepo, default_embedder)
    copy = _copy(minirepo, tmp_path / "cli")
    monkeypatch.chdir(copy)
    # Everything is cached: the command never loads the model.
    result = CliRunner().invoke(app, ["index", ".", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["embedded"] == 0 and summary["from_cache"] == first.embedded
    assert summary["vectors_pending"] == 0


# -- switches ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["environment", "option"])
def test_switch_turns_the_cache_off(
    minirepo: Path, default_embedder: object, cache_root: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:
    options: dict[str, object] = {}
    if how == "environment":
        monkeypatch.setenv("CODESEARCH_EMBED_CACHE", "0")
    else:
        options["shared_cache"] = False
    first, _ = _index(minirepo, default_embedder, **options)
    second, calls = _index(_copy(minirepo, tmp_path / "off"), default_embedder, **options)
    assert second.from_cache == 0 and second.embedded == calls == first.embedded > 0
    assert not _shards(cache_root)


# -- damage and concurrency ----------------------------------------------------------------


def _unit_rows(count: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _hashes(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(count)]


def test_damaged_shards_are_misses_never_errors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, dim=8)
    good, truncated, scrambled = (_hashes(name, 5) for name in ("good", "truncated", "scrambled"))
    for seed, keys in enumerate((good, truncated, scrambled)):
        cache.store(keys, _unit_rows(5, 8, seed))
    by_age = _shards(tmp_path)  # names sort by write time
    data = by_age[1].read_bytes()
    by_age[1].write_bytes(data[: len(data) - 7])  # cut mid-vector
    data = bytearray(by_age[2].read_bytes())
    data[-5 * 8 * 4 :] = np.full(5 * 8, 7.5, dtype="<f4").tobytes()  # vectors overwritten
    by_age[2].write_bytes(bytes(data))
    (tmp_path / f"0-garbage{SHARD_SUFFIX}").write_bytes(os.urandom(300))
    (tmp_path / f"1-empty{SHARD_SUFFIX}").write_bytes(b"")
    (tmp_path / f"2-header-only{SHARD_SUFFIX}").write_bytes(HEADER.pack(MAGIC, 8, 3))

    found = cache.lookup(good + truncated + scrambled + ["never-stored"])
    assert set(found) == set(good)
    assert all(np.allclose(found[k], v) for k, v in zip(good, _unit_rows(5, 8, 0), strict=True))

    # A damaged cache keeps working: new writes are found, damage is merged away.
    cache.store(truncated, _unit_rows(5, 8, 1))
    assert cache.compact(force=True)
    assert set(cache.lookup(good + truncated + scrambled)) == set(good + truncated)
    assert len(_shards(tmp_path)) == 1


def test_garbage_cache_folder_makes_an_index_embed_normally(
    minirepo: Path, default_embedder: object, cache_root: Path, tmp_path: Path
) -> None:
    first, _ = _index(minirepo, default_embedder)
    for shard in _shards(cache_root):
        shard.write_bytes(shard.read_bytes()[:100])
    second, calls = _index(_copy(minirepo, tmp_path / "again"), default_embedder)
    assert second.from_cache == 0 and second.embedded == calls == first.embedded
    third, calls = _index(_copy(minirepo, tmp_path / "third"), default_embedder)
    assert calls == 0 and third.from_cache == first.embedded


def test_lookup_returns_what_was_stored_across_merges(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, dim=16)
    keys = [f"{i:032x}" for i in range(40 * (MAX_SMALL_SHARDS + 4))]  # hex: the content-hash form
    rows = _unit_rows(len(keys), 16, 3)
    for start in range(0, len(keys), 40):
        cache.store(keys[start : start + 40], rows[start : start + 40])
    assert len(_shards(tmp_path)) <= MAX_SMALL_SHARDS + 1  # merged along the way
    cache.store(keys[:10], _unit_rows(10, 16, 4))  # duplicates: either copy is a valid answer
    found = cache.lookup(keys[10:] + ["0" * 31 + "g"])
    assert set(found) == set(keys[10:])
    assert all(np.array_equal(found[k], rows[i + 10]) for i, k in enumerate(keys[10:]))
    assert cache.stats().rows >= len(keys)


ROWS = textwrap.dedent(
    """
    import zlib
    import numpy as np

    def rows_of(name, r):
        rng = np.random.default_rng(zlib.crc32(f"{name}-{r}".encode()))
        rows = rng.standard_normal((50, 32))
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    """
)
WRITER = ROWS + textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from codesearch.embed.cache import EmbeddingCache

    folder, name, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    cache = EmbeddingCache(folder, dim=32)
    for r in range(rounds if rounds > 0 else 10**9):
        cache.store([f"{name}-{r}-{i}" for i in range(50)], rows_of(name, r))
        print(r, flush=True)
    """
)


def _writer(folder: Path, name: str, rounds: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(folder), name, str(rounds)],
                            env=env, stdout=subprocess.PIPE, text=True)


def _expected(keys: Sequence[str]) -> dict[str, np.ndarray]:
    namespace: dict[str, object] = {}
    exec(ROWS, namespace)  # the writers' own recipe  # noqa: S102
    rows_of = namespace["rows_of"]
    out = {}
    for key in keys:
        name, r, i = key.rsplit("-", 2)
        out[key] = rows_of(name, int(r))[int(i)]  # type: ignore[operator]
    return out


def test_concurrent_writers_and_a_killed_one_leave_a_readable_cache(tmp_path: Path) -> None:
    rounds = 3 * MAX_SMALL_SHARDS  # each writer merges several times meanwhile
    writers = [_writer(tmp_path, name, rounds) for name in ("a", "b")]
    victim = _writer(tmp_path, "k", 0)  # writes until killed
    assert victim.stdout is not None and victim.stdout.readline()  # one shard is in place
    time.sleep(0.3)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    for process in writers:
        process.communicate(timeout=120)
        assert process.returncode == 0

    cache = EmbeddingCache(tmp_path, dim=32)
    everything = [f"{name}-{r}-{i}" for name in "ab" for r in range(rounds) for i in range(50)]
    found = cache.lookup(everything)
    assert set(found) == set(everything)
    expected = _expected(everything)
    assert all(np.allclose(found[k], expected[k]) for k in everything)

    killed = cache.lookup([f"k-{r}-{i}" for r in range(1000) for i in range(50)])
    finished = {key.rsplit("-", 1)[0] for key in killed}
    assert "k-0" in finished
    assert len(killed) == 50 * len(finished)  # whole shards or nothing
    expected = _expected(list(killed))
    assert all(np.allclose(vector, expected[k]) for k, vector in killed.items())


def test_cache_key_ignores_storage_precision_but_not_runtime_or_recipe() -> None:
    profile = get_profile(DEFAULT_MODEL)
    base = cache_key(profile, 384, "onnx", "r1")
    assert base == cache_key(profile, 384, "onnx", "r1")
    assert profile.fingerprint(384, "int8") != profile.fingerprint(384, "float32")
    others = {cache_key(profile, 384, "onnx-int8", "r1"), cache_key(profile, 384, "torch", "r1"),
              cache_key(profile, 384, "onnx", "r2")}
    assert base not in others and len(others) == 3


def test_unusable_cache_folder_is_no_cache(tmp_path: Path, cache_root: Path) -> None:
    profile = get_profile(DEFAULT_MODEL)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache root should be")
    assert EmbeddingCache.open(profile, 384, "onnx", root=blocker) is None
    cache = EmbeddingCache.open(profile, 384, "onnx", root=tmp_path / "ok")
    assert cache is not None and json.loads((cache.folder / "about.json").read_text())["dim"] == 384
    shutil.rmtree(cache.folder)  # removed by a clean-up while an indexer runs
    assert cache.store(["x"], _unit_rows(1, 384, 0)) == 0 and cache.lookup(["x"]) == {}
