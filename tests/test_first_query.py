"""Time to the first answer: chunking in a process pool, the indexer answering queries
while it embeds, and a query that waits for a first build's full-text tier."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from codesearch.core.lock import index_lock
from codesearch.core.tokens import (
    expand_words,
    index_terms,
    lexical_text,
    query_words,
    searchable,
    split_identifier,
)
from codesearch.core.types import SearchOptions
from codesearch.core.wire import ROWS_MARKER, WAITING_MARKER
from codesearch.embed.registry import get_profile
from codesearch.index.build import (
    IndexOptions,
    _answer_waiting_queries,
    budget_spec,
    build_index,
)
from codesearch.index.rows import ChunkJob, RowPool
from codesearch.serve import daemon
from codesearch.source.discover import DiscoveryOptions, discover
from codesearch.store.memory import MemoryRows
from codesearch.store.tables import (
    INDEX_DIRNAME,
    IndexStore,
    PackedColumns,
    read_manifest,
    write_manifest,
)
from tests.conftest import wait_for_server

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_pool_workers_produce_exactly_the_in_process_rows() -> None:
    files = list(discover(FIXTURES, DiscoveryOptions()))
    assert len(files) > 30 and len({f.language for f in files}) > 10
    jobs = [ChunkJob(f) for f in files]
    spec = budget_spec(get_profile("minilm"))
    with RowPool(jobs, spec, workers=0) as pool:
        here = list(pool.results())
    with RowPool(jobs, spec, workers=2) as pool:
        assert pool.start()._executor is not None  # really in worker processes
        there = list(pool.results())
    assert [f for b in there for f in b.files] == [f for b in here for f in b.files]
    assert [b.columns for b in there] == [b.columns for b in here]
    # Each batch's columns hold the rows of its changed files, in order.
    for batch in here:
        counts = [f.state.chunks for f in batch.files if f.changed and f.state]
        columns = batch.columns.unpack()
        assert batch.columns.rows == len(columns["id"]) == sum(counts)
        assert all(len(values) == sum(counts) for values in columns.values())
    assert sum(b.columns.rows for b in here) > 100


def test_a_pool_started_on_the_first_files_and_extended_gives_the_same_rows() -> None:
    # A first build starts chunking before the walk is over (index.build.FIRST_FILES).
    files = list(discover(FIXTURES, DiscoveryOptions()))
    jobs = [ChunkJob(f) for f in files]
    spec = budget_spec(get_profile("minilm"))
    with RowPool(jobs, spec, workers=0) as pool:
        whole = list(pool.results())
    for workers in (2, 0):
        with RowPool(jobs[:21], spec, workers=workers) as pool:  # not a whole task: 16 + 5
            pool.start()
            pool.extend(jobs[21:])
            pool.extend([])
            assert pool.jobs == jobs
            streamed = list(pool.results())
        assert [f for b in streamed for f in b.files] == [f for b in whole for f in b.files]
        merged: dict[str, list[object]] = {}
        for b in streamed:
            for name, values in b.columns.unpack().items():
                merged.setdefault(name, []).extend(values)
        expected: dict[str, list[object]] = {}
        for b in whole:
            for name, values in b.columns.unpack().items():
                expected.setdefault(name, []).extend(values)
        assert merged == expected and len(merged["id"]) > 100


def test_prestarted_workers_are_adopted_by_the_pool_or_stopped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from codesearch.index import rows

    monkeypatch.setenv("CODESEARCH_CHUNK_WORKERS", "2")
    files = list(discover(FIXTURES, DiscoveryOptions()))
    jobs = [ChunkJob(f) for f in files]
    spec = budget_spec(get_profile("minilm"))
    rows.prestart_workers()
    assert rows._spare is not None
    spare = rows._spare[1]
    with RowPool(jobs, spec, workers=2) as pool:
        assert pool.start()._executor is spare and rows._spare is None
        there = [batch.columns for batch in pool.results()]
    with RowPool(jobs, spec, workers=0) as pool:
        here = [batch.columns for batch in pool.results()]
    assert there == here
    # Not needed (a small tree): stopped, processes and all.
    rows.prestart_workers()
    processes = list(rows._spare[1]._processes.values())  # type: ignore[index]
    assert len(processes) == 2
    rows.discard_spare_workers()
    assert rows._spare is None
    deadline = time.monotonic() + 60
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)  # (join() can return before the exit is reaped)
    assert [p.exitcode for p in processes] == [0, 0]


_FORKED_POOL = """
import json, sys, threading
from pathlib import Path
from codesearch.embed.registry import get_profile
from codesearch.index import rows
from codesearch.index.build import budget_spec
from codesearch.source.discover import DiscoveryOptions, discover

