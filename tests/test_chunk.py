"""Chunker behaviour on real tree-sitter grammars: coverage, splitting, merging, robustness."""

from __future__ import annotations

import socket
import sys
import sysconfig
import time
import zlib
from pathlib import Path

import pytest

from codesearch.source.chunk import (
    Chunk,
    ChunkBudget,
    chunk_file,
    is_minified,
    normalize_text,
    window_chunks,
)
from codesearch.source.languages import detect_language

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "languages"


def file_lines(text: str) -> list[str]:
    lines = normalize_text(text).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def assert_covers(text: str, chunks: list[Chunk], where: str = "") -> None:
    """Every chunk's text is its lines of the file; every non-blank line is in exactly one chunk."""
    lines = file_lines(text)
    owners = [0] * len(lines)
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines), (where, c)
        assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line]), (where, c.start_line)
        for r in range(c.start_line - 1, c.end_line):
            owners[r] += 1
    doubled = [i + 1 for i, n in enumerate(owners) if n > 1]
    missing = [i + 1 for i, (n, line) in enumerate(zip(owners, lines, strict=True)) if n == 0 and line.strip()]
    assert not doubled, f"{where}: lines in two chunks: {doubled[:10]}"
    assert not missing, f"{where}: lines in no chunk: {missing[:10]}"


# --- coverage property -----------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [24, 64, 256, 1024])
def test_fixtures_cover_every_line(max_tokens: int) -> None:
    budget = ChunkBudget(max_tokens=max_tokens, min_tokens=16)
    files = [p for p in sorted(FIXTURES.iterdir()) if detect_language(p.name) not in (None, "text")]
    assert len(files) >= 22
    for path in files:
        text = path.read_text(encoding="utf-8")
        chunks = chunk_file(path.name, text, detect_language(path.name), budget)
        assert chunks, path.name
        assert_covers(text, chunks, f"{path.name}@{max_tokens}")


def _site_packages_sample(limit: int) -> list[Path]:
    """A deterministic sample of installed .py and .js files: real code nobody here wrote."""
    root = Path(sysconfig.get_paths()["purelib"])
    files = sorted(
        p for p in root.rglob("*") if p.suffix in (".py", ".js") and p.is_file() and 200 < p.stat().st_size < 200_000
    )
    # Spread over the whole tree (not just the first packages alphabetically), stable across runs.
    files.sort(key=lambda p: zlib.crc32(str(p.relative_to(root)).encode()))
    return files[:limit]


def test_real_corpus_covers_every_line() -> None:
    files = _site_packages_sample(300)
    assert len(files) >= 100
    budget = ChunkBudget()
    started = time.perf_counter()
    n_chunks = 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        language = detect_language(str(path))
        chunks = chunk_file(str(path), text, language, budget)
        n_chunks += len(chunks)
        if is_minified(text) or ".min." in path.name:
            assert chunks == []
            continue
        assert_covers(text, chunks, str(path))
        kinds = {c.kind for c in chunks}
        assert "window" not in kinds, path
    elapsed = time.perf_counter() - started
    assert n_chunks > len(files)
    assert elapsed < 20, f"chunking {len(files)} files took {elapsed:.1f}s"


# --- definitions, names, splitting --------------------------------------------------------


def _by_symbol(chunks: list[Chunk]) -> dict[str, Chunk]:
    return {c.symbol: c for c in chunks}


def test_python_decorators_comments_and_docstrings_belong_to_definition() -> None:
    text = (
        "import os\n\n\n"
        "# Reads the config file and returns its sections\n"
        "# (comment block directly above).\n"
        "@cache\n"
        "@retry(times=3)\n"
        "def load_config(path):\n"
        '    """Load it."""\n'
        "    with open(path) as f:\n"
        "        return parse_sections(f.read(), strict=True, encoding='utf-8')\n"
    )
    chunks = chunk_file("a.py", text, "python", ChunkBudget(min_tokens=0))
    fn = _by_symbol(chunks)["load_config"]
    assert (fn.kind, fn.start_line, fn.end_line) == ("function", 4, 11)
    assert fn.text.startswith("# Reads the config")
    assert chunks[0].kind == "module" and chunks[0].symbol == "" and chunks[0].text == "import os"


def test_comment_separated_by_blank_line_stays_in_module() -> None:
    text = "# section header\n\n# about f\ndef f():\n    return compute_everything(1, 2, 3)\n"
    chunks = chunk_file("a.py", text, "python", ChunkBudget(min_tokens=0))
    assert [(c.kind, c.start_line, c.end_line) for c in chunks] == [("module", 1, 1), ("function", 3, 5)]


