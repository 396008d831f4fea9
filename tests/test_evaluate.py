"""Evaluation metrics, query files, self-queries and the development benchmark's labels."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

from codesearch.eval.evaluate import (
    EvalError,
    EvalQuery,
    RetrievedChunk,
    Target,
    extract_docstring,
    first_sentence,
    format_comparison,
    format_report,
    judge,
    load_queries,
    mrr_at,
    ndcg_at,
    parse_queries,
    percentile,
    recall_at,
    report_to_json,
    run_eval,
    run_eval_by_corpus,
    self_queries,
    strip_docstring,
    validate_queries,
)
from codesearch.source.chunk import Chunk

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CORPORA = BENCH / ".corpora"


def rc(path: str, start: int, end: int) -> RetrievedChunk:
    return RetrievedChunk(path, start, end)


SPAN_A = Target("a.py", 10, 20, 2)
FILE_B = Target("b.py", None, None, 1)


# --------------------------------------------------------------------------- judging


def test_judge_counts_each_target_once() -> None:
    retrieved = [rc("a.py", 15, 25), rc("a.py", 18, 30), rc("b.py", 1, 5), rc("c.py", 1, 9)]
    # The second chunk overlaps A again but A is already claimed.
    assert judge(retrieved, [SPAN_A, FILE_B]) == [2, 0, 1, 0]


def test_overlap_boundaries_are_inclusive() -> None:
    assert judge([rc("a.py", 1, 10)], [SPAN_A]) == [2]  # touches the first line
    assert judge([rc("a.py", 20, 40)], [SPAN_A]) == [2]  # touches the last line
    assert judge([rc("a.py", 1, 9)], [SPAN_A]) == [0]
    assert judge([rc("a.py", 21, 40)], [SPAN_A]) == [0]
    assert judge([rc("z/a.py", 10, 20)], [SPAN_A]) == [0]  # same name, other folder


def test_file_target_hits_any_chunk_of_that_file() -> None:
    assert judge([rc("./b.py", 900, 950)], [FILE_B]) == [1]
    assert judge([rc("b.pyx", 1, 2)], [FILE_B]) == [0]


def test_a_chunk_claims_its_best_target_first() -> None:
    file_a = Target("a.py", None, None, 1)
    retrieved = [rc("a.py", 12, 14), rc("a.py", 100, 120)]
    # The first chunk hits both the file (1) and the span (2): it takes the span;
    # the file target is still there for the next chunk of that file.
    assert judge(retrieved, [file_a, SPAN_A]) == [2, 1]


# --------------------------------------------------------------------------- metrics


def test_recall_counts_relevant_targets_only() -> None:
    t1, t2 = Target("x.go", 1, 10, 2), Target("y.go", 5, 6, 2)
    secondary = Target("z.go", None, None, 1)
    retrieved = [rc("z.go", 1, 3), rc("q.go", 1, 3), rc("x.go", 8, 12)]
    targets = [t1, t2, secondary]
    assert recall_at(retrieved, targets, 1) == 0.0  # a secondary hit is not recall
    assert recall_at(retrieved, targets, 3) == 0.5
    assert recall_at(retrieved + [rc("y.go", 6, 6)], targets, 4) == 1.0


def test_mrr_uses_first_relevant_hit() -> None:
    targets = [Target("x.go", 1, 10, 2), Target("z.go", None, None, 1)]
    retrieved = [rc("z.go", 1, 3), rc("q.go", 1, 3), rc("x.go", 8, 12)]
    assert mrr_at(retrieved, targets, 10) == pytest.approx(1 / 3)
    assert mrr_at(retrieved, targets, 2) == 0.0


def test_graded_ndcg_by_hand() -> None:
    targets = [Target("a.rs", 1, 5, 2), Target("b.rs", None, None, 1)]
    retrieved = [rc("c.rs", 1, 2), rc("a.rs", 4, 9), rc("b.rs", 7, 8)]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(retrieved, targets, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at(retrieved, targets, 10) == pytest.approx(0.66967, abs=1e-5)
    # Truncation at k drops the grade-1 hit at rank 3.
    assert ndcg_at(retrieved, targets, 2) == pytest.approx((2 / math.log2(3)) / ideal)


def test_ndcg_is_one_for_ideal_and_zero_for_nothing() -> None:
    targets = [Target("a.rs", 1, 5, 2), Target("b.rs", None, None, 1)]
    assert ndcg_at([rc("a.rs", 1, 1), rc("b.rs", 1, 1)], targets, 10) == pytest.approx(1.0)
    assert ndcg_at([], targets, 10) == 0.0
    # Duplicates of one target cannot push NDCG above 1.
    dupes = [rc("a.rs", 1, 1)] * 5 + [rc("b.rs", 1, 1)]
    assert ndcg_at(dupes, targets, 10) < 1.0


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([10.0], 95) == 10.0
    assert percentile(list(map(float, range(101))), 95) == pytest.approx(95.0)


# --------------------------------------------------------------------------- query files


GOOD = {
    "id": "q1", "query": "parse a cookie header", "category": "find", "language": "python",
    "relevant": [{"path": "a.py", "start_line": 3, "end_line": 9}, "b.py"],
    "secondary": ["c.py"],
}


def test_load_jsonl_and_json_list(tmp_path: Path) -> None:
    second = {**GOOD, "id": "q2", "query": "Session.send"}
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(second) + "\n")
    as_list = tmp_path / "q.json"
    as_list.write_text(json.dumps([GOOD, second], indent=2))
    for path in (jsonl, as_list):
        queries = load_queries(path)
        assert [q.id for q in queries] == ["q1", "q2"]
        assert queries[0].targets == (
            Target("a.py", 3, 9, 2), Target("b.py", None, None, 2), Target("c.py", None, None, 1)
        )
        assert queries[0].category == "find" and queries[0].language == "python"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps({**GOOD, "query": ""}), "missing or empty 'query'"),
        (json.dumps({**GOOD, "relevant": []}), "'relevant' must be a non-empty list"),
        (json.dumps({**GOOD, "relevant": [{"path": "a.py", "start_line": 9, "end_line": 3}]}), "bad span 9-3"),
        (json.dumps({**GOOD, "relevant": [{"path": "a.py", "start_line": 2}]}), "needs integer start_line and end_line"),
        (json.dumps({**GOOD, "relevant": [42]}), "a target must be a path string"),
        (json.dumps({**GOOD, "secondary": "c.py"}), "'secondary' must be a list"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_query_line_gives_one_clear_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({**GOOD, "id": "ok"}) + "\n" + json.dumps(GOOD) + "\n" + line + "\n")
    if line.startswith("["):
        path.write_text(line)
    with pytest.raises(EvalError) as err:
        load_queries(path)
    text = str(err.value)
    assert message in text
    assert "\n" not in text
    if not line.startswith("["):
        assert f"{path}:3" in text  # names the file and the line


def test_duplicate_ids_and_empty_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="duplicate query id 'q1'"):
        parse_queries(json.dumps(GOOD) + "\n" + json.dumps(GOOD))
    with pytest.raises(EvalError, match="no queries"):
        parse_queries("\n\n")
    with pytest.raises(EvalError, match="cannot read query file"):
        load_queries(tmp_path / "missing.jsonl")


def test_validate_queries_reports_missing_files_and_long_spans(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "a.py").write_text("x = 1\ny = 2\n")
    queries = [
        EvalQuery("ok", "q", (Target("a.py", 1, 2, 2),), corpus="proj"),
        EvalQuery("long", "q", (Target("a.py", 2, 3, 2),), corpus="proj"),
        EvalQuery("gone", "q", (Target("nope.py", None, None, 2),), corpus="proj"),
        EvalQuery("cat", "q", (Target("a.py", None, None, 2),), category="vibes", corpus="proj"),
    ]
    problems = validate_queries(queries, tmp_path)
    assert len(problems) == 3
    assert problems[0].startswith("long: a.py:2-3 is past the end (2 lines)")
    assert problems[1].startswith("gone: nope.py does not exist")
    assert problems[2] == "cat: unknown category 'vibes'"


# --------------------------------------------------------------------------- runner


def _queries() -> list[EvalQuery]:
    return [
        EvalQuery("p1", "alpha", (Target("a.py", 1, 5, 2),), "how", "python", "c1"),
        EvalQuery("p2", "beta", (Target("b.py", None, None, 2),), "find", "python", "c1"),
        EvalQuery("g1", "gamma", (Target("g.go", 10, 20, 2),), "symbol", "go", "c2"),
    ]


RESULTS = {
    "alpha": [rc("a.py", 3, 4)],  # rank 1
    "beta": [rc("x.py", 1, 2), rc("y.py", 1, 2), rc("b.py", 1, 2)],  # rank 3
    "gamma": [rc("h.go", 1, 2)],  # miss
}


def test_run_eval_aggregates_overall_and_groups() -> None:
    calls: list[tuple[str, int]] = []

    def search(query: str, k: int) -> list[RetrievedChunk]:
        calls.append((query, k))
        return RESULTS[query]

    report = run_eval(_queries(), search, k=10, index_seconds=12.5, label="hybrid")
    assert calls == [("alpha", 10), ("beta", 10), ("gamma", 10)]
    assert report.overall.n == 3
    assert report.overall.mrr_at_k == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert report.overall.recall_at_1 == pytest.approx(1 / 3)
    assert report.overall.recall_at_5 == pytest.approx(2 / 3)
    assert report.by_language["python"].mrr_at_k == pytest.approx((1 + 1 / 3) / 2)
    assert report.by_language["go"].ndcg_at_k == 0.0
    assert set(report.by_category) == {"how", "find", "symbol"}
    assert report.by_corpus["c1"].n == 2
    assert report.latency_p95_ms >= report.latency_p50_ms >= 0.0
    assert [r.first_hit_rank for r in report.results] == [1, 3, None]

    data = report_to_json(report, per_query=True)
    assert data["overall"]["mrr@10"] == pytest.approx(0.4444, abs=1e-4)
    assert data["index_seconds"] == 12.5
    assert data["label"] == "hybrid"
    assert [q["first_hit_rank"] for q in data["queries"]] == [1, 3, None]
    json.dumps(data)  # serializable as is

    text = format_report(report)
    assert "NDCG@10" in text and "index time 12.5 s" in text
    assert "python" in text and "symbol" in text
    table = format_comparison([report, report])
    assert table.count("hybrid") == 2


def test_run_eval_by_corpus_routes_each_query() -> None:
    seen: list[str] = []

    def search_in(corpus: str, query: str, k: int) -> list[RetrievedChunk]:
        seen.append(corpus)
        return RESULTS[query]

    report = run_eval_by_corpus(_queries(), search_in, k=5)
    assert seen == ["c1", "c1", "c2"]
    assert report.k == 5
    assert "recall@5" in report_to_json(report)["overall"]


def test_run_eval_rejects_bad_k() -> None:
    with pytest.raises(EvalError):
        run_eval(_queries(), lambda q, k: [], k=0)


# --------------------------------------------------------------------------- docstrings / self-eval

PY_FUNC = '''    @cached
    def load(self, path):
        """Read the config file and merge defaults.

        Longer text here.
        """
        data = open(path).read()
        return data
'''

GO_FUNC = """// NewRouter returns a new router instance with sane defaults.
// It is safe for concurrent use.
func NewRouter() *Mux {
\treturn NewMux()
}
"""

JS_FUNC = """/**
 * Merge two configuration objects into a new one.
 * @param {Object} a first
 */