if sys.argv[1] == "thread":  # as after LanceDB or ONNX started theirs
    threading.Thread(target=threading.Event().wait, daemon=True).start()
rows.prestart_workers()
method = rows._spare[1]._mp_context.get_start_method()
jobs = [rows.ChunkJob(f) for f in discover(Path(sys.argv[2]), DiscoveryOptions())]
spec = budget_spec(get_profile("minilm"))
with rows.RowPool(jobs, spec, workers=2) as pool:
    adopted = pool.start()._executor is not None and rows._spare is None
    there = [batch.columns for batch in pool.results()]
with rows.RowPool(jobs, spec, workers=0) as pool:
    here = [batch.columns for batch in pool.results()]
print(json.dumps({"method": method, "adopted": adopted, "same": there == here, "rows": sum(c.rows for c in here)}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
@pytest.mark.parametrize(("threads", "method"), [("none", "fork"), ("thread", "spawn")])
def test_prestarted_workers_are_forked_only_from_a_single_threaded_process(
        threads: str, method: str) -> None:
    env = {**os.environ, "CODESEARCH_CHUNK_WORKERS": "2"}
    done = subprocess.run([sys.executable, "-c", _FORKED_POOL, threads, str(FIXTURES)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["method"] == method and report["adopted"] and report["same"]
    assert report["rows"] > 100


@pytest.mark.parametrize("text", [
    "readCsvFile(path) + HTTPServer_v2", "caf\u00e9 na\u00efve __init__ _ __", "2to3 x1y2 0x1F",
    "emoji \U0001f600done\tTabs\nnew_line", "bad \udcff surrogate", "", "   ",
])
def test_fast_lexical_text_equals_the_reference_words(text: str) -> None:
    searchable_words = [w for w in expand_words(text) if searchable(w)]
    assert lexical_text(text).split() == index_terms(" ".join(searchable_words))


def test_lexical_text_keeps_only_words_a_query_can_ask_for() -> None:
    # BM25 lengths then count only words that can match: `self`, `x`, `0` never do.
    assert lexical_text("def read_csv(self, x=0):\n    return None") == "read csv read csv"
    assert query_words("def read_csv(self, x=0)") == ["read_csv", "read", "csv"]
    assert lexical_text("parsingHTTPHeaders") == "parsinghttphead pars http header"


@pytest.mark.parametrize(("name", "parts"), [
    ("read_csv", ["read", "csv"]), ("readCSVFile_v2", ["read", "csv", "file", "v", "2"]),
    ("HTTPServer", ["http", "server"]), ("__init__", ["init"]), ("a__b", ["a", "b"]),
    ("x", ["x"]), ("_", []), ("caf\u00e9_Bar", ["caf", "bar"]), ("\u00e9t\u00e9", ["t"]),
])
def test_split_identifier(name: str, parts: list[str]) -> None:
    # One-word lower-case pieces take a fast path; the others the camel-case regex.
    assert split_identifier(name) == parts


def test_a_first_builds_setup_does_not_import_numpy() -> None:
    """Chunking workers wait for the indexer's import and the run's manifest (numpy
    would add 0.05 s there); numpy comes with LanceDB, after the pool has its files."""
    probe = ("import sys, codesearch.index.build as ix; "
             "ix.budget_spec(ix.index_profile(ix.wanted_manifest(ix.IndexOptions(), None))); "
             "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

def test_importing_lancedb_leaves_pandas_out_yet_dataframes_still_work(tmp_path: Path) -> None:
    """pandas is hidden while LanceDB is imported (0.3-0.5 s of every cold query);
    afterwards a DataFrame is still a table's data and a table still gives one."""
    probe = (
        "import sys\n"
        "from codesearch.store.tables import import_lancedb\n"
        "lancedb = import_lancedb()\n"
        "print('pandas' in sys.modules, any(type(f).__name__ == '_HidePandas' for f in sys.meta_path))\n"
        "import pandas as pd\n"
        f"db = lancedb.connect({str(tmp_path)!r})\n"
        "table = db.create_table('t', pd.DataFrame({'a': [1, 2, 3]}))\n"
        "print(type(table.to_pandas()).__name__, table.to_pandas()['a'].sum())\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["False False", "DataFrame 6"]


def test_a_local_search_never_loads_the_rest_namespace_models(tmp_path: Path) -> None:
    """lance_namespace's REST models (0.15 s) stay unloaded through opening and searching
    a local index; asked for (a namespace listing), they load and behave as themselves."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "minirepo", root)
    build_index(root, IndexOptions(embed=False))
    models = "lance_namespace_urllib3_client.models.list_tables_response"
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from codesearch.api import Index\n"
        "from codesearch.core.types import SearchOptions\n"
        f"index = Index({str(root)!r})\n"
        "hits = index.run('parse', SearchOptions(mode='text')).hits\n"
        f"print(len(hits) > 0, {models!r} in sys.modules, 'overrides' in sys.modules)\n"
        "db = index.searcher().store.db\n"
        "listing = db.list_tables()\n"
        "import lance_namespace\n"
        f"print(sorted(listing.tables), {models!r} in sys.modules,\n"
        "      isinstance(listing, lance_namespace.ListTablesResponse))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["True False False", "['chunks', 'files', 'vectors'] True True"]



@pytest.mark.parametrize("text", [
    "read_csv parsing parses Parsed HTTPServer themselves having hers doing does",
    "Caf\u00e9 na\u00efve Stra\u00dfe \u00c6on r\u00e9sum\u00e9s 2to3 x1y2 v_2 __init__",
    "a" * 39 + " " + "b" * 40 + " " + "\u00e9" * 20 + " " + "\u00e9" * 19 + "e",
    "the quick brown fox isn't running; it's FLYING over 1,000 lazy dogs' heads",
])
def test_index_terms_are_what_lancedb_english_analyzer_makes(text: str) -> None:
    """tokens.index_terms replaces LanceDB's analyzer: it must give the same terms."""
    from lancedb import tokenize

    assert index_terms(text) == [t.text for t in tokenize(text)]


def test_full_text_index_of_analyzed_terms_answers_as_lancedb_own_analyzer(
        tmp_path: Path) -> None:
    """Rows hold analyzed terms and the index only splits on spaces (built on threads);
    a query must get exactly the answers and scores of raw words under LanceDB's own
    English analyzer, non-ASCII paths included."""
    from lancedb.index import FTS

    from codesearch.core.tokens import path_words, symbol_words, terms_text
    from codesearch.index.rows import chunk_rows, make_budget
    from codesearch.source.chunk import chunk_file
    from codesearch.store.tables import LEXICAL_COLUMNS, IndexStore

    budget = make_budget(budget_spec(get_profile("minilm")))
    rows = []
    for f in discover(FIXTURES / "minirepo", DiscoveryOptions()):
        text = (FIXTURES / "minirepo" / f.path).read_text()
        rows += chunk_rows(chunk_file(f"Caf\u00e9/{f.path}", text, f.language, budget), "h")
    raw = [replace(
        r, lex_symbol=f"{symbol_words(r.symbol)} {r.kind}".strip(), lex_path=path_words(r.path),
        lex_body=" ".join(w for w in expand_words(f"{r.context}\n{r.text}") if searchable(w)),
    ) for r in rows]
    analyzed, reference = IndexStore(tmp_path / "analyzed"), IndexStore(tmp_path / "reference")
    analyzed.chunks.add(_rows_table(rows))
    reference.chunks.add(_rows_table(raw))
    analyzed.ensure_fts()
    for column in LEXICAL_COLUMNS:
        reference.chunks.create_index(column, config=FTS(with_position=False), replace=True)
    assert {i.columns[0] for i in analyzed.chunks.list_indices()} == set(LEXICAL_COLUMNS)
    asked = 0
    for query in ["ReverseString", "read csv count nulls", "HTTP server", "caf\u00e9 tables",
                  "Parsing Config Files", "slugify text", "parse_config"]:
        words = query_words(query)
        answers = [_fts_answers(store, text, 20)
                   for store, text in ((analyzed, terms_text(words)), (reference, " ".join(words)))]
        assert answers[0] == answers[1], query
        asked += bool(answers[0])
    assert asked >= 5  # the queries really match something
    # An index of the older recipe (the index analyzing again) is rebuilt.
    assert analyzed._missing_fts() == [] and sorted(reference._missing_fts()) == sorted(LEXICAL_COLUMNS)


def test_a_new_table_answers_before_its_full_text_indexes_are_built(minirepo: Path,
                                                                     tmp_path: Path) -> None:
    """A first build is queryable once its rows are written: the empty indexes made with
    the table let queries search the unindexed rows, with the answers the built
    indexes give afterwards."""
    from codesearch.core.tokens import terms_text
    from codesearch.store.tables import LEXICAL_COLUMNS, IndexStore

    store = IndexStore(tmp_path / "index")
    indexes = store.chunks.list_indices()
    assert sorted(i.columns[0] for i in indexes) == sorted(LEXICAL_COLUMNS)
    parts, states = [], []
    with RowPool([ChunkJob(f) for f in discover(minirepo, DiscoveryOptions())],
                 budget_spec(get_profile("minilm")), workers=0) as pool:
        for batch in pool.results():
            states += [f.state for f in batch.files if f.changed]
            parts.append(batch.columns)
    store.replace_files(states, parts, fresh=True)
    rows = sum(part.rows for part in parts)

    def answers() -> list[list[dict[str, object]]]:
        return [_fts_answers(store, terms_text(query_words(query)), 10)
                for query in ["ReverseString", "read csv count nulls", "parse config file", "slugify"]]

    before = answers()
    assert sum(map(bool, before)) >= 3
    assert sorted(store._missing_fts()) == sorted(LEXICAL_COLUMNS)
    assert store.ensure_fts() is True
    assert all(i.num_unindexed_rows == 0 and i.num_indexed_rows == rows
               for i in store.chunks.list_indices())
    assert answers() == before
    assert store.ensure_fts() is False  # nothing left to build


def test_a_first_build_ends_with_every_row_in_the_full_text_indexes(minirepo: Path) -> None:
    from codesearch.store.tables import IndexStore

    build_index(minirepo, IndexOptions(embed=False))
    indexes = IndexStore(minirepo / INDEX_DIRNAME).chunks.list_indices()
    assert len(indexes) == 3
    assert all(i.num_unindexed_rows == 0 and i.num_indexed_rows > 20 for i in indexes)


def test_a_reloaded_searcher_keeps_the_catalog_of_unchanged_rows(minirepo: Path) -> None:
    """The query server reloads its Searcher whenever the manifest is rewritten (every
    20 s while embedding); the chunk catalog is read again only if the rows changed."""
    from codesearch.search.searcher import Searcher

    build_index(minirepo, IndexOptions(embed=False))
    index_dir = minirepo / INDEX_DIRNAME
    first = Searcher(index_dir)
    catalog = first.catalog
    write_manifest(index_dir, read_manifest(index_dir))  # a rewrite, same rows
    again = Searcher(index_dir)
    again.adopt_catalog(first)
    assert again.catalog is catalog
    (minirepo / "added.py").write_text("def freshly_added_helper():\n    return 1\n")
    build_index(minirepo, IndexOptions(embed=False))
    changed = Searcher(index_dir)
    changed.adopt_catalog(first)
    assert changed.catalog is not catalog
    assert "freshly_added_helper" in changed.catalog.symbols
    assert "freshly_added_helper" not in catalog.symbols


def _fts_answers(store: object, text: str, limit: int) -> list[dict[str, object]]:
    """The full-text search the Searcher runs (search.Searcher.lexical), ids and scores."""
    from codesearch.search.searcher import LEXICAL_BOOSTS
    from codesearch.store.tables import full_text_query

    return (store.chunks.search(full_text_query(text, LEXICAL_BOOSTS), query_type="fts")  # type: ignore[attr-defined]
            .select(["id", "_score"]).limit(limit).to_arrow().to_pylist())


def _rows_table(rows: list) -> object:
    from codesearch.store.tables import IndexStore, _columns_table

    return _columns_table(rows, IndexStore._chunk_schema())


def test_console_script_module_is_light_for_spawned_workers() -> None:
    """Spawned chunking workers re-run the console script's imports: they must not pull
    in the CLI framework (the script calls `codesearch:main`, which imports it lazily)."""
    pyproject = (FIXTURES.parent / "pyproject.toml").read_text()
    assert '\ncodesearch = "codesearch:main"\n' in pyproject  # (no tomllib on 3.10)
    probe = "import sys, codesearch; print(sorted({'typer', 'rich'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-c", "import codesearch; codesearch.main()", "--help"],
                               capture_output=True, text=True)
    assert help_text.returncode == 0 and "query" in help_text.stdout


def test_a_files_chunks_do_not_depend_on_the_other_files(tmp_path: Path) -> None:
    """The token rate is fixed per tokenizer, so the same file chunks the same anywhere
    (and an incremental index ends identical to a clean build)."""
    source = FIXTURES / "minirepo"
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(source / "src/dataio/tables.py", alone / "tables.py")
    crowd = tmp_path / "crowd"
    shutil.copytree(FIXTURES, crowd)
    shutil.copy(source / "src/dataio/tables.py", crowd / "tables.py")

    def rows(root: Path) -> list[tuple]:
        build_index(root, IndexOptions(embed=False))
        from codesearch.store.tables import IndexStore, scan

        table = scan(IndexStore(root / INDEX_DIRNAME).chunks, ["path", "start_line", "end_line", "id"])
        return sorted(r for r in zip(*(table[c].to_pylist() for c in table.column_names), strict=True)
                      if r[0] == "tables.py")

    assert rows(alone) == rows(crowd) != []


class _GatedEmbedder:
    """The real model, held at its first document batch until the test opens the gate."""

    def __init__(self, inner: object):
        self.inner = inner
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def embed_documents(self, texts):  # noqa: ANN001, ANN201
        self.waiting.set()
        assert self.gate.wait(120), "test never opened the gate"
        return self.inner.embed_documents(texts)  # type: ignore[attr-defined]

    def embed_queries(self, texts):  # noqa: ANN001, ANN201
        return self.inner.embed_queries(texts)  # type: ignore[attr-defined]


def test_indexer_answers_queries_while_it_embeds(minirepo: Path, default_embedder: object,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODESEARCH_NO_DAEMON", raising=False)
    index_dir = minirepo / INDEX_DIRNAME
    embedder = _GatedEmbedder(default_embedder)
    warmed: list[bool] = []
    warm = daemon.ThreadServer.warm

    def spy(server: daemon.ThreadServer) -> None:
        warm(server)
        warmed.append(server.state.index.is_warm)

    monkeypatch.setattr(daemon.ThreadServer, "warm", spy)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(
        build_index(minirepo, IndexOptions(), embedder=embedder, serve=daemon.serve_while_indexing)))
    worker.start()
    try:
        assert embedder.waiting.wait(120), "embedding never started"
        assert warmed == [True]  # catalog and full-text index loaded before embedding began
        manifest = read_manifest(index_dir)
        assert manifest is not None and manifest.indexed_at > 0 and manifest.vectors_pending > 0
        ping = daemon.request(index_dir, {"op": "ping"})
        assert ping is not None and ping["pid"] == os.getpid()  # the indexer itself answers
        payload = {"op": "search", "query": "ReverseString", "options": {"k": 3, "mode": "hybrid"}}
        answer = daemon.request(index_dir, payload)
        assert answer is not None and answer["ok"], answer
        assert answer["result"]["results"][0]["symbol"] == "ReverseString"
        assert answer["result"]["vectors_pending"] == manifest.vectors_pending
    finally:
        embedder.gate.set()
        worker.join(300)
    try:
        assert done and done[0].vectors_pending == 0  # type: ignore[attr-defined]
        # It was queried, so it left a standalone server behind when it finished.
        deadline = time.monotonic() + 60
        after = None
        while after is None and time.monotonic() < deadline:
            after = daemon.request(index_dir, {"op": "ping"})
            time.sleep(0.1)
        assert after is not None and after["pid"] != os.getpid()
    finally:
        daemon.stop(index_dir)


def test_a_lexical_only_first_build_answers_queries_but_an_update_serves_none(
        minirepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codesearch.store.tables import IndexStore

    monkeypatch.delenv("CODESEARCH_NO_DAEMON", raising=False)
    index_dir = minirepo / INDEX_DIRNAME
    recorded, release = threading.Event(), threading.Event()
    ensure_fts = IndexStore.ensure_fts

    def gated(store: IndexStore) -> bool:  # runs right after the tier is declared queryable
        recorded.set()
        assert release.wait(120)
        return ensure_fts(store)

    monkeypatch.setattr(IndexStore, "ensure_fts", gated)
    worker = threading.Thread(target=build_index, args=(minirepo, IndexOptions(embed=False)),
                              kwargs={"serve": daemon.serve_while_indexing})
    worker.start()
    try:
        assert recorded.wait(120), "the full-text tier was never recorded"
        payload = {"op": "search", "query": "ReverseString", "options": {"k": 3, "mode": "text"}}
        answer = daemon.request(index_dir, payload)
        assert answer is not None and answer["ok"], answer
        assert answer["result"]["results"][0]["symbol"] == "ReverseString"
        ping = daemon.request(index_dir, {"op": "ping"})
        assert ping is not None and ping["pid"] == os.getpid()  # the indexer itself answered
    finally:
        release.set()
        worker.join(300)
    try:
        deadline = time.monotonic() + 60  # queried, so it left a standalone server behind
        after = None
        while (after is None or after["pid"] == os.getpid()) and time.monotonic() < deadline:
            after = daemon.request(index_dir, {"op": "ping"})
            time.sleep(0.1)
        assert after is not None and after["pid"] != os.getpid()
    finally:
        daemon.stop(index_dir)
    served: list[Path] = []
    (minirepo / "new_module.py").write_text("def added_later():\n    return 1\n")
    build_index(minirepo, IndexOptions(embed=False), serve=lambda d: served.append(d))
    assert served == []  # nobody waits for an update: no server for a quick run


def test_an_unqueried_indexer_leaves_no_server(minirepo: Path, default_embedder: object,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODESEARCH_NO_DAEMON", raising=False)
    build_index(minirepo, IndexOptions(), embedder=default_embedder,
                serve=daemon.serve_while_indexing)
    index_dir = minirepo / INDEX_DIRNAME
    assert not daemon.socket_path(index_dir).exists()
    assert daemon.request(index_dir, {"op": "ping"}) is None


def _query(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CODESEARCH_NO_DAEMON": "1"}
    return subprocess.Popen([sys.executable, "-m", "codesearch", "query", *args], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_query_waits_for_a_first_build_then_answers(minirepo: Path) -> None:
    build_index(minirepo, IndexOptions(embed=False))
    index_dir = minirepo / INDEX_DIRNAME
    built = read_manifest(index_dir)
    assert built is not None
    with index_lock(index_dir):  # a first build in its full-text tier, as the query sees it
        write_manifest(index_dir, replace(built, indexed_at=0.0))
        proc = _query(minirepo, "ReverseString", "--mode", "text", "--json")
        time.sleep(2.0)
        assert proc.poll() is None, proc.communicate()  # still waiting, not failing
        write_manifest(index_dir, built)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out)["results"][0]["symbol"] == "ReverseString"


_THIN_QUERY = """
import atexit, sys
heavy = ("typer", "rich", "numpy", "lancedb", "onnxruntime", "click", "torch")
atexit.register(lambda: print("HEAVY", sorted(m for m in heavy if m in sys.modules), file=sys.stderr))
sys.argv = ["codesearch", "query", *sys.argv[1:]]
import codesearch
codesearch.main()
"""


@pytest.mark.parametrize("as_json", [True, False])
def test_a_query_waits_for_a_first_build_without_the_cli_and_the_indexer_answers(
        minirepo: Path, as_json: bool) -> None:
    build_index(minirepo, IndexOptions(embed=False))
    index_dir = minirepo / INDEX_DIRNAME
    built = read_manifest(index_dir)
    assert built is not None
    env = {k: v for k, v in os.environ.items() if k != "CODESEARCH_NO_DAEMON"}
    args = ["ReverseString", "--mode", "text", *(["--json"] if as_json else [])]
    with index_lock(index_dir):  # a first build in its full-text tier, as the query sees it
        write_manifest(index_dir, replace(built, indexed_at=0.0))
        proc = subprocess.Popen([sys.executable, "-c", _THIN_QUERY, *args], cwd=minirepo, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        assert proc.poll() is None, proc.communicate()  # still waiting, not failing
        marker = index_dir / f"{WAITING_MARKER}{proc.pid}"
        assert marker.exists()  # so the indexer answers it before building its indexes
        # The indexer binds its server before it says the full-text tier is ready.
        server = daemon.serve_in_thread(index_dir)
        assert server is not None
        try:
            write_manifest(index_dir, built)
            _answer_waiting_queries(index_dir, limit=120)  # what the indexer does next
            assert server.queries == 1 and not marker.exists()
            out, err = proc.communicate(timeout=120)
        finally:
            server.close()
    assert proc.returncode == 0, err
    assert "HEAVY []" in err, err  # it waited and printed without loading the CLI
    assert server.queries == 1  # answered by the indexing process
    assert ("waiting for `codesearch index`" in err) is not as_json
    if as_json:
        assert json.loads(out)["results"][0]["symbol"] == "ReverseString"
    else:
        assert "ReverseString" in out.splitlines()[0]


def test_the_marker_of_a_query_that_died_waiting_holds_nothing_up(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f"{WAITING_MARKER}{gone.stdout.strip()}"
    stale.touch()
    odd = tmp_path / f"{WAITING_MARKER}x"
    odd.touch()
    started = time.monotonic()
    _answer_waiting_queries(tmp_path, limit=30)
    assert time.monotonic() - started < 5 and not stale.exists() and not odd.exists()
    alive = tmp_path / f"{WAITING_MARKER}{os.getpid()}"
    alive.touch()
    threading.Timer(0.3, alive.unlink).start()
    started = time.monotonic()
    _answer_waiting_queries(tmp_path, limit=30)
    assert 0.3 <= time.monotonic() - started < 10


def test_query_on_an_abandoned_first_build_fails_in_one_line(minirepo: Path) -> None:
    build_index(minirepo, IndexOptions(embed=False))
    index_dir = minirepo / INDEX_DIRNAME
    built = read_manifest(index_dir)
    assert built is not None
    write_manifest(index_dir, replace(built, indexed_at=0.0))  # killed before its first tier
    proc = _query(minirepo, "ReverseString")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "did not finish" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_packed_columns_hold_the_rows_arrow_reads() -> None:
    from dataclasses import fields

    import pyarrow as pa

    from codesearch.store.tables import ChunkRow, IndexStore, PackedColumns

    def row_columns(rows: list[ChunkRow]) -> dict[str, list[object]]:
        return {f.name: [getattr(r, f.name) for r in rows] for f in fields(ChunkRow)}

    files = list(discover(FIXTURES, DiscoveryOptions()))
    spec = budget_spec(get_profile("minilm"))
    rows = [r for f in files for r in rows_of(f, spec)]
    rows[1] = replace(rows[1], symbol="café", text="naïve — ✓ \U0001F600\n", members="")
    packed = PackedColumns.pack(rows)
    assert packed.rows == len(rows) and packed.unpack() == row_columns(rows)
    schema = IndexStore._chunk_schema()
    assert packed.to_arrow(schema).equals(pa.Table.from_pydict(row_columns(rows), schema=schema))
    empty = PackedColumns.pack([])
    assert empty.rows == 0 and empty.to_arrow(schema).num_rows == 0


def rows_of(source, spec):  # type: ignore[no-untyped-def]
    from codesearch.index.rows import chunk_job

    return chunk_job(ChunkJob(source), spec)[1]


def _rows_in_memory(index_dir: Path, part_rows: int = 7) -> MemoryRows:
    """The written rows of an index, packed in parts as a first build's workers send them."""
    from dataclasses import fields as dataclass_fields

    from codesearch.index.rows import ChunkRow

    store = IndexStore(index_dir)
    names = [f.name for f in dataclass_fields(ChunkRow)]
    rows = [ChunkRow(**r) for r in store.chunks.to_arrow().select(names).to_pylist()]
    return MemoryRows([PackedColumns.pack(rows[i:i + part_rows]) for i in range(0, len(rows), part_rows)])


@pytest.mark.parametrize(("terms", "other_terms"), [
    ("revers string", ""), ("revers revers string", ""), ("cach lru", "cache"),
    ("pars url queri param", "param"), ("nosuchterm", ""), ("cach", "lru"),
])
def test_rows_in_memory_score_as_lancedb_full_text_search(minirepo: Path, terms: str,
                                                          other_terms: str) -> None:
    build_index(minirepo, IndexOptions(embed=False))
    index_dir = minirepo / INDEX_DIRNAME
    written = IndexStore(index_dir)
    memory = _rows_in_memory(index_dir)
    for boosts in ((0.5, 0.5, 1.0), (1.0, 0.25, 1.0)):
        expected = written.full_text(terms, boosts, 50, other_terms, 0.6)
        got = memory.full_text(terms, boosts, 50, other_terms, 0.6)
        assert [chunk_id for chunk_id, _ in got] == [chunk_id for chunk_id, _ in expected]
        # LanceDB adds in 32-bit floats.
        assert all(abs(a - b) <= 1e-6 * abs(b) for (_, a), (_, b) in zip(got, expected, strict=True))
    assert (terms == "nosuchterm") == (got == [])


@pytest.mark.parametrize("mode", ["text", "hybrid"])
def test_a_searcher_over_rows_in_memory_answers_as_the_written_index(minirepo: Path, mode: str) -> None:
    from codesearch.search.searcher import Searcher

    build_index(minirepo, IndexOptions(embed=False))
    index_dir = minirepo / INDEX_DIRNAME
    manifest = read_manifest(index_dir)
    assert manifest is not None
    written = Searcher(index_dir)
    memory = Searcher(index_dir, store=_rows_in_memory(index_dir), manifest=replace(manifest))
    for query in ("ReverseString", "reverse a string", "least recently used cache", "parse the url query",
                  "how are requests sent", "LruCache.get"):
        options = SearchOptions(k=10, mode=mode)
        expected, got = written.search(query, options), memory.search(query, options)
        assert [(h.path, h.start_line, h.end_line, h.symbol, h.kind, h.text) for h in got.hits] == \
            [(h.path, h.start_line, h.end_line, h.symbol, h.kind, h.text) for h in expected.hits]
        assert [h.score for h in got.hits] == pytest.approx([h.score for h in expected.hits], abs=2e-6)
        assert (got.chunks, got.vectors_pending) == (expected.chunks, expected.vectors_pending)
        assert got.hits, query


def test_a_first_build_answers_a_waiting_query_from_its_rows_before_it_writes_them(
        minirepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A query already waiting when the last file is chunked is answered from the rows in
    memory, before LanceDB holds any of them, with what the written index answers later."""
    monkeypatch.delenv("CODESEARCH_NO_DAEMON", raising=False)
    index_dir = minirepo / INDEX_DIRNAME
    index_dir.mkdir()
    ours = index_dir / f"{WAITING_MARKER}{os.getpid()}"  # a query waits already
    ours.touch()
    env = {k: v for k, v in os.environ.items() if k != "CODESEARCH_NO_DAEMON"}
    args = ["least recently used cache", "--mode", "text", "--json"]
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(
        build_index(minirepo, IndexOptions(embed=False), serve=daemon.serve_while_indexing)))
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not (index_dir / ROWS_MARKER).exists():
            assert time.monotonic() < deadline and worker.is_alive(), "the build never answered from its rows"
            time.sleep(0.01)
        assert not (index_dir / "lance" / "chunks.lance").exists()  # nothing written yet
        early = subprocess.run([sys.executable, "-c", _THIN_QUERY, *args], cwd=minirepo, env=env,
                               capture_output=True, text=True, timeout=120)
        assert not (index_dir / "lance" / "chunks.lance").exists()  # still nothing written
    finally:
        ours.unlink(missing_ok=True)
        worker.join(300)
    try:
        assert early.returncode == 0, early.stderr
        assert "HEAVY []" in early.stderr  # the thin client, answered by the build's server
        assert done and not (index_dir / ROWS_MARKER).exists()
        later = subprocess.run([sys.executable, "-m", "codesearch", "query", *args], cwd=minirepo,
                               env={**env, "CODESEARCH_NO_DAEMON": "1"}, capture_output=True, text=True)
        assert later.returncode == 0, later.stderr
        first, then = json.loads(early.stdout), json.loads(later.stdout)
        assert first["results"] and [(r["path"], r["start_line"], r["symbol"]) for r in first["results"]] == \
            [(r["path"], r["start_line"], r["symbol"]) for r in then["results"]]
        assert (first["chunks"], first["vectors_pending"]) == (then["chunks"], then["vectors_pending"])
    finally:
        daemon.stop(index_dir)


def test_a_first_build_stops_the_server_of_an_index_that_is_gone(
        minirepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server outlives its index by up to its idle time; a first build there stops it
    (its own server must answer the queries that wait), and leaves a live index's alone."""
    monkeypatch.delenv("CODESEARCH_NO_DAEMON", raising=False)
    build_index(minirepo, IndexOptions(embed=False))
    index_dir = minirepo / INDEX_DIRNAME
    daemon.spawn(index_dir)
    try:
        before = wait_for_server(index_dir)
        daemon.stop_stale(index_dir)
        still = daemon.request(index_dir, {"op": "ping"})
        assert still is not None and still["pid"] == before["pid"]  # a live index keeps its server
        shutil.rmtree(index_dir)
        index_dir.mkdir()
        with index_lock(index_dir):  # another first build is running: not ours to stop
            daemon.stop_stale(index_dir)
            still = daemon.request(index_dir, {"op": "ping"})
            assert still is not None and still["pid"] == before["pid"]
        daemon.stop_stale(index_dir)
        deadline = time.monotonic() + 30
        while daemon.request(index_dir, {"op": "ping"}, timeout=2.0) is not None:
            assert time.monotonic() < deadline, "the server of the removed index kept answering"
            time.sleep(0.1)
    finally:
        daemon.stop(index_dir)
