"""Git hooks on real repositories: commits, merges and checkouts go through real `git`,
which runs the installed sh scripts, which run `python -m codesearch.hook`.

Most tests use `--foreground --lexical-only` so the index is updated inside the hook
without loading the model; one test covers the default background mode end to end.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codesearch.cli.hook import hook_app
from codesearch.index.build import IndexOptions, build_index
from codesearch.index.hooks import (
    CHAINED_SUFFIX,
    LOG_NAME,
    QUEUE_DIRNAME,
    HookSettings,
    changed_paths,
    find_repo,
    framework_hook,
    hook_script,
    parse_script,
    read_queue,
)
from codesearch.search.searcher import Searcher, SearchOptions

pytestmark = pytest.mark.skipif(
    subprocess.run(["git", "--version"], capture_output=True).returncode != 0, reason="needs git"
)
ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
FOREGROUND = ["--foreground", "--lexical-only"]


@pytest.fixture()
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Isolate git from the machine's global config (a global core.hooksPath, signing...)."""
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    return dict(os.environ)


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "commit.gpgsign", "false")
    for rel, text in (files or {
        "src/app.py": "def load_settings(path):\n    return open(path).read()\n",
        "src/util.py": "def clamp_value(x, lo, hi):\n    return max(lo, min(hi, x))\n",
    }).items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "initial")
    return path


def index_lexical(root: Path) -> None:
    build_index(root, IndexOptions(embed=False))


def text_symbols(root: Path, query: str) -> set[str]:
    result = Searcher(root / ".codesearch").search(query, SearchOptions(mode="text", k=20))
    return {hit.symbol for hit in result.hits}


def indexed_paths(root: Path) -> set[str]:
    return set(Searcher(root / ".codesearch").catalog.paths)


