"""Retrieval-quality evaluation: query files, relevance judging, IR metrics, the runner.

Everything here is pure and independent of the index: `run_eval` only needs a
`search(query, k)` callable that returns ranked `RetrievedChunk`s, so any
configuration (mode, model, reranker, dimension) is measured the same way.

Definitions (they match the usual IR definitions, with code spans as documents):

- A query has graded targets: `relevant` ones (grade 2) and optional
  `secondary` ones (grade 1). A target is a file path or a line span.
- A retrieved chunk *hits* a span target when the line ranges overlap, and a
  file target when it lies in that file.
- `judge` gives each rank a gain: the grade of the best target that chunk hits
  and that no earlier chunk already claimed. Each target is claimed once, so
  five overlapping chunks of one function earn its grade once, not five times.
- Recall@k: fraction of the relevant (grade-2) targets hit by any of the top k.
- MRR@k: 1 / rank of the first chunk that hits a relevant target (0 if none).
- NDCG@k: DCG of the judged gains (gain / log2(rank + 1)) divided by the DCG of
  the ideal ranking, which is the query's target grades sorted descending.
"""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codesearch.core.errors import EvalError  # noqa: F401 (re-exported)

RELEVANT = 2
SECONDARY = 1
CATEGORIES = ("how", "find", "symbol")



@dataclass(frozen=True)
class Target:
    """A file (start_line/end_line None) or a 1-based inclusive line span in a file."""

    path: str
    start_line: int | None
    end_line: int | None
    grade: int  # 2 relevant, 1 secondary

    @property
    def is_file(self) -> bool:
        return self.start_line is None

    def hits(self, chunk: RetrievedChunk) -> bool:
        if _norm_path(chunk.path) != _norm_path(self.path):
            return False
        if self.start_line is None or self.end_line is None:
            return True
        return chunk.start_line <= self.end_line and self.start_line <= chunk.end_line


@dataclass(frozen=True)
class EvalQuery:
    id: str
    query: str
    targets: tuple[Target, ...]
    category: str = ""
    language: str = ""
    corpus: str = ""

    @property
    def relevant(self) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.grade >= RELEVANT)


@dataclass(frozen=True)
class RetrievedChunk:
    path: str
    start_line: int
    end_line: int


def _norm_path(path: str) -> str:
    # Query files and indexes both use posix paths relative to the root; be lenient about "./".
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


# ---------------------------------------------------------------------------
# Query files


def _parse_target(raw: object, grade: int, where: str) -> Target:
    if isinstance(raw, str):
        if not raw.strip():
            raise EvalError(f"{where}: empty target path")
        return Target(_norm_path(raw), None, None, grade)
    if not isinstance(raw, dict):
        raise EvalError(f"{where}: a target must be a path string or an object with path/start_line/end_line")
    path = raw.get("path")
    if not isinstance(path, str) or not path.strip():
        raise EvalError(f"{where}: target has no 'path'")
    start, end = raw.get("start_line"), raw.get("end_line")
    if start is None and end is None:
        return Target(_norm_path(path), None, None, grade)
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        raise EvalError(f"{where}: target {path!r} needs integer start_line and end_line")
    if start < 1 or end < start:
        raise EvalError(f"{where}: target {path!r} has a bad span {start}-{end} (1-based, start <= end)")
    return Target(_norm_path(path), start, end, grade)


def _parse_query(obj: object, where: str, default_id: str) -> EvalQuery:
    if not isinstance(obj, dict):
        raise EvalError(f"{where}: expected a JSON object")
    text = obj.get("query")
    if not isinstance(text, str) or not text.strip():
        raise EvalError(f"{where}: missing or empty 'query'")
    relevant = obj.get("relevant")
    if not isinstance(relevant, list) or not relevant:
        raise EvalError(f"{where}: 'relevant' must be a non-empty list of targets")
    secondary = obj.get("secondary", [])
    if not isinstance(secondary, list):
        raise EvalError(f"{where}: 'secondary' must be a list of targets")
    targets = [_parse_target(t, RELEVANT, where) for t in relevant]
    targets += [_parse_target(t, SECONDARY, where) for t in secondary]
    qid = obj.get("id", default_id)
    fields = {k: obj.get(k, "") for k in ("category", "language", "corpus")}
    for name, value in (("id", qid), *fields.items()):
        if not isinstance(value, str):
            raise EvalError(f"{where}: '{name}' must be a string")
    return EvalQuery(str(qid), text.strip(), tuple(targets), **fields)


