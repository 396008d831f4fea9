"""What every command shows: the consoles, one-line failures, progress bars."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit: the message is shown as written (a path or a query
    with brackets is no markup) and a message of several lines keeps its first."""
    say_error(message)
    raise typer.Exit(code)


def say_error(message: str) -> None:
    from rich.markup import escape

    lines = message.strip().splitlines() or ["failed"]
    err_console.print(f"[bold red]error:[/] {escape(lines[0])}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """A dim remark on stderr (kept out of piped and JSON output)."""
    from rich.markup import escape

    err_console.print(f"[dim]{escape(message)}[/]", highlight=False, soft_wrap=True)


class RichProgress:
    """Progress bars on a terminal; silence when piped."""

    LABELS = {"discover": "discovering files", "chunk": "chunking", "embed": "embedding"}

    def __init__(self, enabled: bool, quiet: bool = False):
        self.enabled = enabled
        self.quiet = quiet
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description:<18}"), BarColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                console=err_console, transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def start(self, stage: str, total: int | None) -> None:
        if self._progress is not None:
            self._tasks[stage] = self._progress.add_task(self.LABELS.get(stage, stage), total=total)

    def advance(self, stage: str, amount: int = 1) -> None:
        if self._progress is not None and stage in self._tasks:
            self._progress.advance(self._tasks[stage], amount)

    def finish(self, stage: str) -> None:
        if self._progress is not None and stage in self._tasks:
            task = self._tasks[stage]
            total = self._progress.tasks[task].total
            if total is None:
                self._progress.update(task, total=1, completed=1)

    def message(self, text: str) -> None:
        # Shown even when piped (a waiting run must say why it waits), not with --quiet.
        if not self.quiet:
            err_console.print(f"[dim]{text}[/]", highlight=False)
