"""Split a source file into chunks: one function, method or class each.

`chunk_file` is the narrow interface the indexer uses. How it works:

* The file is normalised (BOM removed, CRLF -> LF) and split on "\\n"; every
  chunk's `text` is exactly its lines `start_line..end_line` of that text, so
  line numbers always match the file on disk.
* Files of a language with a table in `codesearch.source.languages` are parsed with
  tree-sitter. Definitions at the top level (and inside transparent nodes such
  as `#ifdef` blocks) become chunks; comments, decorators and attributes right
  above a definition belong to it.
* Everything between definitions (imports, constants, module docstrings, script
  bodies) becomes `module` chunks with symbol "": every non-blank line of a
  supported file is in exactly one chunk.
* A definition that fits `budget.max_tokens` is one chunk, nested helpers
  included. A larger container (class, impl, namespace ...) becomes a header
  chunk (declaration, docstring, fields; kind of the container) plus one chunk
  per member, recursively. A larger function is cut at statement boundaries;
  parts after the first carry the signature in `context`, which the indexer
  prepends when embedding (the text itself stays the file's lines).
* Tiny neighbours (one-line getters, a stray `}`) are merged up to
  `budget.min_tokens` when they share a parent; `symbols` lists every
  definition a merged chunk holds.
* `members` gives the span of every definition inside a chunk other than the
  chunk's own: the methods of a class stored whole, the getters merged into one
  chunk. A query naming one of them is answered with its own lines and name.
* Minified or generated files (mean line > 300 chars, or a line > 5,000 chars
  holding most of the file) are skipped: `chunk_file` returns [] and
  `is_minified` tells the caller why. Their chunks would be unreadable to a
  model and drown real code in results.
* Files without a grammar fall back to line windows with overlap. Nothing here
  raises on bad input: any internal failure also falls back to line windows.
* Markdown and reStructuredText are split by heading into `section` chunks with
  content_type "docs" and the heading trail ("Install > Linux") as symbol.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from codesearch.source.languages import Def, LanguageSpec, spec_for

# Kinds: function | method | class | struct | enum | interface | trait | impl |
# namespace | type | macro | module (top-level code) | section (docs) | window (no grammar)
CONTAINER_KINDS_WITH_METHODS = frozenset({"class", "struct", "interface", "trait", "impl", "enum"})

Member = tuple[str, str, int, int]  # symbol, kind, first line, last line (1-based)


@dataclass(frozen=True)
class Chunk:
    """One searchable unit of code: a definition, a module block or a line window."""

    path: str  # posix path relative to the index root
    language: str  # e.g. "python"; "text" for files without a grammar
    symbol: str  # qualified name, "Class.method"; "" for module/window chunks
    kind: str  # function | method | class | struct | enum | interface | trait | impl | namespace | type | macro | module | section | window
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str  # exact source text of the lines start_line..end_line
    content_type: str = "code"  # "code" or "docs"
    # Enclosing headers for a chunk cut out of something larger: the class
    # declaration above a method of a split class, the signature above the 2nd+
    # part of a split function, the heading trail of a split docs section.
    # The indexer prepends it when embedding; it is not part of `text`.
    context: str = ""
    # Qualified names of the definitions this chunk holds or is part of: (symbol,)
    # for one definition or a part of a split one, several after tiny neighbours
    # were merged, () for plain module code and windows. Members of an unsplit
    # class are not listed (they are inside the class chunk's text).
    symbols: tuple[str, ...] = ()
    # (symbol, kind, start_line, end_line) of each definition inside this chunk other
    # than the chunk's own: the methods of a class stored whole, merged neighbours.
    members: tuple[Member, ...] = ()


def approx_tokens(text: str) -> int:
    """Cheap token estimate (about 4 characters a token for code)."""
    return max(1, len(text) // 4)


@dataclass(frozen=True)
class ChunkBudget:
    """Size limits in tokens of the active model."""

    max_tokens: int = 256
    min_tokens: int = 16
    count_tokens: Callable[[str], int] = field(default=approx_tokens)
    # Optional: counts of many texts at once (a real tokenizer's batch encode); every
    # line of a file is counted, so one call per file beats one per line.
    count_batch: Callable[[Sequence[str]], list[int]] | None = None
    # Optional: the model's tokens per character for this file's language, measured
    # once per index; lines are then charged by length with no tokenizer call.
    tokens_per_char: float | None = None
    overhead_tokens: float = 0.0  # special tokens added to every text ([CLS], [SEP])


MINIFIED_MEAN_LINE = 300
MINIFIED_MAX_LINE = 5_000
SIGNATURE_MAX_LINES = 6
SIGNATURE_MAX_CHARS = 200
_MAX_DEPTH = 60  # recursion guard for pathological nesting


def is_minified(text: str) -> bool:
    """True for minified or generated files whose lines are too long to chunk by line."""
    lines = text.split("\n")
    longest = max(map(len, lines))
    if longest <= MINIFIED_MAX_LINE and len(text) <= MINIFIED_MEAN_LINE * len(lines) // 2:
        return False  # fast path: even if half the lines were blank the mean would be fine
    lengths = [len(line) for line in lines if line.strip()]
    if not lengths:
        return False
    total = sum(lengths)
    if total / len(lengths) > MINIFIED_MEAN_LINE:
        return True
    if max(lengths) > MINIFIED_MAX_LINE:
        # One embedded data line in a normal file is not enough: it must dominate.
        return sum(n for n in lengths if n > 1_000) * 2 > total
    return False


def normalize_text(text: str) -> str:
    """The text chunk line numbers refer to: BOM removed, CRLF -> LF."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n") if "\r" in text else text


