"""Remote embedding backends against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
import zlib
from typing import Any

import numpy as np
import pytest

from codesearch.core.http import RemoteError
from codesearch.embed.local import ModelUnavailableError, load_embedder
from codesearch.embed.registry import QWEN3_CODE_TASK, resolve_model
from codesearch.embed.remote import OpenAIEmbedder, VoyageEmbedder, estimate_tokens, plan_batches
from tests.jsonserver import json_server

SECRET = "sk-test-very-secret-key-123"


def vector_for(text: str, dims: int) -> np.ndarray:
    """What the fake server returns for a text: deterministic, deliberately not unit norm."""
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    return rng.normal(size=dims) * 3.0


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


def embeddings_handler(dims: int, fail_first: int = 0, status: int = 503):
    calls = {"n": 0}

    def handler(path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return status, {"error": "overloaded"}
        data = [
            {"object": "embedding", "index": i, "embedding": vector_for(t, dims).tolist()}
            for i, t in enumerate(body["input"])
        ]
        # Out of order on purpose: clients must sort by index.
        return 200, {"object": "list", "data": data[::-1], "model": body["model"]}

    return handler


def test_openai_registry_model_gets_its_prompts_client_side() -> None:
    with json_server(embeddings_handler(1024)) as server:
        profile = resolve_model(f"openai:Qwen/Qwen3-Embedding-0.6B@{server.url}/v1")
        embedder = load_embedder(profile)
        assert isinstance(embedder, OpenAIEmbedder)
        queries = embedder.embed_queries(["read a csv file"])
        docs = embedder.embed_documents(["def read_csv(p): ...", "x = 1"])
    assert [r.path for r in server.requests] == ["/v1/embeddings", "/v1/embeddings"]
    query_body, doc_body = server.requests[0].body, server.requests[1].body
    expected_query = f"Instruct: {QWEN3_CODE_TASK}\nQuery:read a csv file"
    assert query_body["input"] == [expected_query]
    assert query_body["model"] == "Qwen/Qwen3-Embedding-0.6B"
    assert "dimensions" not in query_body
    assert doc_body["input"] == ["def read_csv(p): ...", "x = 1"]  # documents bare
    assert "authorization" not in server.requests[0].headers
    assert queries.shape == (1, 1024) and docs.shape == (2, 1024)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert np.allclose(docs[1], unit(vector_for("x = 1", 1024)), atol=1e-5)  # order kept


def test_openai_mrl_dim_is_sent_and_renormalized_client_side() -> None:
    # Infinity-style server: ignores `dimensions` and returns the full vector.
    with json_server(embeddings_handler(1024)) as server:
        embedder = load_embedder(
            resolve_model(f"openai:qwen3-embedding-0.6b@{server.url}/v1"), dim=256
        )
        out = embedder.embed_documents(["def f(): pass"])
    assert server.requests[0].body["dimensions"] == 256
    assert out.shape == (1, 256)
    assert np.allclose(out[0], unit(vector_for("def f(): pass", 1024)[:256]), atol=1e-5)
    assert embedder.dim == 256


def test_openai_unknown_model_learns_its_dimension() -> None:
    with json_server(embeddings_handler(48)) as server:
        profile = resolve_model(
            f"openai:my-embedder@{server.url}/v1", query_prompt="search: ", document_prompt=""
        )
        assert profile.dims == 0
        embedder = load_embedder(profile)
        assert embedder.dim == 48 and embedder.profile.dims == 48
        embedder.embed_queries(["parse json"])
    assert server.requests[0].body["input"] == ["dimension probe"]
    assert server.requests[1].body["input"] == ["search: parse json"]
    assert server.requests[1].body["model"] == "my-embedder"


def test_openai_batches_are_split_and_order_is_kept() -> None:
    texts = [f"def function_{i}(): return {i}" for i in range(300)]
    with json_server(embeddings_handler(32)) as server:
        embedder = OpenAIEmbedder(
            resolve_model(f"openai:x@{server.url}/v1"), batch_size=128, backoff=0.01
        )
        out = embedder.embed_documents(texts)
    sizes = [len(r.body["input"]) for r in server.requests[1:]]  # [0] is the dimension probe
    assert sizes == [128, 128, 44]
    assert np.allclose(out[299], unit(vector_for(texts[299], 32)), atol=1e-5)
    assert np.allclose(out[128], unit(vector_for(texts[128], 32)), atol=1e-5)


def test_retry_on_503_then_success() -> None:
    with json_server(embeddings_handler(16, fail_first=2)) as server:
        profile = resolve_model(f"openai:minilm@{server.url}/v1")
        embedder = OpenAIEmbedder(
            dataclasses.replace(profile, dims=16, mrl_dims=()),
            backoff=0.01,
        )
        out = embedder.embed_documents(["a"])
    assert len(server.requests) == 3  # two 503s, then the answer
    assert out.shape == (1, 16)


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # closed again: connection refused


def test_dead_server_gives_one_line_error_quickly() -> None:
    profile = resolve_model(f"openai:qwen3-embedding-0.6b@{_dead_url()}")
    embedder = OpenAIEmbedder(profile, retries=2, backoff=0.01)
    started = time.perf_counter()
    with pytest.raises(RemoteError) as info:
        embedder.embed_documents(["x"])
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert "\n" not in message
    assert "cannot reach" in message and "after 3 attempts" in message


def test_voyage_request_shape_auth_and_no_client_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOYAGE_API_KEY", SECRET)
    with json_server(embeddings_handler(2048)) as server:
        monkeypatch.setenv("VOYAGE_BASE_URL", server.url + "/v1")
        embedder = load_embedder(resolve_model("voyage:voyage-code-3"), dim=512)
        assert isinstance(embedder, VoyageEmbedder)
        q = embedder.embed_queries(["retry with backoff"])
        d = embedder.embed_documents(["def backoff(n): return 2 ** n"])
    first, second = server.requests
    assert first.path == "/v1/embeddings"
    assert first.headers["authorization"] == f"Bearer {SECRET}"
    assert first.body == {
        "model": "voyage-code-3",
        "input": ["retry with backoff"],
        "input_type": "query",
        "output_dimension": 512,
        "output_dtype": "float",
        "truncation": True,
    }
    assert second.body["input_type"] == "document"
    assert second.body["input"] == ["def backoff(n): return 2 ** n"]
    assert q.shape == (1, 512) and np.isclose(np.linalg.norm(d[0]), 1.0, atol=1e-5)
    # The key is in no public trace of the embedder.
    assert SECRET not in repr(embedder)
    assert SECRET not in str(embedder.profile.to_manifest()) + embedder.fingerprint


def test_voyage_batches_respect_item_and_token_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOYAGE_API_KEY", SECRET)
    with json_server(embeddings_handler(8)) as server:
        monkeypatch.setenv("VOYAGE_BASE_URL", server.url)
        profile = resolve_model("voyage:voyage-4-lite")
        profile = dataclasses.replace(profile, dims=8, mrl_dims=())
        embedder = VoyageEmbedder(profile, backoff=0.01)
        embedder.embed_documents([f"t{i}" for i in range(2500)])
        item_sizes = [len(r.body["input"]) for r in server.requests]
        server.requests.clear()
        small = VoyageEmbedder(profile, max_tokens_per_request=1000, backoff=0.01)
        texts = ["x" * 1200] * 5  # ~401 estimated tokens each: two fit under 1000
        small.embed_documents(texts)
        token_sizes = [len(r.body["input"]) for r in server.requests]
    assert item_sizes == [1000, 1000, 500]
    assert token_sizes == [2, 2, 1]


def test_voyage_errors_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    def echo_key(path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        return 401, {"detail": f"bad key {headers.get('authorization', '')}"}

    monkeypatch.setenv("VOYAGE_API_KEY", SECRET)
    with json_server(echo_key) as server:
        monkeypatch.setenv("VOYAGE_BASE_URL", server.url)
        embedder = VoyageEmbedder(resolve_model("voyage:voyage-code-3"), backoff=0.01)
        with pytest.raises(RemoteError) as info:
            embedder.embed_queries(["x"])
    assert len(server.requests) == 1  # 401 is not retried
    assert "HTTP 401" in str(info.value) and SECRET not in str(info.value)


def test_voyage_without_key_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOYAGE_API_KEY", raising=False)
    with pytest.raises(ModelUnavailableError, match="VOYAGE_API_KEY"):
        load_embedder(resolve_model("voyage:voyage-code-3"))


def test_plan_batches_keeps_oversized_text_alone() -> None:
    texts = ["a" * 30, "b" * 3000, "c" * 30, "d" * 30]
    assert [list(r) for r in plan_batches(texts, 10, 100)] == [[0], [1], [2, 3]]
    assert estimate_tokens("abcdef") == 3


def test_remote_backend_imports_no_torch() -> None:
    code = (
        "import sys; from codesearch.embed.registry import resolve_model; "
        "from codesearch.embed.local import load_embedder; import codesearch.embed.remote; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