def parse_queries(text: str, source: str = "<queries>") -> list[EvalQuery]:
    """Queries from a JSON list or JSONL text; errors name the source and line."""
    stripped = text.lstrip()
    queries: list[EvalQuery] = []
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{source}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        for i, item in enumerate(items, 1):
            queries.append(_parse_query(item, f"{source}: query #{i}", f"q{i}"))
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalError(f"{source}:{lineno}: invalid JSON: {exc.msg}") from None
            queries.append(_parse_query(item, f"{source}:{lineno}", f"q{lineno}"))
    seen: set[str] = set()
    for q in queries:
        if q.id in seen:
            raise EvalError(f"{source}: duplicate query id {q.id!r}")
        seen.add(q.id)
    if not queries:
        raise EvalError(f"{source}: no queries")
    return queries


def load_queries(path: Path) -> list[EvalQuery]:
    """Load a JSON list or JSONL query file, or every *.json/*.jsonl file of a folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl"))
        if not files:
            raise EvalError(f"{path}: no .json or .jsonl query files")
        queries = [q for f in files for q in load_queries(f)]
        ids = [q.id for q in queries]
        if len(set(ids)) != len(ids):
            raise EvalError(f"{path}: query ids are not unique across files")
        return queries
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"cannot read query file {path}: {exc}") from None
    return parse_queries(text, str(path))


def validate_queries(queries: Iterable[EvalQuery], root: Path) -> list[str]:
    """Problems with targets against the code on disk: missing files, spans past the end.

    A query's paths are relative to `root / corpus` when it names a corpus,
    else to `root`.
    """
    problems: list[str] = []
    line_counts: dict[Path, int] = {}
    for q in queries:
        base = root / q.corpus if q.corpus else root
        if q.category and q.category not in CATEGORIES:
            problems.append(f"{q.id}: unknown category {q.category!r}")
        for t in q.targets:
            file = base / t.path
            if not file.is_file():
                problems.append(f"{q.id}: {t.path} does not exist under {base}")
                continue
            if t.end_line is None:
                continue
            if file not in line_counts:
                line_counts[file] = len(file.read_text(encoding="utf-8", errors="replace").splitlines())
            if t.end_line > line_counts[file]:
                problems.append(f"{q.id}: {t.path}:{t.start_line}-{t.end_line} is past the end ({line_counts[file]} lines)")
    return problems


# ---------------------------------------------------------------------------
# Judging and metrics


def judge(retrieved: Sequence[RetrievedChunk], targets: Sequence[Target]) -> list[int]:
    """Gain per rank; each target is claimed by the first chunk that hits it, best grade first."""
    claimed: set[int] = set()
    gains: list[int] = []
    for chunk in retrieved:
        best: int | None = None
        for i, t in enumerate(targets):
            if i in claimed or not t.hits(chunk):
                continue
            if best is None or t.grade > targets[best].grade:
                best = i
        if best is None:
            gains.append(0)
        else:
            claimed.add(best)
            gains.append(targets[best].grade)
    return gains


def recall_at(retrieved: Sequence[RetrievedChunk], targets: Sequence[Target], k: int) -> float:
    """Fraction of relevant (grade-2) targets hit by at least one of the top k chunks."""
    relevant = [t for t in targets if t.grade >= RELEVANT]
    if not relevant:
        return 0.0
    top = retrieved[:k]
    found = sum(1 for t in relevant if any(t.hits(c) for c in top))
    return found / len(relevant)


def mrr_at(retrieved: Sequence[RetrievedChunk], targets: Sequence[Target], k: int) -> float:
    """Reciprocal rank of the first chunk hitting a relevant (grade-2) target within k."""
    relevant = [t for t in targets if t.grade >= RELEVANT]
    for rank, chunk in enumerate(retrieved[:k], 1):
        if any(t.hits(chunk) for t in relevant):
            return 1.0 / rank
    return 0.0


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, 1))


def ndcg_at(retrieved: Sequence[RetrievedChunk], targets: Sequence[Target], k: int) -> float:
    """Graded NDCG@k: judged gains against the ideal ordering of the target grades."""
    ideal = dcg(sorted((t.grade for t in targets), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg(judge(retrieved[:k], targets)) / ideal


# ---------------------------------------------------------------------------
# Runner and report


@dataclass(frozen=True)
class QueryResult:
    id: str
    category: str
    language: str
    corpus: str
    recall_at_1: float
    recall_at_5: float
    recall_at_k: float
    mrr_at_k: float
    ndcg_at_k: float
    latency_s: float
    first_hit_rank: int | None  # rank of the first relevant hit within k


@dataclass(frozen=True)
class Metrics:
    n: int
    recall_at_1: float
    recall_at_5: float
    recall_at_k: float
    mrr_at_k: float
    ndcg_at_k: float

    @staticmethod
    def mean_of(results: Sequence[QueryResult]) -> Metrics:
        if not results:
            return Metrics(0, 0.0, 0.0, 0.0, 0.0, 0.0)

        def avg(name: str) -> float:
            return statistics.fmean(getattr(r, name) for r in results)

        return Metrics(
            len(results), avg("recall_at_1"), avg("recall_at_5"), avg("recall_at_k"),
            avg("mrr_at_k"), avg("ndcg_at_k"),
        )


@dataclass
class EvalReport:
    k: int
    overall: Metrics
    by_language: dict[str, Metrics]
    by_category: dict[str, Metrics]
    by_corpus: dict[str, Metrics]
    latency_p50_ms: float
    latency_p95_ms: float
    index_seconds: float | None = None
    label: str = ""
    results: list[QueryResult] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def evaluate_query(q: EvalQuery, retrieved: Sequence[RetrievedChunk], k: int, latency_s: float) -> QueryResult:
    top = list(retrieved[:k])
    mrr = mrr_at(top, q.targets, k)
    return QueryResult(
        id=q.id, category=q.category, language=q.language, corpus=q.corpus,
        recall_at_1=recall_at(top, q.targets, 1), recall_at_5=recall_at(top, q.targets, 5),
        recall_at_k=recall_at(top, q.targets, k), mrr_at_k=mrr, ndcg_at_k=ndcg_at(top, q.targets, k),
        latency_s=latency_s, first_hit_rank=round(1 / mrr) if mrr else None,
    )


def _group(results: Sequence[QueryResult], key: Callable[[QueryResult], str]) -> dict[str, Metrics]:
    groups: dict[str, list[QueryResult]] = {}
    for r in results:
        groups.setdefault(key(r) or "-", []).append(r)
    return {name: Metrics.mean_of(rs) for name, rs in sorted(groups.items())}


def build_report(
    results: Sequence[QueryResult], k: int, index_seconds: float | None = None, label: str = ""
) -> EvalReport:
    latencies_ms = [r.latency_s * 1000 for r in results]
    return EvalReport(
        k=k,
        overall=Metrics.mean_of(results),
        by_language=_group(results, lambda r: r.language),
        by_category=_group(results, lambda r: r.category),
        by_corpus=_group(results, lambda r: r.corpus),
        latency_p50_ms=percentile(latencies_ms, 50),
        latency_p95_ms=percentile(latencies_ms, 95),
        index_seconds=index_seconds,
        label=label,
        results=list(results),
    )


def run_eval(
    queries: Sequence[EvalQuery],
    search: Callable[[str, int], Sequence[RetrievedChunk]],
    k: int = 10,
    index_seconds: float | None = None,
    label: str = "",
) -> EvalReport:
    """Run every query through `search(query, k)` and score the ranked chunks.

    For multi-corpus benchmarks pass a search that routes by corpus (see
    `run_eval_by_corpus`); latency is measured around each call.
    """
    if k < 1:
        raise EvalError("k must be at least 1")
    results: list[QueryResult] = []
    for q in queries:
        t0 = time.perf_counter()
        retrieved = search(q.query, k)
        elapsed = time.perf_counter() - t0
        results.append(evaluate_query(q, retrieved, k, elapsed))
    return build_report(results, k, index_seconds, label)


def run_eval_by_corpus(
    queries: Sequence[EvalQuery],
    search_in: Callable[[str, str, int], Sequence[RetrievedChunk]],
    k: int = 10,
    index_seconds: float | None = None,
    label: str = "",
) -> EvalReport:
    """Like `run_eval`, for a benchmark of several corpora: `search_in(corpus, query, k)`."""
    results: list[QueryResult] = []
    for q in queries:
        t0 = time.perf_counter()
        retrieved = search_in(q.corpus, q.query, k)
        elapsed = time.perf_counter() - t0
        results.append(evaluate_query(q, retrieved, k, elapsed))
    return build_report(results, k, index_seconds, label)


def _metrics_json(m: Metrics, k: int) -> dict[str, float | int]:
    return {
        "queries": m.n,
        "recall@1": round(m.recall_at_1, 4),
        "recall@5": round(m.recall_at_5, 4),
        f"recall@{k}": round(m.recall_at_k, 4),
        f"mrr@{k}": round(m.mrr_at_k, 4),
        f"ndcg@{k}": round(m.ndcg_at_k, 4),
    }


def report_to_json(report: EvalReport, per_query: bool = False) -> dict[str, Any]:
    k = report.k
    out: dict[str, Any] = {
        "label": report.label,
        "k": k,
        "overall": _metrics_json(report.overall, k),
        "by_language": {n: _metrics_json(m, k) for n, m in report.by_language.items()},
        "by_category": {n: _metrics_json(m, k) for n, m in report.by_category.items()},
        "by_corpus": {n: _metrics_json(m, k) for n, m in report.by_corpus.items()},
        "latency_ms": {"p50": round(report.latency_p50_ms, 2), "p95": round(report.latency_p95_ms, 2)},
        "index_seconds": None if report.index_seconds is None else round(report.index_seconds, 2),
    }
    if per_query:
        out["queries"] = [
            {"id": r.id, "first_hit_rank": r.first_hit_rank, f"ndcg@{k}": round(r.ndcg_at_k, 4),
             f"recall@{k}": round(r.recall_at_k, 4), "latency_ms": round(r.latency_s * 1000, 2)}
            for r in report.results
        ]
    return out


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _metric_row(name: str, m: Metrics) -> list[str]:
    return [name, str(m.n), *(f"{v:.3f}" for v in (m.recall_at_1, m.recall_at_5, m.recall_at_k, m.mrr_at_k, m.ndcg_at_k))]


def _headers(first: str, k: int) -> list[str]:
    return [first, "n", "R@1", "R@5", f"R@{k}", f"MRR@{k}", f"NDCG@{k}"]


def format_report(report: EvalReport) -> str:
    """Plain-text tables: overall, per language, per category, per corpus, timings."""
    k = report.k
    parts: list[str] = []
    if report.label:
        parts.append(f"== {report.label}")
    rows = [_metric_row("overall", report.overall)]
    parts.append(_table(_headers("", k), rows))
    for title, groups in (("language", report.by_language), ("category", report.by_category),
                          ("corpus", report.by_corpus)):
        if len(groups) > 1 or (groups and "-" not in groups):
            parts.append(_table(_headers(title, k), [_metric_row(n, m) for n, m in groups.items()]))
    timing = f"query latency p50 {report.latency_p50_ms:.1f} ms, p95 {report.latency_p95_ms:.1f} ms"
    if report.index_seconds is not None:
        timing = f"index time {report.index_seconds:.1f} s; " + timing
    parts.append(timing)
    return "\n\n".join(parts)


def format_comparison(reports: Sequence[EvalReport]) -> str:
    """One row per configuration, for `codesearch eval --mode ... --mode ...`."""
    if not reports:
        return ""
    k = reports[0].k
    headers = [*_headers("config", k), "index s", "p50 ms", "p95 ms"]
    rows = []
    for r in reports:
        idx = "-" if r.index_seconds is None else f"{r.index_seconds:.1f}"
        rows.append([*_metric_row(r.label or "-", r.overall), idx, f"{r.latency_p50_ms:.1f}", f"{r.latency_p95_ms:.1f}"])
    return _table(headers, rows)


# ---------------------------------------------------------------------------
# Self-evaluation (CodeSearchNet style): docstring first sentence -> its definition


class ChunkLike(Protocol):
    path: str
    language: str
    symbol: str
    kind: str
    start_line: int
    end_line: int
    text: str


# Chunk kinds that are not definitions and so carry no docstring of their own.
NON_DEFINITION_KINDS = frozenset({"module", "window", "section", "header", ""})
# Languages whose line comments start with "#" (others: "//" family).
HASH_COMMENT_LANGUAGES = frozenset({"python", "ruby", "bash", "shell", "elixir", "perl", "r", "julia", "yaml", "toml", "nim", "crystal"})
DASH_COMMENT_LANGUAGES = frozenset({"lua", "haskell", "sql", "elm", "ada"})

_ATTRIBUTE_LINE = re.compile(r"^(#!?\[|@[A-Za-z_])")


def _python_docstring_span(text: str) -> tuple[int, int] | None:
    """0-based [start, end) line span of the definition's docstring, via ast."""
    import ast

    try:
        tree = ast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                doc = body[0]
                # A docstring on the `def` line itself cannot be removed by lines.
                if doc.lineno > node.lineno:
                    return doc.lineno - 1, (doc.end_lineno or doc.lineno)
            return None
    return None


