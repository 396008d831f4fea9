"""Source files -> chunk rows for the store, in this process or in a pool of processes.

Chunking (tree-sitter parse, walk, token budget, identifier-split lexical
columns) is pure CPU and per file, and it is most of the time before a new
index is queryable: 1,000 Python files take about 5 s in one process here.
A pool of worker processes splits that over the cores while the parent
imports LanceDB and writes what is ready. Workers are spawned (not forked):
the parent may already run LanceDB's threads, and a fresh interpreter with
only this module's imports starts in about 0.25 s.

This module imports neither numpy nor LanceDB, so workers start fast.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codesearch.core.tokens import lexical_text, path_terms, symbol_words, terms_text
from codesearch.embed.base import REFERENCE_CODE
from codesearch.source.chunk import Chunk, ChunkBudget, chunk_file
from codesearch.source.comments import code_line_count
from codesearch.source.discover import SourceFile, read_text
from codesearch.store.tables import ChunkRow, FileState, PackedColumns

# Below this many files a pool costs more (process start, imports) than it saves.
POOL_MIN_FILES = 48
FILES_PER_TASK = 16
# Tasks in flight: enough for the workers to keep chunking while a first build's
# parent imports LanceDB (about 1 s; with 4 a worker both workers sat idle 0.2 s of it),
# and still a bounded window (512 files of rows) however big the repository.
TASKS_AHEAD_PER_WORKER = 16


def file_hash(data: str) -> str:
    return hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def content_hash(chunk: Chunk) -> str:
    """Key of the embedding cache: what the vector depends on, minus the path.

    Leaving the path out means a moved or copied definition is never embedded
    twice; its vector keeps the path words of its first location, a small cost.
    """
    blob = "\x1f".join((chunk.kind, chunk.symbol, chunk.context, chunk.text))
    return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def chunk_rows(chunks: Sequence[Chunk], fhash: str) -> list[ChunkRow]:
    rows = []
    for c in chunks:
        chash = content_hash(c)
        row_id = hashlib.blake2b(
            f"{c.path}\x1f{c.start_line}\x1f{c.end_line}\x1f{chash}".encode("utf-8", "surrogatepass"),
            digest_size=12,
        ).hexdigest()
        rows.append(
            ChunkRow(
                id=row_id, path=c.path, language=c.language, symbol=c.symbol, kind=c.kind,
                start_line=c.start_line, end_line=c.end_line, text=c.text, context=c.context,
                content_type=c.content_type, content_hash=chash, file_hash=fhash,
                lex_symbol=terms_text((symbol_words(c.symbol), c.kind)),
                lex_path=path_terms(c.path),
                lex_body=lexical_text(f"{c.context}\n{c.text}" if c.context else c.text),
                members=json.dumps([list(m) for m in c.members]) if c.members else "",
                code_lines=code_line_count(c.text, c.language),
            )
        )
    return rows


@dataclass(frozen=True)
class BudgetSpec:
    """A picklable recipe for a ChunkBudget (a budget holds a tokenizer and closures)."""

    max_tokens: int
    tokenizer_file: str | None = None  # the model's tokenizer.json; None: ~4 chars a token
    # The model's tokens per character on REFERENCE_CODE (`tokenizer_rate`); 0: count
    # each file's own sample instead (slower, see `make_budget`).
    tokens_per_char: float = 0.0
    overhead: float = 0.0  # tokens the tokenizer adds to any text ([CLS], [SEP])




def tokenizer_rate(spec: BudgetSpec) -> BudgetSpec:
    """The spec with its tokenizer's tokens per character (unchanged without a tokenizer)."""
    tokenizer = _tokenizer(spec.tokenizer_file)
    if tokenizer is None:
        return spec
    overhead = len(tokenizer.encode("").ids)
    tokens = len(tokenizer.encode(REFERENCE_CODE).ids) - overhead
    rate = round(tokens / len(REFERENCE_CODE), 5)
    return BudgetSpec(spec.max_tokens, spec.tokenizer_file, rate, float(overhead))


_budgets: dict[BudgetSpec, ChunkBudget] = {}


def make_budget(spec: BudgetSpec) -> ChunkBudget:
    """The budget of a spec, built once per process."""
    budget = _budgets.get(spec)
    if budget is None:
        budget = _budgets[spec] = _build_budget(spec)
    return budget


@functools.lru_cache(maxsize=4)
def _tokenizer(path: str | None) -> Any:
    if path is None:
        return None
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(path)
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    except Exception:  # noqa: BLE001 (an unreadable tokenizer only costs precision)
        return None


