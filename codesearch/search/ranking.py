"""Code-aware ranking: fuse lexical and vector candidates, then apply signals.

Each signal can be switched off (`RankingConfig`) so its worth can be measured
with an ablation on the development benchmark (`bench/ablation.py`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from codesearch.core.tokens import looks_like_symbol, query_words, split_identifier
from codesearch.core.types import RankingConfig

Member = tuple[str, str, int, int]  # symbol, kind, start_line, end_line (source.chunk.Member)


@dataclass(frozen=True)
class Candidate:
    """What ranking needs to know of a chunk."""

    index: int
    path: str
    symbol: str
    kind: str
    start_line: int
    end_line: int
    members: tuple[Member, ...] = ()  # definitions inside the chunk other than its own
    code_lines: int = 0  # lines with code (no comments, no blank lines); 0: not known


_TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|spec|specs|testing|testdata|fixtures?)(/|$)|(^|/)test_[^/]*$|"
    r"_test\.[a-z]+$|\.(test|spec)\.[a-z]+$|(^|/)conftest\.py$|Tests?\.(java|kt|cs|swift)$"
)
_EXAMPLE_PATH = re.compile(r"(^|/)(examples?|samples?|demos?|docs?|benchmarks?|bench)(/|$)")
_VENDOR_PATH = re.compile(
    r"(^|/)(vendor|vendored|third_party|thirdparty|external|extern|_vendor|node_modules)(/|$)|"
    r"(\.min\.js|\.pb\.go|_pb2\.py|\.generated\.[a-z]+|\.g\.dart)$"
)


def path_penalty(
    path: str, query: str, config: RankingConfig | None = None, symbol: str = ""
) -> float:
    """Vendored, test and example code sink unless the query asks for it. A test is
    known by its path or, for Rust's inline `mod tests`, by its symbol (`tests::parse`)."""
    config = config or RankingConfig()
    lowered = query.lower()
    if _VENDOR_PATH.search(path):
        return config.vendor_penalty
    is_test = _TEST_PATH.search(path) or _in_test_module(symbol)
    if is_test and "test" not in lowered and "spec" not in lowered:
        return config.test_penalty
    if _EXAMPLE_PATH.search(path) and not any(w in lowered for w in ("example", "doc", "bench")):
        return config.example_penalty
    return 1.0


def _in_test_module(symbol: str) -> bool:
    # Only enclosing parts count: a definition named `test` is not a test module.
    return any(p.lower() in ("test", "tests") for p in _symbol_parts(symbol)[:-1])


# Declarations without behaviour: TypeScript and Go type aliases and interfaces.
DECLARATION_KINDS = frozenset({"type", "interface"})
SPAN_REFERENCE = 25.0  # size prior over a row's span, for rows without lines of code


def kind_factor(kind: str, symbolish: bool, config: RankingConfig) -> float:
    if kind == "module":
        return config.module_penalty
    if kind in DECLARATION_KINDS and not symbolish:
        return config.declaration_penalty
    return 1.0


def _tier_nudge(query: str, cand: Candidate) -> float:
    """Within a tier of name matches: the name as written (`YAML::Node`, not
    `detail::node`) first, and a type's definition before its `impl` or `instance`."""
    asked = _symbol_parts(query.strip().rstrip("()"))
    if not asked:
        return 0.0
    own = _symbol_parts(cand.symbol)
    nudge = 0.05 if own[-len(asked):] == asked else 0.0
    if cand.kind == "impl" and own and own[-1].lower() == asked[-1].lower():
        nudge -= 0.1  # the impl itself matched, not a member of it
    return nudge


def _symbol_parts(symbol: str) -> list[str]:
    return [p for p in re.split(r"::|[.:#/]|->", symbol) if p]  # `:` Lua methods


def symbol_factor(
    query: str, words: Sequence[str], symbol: str, symbolish: bool, nl_weight: float = 0.0
) -> float:
    if not symbol:
        return 1.0
    parts = _symbol_parts(symbol)
    last = parts[-1].lower() if parts else ""
    q = query.strip().rstrip("()")
    if symbolish:
        q_parts = _symbol_parts(q)
        if q.lower() == symbol.lower():
            return 3.0
        if q_parts and [p.lower() for p in q_parts] == [p.lower() for p in parts[-len(q_parts):]]:
            return 2.6
        if q_parts and q_parts[-1].lower() == last:
            return 1.8
    if not words or nl_weight <= 0:
        return 1.0
    sym_words = set(split_identifier(symbol.replace(".", "_").replace("::", "_")))
    sym_words.update(p.lower() for p in parts)
    hits = sum(1 for w in words if w in sym_words)
    if hits == 0:
        return 1.0
    coverage = hits / len(words)
    exact_name = any(w == last for w in words)
    return 1.0 + nl_weight * (coverage + (0.5 if exact_name else 0.0))