function mergeConfig(a, b) {
  return {...a, ...b};
}
"""

RS_FUNC = """/// Parses a JSON string into a value. Fails on trailing characters.
#[inline]
pub fn from_str(s: &str) -> Result<Value> {
    todo!()
}
"""


def test_extract_and_strip_python_docstring() -> None:
    assert extract_docstring(PY_FUNC, "python") == "Read the config file and merge defaults.\n\nLonger text here."
    stripped = strip_docstring(PY_FUNC, "python")
    assert '"""' not in stripped and "Read the config" not in stripped
    assert "def load(self, path):" in stripped and "return data" in stripped
    kept = strip_docstring(PY_FUNC, "python", keep_lines=True)
    assert kept.count("\n") == PY_FUNC.count("\n")  # line numbers still match the file


def test_extract_and_strip_comment_docs() -> None:
    assert first_sentence(extract_docstring(GO_FUNC, "go") or "") == "NewRouter returns a new router instance with sane defaults"
    assert strip_docstring(GO_FUNC, "go").startswith("func NewRouter()")
    assert first_sentence(extract_docstring(JS_FUNC, "javascript") or "") == "Merge two configuration objects into a new one"
    assert strip_docstring(JS_FUNC, "javascript").startswith("function mergeConfig")
    assert first_sentence(extract_docstring(RS_FUNC, "rust") or "") == "Parses a JSON string into a value"
    assert strip_docstring(RS_FUNC, "rust").startswith("#[inline]")