def chunk_file(
    path: str, text: str, language: str | None, budget: ChunkBudget | None = None
) -> list[Chunk]:
    """Chunks of one file, in line order. Never raises on bad input."""
    budget = budget or ChunkBudget()
    language = language or "text"
    try:
        text = normalize_text(text)
        if not text.strip() or _looks_minified(path, text):
            return []
        spec = spec_for(language)
        if spec is None:
            return window_chunks(path, text, language, budget)
        if spec.content_type == "docs":
            return _DocsChunker(path, text, spec, budget).run()
        if spec.name == "c" and path.endswith(".h") and _CPP_MARKERS.search(text):
            spec = spec_for("cpp") or spec  # C++ headers named .h
        return _CodeChunker(path, text, spec, budget).run()
    except Exception:  # noqa: BLE001 - the indexer must get chunks for any input
        try:
            return window_chunks(path, normalize_text(text), language, budget, overlap=0)
        except Exception:  # noqa: BLE001
            return []


# C and C++ that tree-sitter misreads, blanked out of the copy it parses (same bytes,
# same lines, so spans and names hold; chunk text comes from the file itself):
# - comments inside a multi-line #define: one makes the grammar swallow the
#   definitions after the macro into an ERROR (libyaml's scanner.c lost every function
#   after its READ_LINE macro);
# - an export macro between `class`/`struct` and the name (`class YAML_CPP_API Node {`),
#   which turns the class into a function and takes its namespace apart.
_MULTILINE_DEFINE = re.compile(rb"^[ \t]*#[ \t]*define\b[^\n]*\\\r?\n(?:[^\n]*\\\r?\n)*[^\n]*", re.M)
_C_COMMENT = re.compile(rb"/\*.*?\*/|//[^\n]*?(?=\\?\r?\n|$)", re.S)
_EXPORT_MACRO = re.compile(rb"\b(?:class|struct)\s+([A-Z][A-Z0-9_]{2,})\s+(?=[A-Za-z_]\w*\s*(?:final\s*)?[{:])")
_NOT_NEWLINE = re.compile(rb"[^\n]")


def _parse_view(source: bytes, language: str) -> bytes:
    if language not in ("c", "cpp"):
        return source
    view = bytearray(source)
    for define in _MULTILINE_DEFINE.finditer(source):
        for m in _C_COMMENT.finditer(source, define.start(), define.end()):
            view[m.start():m.end()] = _NOT_NEWLINE.sub(b" ", m.group())
    if language == "cpp":
        for m in _EXPORT_MACRO.finditer(source):
            view[m.start(1):m.end(1)] = b" " * (m.end(1) - m.start(1))
    return bytes(view)


def _looks_minified(path: str, text: str) -> bool:
    return ".min." in path.rsplit("/", 1)[-1] or (len(text) > 2_000 and is_minified(text))


_CPP_MARKERS = re.compile(r"^\s*(class\s+\w+[^;]*$|namespace\s+\w*\s*\{|template\s*<)", re.M)


