"""The types every layer shares: what a search takes and gives back.

Plain dataclasses, no numpy, no LanceDB, nothing else of ours: the CLI talks to the
warm query server and prints results without importing the search machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from codesearch.core.wire import INDEX_DIRNAME  # noqa: F401 (re-exported: the folder, inside an indexed root, that holds its index)

# Beside it while `index --rebuild` builds the new index, swapped in when done (and
# the old index set aside, where the swap takes two renames).
REBUILD_DIRNAME = INDEX_DIRNAME + ".rebuild"
ASIDE_DIRNAME = INDEX_DIRNAME + ".old"

MODES = ("hybrid", "text", "vector")
CONTENT_TYPES = ("code", "docs", "all")


@dataclass(frozen=True)
class RankingConfig:
    adaptive_fusion: bool = False  # symbol-like queries lean on the lexical list (measured: +0.001, off)
    symbol_boost: bool = True  # query names the definition
    path_match: bool = True  # query words in the file path
    file_coherence: bool = True  # several hits in one file lift each other
    path_penalties: bool = True  # tests, examples, vendored, generated code sink
    dedup: bool = True  # overlapping chunks of one file shown once
    # Module chunks (imports, constants, glue) rank below definitions, and so do type
    # aliases and interfaces unless the query names one: they list many words but
    # rarely are "the code that does Y".
    kind_prior: bool = True
    # A query that names a member of a chunk (a method of a class stored whole) ranks and
    # reports that member; definitions named by the query are looked up beyond the
    # candidate lists.
    member_hits: bool = True
    # A symbol query lists exact definitions first, then qualified-suffix, then name matches.
    symbol_tiers: bool = True
    # Within a tier: the name as written before other cases, a type before its impl.
    tier_nudges: bool = True
    definition_lookup: bool = True
    # The n-th chunk of one file in the ranking is scaled by saturation_decay ** n, so
    # one file does not crowd the top unless it is clearly the answer.
    saturation: bool = False
    saturation_decay: float = 0.5
    saturation_free: int = 2  # chunks of one file before the decay starts
    definition_weight: float = 0.0  # natural-language query naming a definition (CamelCase words)
    path_weight: float = 0.25  # share of query words found in the path
    # Additive lift of a natural-language query's words found in the file stem or its folder,
    # as a share of the best score (0: off).
    stem_boost: float = 0.0
    # "all": every chunk gains from its file's other candidates; "best": only each file's
    # best chunk, in proportion to the file's summed score.
    coherence_mode: str = "all"
    coherence_best_frac: float = 0.2
    fusion: str = "linear"  # linear: weighted normalised scores; rrf: reciprocal ranks
    rrf_k: int = 60
    # Share of the vector score in linear fusion. On the 36-corpus dev benchmark 0.5 beats
    # 0.6 by +0.009 NDCG@10 (every category up); 0.4 and 0.7 are worse.
    vector_weight: float = 0.5
    # Dev benchmark (hybrid NDCG@10) with size_prior 0.2: 0.05 0.705, 0.1 0.708, 0.15 0.709,
    # 0.2 0.707, 0.3 0.705.
    coherence_weight: float = 0.15
    # Natural-language queries: a definition's score times (lines / 25) ** size_prior,
    # within [0.8, 1.6]: "how does X work" wants the code that does X, rarely its
    # two-line helpers. how_only: only for questions that start with "how". Dev benchmark
    # (with coherence 0.05): 0.05 0.700, 0.1 0.703, 0.2 0.705, 0.3 0.704 (0 0.700);
    # how-only 0.702.
    size_prior: float = 0.2
    size_prior_how_only: bool = False
    # The size prior counts lines of code (comments, docstrings and blank lines left out):
    # a builder method of 150 documented lines around three of code is a three-line
    # helper. Dev benchmark, hybrid / text NDCG@10, lines of code over 10: 0.731 / 0.700,
    # 12: 0.731 / 0.700, 15: 0.731 / 0.698, 20: 0.728 / 0.695, 25: 0.726 / 0.693; the
    # span's lines over 25 (before): 0.724 / 0.691, over 15: 0.725 / 0.690.
    size_prior_lines: float = 12.0
    # Ranked from words alone (text mode, or an index whose vectors have not arrived), a
    # definition's size counts more: with no vector to say what a short chunk means, a
    # few of its words matching says little. `bench/tune.py --mode text` picked these
    # on each half of the dev corpora, and they lift the other half too (+0.009, +0.004);
    # text mode on all 36 corpora 0.700 -> 0.708 NDCG@10, R@5 0.783 -> 0.803. In hybrid
    # ranking the same settings gave no such gain (`lexical_only`).
    lexical_size_prior: float = 0.4
    lexical_size_prior_lines: float = 6.0
    lexical_module_penalty: float = 0.9
    # BM25 weights of the symbol and path fields (the body's is 1): search.searcher.
    symbol_field_boost: float = 0.5
    path_field_boost: float = 0.5
    nl_symbol_weight: float = 0.0  # boost when a natural-language query's words name the definition
    test_penalty: float = 0.4
    example_penalty: float = 0.8
    vendor_penalty: float = 0.5
    module_penalty: float = 0.7
    # Kinds in DECLARATION_KINDS. Dev benchmark (hybrid NDCG@10): 0.8 0.714, 0.6 0.717
    # (TypeScript +0.015, TSX +0.033), 0.5 0.717.
    declaration_penalty: float = 0.6
    # BM25 weight of the query words' other spellings in code (`argument` -> `arg`, `ctx`
    # -> `context`: core.tokens.CODE_ABBREVIATIONS), as a share of the words' own (0: off).
    # Dev benchmark, hybrid / text NDCG@10: 0 0.717 / 0.680, 0.3 0.721 / 0.683, 0.6 0.722 /
    # 0.686, 0.8 0.722 / 0.682, 1.0 0.721 / 0.681.
    abbreviation_weight: float = 0.6
    # `parse` <-> `parser`, `handle` <-> `handler` among those spellings (the stemmer keeps
    # them apart): +0.001 / +0.003.
    agent_nouns: bool = True

    def lexical_only(self) -> RankingConfig:
        """These settings for a ranking with no vector list."""
        return replace(self, size_prior=self.lexical_size_prior,
                       size_prior_lines=self.lexical_size_prior_lines,
                       module_penalty=self.lexical_module_penalty)

    @classmethod
    def without(cls, *names: str) -> RankingConfig:
        return cls(**{n: False for n in names})

    @classmethod
    def none(cls, **overrides: object) -> RankingConfig:
        flags: dict[str, object] = {f.name: False for f in fields(cls) if f.type in ("bool", bool)}
        flags["size_prior"] = 0.0  # a signal with a strength, not a switch
        flags["lexical_size_prior"] = 0.0
        return cls(**{**flags, **overrides})  # type: ignore[arg-type]


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
    repos: tuple[str, ...] = ()  # only these repositories, in a store of many
    # At most this many hits from one file (0: no limit); the next files move up.
    per_file: int = 0


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
    repo: str = ""  # the repository, in a store of many (left out of JSON when empty)


@dataclass
class SearchResult:
    query: str
    mode: str
    hits: list[Hit]
    chunks: int
    vectors_pending: int
    timings_ms: dict[str, float]


