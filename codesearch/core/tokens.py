"""Identifier-aware words for the lexical tier and the embedded text.

Code names are glued words (`readCsv`, `read_csv`, `HTTPServer`); people type
"read csv". Both sides are normalised here so they meet.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import Stemmer

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
        # Most pieces are one lower-case word: no regex (this runs for every distinct
        # identifier of a repository before its first query).
        if piece.isalpha() and piece.islower() and piece.isascii():
            parts.append(piece)
        elif piece:
            parts.extend(map(str.lower, _CAMEL.findall(piece)))
    return parts


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


def searchable(word: str) -> bool:
    """Whether a query can ever ask for this word (query_words drops the others)."""
    return len(word) > 1 and word not in CODE_STOPWORDS


# --- the full-text index's analyzer, run here -------------------------------------
#
# LanceDB's English analyzer splits on anything but letters and digits, drops
# tokens of 40 bytes or more, lower-cases, stems (Snowball English), drops stop
# words (checked after stemming) and folds accents. Run here instead, it costs
# a dictionary lookup per word (each distinct token is analyzed once) where the
# index build spent 0.2 s of the 0.4 s before a first query stemming every word
# again; the index is then built with a bare whitespace analyzer, and queries
# go through the same function. PyStemmer is the same Snowball stemmer:
# identical stems on all 1.25M words of the large benchmark repository.

# Lance's English stop words (NLTK's list, each checked to be dropped by Lance).
ENGLISH_STOPWORDS = frozenset(
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his "
    "himself she her hers herself it its itself they them their theirs themselves what "
    "which who whom this that these those am is are was were be been being have has had "
    "having do does did doing a an the and but if or because as until while of at by for "
    "with about against between into through during before after above below to from up "
    "down in out on off over under again further then once here there when where why how "
    "all any both each few more most other some such no nor not only own same so than too "
    "very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn "
    "hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn".split()
)
MAX_TERM_BYTES = 40  # Lance drops longer tokens (max_token_length)
_ALNUM = re.compile(r"[^\W_]+")
_stemmers = threading.local()  # a Stemmer object is not safe to share between threads


def _stem(word: str) -> str:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return stemmer.stemWord(word)


@lru_cache(maxsize=1 << 16)
def _term(token: str) -> str:
    """One token as the index stores it; "" when the analyzer drops it."""
    if len(token.encode("utf-8", "surrogatepass")) >= MAX_TERM_BYTES:
        return ""
    term = _stem(token.lower())
    if term in ENGLISH_STOPWORDS:
        return ""
    return term if term.isascii() else _fold(term)


def _fold(term: str) -> str:
    decomposed = unicodedata.normalize("NFKD", term.translate(_LIGATURES))
    return "".join(c for c in decomposed if c.isascii() and not unicodedata.combining(c))


_LIGATURES = str.maketrans({"\u00df": "ss", "\u00e6": "ae", "\u0153": "oe", "\u00f8": "o",
                            "\u0111": "d", "\u0142": "l", "\u00fe": "th"})


def index_terms(text: str) -> list[str]:
    """The terms the full-text index holds for this text (see the notes above)."""
    return [t for t in map(_term, _ALNUM.findall(text)) if t]


def terms_text(words: Iterable[str]) -> str:
    """`index_terms` of words made of a-z, 0-9 and _ (as `expand_words` gives them), as
    one space-separated string. Splitting such words needs no regex: this runs for
    every distinct token of a repository and for every chunk's symbol."""
    return _joined_terms(" ".join(words).replace("_", " ").split())


def _joined_terms(pieces: Iterable[str]) -> str:
    return " ".join(filter(None, map(_term, filter(None, pieces))))


class _TokenTerms(dict[bytes, str]):
    """Token -> its terms, analyzed on first sight: the lookup of every other
    occurrence stays in C (`map(terms.__getitem__, tokens)`)."""

    def __missing__(self, token: bytes) -> str:
        # A token may still hold several _WORD matches ("2to3" -> "2", "to3").
        idents = _WORD.findall(token.decode("ascii"))
        pieces = [p for i in idents for w in _expanded(i) if searchable(w) for p in w.split("_")]
        terms = _joined_terms(pieces)
        if len(self) < 1 << 20:
            self[token] = terms
        return terms


_token_terms = _TokenTerms()


def lexical_text(text: str) -> str:
    """Text for the full-text index: whole identifiers plus their split parts, as terms.

    The words of `expand_words` that a query can ask for (`searchable`), run
    through the index's analyzer (`index_terms`). Fast: a byte table splits the
    text and each distinct token is analyzed once (this runs over every line of
    a repository before its first query). Dropping `self`, `def`, `x`, `0`... (a
    third of all words) also means BM25 lengths count only words that can match.
    """
    tokens = text.encode("utf-8", "surrogatepass").translate(_SEPARATE).split()
    # filter(None, ...) drops tokens with no term ("_", "self").
    return " ".join(filter(None, map(_token_terms.__getitem__, tokens)))


@lru_cache(maxsize=4096)
def path_words(path: str) -> str:
    pieces = [p for p in _PATH_SPLIT.split(path) if p]
    return " ".join(w for piece in pieces for w in [piece.lower(), *split_identifier(piece)])


@lru_cache(maxsize=4096)
def path_terms(path: str) -> str:
    return " ".join(index_terms(path_words(path)))


def symbol_words(symbol: str) -> str:
    return " ".join(expand_words(symbol))


# Words of a question about code that name no part of it ("how does X work", "where
# is Y handled"); the full-text search leaves them out unless nothing else is left.
QUESTION_WORDS = frozenset(
    "does do did work works happen happens handled implemented where what which".split()
)


def content_words(words: list[str]) -> list[str]:
    """`words` without QUESTION_WORDS (all of them if that leaves none)."""
    kept = [w for w in words if w not in QUESTION_WORDS]
    return kept or words