def install(path: Path, *args: str) -> str:
    result = runner.invoke(hook_app, ["install", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.output


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------- install


def test_install_writes_default_hooks_and_commit_updates_index(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    index_lexical(repo)
    output = install(repo, *FOREGROUND)
    hooks = repo / ".git" / "hooks"
    for name in ("pre-commit", "post-merge", "post-checkout"):
        script = hooks / name
        assert script.stat().st_mode & stat.S_IXUSR, name
        assert parse_script(script.read_text()) == (name, HookSettings(False, False, True))
    assert not (hooks / "post-commit").exists()
    assert "installed" in output

    write(repo / "src/report.py", "def frobnicate_widget_totals(rows):\n    return sum(rows)\n")
    git(repo, "add", "src/report.py")
    git(repo, "commit", "-qm", "add report")
    assert "frobnicate_widget_totals" in text_symbols(repo, "frobnicate widget totals")
    assert git(repo, "status", "--porcelain").stdout == ""  # the index stays out of git

    # A rename is a deletion plus an addition; a removed file leaves the index.
    git(repo, "mv", "src/report.py", "src/reports.py")
    git(repo, "rm", "-q", "src/util.py")
    git(repo, "commit", "-qm", "rename and delete")
    paths = indexed_paths(repo)
    assert "src/reports.py" in paths
    assert "src/report.py" not in paths
    assert "src/util.py" not in paths
    assert "src/app.py" in paths


def test_modules_in_the_repository_do_not_shadow_ours(tmp_path: Path, git_env: dict) -> None:
    # Hooks run at the top of the repository; a `pathspec/` (or `codesearch/`) folder
    # there must not be imported instead of the installed package.
    repo = make_repo(tmp_path / "repo", {
        "pathspec/__init__.py": "raise ImportError('the repository shadowed pathspec')\n",
        "codesearch/__init__.py": "raise ImportError('the repository shadowed codesearch')\n",
    })
    index_lexical(repo)
    install(repo, *FOREGROUND, "--hook", "pre-commit")
    write(repo / "lib.py", "def unshadowed_import_check():\n    return 1\n")
    git(repo, "add", "lib.py")
    proc = git(repo, "commit", "-qm", "lib")
    assert proc.stderr == ""
    assert "unshadowed_import_check" in text_symbols(repo, "unshadowed import check")


def test_not_a_repository_is_one_line_exit_2(tmp_path: Path, git_env: dict) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for command in ("install", "uninstall", "status"):
        result = runner.invoke(hook_app, [command, str(plain)])
        assert result.exit_code == 2, (command, result.output)
        assert "not a git repository" in result.output
        assert "Traceback" not in result.output


def test_install_without_index_says_how_to_build_it(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    output = install(repo)  # CliRunner's stdin is not a terminal: no prompt
    assert "run `codesearch index`" in output
    assert not (repo / ".codesearch").exists()
    # With no index the hook is silent and the commit goes through untouched.
    write(repo / "b.py", "def b():\n    return 1\n")
    git(repo, "add", "b.py")
    proc = git(repo, "commit", "-qm", "b")
    assert proc.stderr == ""
    assert not (repo / ".codesearch").exists()


def test_install_yes_builds_the_index(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    output = install(repo, "--yes", "--lexical-only")
    assert "indexed 2 files" in output
    assert "load_settings" in text_symbols(repo, "load settings")


def test_unknown_hook_name_is_refused(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    result = runner.invoke(hook_app, ["install", str(repo), "--hook", "pre-push"])
    assert result.exit_code == 1
    assert "unknown hook 'pre-push'" in result.output
    assert not (repo / ".git/hooks/pre-commit").exists()


# --------------------------------------------------------------------------- chaining


CHAINED_SCRIPT = """#!/bin/sh
# the user's own hook: records its arguments, fails when asked to
echo "$(basename "$0") $*" >> "$(git rev-parse --show-toplevel)/../chain.log"
if [ -f "$(git rev-parse --show-toplevel)/../fail-hook" ]; then
    echo "user hook says no" >&2
    exit 3
fi
"""


def test_chains_existing_hook_and_uninstall_restores_it_exactly(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    hooks = repo / ".git" / "hooks"
    original = {}
    for name, mode in (("pre-commit", 0o750), ("post-checkout", 0o700)):
        (hooks / name).write_text(CHAINED_SCRIPT)
        os.chmod(hooks / name, mode)
        original[name] = ((hooks / name).read_bytes(), (hooks / name).stat().st_mode)
    index_lexical(repo)
    output = install(repo, *FOREGROUND)
    assert "chained" in output
    assert (hooks / f"pre-commit{CHAINED_SUFFIX}").read_bytes() == original["pre-commit"][0]

    write(repo / "feature.py", "def quantum_flux_capacitor():\n    return 88\n")
    git(repo, "add", "feature.py")
    git(repo, "commit", "-qm", "feature")
    log = (tmp_path / "chain.log").read_text().splitlines()
    assert log == ["pre-commit.codesearch-chained "]  # the user's hook ran, once
    assert "quantum_flux_capacitor" in text_symbols(repo, "quantum flux capacitor")

    # The chained hook gets git's arguments.
    git(repo, "checkout", "-q", "-b", "topic")
    last = (tmp_path / "chain.log").read_text().splitlines()[-1].split()
    assert last[0] == "post-checkout.codesearch-chained" and len(last) == 4 and last[3] == "1"

    # Its failure still aborts the commit, before we index anything.
    head = git(repo, "rev-parse", "HEAD").stdout
    (tmp_path / "fail-hook").touch()
    write(repo / "rejected.py", "def rejected_change_marker():\n    return 0\n")
    git(repo, "add", "rejected.py")
    proc = git(repo, "commit", "-qm", "rejected", check=False)
    assert proc.returncode != 0
    assert "user hook says no" in proc.stderr
    assert git(repo, "rev-parse", "HEAD").stdout == head
    assert "rejected_change_marker" not in text_symbols(repo, "rejected change marker")

    result = runner.invoke(hook_app, ["uninstall", str(repo)])
    assert result.exit_code == 0, result.output
    for name, (data, mode) in original.items():
        assert (hooks / name).read_bytes() == data
        assert (hooks / name).stat().st_mode == mode
        assert not (hooks / f"{name}{CHAINED_SUFFIX}").exists()
    assert not (hooks / "post-merge").exists()  # ours, nothing chained: simply removed


def test_reinstall_updates_in_place_and_keeps_the_chain(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-commit").write_text(CHAINED_SCRIPT)
    os.chmod(hooks / "pre-commit", 0o755)
    install(repo, "--hook", "pre-commit")
    output = install(repo, "--hook", "pre-commit", "--strict")
    assert "updated" in output
    assert parse_script((hooks / "pre-commit").read_text())[1].strict
    assert (hooks / f"pre-commit{CHAINED_SUFFIX}").read_text() == CHAINED_SCRIPT
    runner.invoke(hook_app, ["uninstall", str(repo)])
    assert (hooks / "pre-commit").read_text() == CHAINED_SCRIPT


def test_foreign_hook_over_our_chain_is_refused(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    (hooks / f"pre-commit{CHAINED_SUFFIX}").write_text("#!/bin/sh\nexit 0\n")
    result = runner.invoke(hook_app, ["install", str(repo), "--hook", "pre-commit"])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert (hooks / "pre-commit").read_text() == "#!/bin/sh\nexit 0\n"


# --------------------------------------------------------------------------- where hooks live


def test_core_hooks_path(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "config", "core.hooksPath", ".githooks")
    index_lexical(repo)
    install(repo, *FOREGROUND, "--hook", "pre-commit")
    assert (repo / ".githooks" / "pre-commit").is_file()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    # Asked from a subfolder, the relative hooksPath still resolves to the top level.
    assert find_repo(repo / "src").hooks_dir == repo / ".githooks"
    write(repo / "src/extra.py", "def hyperbolic_cosine_table():\n    return []\n")
    git(repo / "src", "add", "extra.py")
    git(repo / "src", "commit", "-qm", "extra")  # hooks run from the top level anyway
    assert "hyperbolic_cosine_table" in text_symbols(repo, "hyperbolic cosine table")
    status = runner.invoke(hook_app, ["status", str(repo), "--json"])
    assert '"hooks_dir": "' + str(repo / ".githooks") + '"' in status.output


def test_linked_worktree_updates_its_own_index(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    index_lexical(repo)
    install(repo, *FOREGROUND, "--hook", "pre-commit")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wt-branch", str(worktree))
    # Hooks are shared by all worktrees of a repository.
    assert find_repo(worktree).hooks_dir == repo / ".git" / "hooks"
    index_lexical(worktree)
    write(worktree / "src/only_here.py", "def worktree_specific_helper():\n    return 1\n")
    git(worktree, "add", "src/only_here.py")
    git(worktree, "commit", "-qm", "in worktree")
    assert "worktree_specific_helper" in text_symbols(worktree, "worktree specific helper")
    assert "src/only_here.py" not in indexed_paths(repo)


def test_submodule_commit_updates_superproject_index(tmp_path: Path, git_env: dict) -> None:
    lib = make_repo(tmp_path / "lib", {"lib.py": "def library_entry():\n    return 1\n"})
    top = make_repo(tmp_path / "top")
    git(top, "submodule", "add", "-q", str(lib), "vendor/lib")
    git(top, "commit", "-qm", "add submodule")
    sub = top / "vendor" / "lib"
    git(sub, "config", "user.name", "Test")
    git(sub, "config", "user.email", "test@example.com")
    index_lexical(top)
    assert "vendor/lib/lib.py" in indexed_paths(top)
    install(sub, *FOREGROUND, "--hook", "pre-commit")
    assert (top / ".git/modules/vendor/lib/hooks/pre-commit").is_file()
    write(sub / "extra.py", "def submodule_zeppelin_loader():\n    return 2\n")
    git(sub, "add", "extra.py")
    git(sub, "commit", "-qm", "extra")
    assert "submodule_zeppelin_loader" in text_symbols(top, "submodule zeppelin loader")
    assert "vendor/lib/extra.py" in indexed_paths(top)


# --------------------------------------------------------------------------- merges and checkouts


def test_checkout_and_merge_reindex_the_diff(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "src/feature.py", "def galactic_route_planner():\n    return []\n")
    git(repo, "add", "src/feature.py")
    git(repo, "commit", "-qm", "feature")
    git(repo, "checkout", "-q", "main")
    index_lexical(repo)
    install(repo, *FOREGROUND, "--hook", "post-checkout", "--hook", "post-merge")

    git(repo, "checkout", "-q", "feature")
    assert "src/feature.py" in indexed_paths(repo)
    git(repo, "checkout", "-q", "main")
    assert "src/feature.py" not in indexed_paths(repo)
    git(repo, "merge", "-q", "--ff-only", "feature")
    assert "galactic_route_planner" in text_symbols(repo, "galactic route planner")


def test_changed_paths_per_hook(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    first = git(repo, "rev-parse", "HEAD").stdout.strip()
    git(repo, "mv", "src/app.py", "src/application.py")
    write(repo / "new.py", "x = 1\n")
    git(repo, "add", "new.py")
    assert sorted(changed_paths("pre-commit", [], repo)) == [
        "new.py", "src/app.py", "src/application.py"]
    git(repo, "commit", "-qm", "move")
    second = git(repo, "rev-parse", "HEAD").stdout.strip()
    assert sorted(changed_paths("post-commit", [], repo)) == [
        "new.py", "src/app.py", "src/application.py"]
    assert sorted(changed_paths("post-checkout", [second, first, "1"], repo)) == [
        "new.py", "src/app.py", "src/application.py"]
    assert changed_paths("post-checkout", [first, first, "0"], repo) is None  # file checkout
    assert changed_paths("post-checkout", ["0" * 40, first, "1"], repo) is None  # clone


def test_pre_commit_framework_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PRE_COMMIT_CHECKOUT_TYPE", "PRE_COMMIT_IS_SQUASH_MERGE"):
        monkeypatch.delenv(name, raising=False)
    assert framework_hook() == ("pre-commit", [])
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", "a" * 40)
    monkeypatch.setenv("PRE_COMMIT_TO_REF", "b" * 40)
    monkeypatch.setenv("PRE_COMMIT_CHECKOUT_TYPE", "1")
    assert framework_hook() == ("post-checkout", ["a" * 40, "b" * 40, "1"])
    monkeypatch.delenv("PRE_COMMIT_CHECKOUT_TYPE")
    monkeypatch.setenv("PRE_COMMIT_IS_SQUASH_MERGE", "0")
    assert framework_hook() == ("post-merge", ["0"])


def test_pre_commit_hooks_yaml_is_valid() -> None:
    yaml = pytest.importorskip("yaml")
    entries = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    ids = {e["id"]: e for e in entries}
    assert set(ids) == {"codesearch-index", "codesearch-index-system"}
    for entry in entries:
        assert entry["entry"] == "codesearch hook run auto"
        assert entry["pass_filenames"] is False and entry["always_run"] is True
        assert set(entry["stages"]) == {"pre-commit", "post-merge", "post-checkout"}
    assert ids["codesearch-index"]["language"] == "python"
    # The entry must be a command the CLI really has.
    result = runner.invoke(hook_app, ["run", "--help"])
    assert result.exit_code == 0 and "auto" in result.output


# --------------------------------------------------------------------------- failures never block


def test_broken_index_never_blocks_a_commit_unless_strict(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    index_lexical(repo)
    install(repo, *FOREGROUND, "--hook", "pre-commit")
    (repo / ".codesearch" / "manifest.json").write_text("{ not json")
    write(repo / "a.py", "def a():\n    return 1\n")
    git(repo, "add", "a.py")
    proc = git(repo, "commit", "-qm", "a")  # succeeds
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("codesearch: index not updated"), proc.stderr
    assert "Traceback" not in proc.stderr
    log = (repo / ".codesearch" / LOG_NAME).read_text()
    assert "error:" in log and "manifest.json" in log

    install(repo, "--foreground", "--strict", "--lexical-only", "--hook", "pre-commit")
    head = git(repo, "rev-parse", "HEAD").stdout
    write(repo / "b.py", "def b():\n    return 2\n")
    git(repo, "add", "b.py")
    proc = git(repo, "commit", "-qm", "b", check=False)
    assert proc.returncode != 0
    assert "commit aborted (strict mode)" in proc.stderr
    assert git(repo, "rev-parse", "HEAD").stdout == head


def test_missing_codesearch_never_blocks(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    script = hook_script("pre-commit", HookSettings(), str(tmp_path / "gone/python"), tmp_path / "gone")
    (hooks / "pre-commit").write_text(script)
    os.chmod(hooks / "pre-commit", 0o755)
    write(repo / "a.py", "x = 1\n")
    git(repo, "add", "a.py")
    env = dict(os.environ, PATH="/usr/bin:/bin")  # no codesearch on PATH either
    proc = subprocess.run(["git", "commit", "-qm", "a"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "codesearch: command not found" in proc.stderr


def test_path_fallback_and_pre_commit_framework_entry(tmp_path: Path, git_env: dict) -> None:
    """The script falls back to `codesearch` on PATH; `hook run auto` reads the
    framework's variables (here a post-checkout, as pre-commit would pass it)."""
    repo = make_repo(tmp_path / "repo")
    index_lexical(repo)
    hooks = repo / ".git" / "hooks"
    settings = HookSettings(background=False, lexical_only=True)
    script = hook_script("pre-commit", settings, str(tmp_path / "gone/python"), tmp_path / "gone")
    (hooks / "pre-commit").write_text(script)
    os.chmod(hooks / "pre-commit", 0o755)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin")
    write(repo / "via_path.py", "def found_through_path_lookup():\n    return 1\n")
    git(repo, "add", "via_path.py")
    proc = subprocess.run(["git", "commit", "-qm", "p"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "found_through_path_lookup" in text_symbols(repo, "found through path lookup")

    old = git(repo, "rev-parse", "HEAD").stdout.strip()
    git(repo, "checkout", "-q", "-b", "side")
    git(repo, "rm", "-q", "via_path.py")
    git(repo, "commit", "-q", "--no-verify", "-m", "drop")
    new = git(repo, "rev-parse", "HEAD").stdout.strip()
    framework = dict(env, PRE_COMMIT="1", PRE_COMMIT_FROM_REF=old, PRE_COMMIT_TO_REF=new,
                     PRE_COMMIT_CHECKOUT_TYPE="1")
    proc = subprocess.run(["codesearch", "hook", "run", "auto", "--foreground", "--lexical-only"],
                          cwd=repo, env=framework, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "via_path.py" not in indexed_paths(repo)


def test_busy_index_is_skipped_then_caught_up_in_background(tmp_path: Path, git_env: dict) -> None:
    from codesearch.core.lock import index_lock

    repo = make_repo(tmp_path / "repo")
    index_lexical(repo)
    install(repo, *FOREGROUND, "--hook", "pre-commit")
    index_dir = repo / ".codesearch"
    write(repo / "busy.py", "def while_the_lock_was_held():\n    return 1\n")
    git(repo, "add", "busy.py")
    with index_lock(index_dir, timeout=5):
        started = time.perf_counter()
        git(repo, "commit", "-qm", "busy")
        elapsed = time.perf_counter() - started
        assert "index busy" in (index_dir / LOG_NAME).read_text()
        assert read_queue(index_dir)[1] == ["busy.py"]  # kept for the background run
    assert elapsed < 10  # did not wait for the lock (generous: the machine is shared)
    _wait_for_log(index_dir, "background update done", timeout=120)
    assert "while_the_lock_was_held" in text_symbols(repo, "while the lock was held")
    assert read_queue(index_dir) == ([], [])
    assert not list((index_dir / QUEUE_DIRNAME).glob("*.paths"))


def _wait_for_log(index_dir: Path, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = (index_dir / LOG_NAME).read_text() if (index_dir / LOG_NAME).exists() else ""
        if text in log:
            return log
        if "background update failed" in log:
            pytest.fail(log)
        time.sleep(0.3)
    pytest.fail(f"no '{text}' in the hook log after {timeout} s")


# --------------------------------------------------------------------------- background mode


@pytest.mark.slow
def test_background_mode_commit_returns_at_once_and_embeds_later(tmp_path: Path, git_env: dict) -> None:
    repo = make_repo(tmp_path / "repo")
    index_lexical(repo)
    install(repo)  # the default: background, with embeddings
    index_dir = repo / ".codesearch"
    write(repo / "src/late.py", "def interplanetary_cache_warmer():\n    return None\n")
    git(repo, "add", "src/late.py")
    started = time.perf_counter()
    git(repo, "commit", "-qm", "late")
    elapsed = time.perf_counter() - started
    _wait_for_log(index_dir, "background update done", timeout=180)
    assert elapsed < 2.0, elapsed  # never waits for LanceDB or the model
    assert "interplanetary_cache_warmer" in text_symbols(repo, "interplanetary cache warmer")
    result = Searcher(index_dir).search("warm the interplanetary cache", SearchOptions(mode="vector"))
    assert result.vectors_pending == 0  # everything, old and new, got embedded
    assert result.hits and result.hits[0].symbol == "interplanetary_cache_warmer"
    status = runner.invoke(hook_app, ["status", str(repo)])
    assert "background update done" in status.output


def test_hook_module_entry_point_ignores_non_repo(tmp_path: Path, git_env: dict) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = subprocess.run([sys.executable, "-m", "codesearch.hook", "run", "pre-commit", "--"],
                          cwd=plain, capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stderr.startswith("codesearch: index not updated: git rev-parse")


# Written by `codesearch hook install` before the package moved into subpackages: an
# installed hook must keep working after an upgrade, without reinstalling.
OLD_STYLE_HOOK = """#!/bin/sh
# codesearch-hook: pre-commit --foreground --lexical-only
# Installed by `codesearch hook install`; `codesearch hook uninstall` removes it and
# puts back the hook it chained (if any). Keeps the codesearch index fresh.
chained="$0.codesearch-chained"
if [ -f "$chained" ] && [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
py={python}
if [ -x "$py" ] && [ -f {package}/hook.py ]; then
    "$py" -c 'import sys; del sys.path[0]; sys.argv[0] = "codesearch-hook"; from codesearch.hook import main; sys.exit(main())' run pre-commit --foreground --lexical-only -- "$@" </dev/null
else
    echo "codesearch: not found" >&2
    exit 0
fi
status=$?
exit 0  # never block a commit on the index
"""


def test_a_hook_installed_by_an_older_version_still_updates_the_index(
    tmp_path: Path, git_env: dict
) -> None:
    import codesearch

    repo = make_repo(tmp_path / "repo")
    index_lexical(repo)
    script = repo / ".git" / "hooks" / "pre-commit"
    script.parent.mkdir(parents=True, exist_ok=True)
    package = Path(codesearch.__file__).resolve().parent
    script.write_text(OLD_STYLE_HOOK.format(python=sys.executable, package=package))
    script.chmod(0o755)
    assert parse_script(script.read_text()) == ("pre-commit", HookSettings(False, False, True))
    write(repo / "src/legacy.py", "def reticulate_old_splines(n):\n    return n\n")
    git(repo, "add", "src/legacy.py")
    git(repo, "commit", "-qm", "legacy hook")
    assert "reticulate_old_splines" in text_symbols(repo, "reticulate old splines")