def _big_python_class(methods: int = 12) -> str:
    body = "".join(
        f"    def method_{i}(self, value):\n"
        f"        total = value * {i} + self.offset\n"
        f"        return self.transform(total, label='m{i}')\n\n"
        for i in range(methods)
    )
    return 'class Big(Base):\n    """A big class."""\n\n    offset = 3\n\n' + body


def test_small_class_is_one_chunk_large_class_is_header_plus_methods() -> None:
    small = "class Small:\n    def a(self):\n        return 1\n\n    def b(self):\n        return 2\n"
    chunks = chunk_file("s.py", small, "python")
    assert [(c.symbol, c.kind) for c in chunks] == [("Small", "class")]

    text = _big_python_class()
    chunks = chunk_file("b.py", text, "python", ChunkBudget(max_tokens=128, min_tokens=0))
    header = chunks[0]
    assert (header.symbol, header.kind, header.start_line) == ("Big", "class", 1)
    assert '"""A big class."""' in header.text and "offset = 3" in header.text
    methods = [c for c in chunks if c.kind == "method"]
    assert {c.symbol for c in methods} == {f"Big.method_{i}" for i in range(12)}
    # each method chunk carries the class declaration for the embedder
    assert all(c.context == "class Big(Base):" for c in methods)
    assert_covers(text, chunks)


def test_nested_helpers_stay_in_parent_unless_split() -> None:
    text = "def outer(xs):\n    def helper(x):\n        return x * 2\n\n    return [helper(x) for x in xs]\n"
    chunks = chunk_file("n.py", text, "python")
    assert [(c.symbol, c.start_line, c.end_line) for c in chunks] == [("outer", 1, 5)]


def test_oversize_function_split_at_statements_with_signature_context() -> None:
    stmts = "".join(f"    value_{i} = compute_something(value_{i - 1 if i else 0}, factor={i})\n" for i in range(60))
    text = "def long_function(value_0, factor):\n" + stmts + "    return value_59\n"
    budget = ChunkBudget(max_tokens=100)
    chunks = chunk_file("l.py", text, "python", budget)
    assert len(chunks) > 3
    assert all(c.symbol == "long_function" and c.kind == "function" for c in chunks)
    assert chunks[0].context == ""
    assert all(c.context == "def long_function(value_0, factor):" for c in chunks[1:])
    for c in chunks:  # cuts fall between statements: every part starts a statement
        assert c.text.lstrip().startswith(("def ", "value_", "return"))
        assert budget.count_tokens(c.text) <= budget.max_tokens
    assert_covers(text, chunks)


def test_budget_uses_the_given_token_counter() -> None:
    words = lambda s: len(s.split())  # noqa: E731 - a stand-in "tokenizer" with different units
    text = _big_python_class(30)
    budget = ChunkBudget(max_tokens=40, min_tokens=4, count_tokens=words)
    chunks = chunk_file("b.py", text, "python", budget)
    assert all(words(c.text) <= 40 for c in chunks)
    assert len(chunks) >= 30
    assert_covers(text, chunks)


def test_tiny_neighbours_merge_up_to_floor() -> None:
    getters = "".join(f"    public int get{n}() {{ return {n.lower()}; }}\n" for n in "ABCDEF")
    big = "".join(f"        step{i}(input, output, context, {i});\n" for i in range(12))
    text = f"class Point {{\n{getters}\n    void run() {{\n{big}    }}\n}}\n"
    chunks = chunk_file("P.java", text, "java", ChunkBudget(max_tokens=120, min_tokens=30))
    merged = [c for c in chunks if len(c.symbols) > 1]
    assert merged, [c.symbols for c in chunks]
    cost = ChunkBudget().count_tokens
    assert all(cost(c.text) >= 30 or len(c.symbols) > 1 for c in chunks if c.symbols)
    # the split `run` does not end in a one-line tail part
    run_parts = [c for c in chunks if c.symbol == "Point.run"]
    assert len(run_parts) >= 2 and all(cost(c.text) >= 30 for c in run_parts)
    assert {"Point.getA", "Point.getB"} <= {s for c in chunks for s in c.symbols}
    assert_covers(text, chunks)


