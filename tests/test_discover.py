"""File discovery on real trees: ignore files, built-in skips, symlinks, git and the walker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from codesearch.source import discover as disc
from codesearch.source.discover import (
    DiscoveryOptions,
    DiscoveryStats,
    SourceFile,
    discover,
    files_from_paths,
    find_root,
    is_binary,
    read_text,
)

needs_git = pytest.mark.skipif(not disc.git_available(), reason="git is not installed")


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's global git config and excludes out of the results."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write(root: Path, rel: str, content: str | bytes = "x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout


def walk_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make git unavailable to discovery, as on a machine without git."""
    monkeypatch.setattr(disc, "_git_ls_files", lambda *args, **kwargs: None)


def paths(root: Path, options: DiscoveryOptions = disc.DEFAULT_OPTIONS,
          stats: DiscoveryStats | None = None) -> list[str]:
    return [f.path for f in discover(root, options, stats)]


def build_tree(root: Path) -> None:
    """A tree exercising every ignore rule; `kept` files must be found, the rest not."""
    write(root, "main.py")
    write(root, "README.md", "# title\n")
    write(root, "notes.dat", "plain text is not code\n")
    write(root, ".gitignore", "*.gen.py\nlogs/\nsecret_*\n")
    write(root, "a.gen.py")
    write(root, "logs/run.py")
    write(root, "secret_key.py")
    # nested .gitignore: applies to its subtree only, and its `!` re-includes
    write(root, "pkg/.gitignore", "*.tmp.py\n!keep.gen.py\n")
    write(root, "pkg/mod.py")
    write(root, "pkg/x.tmp.py")
    write(root, "pkg/keep.gen.py")
    write(root, "pkg/other.gen.py")
    write(root, "y.tmp.py")  # outside pkg/: the nested rule must not reach it
    # .codesearchignore at the root and deeper
    write(root, ".codesearchignore", "fixtures/\n")
    write(root, "fixtures/big_case.py")
    write(root, "lib/.codesearchignore", "*_pb2.py\n!keep_pb2.py\n")
    write(root, "lib/api_pb2.py")
    write(root, "lib/keep_pb2.py")
    write(root, "lib/core.go", "package lib\n")
    # built-in skips
    write(root, "node_modules/left-pad/index.js", "module.exports = 1\n")
    write(root, "web/node_modules/dep/index.js", "module.exports = 1\n")
    write(root, "web/app.ts", "export const a = 1\n")
    write(root, ".venv/lib/site.py")
    write(root, "env2/pyvenv.cfg", "home = /usr\n")
    write(root, "env2/lib/site.py")
    write(root, "src/__pycache__/mod.py")
    write(root, "rust/Cargo.toml", "[package]\n")
    write(root, "rust/target/debug/build.rs", "fn main() {}\n")
    write(root, "rust/src/lib.rs", "fn main() {}\n")
    write(root, "pyproject.toml", "[project]\n")
    write(root, "build/lib/copy.py")
    write(root, "dist/bundle.js", "var a = 1\n")
    # a source package named `build` (pip has one): no manifest beside it, so kept
    write(root, "src/tools/build/steps.py")
    write(root, "x.egg-info/thing.py")
    write(root, ".mypy_cache/3.11/cache.py")


KEPT = [
    "README.md",
    "lib/core.go",
    "lib/keep_pb2.py",
    "main.py",
    "pkg/keep.gen.py",
    "pkg/mod.py",
    "rust/src/lib.rs",
    "src/tools/build/steps.py",
    "web/app.ts",
    "y.tmp.py",
]


def test_ignore_rules_and_builtin_skips_walker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    walk_only(monkeypatch)
    build_tree(tmp_path)
    stats = DiscoveryStats()
    assert paths(tmp_path, stats=stats) == sorted(KEPT)
    assert stats.files == len(KEPT)
    # own-rule exclusions, one per entry: fixtures/, lib/api_pb2.py, node_modules x2,
    # .venv, env2, __pycache__, rust/target, build, dist, x.egg-info, .mypy_cache
    assert stats.skipped_ignored == 12
    assert stats.skipped_other >= 1  # notes.dat and the ignore files themselves


