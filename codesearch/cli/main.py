"""The `codesearch` command.

Imports stay lazy: `--help` and `status --quick` must answer in well under a second,
so nothing here imports torch, lancedb or tree-sitter at module level (`status` without
`--quick` opens the tables to check them, about 1 s more).

Every failure ends in one line (`main`): our errors as they are worded, usage errors as
click words them, anything unforeseen by its type and first line, with a traceback only
under --debug or CODESEARCH_DEBUG=1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from codesearch.cli.thin import WAIT_TIMEOUT, WAITING
from codesearch.cli.ui import RichProgress, console, err_console, fail, note, say_error
from codesearch.core.errors import DEBUG_ENV, USER_ERRORS, debug_enabled

if TYPE_CHECKING:
    from codesearch.core.types import SearchOptions

app = typer.Typer(
    name="codesearch",
    help="Semantic code search for a local repository: index once, then query in plain words.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _find_index(start: Path, explicit: Path | None) -> Path:
    from codesearch.core.types import INDEX_DIRNAME

    if explicit is not None:
        candidate = explicit if explicit.name == INDEX_DIRNAME else explicit / INDEX_DIRNAME
        if not (candidate / "manifest.json").exists():
            fail(f"no index at {candidate}: run `codesearch index` in that folder first")
        return candidate
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / INDEX_DIRNAME / "manifest.json").exists():
            return folder / INDEX_DIRNAME
        if _first_build_starting(folder / INDEX_DIRNAME):
            return folder / INDEX_DIRNAME
    fail(f"no index found in {here} or its parents: run `codesearch index` first")


def _first_build_starting(index_dir: Path, wait: float = 30.0) -> bool:
    """True once a first `codesearch index` that holds the lock here writes its manifest."""
    import time

    from codesearch.core.lock import current_holder

    if not (index_dir / "lock").exists() or current_holder(index_dir) is None:
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if (index_dir / "manifest.json").exists():
            return True
        time.sleep(0.02)
    return False


@app.command()
def index(
    path: Annotated[Path, typer.Argument(help="Folder to index.")] = Path("."),
    model: Annotated[str | None, typer.Option("--model", "-m", help="Embedding model: a name from `codesearch models`, a hub id, a local folder, openai:NAME@URL or voyage:NAME. Default: the index's model, else minilm.")] = None,
    dim: Annotated[int | None, typer.Option(help="Truncate vectors to this many dimensions (MRL models).")] = None,
    precision: Annotated[str | None, typer.Option(help="Vector storage: float32, int8 or binary (default: the index's, else float32).")] = None,
    query_prompt: Annotated[str | None, typer.Option(help="Query prompt for a model outside the registry (\\n allowed).")] = None,
    document_prompt: Annotated[str | None, typer.Option(help="Document prompt for a model outside the registry.")] = None,
    backend: Annotated[str, typer.Option(help="Local runtime: auto (int8 ONNX for the bundled model, torch otherwise), torch, onnx (fp32) or onnx-int8.")] = "auto",
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Drop the index and embed everything again.")] = False,
    lexical_only: Annotated[bool, typer.Option("--lexical-only", help="Build the full-text tier only; embed later.")] = False,
    background: Annotated[bool, typer.Option("--background", help="Build the full-text tier now, embed in a detached process.")] = False,
    max_file_size: Annotated[int, typer.Option(help="Skip files larger than this many bytes.")] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")] = False,
    store: Annotated[str | None, typer.Option("--store", help="A store of many repositories: a folder or s3://bucket/prefix (also gs://, az://); credentials from the environment.")] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="With --store: the repository's name there (default: the folder's name).")] = None,
    repos_file: Annotated[Path | None, typer.Option("--repos", help="With --store: index every repository listed in this file (`PATH-or-git-URL [NAME]` a line).")] = None,
    engine: Annotated[str, typer.Option(help="local, or ray: chunk and embed on a Ray cluster (extra `scale`).")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="With --engine ray: the cluster to join (default: start a local one).")] = None,
    workers: Annotated[int, typer.Option(help="With --engine ray: embedding actors.")] = 2,
    batch_size: Annotated[int, typer.Option(help="With --engine ray: texts per actor batch (64 gives vectors identical to the local engine).")] = 64,
    num_gpus_per_worker: Annotated[float, typer.Option(help="With --engine ray: GPUs per embedding actor.")] = 0.0,
) -> None:
    """Index a folder: chunk every source file, build the full-text index, embed the chunks."""
    _check_index_args(max_file_size, dim, precision, backend)
    ray_engine = _engine(engine, ray_address, workers, batch_size, num_gpus_per_worker)
    if repos_file is not None:
        if not store:
            fail("--repos needs --store: the store the repositories are published to", 2)
        _index_repos(repos_file, store, ray_engine, as_json, quiet)
        return
    if not path.exists():
        fail(f"no such folder: {path}")
    if not path.is_dir():
        fail(f"not a folder: {path}")
    from codesearch.api import Index
    from codesearch.index.rows import discard_spare_workers, prestart_workers

    target = Index(path)
    if rebuild or not target.exists:
        prestart_workers()  # a first build: chunking workers boot while we set up
    from codesearch.api import IndexOptions
    from codesearch.embed.registry import parse_prompt
    from codesearch.serve.daemon import serve_while_indexing, stop_stale

    if not target.exists and not ray_engine:
        stop_stale(target.index_dir)

    options = IndexOptions(
        model=model, dim=dim, precision=precision, backend=backend, rebuild=rebuild,
        embed=not (lexical_only or background), max_file_bytes=max_file_size,
        query_prompt=parse_prompt(query_prompt) if query_prompt is not None else None,
        document_prompt=parse_prompt(document_prompt) if document_prompt is not None else None,
    )
    show = sys.stderr.isatty() and not quiet and not as_json
    try:
        with RichProgress(show, quiet=quiet or as_json) as progress:
            report = target.update(options=options, progress=progress,
                                   serve=None if ray_engine else serve_while_indexing, engine=ray_engine)
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted:[/] the index stays usable as it was; "
            "run `codesearch index` again to finish"
        )
        raise typer.Exit(130) from None
    except USER_ERRORS as err:
        fail(str(err))
    except Exception as err:
        fail(_storage_message(target.index_dir, err))
    finally:
        discard_spare_workers()
    spawned = _embed_in_background(Path(report.root), backend) if background and report.vectors_pending else None
    summary = {
        "background_pid": spawned,
        "root": report.root, "files": report.files, "files_changed": report.files_changed,
        "files_deleted": report.files_deleted, "chunks": report.chunks_total,
        "chunks_written": report.chunks_written, "embedded": report.embedded,
        "from_cache": report.from_cache,
        "vectors_pending": report.vectors_pending, "decode_errors": report.decode_errors,
        "unreadable": report.unreadable, "skipped_bad_names": report.bad_names,
        "skipped_binary": report.skipped_binary,
        "skipped_large": report.skipped_large,
        "seconds_lexical": round(report.seconds_lexical, 3),
        "seconds_interim": round(report.seconds_interim, 3),
        "seconds": round(report.seconds_total, 3),
        "chunks_per_second": round(report.chunks_per_second, 1),
    }
    if store:
        summary["published"] = _publish(target, store, repo or target.root.name, quiet or as_json)
    if as_json:
        print(json.dumps(summary, indent=2))
    elif not quiet:
        extra = []
        if report.decode_errors:
            extra.append(f"{report.decode_errors} not UTF-8, read as Windows-1252")
        if report.unreadable:
            extra.append(f"{report.unreadable} unreadable skipped")
        if report.bad_names:
            extra.append(f"{report.bad_names} with names not UTF-8 skipped")
        if report.skipped_binary or report.skipped_large:
            extra.append(f"{report.skipped_binary} binary, {report.skipped_large} too large skipped")
        if report.from_cache:
            extra.append(f"{report.from_cache} vectors from the shared cache")
        if spawned:
            extra.append(f"embedding {report.vectors_pending} chunks in the background (pid {spawned})")
        tail = f" ({'; '.join(extra)})" if extra else ""
        console.print(
            f"indexed {report.files} files ({report.files_changed} changed, "
            f"{report.files_deleted} removed), {report.chunks_total} chunks, "
            f"embedded {report.embedded} in {report.seconds_total:.1f}s "
            f"({report.chunks_per_second:.1f} chunks/s){tail}",
            highlight=False,
        )


def _check_index_args(max_file_size: int, dim: int | None, precision: str | None, backend: str) -> None:
    """Refused before anything is touched: a size limit below 1 would skip every file, and
    so remove every file from the index."""
    from codesearch.embed.local import BACKENDS
    from codesearch.embed.registry import PRECISIONS

    if max_file_size < 1:
        fail(f"--max-file-size must be at least 1 byte, not {max_file_size}", 2)
    if dim is not None and dim < 1:
        fail(f"--dim must be at least 1, not {dim}", 2)
    if precision is not None and precision not in PRECISIONS:
        fail(f"unknown precision '{precision}': choose one of {', '.join(PRECISIONS)}", 2)
    if backend not in BACKENDS:
        fail(f"unknown backend '{backend}': choose one of {', '.join(BACKENDS)}", 2)


def _storage_message(index_dir: Path, err: Exception) -> str:
    """One line for a failure met in an index's files; anything else is re-raised for
    main() (one line too, the traceback with --debug)."""
    from codesearch.store.health import storage_error

    known = storage_error(index_dir, err)
    if known is None or debug_enabled():
        raise err
    return str(known)


def _engine(name: str, address: str | None, workers: int, batch_size: int, gpus: float) -> Any:
    """None for the local engine; a started Ray engine for `ray`."""
    if name not in ("local", "ray"):
        fail(f"unknown engine '{name}': choose local or ray", 2)
    if workers < 1 or batch_size < 1 or not gpus >= 0:
        fail("--workers and --batch-size must be at least 1, --num-gpus-per-worker at least 0", 2)
    if name == "local":
        return None
    from codesearch.index.distributed import RayEngine, RayOptions, start_ray

    options = RayOptions(address=address, workers=workers, batch_size=batch_size, num_gpus_per_worker=gpus)
    try:
        start_ray(options)
    except USER_ERRORS as err:
        fail(str(err))
    return RayEngine(options)


def _index_repos(repos_file: Path, store: str, engine: Any, as_json: bool, quiet: bool) -> None:
    """`index --store URI --repos FILE`: every listed repository, one line each."""
    from dataclasses import asdict

    from codesearch.api import SharedIndex, index_repositories, read_repo_list

    try:
        sources = read_repo_list(repos_file)
    except USER_ERRORS as err:
        fail(str(err))

    def said(outcome: Any) -> None:
        if as_json or quiet:
            return
        detail = {"published": f"{outcome.chunks} chunks, commit {outcome.commit[:12] or '-'}",
                  "unchanged": f"commit {outcome.commit[:12]} already in the store",
                  "failed": outcome.error}[outcome.status]
        console.print(f"{outcome.status:>9}  {outcome.name}  ({detail}; {outcome.seconds:.1f} s)",
                      highlight=False)

    show = sys.stderr.isatty() and not quiet and not as_json
    with RichProgress(show, quiet=quiet or as_json) as progress:
        outcomes = index_repositories(SharedIndex(store), sources, engine=engine, progress=progress,
                                      on_done=said)
    failed = [o for o in outcomes if o.status == "failed"]
    if as_json:
        print(json.dumps({"store": store, "repos": [asdict(o) for o in outcomes]}, indent=2))
    elif not quiet:
        console.print(f"{len(outcomes) - len(failed)} of {len(outcomes)} repositories in {store}",
                      highlight=False)
    if failed:
        raise typer.Exit(1)


def _publish(target: Any, store: str, repo: str, quiet: bool) -> dict[str, Any]:
    """Publish a freshly indexed folder as one repository of a store."""
    from dataclasses import asdict

    from codesearch.api import SharedIndex

    try:
        info = SharedIndex(store).publish(target, repo)
    except USER_ERRORS as err:
        fail(str(err))
    if not quiet:
        console.print(f"published {info.name} ({info.chunks} chunks, commit {info.commit[:12] or '-'}) "
                      f"to {store}", highlight=False)
    return asdict(info)


def _embed_in_background(root: Path, backend: str) -> int:
    """Detached `codesearch index` that embeds what is pending; it waits its turn on the lock."""
    from codesearch.core.types import INDEX_DIRNAME
    from codesearch.serve.daemon import launch_detached

    root = root.resolve()
    args = ["index", "-q", "--backend", backend, str(root)]
    return launch_detached(args, root / INDEX_DIRNAME, "index.log").pid


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="What you are looking for, in words or as a symbol name.")],
    k: Annotated[int, typer.Option("-k", "--top", help="Number of results.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, text or vector.")] = "hybrid",
    lang: Annotated[list[str] | None, typer.Option("--lang", help="Only this language (repeatable).")] = None,
    path_glob: Annotated[str | None, typer.Option("--path", help="Only paths matching this glob, e.g. 'src/*'.")] = None,
    content: Annotated[str, typer.Option(help="code, docs or all.")] = "code",
    per_file: Annotated[int, typer.Option("--per-file", help="At most this many results from one file; 0: no limit.")] = 0,
    lines: Annotated[int, typer.Option(help="Snippet lines to show per result.")] = 8,
    index_path: Annotated[Path | None, typer.Option("--index", help="Index folder (default: found upwards from here).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document (schema: docs/json.md).")] = False,
    rerank: Annotated[str | None, typer.Option(help="Rerank the top candidates with this model, e.g. qwen3-reranker-0.6b, cross-encoder:PATH, openai-rerank:NAME@URL, voyage-rerank:rerank-2.5 (default from CODESEARCH_RERANK).")] = None,
    rerank_top: Annotated[int, typer.Option(help="Candidates sent to the reranker.")] = 40,
    no_rerank: Annotated[bool, typer.Option("--no-rerank", help="Ignore CODESEARCH_RERANK for this query.")] = False,
    query_model: Annotated[str | None, typer.Option(help="Embed the query with another model of the index model's family.")] = None,
    no_daemon: Annotated[bool, typer.Option("--no-daemon", help="Search in this process; start no warm query server.")] = False,
    store: Annotated[str | None, typer.Option("--store", help="A store of many repositories: a folder or s3://bucket/prefix (also gs://, az://); credentials from the environment.")] = None,
    repos: Annotated[list[str] | None, typer.Option("--repo", help="With --store: only this repository (repeatable).")] = None,
) -> None:
    """Search the index of the enclosing folder.

    The first query searches in this process, then starts a warm query server for
    the index (it exits after 15 idle minutes), so later queries skip loading the
    model and the tables.
    """
    from codesearch.core.checks import clean_query
    from codesearch.core.process import one_blas_thread
    from codesearch.core.types import SearchOptions
    from codesearch.search.options import checked_options

    one_blas_thread()

    if lines < 1:
        fail(f"--lines must be at least 1, not {lines}", 2)
    rerank = None if no_rerank else (rerank or os.environ.get("CODESEARCH_RERANK") or None)
    try:
        text = clean_query(text)
        options = checked_options(SearchOptions(
            k=k, mode=mode, languages=tuple(lang or ()), path_glob=path_glob, content=content,
            rerank=rerank, rerank_top=rerank_top, query_model=query_model, per_file=per_file))
    except ValueError as err:
        fail(str(err), 2)
    if store:
        from dataclasses import replace

        # A store is searched without a reranker or another query model.
        _query_store(store, text, replace(options, rerank=None, query_model=None, repos=tuple(repos or ())),
                     lines, as_json)
        return
    if repos:
        fail("--repo needs --store", 2)
    index_dir = _find_index(Path.cwd(), index_path)
    _wait_until_queryable(index_dir, quiet=as_json)
    use_daemon = (not no_daemon and os.environ.get("CODESEARCH_NO_DAEMON", "") in ("", "0")
                  and _worth_a_server(index_dir))
    data = _query_daemon(index_dir, text, options) if use_daemon else None
    searched_here = data is None
    if data is None:
        from codesearch.api import Index
        from codesearch.search.render import result_to_json

        try:
            index = Index.at(index_dir)
            found = index.run(text, options)
            data = result_to_json(found, str(index_dir), index.searcher().manifest.model)
        except USER_ERRORS as err:
            fail(str(err))
        except Exception as err:
            fail(_storage_message(index_dir, err))
    # The same two calls render a warm server's answer for the thin client (cli/thin.py).
    from codesearch.search.render import print_json, render_answer

    if as_json:
        print_json(data)
    else:
        render_answer(console, data, lines)
    if searched_here and use_daemon:
        # Started after the answer is out, not waited for: the first query costs what a
        # search in this process costs, and the server loads while the user reads.
        from codesearch.serve import daemon

        sys.stdout.flush()
        daemon.spawn(index_dir)


def _query_store(store: str, text: str, options: SearchOptions, lines: int, as_json: bool) -> None:
    from codesearch.api import SharedIndex
    from codesearch.search.render import print_json, render_hits, result_to_json

    try:
        shared = SharedIndex(store)
        result = shared.run(text, options)
        model = shared.searcher().manifest.model
    except USER_ERRORS as err:
        fail(str(err))
    if as_json:
        print_json(result_to_json(result, store, model))
    else:
        render_hits(console, result, lines)


def _worth_a_server(index_dir: Path) -> bool:
    """A warm server only where one can run and pays: not for a read-only index (it could
    write neither its log nor take part in indexing) nor an empty one."""
    from codesearch.serve.daemon import has_chunks

    if not os.access(index_dir, os.W_OK):
        note(f"{index_dir} is read-only: searching without the warm server")
        return False
    return has_chunks(index_dir)  # a damaged index: the search in this process says so


def _wait_until_queryable(index_dir: Path, quiet: bool, timeout: float = WAIT_TIMEOUT) -> None:
    """A first build still in its full-text tier: wait for it rather than fail."""
    import threading

    from codesearch.core.errors import IndexError_
    from codesearch.core.lock import current_holder
    from codesearch.store.manifest import read_manifest

    def ready() -> bool:
        try:
            manifest = read_manifest(index_dir)
        except IndexError_ as err:
            fail(str(err))
        return manifest is None or manifest.indexed_at > 0

    if ready():
        return
    # The search below needs LanceDB (about 1 s to import): import it while waiting.
    threading.Thread(target=_import_search_stack, daemon=True).start()
    deadline = time.monotonic() + timeout
    said = False
    while not ready():
        if current_holder(index_dir) is None:
            if ready():  # finished between the two looks
                return
            fail("the first `codesearch index` run here did not finish: run it again")
        if time.monotonic() > deadline:
            fail(f"gave up after {timeout:.0f} s waiting for `codesearch index` to finish")
        if not said and not quiet:
            err_console.print(f"[dim]{WAITING}[/]")
            said = True
        time.sleep(0.02)  # a first answer is timed from `codesearch index` starting


def _import_search_stack() -> None:
    with contextlib.suppress(Exception):  # the search itself reports what is missing
        from codesearch.api import Index  # noqa: F401
        from codesearch.store.tables import import_lancedb

        import_lancedb()


def _query_daemon(index_dir: Path, text: str, options: Any) -> dict[str, Any] | None:
    """The result from the index's warm server; None to search here (no server runs)."""
    from codesearch.serve import daemon

    payload = {"op": "search", "protocol": daemon.PROTOCOL, "query": text,
               "options": daemon.options_to_dict(options)}
    answer = daemon.request(index_dir, payload)
    if answer is None or answer.get("stale"):  # a stale server stops after saying so
        return None
    if not answer.get("ok"):
        fail(answer.get("error", "query server failed"))
    return answer["result"]


