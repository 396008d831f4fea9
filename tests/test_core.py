"""End to end on real parts: tree-sitter, the default model, LanceDB on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from codesearch.index.build import IndexOptions, build_index
from codesearch.search.searcher import Searcher, SearchOptions
from codesearch.store.tables import INDEX_DIRNAME, IndexError_, read_manifest

from .conftest import FIXTURES

QUERIES = json.loads((FIXTURES / "minirepo_queries.json").read_text())


@pytest.fixture(scope="module")
def indexed_minirepo(tmp_path_factory, default_embedder) -> Path:
    root = tmp_path_factory.mktemp("indexed") / "minirepo"
    shutil.copytree(FIXTURES / "minirepo", root)
    build_index(root, IndexOptions(), embedder=default_embedder)
    return root


@pytest.fixture(scope="module")
def searcher(indexed_minirepo, default_embedder) -> Searcher:
    return Searcher(indexed_minirepo / INDEX_DIRNAME, embedder=default_embedder)


def _top_symbols(searcher: Searcher, query: str, k: int = 3, mode: str = "hybrid") -> list[str]:
    result = searcher.search(query, SearchOptions(k=k, mode=mode))
    return [hit.symbol for hit in result.hits]


@pytest.mark.parametrize("case", QUERIES, ids=[q["query"] for q in QUERIES])
def test_labelled_query_ranks_expected_chunk_in_top3(searcher, case):
    top = _top_symbols(searcher, case["query"])
    assert set(top) & set(case["expect"]), f"{case['query']!r}: got {top}"


def test_lexical_and_vector_modes_each_find_an_obvious_target(searcher):
    assert "ReverseString" in _top_symbols(searcher, "ReverseString", mode="text")
    assert "LruCache" in _top_symbols(searcher, "least recently used cache eviction", k=3, mode="vector")


def test_filters_restrict_language_and_path(searcher):
    result = searcher.search("count", SearchOptions(k=20, languages=("rust",)))
    assert result.hits and {h.language for h in result.hits} == {"rust"}
    result = searcher.search("request", SearchOptions(k=20, path_glob="web/*"))
    assert result.hits and all(h.path.startswith("web/") for h in result.hits)


def test_hits_carry_exact_file_lines(searcher, indexed_minirepo):
    hit = searcher.search("ReverseString", SearchOptions(k=1)).hits[0]
    lines = (indexed_minirepo / hit.path).read_text().splitlines()
    assert "\n".join(lines[hit.start_line - 1 : hit.end_line]) == hit.text
    assert "func ReverseString" in hit.text


def test_search_is_its_candidate_lists_ranked(searcher):
    # bench/tune.py scores ranking changes from `candidates` alone: the two must agree.
    from codesearch.search.ranking import fuse_and_rank

    options = SearchOptions(k=5)
    lists = searcher.candidates("least recently used cache eviction", options)
    assert lists.lexical and lists.vector
    assert {i for i, _ in (*lists.lexical, *lists.vector)} <= set(lists.pool)
    ranked = fuse_and_rank("least recently used cache eviction", lists.lexical, lists.vector,
                           lists.pool, searcher.ranking(options))[:5]
    hits = searcher.search("least recently used cache eviction", options).hits
    assert [searcher.catalog.symbols[i] for i, _ in ranked] == [h.symbol for h in hits]


def test_test_files_rank_below_the_code_they_test(searcher):
    paths = [h.path for h in searcher.search("count missing values", SearchOptions(k=5)).hits]
    assert paths[0] == "src/dataio/tables.py"


def test_manifest_records_model_and_counts(indexed_minirepo):
    manifest = read_manifest(indexed_minirepo / INDEX_DIRNAME)
    assert manifest is not None
    assert manifest.model == "minilm" and manifest.dim == 384
    assert manifest.complete and manifest.vectors_pending == 0
    assert manifest.files >= 9 and manifest.chunks >= 15


def test_git_exclude_gets_the_index(tmp_path, default_embedder):
    import subprocess

    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "minirepo", root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    build_index(root, IndexOptions(embed=False))
    assert "/.codesearch/" in (root / ".git" / "info" / "exclude").read_text()
    status = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    assert ".codesearch" not in status.stdout


def test_empty_folder_gives_a_valid_empty_index(tmp_path):
    report = build_index(tmp_path, IndexOptions())
    assert report.chunks_total == 0 and report.files == 0
    result = Searcher(tmp_path / INDEX_DIRNAME).search("anything", SearchOptions(mode="text"))
    assert result.hits == [] and result.chunks == 0


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(IndexError_, match="no such folder"):
        build_index(tmp_path / "nope", IndexOptions())


def test_other_precision_is_refused_without_rebuild(minirepo):
    build_index(minirepo, IndexOptions(embed=False))
    with pytest.raises(IndexError_, match="--rebuild"):
        build_index(minirepo, IndexOptions(embed=False, precision="int8"))
    report = build_index(minirepo, IndexOptions(embed=False, precision="int8", rebuild=True))
    assert report.chunks_total > 0
    manifest = read_manifest(minirepo / INDEX_DIRNAME)
    assert manifest is not None and manifest.precision == "int8"
    # A later run without options keeps the index's settings instead of refusing.
    assert build_index(minirepo, IndexOptions(embed=False)).files_changed == 0


def test_dimension_outside_the_model_is_a_clear_error(minirepo):
    from codesearch.embed.registry import InvalidDimError

    with pytest.raises(InvalidDimError, match="384"):
        build_index(minirepo, IndexOptions(embed=False, dim=128))


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_quantized_index_finds_the_same_answers(minirepo, default_embedder, precision):
    build_index(minirepo, IndexOptions(precision=precision), embedder=default_embedder)
    manifest = read_manifest(minirepo / INDEX_DIRNAME)
    assert manifest is not None and manifest.calibration is not None
    searcher = Searcher(minirepo / INDEX_DIRNAME, embedder=default_embedder)
    for case in QUERIES[:8]:
        top = _top_symbols(searcher, case["query"])
        assert set(top) & set(case["expect"]), f"{precision} {case['query']!r}: got {top}"
    columns, rows = searcher.vectors()
    assert columns["codes"].dtype.kind == "i" and (rows >= 0).all()
    if precision == "binary":
        assert columns["bits"].shape[1] == 384 // 8
    # Later batches reuse the persisted ranges instead of computing new ones.
    (minirepo / "extra.py").write_text("def add_numbers(a, b):\n    return a + b\n")
    build_index(minirepo, IndexOptions(), embedder=default_embedder)
    again = read_manifest(minirepo / INDEX_DIRNAME)
    assert again is not None and again.calibration == manifest.calibration


def test_chunk_budget_is_counted_in_the_models_tokens():
    from codesearch.embed.registry import get_profile
    from codesearch.index.build import CHUNK_TOKENS_PER_MODEL_TOKEN, model_budget
    from codesearch.source.chunk import chunk_file

    profile = get_profile("minilm")
    budget = model_budget(profile)
    assert budget.count_batch is not None  # the packaged model's own tokenizer
    assert budget.max_tokens == round(profile.max_tokens_cpu * CHUNK_TOKENS_PER_MODEL_TOKEN)
    assert budget.count_tokens("readCsvRows") > 2  # WordPiece splits it; 11 chars
    body = "\n".join(f"    total += compute_value_{i}(items[{i}], weights[{i}])" for i in range(200))
    source = f"def accumulate(items, weights):\n    total = 0\n{body}\n    return total\n"
    parts = chunk_file("acc.py", source, "python", budget)
    assert len(parts) > 4 and {p.symbol for p in parts} == {"accumulate"}
    sizes = [budget.count_tokens(p.text) for p in parts]
    assert max(sizes) <= budget.max_tokens * 1.25, sizes


def test_rust_inline_test_modules_sink_like_test_files():
    """Rust keeps unit tests in `mod tests` beside the code: the chunker names them
    `tests::...`, and ranking treats them as it treats test files."""
    from codesearch.search.ranking import RankingConfig, path_penalty
    from codesearch.source.chunk import chunk_file

    asserts = "\n".join(f'        assert_eq!(parse("{i}"), {len(str(i))});' for i in range(40))
    source = (
        "pub fn parse(x: &str) -> usize {\n    x.len()\n}\n\n#[cfg(test)]\nmod tests {\n"
        f"    use super::*;\n\n    #[test]\n    fn parses_numbers() {{\n{asserts}\n    }}\n}}\n"
    )
    symbols = {c.symbol for c in chunk_file("src/lib.rs", source, "rust")}
    assert "tests::parses_numbers" in symbols
    config = RankingConfig()
    assert path_penalty("src/lib.rs", "parse a number", config, "tests::parses_numbers") == config.test_penalty
    assert path_penalty("src/lib.rs", "parse a number", config, "parse") == 1.0
    assert path_penalty("src/lib.rs", "parse a number", config, "Runner::test") == 1.0  # a method named test
    assert path_penalty("src/lib.rs", "tests of parse", config, "tests::parses_numbers") == 1.0  # asked for


def test_a_long_definition_is_one_hit_spanning_all_its_parts(tmp_path):
    """A definition longer than the chunk budget is stored in parts; a hit stands for
    the whole definition, with its exact text, and says which part matched."""
    body = []
    for g in range(6):
        body += [f"    total_{g}_{i} = compute_value(rows, {g * 10 + i}) + offsets[{i}]" for i in range(5)]
        body += ["", f"    if total_{g}_0 > limit:", f"        total_{g}_1 = clamp(total_{g}_1, limit)"]
    source = ("def small():\n    return 1\n\n\ndef reconcile_ledger(rows, offsets, limit):\n"
              + "\n".join(body) + "\n    audit_checksum(rows)\n    return rows\n")
    (tmp_path / "ledger.py").write_text(source)
    build_index(tmp_path, IndexOptions(embed=False))
    searcher = Searcher(tmp_path / INDEX_DIRNAME)
    parts = [i for i, s in enumerate(searcher.catalog.symbols) if s == "reconcile_ledger"]
    assert len(parts) >= 2
    hits = searcher.search("audit checksum", SearchOptions(mode="text", k=5)).hits
    ledger = [h for h in hits if h.symbol == "reconcile_ledger"]
    assert len(ledger) == 1
    hit = ledger[0]
    lines = source.split("\n")
    assert (hit.start_line, hit.end_line) == (5, len(lines) - 1)
    assert hit.text == "\n".join(lines[hit.start_line - 1 : hit.end_line])
    assert hit.start_line < hit.match_start_line <= hit.match_end_line == hit.end_line  # the last part
    small = searcher.search("small", SearchOptions(mode="text", k=1)).hits[0]
    assert (small.start_line, small.end_line, small.match_start_line) == (1, 2, 1)


def test_terminal_snippet_starts_at_the_matching_part():
    from rich.console import Console

    from codesearch.core.types import Hit, SearchResult
    from codesearch.search.render import render_hits

    text = "\n".join(f"line_{n} = {n}" for n in range(10, 20))
    hit = Hit(rank=1, path="a.py", start_line=10, end_line=19, symbol="f", kind="function",
              language="python", score=1.0, text=text, match_start_line=15, match_end_line=19)
    console = Console(record=True, width=100)
    render_hits(console, SearchResult("line_16", "text", [hit], 1, 0, {}), lines=3)
    out = console.export_text()
    assert "a.py:10-19" in out
    assert "line_15" in out and "line_17" in out
    assert "line_14" not in out and "line_18" not in out


def test_type_declarations_rank_below_code_unless_named():
    """Type aliases and interfaces list many words but rarely do anything: they sink
    for a question, not when the query names one."""
    from codesearch.search.ranking import Candidate, RankingConfig, fuse_and_rank

    candidates = {
        0: Candidate(0, "src/options.ts", "RetryOptions", "interface", 1, 12),
        1: Candidate(1, "src/retry.ts", "retryWithBackoff", "function", 1, 30),
    }
    config = RankingConfig(path_match=False, file_coherence=False)
    lexical = [(0, 10.0), (1, 9.0), (2, 0.0)]
    candidates[2] = Candidate(2, "src/other.ts", "other", "function", 1, 5)
    question = fuse_and_rank("retry options with backoff", lexical, [], candidates, config)
    assert [i for i, _ in question][:2] == [1, 0]
    named = fuse_and_rank("RetryOptions", lexical, [], candidates, config)
    assert named[0][0] == 0
    flat = fuse_and_rank("retry options with backoff", lexical, [], candidates,
                         RankingConfig(path_match=False, file_coherence=False, kind_prior=False,
                                       size_prior=0.0, lexical_size_prior=0.0))
    assert flat[0][0] == 0  # the prior, not the scores, made the difference


def test_a_question_prefers_the_definition_that_does_the_work():
    """Of two equal matches, a question ranks the 120-line function above the 3-line
    predicate named like its words; a query naming the predicate still gets it first."""
    from codesearch.search.ranking import Candidate, RankingConfig, fuse_and_rank

    candidates = {
        0: Candidate(0, "lib/uri.rb", "URI.scheme", "method", 10, 12),
        1: Candidate(1, "lib/uri.rb", "URI.join", "method", 20, 139),
        2: Candidate(2, "lib/other.rb", "other", "method", 1, 20),
    }
    lexical = [(0, 10.0), (1, 9.0), (2, 0.0)]
    config = RankingConfig(file_coherence=False)
    question = fuse_and_rank("how is a relative reference resolved", lexical, [], candidates, config)
    assert [i for i, _ in question][:2] == [1, 0]
    off = fuse_and_rank("how is a relative reference resolved", lexical, [], candidates,
                        RankingConfig(file_coherence=False, size_prior=0.0,
                                      lexical_size_prior=0.0))
    assert [i for i, _ in off][:2] == [0, 1]
    named = fuse_and_rank("URI.scheme", lexical, [], candidates, config)
    assert named[0][0] == 0


def test_ranking_from_words_alone_uses_its_own_size_prior():
    """With no vector list (text mode, vectors not there yet) the lexical_* settings rank;
    with one, the hybrid ones do."""
    from codesearch.search.ranking import Candidate, RankingConfig, fuse_and_rank

    candidates = {
        0: Candidate(0, "lib/a.rb", "A.short", "method", 1, 3, code_lines=3),
        1: Candidate(1, "lib/b.rb", "B.long", "method", 1, 60, code_lines=60),
        2: Candidate(2, "lib/c.rb", "C.other", "method", 1, 5, code_lines=5),
    }
    lexical = [(0, 10.0), (1, 8.5), (2, 0.0)]
    config = RankingConfig(file_coherence=False, size_prior=0.0, lexical_size_prior=0.4)
    query = "how is a reference resolved"
    assert fuse_and_rank(query, lexical, [], candidates, config)[0][0] == 1
    vector = [(0, 0.9), (1, 0.8), (2, 0.1)]
    assert fuse_and_rank(query, lexical, vector, candidates, config)[0][0] == 0
    assert config.lexical_only().size_prior == 0.4 and config.size_prior == 0.0


def test_a_name_asks_for_the_type_as_written_not_its_impl_or_another_case():
    """`MonadParsec` wants the class, not an instance of it that scores higher;
    `YAML::Node` wants that class, not `YAML::detail::node` (the qualified tier)."""
    from codesearch.search.ranking import Candidate, RankingConfig, fuse_and_rank

    candidates = {
        0: Candidate(0, "src/Class.hs", "MonadParsec", "impl", 278, 453),
        1: Candidate(1, "src/Class.hs", "MonadParsec", "interface", 43, 60),
        2: Candidate(2, "include/detail/node.h", "YAML::detail::node", "class", 20, 26),
        3: Candidate(3, "include/node.h", "YAML::Node", "class", 29, 54),
    }
    lexical = [(0, 10.0), (1, 6.0), (2, 10.0), (3, 6.0)]
    config = RankingConfig(file_coherence=False)
    assert fuse_and_rank("MonadParsec", lexical, [], candidates, config)[0][0] == 1
    assert fuse_and_rank("YAML::Node", lexical, [], candidates, config)[0][0] == 3
    plain = RankingConfig(file_coherence=False, tier_nudges=False)
    assert fuse_and_rank("MonadParsec", lexical, [], candidates, plain)[0][0] == 0
    assert fuse_and_rank("YAML::Node", lexical, [], candidates, plain)[0][0] == 3  # qualified tier


def test_query_words_meet_their_short_forms_in_code() -> None:
    from codesearch.core.tokens import (
        abbreviation_terms,
        agent_noun_terms,
        content_words,
        query_words,
        terms_text,
    )

    def others(query: str) -> list[str]:
        words = query_words(query)
        return abbreviation_terms(terms_text(words).split()) + agent_noun_terms(words)

    assert {"arg", "argv", "cmd"} <= set(others("parse command line arguments"))
    assert "context" in others("ctx value")  # and back
    assert "parser" in others("parse") and "pars" in others("parser")  # agent nouns
    assert "connect" not in others("db connection")  # never a term the query has
    assert content_words(["how", "does", "routing", "work"]) == ["how", "routing"]
    assert content_words(["does", "work"]) == ["does", "work"]  # nothing else: all kept


def test_a_full_text_query_finds_code_written_with_abbreviations(tmp_path: Path) -> None:
    from codesearch.core.types import RankingConfig

    (tmp_path / "settings.py").write_text(
        "def load_cfg(path):\n    cfg = open(path).read()\n    return parse_cfg_text(cfg)\n\n\n"
        "def load_theme(path):\n    theme = open(path).read()\n    return theme.strip()\n")
    build_index(tmp_path, IndexOptions(embed=False))
    searcher = Searcher(tmp_path / INDEX_DIRNAME)
    query = "load the configuration file"
    hits = searcher.search(query, SearchOptions(k=2, mode="text")).hits
    assert hits[0].symbol == "load_cfg"
    off = SearchOptions(k=2, mode="text", ranking=RankingConfig(abbreviation_weight=0.0))
    assert searcher.search(query, off).hits[0].symbol == "load_theme"  # "load" alone decides