def _comment_span(text: str, language: str) -> tuple[int, int] | None:
    """0-based [start, end) span of the leading comment block before the definition."""
    lines = text.splitlines()
    hash_comments = language in HASH_COMMENT_LANGUAGES
    dash_comments = language in DASH_COMMENT_LANGUAGES
    start: int | None = None
    end = 0
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if not s:
            if start is not None:
                break  # a blank line ends the block that touches the definition
            i += 1
            continue
        if s.startswith("/*"):
            j = i
            while j < len(lines) and "*/" not in lines[j]:
                j += 1
            start = i if start is None else start
            end = i = min(j, len(lines) - 1) + 1
            continue
        is_line_comment = (
            s.startswith("//")
            or (hash_comments and s.startswith("#") and not s.startswith("#!"))
            or (dash_comments and s.startswith("--"))
        )
        if is_line_comment:
            start = i if start is None else start
            end = i = i + 1
            continue
        if _ATTRIBUTE_LINE.match(s) and not hash_comments:
            i += 1  # attributes/annotations may sit between the doc comment and the definition
            continue
        break
    if start is None:
        return None
    return start, end


def docstring_span(text: str, language: str) -> tuple[int, int] | None:
    """0-based [start, end) line span of a definition's docstring or doc comment, if any."""
    if language == "python":
        span = _python_docstring_span(text)
        if span is not None:
            return span
    return _comment_span(text, language)