def test_no_docstring_leaves_text_alone() -> None:
    code = "def f(x):\n    return x + 1\n"
    assert extract_docstring(code, "python") is None
    assert strip_docstring(code, "python") == code
    assert strip_docstring("func f() {}\n", "go") == "func f() {}\n"


def test_first_sentence_stops_at_tags_and_paragraphs() -> None:
    assert first_sentence("Read it.  Then parse.") == "Read it"
    assert first_sentence("Compute the hash\nof the file\n\nDetails.") == "Compute the hash of the file"
    assert first_sentence("Fetch rows\n@param q query") == "Fetch rows"
    assert first_sentence("Version 1.2 of the format is used here") == "Version 1.2 of the format is used here"


def _chunks(n: int) -> list[Chunk]:
    chunks = []
    for i in range(n):
        text = f'def f{i}(x):\n    """Compute value number {i} from the input."""\n    return x\n'
        chunks.append(Chunk(f"m{i % 3}.py", "python", f"f{i}", "function", 10 * i + 1, 10 * i + 3, text))
    chunks.append(Chunk("m0.py", "python", "", "module", 1, 1, '"""Module doc is not a query."""'))
    chunks.append(Chunk("g.go", "go", "NewRouter", "function", 1, 5, GO_FUNC))
    chunks.append(Chunk("t.py", "python", "tiny", "function", 1, 2, 'def tiny():\n    """Tiny."""\n'))
    return chunks