@app.command(hidden=True)
def serve(
    index_path: Annotated[Path, typer.Option("--index", help="Index folder to serve.")],
    idle: Annotated[float, typer.Option(help="Exit after this many idle seconds.")] = 900.0,
) -> None:
    """Run the warm query server for one index (started by `query`)."""
    from codesearch.core.process import one_blas_thread
    from codesearch.serve import daemon

    one_blas_thread()

    if not idle > 0:
        fail(f"--idle must be more than 0 seconds, not {idle}", 2)
    raise typer.Exit(daemon.serve(index_path.resolve(), idle))


@app.command(name="stop-server")
def stop_server(
    path: Annotated[Path, typer.Argument(help="Folder inside an indexed tree.")] = Path("."),
) -> None:
    """Stop the warm query server of an index, if one runs."""
    from codesearch.serve import daemon

    index_dir = _find_index(path, None)
    console.print("stopped" if daemon.stop(index_dir) else "no server was running")


@app.command()
def status(
    path: Annotated[Path, typer.Argument(help="Folder inside an indexed tree.")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    store: Annotated[str | None, typer.Option("--store", help="A store of many repositories: a folder or s3://bucket/prefix (also gs://, az://); credentials from the environment.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Read the manifest only: no check of the tables (which imports LanceDB, about 1 s).")] = False,
) -> None:
    """Where the index is, which model built it, its size and freshness, and whether it can be read.

    Exit 1 with `damaged: ...` when its tables cannot be read.
    """
    if store:
        _store_status(store, as_json)
        return
    if not path.exists():
        fail(f"no such folder: {path}")
    from codesearch.api import Index
    from codesearch.core.errors import DamagedIndexError

    index_dir = _find_index(path, None)
    try:
        info = Index.at(index_dir).status()
    except DamagedIndexError as err:
        _say_damaged(index_dir, str(err), as_json)
    except USER_ERRORS as err:
        fail(str(err))
    extra = _status_extra(index_dir, quick)
    data = {**info.to_json(), **extra}
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        _print_status(data, info.complete)
    if extra["damaged"]:
        raise typer.Exit(1)


def _status_extra(index_dir: Path, quick: bool) -> dict[str, Any]:
    """What the manifest cannot say: counts as the tables hold them, damage, whether an
    index run holds the lock now, and the warm server with its memory."""
    from codesearch.core.lock import current_holder
    from codesearch.serve import daemon
    from codesearch.store.manifest import read_manifest

    holder = current_holder(index_dir)
    extra: dict[str, Any] = {"damaged": None, "indexing_pid": holder.pid if holder else None,
                             "server": None}
    ping = daemon.request(index_dir, {"op": "ping"}, timeout=1.0)
    if ping and ping.get("ok"):
        extra["server"] = {key: ping.get(key) for key in ("pid", "rss_bytes", "last_used_at", "queries",
                                                          "standalone")}
    if quick:
        return extra
    from codesearch.store.health import check_index

    manifest = read_manifest(index_dir)
    assert manifest is not None  # status() just read it
    finished = holder is None and (index_dir / "files.json").exists()
    health = check_index(index_dir, manifest, finished)
    extra.update(files=health.files, chunks=health.chunks, vectors_pending=health.vectors_pending)
    if health.damage:
        extra["damaged"] = f"{health.damage}: run `codesearch index --rebuild`"
    return extra


def _say_damaged(index_dir: Path, message: str, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"index": str(index_dir), "root": str(index_dir.parent), "damaged": message},
                         indent=2))
    else:
        _print_rows([("index", str(index_dir)), ("state", f"damaged: {message}")])
    raise typer.Exit(1)