_COMMENT_MARKERS = re.compile(r"^\s*(/\*\*+|/\*!?|\*/|\*|///?!?|#+|--+)\s?")


def _clean_comment(raw: str, language: str) -> str:
    out: list[str] = []
    for line in raw.splitlines():
        s = line.strip()
        s = s.removesuffix("*/").rstrip()
        s = _COMMENT_MARKERS.sub("", s, count=1) if not (language == "python" and s[:3] in ('"""', "'''")) else s
        out.append(s)
    return "\n".join(out)


def extract_docstring(text: str, language: str) -> str | None:
    """The docstring / doc comment text of a definition chunk, markers removed."""
    span = docstring_span(text, language)
    if span is None:
        return None
    raw = "\n".join(text.splitlines()[span[0]:span[1]])
    if language == "python" and raw.strip()[:1] in ("'", '"', "r", "u", "b", "f"):
        import ast

        try:
            value = ast.literal_eval(raw.strip())
        except (SyntaxError, ValueError):
            value = None
        if isinstance(value, str):
            import inspect

            return inspect.cleandoc(value)
    return _clean_comment(raw, language).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
# A "sentence" that is really code (a doc comment cut mid-example, a commented-out line).
_LOOKS_LIKE_CODE = re.compile(r"[;{}]|^(let|fn|use|import|from|const|var|return|func|def|pub|if|for)\b|^[#@/]")