def test_self_queries_are_deterministic_and_sampled() -> None:
    chunks = _chunks(20)
    first = self_queries(chunks, limit=5, seed=7)
    shuffled = chunks[:]
    random.Random(1).shuffle(shuffled)
    assert self_queries(shuffled, limit=5, seed=7) == first  # input order does not matter
    assert len(first) == 5
    assert self_queries(chunks, limit=5, seed=8) != first
    everything = self_queries(chunks, limit=100, seed=0)
    texts = {q.query for q in everything}
    assert len(everything) == 21  # 20 functions + the Go one; module and "Tiny." are skipped
    assert "Returns a new router instance with sane defaults" in texts  # leading symbol name dropped
    q = next(q for q in everything if q.query == "Compute value number 4 from the input")
    assert q.targets == (Target("m1.py", 41, 43, 2),)
    assert q.category == "self" and q.language == "python"


def test_self_queries_skip_code_and_string_matches() -> None:
    cut_example = "    ///     let mut de = Deserializer::from_str(&json);\n    pub fn go(&self) {}\n"
    repeated = 'def f(x):\n    """Compute the checksum of data."""\n    # Compute the checksum of data.\n    return x\n'
    chunks = [
        Chunk("a.rs", "rust", "go", "method", 1, 2, cut_example),
        Chunk("b.py", "python", "f", "function", 1, 4, repeated),
    ]
    assert self_queries(chunks, limit=10, seed=0) == []
    assert first_sentence("Parse input\n```\nlet x = 1;\n```") == "Parse input"


def test_self_queries_group_identical_sentences() -> None:
    text = 'def f(x):\n    """Shared description of this helper."""\n    return x\n'
    chunks = [Chunk("b.py", "python", "f", "function", 5, 7, text), Chunk("a.py", "python", "f", "function", 1, 3, text)]
    (query,) = self_queries(chunks, limit=10, seed=0)
    assert [t.path for t in query.targets] == ["a.py", "b.py"]


# --------------------------------------------------------------------------- the development benchmark


def _prepare_module() -> ModuleType:
    # bench/ is not a package; load the script by path (registered, so its dataclasses resolve).
    if "prepare_corpora" in sys.modules:
        return sys.modules["prepare_corpora"]
    spec = importlib.util.spec_from_file_location("prepare_corpora", BENCH / "prepare_corpora.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["prepare_corpora"] = module
    spec.loader.exec_module(module)
    return module


def test_corpora_config_is_pinned_and_broad() -> None:
    module = _prepare_module()
    specs = module.load_specs(BENCH / "corpora.json")
    assert len(specs) >= 30
    assert len({s.language for s in specs}) >= 20
    assert all(s.version and s.source in module.SOURCES for s in specs)


def test_corpora_config_errors_are_clear(tmp_path: Path) -> None:
    module = _prepare_module()
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"corpora": [{"name": "x", "source": "ftp"}]}))
    with pytest.raises(module.PrepareError, match="corpus #0 lacks"):
        module.load_specs(bad)


def test_benchmark_queries_are_complete() -> None:
    queries = load_queries(BENCH / "queries")
    assert len(queries) >= 200
    assert {q.category for q in queries} == {"how", "find", "symbol"}
    assert len({q.corpus for q in queries}) >= 8
    assert len({q.language for q in queries}) >= 5
    assert all(q.relevant for q in queries)


@pytest.mark.skipif(not CORPORA.is_dir(), reason="run bench/prepare_corpora.py to fetch the corpora")
def test_benchmark_targets_exist_in_corpora() -> None:
    queries = load_queries(BENCH / "queries")
    present = [q for q in queries if (CORPORA / q.corpus).is_dir()]
    if not present:
        pytest.skip("no corpus prepared")
    assert validate_queries(present, CORPORA) == []