def _print_status(data: dict[str, Any], complete: bool) -> None:
    indexed_at = float(data["indexed_at"] or 0)
    if indexed_at > 0:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(indexed_at))
        last = f"{when} ({_ago(time.time() - indexed_at)})"
    else:
        last = "never: the first `codesearch index` run has not finished"
    changed = data["changed_since"]
    rows = [
        ("index", data["index"]),
        ("model", f"{data['model']} ({data['dim']} dims, {data['precision']})"),
        ("runtime", data["runtime"]),
        ("files", str(data["files"])),
        ("chunks", str(data["chunks"])),
        ("not yet embedded", str(data["vectors_pending"])),
        ("size on disk", f"{data['size_bytes'] / 1e6:.1f} MB"),
        ("last indexed", last),
        ("changed since", "unknown (large tree)" if changed is None else str(changed)),
        ("query server", _server_text(data["server"])),
    ]
    if data["damaged"]:
        rows.append(("state", f"damaged: {data['damaged']}"))
    elif data["indexing_pid"] is not None:
        rows.append(("state", f"indexing now (pid {data['indexing_pid']})"))
    elif not complete:
        rows.append(("state", "incomplete: run `codesearch index` to finish"))
    _print_rows(rows)


def _server_text(server: dict[str, Any] | None) -> str:
    if not server:
        return "none running"
    memory = f", {server['rss_bytes'] / 1e6:.0f} MB" if server.get("rss_bytes") else ""
    kind = "" if server.get("standalone", True) else " (inside `codesearch index`)"
    used = server.get("last_used_at")
    when = f", last used {_ago(time.time() - float(used))}" if used else ""
    return f"pid {server['pid']}{kind}{memory}{when}"


