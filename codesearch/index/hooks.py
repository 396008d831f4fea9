"""Git hooks that keep the index fresh as people commit, pull and switch branches.

Two halves:

* install side (`install_hooks`, `uninstall_hooks`, `hook_states`): writes a small
  POSIX sh script per hook into the folder git really runs hooks from
  (`git rev-parse --git-path hooks`, which follows `core.hooksPath`, linked worktrees
  and submodules). An existing hook is chained, not overwritten: it is moved aside
  to `<hook>.codesearch-chained` (a rename, so bytes and mode survive) and run first
  by our script with the same arguments and stdin; its non-zero exit still aborts
  the commit. `uninstall_hooks` renames it back.

* run side (`run_hook`, `drain`): the script runs this module's `main()` with
  `run HOOK ARGS...`. It lists the paths the git operation changed (staged paths for
  pre-commit, `git diff OLD NEW` for post-merge / post-checkout / post-commit),
  queues them in `.codesearch/hook-queue/`, and reindexes only those paths
  (`IndexOptions(paths=...)`), never a full walk.

Why the default is to detach the whole update (`background`): importing LanceDB
alone costs 2-4 s here, so even the lexical tier cannot fit in the one second a
commit may spend on us. `background` returns after `git diff` + a fork (about 0.1 s)
and a detached process writes the lexical tier (queryable a few seconds later) and
then the embeddings. `foreground` writes the lexical tier inside the hook (the new
code is text-searchable the moment `git commit` returns; costs the import) and
detaches the embeddings. `strict` does everything inside the hook, including the
embeddings, and a failure aborts the commit.

Pre-commit indexes the working-tree file, not the staged blob: the index serves
what the user sees and edits, and the next run would replace a staged-only
version anyway. (Under the pre-commit framework unstaged changes are stashed
while hooks run, so there the two are the same.)

A failing, slow or busy index never blocks a commit unless `strict`: the error
goes to `.codesearch/hook.log` with one short line on stderr, and the exit is 0.

This module imports only the standard library at module level: the hook process
must start in milliseconds, and the heavy modules load only when indexing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shlex
import stat
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from codesearch.core.errors import USER_ERRORS, HookError, one_line
from codesearch.core.process import launch_detached
from codesearch.core.types import INDEX_DIRNAME

if TYPE_CHECKING:
    from codesearch.index.build import IndexReport

HOOK_NAMES = ("pre-commit", "post-commit", "post-merge", "post-checkout")
DEFAULT_HOOKS = ("pre-commit", "post-merge", "post-checkout")
MARKER = "# codesearch-hook:"
CHAINED_SUFFIX = ".codesearch-chained"
LOG_NAME = "hook.log"
LOG_MAX_BYTES = 1_000_000
QUEUE_DIRNAME = "hook-queue"
DRAIN_SLOT_NAME = "hook-drain.lock"
HOOK_LOCK_TIMEOUT = 2.0  # foreground: a busy index is skipped, not waited for
# Foreground mode hands bigger changes (a pull, a far branch switch) to the detached
# run: the hook's time must not grow with the size of the diff.
FOREGROUND_MAX_PATHS = 200
STRICT_LOCK_TIMEOUT = 120.0
BACKGROUND_LOCK_TIMEOUT = 1800.0  # a detached run may wait for a long manual `index`
NULL_SHA = "0" * 40
# Variables git sets for hooks that pin a repository location; a detached process
# must not inherit them (GIT_INDEX_FILE may name a temporary index that is gone
# by the time it runs).
GIT_LOCATION_VARS = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE",
)



class NotARepository(HookError):
    """The folder is not inside a git work tree."""


# --------------------------------------------------------------------------- git


def git(args: Sequence[str], cwd: Path, keep_env: bool = True) -> bytes:
    """stdout of a git command; HookError (one line) when it fails."""
    env = None if keep_env else clean_env()
    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args], cwd=cwd, env=env,
            capture_output=True, timeout=120, check=False,
        )
    except FileNotFoundError:
        raise HookError("git is not installed or not on PATH") from None
    except (OSError, subprocess.SubprocessError) as err:
        raise HookError(f"git {args[0]} failed: {err}") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise HookError(f"git {' '.join(args[:2])}: {message[-1] if message else 'failed'}")
    return proc.stdout


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in GIT_LOCATION_VARS}


@dataclass(frozen=True)
class Repo:
    toplevel: Path  # root of this work tree (a linked worktree or a submodule has its own)
    hooks_dir: Path  # where git runs hooks from (core.hooksPath, common dir of worktrees)


def find_repo(cwd: Path) -> Repo:
    """The work tree containing `cwd`; NotARepository when there is none."""
    cwd = Path(cwd).absolute()
    try:
        out = git(["rev-parse", "--show-toplevel", "--git-path", "hooks"], cwd, keep_env=False)
    except HookError as err:
        if "not a git repository" in str(err) or "must be run in a work tree" in str(err):
            raise NotARepository(f"not a git repository: {cwd}") from None
        raise
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 2 or not lines[0]:
        raise NotARepository(f"not inside a git work tree: {cwd}")
    toplevel = Path(lines[0])
    # --git-path answers relative to the current folder when core.hooksPath is relative.
    hooks_dir = Path(os.path.normpath(cwd / Path(lines[1]).expanduser()))
    return Repo(toplevel=toplevel, hooks_dir=hooks_dir)


# --------------------------------------------------------------------------- scripts


@dataclass(frozen=True)
class HookSettings:
    background: bool = True  # detach the whole update; False: lexical tier inside the hook
    strict: bool = False  # everything inside the hook, and a failure aborts the commit
    lexical_only: bool = False  # never embed from a hook; `codesearch index` does it later

    def flags(self) -> list[str]:
        return [
            "--background" if self.background else "--foreground",
            *(["--strict"] if self.strict else []),
            *(["--lexical-only"] if self.lexical_only else []),
        ]

    def describe(self) -> str:
        tail = ", no embeddings" if self.lexical_only else ""
        if self.strict:
            return f"strict: all in the hook, failure aborts{tail}"
        if self.background:
            return f"background: a detached process updates{tail}"
        if self.lexical_only:
            return "foreground: full-text tier in the hook, no embeddings"
        return "foreground: full-text tier in the hook, embeddings detached"


# `python -m` and `python -c` put the current folder first on sys.path, and hooks run
# at the top of the user's repository: a folder there named like any module we import
# (`pathspec/`, `rich/`, `codesearch/`...) would shadow it. Drop that entry first.
BOOTSTRAP = (
    'import sys; del sys.path[0]; sys.argv[0] = "codesearch-hook"; '
    "from codesearch.hook import main; sys.exit(main())"
)


def python_command(python: str) -> list[str]:
    """argv prefix that runs this module's main() safely from any folder."""
    return [python, "-c", BOOTSTRAP]


