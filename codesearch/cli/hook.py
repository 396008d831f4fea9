"""`codesearch hook ...`: install, remove and inspect the git hooks (logic in hook.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from codesearch.index.hooks import (
    DEFAULT_HOOKS,
    HOOK_NAMES,
    LOG_NAME,
    QUEUE_DIRNAME,
    HookError,
    HookSettings,
    NotARepository,
    Repo,
    find_index_root,
    find_repo,
    hook_states,
    index_dir_of,
    install_hooks,
    run_hook,
    spawn_background,
    uninstall_hooks,
)

hook_app = typer.Typer(
    help="Keep the index fresh from git hooks (pre-commit, post-merge, post-checkout).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _repo(path: Path) -> Repo:
    if not path.exists():
        _fail(f"no such folder: {path}", 2)
    try:
        return find_repo(path)
    except NotARepository as err:
        _fail(f"{err} (hooks need a git repository; run `git init` first)", 2)
    except HookError as err:
        _fail(str(err), 2)


HookOption = Annotated[
    list[str] | None,
    typer.Option("--hook", help=f"Hook to manage (repeatable): {', '.join(HOOK_NAMES)}."),
]


@hook_app.command()
def install(
    path: Annotated[Path, typer.Argument(help="A folder inside the repository.")] = Path("."),
    hooks: HookOption = None,
    background: Annotated[bool, typer.Option(
        "--background/--foreground",
        help="background: the commit waits ~0.1 s, a detached process updates the index. "
             "foreground: the full-text tier is updated inside the hook (new code is searchable "
             "when the commit returns; costs 2-4 s), embeddings in the background.",
    )] = True,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Update everything inside the hook and abort the commit if it fails.",
    )] = False,
    lexical_only: Annotated[bool, typer.Option(
        "--lexical-only", help="Hooks keep the full-text tier fresh only; embed with `codesearch index`.",
    )] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Build a missing index without asking.")] = False,
) -> None:
    """Install the hooks (an existing hook is chained, never overwritten)."""
    repo = _repo(path)
    wanted = list(hooks) if hooks else list(DEFAULT_HOOKS)
    settings = HookSettings(background=background, strict=strict, lexical_only=lexical_only)
    try:
        changes = install_hooks(repo, wanted, settings)
    except HookError as err:
        _fail(str(err))
    except OSError as err:
        _fail(f"cannot write hooks in {repo.hooks_dir}: {err.strerror or err}")
    for change in changes:
        extra = f" ({change.detail})" if change.detail else ""
        console.print(f"{change.action:>9} {change.path}{extra}", highlight=False)
    console.print(f"mode: {settings.describe()}", highlight=False)
    if find_index_root(repo.toplevel) is None:
        _offer_index(repo.toplevel, yes, embed=not lexical_only)


def _offer_index(root: Path, yes: bool, embed: bool) -> None:
    """The hooks update an existing index only: offer to build the first one."""
    if not yes:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            console.print(
                f"no index in {root} yet: run `codesearch index` there "
                "(the hooks only update an existing index)", highlight=False,
            )
            return
        if not typer.confirm(f"No index in {root} yet. Build it now?", default=True):
            console.print("skipped: run `codesearch index` when you want the hooks to start")
            return
    from codesearch.api import Index
    from codesearch.cli.ui import RichProgress
    from codesearch.core.errors import USER_ERRORS

    try:
        with RichProgress(sys.stderr.isatty()) as progress:
            report = Index(root).update(embed=False, progress=progress)
    except KeyboardInterrupt:
        _fail("interrupted: run `codesearch index` to finish", 130)
    except USER_ERRORS as err:
        _fail(str(err))
    later = (f"embedding {report.vectors_pending} chunks in the background "
             f"(log: {index_dir_of(root) / LOG_NAME})" if embed
             else "run `codesearch index` to add embeddings")
    console.print(f"indexed {report.files} files, {report.chunks_total} chunks "
                  f"(full-text tier); {later}", highlight=False)
    if embed and report.vectors_pending:
        spawn_background(root)


@hook_app.command()
def uninstall(
    path: Annotated[Path, typer.Argument(help="A folder inside the repository.")] = Path("."),
    hooks: HookOption = None,
) -> None:
    """Remove our hooks and restore the hooks they chained, exactly as they were."""
    repo = _repo(path)
    wanted = list(hooks) if hooks else list(HOOK_NAMES)
    unknown = [h for h in wanted if h not in HOOK_NAMES]
    if unknown:
        _fail(f"unknown hook '{unknown[0]}': choose from {', '.join(HOOK_NAMES)}", 2)
    try:
        changes = uninstall_hooks(repo, wanted)
    except OSError as err:
        _fail(f"cannot change hooks in {repo.hooks_dir}: {err.strerror or err}")
    shown = [c for c in changes if c.action != "absent"]
    for change in shown:
        extra = f" ({change.detail})" if change.detail else ""
        console.print(f"{change.action:>9} {change.path}{extra}", highlight=False)
    if not any(c.action in ("removed", "restored") for c in changes):
        console.print(f"no codesearch hooks in {repo.hooks_dir}", highlight=False)


@hook_app.command()
def status(
    path: Annotated[Path, typer.Argument(help="A folder inside the repository.")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Which hooks are installed, where, in which mode, and what the last runs did."""
    import json

    from codesearch.core.lock import current_holder
    from codesearch.index.hooks import background_waiting, read_queue

    repo = _repo(path)
    states = hook_states(repo)
    root = find_index_root(repo.toplevel)
    index_dir = index_dir_of(root) if root else None
    queued = len(read_queue(index_dir)[1]) if index_dir else 0
    holder = current_holder(index_dir) if index_dir else None
    log_tail = _log_tail(index_dir / LOG_NAME, 5) if index_dir else []
    data = {
        "toplevel": str(repo.toplevel),
        "hooks_dir": str(repo.hooks_dir),
        "hooks": [
            {"hook": s.hook, "path": str(s.path), "state": s.state, "chained": s.chained,
             "mode": s.settings.describe() if s.settings else None}
            for s in states
        ],
        "index": str(index_dir) if index_dir else None,
        "queued_paths": queued,
        "index_busy": holder.describe() if holder else None,
        "background_waiting": bool(index_dir) and background_waiting(index_dir),  # type: ignore[arg-type]
        "log": log_tail,
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console.print(f"[bold]hooks folder[/]  {repo.hooks_dir}", highlight=False)
    for s in states:
        if s.state == "ours":
            text = f"installed, {s.settings.describe() if s.settings else ''}"
            if s.chained:
                text += f", chains {s.hook}.codesearch-chained"
        elif s.state == "foreign":
            text = "another hook (not codesearch)"
        else:
            text = "-"
        console.print(f"  {s.hook:<14} {text}", highlight=False)
    if index_dir is None:
        console.print(f"[bold]index[/]         none in {repo.toplevel}: run `codesearch index`",
                      highlight=False)
        return
    console.print(f"[bold]index[/]         {index_dir}", highlight=False)
    if holder:
        console.print(f"[bold]busy[/]          {holder.describe()}", highlight=False)
    if queued:
        console.print(f"[bold]queued[/]        {queued} path(s) waiting for an update "
                      f"({index_dir / QUEUE_DIRNAME})", highlight=False)
    if log_tail:
        console.print(f"[bold]last runs[/]     ({index_dir / LOG_NAME})", highlight=False)
        for line in log_tail:
            console.print(f"  {line}", highlight=False, soft_wrap=True)


def _log_tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


@hook_app.command("run", hidden=True, context_settings={"ignore_unknown_options": True})
def run(
    hook: Annotated[str, typer.Argument(help="pre-commit, post-commit, post-merge, post-checkout or auto.")],
    args: Annotated[list[str] | None, typer.Argument(help="The arguments git passed to the hook.")] = None,
    background: Annotated[bool, typer.Option("--background/--foreground")] = True,
    strict: Annotated[bool, typer.Option("--strict")] = False,
    lexical_only: Annotated[bool, typer.Option("--lexical-only")] = False,
) -> None:
    """Called by the installed hook scripts (and by the pre-commit framework)."""
    if hook not in (*HOOK_NAMES, "auto"):
        _fail(f"unknown hook '{hook}': choose from {', '.join(HOOK_NAMES)} or auto", 2)
    settings = HookSettings(background=background, strict=strict, lexical_only=lexical_only)
    code = run_hook(hook, list(args or []), settings)
    raise typer.Exit(code)