def _print_rows(rows: list[tuple[str, str]]) -> None:
    from rich.markup import escape

    for key, value in rows:
        console.print(f"[bold]{key:>17}[/]  {escape(value)}", highlight=False, soft_wrap=True)


def _store_status(store: str, as_json: bool) -> None:
    from codesearch.api import SharedIndex

    try:
        data = SharedIndex(store).status()
    except USER_ERRORS as err:
        fail(str(err))
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console.print(f"[bold]store[/]  {data['store']}  ({data['model']}, {data['dim']} dims, "
                  f"{data['precision']})", highlight=False)
    for repo in data["repos"]:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(repo["indexed_at"]))
        console.print(f"  {repo['name']:<24} {repo['files']:>7} files {repo['chunks']:>9} chunks  "
                      f"commit {repo['commit'][:12] or '-':<12}  {when}", highlight=False)


@app.command(name="remove-repo")
def remove_repo(
    name: Annotated[str, typer.Argument(help="The repository to drop from the store.")],
    store: Annotated[str, typer.Option("--store", help="The store: a folder or s3://bucket/prefix.")],
) -> None:
    """Remove one repository from a store of many (one commit; the others are untouched)."""
    from codesearch.api import SharedIndex

    try:
        removed = SharedIndex(store).remove(name)
    except USER_ERRORS as err:
        fail(str(err))
    console.print(f"removed {name} ({removed} chunks) from {store}", highlight=False)


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