def test_rust_impl_trait_for_type_uses_type_and_double_colon() -> None:
    fmt_body = "".join(f'            Kind::V{i} => write!(f, "v{i}"),\n' for i in range(20))
    text = (
        "use std::fmt;\n\n"
        "impl<T: Clone> fmt::Display for Wrapper<T> {\n"
        "    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n"
        f"        match self.kind {{\n{fmt_body}        }}\n"
        "    }\n\n"
        "    fn helper(&self) -> usize { self.items.len() + self.extra.len() + 42 }\n"
        "}\n"
    )
    chunks = chunk_file("w.rs", text, "rust", ChunkBudget(max_tokens=128))
    symbols = {s for c in chunks for s in c.symbols}
    assert {"Wrapper", "Wrapper::fmt", "Wrapper::helper"} <= symbols
    assert any(c.kind == "impl" and c.symbol == "Wrapper" for c in chunks)
    assert_covers(text, chunks)


def test_go_methods_are_qualified_by_receiver() -> None:
    text = "package x\n\nfunc (s *Server[T]) Handle(w http.ResponseWriter) error {\n\treturn s.next.ServeHTTP(w)\n}\n"
    chunks = chunk_file("s.go", text, "go", ChunkBudget(min_tokens=0))
    assert ("Server.Handle", "method") in [(c.symbol, c.kind) for c in chunks]


# --- robustness ------------------------------------------------------------------------


def test_syntax_errors_still_yield_definitions() -> None:
    text = (
        "def good_one(a):\n    return a + 1\n\n"
        "def broken(:\n    x = = 2\n\n"
        "class Fine:\n    def m(self):\n        return 3\n"
    )
    chunks = chunk_file("e.py", text, "python", ChunkBudget(min_tokens=0))
    # tree-sitter's recovery decides what survives; the definitions before the
    # error do, and nothing is lost
    assert {"good_one", "broken"} <= {c.symbol for c in chunks}
    assert_covers(text, chunks)

    js = "function ok(a) {\n  return a;\n}\n\nfunction bad( {\n  let = ;\n}\n\nclass K {\n  m() { return 1; }\n}\n"
    chunks = chunk_file("e.js", js, "javascript", ChunkBudget(min_tokens=0))
    assert "ok" in {c.symbol for c in chunks}
    assert_covers(js, chunks)


@pytest.mark.parametrize("language", ["python", "javascript", "rust", "go", "java", "cpp", "ruby"])
def test_junk_never_raises(language: str) -> None:
    junk = "".join(chr(c) for c in range(0, 0x3000, 7)) + "\x00\x00{{{((([[[\n" * 20 + "}}}" * 50
    for text in (junk, "\n\n\n", "", "   ", "\x00" * 100, "}" * 10 + "\n" + "def"):
        chunks = chunk_file("junk", text, language)
        assert isinstance(chunks, list)
        if text.strip():
            assert_covers(text, chunks, language)


def test_crlf_and_bom_keep_line_numbers() -> None:
    text = "\ufeffimport os\r\n\r\ndef f():\r\n    return os.getcwd() + os.sep + 'data'\r\n"
    chunks = chunk_file("c.py", text, "python", ChunkBudget(min_tokens=0))
    fn = _by_symbol(chunks)["f"]
    assert (fn.start_line, fn.end_line) == (3, 4)
    assert "\r" not in fn.text and not chunks[0].text.startswith("\ufeff")
    assert_covers(text, chunks)


def test_minified_files_are_skipped() -> None:
    minified = "var a=1;" * 2000 + "\n" + "function f(){return 1}" * 300 + "\n"
    assert is_minified(minified)
    assert chunk_file("app.js", minified, "javascript") == []
    assert chunk_file("app.min.js", "function f() { return 1; }\n" * 200, "javascript") == []
    # one long data line in an otherwise normal file is not "minified"
    normal = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(400)) + "DATA = '" + "x" * 6000 + "'\n"
    assert not is_minified(normal)
    assert len(chunk_file("d.py", normal, "python")) > 10


def test_files_without_grammar_get_overlapping_windows() -> None:
    text = "".join(f"line {i} of a plain text file with some words\n" for i in range(200))
    budget = ChunkBudget(max_tokens=64)
    chunks = chunk_file("notes.txt", text, None, budget)
    assert len(chunks) > 5 and all(c.kind == "window" and c.language == "text" for c in chunks)
    assert all(budget.count_tokens(c.text) <= 64 for c in chunks)
    assert chunks[1].start_line <= chunks[0].end_line  # overlap
    assert chunks[-1].end_line == 200
    assert chunk_file("x.unknown", text, "text", budget) == window_chunks("x.unknown", text, "text", budget)


