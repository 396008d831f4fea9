"""Lines of code in a chunk (comments, docstrings and blank lines left out), which the
size prior counts instead of the span."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesearch.index.build import IndexOptions, build_index
from codesearch.search.ranking import Candidate, size_factor
from codesearch.search.searcher import Searcher, SearchOptions
from codesearch.source.comments import COMMENT_SYNTAX, code_line_count, split_comments
from codesearch.source.languages import CODE_LANGUAGES
from codesearch.store.tables import INDEX_DIRNAME

# One documented definition per comment syntax, with its lines of code.
SAMPLES = {
    "python": ('def f(x):\n    """Sum.\n\n    Details.\n    """\n    # note\n    y = x + 1\n\n'
               '    return y\n', 3),
    "rust": ("/// Adds.\n///\n/// ```\n/// let a = 1;\n/// ```\n#[inline]\npub fn add(a: i32) -> i32 {\n"
             "    /* inner\n       block */ a + 1\n}\n", 4),
    "c": "#include <x.h>\n/*\n * Entry.\n */\nint main(void) {\n  return 0; // done\n}\n",
    "php": "/**\n * Run.\n */\nfunction run() {\n    # hash comment\n    return 1;\n}\n",
    "bash": "# Greets.\n# Twice.\ngreet() {\n  echo hi\n}\n",
    "ruby": "=begin\nDocs\n=end\n# Says hi.\ndef hi\n  :ok\nend\n",
    "elixir": '  @doc """\n  Says hi.\n  """\n  def hi, do: :ok\n',
    "lua": "--[[ Block\ncomment ]]\nlocal x = 1 -- trailing\n-- only a comment\nreturn x\n",
    "haskell": "{- Block\n -}\n-- | Identity.\nid' :: a -> a\nid' x = x\n",
}
SAMPLES["c"] = (SAMPLES["c"], 4)
SAMPLES["php"] = (SAMPLES["php"], 3)
SAMPLES["bash"] = (SAMPLES["bash"], 3)
SAMPLES["ruby"] = (SAMPLES["ruby"], 3)
SAMPLES["elixir"] = (SAMPLES["elixir"], 1)
SAMPLES["lua"] = (SAMPLES["lua"], 2)
SAMPLES["haskell"] = (SAMPLES["haskell"], 2)


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_lines_of_code_leave_out_comments_docstrings_and_blank_lines(language: str) -> None:
    text, expected = SAMPLES[language]
    assert code_line_count(text, language) == expected


def test_every_chunked_language_has_its_comment_syntax() -> None:
    assert set(CODE_LANGUAGES) <= set(COMMENT_SYNTAX)
    # C-like languages share one: `//` and `/* */` (a Java, Go, Swift... doc block).
    java = "/**\n * Parses.\n * @param s text\n */\n@Override\npublic int parse(String s) {\n  return 1;\n}\n"
    for language in ("java", "go", "kotlin", "scala", "swift", "csharp", "typescript", "zig"):
        assert code_line_count(java, language) == 4
    assert code_line_count("a\n\n   \nb", "text") == 2  # no grammar: blank lines only
    assert code_line_count("", "python") == 0
    assert code_line_count("# only a comment\n", "python") == 1  # never 0 for a chunk


def test_the_size_prior_counts_code_and_falls_back_to_the_span() -> None:
    doc_heavy = Candidate(0, "a.rs", "Arg::env", "method", 1, 150, code_lines=3)
    worker = Candidate(1, "b.rs", "Parser::parse", "method", 1, 60, code_lines=55)
    assert size_factor(doc_heavy, 0.2) == 0.8 < size_factor(worker, 0.2)
    # Rows of an older chunker (0: not known) keep the span over 25 lines, as before.
    old = Candidate(2, "c.rs", "f", "function", 1, 100)
    assert size_factor(old, 0.2) == pytest.approx((100 / 25) ** 0.2)


FILLER = ["The delay before a retry is applied here.", "The default is one second.",
          "See also the timeout setting.", "Values above a minute are clamped.",
          "It is read once per client.", "Keep it small.", "Tests set it to zero.",
          "It must be positive.", "Log lines show it.", "Clients may override it.",
          "The retry delay is applied per attempt.", "Changing it resets nothing.",
          "It is not persisted.", "A zero turns it off.", "Seconds, not milliseconds."]


def test_a_question_prefers_the_code_to_the_documented_setter(tmp_path: Path) -> None:
    from codesearch.core.types import RankingConfig

    docs = "\n".join(f"    /// {FILLER[i % 15]}" for i in range(30))
    (tmp_path / "config.rs").write_text(
        "impl Config {\n    /// Sets the retry delay.\n" + docs + "\n"
        "    pub fn backoff(mut self, secs: u64) -> Self {\n        self.delay = secs;\n"
        "        self\n    }\n}\n")
    body = "\n".join(f"        total += step_{i}(attempt);" for i in range(12))
    (tmp_path / "retry.rs").write_text(
        "pub fn run_with_retry(delay: u64) -> u64 {\n    let mut attempt = 1;\n"
        "    let mut total = 0;\n    loop {\n" + body + "\n        sleep(delay * attempt);\n"
        "        attempt += 1;\n        if attempt > 5 { return total; }\n    }\n}\n")
    (tmp_path / "log.rs").write_text('pub fn log_delay(n: u64) {\n    println!("{}", n);\n}\n')
    build_index(tmp_path, IndexOptions(embed=False))
    searcher = Searcher(tmp_path / INDEX_DIRNAME)
    catalog = searcher.catalog
    spans: dict[str, list[int]] = {}  # a definition may be stored in parts
    for symbol, first_line, last_line, code in zip(catalog.symbols, catalog.starts, catalog.ends,
                                                     catalog.code_lines, strict=True):
        lo, hi, most = spans.get(symbol, [first_line, last_line, 0])
        spans[symbol] = [min(lo, first_line), max(hi, last_line), max(most, code)]
    setter, worker = spans["Config::backoff"], spans["run_with_retry"]
    # By its span the setter is the bigger definition; by its lines of code, the smaller.
    assert setter[1] - setter[0] > worker[1] - worker[0] and setter[2] < worker[2]
    query = "how is the retry delay applied"

    def first(size_prior: float) -> str:
        # Text mode ranks with the lexical-only size prior (RankingConfig.lexical_only).
        ranking = RankingConfig(lexical_size_prior=size_prior)
        return searcher.search(query, SearchOptions(mode="text", k=3, ranking=ranking)).hits[0].symbol

    assert first(0.0) == "Config::backoff"  # its documentation says the words more often
    assert first(0.2) == "run_with_retry"  # the code that does it, by its lines of code


def test_split_comments_tells_comments_from_code_as_the_count_does() -> None:
    text = SAMPLES["rust"][0]
    comments, other = split_comments(text, "rust")
    assert comments[0] == "/* inner\n       block */"  # block comments first, whole
    assert comments[1:] == ["/// Adds.", "///", "/// ```", "/// let a = 1;", "/// ```"]
    assert [line for line in other if line.strip()] == [
        "#[inline]", "pub fn add(a: i32) -> i32 {", " a + 1", "}"]  # a block is its newlines
    assert sum(1 for line in other if line.strip()) == code_line_count(text, "rust")