def _build_budget(spec: BudgetSpec) -> ChunkBudget:
    if spec.tokens_per_char:
        # Lines are charged at the fixed rate; the tokenizer is loaded only if something
        # asks for an exact count (workers never do: 0.1 s saved at each start).
        def count_lazily(texts: Sequence[str]) -> list[int]:
            return [len(e.ids) for e in _tokenizer(spec.tokenizer_file).encode_batch(list(texts))]

        return ChunkBudget(max_tokens=spec.max_tokens,
                           count_tokens=lambda t: count_lazily([t])[0], count_batch=count_lazily,
                           tokens_per_char=spec.tokens_per_char, overhead_tokens=spec.overhead)
    tokenizer = _tokenizer(spec.tokenizer_file)
    if tokenizer is None:
        return ChunkBudget(max_tokens=spec.max_tokens)

    def count_batch(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tokenizer.encode_batch(list(texts))]

    return ChunkBudget(max_tokens=spec.max_tokens, count_tokens=lambda t: count_batch([t])[0],
                       count_batch=count_batch)


@dataclass(frozen=True)
class ChunkJob:
    source: SourceFile
    previous: FileState | None = None  # the file as indexed now; None: new or re-chunked


@dataclass
class ChunkedFile:
    """What one file became. With a state but not `changed`: only its size/mtime moved."""

    state: FileState | None  # None: unreadable
    decode_error: bool = False
    changed: bool = False


@dataclass
class ChunkedBatch:
    """Files in job order, and the rows of the changed ones, packed column by column
    (`PackedColumns`: the parent's Arrow conversion is the worker's job)."""

    files: list[ChunkedFile] = field(default_factory=list)
    columns: PackedColumns = field(default_factory=lambda: PackedColumns.pack(()))


def chunk_job(job: ChunkJob, spec: BudgetSpec) -> tuple[ChunkedFile, list[ChunkRow]]:
    source, previous = job.source, job.previous
    try:
        text, had_errors = read_text(source)
    except OSError:
        return ChunkedFile(state=None), []
    fhash = file_hash(text)
    if previous is not None and previous.file_hash == fhash:
        # Touched but not changed: refresh size/mtime only (rows stay as they are).
        state = FileState(source.path, source.size, source.mtime_ns, fhash,
                          previous.language, previous.chunks, had_errors)
        return ChunkedFile(state=state, decode_error=had_errors), []
    budget = make_budget(spec)
    rows = chunk_rows(chunk_file(source.path, text, source.language, budget), fhash)
    state = FileState(source.path, source.size, source.mtime_ns, fhash,
                      source.language or "text", len(rows), had_errors)
    return ChunkedFile(state=state, decode_error=had_errors, changed=True), rows


def chunk_batch(jobs: Sequence[ChunkJob], spec: BudgetSpec) -> ChunkedBatch:
    files: list[ChunkedFile] = []
    rows: list[ChunkRow] = []
    for job in jobs:
        item, item_rows = chunk_job(job, spec)
        files.append(item)
        rows.extend(item_rows)
    return ChunkedBatch(files, PackedColumns.pack(rows))


def _init_worker(parent: int, parent_is_main_thread: bool = False) -> None:
    # Ctrl-C goes to the whole process group: the parent decides what happens,
    # workers just stop when it shuts the pool down (no tracebacks from them).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent, parent_is_main_thread)


# A worker blocks on a queue whose write end it holds itself, so a parent killed with
# SIGKILL leaves it waiting forever (and the resource tracker with it). Linux kills it
# with its parent; elsewhere a thread notices the parent is gone within a second.
_PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 1.0


def die_with_parent(parent: int, parent_is_main_thread: bool) -> None:
    """End this process when `parent` ends.

    The kernel's parent-death signal fires when the *thread* that started the child ends,
    so it is only asked for when that was the parent's main thread; the watching thread
    covers every case, a second later.
    """
    import threading

    if parent_is_main_thread and sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="codesearch-parent-watch", daemon=True).start()