@needs_git
def test_git_and_walker_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_tree(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "main.py", "pkg/mod.py")  # some tracked, the rest untracked
    git(tmp_path, "commit", "-q", "-m", "init")
    assert disc._git_ls_files(tmp_path), "git must answer, or this compares the walker with itself"
    git_stats = DiscoveryStats()
    from_git = paths(tmp_path, stats=git_stats)
    walk_only(monkeypatch)
    walk_stats = DiscoveryStats()
    from_walk = paths(tmp_path, stats=walk_stats)
    assert from_git == from_walk == sorted(KEPT)
    assert git_stats == walk_stats


@needs_git
def test_git_listing_is_used(tmp_path: Path) -> None:
    """A file ignored by git but tracked (force-added) is part of the repository."""
    write(tmp_path, ".gitignore", "*.py\n")
    write(tmp_path, "tracked.py")
    write(tmp_path, "untracked.py")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-f", "tracked.py")
    assert paths(tmp_path) == ["tracked.py"]


def test_git_info_exclude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, ".git/info/exclude", "local_*.py\n")
    write(tmp_path, ".git/HEAD", "ref: refs/heads/main\n")
    write(tmp_path, "local_scratch.py")
    write(tmp_path, "app.py")
    walk_only(monkeypatch)
    assert paths(tmp_path) == ["app.py"]


