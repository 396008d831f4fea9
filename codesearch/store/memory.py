"""A first build's rows, searchable in memory before they are written (issue 18).

A query that waits for a first build was answered once LanceDB had been imported and
every row written: 0.5 s of CPU taken from the chunking workers on two cores, and the
answer came 0.6-0.8 s after the last file was chunked. Held here instead, the rows
answer at once, with the scores LanceDB gives once they are written: its BM25
(lance-index `scorer.rs`: k1 1.2, b 0.75, idf ln(1 + (N - n + 0.5) / (n + 0.5)), where N
and the average length count the rows whose field holds any term), each query term
counted as often as it is given, fields weighted and summed, ties in row order. LanceDB
adds in 32-bit floats, so a score may differ from its own in the seventh digit.
Only the standard library: no LanceDB, no pyarrow, no numpy.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from typing import Any

from codesearch.store.tables import LEXICAL_COLUMNS, PackedColumns, weighted_terms

K1 = 1.2
B = 0.75
_ROW_END = b"\n"  # between rows in a field's buffer; terms hold neither it nor spaces


class _Field:
    """One lexical column as one buffer: rows of space-separated terms, a newline apart.
    A term is searched for in the whole buffer at once (a few ms for 8 MB)."""

    def __init__(self, rows: list[bytes]):
        self.buffer = _ROW_END.join(rows)
        self.starts: list[int] = []
        position = 0
        for row in rows:
            self.starts.append(position)
            position += len(row) + 1
        # Terms are joined by single spaces (core.tokens), so a row's length is its spaces + 1.
        self.lengths = [row.count(b" ") + 1 if row else 0 for row in rows]
        self.rows = sum(1 for n in self.lengths if n)  # rows with no term are not in the index
        self.average = sum(self.lengths) / self.rows if self.rows else 1.0

    def add_scores(self, term: str, weight: float, scores: dict[int, float]) -> None:
        key = term.encode("utf-8")
        buffer, starts = self.buffer, self.starts
        counts: dict[int, int] = {}
        for match in re.finditer(re.escape(key) + rb"(?![^ \n])", buffer):
            at = match.start()
            if at and buffer[at - 1] not in b" \n":
                continue  # the end of a longer term
            row = bisect.bisect_right(starts, at) - 1
            counts[row] = counts.get(row, 0) + 1
        if not counts:
            return
        n = len(counts)
        idf = math.log((self.rows - n + 0.5) / (n + 0.5) + 1.0)
        for row, tf in counts.items():
            norm = K1 * (1.0 - B + B * self.lengths[row] / self.average)
            scores[row] = scores.get(row, 0.0) + weight * idf * (K1 + 1.0) * tf / (tf + norm)


class MemoryRows:
    """The rows of `parts`, in the order a first build writes them, answering what a
    Searcher asks of an IndexStore for a full-text search (no vectors yet)."""

    vectors = None

    def __init__(self, parts: Sequence[PackedColumns]):
        self.parts = [part for part in parts if part.rows]
        self._ends: list[int] = []  # each part's end, in rows
        for part in self.parts:
            self._ends.append((self._ends[-1] if self._ends else 0) + part.rows)
        self._columns: dict[str, list[Any]] = {}
        self._fields: dict[str, _Field] = {}

    def _column(self, name: str) -> list[Any]:
        if name not in self._columns:
            self._columns[name] = [v for part in self.parts for v in part.column(name)]
        return self._columns[name]

    def table_version(self) -> int:
        return -1  # not a table's: a catalog read from written rows never matches it

    def catalog_columns(self, names: Sequence[str]) -> dict[str, list[Any]]:
        have = set(self.parts[0].texts) | set(self.parts[0].numbers) if self.parts else set(names)
        return {name: self._column(name) for name in names if name in have}

    def count_chunks(self) -> int:
        return self._ends[-1] if self._ends else 0

    def interim_vectors(self) -> None:
        return None

    def texts_at(self, positions: Sequence[int], ids: Sequence[str]) -> dict[str, str]:
        texts = {}
        for position, chunk_id in zip(positions, ids, strict=True):
            part = bisect.bisect_right(self._ends, position)
            first = self._ends[part - 1] if part else 0
            texts[chunk_id] = self.parts[part].encoded("text", [position - first])[0].decode("utf-8")
        return texts

    def full_text(self, terms: str, boosts: tuple[float, float, float], limit: int,
                  other_terms: str = "", other_weight: float = 0.0) -> list[tuple[str, float]]:
        """IndexStore.full_text's answer, computed here (see the module's notes)."""
        scores: dict[int, float] = {}
        for text, weight in weighted_terms(terms, other_terms, other_weight):
            for column, boost in zip(LEXICAL_COLUMNS, boosts, strict=True):
                field = self._field(column)
                for term in text.split():
                    field.add_scores(term, boost * weight, scores)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        ids = self._column("id")
        return [(ids[row], score) for row, score in ranked]

    def _field(self, column: str) -> _Field:
        if column not in self._fields:
            self._fields[column] = _Field([v for part in self.parts for v in part.encoded(column)])
        return self._fields[column]