@app.command(name="eval")
def eval_(
    queries: Annotated[Path | None, typer.Argument(help="Labelled queries: a JSON/JSONL file or a folder of them.")] = None,
    root: Annotated[Path, typer.Option(help="Folder holding the corpora the queries name (or the repo itself).")] = Path("."),
    mode: Annotated[list[str] | None, typer.Option("--mode", help="Modes to compare (repeatable): hybrid, text, vector.")] = None,
    ablation: Annotated[bool, typer.Option("--ablation", help="Also switch each ranking signal off in turn.")] = False,
    rerank: Annotated[str | None, typer.Option(help="Also evaluate with this reranker over the hybrid results.")] = None,
    self_eval: Annotated[bool, typer.Option("--self", help="Build queries from this repo's own docstrings.")] = False,
    limit: Annotated[int, typer.Option(help="With --self: how many queries.")] = 200,
    seed: Annotated[int, typer.Option(help="With --self: sampling seed.")] = 0,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Embedding model for the indexes (default: each index's own).")] = None,
    backend: Annotated[str, typer.Option(help="Local runtime: auto (int8 ONNX for the bundled model, torch otherwise), torch, onnx (fp32) or onnx-int8.")] = "auto",
    k: Annotated[int, typer.Option("-k", help="Cut-off for the metrics.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
) -> None:
    """Measure retrieval quality: Recall@1/5/10, MRR@10, NDCG@10 per language and category."""
    import tempfile

    from codesearch.api import IndexOptions
    from codesearch.eval import benchmark
    from codesearch.eval.evaluate import (
        format_comparison,
        format_report,
        load_queries,
        report_to_json,
    )

    if not root.is_dir():
        fail(f"no such folder: {root}")
    if k < 1 or limit < 1:
        fail(f"-k and --limit must be at least 1, not {min(k, limit)}", 2)
    if (queries is None) == (not self_eval):
        fail("give a queries file, or --self to build queries from the repository", 2)
    workdir = None
    try:
        if self_eval:
            workdir = tempfile.TemporaryDirectory(prefix="codesearch-self-")
            copy = Path(workdir.name) / "repo"
            items = benchmark.self_eval_copy(root.resolve(), copy, limit, seed)
            roots = {"": copy}
        else:
            assert queries is not None
            items = load_queries(queries)
            roots = benchmark.corpus_roots(items, root.resolve())
        if not items:
            fail("no queries to run")
        options = IndexOptions(model=model, backend=backend)
        show = sys.stderr.isatty() and not as_json
        with RichProgress(show) as progress:
            seconds = benchmark.ensure_indexes(roots, options, progress=progress)
        configs = benchmark.ablation_configs() if ablation else benchmark.mode_configs(mode or ["hybrid"])
        if rerank:
            configs.append(benchmark.EvalConfig(f"hybrid + rerank {rerank}", "hybrid", rerank=rerank))
        reports = benchmark.run_configs(items, roots, configs, k, index_seconds=sum(seconds.values()))
    except USER_ERRORS as err:
        fail(str(err))
    finally:
        if workdir is not None:
            workdir.cleanup()
    if as_json:
        print(json.dumps({"queries": len(items), "reports": [report_to_json(r) for r in reports]}, indent=2))
        return
    console.print(f"{len(items)} queries over {len(roots)} corpora", highlight=False)
    console.print(format_comparison(reports), highlight=False, markup=False, soft_wrap=True)
    # Detail the default configuration (first in an ablation), or the last one asked for.
    best = reports[0] if ablation and not rerank else reports[-1]
    console.print(format_report(best), highlight=False, markup=False, soft_wrap=True)


def _mount_optional() -> None:
    """Sub-commands that live in their own modules (each imports lazily)."""
    from codesearch.cli.hook import hook_app
    from codesearch.cli.mcp import mcp_app
    from codesearch.cli.models import models_app

    app.add_typer(models_app, name="models", help="List the embedding models and their exact prompts.")
    app.add_typer(hook_app, name="hook", help="Git hooks that keep the index fresh as you commit.")
    app.add_typer(mcp_app, name="mcp", help="Serve the index to coding agents over MCP; install it into their configs.")


_mount_optional()


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help=f"Show the traceback of an unexpected failure (or set {DEBUG_ENV}=1).")] = False,
) -> None:
    if debug:
        os.environ[DEBUG_ENV] = "1"


