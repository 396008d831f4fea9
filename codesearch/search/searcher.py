"""Query an index: lexical (BM25 over identifier-split words) + vector, fused and ranked.

Vectors are scored in numpy over a matrix read once from the vectors table:
at repository scale (10^4 to 10^5 chunks) brute force is exact and faster than
LanceDB's flat search (24 ms vs 270 ms at 100k rows, docs/how-it-works.md).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from codesearch.core.tokens import (
    abbreviation_terms,
    agent_noun_terms,
    content_words,
    query_words,
    terms_text,
)
from codesearch.core.types import (
    CONTENT_TYPES,
    MODES,
    Hit,
    RankingConfig,
    SearchOptions,
    SearchResult,
)
from codesearch.embed.registry import ModelProfile
from codesearch.search.ranking import (
    Candidate,
    Member,
    at_most_per_file,
    best_member,
    definition_names,
    fuse_and_rank,
    last_part,
    symbol_query,
)
from codesearch.store.manifest import index_backend, index_profile, load_index_embedder
from codesearch.store.tables import (
    IndexError_,
    IndexStore,
    Manifest,
    read_manifest,
    vector_columns,
)

__all__ = ["CONTENT_TYPES", "MODES", "Hit", "SearchOptions", "SearchResult", "Searcher"]
# Field weights of the lexical BM25 (symbol, path, body); a row scores the weighted sum
# of its fields. Dev benchmark NDCG@10, text-only / hybrid: (0.5, 0.5, 1) 0.652 / 0.682,
# (1, 1, 1) 0.638 / 0.677, (0.25, 0.25, 1) 0.647 / 0.676; the best field alone
# (MultiMatchQuery) with (1.5, 0.75, 1) 0.632 / 0.677.
LEXICAL_BOOSTS = (0.5, 0.5, 1.0)
# Parts of one long definition are stored with blank lines between them trimmed;
# measured on the dev corpora, 1,946 part boundaries: adjacent or 1-2 blank lines.
MAX_PART_GAP = 2
# IVF_PQ search over a large store: partitions probed, and candidates rescored exactly
# per result wanted (bench/bench_scale.py measures recall against exact search).
ANN_NPROBES = 20
ANN_REFINE = 10
# A name defined in more places than this is common enough for the lists to find.
DEFINITION_LOOKUP_LIMIT = 20
ANALYZED_SINCE = 5  # indexer.CHUNKER_VERSION whose rows hold analyzed terms
# The interim (static) tier answers vector search while the index model has vectors for
# less than this share of the chunks, and the interim tier for more (index.build). The
# held-out measurement of issue 18 puts a static model at +0.009 NDCG@10 over lexical and
# MiniLM at about +0.03, so MiniLM vectors for 30% of the chunks are worth as much.
INTERIM_UNTIL = 0.3


@dataclass(frozen=True)
class CandidateLists:
    """A query's scored candidate lists (catalog row, score), best first, and every
    candidate by catalog row."""

    lexical: list[tuple[int, float]]
    vector: list[tuple[int, float]]
    pool: dict[int, Candidate]


class Catalog:
    """Chunk metadata in column arrays (no text), loaded once per Searcher."""

    COLUMNS = ("id", "path", "language", "symbol", "kind", "start_line", "end_line",
               "content_type", "content_hash", "members", "repo", "code_lines")

    def __init__(self, store: Any):
        """`store`: an IndexStore, or rows held in memory (store.memory.MemoryRows)."""
        self.version: int = store.table_version()  # the table version these rows are from
        data = store.catalog_columns(self.COLUMNS)  # an index written before `members` lacks it
        self.ids: list[str] = data["id"]
        self.paths: list[str] = data["path"]
        self.languages: list[str] = data["language"]
        self.symbols: list[str] = data["symbol"]
        self.kinds: list[str] = data["kind"]
        self.starts: list[int] = data["start_line"]
        self.ends: list[int] = data["end_line"]
        self.content_types: list[str] = data["content_type"]
        self.hashes: list[str] = data["content_hash"]
        self._members: list[str | None] = data.get("members") or [None] * len(self.ids)  # JSON, parsed when a row is a candidate
        self.repos: list[str] = data.get("repo") or [""] * len(self.ids)
        # 0 (unknown) in rows of an older chunker, and null in a column added to them since.
        self.code_lines: list[int] = [n or 0 for n in data.get("code_lines") or [0] * len(self.ids)]
        self.row_of_id = {chunk_id: i for i, chunk_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def definition(self, i: int) -> list[int]:
        """Rows of the definition that row i is part of, in line order.

        A definition longer than the chunk budget is stored as consecutive parts
        with its symbol, at most two blank lines apart (trimmed at part edges). A
        hit stands for the whole definition: the answer is the function, not the
        part of it that matched.
        """
        if not self.symbols[i]:
            return [i]
        rows = self._rows_by_path[self.paths[i]]
        at = rows.index(i)
        lo, hi = at, at
        while lo > 0 and self._continues(rows[lo - 1], rows[lo]):
            lo -= 1
        while hi + 1 < len(rows) and self._continues(rows[hi], rows[hi + 1]):
            hi += 1
        return rows[lo : hi + 1]

    def _continues(self, before: int, after: int) -> bool:
        gap = self.starts[after] - self.ends[before] - 1
        return self.symbols[after] == self.symbols[before] and 0 <= gap <= MAX_PART_GAP

    @functools.cached_property
    def _rows_by_path(self) -> dict[str, list[int]]:
        by_path: dict[str, list[int]] = defaultdict(list)
        for i, path in enumerate(self.paths):
            by_path[path].append(i)
        for rows in by_path.values():
            rows.sort(key=lambda r: (self.starts[r], self.ends[r]))
        return by_path

    def members(self, i: int) -> tuple[Member, ...]:
        raw = self._members[i]
        return tuple(tuple(m) for m in json.loads(raw)) if raw else ()  # type: ignore[misc]

    def candidate(self, i: int) -> Candidate:
        return Candidate(i, self.paths[i], self.symbols[i], self.kinds[i], self.starts[i],
                         self.ends[i], self.members(i), self.code_lines[i])

    @functools.cached_property
    def rows_by_hash(self) -> dict[str, list[int]]:
        rows: dict[str, list[int]] = defaultdict(list)
        for i, content_hash in enumerate(self.hashes):
            rows[content_hash].append(i)
        return rows

    def rows_named(self, name: str) -> list[int]:
        """Rows defining `name` (lower-case), as their own symbol or as a member's."""
        return self._rows_by_name.get(name, [])

    @functools.cached_property
    def _rows_by_name(self) -> dict[str, list[int]]:
        by_name: dict[str, list[int]] = defaultdict(list)
        for i, symbol in enumerate(self.symbols):
            if symbol:
                by_name[last_part(symbol).lower()].append(i)
        for i, raw in enumerate(self._members):
            if raw:
                for member in json.loads(raw):
                    by_name[last_part(member[0]).lower()].append(i)
        return by_name

    def mask(self, options: SearchOptions) -> np.ndarray:
        keep = np.ones(len(self), dtype=bool)
        if options.content != "all":
            keep &= np.array([ct == options.content for ct in self.content_types], dtype=bool)
        if options.languages:
            wanted = set(options.languages)
            keep &= np.array([lang in wanted for lang in self.languages], dtype=bool)
        if options.repos:
            wanted_repos = set(options.repos)
            keep &= np.array([(r or "") in wanted_repos for r in self.repos], dtype=bool)
        if options.path_glob:
            glob = options.path_glob
            keep &= np.array(
                [fnmatch.fnmatch(p, glob) or fnmatch.fnmatch(p, f"{glob.rstrip('/')}/*")
                 for p in self.paths], dtype=bool)
        return keep


