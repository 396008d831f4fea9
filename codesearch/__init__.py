"""codesearch: local semantic code search.

    from codesearch import Index

    index = Index("path/to/repo")
    index.update()
    hits = index.search("read csv and count nulls", k=5)

The public API is `codesearch.api` (docs/python-api.md); its names load on first use.
"""

from codesearch.core.version import VERSION

__version__ = VERSION
__all__ = ["Hit", "Index", "IndexOptions", "IndexReport", "IndexStatus", "SearchOptions",
           "SearchResult", "SharedIndex", "__version__", "main"]


def __getattr__(name: str) -> object:  # no `typing` import: the thin client's path
    # Lazy: the console script imports this package, and so does every chunking worker
    # it spawns; neither should pay for the API's imports.
    if name in __all__:
        from codesearch import api

        return getattr(api, name)
    raise AttributeError(f"module 'codesearch' has no attribute {name!r}")


def main() -> None:
    """The `codesearch` command.

    The console script imports this module, not the CLI: chunking workers are spawned
    processes that re-run the script's imports, and this way each starts without
    typer and rich (0.1 s of CPU apiece, paid while a first index races to its first
    answer).
    """
    import sys

    if sys.argv[1:2] == ["query"]:
        # A warm server answers without typer, rich or the search stack (cli/thin.py);
        # None: this command is the full CLI's.
        from codesearch.cli.thin import run

        code = run(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    from codesearch.cli.main import main as cli_main

    if sys.argv[1:2] not in EXIT_AT_ONCE:
        cli_main()
        return
    try:
        cli_main()
    except SystemExit as done:
        _exit_now(done.code)


# Commands that may end with native threads still running: a query's ONNX session and
# LanceDB's runtime (0.2 s to dismantle after the answer is out); the MCP server's
# background work, cancelled when its client hangs up (tearing the interpreter down
# around it once ended `codesearch mcp` with SIGABRT in CI).
EXIT_AT_ONCE = (["query"], ["mcp"])


def _exit_now(code: object) -> None:
    """End the process without tearing the interpreter down. Nothing is left to write:
    a warm server a query started is its own process, and the MCP server has cancelled
    and joined its background work (LanceDB commits are atomic either way)."""
    import os
    import sys

    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            code = code or 1
    os._exit(code if isinstance(code, int) else 0)