def hook_script(name: str, settings: HookSettings, python: str, package_dir: Path) -> str:
    """The sh script git runs. Paths are quoted for sh; nothing here needs bash."""
    flags = " ".join(settings.flags())
    fail_exit = "1" if settings.strict else "0"
    py = shlex.quote(python)
    marker_file = shlex.quote(str(package_dir / "hook.py"))
    return f"""#!/bin/sh
{MARKER} {name} {flags}
# Installed by `codesearch hook install`; `codesearch hook uninstall` removes it and
# puts back the hook it chained (if any). Keeps the codesearch index fresh.
chained="$0{CHAINED_SUFFIX}"
if [ -f "$chained" ] && [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
py={py}
if [ -x "$py" ] && [ -f {marker_file} ]; then
    "$py" -c {shlex.quote(BOOTSTRAP)} run {name} {flags} -- "$@" </dev/null
elif command -v codesearch >/dev/null 2>&1; then
    codesearch hook run {name} {flags} -- "$@" </dev/null
else
    echo "codesearch: command not found, index not updated (reinstall it, or run: codesearch hook uninstall)" >&2
    exit {fail_exit}
fi
status=$?
{"exit $status" if settings.strict else "exit 0  # never block a commit on the index"}
"""


def parse_script(text: str) -> tuple[str, HookSettings] | None:
    """(hook name, settings) of one of our scripts, None for any other file."""
    for line in text.splitlines()[:3]:
        if line.startswith(MARKER):
            words = line[len(MARKER):].split()
            if not words:
                return None
            return words[0], HookSettings(
                background="--foreground" not in words, strict="--strict" in words,
                lexical_only="--lexical-only" in words,
            )
    return None