def window_chunks(
    path: str,
    text: str,
    language: str,
    budget: ChunkBudget | None = None,
    overlap: int = 3,
) -> list[Chunk]:
    """Line windows of at most `budget.max_tokens`, overlapping by `overlap` lines."""
    budget = budget or ChunkBudget()
    lines = _split_lines(text)
    cost = _LineCosts(lines, budget)
    chunks: list[Chunk] = []
    start = 0
    n = len(lines)
    while start < n:
        end = start
        while end + 1 < n and cost(start, end + 1) <= budget.max_tokens:
            end += 1
        lo, hi = _trim(lines, start, end)
        if lo <= hi:
            chunks.append(_make(path, language, "", "window", lo, hi, lines))
        if end + 1 >= n:
            break
        start = max(end + 1 - overlap, start + 1)
    return chunks


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    return lines


def _trim(lines: Sequence[str], lo: int, hi: int) -> tuple[int, int]:
    """Shrink [lo, hi] past blank lines at both ends (lo > hi when all blank)."""
    while lo <= hi and not lines[lo].strip():
        lo += 1
    while hi >= lo and not lines[hi].strip():
        hi -= 1
    return lo, hi


def _make(
    path: str, language: str, symbol: str, kind: str, lo: int, hi: int, lines: Sequence[str],
    content_type: str = "code", context: str = "", symbols: tuple[str, ...] = (),
    members: Sequence[Member] = (),
) -> Chunk:
    """A chunk of lines lo..hi (0-based); `members` are 0-based too."""
    inner = tuple((s, k, a + 1, b + 1) for s, k, a, b in members if s != symbol)
    return Chunk(
        path, language, symbol, kind, lo + 1, hi + 1, "\n".join(lines[lo : hi + 1]),
        content_type, context, symbols, inner,
    )


CALIBRATION_CHARS = 4096


class _LineCosts:
    """Token cost of a line range in O(1) from per-line prefix sums.

    With the default estimator the sum is exact (characters / 4). With a real
    tokenizer each line is counted once and the per-call overhead (special
    tokens, measured on "") is added once per range, not per line.
    """

    def __init__(self, lines: Sequence[str], budget: ChunkBudget) -> None:
        count = budget.count_tokens
        if budget.tokens_per_char is not None:
            self.overhead = budget.overhead_tokens
            rate = budget.tokens_per_char
            per_line: list[float] = [(len(line) + 1) * rate for line in lines]
        elif budget.count_batch is not None:
            # The model's tokenizer run over the start of the file gives this file's
            # tokens per character; lines are charged by length at that rate.
            # Tokenizing every line on its own was 5x slower than all of chunking.
            sample = "\n".join(lines)[:CALIBRATION_CHARS]
            empty, counted = budget.count_batch(["", sample])
            self.overhead = float(empty)
            rate = max(0.0, counted - empty) / max(1, len(sample))
            per_line = [(len(line) + 1) * rate for line in lines]
        elif count is approx_tokens:
            self.overhead = 0.0
            per_line = [(len(line) + 1) / 4 for line in lines]
        else:
            self.overhead = float(count(""))
            per_line = [max(0.0, count(line + "\n") - self.overhead) for line in lines]
        self.prefix = [0.0, *accumulate(per_line)]

    def __call__(self, lo: int, hi: int) -> float:
        return self.overhead + self.prefix[hi + 1] - self.prefix[lo]


# --- tree-sitter ---------------------------------------------------------------------

_local = threading.local()  # tree-sitter parsers are not thread-safe: one set per thread


def get_cached_parser(grammar: str):  # noqa: ANN201 - tree_sitter.Parser, imported lazily
    """The parser of a grammar, created once per thread and process."""
    parsers: dict = _local.__dict__.setdefault("parsers", {})
    parser = parsers.get(grammar)
    if parser is None:
        from tree_sitter_language_pack import get_parser

        parser = parsers[grammar] = get_parser(grammar)  # type: ignore[arg-type]
    return parser


def _rows(node) -> tuple[int, int]:  # noqa: ANN001
    """First and last 0-based line of a node (a node ending at column 0 ends on the line before)."""
    start = node.start_point[0]
    end_row, end_col = node.end_point
    if end_col == 0 and end_row > start:
        end_row -= 1
    return start, end_row


def _resolve(node, path: Sequence[str]):  # noqa: ANN001, ANN202
    """Follow a table path (see codesearch.source.languages) from a node; None when it breaks."""
    for step in path:
        if node is None:
            return None
        if step.startswith("@"):
            types = step[1:].split("|")
            node = next((c for c in node.named_children if c.type in types), None)
        elif step.startswith("*"):
            name = step[1:]
            nxt = node.child_by_field_name(name)
            if nxt is None:
                return None
            while nxt is not None:
                node, nxt = nxt, nxt.child_by_field_name(name)
        else:
            node = node.child_by_field_name(step)
    return node


