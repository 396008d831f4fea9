"""Each definition answers for itself, in all 20 languages: a query naming a method of a
class stored whole (or a definition merged with its neighbours) gets a hit whose symbol
and lines are that method's, not the container's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codesearch.api import Index
from codesearch.core.types import RankingConfig, SearchOptions

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "languages"

# language: (query, expected top hit as (path, symbol, start_line, end_line))
MEMBER_QUERIES = {
    "bash": ("prune", ("sample.sh", "prune", 21, 26)),
    "c": ("ring_status", ("sample.c", "ring_status", 12, 12)),
    "cpp": ("Tokenizer::split", ("sample.cpp", "text::Tokenizer::split", 11, 24)),
    "csharp": ("Order.Total", ("Sample.cs", "Order.Total", 28, 36)),
    "elixir": ("Shop.Cart.total", ("sample.ex", "Shop.Cart.total", 17, 21)),
    "go": ("Cache.Len", ("sample.go", "Cache.Len", 66, 66)),
    "haskell": ("Describe.describe", ("Sample.hs", "Describe.describe", 25, 26)),
    "java": ("Account.withdraw", ("Sample.java", "Account.withdraw", 27, 34)),
    "javascript": ("Bus.replay", ("sample.js", "Bus.replay", 32, 38)),
    "kotlin": ("Circle.contains", ("Sample.kt", "Circle.contains", 19, 23)),
    "lua": ("Stack:pop", ("sample.lua", "Stack:pop", 15, 23)),
    "php": ("SignupController.confirm", ("sample.php", "SignupController.confirm", 26, 32)),
    "python": ("Warehouse.restock", ("sample.py", "Warehouse.restock", 46, 52)),
    "ruby": ("Store.fetch", ("sample.rb", "Storage.Store.fetch", 15, 18)),
    "rust": ("Lexer::new", ("sample.rs", "Lexer::new", 20, 23)),
    "scala": ("BoundedQueue.poll", ("Sample.scala", "BoundedQueue.poll", 17, 27)),
    "swift": ("MemoryStore.save", ("sample.swift", "MemoryStore.save", 29, 33)),
    "tsx": ("Panel.toggle", ("sample.tsx", "Panel.toggle", 25, 27)),
    "typescript": ("UserStore.isAdmin", ("sample.ts", "UserStore.isAdmin", 38, 40)),
    "zig": ("Stack.pop", ("sample.zig", "Stack.pop", 14, 18)),
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Index:
    root = tmp_path_factory.mktemp("samples") / "repo"
    shutil.copytree(FIXTURES, root)
    index = Index(root)
    index.update(embed=False)
    return index


def test_every_language_has_a_member_query() -> None:
    from codesearch.source.languages import CODE_LANGUAGES

    assert set(MEMBER_QUERIES) == set(CODE_LANGUAGES)


@pytest.mark.parametrize("language", sorted(MEMBER_QUERIES))
def test_a_member_query_returns_the_member(samples: Index, language: str) -> None:
    query, (path, symbol, start, end) = MEMBER_QUERIES[language]
    top = samples.search(query, k=3, mode="text")[0]
    assert (top.path, top.symbol, top.start_line, top.end_line) == (path, symbol, start, end)
    lines = (FIXTURES / path).read_text().split("\n")[start - 1 : end]
    assert top.text == "\n".join(lines)


def test_without_member_hits_the_container_answers(samples: Index) -> None:
    ranking = RankingConfig(member_hits=False)
    top = samples.run("Warehouse.restock", SearchOptions(k=1, mode="text", ranking=ranking)).hits[0]
    assert (top.symbol, top.start_line, top.end_line) == ("Warehouse", 28, 52)


def test_a_name_with_a_kind_word_finds_that_kind(samples: Index) -> None:
    from codesearch.search.ranking import symbol_query

    assert symbol_query("Token enum") == ("Token", "enum")
    assert symbol_query("struct Lexer") == ("Lexer", "struct")
    assert symbol_query("parse the enum") is None
    top = samples.search("Token enum", k=1, mode="text", lang="rust")[0]
    assert (top.symbol, top.kind, top.start_line) == ("Token", "enum", 5)
    top = samples.search("Token impl", k=1, mode="text", lang="rust")[0]
    assert (top.symbol, top.kind, top.start_line) == ("Token", "impl", 39)
