"""Reranking inside a real search: a TEI-style rerank server on 127.0.0.1 reorders the hits."""

from __future__ import annotations

import json

from codesearch.index.build import IndexOptions, build_index
from codesearch.search.render import result_to_json
from codesearch.search.searcher import Searcher, SearchOptions
from codesearch.store.tables import INDEX_DIRNAME

from .jsonserver import json_server


def _reverse(path, body, headers):
    # Later candidates score higher: the reranked order is the retrieval order reversed.
    return 200, [{"index": i, "score": round(0.1 * (i + 1), 3)} for i in range(len(body["texts"]))]


def test_rerank_reorders_top_candidates_and_keeps_both_scores(minirepo):
    build_index(minirepo, IndexOptions(embed=False))
    searcher = Searcher(minirepo / INDEX_DIRNAME)
    plain = searcher.search("count values", SearchOptions(k=5, mode="text"))
    with json_server(_reverse) as server:
        options = SearchOptions(k=3, mode="text", rerank=f"tei-rerank:{server.url}", rerank_top=5)
        result = searcher.search("count values", options)
    sent = server.requests[0]
    assert sent.path == "/rerank" and sent.body["query"] == "count values"
    assert len(sent.body["texts"]) == min(5, len(plain.hits))
    assert sent.body["texts"][0].startswith(plain.hits[0].path)  # path, symbol, then the code
    n = len(sent.body["texts"])
    top = result.hits[0]
    assert (top.path, top.start_line) == (plain.hits[n - 1].path, plain.hits[n - 1].start_line)
    assert top.rerank_score == round(0.1 * n, 3) and top.score == plain.hits[n - 1].score
    assert [h.rank for h in result.hits] == [1, 2, 3]
    scores = [h.rerank_score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    data = json.loads(json.dumps(result_to_json(result, "idx", "minilm")))
    assert {"score", "rerank_score"} <= set(data["results"][0])
    assert "rerank" in data["timings_ms"]