def _read_ours(path: Path) -> tuple[str, HookSettings] | None:
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return parse_script(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


@dataclass(frozen=True)
class HookChange:
    hook: str
    path: Path
    action: str  # installed | updated | chained | removed | restored | absent | foreign
    detail: str = ""


def install_hooks(
    repo: Repo,
    hooks: Sequence[str] = DEFAULT_HOOKS,
    settings: HookSettings = HookSettings(),
    python: str | None = None,
) -> list[HookChange]:
    """Write our script for each hook, chaining whatever hook was there."""
    for name in hooks:
        if name not in HOOK_NAMES:
            raise HookError(f"unknown hook '{name}': choose from {', '.join(HOOK_NAMES)}")
    python = python or sys.executable
    package_dir = Path(__file__).resolve().parent.parent  # codesearch/, holding hook.py
    repo.hooks_dir.mkdir(parents=True, exist_ok=True)
    changes = []
    for name in dict.fromkeys(hooks):
        path = repo.hooks_dir / name
        chained = path.with_name(name + CHAINED_SUFFIX)
        ours = _read_ours(path)
        action = "updated" if ours is not None else "installed"
        if ours is None and (path.exists() or path.is_symlink()):
            if chained.exists() or chained.is_symlink():
                raise HookError(
                    f"{path} is not ours and {chained.name} already exists: "
                    "move one of them aside, then install again"
                )
            os.rename(path, chained)  # a rename keeps content, mode and symlinks exactly
            action = "chained"
        _write_executable(path, hook_script(name, settings, python, package_dir))
        detail = f"runs {chained.name} first" if chained.exists() or chained.is_symlink() else ""
        changes.append(HookChange(name, path, action, detail))
    return changes


def _write_executable(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    mode = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def uninstall_hooks(repo: Repo, hooks: Sequence[str] = HOOK_NAMES) -> list[HookChange]:
    """Remove our scripts and put back the hooks they chained, byte for byte."""
    changes = []
    for name in hooks:
        path = repo.hooks_dir / name
        chained = path.with_name(name + CHAINED_SUFFIX)
        if _read_ours(path) is None:
            if path.exists() or path.is_symlink():
                detail = f"left alone; {chained.name} also kept" if chained.exists() else "left alone"
                changes.append(HookChange(name, path, "foreign", detail))
            elif chained.exists() or chained.is_symlink():
                os.rename(chained, path)
                changes.append(HookChange(name, path, "restored"))
            continue
        if chained.exists() or chained.is_symlink():
            os.replace(chained, path)
            changes.append(HookChange(name, path, "restored", f"the previous {name} hook is back"))
        else:
            path.unlink()
            changes.append(HookChange(name, path, "removed"))
    return changes


@dataclass(frozen=True)
class HookState:
    hook: str
    path: Path
    state: str  # ours | foreign | absent
    settings: HookSettings | None
    chained: bool


def hook_states(repo: Repo) -> list[HookState]:
    states = []
    for name in HOOK_NAMES:
        path = repo.hooks_dir / name
        chained = path.with_name(name + CHAINED_SUFFIX)
        ours = _read_ours(path)
        if ours is not None:
            state = "ours"
        elif path.exists() or path.is_symlink():
            state = "foreign"
        else:
            state = "absent"
        states.append(HookState(name, path, state, ours[1] if ours else None,
                                chained.exists() or chained.is_symlink()))
    return states


# --------------------------------------------------------------------------- changed paths


def find_index_root(toplevel: Path) -> Path | None:
    """The indexed folder covering this work tree: the top level itself or an ancestor.

    An ancestor covers a submodule (or a repository inside an indexed monofolder);
    a linked worktree has its own top level and so needs its own index.
    """
    for folder in (toplevel, *toplevel.parents):
        if (folder / INDEX_DIRNAME / "manifest.json").is_file():
            return folder
    return None


def _split_z(out: bytes) -> list[str]:
    return [os.fsdecode(p) for p in out.split(b"\0") if p]


def _diff(toplevel: Path, *revs: str) -> list[str]:
    # --no-renames: a rename is a deletion plus an addition, and both sides need work.
    return _split_z(git(["diff", "--name-only", "-z", "--no-renames", *revs], toplevel))


def _rev_ok(toplevel: Path, rev: str) -> bool:
    try:
        git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], toplevel)
        return True
    except HookError:
        return False


