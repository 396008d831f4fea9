"""Find the files of a folder or repository that are worth indexing.

Two listing strategies give the same answer on the same tree:

* inside a git work tree, `git ls-files --cached --others --exclude-standard`
  lists tracked and untracked-but-not-ignored files (git applies every
  `.gitignore`, `.git/info/exclude` and the user's global excludes itself);
* otherwise (no git, not a repository, git refuses the folder) a walker applies
  `.gitignore` files at every level and `.git/info/exclude` with `pathspec`.

Both are then filtered by codesearch's own rules: `.codesearchignore` files (gitignore
syntax, any level), built-in skips (VCS folders, `node_modules`, virtualenvs, caches,
build output), symlinks that leave the root or loop, files over the size limit,
binary files and files whose language is unknown.

Directory symlinks are never followed: their target, when inside the root, is indexed
under its own path, so following them would only duplicate files (and could loop).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

import pathspec

from codesearch.core.text import decode_bytes
from codesearch.core.types import ASIDE_DIRNAME, INDEX_DIRNAME, REBUILD_DIRNAME
from codesearch.source import languages
from codesearch.source.languages import detect_language

IGNORE_FILE_NAME = ".codesearchignore"
HEAD_BYTES = 8192  # binary sniff window, the same one git uses
# Languages whose chunks are content_type "docs" (skipped when include_docs is off).
DOC_LANGUAGES = frozenset(getattr(languages, "DOC_LANGUAGES", ("markdown", "rst")))

# Skipped wherever they appear: VCS metadata, our own index, dependency trees,
# interpreter and tool caches. None of these names is plausible for source folders.
SKIP_DIR_NAMES = frozenset({
    ".git", ".hg", ".svn", ".bzr", INDEX_DIRNAME, REBUILD_DIRNAME, ASIDE_DIRNAME,
    "node_modules", "bower_components", "__pycache__", ".venv", "venv",
    ".tox", ".nox", ".eggs", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
    ".next", ".nuxt", ".svelte-kit", ".parcel-cache", ".turbo", ".gradle",
})
UNCOUNTED_DIR_NAMES = frozenset({".git", ".hg", ".svn", ".bzr", INDEX_DIRNAME, REBUILD_DIRNAME,
                                 ASIDE_DIRNAME})
# A folder holding one of these files is a virtualenv or a tagged cache (the Cache
# Directory Tagging spec, written by cargo, pytest, mypy, ruff ...).
SKIP_DIR_MARKERS = ("pyvenv.cfg", "CACHEDIR.TAG")
# `build`, `dist` and `target` are also ordinary package names (pip has a source
# package `operations/build/`), so they are skipped only beside a project manifest,
# which is where build tools put their output.
BUILD_DIR_MANIFESTS: dict[str, tuple[str, ...]] = {
    "build": ("setup.py", "setup.cfg", "pyproject.toml", "package.json", "CMakeLists.txt",
              "meson.build", "build.gradle", "build.gradle.kts", "pom.xml", "Cargo.toml"),
    "dist": ("setup.py", "setup.cfg", "pyproject.toml", "package.json"),
    "target": ("Cargo.toml", "pom.xml", "build.sbt"),
}

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Variables git sets for hooks; they would point `git ls-files` at the hook's
# repository state instead of the folder we are asked about.
GIT_LOCATION_VARS = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE",
)


@dataclass(frozen=True)
class SourceFile:
    """One file to index."""

    path: str  # posix, relative to root
    abspath: Path
    size: int
    mtime_ns: int
    language: str | None  # from codesearch.source.languages.detect_language(path, first_line)


@dataclass
class DiscoveryStats:
    """Counts for the summary line; updated while `discover` is iterated."""

    files: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    # Entries excluded by codesearch's own rules (built-in skips, .codesearchignore,
    # extra_ignores); an excluded folder counts once. Gitignored files are not counted:
    # git does not report them, and counting them would make the two listings disagree.
    skipped_ignored: int = 0
    skipped_unreadable: int = 0
    skipped_symlink: int = 0  # leaves the root, dangling, loops, or points at a folder
    skipped_other: int = 0  # not source: unknown language, or docs when include_docs is off
    # Names that are not UTF-8 (a Latin-1 `caf\xe9.py`): an index stores paths as text, and
    # a path it cannot give back exactly would name a file that is not there.
    skipped_bad_name: int = 0
    # Files and folders (relative paths) that exist but could not be read: what the index
    # holds under them is kept, not removed as if they were gone.
    unreadable: list[str] = field(default_factory=list)

    def may_hold(self, path: str) -> bool:
        """Whether `path` may exist unseen, inside something unreadable."""
        return any(path == u or path.startswith(u + "/") for u in self.unreadable)


@dataclass(frozen=True)
class DiscoveryOptions:
    max_file_bytes: int = 1_000_000
    include_docs: bool = True  # markdown/rst files are discovered (content_type docs)
    extra_ignores: tuple[str, ...] = ()  # gitignore-syntax patterns relative to the root


DEFAULT_OPTIONS = DiscoveryOptions()


# --------------------------------------------------------------------------- ignore rules


@dataclass(frozen=True)
class _Level:
    """The patterns of one ignore file, and how to express a root-relative path for them."""

    spec: pathspec.GitIgnoreSpec
    strip: str  # prefix removed from the root-relative path (level below the root)
    add: str  # prefix added to it (level above the root: the root's path from there)

    def check(self, rel: str) -> bool | None:
        """True: ignored, False: re-included by a `!` pattern, None: no pattern matched."""
        return self.spec.check_file(self.add + rel[len(self.strip):]).include


def _read_spec(path: str | Path) -> pathspec.GitIgnoreSpec | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return spec if len(spec) else None


def _find_git_top(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def _git_common_dir(top: Path) -> Path | None:
    """The folder holding `info/exclude`, for plain repositories and linked worktrees."""
    dot_git = top / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        first = dot_git.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    git_dir = (top / first[len("gitdir:"):].strip()).resolve()
    try:
        common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    return (git_dir / common).resolve()


class _Rules:
    """Decides whether a root-relative path is excluded, loading ignore files lazily.

    Two independent stacks: git's (only when we list files ourselves) and
    codesearch's. A path is excluded when either stack excludes it, so a `!` line in a
    `.codesearchignore` re-includes only what another `.codesearchignore` line excluded,
    exactly as it does when git lists the files.
    """

    def __init__(self, root: Path, options: DiscoveryOptions, git_rules: bool) -> None:
        self.root = root
        self._root = str(root)  # string paths: pathlib costs more than the syscalls here
        self.git_rules = git_rules
        self._dirs: dict[str, tuple[str, str] | None] = {}
        self._levels: dict[str, tuple[list[_Level], list[_Level]]] = {}
        self._outer_git: list[_Level] = self._outer_git_levels() if git_rules else []
        extra = pathspec.GitIgnoreSpec.from_lines(options.extra_ignores)
        # extra_ignores act as lines appended to the root's .codesearchignore.
        self._extra: list[_Level] = [_Level(extra, "", "")] if len(extra) else []

    def _outer_git_levels(self) -> list[_Level]:
        """info/exclude and the .gitignore files between the repository top and the root."""
        top = _find_git_top(self.root)
        if top is None:
            return []
        root_parts = self.root.relative_to(top).parts
        found: list[tuple[int, pathspec.GitIgnoreSpec]] = []  # (depth of base below top, spec)
        common = _git_common_dir(top)
        if common is not None:
            spec = _read_spec(common / "info" / "exclude")
            if spec is not None:
                found.append((0, spec))
        for depth in range(len(root_parts)):
            spec = _read_spec(top.joinpath(*root_parts[:depth]) / ".gitignore")
            if spec is not None:
                found.append((depth, spec))
        levels: list[_Level] = []
        for depth, spec in found:
            below = root_parts[depth:]
            # A root its enclosing repository ignores was still named explicitly; the
            # outer rules would swallow everything below it, so they are dropped.
            for end in range(1, len(below) + 1):
                if spec.check_file("/".join(below[:end]) + "/").include:
                    return []
            levels.append(_Level(spec, "", "/".join(below) + "/" if below else ""))
        return levels

    def _levels_of(self, directory: str) -> tuple[list[_Level], list[_Level]]:
        """All git and codesearch levels that apply to entries of `directory`, outermost first."""
        cached = self._levels.get(directory)
        if cached is not None:
            return cached
        if directory:
            parent_git, parent_own = self._levels_of(_parent(directory))
        else:
            parent_git, parent_own = self._outer_git, []
        strip = directory + "/" if directory else ""
        git, own = list(parent_git), list(parent_own)
        if self.git_rules:
            spec = _read_spec(os.path.join(self._root, directory, ".gitignore"))
            if spec is not None:
                git.append(_Level(spec, strip, ""))
        spec = _read_spec(os.path.join(self._root, directory, IGNORE_FILE_NAME))
        if spec is not None:
            own.append(_Level(spec, strip, ""))
        if not directory:
            own.extend(self._extra)
        self._levels[directory] = (git, own)
        return git, own

    def _verdict(self, rel: str, is_dir: bool) -> str | None:
        """Why this entry itself is excluded, ignoring its ancestors.

        "git": a git ignore rule; "own": codesearch's rules (counted as skipped_ignored);
        "silent": VCS metadata and the index folder (not counted).
        """
        name = rel.rsplit("/", 1)[-1]
        git, own = self._levels_of(_parent(rel))
        key = rel + "/" if is_dir else rel
        if _last_decision(git, key):
            return "git"
        if is_dir and name in UNCOUNTED_DIR_NAMES:
            return "silent"  # metadata, not content: git never lists it either
        if is_dir and self._builtin_skip(rel, name):
            return "own"
        if _last_decision(own, key):
            return "own"
        return None

    def _builtin_skip(self, rel: str, name: str) -> bool:
        if name in SKIP_DIR_NAMES or name.endswith(".egg-info"):
            return True
        directory = os.path.join(self._root, rel)
        if any(os.path.exists(os.path.join(directory, m)) for m in SKIP_DIR_MARKERS):
            return True
        manifests = BUILD_DIR_MANIFESTS.get(name)
        if manifests is None:
            return False
        parent = os.path.dirname(directory)
        return any(os.path.exists(os.path.join(parent, m)) for m in manifests)

    def excluded_dir(self, rel: str) -> tuple[str, str] | None:
        """(reason, topmost excluded folder) when this folder or an ancestor is excluded."""
        if not rel:
            return None  # the root was named explicitly: never ignored
        if rel in self._dirs:
            return self._dirs[rel]
        result = self.excluded_dir(_parent(rel))
        if result is None:
            reason = self._verdict(rel, is_dir=True)
            result = (reason, rel) if reason is not None else None
        self._dirs[rel] = result
        return result

    def excluded_file(self, rel: str) -> tuple[str, str] | None:
        """(reason, topmost excluded entry) when this file or a folder above it is excluded."""
        parent = _parent(rel)
        above = self.excluded_dir(parent) if parent else None
        if above is not None:
            return above
        if rel.rsplit("/", 1)[-1] in UNCOUNTED_DIR_NAMES:  # a worktree's or submodule's .git file
            return "silent", rel
        reason = self._verdict(rel, is_dir=False)
        return (reason, rel) if reason is not None else None


def _last_decision(levels: list[_Level], rel: str) -> bool:
    decision: bool | None = None
    for level in levels:
        result = level.check(rel)
        if result is not None:
            decision = result
    return bool(decision)


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


# --------------------------------------------------------------------------- listing


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in GIT_LOCATION_VARS}
    env["GIT_LITERAL_PATHSPECS"] = "1"  # paths are file names, never globs
    return env


def _git_ls_files(directory: Path, paths: list[str] | None = None) -> list[str] | None:
    """Files git lists under `directory` (relative to it), or None when git cannot answer."""
    cmd = ["git", "-c", "core.quotepath=off", "ls-files", "--cached", "--others",
           "--exclude-standard", "-z"]
    stdin: bytes | None = None
    if paths is not None:
        cmd += ["--pathspec-from-file=-", "--pathspec-file-nul"]
        stdin = b"".join(os.fsencode(p) + b"\0" for p in paths)
    try:
        proc = subprocess.run(cmd, cwd=directory, input=stdin, capture_output=True,
                              env=_git_env(), timeout=300, check=False)
    except (OSError, subprocess.SubprocessError):
        return None  # git missing, or the folder vanished
    if proc.returncode != 0:
        return None  # not a work tree, or a repository git refuses (safe.directory)
    return [os.fsdecode(p) for p in proc.stdout.split(b"\0") if p]


def _git_candidates(root: Path, rules: _Rules, stats: DiscoveryStats) -> list[str] | None:
    listed = _git_ls_files(root)
    if not listed:
        # Also when git lists nothing: the root may sit in a folder its enclosing
        # repository ignores, and an explicitly named root is never ignored.
        return None
    out: set[str] = set()
    counted: set[str] = set()
    pending = [("", listed)]
    while pending:
        prefix, names = pending.pop()
        for name in names:
            rel = prefix + name.rstrip("/")
            full = os.path.join(root, rel)
            # Submodules and untracked nested repositories are listed as one folder
            # entry; list their own files so the result matches the walker's.
            nested = os.path.isdir(full) and not os.path.islink(full)
            hit = rules.excluded_dir(rel) if nested else rules.excluded_file(rel)
            if hit is not None:
                if hit[0] == "own" and hit[1] not in counted:
                    counted.add(hit[1])
                    stats.skipped_ignored += 1
                continue
            if not nested:
                out.add(rel)
            elif os.path.exists(os.path.join(full, ".git")):
                inner = _git_ls_files(Path(full))
                if inner:
                    pending.append((rel + "/", inner))
    return sorted(out)


def _walk_candidates(root: Path, rules: _Rules, stats: DiscoveryStats) -> list[str]:
    out: list[str] = []
    stack = [""]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(os.path.join(root, directory)) as it:
                entries = list(it)
        except FileNotFoundError:
            continue  # removed while we walked
        except OSError:
            stats.skipped_unreadable += 1
            stats.unreadable.append(directory)
            continue
        for entry in entries:
            rel = f"{directory}/{entry.name}" if directory else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            hit = rules.excluded_dir(rel) if is_dir else rules.excluded_file(rel)
            if hit is not None:
                if hit[0] == "own":
                    stats.skipped_ignored += 1
                continue
            if is_dir:
                stack.append(rel)
            else:
                out.append(rel)
    out.sort()
    return out


# --------------------------------------------------------------------------- per-file rules


class _Examiner:
    """Applies the per-file rules (symlinks, size, language, binary) to one candidate."""

    def __init__(self, root: Path, options: DiscoveryOptions, stats: DiscoveryStats) -> None:
        self.root = str(root)
        self.real_root = root.resolve()
        self.options = options
        self.stats = stats

    def examine(self, rel: str) -> SourceFile | None:
        """The file, or None (counted in stats) when a rule rejects it or it vanished."""
        if not _utf8_name(rel):
            self.stats.skipped_bad_name += 1
            return None
        full = os.path.join(self.root, rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return None
        except OSError:
            self.stats.skipped_unreadable += 1
            self.stats.unreadable.append(rel)
            return None
        if stat.S_ISLNK(st.st_mode):
            target = self._symlink_target(full)
            if target is None:
                self.stats.skipped_symlink += 1
                return None
            st = target
        elif not stat.S_ISREG(st.st_mode):
            return None  # sockets, fifos, devices: never source
        return self._check_content(rel, full, st)

    def _symlink_target(self, full: str) -> os.stat_result | None:
        """The target's stat when it is a regular file inside the root; None otherwise."""
        try:
            real = Path(full).resolve(strict=True)  # raises on dangling links and loops
            st = os.stat(real)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(self.real_root) or not stat.S_ISREG(st.st_mode):
            return None
        return st

    def _check_content(self, rel: str, full: str, st: os.stat_result) -> SourceFile | None:
        language = _language_by_name(rel.rsplit("/", 1)[-1])
        if language is not None and self._unwanted_docs(language):
            self.stats.skipped_other += 1
            return None
        if st.st_size > self.options.max_file_bytes:
            if language is None:
                self.stats.skipped_other += 1  # a big file of unknown type is data, not code
            else:
                self.stats.skipped_large += 1
            return None
        try:
            with open(full, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except FileNotFoundError:
            return None
        except OSError:
            self.stats.skipped_unreadable += 1
            self.stats.unreadable.append(rel)
            return None
        if language is None:
            language = detect_language(rel, _first_line(head))
            if language is None or self._unwanted_docs(language):
                self.stats.skipped_other += 1
                return None
        if is_binary(head):
            self.stats.skipped_binary += 1
            return None
        self.stats.files += 1
        return SourceFile(rel, Path(full), st.st_size, st.st_mtime_ns, language)

    def _unwanted_docs(self, language: str) -> bool:
        return language in DOC_LANGUAGES and not self.options.include_docs


def _utf8_name(rel: str) -> bool:
    try:
        rel.encode("utf-8")  # undecodable bytes became lone surrogates (os.fsdecode)
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=8192)
def _language_by_name(name: str) -> str | None:
    """detect_language without a shebang looks only at the file name (extension or
    well-known name), so it is cached by name: it dominated the walk on large trees."""
    return detect_language(name)


