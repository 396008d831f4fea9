"""Identifier-aware words for the lexical tier and the embedded text.

Code names are glued words (`readCsv`, `read_csv`, `HTTPServer`); people type
"read csv". Both sides are normalised here so they meet.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_PATH_SPLIT = re.compile(r"[\\/._\-]+")

# Words so common in code that matching them says nothing.
CODE_STOPWORDS = frozenset(
    "self this cls def fn func function return returns var let const public private "
    "static void int str string bool true false none null nil new the a an of to in "
    "for and or is it if else elif import from package use using".split()
)


def split_identifier(name: str) -> list[str]:
    """`readCSVFile_v2` -> ["read", "csv", "file", "v", "2"] (lower case)."""
    parts: list[str] = []
    for piece in name.split("_"):
        parts.extend(m.group(0).lower() for m in _CAMEL.finditer(piece))
    return [p for p in parts if p]


def identifiers(text: str) -> list[str]:
    return _WORD.findall(text)


@lru_cache(maxsize=1 << 16)
def _expanded(ident: str) -> tuple[str, ...]:
    # Identifiers repeat a lot within a repository: split each distinct one once.
    whole = ident.lower().strip("_")
    if not whole:
        return ()
    parts = split_identifier(ident)
    return (whole, *parts) if len(parts) > 1 else (whole,)


def expand_words(text: str) -> list[str]:
    """Every identifier, lower-cased whole, followed by its parts when it has several."""
    words: list[str] = []
    for ident in _WORD.findall(text):
        words.extend(_expanded(ident))
    return words


# Bytes that can be part of an identifier (_WORD matches ASCII only, so every other
# byte, UTF-8 sequences included, separates words exactly as the regex does).
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_SEPARATE = bytes(b if b in _WORD_BYTES else 0x20 for b in range(256))
_lexical_words: dict[bytes, str] = {}


def searchable(word: str) -> bool:
    """Whether a query can ever ask for this word (query_words drops the others)."""
    return len(word) > 1 and word not in CODE_STOPWORDS


def _lexical_word(token: bytes) -> str:
    # A token may still hold several _WORD matches ("2to3" -> "2", "to3").
    idents = _WORD.findall(token.decode("ascii"))
    words = " ".join(w for ident in idents for w in _expanded(ident) if searchable(w))
    if len(_lexical_words) < 1 << 20:
        _lexical_words[token] = words
    return words


def lexical_text(text: str) -> str:
    """Text for the full-text index: whole identifiers plus their split parts.

    The words of `expand_words` that a query can ask for (`searchable`), twice
    as fast: a byte table splits the text and each distinct token is expanded
    once (this runs over every line of a repository before its first query).
    Dropping `self`, `def`, `x`, `0`... (a third of all words) shrinks what the
    full-text index must tokenize, and BM25 lengths count only words that match.
    """
    tokens = text.encode("utf-8", "surrogatepass").translate(_SEPARATE).split()
    seen = _lexical_words
    # filter(None, ...) drops tokens with no word ("_"), as expand_words does.
    return " ".join(filter(None, [seen[t] if t in seen else _lexical_word(t) for t in tokens]))


@lru_cache(maxsize=4096)
def path_words(path: str) -> str:
    pieces = [p for p in _PATH_SPLIT.split(path) if p]
    return " ".join(w for piece in pieces for w in [piece.lower(), *split_identifier(piece)])


def symbol_words(symbol: str) -> str:
    return " ".join(expand_words(symbol))


def query_words(query: str) -> list[str]:
    """Content words of a query, identifiers split, stop words dropped."""
    words = [w for w in expand_words(query) if searchable(w)]
    return list(dict.fromkeys(words))


_SYMBOLISH = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::|#|->)[A-Za-z_$][\w$]*)*\(?\)?$")


def looks_like_symbol(query: str) -> bool:
    """True for `Session.send`, `read_csv`, `HTTPAdapter`, `fmt::Display`: a name, not a sentence."""
    q = query.strip()
    if not q or " " in q:
        return False
    if not _SYMBOLISH.match(q):
        return False
    has_glue = any(c in q for c in "._:#") or bool(re.search(r"[a-z][A-Z]", q))
    return has_glue or q[0].isupper() or len(split_identifier(q)) > 1
