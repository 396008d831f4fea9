"""Rerank APIs against real HTTP servers on 127.0.0.1, one per response shape."""

from __future__ import annotations

from typing import Any

import pytest

from codesearch.core.http import RemoteError
from codesearch.search.rerank import (
    RerankerSpecError,
    RerankerUnavailableError,
    load_reranker,
    parse_rerank_response,
)
from tests.jsonserver import json_server

QUERY = "parse command line arguments"
DOCS = ["def main(argv): ...", "class Cache: ...", "def parse_args(argv): ..."]
# What each fake server "believes": a score per document text.
TRUTH = {DOCS[0]: 0.4, DOCS[1]: 0.05, DOCS[2]: 0.9}


def ranked(texts: list[str]) -> list[tuple[int, float]]:
    """Results best-first, as real servers return them (not in input order)."""
    pairs = [(i, TRUTH[t]) for i, t in enumerate(texts)]
    return sorted(pairs, key=lambda p: -p[1])


def cohere_jina_vllm(_path: str, body: Any, _headers: dict[str, str]) -> tuple[int, Any]:
    results = [
        {"index": i, "relevance_score": s, "document": {"text": body["documents"][i]}}
        for i, s in ranked(body["documents"])
    ]
    return 200, {
        "id": "r-1",
        "model": body["model"],
        "usage": {"total_tokens": 9},
        "results": results,
    }


def voyage(_path: str, body: Any, _headers: dict[str, str]) -> tuple[int, Any]:
    data = [{"index": i, "relevance_score": s} for i, s in ranked(body["documents"])]
    return 200, {"object": "list", "data": data, "model": body["model"], "usage": {}}


def tei(_path: str, body: Any, _headers: dict[str, str]) -> tuple[int, Any]:
    return 200, [{"index": i, "score": s} for i, s in ranked(body["texts"])]


def sglang(_path: str, body: Any, _headers: dict[str, str]) -> tuple[int, Any]:
    return 200, [{"score": s, "index": i, "meta_info": {}} for i, s in ranked(body["documents"])]


def expected() -> list[float]:
    return [TRUTH[d] for d in DOCS]


def test_cohere_jina_vllm_results_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODESEARCH_RERANK_API_KEY", "secret-123")
    with json_server(cohere_jina_vllm) as server:
        reranker = load_reranker(f"openai-rerank:Qwen/Qwen3-Reranker-4B@{server.url}/v1")
        assert reranker.score(QUERY, DOCS) == expected()
    (request,) = server.requests
    assert request.path == "/v1/rerank"
    assert request.body == {
        "model": "Qwen/Qwen3-Reranker-4B",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 3,
    }
    assert request.headers["authorization"] == "Bearer secret-123"


def test_full_rerank_url_is_used_as_given() -> None:
    with json_server(cohere_jina_vllm) as server:
        reranker = load_reranker(f"openai-rerank:rerank-v3.5@{server.url}/v2/rerank")
        assert reranker.score(QUERY, DOCS) == expected()
    assert [r.path for r in server.requests] == ["/v2/rerank"]
    assert "authorization" not in server.requests[0].headers


def test_sglang_bare_list_shape() -> None:
    with json_server(sglang) as server:
        reranker = load_reranker(f"openai-rerank:qwen3-reranker@{server.url}/v1")
        assert reranker.score(QUERY, DOCS) == expected()
    assert server.requests[0].path == "/v1/rerank"
    assert server.requests[0].body["documents"] == DOCS


def test_tei_bare_list_shape_and_paging() -> None:
    docs = DOCS * 12  # 36 texts: more than TEI's default client batch of 32
    with json_server(tei) as server:
        reranker = load_reranker(f"tei-rerank:{server.url}")
        assert reranker.score(QUERY, docs) == [TRUTH[d] for d in docs]
    assert [len(r.body["texts"]) for r in server.requests] == [32, 4]
    first = server.requests[0]
    assert first.path == "/rerank"
    assert set(first.body) == {"query", "texts", "raw_scores", "truncate"}
    assert first.body["query"] == QUERY


def test_voyage_data_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOYAGE_API_KEY", "pa-voyage-key")
    with json_server(voyage) as server:
        monkeypatch.setenv("VOYAGE_BASE_URL", f"{server.url}/v1")
        reranker = load_reranker("voyage-rerank:rerank-2.5")
        assert reranker.score(QUERY, DOCS) == expected()
    (request,) = server.requests
    assert request.path == "/v1/rerank"
    assert request.body["model"] == "rerank-2.5"
    assert request.body["query"] == QUERY
    assert request.body["documents"] == DOCS
    assert request.body["top_k"] == 3
    assert request.headers["authorization"] == "Bearer pa-voyage-key"


def test_voyage_without_key_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOYAGE_API_KEY", raising=False)
    with pytest.raises(RerankerUnavailableError, match="VOYAGE_API_KEY") as err:
        load_reranker("voyage-rerank:rerank-2.5-lite")
    assert "\n" not in str(err.value)


def test_server_error_is_one_line_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODESEARCH_RERANK_API_KEY", "never-print-me")

    def refuse(_path: str, _body: Any, _headers: dict[str, str]) -> tuple[int, Any]:
        return 400, {"error": "model not found"}

    with json_server(refuse) as server:
        reranker = load_reranker(f"openai-rerank:missing@{server.url}")
        with pytest.raises(RemoteError) as err:
            reranker.score(QUERY, DOCS)
    message = str(err.value)
    assert "HTTP 400" in message and "model not found" in message
    assert "never-print-me" not in message and "\n" not in message


def test_answers_that_do_not_cover_every_document_are_refused() -> None:
    with pytest.raises(RemoteError, match="no score for 1 of 3"):
        parse_rerank_response(
            {"results": [{"index": 0, "score": 1}, {"index": 2, "score": 0}]}, 3, "s"
        )
    with pytest.raises(RemoteError, match="without an index"):
        parse_rerank_response([{"score": 0.3}], 1, "s")
    with pytest.raises(RemoteError, match="bad result"):
        parse_rerank_response({"data": [{"index": 5, "relevance_score": 0.1}]}, 1, "s")
    with pytest.raises(RemoteError, match="results/data"):
        parse_rerank_response({"object": "error"}, 1, "s")


def test_bad_api_specs_are_one_line() -> None:
    with pytest.raises(RerankerSpecError, match="openai-rerank:<model>@"):
        load_reranker("openai-rerank:no-url-here")
    with pytest.raises(RerankerSpecError, match="tei-rerank:"):
        load_reranker("tei-rerank:localhost:8080")