_WS = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z_][\w.]*[?!]?")


def _clean_name(raw: str, how: str) -> str:
    name = _WS.sub(" ", raw).strip()
    if how == "strip_generics":
        name = _strip_generics(name)
    elif how == "receiver":  # Go: "(r *pkg.Recv[T])" -> "Recv"
        parts = name.strip("()").replace(",", " ").split()
        name = _strip_generics(parts[-1].lstrip("*&")) if parts else ""
        name = name.rsplit(".", 1)[-1]
    elif how == "first_word":
        m = _WORD.search(name)
        name = m.group(0) if m else ""
    elif how == "unquote":
        name = name.strip("'\"`")
    return name


def _strip_generics(name: str) -> str:
    for i, ch in enumerate(name):
        if ch in "<[" and i > 0:
            return name[:i].strip()
    return name


@dataclass
class _Unit:
    """A definition found in a scope: its line range and how to split it."""

    start: int  # 0-based, attached comments/decorators included
    end: int
    kind: str
    symbol: str
    node: object  # the definition node
    outer: object  # the node spanning the definition (the wrapper, when wrapped)
    rule: Def | None
    symbols: list[str]
    parent: str  # the qualified name its symbol was built on
    nodes: list  # outer nodes of every definition merged into this unit
    merged: bool = False  # two definitions sharing lines: no longer one node


@dataclass
class _Piece:
    """A chunk before the tiny-neighbour merge."""

    lo: int
    hi: int
    kind: str
    symbol: str
    context: str
    scope: str  # "/Outer{/Inner{": where the piece sits; see _compatible
    weight: int  # which piece names a merged chunk: header 2, definition 1, other code 0
    symbols: list[str]
    members: list[Member] = field(default_factory=list)  # definitions inside, 0-based lines