# Kind words a developer adds to a name: `Value enum`, `struct Lexer`, `trait Visitor`.
KIND_WORDS = {
    "class": "class", "struct": "struct", "enum": "enum", "trait": "trait", "interface": "interface",
    "protocol": "interface", "type": "type", "function": "function", "func": "function", "fn": "function",
    "method": "method", "module": "namespace", "namespace": "namespace", "impl": "impl",
    "macro": "macro", "typedef": "type",
}


def symbol_query(query: str) -> tuple[str, str] | None:
    """(name, kind or "") when the query asks for a definition by name: `Session.send`,
    `read_csv`, or a name with a kind word (`Value enum`); None for a sentence."""
    q = query.strip()
    if looks_like_symbol(q):
        return q, ""
    words = q.split()
    if len(words) == 2:
        for kind_word, name in (words, words[::-1]):
            kind = KIND_WORDS.get(kind_word.lower())
            if kind and looks_like_symbol(name):
                return name, kind
    return None


def best_member(query: str, cand: Candidate) -> Member | None:
    """The member of the chunk a symbol query names better than the chunk's own symbol."""
    if not cand.members:
        return None
    best, best_factor = None, symbol_factor(query, (), cand.symbol, True)
    for member in cand.members:
        factor = symbol_factor(query, (), member[0], True)
        if factor > best_factor:
            best, best_factor = member, factor
    return best


_IDENTIFIER = re.compile(r"\b(?:[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+|[a-z][a-z0-9]*[A-Z]\w*|\w+_\w+)\b")


def definition_names(query: str) -> set[str]:
    """Names a query asks for, lower-cased: the whole query when it is a symbol, else its
    CamelCase, camelCase and snake_case words."""
    asked = symbol_query(query)
    if asked is not None:
        parts = _symbol_parts(asked[0].rstrip("()"))
        return {parts[-1].lower()} if parts else set()
    return {m.group(0).lower() for m in _IDENTIFIER.finditer(query)}


def last_part(symbol: str) -> str:
    parts = _symbol_parts(symbol)
    return parts[-1] if parts else ""


def definition_factor(names: set[str], cand: Candidate, weight: float) -> float:
    """A natural-language query that names this definition (or its file) lifts it."""
    if not names or weight <= 0 or last_part(cand.symbol).lower() not in names:
        return 1.0
    stem = cand.path.rsplit("/", 1)[-1].split(".", 1)[0].lower()
    return 1.0 + weight * (1.5 if stem.replace("_", "") in {n.replace("_", "") for n in names} else 1.0)


def size_factor(cand: Candidate, weight: float, reference: float = 12.0) -> float:
    """(lines of code / reference) ** weight, within [0.8, 1.6]; the span's lines when the
    row does not know its lines of code (an index of an older chunker)."""
    if cand.code_lines > 0:
        ratio = cand.code_lines / reference
    else:  # as before chunker version 8: the span over SPAN_REFERENCE lines
        ratio = max(1, cand.end_line - cand.start_line + 1) / SPAN_REFERENCE
    return min(1.6, max(0.8, ratio ** weight))


def path_factor(words: Sequence[str], path: str, weight: float = 0.25) -> float:
    if not words:
        return 1.0
    stem_words = set(split_identifier(re.sub(r"[^A-Za-z0-9]+", "_", path)))
    hits = sum(1 for w in words if w in stem_words)
    return 1.0 + weight * hits / len(words)


def _normalised(scored: Sequence[tuple[int, float]]) -> dict[int, float]:
    """Scores scaled to [0, 1] by the best of the list (0 stays 0 for BM25)."""
    if not scored:
        return {}
    top = max(score for _, score in scored)
    low = min(score for _, score in scored)
    if top <= low:
        # One candidate, or all tied: each is the best of its list. (Scaled from the
        # lowest, the only word match of a query, often a name just written, counted 0.)
        return {idx: 1.0 for idx, _ in scored}
    return {idx: (score - low) / (top - low) for idx, score in scored}