def test_parse_works_with_network_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grammars are bundled in the wheel: parsing a new language in a fresh process opens no socket."""
    import subprocess

    code = (
        "import socket\n"
        "def boom(*a, **k):\n    raise RuntimeError('network used')\n"
        "socket.socket = boom\nsocket.create_connection = boom\n"
        "from codesearch.source.chunk import chunk_file\n"
        "for lang, src in [('zig', 'fn f() void {}\\n'), ('haskell', 'f x = x\\n'), ('elixir', 'def f, do: 1\\n')]:\n"
        "    assert chunk_file('x', src * 3, lang)[0].kind != 'window', lang\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    # and in this process too, through the cached parsers
    monkeypatch.setattr(socket, "socket", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("network")))
    assert chunk_file("k.kt", "fun main() { println(1) }\n", "kotlin")[0].symbol == "main"


def test_docs_split_by_heading() -> None:
    text = (
        "Intro line.\n\n# Title\n\nSome words about the project and why it exists.\n\n"
        "## Install\n\n```sh\n# not a heading\npip install thing\n```\n\n"
        "## Usage\n\nRun it with arguments and options as described in the manual.\n"
    )
    chunks = chunk_file("README.md", text, "markdown", ChunkBudget(min_tokens=0))
    assert [c.symbol for c in chunks] == ["", "Title", "Title > Install", "Title > Usage"]
    assert all(c.content_type == "docs" and c.kind == "section" for c in chunks)
    assert_covers(text, chunks)


def test_large_docs_section_split_by_paragraph_with_heading_context() -> None:
    paras = "".join(f"Paragraph {i} explains one more detail of the tool in plain words.\n\n" for i in range(30))
    text = "Guide\n=====\n\n" + paras
    chunks = chunk_file("guide.rst", text, "rst", ChunkBudget(max_tokens=64))
    assert len(chunks) > 3 and all(c.symbol == "Guide" for c in chunks)
    assert all(c.context == "Guide" for c in chunks[1:])
    assert_covers(text, chunks)


def test_c_header_with_cpp_content_uses_cpp_grammar() -> None:
    text = "namespace geo {\nclass Vec {\n public:\n  double norm() const { return 0; }\n};\n}\n"
    chunks = chunk_file("vec.h", text, "c", ChunkBudget(min_tokens=0))
    assert chunks[0].language == "cpp"
    assert any(c.symbol == "geo" and c.kind == "namespace" for c in chunks)


def test_c_macro_with_comment_inside_does_not_swallow_the_functions_after_it() -> None:
    # A comment inside a multi-line #define made the C grammar read what follows as one
    # ERROR node (libyaml's scanner.c lost every function after its READ_LINE macro).
    text = (
        "#define COPY_BREAK(p, s)                                \\\n"
        "       AT(p, '\\xA9', 2))) ?        /* LS|PS -> LS|PS */ \\\n"
        "     (*((s).pointer++) = *(p->pointer++),               \\\n"
        "\n"
        "YAML_DECLARE(int)\n"
        "yaml_parser_scan(yaml_parser_t *parser, yaml_token_t *token)\n"
        "{\n"
        "    return 0;\n"
        "}\n"
    )
    chunks = chunk_file("scanner.c", text, "c", ChunkBudget(min_tokens=0))
    assert [(c.symbol, c.kind, c.start_line, c.end_line) for c in chunks] == [
        ("", "module", 1, 3), ("yaml_parser_scan", "function", 5, 9)]
    # What is stored is the file's own text, the comment included.
    assert "/* LS|PS -> LS|PS */" in chunks[0].text


def test_c_header_definitions_inside_extern_c_are_found() -> None:
    text = (
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
        "/** The parser structure. */\n"
        "typedef struct yaml_parser_s {\n    int error;\n    const char *problem;\n} yaml_parser_t;\n\n"
        "int yaml_parser_initialize(yaml_parser_t *parser);\n\n"
        "#ifdef __cplusplus\n}\n#endif\n"
    )
    chunks = chunk_file("yaml.h", text, "c", ChunkBudget(min_tokens=0))
    assert any(c.symbol == "yaml_parser_t" and c.kind == "struct" and c.start_line <= 6 <= c.end_line
               for c in chunks)


def test_cpp_export_macro_keeps_the_class_and_its_namespace() -> None:
    text = (
        "namespace YAML {\n"
        "class YAML_CPP_API Node {\n"
        " public:\n"
        "  Node();\n"
        "  bool IsNull() const { return true; }\n"
        "};\n"
        "}\n"
    )
    chunks = chunk_file("node.h", text, "cpp", ChunkBudget(min_tokens=0))
    # Small enough to be one chunk: the namespace, listing its class and the method.
    assert [(c.symbol, c.kind) for c in chunks] == [("YAML", "namespace")]
    assert chunks[0].members == (("YAML::Node", "class", 2, 6), ("YAML::Node::IsNull", "method", 5, 5))
    assert "class YAML_CPP_API Node {" in chunks[0].text