def main(argv: list[str] | None = None) -> None:
    """Run the command line; whatever fails ends in one line on stderr and a non-zero exit
    (a traceback only with --debug or CODESEARCH_DEBUG=1)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="codesearch", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("[yellow]interrupted[/]")
        code = 130
    except Exception as err:  # noqa: BLE001 (the promise: one line, never a traceback)
        code = _report(err)
    sys.exit(code if isinstance(code, int) else 0)


def _report(err: Exception) -> int:
    """Say what went wrong in one line; the exit code. Usage errors are click's (typer
    vendors click in some versions, so they are told apart by class name)."""
    kinds = {cls.__name__ for cls in type(err).__mro__}
    ctx = getattr(err, "ctx", None)
    if "NoArgsIsHelpError" in kinds and ctx is not None:
        console.print(ctx.get_help(), highlight=False, markup=False)
        return 2
    if "UsageError" in kinds:
        where = ctx.command_path if ctx is not None else "codesearch"
        say_error(f"{err.format_message()} (see `{where} --help`)")  # type: ignore[attr-defined]
        return int(getattr(err, "exit_code", 2))
    if "ClickException" in kinds:
        say_error(err.format_message())  # type: ignore[attr-defined]
        return int(getattr(err, "exit_code", 1))
    if debug_enabled():
        raise err
    say_error(unexpected_message(err))
    return 1


def unexpected_message(err: BaseException) -> str:
    """One line for a failure no command foresaw, saying what to do about it."""
    import errno

    from codesearch.core.errors import REBUILD_HINT, CodesearchError, one_line

    if isinstance(err, CodesearchError | ValueError):
        return one_line(err)
    if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{err.filename or 'a file'} cannot be written or read: {err.strerror} (check its permissions)"
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"no space left on the device ({err.filename or 'writing the index'}): free some, then retry"
    text = f"{type(err).__module__} {err}".lower()
    if "lance" in text or "arrow" in text:
        return f"the index cannot be read ({one_line(err)}): {REBUILD_HINT}"
    return f"{one_line(err)} (unexpected: rerun with {DEBUG_ENV}=1 to see the traceback)"