class _CodeChunker:
    def __init__(self, path: str, text: str, spec: LanguageSpec, budget: ChunkBudget) -> None:
        self.path = path
        self.spec = spec
        self.budget = budget
        self.max = budget.max_tokens
        self.lines = _split_lines(text)
        self.source = text.encode("utf-8", "surrogatepass")
        self.cost = _LineCosts(self.lines, budget)
        self.pieces: list[_Piece] = []
        self._part_ids = 0

    # -- driver
    def run(self) -> list[Chunk]:
        assert self.spec.grammar is not None
        tree = get_cached_parser(self.spec.grammar).parse(_parse_view(self.source, self.spec.name))
        root = tree.root_node
        units = self._scan(root, "", "", 0)
        self._emit_scope(root.named_children, units, 0, len(self.lines) - 1, "module", "", "", "", "", False)
        return [
            _make(self.path, self.spec.name, p.symbol, p.kind, p.lo, p.hi, self.lines,
                  "code", p.context, tuple(p.symbols), p.members)
            for p in _merge_tiny(self.pieces, self.cost, self.budget)
        ]

    # -- finding definitions
    def _scan(self, block, scope: str, parent_kind: str, depth: int) -> list[_Unit]:  # noqa: ANN001
        spec = self.spec
        units: list[_Unit] = []
        run_start = -1  # first line of the attached comments/decorators right above
        run_end = -2
        prev_end = -1  # last line of the previous sibling
        for child in block.named_children:
            ctype = child.type
            srow, erow = _rows(child)
            # ERROR: a syntax error swallowed these definitions; still find them
            if (ctype in spec.transparent or ctype == "ERROR") and depth < _MAX_DEPTH:
                units.extend(self._scan(child, scope, parent_kind, depth + 1))
                run_start, prev_end = -1, erow
                continue
            if ctype in spec.attached and not _text(child).startswith(spec.detached):
                if run_start >= 0 and srow <= run_end + 1:
                    run_end = max(run_end, erow)
                elif srow > prev_end:  # not a trailing comment on the previous line
                    run_start, run_end = srow, erow
                else:
                    run_start = -1
                prev_end = max(prev_end, erow)
                continue
            found = self._match(child, depth)
            if found is not None:
                node, rule, name = found
                start = run_start if run_start >= 0 and srow <= run_end + 1 else srow
                units.append(self._unit(child, node, rule, name, start, erow, scope, parent_kind))
            run_start, prev_end = -1, erow
        return _merge_overlaps(units)

    def _match(self, node, depth: int):  # noqa: ANN001, ANN202
        rules = self.spec.definitions.get(node.type)
        if rules:
            for rule in rules:
                name = self._name(node, rule)
                if name:
                    return node, rule, name
        if node.type in self.spec.wrappers and depth < _MAX_DEPTH:
            for child in node.named_children:
                found = self._match(child, depth + 1)
                if found is not None:
                    return found
        return None

    def _name(self, node, rule: Def) -> str | None:  # noqa: ANN001
        if rule.requires:
            req = _resolve(node, rule.requires)
            if req is None:
                return None
            if rule.requires_types and req.type not in rule.requires_types:
                return None
            if rule.requires_text and _text(req) not in rule.requires_text:
                return None
        for path in (rule.name, rule.name_alt):
            if not path:
                continue
            if path[0].startswith("="):
                return path[0][1:]
            target = _resolve(node, path)
            if target is not None:
                name = _clean_name(_text(target), rule.clean)
                if name:
                    return name
        return None

    def _unit(
        self, outer, node, rule: Def, name: str, start: int, end: int, scope: str, parent_kind: str  # noqa: ANN001
    ) -> _Unit:
        kind = rule.kind
        if rule.kind_by is not None:
            kind = _refine_kind(node, rule.kind_by, kind)
        if kind == "function" and parent_kind in CONTAINER_KINDS_WITH_METHODS:
            kind = "method"
        if rule.qualifier:
            qual = _resolve(node, rule.qualifier)
            if qual is not None and (q := _clean_name(_text(qual), "receiver")):
                name = f"{q}.{name}"
        symbol = f"{scope}{self.spec.separator}{name}" if scope else name
        return _Unit(start, max(end, _rows(outer)[1]), kind, symbol, node, outer, rule, [symbol], scope, [outer])

    # -- emitting pieces
    def _emit_scope(
        self, kids: list, units: list[_Unit], lo: int, hi: int,
        gap_kind: str, gap_symbol: str, ctx_header: str, ctx: str, scope: str, header: bool,
    ) -> None:
        """Cover lines lo..hi: definitions as units, everything between as gap pieces."""
        pos = lo
        for unit in units:
            if unit.start > pos:
                first = header and pos == lo
                self._gap(kids, pos, unit.start - 1, gap_kind, gap_symbol,
                          ctx_header if first else ctx, ctx, scope, 2 if first else 0)
            self._emit_unit(unit, ctx, scope)
            pos = max(pos, unit.end + 1)
        if pos <= hi:
            first = header and pos == lo
            self._gap(kids, pos, hi, gap_kind, gap_symbol, ctx_header if first else ctx, ctx,
                      scope, 2 if first else 0)

    def _gap(
        self, kids: list, lo: int, hi: int, kind: str, symbol: str,
        ctx_first: str, ctx_rest: str, scope: str, weight: int,
    ) -> None:
        lo, hi = _trim(self.lines, lo, hi)
        if lo > hi:
            return
        parts = [(lo, hi)] if self.cost(lo, hi) <= self.max else self._pack(self._segments(kids, lo, hi, 0))
        for i, (a, b) in enumerate(parts):
            self.pieces.append(_Piece(a, b, kind, symbol, ctx_first if i == 0 else ctx_rest,
                                      scope, weight, [symbol] if weight and symbol else []))

    def _emit_unit(self, unit: _Unit, ctx: str, scope: str) -> None:
        lo, hi = _trim(self.lines, unit.start, unit.end)
        if self.cost(lo, hi) <= self.max:
            members = [(unit.symbol, unit.kind, lo, hi), *self._members(unit)]
            self.pieces.append(_Piece(lo, hi, unit.kind, unit.symbol, ctx, scope, 1, unit.symbols,
                                      members))
            return
        rule = unit.rule
        if not unit.merged and rule is not None and rule.container:
            body = _resolve(unit.node, rule.body)
            if body is not None:
                inner_scope = unit.symbol if rule.qualifies else unit.parent
                members = self._scan(body, inner_scope, unit.kind, 0)
                if members:
                    sig = self._signature(unit.node, body)
                    inner_ctx = _join(ctx, sig)
                    self._emit_scope(body.named_children, members, lo, hi, unit.kind, unit.symbol,
                                     ctx, inner_ctx, f"{scope}/{unit.symbol}{{", True)
                    return
        # A large function (or a container without members): cut at statements.
        sig = self._signature(unit.node, _resolve(unit.node, rule.body) if rule else None)
        self._part_ids += 1
        part_scope = f"{scope}/{unit.symbol}#{self._part_ids}"
        nodes = unit.nodes
        for i, (a, b) in enumerate(self._pack(self._segments(nodes, lo, hi, 0))):
            self.pieces.append(_Piece(a, b, unit.kind, unit.symbol, ctx if i == 0 else _join(ctx, sig),
                                      part_scope, 1, unit.symbols if i == 0 else [unit.symbol]))

    def _members(self, unit: _Unit) -> list[Member]:
        """Every definition nested in a container stored whole (0-based lines)."""
        rule = unit.rule
        if unit.merged or rule is None or not rule.container:
            return []
        body = _resolve(unit.node, rule.body)
        if body is None:
            return []
        out: list[Member] = []
        for member in self._scan(body, unit.symbol if rule.qualifies else unit.parent, unit.kind, 0):
            lo, hi = _trim(self.lines, member.start, member.end)
            out.append((member.symbol, member.kind, lo, hi))
            out.extend(self._members(member))
        return out

    def _signature(self, node, body) -> str:  # noqa: ANN001
        """The declaration lines of a definition (up to where its body starts)."""
        start = node.start_point[0]
        end = start
        if body is not None:
            brow, bcol = body.start_point
            line = self.lines[brow] if brow < len(self.lines) else ""
            starts_line = not line[:bcol].strip()
            end = max(start, brow - 1 if starts_line and brow > start else brow)
        end = min(end, start + SIGNATURE_MAX_LINES - 1, len(self.lines) - 1)
        # One line per level keeps the context short for the model's input.
        sig = " ".join(line.strip() for line in self.lines[start : end + 1] if line.strip())
        sig = sig.replace("( ", "(").replace(" )", ")")
        if len(sig) > SIGNATURE_MAX_CHARS:
            sig = sig[:SIGNATURE_MAX_CHARS].rsplit(" ", 1)[0]
        return sig

    def _segments(self, kids: Sequence, lo: int, hi: int, depth: int) -> list[tuple[int, int]]:
        """Cut lo..hi where syntax nodes start, going deeper only where a piece is too big."""
        spans = [(k, *_rows(k)) for k in kids]
        spans = [sp for sp in spans if sp[2] >= lo and sp[1] <= hi]
        cuts = sorted({s for _, s, _ in spans if lo < s <= hi})
        bounds = [lo, *cuts, hi + 1]
        out: list[tuple[int, int]] = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            b -= 1
            if a == b or self.cost(a, b) <= self.max:
                out.append((a, b))
                continue
            best, best_overlap = None, 0
            for k, s, e in spans:
                overlap = min(e, b) - max(s, a)
                if overlap > best_overlap and k.named_child_count:
                    best, best_overlap = k, overlap
            if best is not None and depth < _MAX_DEPTH:
                sub = self._segments(best.named_children, a, b, depth + 1)
                if len(sub) > 1:
                    out.extend(sub)
                    continue
            out.extend((r, r) for r in range(a, b + 1))
        return out

    def _pack(self, segments: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Greedily join consecutive segments up to the budget; drop blank edges."""
        groups: list[list[tuple[int, int]]] = []
        for seg in segments:
            if groups and self.cost(groups[-1][0][0], seg[1]) <= self.max:
                groups[-1].append(seg)
            else:
                groups.append([seg])
        # Greedy packing can leave a one-line tail ("return x" + "}"): move
        # segments from the part before until the tail reaches the floor.
        floor = self.budget.min_tokens
        while len(groups) >= 2 and len(groups[-2]) >= 2:
            last, prev = groups[-1], groups[-2]
            if self.cost(last[0][0], last[-1][1]) >= floor:
                break
            moved = prev[-1]
            if self.cost(moved[0], last[-1][1]) > self.max:
                break
            last.insert(0, prev.pop())
        trimmed = [_trim(self.lines, g[0][0], g[-1][1]) for g in groups]
        return [(a, b) for a, b in trimmed if a <= b]


def _text(node) -> str:  # noqa: ANN001
    raw = node.text
    return raw.decode("utf-8", "replace") if raw is not None else ""


def _join(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


def _refine_kind(node, kind_by, default: str) -> str:  # noqa: ANN001
    path, mapping = kind_by
    target = _resolve(node, path) if path else node
    if target is None:
        return default
    if target.type in mapping:
        return mapping[target.type]
    for child in target.children:
        if child.type in mapping:
            return mapping[child.type]
    m = _WORD.match(_text(target)[:40])
    return mapping.get(m.group(0), default) if m else default


# Haskell equations and Elixir clauses of one function are separate nodes.
_CLAUSE_KINDS = frozenset({"function", "method", "macro"})


def _merge_overlaps(units: list[_Unit]) -> list[_Unit]:
    """Definitions sharing a line become one unit; adjacent equations of one name too."""
    if len(units) < 2:
        return units
    units.sort(key=lambda u: u.start)
    out = [units[0]]
    for u in units[1:]:
        prev = out[-1]
        same_name = (
            u.symbol == prev.symbol and u.kind == prev.kind and u.kind in _CLAUSE_KINDS
            and u.start <= prev.end + 2
        )
        if u.start <= prev.end or same_name:
            prev.end = max(prev.end, u.end)
            prev.merged = True
            prev.symbols.extend(s for s in u.symbols if s not in prev.symbols)
            prev.nodes.extend(u.nodes)
        else:
            out.append(u)
    return out


def _merge_tiny(pieces: list[_Piece], cost: _LineCosts, budget: ChunkBudget) -> list[_Piece]:
    """Merge pieces under min_tokens into neighbours of the same scope, never past max_tokens."""
    floor, cap = budget.min_tokens, budget.max_tokens
    if len(pieces) < 2 or floor <= 0:
        return pieces
    # 1: runs of tiny pieces join each other first (getters with getters).
    runs: list[_Piece] = []
    for p in pieces:
        prev = runs[-1] if runs else None
        if (
            prev is not None and _compatible(prev, p)
            and cost(prev.lo, prev.hi) < floor and cost(p.lo, p.hi) < floor
            and cost(prev.lo, p.hi) <= cap
        ):
            runs[-1] = _combine(prev, p, cost)
        else:
            runs.append(p)
    # 2: a piece still tiny joins its smaller same-scope neighbour.
    out: list[_Piece] = []
    i = 0
    while i < len(runs):
        p = runs[i]
        if cost(p.lo, p.hi) < floor:
            prev = out[-1] if out and _compatible(out[-1], p) else None
            nxt = runs[i + 1] if i + 1 < len(runs) and _compatible(p, runs[i + 1]) else None
            prev_ok = prev is not None and cost(prev.lo, p.hi) <= cap
            next_ok = nxt is not None and cost(p.lo, nxt.hi) <= cap
            if prev_ok and next_ok:
                assert prev is not None and nxt is not None
                use_prev = cost(prev.lo, prev.hi) <= cost(nxt.lo, nxt.hi)
            else:
                use_prev = prev_ok
            if use_prev and prev is not None:
                out[-1] = _combine(prev, p, cost)
                i += 1
                continue
            if next_ok and nxt is not None:
                runs[i + 1] = _combine(p, nxt, cost)
                i += 1
                continue
        out.append(p)
        i += 1
    return out


def _combine(a: _Piece, b: _Piece, cost: _LineCosts) -> _Piece:
    """One piece for a followed by b; the heavier definition names it."""
    lead = a if (a.weight, cost(a.lo, a.hi)) >= (b.weight, cost(b.lo, b.hi)) else b
    symbols = a.symbols + [s for s in b.symbols if s not in a.symbols]
    scope = a.scope if len(a.scope) >= len(b.scope) else b.scope
    return _Piece(a.lo, b.hi, lead.kind, lead.symbol, lead.context, scope, max(a.weight, b.weight),
                  symbols, a.members + b.members)


def _compatible(a: _Piece, b: _Piece) -> bool:
    """Whether a and the piece b right after it may merge.

    Definitions merge only with siblings (same scope). Plain code (weight 0) may
    also join a deeper neighbour: an outer container's closing `end` the method
    before it, imports the class header after them. Top-level code after a
    class never joins its last method.
    """
    if a.scope == b.scope:
        return True
    return (b.weight == 0 and b.scope != "" and a.scope.startswith(b.scope)) or (
        a.weight == 0 and b.scope.startswith(a.scope)
    )


# --- Markdown / reStructuredText ---------------------------------------------------

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RST_ADORN = re.compile(r"^([=\-~^\"'`*+#:._<>!$%&(),/;?@\[\\\]{|}])\1{1,}\s*$")


class _DocsChunker:
    def __init__(self, path: str, text: str, spec: LanguageSpec, budget: ChunkBudget) -> None:
        self.path = path
        self.spec = spec
        self.budget = budget
        self.lines = _split_lines(text)
        self.cost = _LineCosts(self.lines, budget)

    def run(self) -> list[Chunk]:
        heads = self._rst_headings() if self.spec.name == "rst" else self._md_headings()
        pieces: list[_Piece] = []
        trail: list[tuple[int, str]] = []  # (level, title) of the enclosing headings
        bounds = [*heads, (len(self.lines), 0, "")]
        if not heads or heads[0][0] > 0:
            bounds.insert(0, (0, 0, ""))  # text before the first heading
        for (start, level, title), (nxt, _, _) in zip(bounds, bounds[1:], strict=False):
            if level:
                while trail and trail[-1][0] >= level:
                    trail.pop()
                trail.append((level, title))
            symbol = " > ".join(t for _, t in trail) if level else ""
            self._section(start, nxt - 1, symbol, pieces)
        merged = _merge_tiny(pieces, self.cost, self.budget)
        return [
            _make(self.path, self.spec.name, p.symbol, "section", p.lo, p.hi, self.lines, "docs",
                  p.context, tuple(p.symbols))
            for p in merged
        ]

    def _section(self, lo: int, hi: int, symbol: str, pieces: list[_Piece]) -> None:
        lo, hi = _trim(self.lines, lo, hi)
        if lo > hi:
            return
        if self.cost(lo, hi) <= self.budget.max_tokens:
            pieces.append(_Piece(lo, hi, "section", symbol, "", "", 1, [symbol] if symbol else []))
            return
        # Cut at paragraph starts (a non-blank line after a blank one), never inside a fence.
        segs: list[tuple[int, int]] = []
        seg_lo, fenced = lo, False
        for r in range(lo, hi + 1):
            line = self.lines[r]
            if _FENCE.match(line):
                fenced = not fenced
            if r > seg_lo and not fenced and line.strip() and not self.lines[r - 1].strip():
                segs.append((seg_lo, r - 1))
                seg_lo = r
        segs.append((seg_lo, hi))
        parts: list[tuple[int, int]] = []
        for a, b in segs:
            if parts and self.cost(parts[-1][0], b) <= self.budget.max_tokens:
                parts[-1] = (parts[-1][0], b)
            elif self.cost(a, b) <= self.budget.max_tokens:
                parts.append((a, b))
            else:  # one paragraph over budget: line windows
                parts.extend(self._lines_by_budget(a, b))
        for i, (a, b) in enumerate(parts):
            a, b = _trim(self.lines, a, b)
            if a <= b:
                pieces.append(_Piece(a, b, "section", symbol, symbol if i else "", f"{symbol}#{lo}", 1,
                                     [symbol] if symbol and not i else []))

    def _lines_by_budget(self, a: int, b: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        start = a
        for r in range(a, b + 1):
            if r > start and self.cost(start, r) > self.budget.max_tokens:
                out.append((start, r - 1))
                start = r
        out.append((start, b))
        return out

    def _md_headings(self) -> list[tuple[int, int, str]]:
        heads: list[tuple[int, int, str]] = []
        fenced = False
        prev_para = False  # the previous line is paragraph text (for setext underlines)
        for r, line in enumerate(self.lines):
            if _FENCE.match(line):
                fenced = not fenced
                prev_para = False
                continue
            if fenced:
                continue
            m = _ATX.match(line)
            if m:
                heads.append((r, len(m.group(1)), (m.group(2) or "").strip()))
                prev_para = False
                continue
            s = _SETEXT.match(line)
            if s and prev_para and r > 0 and (not heads or heads[-1][0] != r - 1):
                heads.append((r - 1, 1 if s.group(1)[0] == "=" else 2, self.lines[r - 1].strip()))
                prev_para = False
                continue
            prev_para = bool(line.strip()) and not line.startswith(("    ", "\t", ">", "- ", "* ", "|"))
        return heads

    def _rst_headings(self) -> list[tuple[int, int, str]]:
        heads: list[tuple[int, int, str]] = []
        styles: list[tuple[str, bool]] = []  # adornment styles in order of first use = levels
        lines = self.lines
        r = 0
        while r < len(lines) - 1:
            title, under = lines[r], lines[r + 1]
            over = r > 0 and bool(_RST_ADORN.match(lines[r - 1]))
            m = _RST_ADORN.match(under)
            if m and title.strip() and not _RST_ADORN.match(title) and len(under.rstrip()) >= len(title.strip()) \
                    and not title.startswith(" " * 4):
                style = (m.group(1), over and lines[r - 1].strip()[0] == m.group(1))
                if style not in styles:
                    styles.append(style)
                start = r - 1 if style[1] else r
                heads.append((start, styles.index(style) + 1, title.strip()))
                r += 2
                continue
            r += 1
        return heads
