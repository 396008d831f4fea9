"""Language detection and the declarative chunking table."""

from __future__ import annotations

import pytest

from codesearch.source.chunk import get_cached_parser
from codesearch.source.languages import CODE_LANGUAGES, LANGUAGES, detect_language

REQUIRED = {
    "python", "javascript", "typescript", "tsx", "go", "rust", "java", "kotlin", "scala", "c",
    "cpp", "csharp", "ruby", "php", "swift", "lua", "bash", "elixir", "haskell", "zig",
}


def test_all_twenty_languages_have_a_table() -> None:
    assert set(CODE_LANGUAGES) == REQUIRED
    assert LANGUAGES["markdown"].content_type == "docs" and LANGUAGES["rst"].content_type == "docs"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_table_node_types_exist_in_the_grammar(name: str) -> None:
    """Every node type the table names is a real node type of the bundled grammar (catches typos)."""
    spec = LANGUAGES[name]
    assert spec.grammar is not None
    language = get_cached_parser(spec.grammar).language
    named = {
        *spec.definitions, *spec.attached, *spec.wrappers, *spec.transparent,
    }
    # javascript/typescript/tsx share one table: a type must exist in one of the three
    family = ["javascript", "typescript", "tsx"] if name in ("javascript", "typescript", "tsx") else [name]
    languages = [get_cached_parser(n).language for n in family]
    unknown = sorted(t for t in named if all(lang.id_for_node_kind(t, True) is None for lang in languages))
    assert unknown == [], f"{name}: node types not in grammar: {unknown}"
    for rules in spec.definitions.values():
        for rule in rules:
            for step in (*rule.name, *rule.requires, *(rule.body if rule.container else ())):
                if step.startswith(("@", "*", "=")):
                    continue
                assert language.field_id_for_name(step) is not None, f"{name}: no field {step!r}"


@pytest.mark.parametrize(
    ("path", "head", "expected"),
    [
        ("src/app.py", "", "python"),
        ("types.pyi", "", "python"),
        ("web/index.mjs", "", "javascript"),
        ("web/App.jsx", "", "javascript"),
        ("lib/a.ts", "", "typescript"),
        ("lib/A.tsx", "", "tsx"),
        ("main.go", "", "go"),
        ("lib.rs", "", "rust"),
        ("A.java", "", "java"),
        ("build.gradle.kts", "", "kotlin"),
        ("A.scala", "", "scala"),
        ("x.c", "", "c"),
        ("x.h", "", "c"),
        ("x.hpp", "", "cpp"),
        ("x.cc", "", "cpp"),
        ("P.cs", "", "csharp"),
        ("a.rb", "", "ruby"),
        ("Rakefile", "", "ruby"),
        ("index.php", "", "php"),
        ("App.swift", "", "swift"),
        ("init.lua", "", "lua"),
        ("run.sh", "", "bash"),
        ("mix.exs", "", "elixir"),
        ("Main.hs", "", "haskell"),
        ("build.zig", "", "zig"),
        ("README.md", "", "markdown"),
        ("docs/index.rst", "", "rst"),
        ("notes.txt", "", None),
        ("UPPER.PY", "", "python"),
        ("bin/tool", "#!/usr/bin/env python3", "python"),
        ("bin/tool", "#!/usr/bin/python3.11", "python"),
        ("bin/tool", "#!/bin/bash", "bash"),
        ("bin/tool", "#!/bin/sh -e", "bash"),
        ("bin/tool", "#!/usr/bin/env -S node --no-warnings", "javascript"),
        ("bin/tool", "#!/usr/bin/env ruby", "ruby"),
        ("bin/tool", "#!/usr/bin/env unknown-thing", None),
        ("bin/tool", "no shebang", None),
        ("image.png", "", None),
    ],
)
def test_detect_language(path: str, head: str, expected: str | None) -> None:
    assert detect_language(path, head) == expected