def _first_line(head: bytes) -> str:
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM):]
    if not head.startswith(b"#!"):
        return ""  # only a shebang can name a language; skip decoding data files
    return head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")


# --------------------------------------------------------------------------- public API


def is_binary(head: bytes) -> bool:
    """True when the first bytes contain a NUL (git's heuristic); UTF-16 text with a BOM is text."""
    if head.startswith(UTF16_BOMS):
        return False
    return b"\0" in head[:HEAD_BYTES]


def read_text(file: SourceFile) -> tuple[str, bool]:
    """(text, had_decode_errors): BOM stripped; OSError if unreadable. Bytes that are not
    UTF-8 are read as Windows-1252, the rest of the file as UTF-8 still (core.text).

    Line endings are left as they are on disk so line numbers match the file.
    """
    data = file.abspath.read_bytes()
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16"), False
        except UnicodeDecodeError:
            return data.decode("utf-16", errors="replace"), True
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    return decode_bytes(data)


def _check_root(root: Path) -> Path:
    root = Path(root).absolute()
    if not root.exists():
        raise FileNotFoundError(f"no such folder: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    return root


def discover(
    root: Path,
    options: DiscoveryOptions = DEFAULT_OPTIONS,
    stats: DiscoveryStats | None = None,
) -> Iterator[SourceFile]:
    """Indexable files under `root`, sorted by path; `stats` is filled in as it is iterated.

    Raises FileNotFoundError / NotADirectoryError (one-line messages) for a bad root.
    """
    root = _check_root(root)
    stats = stats if stats is not None else DiscoveryStats()
    candidates = _git_candidates(root, _Rules(root, options, git_rules=False), stats)
    if candidates is None:
        candidates = _walk_candidates(root, _Rules(root, options, git_rules=True), stats)
    examiner = _Examiner(root, options, stats)
    return _examine_all(examiner, candidates)


def _examine_all(examiner: _Examiner, candidates: list[str]) -> Iterator[SourceFile]:
    for rel in candidates:
        found = examiner.examine(rel)
        if found is not None:
            yield found


def files_from_paths(
    root: Path,
    paths: Iterable[str],
    options: DiscoveryOptions = DEFAULT_OPTIONS,
    stats: DiscoveryStats | None = None,
) -> tuple[list[SourceFile], list[str]]:
    """(files that exist and pass the rules, paths that are gone or now excluded).

    For reindexing only what a commit touched. `paths` are relative to `root` (or
    absolute); paths outside the root are dropped. Both lists are sorted by path.
    """
    root = _check_root(root)
    stats = stats if stats is not None else DiscoveryStats()
    wanted = sorted({p for p in (_relative(root, raw) for raw in paths) if p is not None})
    if not wanted:
        return [], []
    kept = _git_filter(root, wanted)
    if kept is not None:
        candidates = [p for p in wanted if p in kept]
        rules = _Rules(root, options, git_rules=False)
    else:
        candidates = wanted
        rules = _Rules(root, options, git_rules=True)
    examiner = _Examiner(root, options, stats)
    files: list[SourceFile] = []
    for rel in candidates:
        if rules.excluded_file(rel) is not None:
            continue
        found = examiner.examine(rel)
        if found is not None:
            files.append(found)
    found_paths = {f.path for f in files}
    return files, [p for p in wanted if p not in found_paths and not stats.may_hold(p)]


def _git_filter(root: Path, paths: list[str]) -> set[str] | None:
    """The paths git would list (tracked, or untracked and not ignored); None without git.

    Paths inside submodules or nested repositories are asked of that repository.
    """
    listed = _git_ls_files(root, paths)
    if listed is None:
        return None
    kept = set(listed)
    by_repo: dict[str, list[str]] = {}
    for rel in paths:
        if rel not in kept:
            repo = _nested_repo(root, rel)
            if repo is not None:
                by_repo.setdefault(repo, []).append(rel[len(repo) + 1:])
    for repo, inner in by_repo.items():
        found = _git_filter(root / repo, inner) or set()
        kept.update(f"{repo}/{p}" for p in found)
    return kept


def _nested_repo(root: Path, rel: str) -> str | None:
    """The deepest folder strictly between root and `rel` that is a repository of its own."""
    parts = rel.split("/")[:-1]
    for depth in range(len(parts), 0, -1):
        folder = "/".join(parts[:depth])
        if (root / folder / ".git").exists():
            return folder
    return None


def _relative(root: Path, raw: str) -> str | None:
    path = PurePosixPath(raw.replace(os.sep, "/"))
    if path.is_absolute():
        try:
            path = PurePosixPath(Path(raw).absolute().relative_to(root).as_posix())
        except ValueError:
            return None
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding a `.codesearch` index folder."""
    start = Path(start).absolute()
    if start.is_file():
        start = start.parent
    for directory in (start, *start.parents):
        if (directory / INDEX_DIRNAME).is_dir():
            return directory
    return None


@lru_cache(maxsize=1)
def git_available() -> bool:
    """Whether a git executable runs here (tests use it to skip git-only cases)."""
    try:
        return subprocess.run(["git", "--version"], capture_output=True, check=False).returncode == 0
    except OSError:
        return False