def fused_scores(
    lexical: Sequence[tuple[int, float]],
    vector: Sequence[tuple[int, float]],
    config: RankingConfig,
    symbolish: bool,
) -> dict[int, float]:
    w_vec = config.vector_weight
    if config.adaptive_fusion and symbolish:
        w_vec *= 0.4
    if not vector:
        w_vec = 0.0
    elif not lexical:
        w_vec = 1.0
    w_lex = 1.0 - w_vec
    base: dict[int, float] = defaultdict(float)
    if config.fusion == "rrf":
        for rank, (idx, _) in enumerate(lexical):
            base[idx] += w_lex / (config.rrf_k + rank + 1)
        for rank, (idx, _) in enumerate(vector):
            base[idx] += w_vec / (config.rrf_k + rank + 1)
        return base
    for idx, score in _normalised(lexical).items():
        base[idx] += w_lex * score
    for idx, score in _normalised(vector).items():
        base[idx] += w_vec * score
    return base


def fuse_and_rank(
    query: str,
    lexical: Sequence[tuple[int, float]],
    vector: Sequence[tuple[int, float]],
    candidates: Mapping[int, Candidate],
    config: RankingConfig,
) -> list[tuple[int, float]]:
    """Ranked (chunk index, score) from the two scored candidate lists, best first."""
    if not vector:
        config = config.lexical_only()
    asked = symbol_query(query)
    symbolish, kind_hint = asked is not None, ""
    if asked is not None:
        query, kind_hint = asked
    words = query_words(query)
    base = fused_scores(lexical, vector, config, symbolish)
    # Definitions the query names that neither list found start from half the best score.
    floor = 0.5 * max(base.values(), default=1.0)
    for idx in candidates:
        base.setdefault(idx, floor)
    names = definition_names(query) if not symbolish else set()
    sized = config.size_prior > 0 and not symbolish and (
        not config.size_prior_how_only or query.lstrip().lower().startswith("how"))
    scores: dict[int, float] = {}
    tiers: dict[int, float] = {}
    for idx, score in base.items():
        cand = candidates[idx]
        if config.symbol_boost:
            factor = symbol_factor(query, words, cand.symbol, symbolish, config.nl_symbol_weight)
            member = best_member(query, cand) if symbolish and config.member_hits else None
            if member is not None:
                factor = max(factor, symbol_factor(query, words, member[0], True))
            if symbolish and kind_hint and factor > 1.0 and cand.kind == kind_hint:
                factor += 0.2  # `Value enum`: the enum before a struct of that name
            score *= factor
            if symbolish and config.symbol_tiers:
                nudged = config.tier_nudges and factor > 1.0
                tiers[idx] = factor + _tier_nudge(query, cand) if nudged else factor
        if names:
            score *= definition_factor(names, cand, config.definition_weight)
        if config.path_match:
            score *= path_factor(words, cand.path, config.path_weight)
        if config.path_penalties:
            score *= path_penalty(cand.path, query, config, cand.symbol)
        if config.kind_prior:
            score *= kind_factor(cand.kind, symbolish, config)
        if sized:
            score *= size_factor(cand, config.size_prior, config.size_prior_lines)
        scores[idx] = score
    if config.stem_boost > 0 and not symbolish:
        _stem_boost(scores, candidates, words, config.stem_boost)
    if config.file_coherence:
        if config.coherence_mode == "best":
            scores = _best_chunk_coherence(scores, candidates, config.coherence_best_frac)
        else:
            scores = _file_coherence(scores, candidates, config.coherence_weight)
    def order(item: tuple[int, float]) -> tuple[float, float, int]:
        return (-tiers.get(item[0], 1.0), -item[1], item[0])

    ranked = sorted(scores.items(), key=order)
    if config.saturation:
        ranked = sorted(_saturate(ranked, candidates, config.saturation_decay,
                                  config.saturation_free), key=order)
    if config.dedup:
        ranked = _dedup(ranked, candidates)
    return ranked