def _spawn_executor(workers: int, fork: bool = False) -> Executor:
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    # The workers are started below, on this thread (spawned: one per submitted task;
    # forked: all at the first, before the pool starts its own thread).
    on_main = threading.current_thread() is threading.main_thread()
    executor = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                   initargs=(os.getpid(), on_main),
                                   mp_context=multiprocessing.get_context("fork" if fork else "spawn"))
    with contextlib.nullcontext() if fork else _main_module_hidden():
        for _ in range(workers):
            executor.submit(os.getpid)
    return executor


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start spawned workers that run this module only, not the caller's script.

    A spawned child first imports the parent's `__main__` (its file or module). A
    script that indexes at its top level, as docs/python-api.md shows, without an
    `if __name__ == "__main__":` guard, would then index again in every worker and
    wait on the index lock its parent holds, for ever. Workers need nothing from
    `__main__` (tasks and initializer are this module's), so while they start it is
    an empty module.
    """
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _safe_to_fork() -> bool:
    """Forking copies only the calling thread: safe while this process has no other (no
    LanceDB runtime, no ONNX session yet), and on Linux (macOS frameworks are not)."""
    import threading

    return sys.platform.startswith("linux") and threading.active_count() == 1


_spare: tuple[int, Executor] | None = None


def prestart_workers() -> None:
    """Spawn the chunking workers now, before the files are known.

    A spawned worker needs about 0.2 s of CPU to start; begun while the parent still
    imports the indexer and walks the tree, that time no longer delays the first chunk
    of a first build. Forked (where that is safe: the CLI calls this before anything
    starts a thread), a worker starts at once with the parent's modules, and both
    cores keep that CPU for chunking. The next RowPool with as many workers adopts
    them; `discard_spare_workers` stops them if none does.
    """
    global _spare
    workers = pool_workers(POOL_MIN_FILES)
    if workers and _spare is None:
        _spare = (workers, _spawn_executor(workers, fork=_safe_to_fork()))


def discard_spare_workers() -> None:
    global _spare
    if _spare is not None:
        # Waited for: the workers are idle and exit at once, and an executor still shutting
        # down when the interpreter exits can fail its exit hook (EBADF on its wakeup pipe,
        # a traceback on stderr after the CLI's one-line error).
        _spare[1].shutdown(wait=True, cancel_futures=True)
        _spare = None


def _adopt_or_spawn(workers: int) -> Executor:
    global _spare
    if _spare is not None and _spare[0] == workers:
        executor, _spare = _spare[1], None
        return executor
    discard_spare_workers()
    return _spawn_executor(workers)


def pool_workers(n_files: int) -> int:
    """Worker processes for this many files: 0 means chunk in this process."""
    raw = os.environ.get("CODESEARCH_CHUNK_WORKERS", "").strip()
    try:
        wanted = int(raw) if raw else len(os.sched_getaffinity(0))
    except (ValueError, AttributeError):
        wanted = os.cpu_count() or 1
    if wanted < 2 or n_files < POOL_MIN_FILES:
        return 0
    return min(wanted, 8)


class RowPool:
    """Chunks files into rows, in worker processes when that pays off.

    Start it early (`start`) and iterate `results` later: the workers chunk
    while the caller does other work (opening the store).
    """

    def __init__(self, jobs: Sequence[ChunkJob], spec: BudgetSpec, workers: int | None = None):
        self.jobs = list(jobs)
        self.spec = spec
        self.workers = pool_workers(len(self.jobs)) if workers is None else workers
        self._executor: Executor | None = None
        self._futures: deque[Future[ChunkedBatch]] = deque()
        self._pending: Iterator[list[ChunkJob]] = iter(())

    def start(self) -> RowPool:
        if self.workers and self._executor is None:
            self._executor = _adopt_or_spawn(self.workers)
            self._pending = iter(self._parts())
            self._fill()
        return self

    def _parts(self, first: int = 0) -> Iterator[list[ChunkJob]]:
        for start in range(first, len(self.jobs), FILES_PER_TASK):
            yield self.jobs[start : start + FILES_PER_TASK]

    def extend(self, jobs: Sequence[ChunkJob]) -> None:
        """More jobs, after those given so far (results stay in job order).

        A first build starts the pool on the first files found and hands it the rest
        when the walk is done, so the workers chunk while the tree is still read."""
        if not jobs:
            return
        first = len(self.jobs)
        self.jobs.extend(jobs)
        if self._executor is None:
            return
        self._pending = itertools.chain(self._pending, self._parts(first))
        self._fill()

    def _fill(self) -> None:
        # A bounded window of tasks in flight: memory stays flat however big the
        # repository, and workers never wait for the parent to hand out work.
        assert self._executor is not None
        while len(self._futures) < self.workers * TASKS_AHEAD_PER_WORKER:
            part = next(self._pending, None)
            if part is None:
                return
            self._futures.append(self._executor.submit(chunk_batch, part, self.spec))

    def results(self) -> Iterator[ChunkedBatch]:
        """Batches in job order."""
        self.start()
        if self._executor is None:
            for part in self._parts():
                yield chunk_batch(part, self.spec)
            return
        while self._futures:
            batch = self._futures.popleft().result()
            self._fill()
            yield batch

    def close(self) -> None:
        if self._executor is not None:
            with contextlib.suppress(Exception):
                # Idle workers (every batch taken) are waited for, as in
                # discard_spare_workers; an interrupted pool is left to stop on its own.
                self._executor.shutdown(wait=not self._futures, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> RowPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tokenizer_file(folder: Path | None) -> str | None:
    path = folder / "tokenizer.json" if folder else None
    return str(path) if path is not None and path.is_file() else None
