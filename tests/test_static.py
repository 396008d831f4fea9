"""The static tier: minilm-static (model2vec) as a model, and as the interim vector tier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codesearch import Index
from codesearch.core.errors import ModelUnavailableError
from codesearch.core.types import SearchOptions
from codesearch.embed.local import BACKENDS, FIXED_RUNTIMES, LOADERS, load_embedder, resolve_backend
from codesearch.embed.registry import get_profile, local_weights
from codesearch.embed.static import WEIGHT_FILES, StaticEmbedder, weights_digest
from codesearch.index.build import INTERIM_MODEL, IndexOptions
from codesearch.store.manifest import read_manifest, write_manifest

STATIC = "minilm-static"


@pytest.fixture(scope="session")
def static_embedder() -> StaticEmbedder:
    """The real static model, from the weights that ship in the package (distilled once from
    the bundled MiniLM by embed.static.distill_weights; see docs/speed.md for why they ship
    rather than being distilled on first use)."""
    embedder = load_embedder(get_profile(STATIC))
    assert isinstance(embedder, StaticEmbedder)
    return embedder


def test_the_shipped_weights_are_the_ones_the_registry_pins() -> None:
    profile = get_profile(STATIC)
    folder, source = local_weights(profile)
    assert source == "package" and folder is not None
    assert all((folder / name).is_file() for name in WEIGHT_FILES)
    # Weights changed without a new revision would share fingerprints (and the embedding
    # cache) with the old ones.
    assert weights_digest(folder) == profile.revision
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    assert tokenizer["padding"] is None and tokenizer["truncation"] is None
    assert json.loads((folder / "config.json").read_text())["tokenizer_name"].startswith("sentence-")


def test_static_vectors_are_unit_rows_that_rank_by_meaning(static_embedder: StaticEmbedder) -> None:
    docs = [
        "def parse_json(text):\n    return json.loads(text)",
        "func serveHTTP(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }",
        "fn sort_numbers(values: &mut Vec<i64>) { values.sort_unstable(); }",
    ]
    vectors = static_embedder.embed_documents(docs)
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = static_embedder.embed_queries(["decode a json string"])[0]
    assert int(np.argmax(vectors @ query)) == 0
    assert np.array_equal(vectors, static_embedder.embed_documents(docs))  # deterministic
    assert static_embedder.embed_documents([]).shape == (0, 256)
    with pytest.raises(TypeError):
        static_embedder.embed_documents("one string")  # type: ignore[arg-type]


def test_long_texts_are_read_past_the_base_tokenizers_128_tokens(
    static_embedder: StaticEmbedder,
) -> None:
    head = " ".join(["counter increment"] * 80)  # well past 128 tokens
    with_tail = static_embedder.embed_documents([head + " websocket handshake"])[0]
    without = static_embedder.embed_documents([head])[0]
    assert float(with_tail @ without) < 0.9999


def test_runtimes_dispatch_through_one_table() -> None:
    static = get_profile(STATIC)
    for asked in BACKENDS:  # --backend does not apply to a static model
        assert resolve_backend(static, asked) == "model2vec"
    runtimes = {resolve_backend(get_profile("minilm"), b) for b in BACKENDS} | set(FIXED_RUNTIMES.values())
    assert runtimes == set(LOADERS)
    assert not static.is_remote


def test_missing_weights_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="lacks config.json"):
        load_embedder(get_profile(STATIC), model_path=tmp_path)


def test_a_static_index_answers_from_the_command_line(minirepo: Path) -> None:
    env = {**os.environ, "CODESEARCH_NO_DAEMON": "1"}
    done = subprocess.run([sys.executable, "-m", "codesearch", "index", "-m", STATIC, "--json"],
                          cwd=minirepo, text=True, capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["vectors_pending"] == 0 and summary["embedded"] > 0
    manifest = read_manifest(minirepo / ".codesearch")
    assert manifest is not None and manifest.model == STATIC and manifest.dim == 256
    assert manifest.extra["backend"] == "model2vec" and "interim" not in manifest.extra
    found = subprocess.run([sys.executable, "-m", "codesearch", "query", "least recently used cache",
                            "--json", "-k", "3"], cwd=minirepo, text=True, capture_output=True,
                           env=env, timeout=300)
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    assert data["model"] == STATIC and data["results"][0]["path"].endswith("LruCache.java")


def test_the_interim_tier_answers_until_the_index_models_vectors_arrive(
    minirepo: Path, default_embedder: object
) -> None:
    index = Index(minirepo, embedder=default_embedder)
    report = index.update()
    assert report.embedded > 0 and report.interim_embedded == report.embedded
    assert 0 < report.seconds_lexical <= report.seconds_interim <= report.seconds_total
    manifest = read_manifest(index.index_dir)
    assert manifest is not None and manifest.extra["interim"]["model"] == INTERIM_MODEL
    searcher = index.searcher()
    table = searcher.store.interim_vectors()
    assert table is not None and searcher.store.vector_hashes(table) == set(searcher.catalog.hashes)
    assert searcher.interim() is None  # the index model's vectors are all there

    # As if the MiniLM vectors had not been embedded yet (a first run still at it).
    searcher.store.vectors.delete("true")
    manifest.vectors_pending, manifest.complete = manifest.chunks, False
    write_manifest(index.index_dir, manifest)
    searcher = index.searcher()
    assert searcher.interim() is not None
    # Static vectors count less in hybrid fusion (ModelProfile.fusion_scale).
    weight = SearchOptions().ranking.vector_weight
    assert searcher.ranking(SearchOptions()).vector_weight == pytest.approx(weight * 0.3)
    assert searcher.ranking(SearchOptions(mode="text")).vector_weight == weight
    hits = index.search("least recently used cache", k=3, mode="vector")
    assert hits and hits[0].path.endswith("LruCache.java") and hits[0].vector_rank == 1
    hybrid = index.run("least recently used cache")
    assert hybrid.vectors_pending == manifest.chunks  # still reported: full quality is pending
    assert any(h.vector_rank is not None for h in hybrid.hits)

    again = index.update()  # the index model embeds what is missing; the tier stands aside
    assert again.embedded > 0 and again.interim_embedded == 0
    assert index.searcher().interim() is None
    assert index.searcher().ranking(SearchOptions()).vector_weight == weight
    assert index.search("least recently used cache", k=1, mode="vector")[0].path.endswith("LruCache.java")


def test_no_interim_tier_when_switched_off_or_lexical_only(minirepo: Path,
                                                           default_embedder: object) -> None:
    index = Index(minirepo, embedder=default_embedder)
    assert index.update(embed=False).interim_embedded == 0
    report = index.update(options=IndexOptions(interim_model=None))
    assert report.embedded > 0 and report.interim_embedded == 0
    manifest = read_manifest(index.index_dir)
    assert manifest is not None and "interim" not in manifest.extra
    assert index.searcher().store.interim_vectors() is None


def test_a_large_batch_tokenizes_on_every_core_with_the_same_vectors(
    static_embedder: StaticEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codesearch.embed import static

    texts = [f"def handler_{i}(request):\n    return parse_json(request.body, limit={i})" for i in range(600)]
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    one_thread = static_embedder.embed_documents(texts)
    seen: list[str | None] = []
    encode = static_embedder.model.encode

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(os.environ.get("TOKENIZERS_PARALLELISM"))
        return encode(*args, **kwargs)

    monkeypatch.setattr(static_embedder.model, "encode", spy)
    monkeypatch.setattr(static, "PARALLEL_TEXTS", 500)
    threaded = static_embedder.embed_documents(texts)
    static_embedder.embed_documents(texts[:10])
    assert seen == ["true", "false"]  # a small batch keeps the caller's setting
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert np.array_equal(one_thread, threaded)