def query_words(query: str) -> list[str]:
    """Content words of a query, identifiers split, stop words dropped."""
    words = [w for w in expand_words(query) if searchable(w)]
    return list(dict.fromkeys(words))


# Words and the short forms code writes them in. Only pairs where both sides are
# searchable (not code stop words) and the short form rarely means something else.
CODE_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "address": ("addr",), "allocate": ("alloc",), "argument": ("arg", "argv"),
    "array": ("arr",), "attribute": ("attr",), "authenticate": ("auth",),
    "authentication": ("auth",), "authorization": ("auth",), "buffer": ("buf",),
    "button": ("btn",), "calculate": ("calc",), "callback": ("cb",),
    "certificate": ("cert",), "character": ("char",), "column": ("col",),
    "command": ("cmd",), "compare": ("cmp",), "configuration": ("config", "cfg", "conf"),
    "configure": ("config", "cfg"), "connection": ("conn",), "context": ("ctx",),
    "control": ("ctrl",), "coordinate": ("coord",), "count": ("cnt",),
    "current": ("cur", "curr"), "database": ("db",), "decrement": ("dec",),
    "default": ("dflt",), "delete": ("del",), "description": ("desc",),
    "destination": ("dst", "dest"), "dictionary": ("dict",), "directory": ("dir",),
    "document": ("doc",), "element": ("elem",), "environment": ("env",),
    "error": ("err",), "exception": ("exc",), "execute": ("exec",),
    "expression": ("expr",), "extension": ("ext",), "format": ("fmt",),
    "frequency": ("freq",), "generate": ("gen",), "header": ("hdr",),
    "identifier": ("id",), "image": ("img",), "implementation": ("impl",),
    "increment": ("inc",), "index": ("idx",), "information": ("info",),
    "initialize": ("init",), "initialise": ("init",), "instance": ("inst",),
    "iterator": ("iter",), "language": ("lang",), "length": ("len",),
    "library": ("lib",), "location": ("loc",), "manager": ("mgr",),
    "matrix": ("mat",), "maximum": ("max",), "memory": ("mem",),
    "message": ("msg",), "minimum": ("min",), "miscellaneous": ("misc",),
    "module": ("mod",), "namespace": ("ns",), "navigation": ("nav",),
    "network": ("net",), "number": ("num",), "object": ("obj",),
    "operation": ("op",), "option": ("opt",), "original": ("orig",),
    "package": ("pkg",), "packet": ("pkt",), "parameter": ("param",),
    "password": ("passwd", "pwd"), "pointer": ("ptr",), "position": ("pos",),
    "previous": ("prev",), "process": ("proc",), "property": ("prop",),
    "random": ("rand",), "receive": ("recv",), "reference": ("ref",),
    "register": ("reg",), "regular": ("regex",), "remove": ("rm",),
    "repository": ("repo",), "request": ("req",), "response": ("resp",),
    "schedule": ("sched",), "separator": ("sep",), "sequence": ("seq",),
    "server": ("srv",), "service": ("svc",), "signal": ("sig",),
    "socket": ("sock",), "source": ("src",), "specification": ("spec",),
    "standard": ("std",), "statistics": ("stats",), "statement": ("stmt",),
    "structure": ("struct",), "synchronize": ("sync",), "synchronous": ("sync",),
    "asynchronous": ("async",), "system": ("sys",), "temporary": ("tmp", "temp"),
    "template": ("tmpl",), "timestamp": ("ts",), "token": ("tok",),
    "transaction": ("txn", "tx"), "utility": ("util",), "utilities": ("utils",),
    "value": ("val",), "vector": ("vec",), "version": ("ver",), "window": ("win",),
}


@lru_cache(maxsize=1)
def _short_forms() -> dict[str, tuple[str, ...]]:
    """Both directions, as index terms (stemmed: `arguments` and `argument` meet)."""
    forms: dict[str, tuple[str, ...]] = {}
    for word, shorts in CODE_ABBREVIATIONS.items():
        long_term = _term(word)
        for short in map(_term, shorts):
            forms[long_term] = (*forms.get(long_term, ()), short)
            forms[short] = (*forms.get(short, ()), long_term)
    return forms


def abbreviation_terms(terms: Iterable[str]) -> list[str]:
    """The other spelling of each query term: `argument` -> `arg`, `argv`; `ctx` ->
    `context` (index terms, as terms_text gives them; none the query has)."""
    have = set(terms)
    forms = _short_forms()
    return list(dict.fromkeys(t for term in have for t in forms.get(term, ()) if t not in have))


def agent_noun_terms(words: Iterable[str]) -> list[str]:
    """`parse` -> `parser`, `handler` -> `handle`: the stemmer keeps them apart (query
    words as query_words gives them; index terms out)."""
    out: list[str] = []
    for w in words:
        if w.endswith("er") and len(w) > 4:
            out += [_term(w[:-1]), _term(w[:-2])]
        elif len(w) > 2 and w.isalpha():
            out.append(_term(w + "r" if w.endswith("e") else w + "er"))
    return list(dict.fromkeys(t for t in out if t))


_SYMBOLISH = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::|:|#|->)[A-Za-z_$][\w$]*)*\(?\)?$")  # `:` Lua


def looks_like_symbol(query: str) -> bool:
    """True for `Session.send`, `read_csv`, `HTTPAdapter`, `fmt::Display`: a name, not a sentence."""
    q = query.strip()
    if not q or " " in q:
        return False
    if not _SYMBOLISH.match(q):
        return False
    has_glue = any(c in q for c in "._:#") or bool(re.search(r"[a-z][A-Z]", q))
    return has_glue or q[0].isupper() or len(split_identifier(q)) > 1