def changed_paths(hook: str, args: Sequence[str], toplevel: Path) -> list[str] | None:
    """Paths (relative to the top level) the git operation changed; None = reindex not needed.

    Runs with the hook's environment: for pre-commit, GIT_INDEX_FILE names the index
    being committed (`git commit -a` and `git commit FILE` use a temporary one).
    """
    if hook == "pre-commit":
        return _diff(toplevel, "--cached")
    if hook == "post-commit":
        out = git(["diff-tree", "-r", "-m", "--first-parent", "--root", "--no-commit-id",
                   "--name-only", "-z", "--no-renames", "HEAD"], toplevel)
        return _split_z(out)
    if hook == "post-merge":
        squash = bool(args) and args[0] == "1"
        if squash or not _rev_ok(toplevel, "ORIG_HEAD"):
            # A squash merge moves no HEAD: its changes sit in the index and work tree.
            return _diff(toplevel, "HEAD")
        return _diff(toplevel, "ORIG_HEAD", "HEAD")
    if hook == "post-checkout":
        if len(args) < 3:
            raise HookError("post-checkout expects OLD NEW FLAG arguments")
        old, new, flag = args[0], args[1], args[2]
        if flag != "1":
            # A file checkout (`git checkout -- f`) names no files here; the next full
            # `codesearch index` sees them by their changed mtimes.
            return None
        if old == NULL_SHA or not _rev_ok(toplevel, old):
            return None  # a fresh clone or new worktree: there is no index to update yet
        return _diff(toplevel, old, new)
    raise HookError(f"unknown hook '{hook}'")


def framework_hook() -> tuple[str, list[str]]:
    """Which stage the pre-commit framework is running, from the variables it sets."""
    env = os.environ
    if "PRE_COMMIT_CHECKOUT_TYPE" in env:
        return "post-checkout", [env.get("PRE_COMMIT_FROM_REF", ""),
                                 env.get("PRE_COMMIT_TO_REF", ""), env["PRE_COMMIT_CHECKOUT_TYPE"]]
    if "PRE_COMMIT_IS_SQUASH_MERGE" in env:
        return "post-merge", [env["PRE_COMMIT_IS_SQUASH_MERGE"]]
    return "pre-commit", []


# --------------------------------------------------------------------------- log and queue


def index_dir_of(root: Path) -> Path:
    return root / INDEX_DIRNAME


def log(index_dir: Path, message: str) -> None:
    """Append one timestamped line to hook.log (rotated at 1 MB); never raises."""
    path = index_dir / LOG_NAME
    with contextlib.suppress(OSError):
        if path.exists() and path.stat().st_size > LOG_MAX_BYTES:
            os.replace(path, path.with_name(LOG_NAME + ".1"))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with path.open("a", encoding="utf-8") as handle:
            for line in message.rstrip("\n").splitlines() or [""]:
                handle.write(f"{stamp} [{os.getpid()}] {line}\n")


def enqueue(index_dir: Path, paths: Sequence[str]) -> Path:
    """Record paths to reindex; written atomically so a reader never sees half a file."""
    queue = index_dir / QUEUE_DIRNAME
    queue.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:6]}.paths"
    tmp = queue / f".{name}.tmp"
    tmp.write_bytes(b"".join(os.fsencode(p) + b"\0" for p in paths))
    final = queue / name
    os.replace(tmp, final)
    return final


def read_queue(index_dir: Path) -> tuple[list[Path], list[str]]:
    """(queue files, union of their paths, sorted)."""
    queue = index_dir / QUEUE_DIRNAME
    try:
        files = sorted(p for p in queue.iterdir() if p.suffix == ".paths")
    except OSError:
        return [], []
    paths: set[str] = set()
    kept = []
    for file in files:
        try:
            data = file.read_bytes()
        except OSError:
            continue  # taken by another drain in the meantime
        kept.append(file)
        paths.update(os.fsdecode(p) for p in data.split(b"\0") if p)
    return kept, sorted(paths)


# --------------------------------------------------------------------------- indexing