def first_sentence(doc: str) -> str:
    """The first sentence of the first paragraph, whitespace collapsed, final period dropped."""
    paragraph: list[str] = []
    for line in doc.strip().splitlines():
        s = line.strip()
        if not s:
            if paragraph:
                break
            continue
        if s.startswith(("```", ">>>", "$ ")):
            break  # a code example, not prose
        if s.startswith(("@", ":param", ":return", "Args:", "Returns:", "# ")) and paragraph:
            break
        paragraph.append(s)
    text = " ".join(" ".join(paragraph).split())
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0]
    return sentence.rstrip(".").strip()


def strip_docstring(chunk_text: str, language: str, keep_lines: bool = False) -> str:
    """The chunk text without its docstring / leading doc comment.

    Used for the indexed copy in `codesearch eval --self`, so that the query
    (the docstring's first sentence) is not a string match of the answer.
    With keep_lines the removed lines become empty lines, so line numbers hold.
    """
    span = docstring_span(chunk_text, language)
    if span is None:
        return chunk_text
    lines = chunk_text.splitlines(keepends=True)
    replacement = ["\n"] * (span[1] - span[0]) if keep_lines else []
    return "".join(lines[: span[0]] + replacement + lines[span[1]:])


def _drop_leading_name(sentence: str, symbol: str) -> str:
    # Go and Java docs open with the symbol's name ("NewRouter returns ..."); drop it so
    # the query is a description, not a symbol look-up.
    name = symbol.replace("::", ".").split(".")[-1]
    words = sentence.split(maxsplit=1)
    if name and len(words) == 2 and words[0].strip("`'\"()") == name:
        rest = words[1]
        return rest[:1].upper() + rest[1:]
    return sentence