@needs_git
def test_git_info_exclude_with_git(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    write(tmp_path, ".git/info/exclude", "local_*.py\n")
    write(tmp_path, "local_scratch.py")
    write(tmp_path, "app.py")
    assert paths(tmp_path) == ["app.py"]


@needs_git
def test_root_in_subfolder_of_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ignore files above the root still apply, and paths are relative to the root."""
    git(tmp_path, "init", "-q")
    write(tmp_path, ".gitignore", "*.skip.py\n")
    write(tmp_path, "sub/a.py")
    write(tmp_path, "sub/b.skip.py")
    write(tmp_path, "top.py")
    assert paths(tmp_path / "sub") == ["a.py"]
    walk_only(monkeypatch)
    assert paths(tmp_path / "sub") == ["a.py"]


@needs_git
def test_explicit_root_inside_ignored_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(tmp_path, "init", "-q")
    write(tmp_path, ".gitignore", "vendor/\n*.log.py\n")
    write(tmp_path, "vendor/lib/a.py")
    assert paths(tmp_path) == []
    assert paths(tmp_path / "vendor") == ["lib/a.py"]
    walk_only(monkeypatch)
    assert paths(tmp_path / "vendor") == ["lib/a.py"]


def test_extra_ignores_and_docs_option(tmp_path: Path) -> None:
    write(tmp_path, "a.py")
    write(tmp_path, "gen/b.py")
    write(tmp_path, "guide.md", "# guide\n")
    write(tmp_path, "api.rst", "API\n===\n")
    assert paths(tmp_path) == ["a.py", "api.rst", "gen/b.py", "guide.md"]
    options = DiscoveryOptions(include_docs=False, extra_ignores=("gen/",))
    stats = DiscoveryStats()
    assert paths(tmp_path, options, stats) == ["a.py"]
    assert stats.skipped_ignored == 1
    assert stats.skipped_other == 2


def test_binary_and_large_files_skipped_and_counted(tmp_path: Path) -> None:
    write(tmp_path, "ok.py")
    write(tmp_path, "blob.py", b"x = 1\n\x00\x01\x02")
    write(tmp_path, "huge.py", "# " + "a" * 2000 + "\n")
    write(tmp_path, "huge.bin", b"a" * 5000)  # unknown type: not counted as a large source
    stats = DiscoveryStats()
    found = paths(tmp_path, DiscoveryOptions(max_file_bytes=1000), stats)
    assert found == ["ok.py"]
    assert (stats.skipped_binary, stats.skipped_large, stats.files) == (1, 1, 1)
    assert stats.skipped_other == 1


def test_is_binary() -> None:
    assert is_binary(b"abc\x00def")
    assert not is_binary(b"def f():\n    return 1\n")
    assert not is_binary(b"")
    assert not is_binary("x = 1\n".encode("utf-16"))  # a BOM marks UTF-16 text
    assert not is_binary(b"a" * 9000 + b"\x00")  # beyond the sniff window


def test_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    root = tmp_path / "repo"
    write(outside, "secret.py")
    write(root, "real.py")
    (root / "inside_link.py").symlink_to(root / "real.py")
    (root / "escape.py").symlink_to(outside / "secret.py")
    (root / "escape_dir").symlink_to(outside, target_is_directory=True)
    (root / "dangling.py").symlink_to(root / "nope.py")
    (root / "loop_a.py").symlink_to(root / "loop_b.py")
    (root / "loop_b.py").symlink_to(root / "loop_a.py")
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)  # a directory loop
    stats = DiscoveryStats()
    found = list(discover(root, stats=stats))
    assert [f.path for f in found] == ["inside_link.py", "real.py"]
    link = found[0]
    assert link.abspath == root / "inside_link.py"
    assert link.size == (root / "real.py").stat().st_size
    # escape.py, escape_dir, dangling.py, loop_a.py, loop_b.py, sub/up
    assert stats.skipped_symlink == 6


@needs_git
def test_symlinks_same_with_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    root = tmp_path / "repo"
    write(outside, "secret.py")
    write(root, "real.py")
    (root / "escape.py").symlink_to(outside / "secret.py")
    (root / "loop").symlink_to(root, target_is_directory=True)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git_stats = DiscoveryStats()
    assert paths(root, stats=git_stats) == ["real.py"]
    walk_only(monkeypatch)
    walk_stats = DiscoveryStats()
    assert paths(root, stats=walk_stats) == ["real.py"]
    assert git_stats == walk_stats
    assert git_stats.skipped_symlink == 2


@needs_git
def test_submodule_files_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = tmp_path / "inner_src"
    write(inner, "lib.py")
    git(inner, "init", "-q")
    git(inner, "add", "-A")
    git(inner, "commit", "-q", "-m", "inner")
    root = tmp_path / "outer"
    write(root, "app.py")
    git(root, "init", "-q")
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "deps/inner")
    assert paths(root) == ["app.py", "deps/inner/lib.py"]
    assert files_from_paths(root, ["deps/inner/lib.py"])[0][0].path == "deps/inner/lib.py"
    walk_only(monkeypatch)
    assert paths(root) == ["app.py", "deps/inner/lib.py"]


def test_unreadable_file_counted(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    write(tmp_path, "ok.py")
    locked = write(tmp_path, "locked.py")
    locked.chmod(0)
    stats = DiscoveryStats()
    assert paths(tmp_path, stats=stats) == ["ok.py"]
    assert stats.skipped_unreadable == 1


def test_shebang_scripts(tmp_path: Path) -> None:
    write(tmp_path, "bin/tool", "#!/usr/bin/env python3\nprint('hi')\n")
    write(tmp_path, "bin/run", "\ufeff#!/bin/bash\necho hi\n")
    write(tmp_path, "bin/data", "just words\n")
    write(tmp_path, "bin/elf", b"\x7fELF\x00\x00")
    found = {f.path: f.language for f in discover(tmp_path)}
    assert found == {"bin/run": "bash", "bin/tool": "python"}


def test_read_text(tmp_path: Path) -> None:
    bom = write(tmp_path, "bom.py", "\ufeffx = 1\r\ny = 2\r\n")
    latin = write(tmp_path, "latin.py", "name = 'caf\u00e9'\n".encode("latin-1"))
    utf16 = write(tmp_path, "wide.py", "z = 3\n".encode("utf-16"))
    files = {f.path: f for f in discover(tmp_path)}
    assert set(files) == {"bom.py", "latin.py", "wide.py"}
    assert read_text(files["bom.py"]) == ("x = 1\r\ny = 2\r\n", False)
    text, had_errors = read_text(files["latin.py"])
    # Bytes that are not UTF-8 read as Windows-1252: the name keeps its letter.
    assert had_errors and text == "name = 'caf\u00e9'\n"
    assert read_text(files["wide.py"]) == ("z = 3\n", False)
    bom.unlink()
    latin.unlink()
    utf16.unlink()
    with pytest.raises(OSError):
        read_text(files["bom.py"])


def test_source_file_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "pkg/mod.py", "x = 1\n")
    (found,) = discover(tmp_path)
    st = path.stat()
    assert found == SourceFile("pkg/mod.py", tmp_path / "pkg/mod.py", st.st_size, st.st_mtime_ns, "python")


def test_bad_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        discover(tmp_path / "missing")
    write(tmp_path, "f.py")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        discover(tmp_path / "f.py")


def test_empty_folder(tmp_path: Path) -> None:
    stats = DiscoveryStats()
    assert paths(tmp_path, stats=stats) == []
    assert stats == DiscoveryStats()


@pytest.mark.parametrize("use_git", [True, False])
def test_files_from_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_git: bool) -> None:
    if use_git and not disc.git_available():
        pytest.skip("git is not installed")
    write(tmp_path, ".gitignore", "ignored.py\n")
    write(tmp_path, ".codesearchignore", "gen/\n")
    write(tmp_path, "a.py")
    write(tmp_path, "b.py")
    write(tmp_path, "ignored.py")
    write(tmp_path, "gen/c.py")
    write(tmp_path, "node_modules/d.js", "var d\n")
    write(tmp_path, "blob.py", b"\x00\x01")
    write(tmp_path, "notes.dat", "text\n")
    if use_git:
        git(tmp_path, "init", "-q")
        git(tmp_path, "add", "a.py", "b.py")
    else:
        walk_only(monkeypatch)
    (tmp_path / "b.py").unlink()  # deleted: tracked by git but gone from disk
    asked = ["a.py", "./b.py", "ignored.py", "gen/c.py", "node_modules/d.js", "blob.py",
             "notes.dat", str(tmp_path / "a.py"), "../escape.py", "/elsewhere/x.py"]
    files, removed = files_from_paths(tmp_path, asked, DiscoveryOptions())
    assert [f.path for f in files] == ["a.py"]
    assert files[0].language == "python"
    assert removed == ["b.py", "blob.py", "gen/c.py", "ignored.py", "node_modules/d.js", "notes.dat"]
    assert files_from_paths(tmp_path, [], DiscoveryOptions()) == ([], [])


def test_files_from_paths_matches_discover(tmp_path: Path) -> None:
    build_tree(tmp_path)
    every = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    files, removed = files_from_paths(tmp_path, every, DiscoveryOptions())
    assert [f.path for f in files] == sorted(KEPT)
    assert set(removed) == set(every) - set(KEPT)


def test_find_root(tmp_path: Path) -> None:
    (tmp_path / "proj" / ".codesearch").mkdir(parents=True)
    deep = tmp_path / "proj" / "a" / "b"
    deep.mkdir(parents=True)
    write(deep, "f.py")
    assert find_root(deep) == tmp_path / "proj"
    assert find_root(deep / "f.py") == tmp_path / "proj"
    assert find_root(tmp_path / "proj") == tmp_path / "proj"
    assert find_root(tmp_path) is None


def test_many_files_are_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2,000 files across 200 folders with ignore files at several levels: well under 2 s."""
    import time

    for d in range(200):
        write(tmp_path, f"pkg{d}/.gitignore", "*.tmp.py\n")
        for i in range(10):
            write(tmp_path, f"pkg{d}/m{i}.py")
    walk_only(monkeypatch)
    start = time.perf_counter()
    assert len(paths(tmp_path)) == 2000
    assert time.perf_counter() - start < 2.0