class Searcher:
    """Answers queries against one index; keep it around to answer many."""

    def __init__(
        self,
        index_dir: Path,
        embedder: Any | None = None,
        backend: str | None = None,
        *,
        store: IndexStore | None = None,
        manifest: Manifest | None = None,
        ann: bool = False,
    ):
        """The index in `index_dir`; or, with `store` and `manifest`, the tables of a
        store of many repositories (store.shared), searched through its ANN index once it
        has one when `ann`."""
        manifest = manifest or read_manifest(index_dir)
        if manifest is None:
            raise IndexError_(f"no index at {index_dir}: run `codesearch index` first")
        self.index_dir = index_dir
        self.manifest: Manifest = manifest
        self.backend = backend or index_backend(manifest)
        self._embedder = embedder
        self.store = store or IndexStore(index_dir)
        self._ann_allowed = ann  # a local index is always scored exactly
        self._catalog: Catalog | None = None
        self._vectors: tuple[dict[str, np.ndarray], np.ndarray] | None = None
        self._interim: tuple[dict[str, np.ndarray], np.ndarray] | None = None
        self._rerankers: dict[str, Any] = {}
        self._query_embedders: dict[str, Any] = {}

    def adopt_catalog(self, other: Searcher) -> None:
        """Take another Searcher's catalog if it was read from the table version this
        one sees (a manifest rewrite alone does not change the rows)."""
        if other._catalog is not None and other._catalog.version == self.store.table_version():
            self._catalog = other._catalog

    @property
    def catalog_loaded(self) -> bool:
        return self._catalog is not None

    @property
    def loaded_embedder(self) -> Any | None:
        """The query model if it is loaded already (None: not yet asked for)."""
        return self._embedder

    def lend_embedder(self, embedder: Any) -> None:
        """Embed queries with this model, unless one is loaded already."""
        if self._embedder is None:
            self._embedder = embedder

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.store)
        return self._catalog

    def vectors(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(stored vector columns, for each chunk its row in them or -1 if pending)."""
        if self._vectors is None:
            self._vectors = self._vector_rows(self.store.vectors)
        return self._vectors

    def _vector_rows(self, table: Any | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        columns: dict[str, np.ndarray] = {"content_hash": np.array([], dtype=object)}
        if table is not None:
            columns = vector_columns(table)
        row_of = {h: i for i, h in enumerate(columns["content_hash"])}
        return columns, np.array([row_of.get(h, -1) for h in self.catalog.hashes], dtype=np.int64)

    def interim(self) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """The interim tier's (columns, rows) when it answers vector search instead of the
        index model's vectors (a first index run still embedding), else None."""
        if not isinstance(self.manifest.extra.get("interim"), dict) or self.uses_ann:
            return None
        _, rows = self.vectors()
        missing = int((rows < 0).sum())
        if missing <= len(rows) * (1 - INTERIM_UNTIL):
            return None
        if self._interim is None:
            self._interim = self._vector_rows(self.store.interim_vectors())
        return self._interim if int((self._interim[1] < 0).sum()) < missing else None

    def interim_embedder(self) -> Any:
        record = self.manifest.extra["interim"]
        return _interim_model(json.dumps(record["profile"], sort_keys=True), int(record["dim"]),
                              str(record.get("runtime", "auto")))

    def embedder(self, query_model: str | None = None) -> Any:
        if query_model:
            if query_model not in self._query_embedders:
                from codesearch.embed.registry import check_query_model, resolve_model

                profile = resolve_model(query_model)
                check_query_model(index_profile(self.manifest), profile, self.manifest.dim)
                self._query_embedders[query_model] = load_index_embedder(
                    profile, self.manifest.dim, self.backend)
            return self._query_embedders[query_model]
        if self._embedder is None:
            self._embedder = load_index_embedder(
                index_profile(self.manifest), self.manifest.dim, self.backend)
        return self._embedder

    def row_scores(self, qvec: np.ndarray, usable_rows: np.ndarray, limit: int) -> np.ndarray:
        """Similarity of the query to every stored row (-inf where not scored)."""
        columns, _ = self.vectors()
        precision = self.manifest.precision
        if precision == "float32":
            return columns["vector"] @ qvec
        from codesearch.embed.quantize import (
            Calibration,
            hamming_topk,
            int8_scores,
            pack_binary,
        )

        cal = Calibration.from_json(self.manifest.calibration or {})
        if precision == "int8":
            return int8_scores(qvec, columns["codes"], cal)
        # binary: Hamming distance picks a pool, int8 codes rescore it.
        scores = np.full(len(columns["bits"]), -np.inf, dtype=np.float32)
        rows = np.unique(usable_rows)
        if len(rows) == 0:
            return scores
        nearest, _ = hamming_topk(pack_binary(qvec), columns["bits"][rows], max(10 * limit, 200))
        pool = rows[nearest]
        scores[pool] = int8_scores(qvec, columns["codes"][pool], cal)
        return scores

    def reranker(self, spec: str) -> Any:
        if spec not in self._rerankers:
            from codesearch.search.rerank import load_reranker

            self._rerankers[spec] = load_reranker(spec)
        return self._rerankers[spec]

    def lexical(
        self, query: str, keep: np.ndarray, limit: int,
        boosts: tuple[float, float, float] = LEXICAL_BOOSTS, abbreviation_weight: float = 0.0,
        agent_nouns: bool = False,
    ) -> list[tuple[int, float]]:
        words = content_words(query_words(query))
        # Rows chunked before version 5 hold words that the index itself analyzes.
        analyzed = int(self.manifest.extra.get("chunker", 0)) >= ANALYZED_SINCE
        text = terms_text(words) if analyzed else " ".join(words)
        if not text or len(self.catalog) == 0:
            return []
        other_text = ""
        if abbreviation_weight > 0 and analyzed:
            terms = text.split()
            others = abbreviation_terms(terms) + (agent_noun_terms(words) if agent_nouns else [])
            other_text = " ".join(dict.fromkeys(t for t in others if t not in terms))
        fetch = min(len(self.catalog), limit * 3)
        out = []
        for chunk_id, score in self.store.full_text(text, boosts, fetch, other_text, abbreviation_weight):
            i = self.catalog.row_of_id.get(chunk_id)
            if i is not None and keep[i]:
                out.append((i, float(score)))
                if len(out) >= limit:
                    break
        return out

    @functools.cached_property
    def uses_ann(self) -> bool:
        """Whether vector search goes through the store's ANN index (a store past
        store.shared.ANN_THRESHOLD vectors) instead of scoring every vector here."""
        vectors = self.store.vectors
        if not self._ann_allowed or vectors is None:
            return False
        from codesearch.store.shared import has_vector_index

        return self.manifest.precision == "float32" and has_vector_index(vectors)

    def ann_vector(self, qvec: np.ndarray, keep: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """Nearest vectors by the IVF_PQ index, rescored exactly (`refine_factor`)."""
        assert self.store.vectors is not None
        found = (self.store.vectors.search(qvec).distance_type("dot").nprobes(ANN_NPROBES)
                 .refine_factor(ANN_REFINE).limit(limit * 4)
                 .select(["content_hash", "_distance"]).to_arrow())
        rows_of = self.catalog.rows_by_hash
        out: list[tuple[int, float]] = []
        for content_hash, distance in zip(found["content_hash"].to_pylist(),
                                          found["_distance"].to_pylist(), strict=True):
            for i in rows_of.get(content_hash, ()):
                if keep[i]:
                    out.append((i, -float(distance)))
        return out[:limit]

    def vector(
        self, query: str, keep: np.ndarray, limit: int, query_model: str | None = None
    ) -> list[tuple[int, float]]:
        if self.uses_ann:
            qvec = np.asarray(self.embedder(query_model).embed_queries([query])[0], dtype=np.float32)
            return self.ann_vector(qvec, keep, limit)
        interim = self.interim() if query_model is None else None
        columns, rows = interim if interim is not None else self.vectors()
        usable = keep & (rows >= 0)
        idx = np.nonzero(usable)[0]
        if len(idx) == 0:
            return []
        if interim is not None:
            qvec = np.asarray(self.interim_embedder().embed_queries([query])[0], dtype=np.float32)
            row_scores = columns["vector"] @ qvec
        else:
            qvec = np.asarray(self.embedder(query_model).embed_queries([query])[0], dtype=np.float32)
            row_scores = self.row_scores(qvec, rows[idx], limit)
        scores = row_scores[rows[idx]]
        finite = np.isfinite(scores)
        idx, scores = idx[finite], scores[finite]
        if len(idx) == 0:
            return []
        top = min(limit, len(idx))
        part = np.argpartition(-scores, top - 1)[:top]
        order = part[np.argsort(-scores[part], kind="stable")]
        return [(int(i), float(s)) for i, s in zip(idx[order], scores[order], strict=True)]

    def candidates(
        self, query: str, options: SearchOptions, timings: dict[str, float] | None = None
    ) -> CandidateLists:
        """What ranking starts from: the lexical and vector lists, and every candidate
        (the definitions the query names included). Ranking is a pure function of these
        (`fuse_and_rank`), so bench/tune.py scores a ranking change without searching."""
        if options.mode not in MODES:
            raise ValueError(f"unknown mode '{options.mode}' (choose {', '.join(MODES)})")
        if options.per_file < 0:
            raise ValueError(f"per_file must be 0 (no limit) or more, not {options.per_file}")
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        catalog = self.catalog
        keep = catalog.mask(options)
        timings["load"] = (time.perf_counter() - t0) * 1000
        lexical: list[tuple[int, float]] = []
        vector: list[tuple[int, float]] = []
        if options.mode in ("hybrid", "text"):
            t = time.perf_counter()
            ranking = options.ranking
            boosts = (ranking.symbol_field_boost, ranking.path_field_boost, 1.0)
            lexical = self.lexical(query, keep, options.candidates, boosts,
                                   ranking.abbreviation_weight, ranking.agent_nouns)
            timings["lexical"] = (time.perf_counter() - t) * 1000
        if options.mode in ("hybrid", "vector"):
            t = time.perf_counter()
            vector = self.vector(query, keep, options.candidates, options.query_model)
            timings["vector"] = (time.perf_counter() - t) * 1000
        pool = {i: catalog.candidate(i) for i, _ in (*lexical, *vector)}
        if options.ranking.definition_lookup:
            for name in definition_names(query):
                for i in catalog.rows_named(name)[:DEFINITION_LOOKUP_LIMIT]:
                    if keep[i] and i not in pool:
                        pool[i] = catalog.candidate(i)
        return CandidateLists(lexical, vector, pool)

    def search(self, query: str, options: SearchOptions | None = None) -> SearchResult:
        options = options or SearchOptions()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        found = self.candidates(query, options, timings)
        lexical, vector, pool = found.lexical, found.vector, found.pool
        catalog = self.catalog
        t = time.perf_counter()
        wanted = max(options.k, options.rerank_top) if options.rerank else options.k
        ranked = fuse_and_rank(query, lexical, vector, pool, self.ranking(options))
        if options.per_file:
            # A file is one path of one repository (a store holds many).
            ranked = at_most_per_file(ranked, lambda i: (catalog.repos[i], catalog.paths[i]),
                                      options.per_file)
        ranked = ranked[:wanted]
        lex_rank = {i: r + 1 for r, (i, _) in enumerate(lexical)}
        vec_rank = {i: r + 1 for r, (i, _) in enumerate(vector)}
        hits = [
            Hit(rank=n + 1, path=catalog.paths[i], start_line=catalog.starts[i],
                end_line=catalog.ends[i], symbol=catalog.symbols[i], kind=catalog.kinds[i],
                language=catalog.languages[i], score=round(score, 6), repo=catalog.repos[i] or "",
                lexical_rank=lex_rank.get(i), vector_rank=vec_rank.get(i),
                match_start_line=catalog.starts[i], match_end_line=catalog.ends[i])
            for n, (i, score) in enumerate(ranked)
        ]
        self.attach_definitions(hits, [i for i, _ in ranked])
        asked = symbol_query(query)
        if options.ranking.member_hits and asked is not None:
            for hit, (i, _) in zip(hits, ranked, strict=True):
                member = best_member(asked[0], pool[i])
                if member is not None:
                    _narrow(hit, member)
        timings["rank"] = (time.perf_counter() - t) * 1000
        if options.rerank:
            t = time.perf_counter()
            hits = rerank_hits(self.reranker(options.rerank), query, hits, options.rerank_top)
            timings["rerank"] = (time.perf_counter() - t) * 1000
        hits = hits[: options.k]
        timings["total"] = (time.perf_counter() - t0) * 1000
        return SearchResult(query, options.mode, hits, len(catalog), self.pending(options.mode), timings)

    def ranking(self, options: SearchOptions) -> RankingConfig:
        """The ranking options, with the vector weight scaled for the model whose vectors
        answer (`ModelProfile.fusion_scale`: a static model's count less)."""
        if options.mode != "hybrid":
            return options.ranking
        record = self.manifest.extra.get("interim")
        interim = options.query_model is None and self.interim() is not None
        profile = (ModelProfile.from_manifest(record["profile"]) if interim and isinstance(record, dict)
                   else index_profile(self.manifest))
        if profile.fusion_scale == 1.0:
            return options.ranking
        return replace(options.ranking,
                       vector_weight=options.ranking.vector_weight * profile.fusion_scale)

    def pending(self, mode: str) -> int:
        """Chunks without a vector; text mode answers from the manifest, loading no vectors."""
        if mode == "text" or self.uses_ann:
            return self.manifest.vectors_pending
        _, rows = self.vectors()
        return int((rows < 0).sum())

    def attach_definitions(self, hits: Sequence[Hit], rows: Sequence[int]) -> None:
        """Give each hit the lines and text of its whole definition (its parts joined)."""
        catalog = self.catalog
        definitions = [catalog.definition(i) for i in rows]
        wanted = [r for parts in definitions for r in parts]
        # Catalog rows are in table order, so a chunk's catalog index is its position.
        texts = self.store.texts_at(wanted, [catalog.ids[r] for r in wanted])
        for hit, row, parts in zip(hits, rows, definitions, strict=True):
            pieces = [texts.get(catalog.ids[r]) for r in parts]
            if None in pieces:  # a part rewritten since the catalog was read
                parts, pieces = [row], [texts.get(catalog.ids[row])]
            text = pieces[0] or ""
            for before, after, piece in zip(parts[:-1], parts[1:], pieces[1:], strict=True):
                # The blank lines between two parts were trimmed off their edges.
                text += "\n" * (catalog.starts[after] - catalog.ends[before]) + (piece or "")
            hit.start_line, hit.end_line = catalog.starts[parts[0]], catalog.ends[parts[-1]]
            hit.text = text


@functools.lru_cache(maxsize=2)
def _interim_model(profile_json: str, dim: int, runtime: str) -> Any:
    """The interim tier's query model, loaded once per process (a searcher is reopened
    every time the indexer rewrites the manifest)."""
    return load_index_embedder(ModelProfile.from_manifest(json.loads(profile_json)), dim, runtime)


def _narrow(hit: Hit, member: Member) -> None:
    """Report the member a query named instead of the chunk holding it."""
    symbol, kind, start, end = member
    lines = hit.text.split("\n")
    hit.text = "\n".join(lines[start - hit.start_line : end - hit.start_line + 1])
    hit.symbol, hit.kind = symbol, kind
    hit.start_line = hit.match_start_line = start
    hit.end_line = hit.match_end_line = end


def rerank_document(hit: Hit) -> str:
    """What the reranker reads: where the code is, its name, then the code."""
    header = f"{hit.path} {hit.symbol}".strip()
    return f"{header}\n{hit.text}"


def rerank_hits(reranker: Any, query: str, hits: Sequence[Hit], top: int) -> list[Hit]:
    """Reorder the first `top` hits by the reranker's score; the rest keep their order below."""
    head, tail = list(hits[:top]), list(hits[top:])
    if not head:
        return list(hits)
    scores = reranker.score(query, [rerank_document(h) for h in head])
    for hit, score in zip(head, scores, strict=True):
        hit.rerank_score = round(float(score), 6)
    head.sort(key=lambda h: -(h.rerank_score or 0.0))
    ordered = head + tail
    for n, hit in enumerate(ordered):
        hit.rank = n + 1
    return ordered