def at_most_per_file(
    ranked: Sequence[tuple[int, float]], file_of: Callable[[int], Hashable], limit: int
) -> list[tuple[int, float]]:
    """The ranking with at most `limit` rows of any one file (`SearchOptions.per_file`)."""
    shown: dict[Hashable, int] = defaultdict(int)
    kept = []
    for i, score in ranked:
        key = file_of(i)
        if shown[key] < limit:
            shown[key] += 1
            kept.append((i, score))
    return kept


def _file_coherence(
    scores: dict[int, float], candidates: Mapping[int, Candidate], weight: float
) -> dict[int, float]:
    by_file: dict[str, list[float]] = defaultdict(list)
    for idx, score in scores.items():
        by_file[candidates[idx].path].append(score)
    out = {}
    for idx, score in scores.items():
        siblings = sorted(by_file[candidates[idx].path], reverse=True)
        others = sum(siblings[:4]) - score if score in siblings[:4] else sum(siblings[:3])
        out[idx] = score + weight * max(0.0, others)
    return out


def _saturate(
    ranked: list[tuple[int, float]], candidates: Mapping[int, Candidate], decay: float, free: int
) -> list[tuple[int, float]]:
    """Past the first `free` chunks of a file in the ranking, scale each by decay ** n."""
    seen: dict[str, int] = defaultdict(int)
    out = []
    for idx, score in ranked:
        path = candidates[idx].path
        out.append((idx, score * decay ** max(0, seen[path] - free + 1)))
        seen[path] += 1
    return out


def _path_parts(path: str) -> set[str]:
    """Words of a file's stem and of its folder."""
    folder, _, name = path.rpartition("/")
    parts = set(split_identifier(name.split(".", 1)[0]))
    if folder:
        parts.update(split_identifier(folder.rsplit("/", 1)[-1]))
    return parts


def _overlap(words: set[str], parts: set[str]) -> int:
    """Words found among the parts, a shared prefix of 3+ letters counting (route/routing)."""
    found = 0
    for word in words:
        if word in parts or any(
            len(short) >= 3 and long.startswith(short)
            for part in parts
            for short, long in [(word, part) if len(word) <= len(part) else (part, word)]
        ):
            found += 1
    return found


# Words of a question that never name a file.
_QUESTION_WORDS = frozenset(
    "a an and are as at be by do does for from has have how if in is it not of on or the to was"
    " what when where which who why with".split()
)


def _stem_boost(
    scores: dict[int, float], candidates: Mapping[int, Candidate], words: Sequence[str], weight: float
) -> None:
    """A file named for the query's words lifts its chunks (in place)."""
    keywords = {w for w in words if len(w) > 2 and w not in _QUESTION_WORDS}
    if not keywords or not scores:
        return
    unit = weight * max(scores.values())
    cache: dict[str, float] = {}
    for idx in scores:
        path = candidates[idx].path
        if path not in cache:
            cache[path] = _overlap(keywords, _path_parts(path)) / len(keywords)
        if cache[path] >= 0.1:
            scores[idx] += unit * cache[path]


def _best_chunk_coherence(
    scores: dict[int, float], candidates: Mapping[int, Candidate], frac: float
) -> dict[int, float]:
    """Each file's best chunk gains in proportion to the file's summed candidate score."""
    if not scores:
        return scores
    file_sum: dict[str, float] = defaultdict(float)
    best: dict[str, int] = {}
    for idx, score in scores.items():
        path = candidates[idx].path
        file_sum[path] += score
        if path not in best or score > scores[best[path]]:
            best[path] = idx
    top_sum = max(file_sum.values())
    if top_sum <= 0:
        return scores
    unit = frac * max(scores.values())
    out = dict(scores)
    for path, idx in best.items():
        out[idx] += unit * file_sum[path] / top_sum
    return out


def _dedup(
    ranked: list[tuple[int, float]], candidates: Mapping[int, Candidate]
) -> list[tuple[int, float]]:
    """Drop chunks overlapping a better one, and further parts of an already shown definition."""
    kept: list[tuple[int, float]] = []
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    seen_symbols: set[tuple[str, str]] = set()
    for idx, score in ranked:
        c = candidates[idx]
        if any(c.start_line <= e and s <= c.end_line for s, e in spans[c.path]):
            continue
        if c.symbol and (c.path, c.symbol) in seen_symbols:
            continue
        spans[c.path].append((c.start_line, c.end_line))
        if c.symbol:
            seen_symbols.add((c.path, c.symbol))
        kept.append((idx, score))
    return kept
