"""What a search takes and gives back: plain dataclasses, no numpy, no LanceDB.

Kept apart from `search.py` so the CLI can talk to the warm query server and
print results without importing the search machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codesearch.search.ranking import RankingConfig

MODES = ("hybrid", "text", "vector")
CONTENT_TYPES = ("code", "docs", "all")


@dataclass(frozen=True)
class SearchOptions:
    k: int = 10
    mode: str = "hybrid"
    languages: tuple[str, ...] = ()
    path_glob: str | None = None
    content: str = "code"
    candidates: int = 100
    ranking: RankingConfig = field(default_factory=RankingConfig)
    rerank: str | None = None  # reranker spec (see `codesearch.search.rerank.load_reranker`)
    rerank_top: int = 40
    query_model: str | None = None  # another model of the index model's family (e.g. voyage-4)


@dataclass
class Hit:
    rank: int
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    score: float
    text: str = ""
    lexical_rank: int | None = None
    vector_rank: int | None = None
    rerank_score: float | None = None
    # The chunk that matched, inside the definition start_line..end_line spans (a long
    # definition is stored in parts; a hit shows all of it).
    match_start_line: int = 0
    match_end_line: int = 0


@dataclass
class SearchResult:
    query: str
    mode: str
    hits: list[Hit]
    chunks: int
    vectors_pending: int
    timings_ms: dict[str, float]


