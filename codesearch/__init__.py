"""codesearch: local semantic code search."""

__version__ = "0.1.0"


def main() -> None:
    """The `codesearch` command.

    The console script imports this module, not the CLI: chunking workers are spawned
    processes that re-run the script's imports, and this way each starts without
    typer and rich (0.1 s of CPU apiece, paid while a first index races to its first
    answer).
    """
    from codesearch.cli.main import main as cli_main

    cli_main()