def self_queries(chunks: Iterable[ChunkLike], limit: int = 200, seed: int = 0) -> list[EvalQuery]:
    """Queries from the definitions' docstrings: first sentence -> the definition's span.

    Deterministic: the candidates are sorted before a seeded sample, so the same
    chunks, limit and seed give the same queries whatever order they come in.
    Definitions that share the same first sentence become one query with all of
    them relevant.
    """
    by_query: dict[str, list[ChunkLike]] = {}
    for c in chunks:
        if c.kind in NON_DEFINITION_KINDS or getattr(c, "content_type", "code") != "code":
            continue
        doc = extract_docstring(c.text, c.language)
        if not doc:
            continue
        sentence = _drop_leading_name(first_sentence(doc), c.symbol)
        if len(sentence.split()) < 3 or len(sentence) < 12 or _LOOKS_LIKE_CODE.search(sentence):
            continue  # "Constructor.", "TODO" or a line of code is not a query
        stripped = strip_docstring(c.text, c.language)
        if not stripped.strip() or sentence in " ".join(stripped.split()):
            continue  # the answer would still be a string match of the query
        by_query.setdefault(sentence[:300], []).append(c)
    keys = sorted(by_query, key=lambda s: min((c.path, c.start_line) for c in by_query[s]))
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(keys)), min(limit, len(keys))))
    queries: list[EvalQuery] = []
    for idx in chosen:
        text = keys[idx]
        group = sorted(by_query[text], key=lambda c: (c.path, c.start_line))
        first = group[0]
        targets = tuple(Target(_norm_path(c.path), c.start_line, c.end_line, RELEVANT) for c in group)
        queries.append(EvalQuery(
            id=f"self:{first.path}:{first.start_line}", query=text, targets=targets,
            category="self", language=first.language,
        ))
    return queries