def drain(index_root: Path, embed: bool, lock_timeout: float) -> IndexReport:
    """Reindex every queued path under the index lock, then drop the queue files read.

    The queue is read while the lock is held (it is re-entrant for build_index), so
    anything queued before we got the lock is in this run.
    """
    from codesearch.core.lock import index_lock
    from codesearch.index.build import IndexOptions, build_index
    from codesearch.store.tables import IndexError_, read_manifest

    index_dir = index_dir_of(index_root)
    with index_lock(index_dir, timeout=lock_timeout):
        files, paths = read_queue(index_dir)
        manifest = read_manifest(index_dir)
        if manifest is None:
            raise IndexError_(f"no index at {index_dir}")
        # No model settings: build_index keeps the index's own (model, prompts, dim, precision).
        options = IndexOptions(paths=paths, embed=embed, lock_timeout=lock_timeout)
        report = build_index(index_root, options)
        for file in files:
            with contextlib.suppress(OSError):
                file.unlink()
    return report


def summary(report: IndexReport) -> str:
    return (
        f"{report.files_changed} changed, {report.files_deleted} removed, "
        f"{report.chunks_written} chunks written, {report.embedded} embedded, "
        f"{report.vectors_pending} pending, {report.seconds_total:.2f} s"
    )


@contextlib.contextmanager
def _drain_slot(index_dir: Path) -> Iterator[bool]:
    """One detached run may wait for the index lock at a time; True when we have the slot.

    A second one would only find the queue already taken by the first.
    """
    try:
        fd = os.open(index_dir / DRAIN_SLOT_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield True  # cannot coordinate: run anyway, the work is idempotent
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def background_waiting(index_dir: Path) -> bool:
    """Whether a detached run is already queued up behind the index lock."""
    with _drain_slot(index_dir) as free:
        return not free


def spawn_background(index_root: Path, embed: bool = True) -> int | None:
    """Start a detached `drain` that outlives the hook; its output goes to hook.log."""
    index_dir = index_dir_of(index_root)
    if background_waiting(index_dir):
        return None
    argv = [*python_command(sys.executable), "background", str(index_root),
            *([] if embed else ["--lexical-only"])]
    return launch_detached(argv, index_root, index_dir / LOG_NAME, clean_env()).pid


def background_main(index_root: Path, embed: bool = True) -> int:
    """The detached process: lexical tier of the queued paths, then all pending embeddings."""
    index_dir = index_dir_of(index_root)
    with contextlib.suppress(OSError):
        os.nice(10)  # the developer's editor and tests come first
    from codesearch.core.lock import index_lock

    with contextlib.ExitStack() as held:
        with _drain_slot(index_dir) as ours:
            if not ours:
                return 0  # another detached run is waiting and will take our queue
            try:
                # Hold the index lock before giving up the slot: a run spawned after
                # this point finds the slot free and queues up behind us.
                held.enter_context(index_lock(index_dir, timeout=BACKGROUND_LOCK_TIMEOUT))
            except Exception as err:  # noqa: BLE001 - anything is logged, nothing escapes
                log(index_dir, f"background update skipped: {err}")
                return 1
        started = time.perf_counter()
        try:
            # The lock is re-entrant on this thread, so drain() does not wait for us.
            report = drain(index_root, embed=embed, lock_timeout=BACKGROUND_LOCK_TIMEOUT)
        except Exception as err:  # noqa: BLE001
            log(index_dir, f"background update failed: {one_line(err)}\n{traceback.format_exc()}")
            return 1
    log(index_dir, f"background update done in {time.perf_counter() - started:.1f} s: {summary(report)}")
    return 0


def _known_error(err: BaseException) -> bool:
    return isinstance(err, (*USER_ERRORS, OSError))


def run_hook(
    hook: str,
    args: Sequence[str],
    settings: HookSettings,
    cwd: Path | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Body of an installed hook; returns its exit code (0 unless strict and failing)."""
    stderr = stderr or sys.stderr
    cwd = Path(cwd or Path.cwd())
    if hook == "auto":
        hook, args = framework_hook()
    try:
        toplevel = Path(git(["rev-parse", "--show-toplevel"], cwd).decode().strip())
    except HookError as err:
        return _report_failure(settings, None, f"{err}", stderr)
    index_root = find_index_root(toplevel)
    if index_root is None:
        return 0  # nothing indexed here (e.g. a new worktree): stay silent
    index_dir = index_dir_of(index_root)
    try:
        paths = changed_paths(hook, args, toplevel)
    except HookError as err:
        return _report_failure(settings, index_dir, str(err), stderr)
    if not paths:
        return 0
    prefix = toplevel.relative_to(index_root).as_posix()
    if prefix != ".":
        paths = [f"{prefix}/{p}" for p in paths]
    try:
        enqueue(index_dir, paths)
    except OSError as err:
        return _report_failure(settings, index_dir, f"cannot queue changed paths: {err}", stderr)
    large = len(paths) > FOREGROUND_MAX_PATHS
    if (settings.background or large) and not settings.strict:
        spawn_background(index_root, embed=not settings.lexical_only)
        log(index_dir, f"{hook}: {len(paths)} path(s) queued for a background update")
        return 0
    return _foreground(hook, index_root, paths, settings, stderr)


def _foreground(
    hook: str, index_root: Path, paths: Sequence[str], settings: HookSettings, stderr: TextIO
) -> int:
    from codesearch.core.lock import LockTimeout, current_holder

    index_dir = index_dir_of(index_root)
    if not settings.strict:
        holder = current_holder(index_dir)
        if holder is not None:
            # Never wait in a hook: the running indexer or the detached run takes the queue.
            log(index_dir, f"{hook}: index busy (held by {holder.describe()}), skipped; "
                           "a background run will pick the changes up")
            spawn_background(index_root, embed=not settings.lexical_only)
            return 0
    started = time.perf_counter()
    timeout = STRICT_LOCK_TIMEOUT if settings.strict else HOOK_LOCK_TIMEOUT
    try:
        embed = settings.strict and not settings.lexical_only
        report = drain(index_root, embed=embed, lock_timeout=timeout)
    except LockTimeout as err:
        if settings.strict:
            return _report_failure(settings, index_dir, str(err), stderr)
        log(index_dir, f"{hook}: index busy, skipped ({err})")
        spawn_background(index_root, embed=not settings.lexical_only)
        return 0
    except KeyboardInterrupt:
        return _report_failure(settings, index_dir, "interrupted", stderr)
    except Exception as err:  # noqa: BLE001 - a hook must not die with a traceback
        detail = "" if _known_error(err) else f"\n{traceback.format_exc()}"
        return _report_failure(settings, index_dir, one_line(err) + detail, stderr)
    log(index_dir, f"{hook}: {len(paths)} path(s) in {time.perf_counter() - started:.2f} s: "
                   f"{summary(report)}")
    if report.vectors_pending and not (settings.strict or settings.lexical_only):
        spawn_background(index_root)
    return 0


def _report_failure(
    settings: HookSettings, index_dir: Path | None, message: str, stderr: TextIO
) -> int:
    first = message.splitlines()[0] if message else "failed"
    where = ""
    if index_dir is not None:
        log(index_dir, f"error: {message}")
        where = f" (details in {index_dir / LOG_NAME})"
    if settings.strict:
        stderr.write(f"codesearch: index update failed, commit aborted (strict mode): {first}{where}\n")
        return 1
    stderr.write(f"codesearch: index not updated: {first}{where}\n")
    return 0


# --------------------------------------------------------------------------- entry point


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m codesearch.hook")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("hook", choices=[*HOOK_NAMES, "auto"])
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--background", dest="background", action="store_true", default=True)
    mode.add_argument("--foreground", dest="background", action="store_false")
    run.add_argument("--strict", action="store_true")
    run.add_argument("--lexical-only", action="store_true")
    bg = sub.add_parser("background")
    bg.add_argument("root")
    bg.add_argument("--lexical-only", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Fast entry point for installed hooks: argparse, not typer, to start quickly."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is what git passed to the hook (argparse mishandles an
    # empty remainder after `--`, so split it off by hand).
    cut = argv.index("--") if "--" in argv else len(argv)
    args = _parser().parse_args(argv[:cut])
    if args.command == "background":
        return background_main(Path(args.root), embed=not args.lexical_only)
    settings = HookSettings(background=args.background, strict=args.strict,
                            lexical_only=args.lexical_only)
    return run_hook(args.hook, argv[cut + 1:], settings)


if __name__ == "__main__":
    sys.exit(main())
