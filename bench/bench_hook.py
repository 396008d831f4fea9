"""What the git hook adds to a commit, measured on a 1,000-file repository of real code.

    python bench/bench_hook.py                 # lexical-only base index (fast to prepare)
    python bench/bench_hook.py --embed-base    # fully embedded base with the default model

Builds a temp git repo from 1,000 .py files of the installed site-packages (spread
over all packages), indexes it once, then times one-file commits (`git commit` wall
time, median of --repeat runs) with no hook, with the default background hook, and
with the foreground hook; and, for the background hook, how long after the commit
the new function is findable (the detached update's "done" line in hook.log).

Without --embed-base the hooks are installed with --lexical-only, so the detached
run does not go on to embed the whole never-embedded base for minutes; the commit
itself does exactly the same work either way (the model is never loaded in it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def site_packages() -> Path:
    import typer

    return Path(typer.__file__).resolve().parent.parent


def make_repo(dest: Path, count: int) -> int:
    """Copy `count` real .py files (spread over every installed package) into a fresh repo."""
    site = site_packages()
    files = sorted(
        p for p in site.rglob("*.py")
        if 500 <= p.stat().st_size <= 20_000 and "codesearch" not in p.parts
        and not any(part.endswith((".dist-info", "__pycache__")) for part in p.parts)
    )
    stride = max(1, len(files) // count)
    chosen = files[::stride][:count]
    total = 0
    for source in chosen:
        target = dest / source.relative_to(site)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        total += source.stat().st_size
    git(dest, "init", "-q")
    git(dest, "config", "user.name", "Bench")
    git(dest, "config", "user.email", "bench@example.com")
    git(dest, "config", "commit.gpgsign", "false")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "base")
    return total


def timed_commit(repo: Path, target: Path, n: int, tag: str) -> float:
    with target.open("a") as handle:
        handle.write(f"\n\ndef bench_{tag}_function_{n}(value):\n    return value * {n}\n")
    git(repo, "add", str(target.relative_to(repo)))
    started = time.perf_counter()
    git(repo, "commit", "-qm", f"{tag} {n}")
    return time.perf_counter() - started


def install(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-c", "from codesearch.cli.hook import hook_app; hook_app()",
                    "install", str(repo), *args], check=True, capture_output=True)


def uninstall(repo: Path) -> None:
    subprocess.run([sys.executable, "-c", "from codesearch.cli.hook import hook_app; hook_app()",
                    "uninstall", str(repo)], check=True, capture_output=True)


def wait_done(log: Path, already: int, timeout: float = 1800) -> float:
    """Seconds until hook.log has one more 'background update done' line."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        text = log.read_text() if log.exists() else ""
        if text.count("background update done") > already:
            return time.perf_counter() - started
        if "background update failed" in text:
            raise SystemExit(f"background update failed; see {log}")
        time.sleep(0.05)
    raise SystemExit("background update did not finish")


def wait_idle(index_dir: Path, timeout: float = 1800) -> None:
    from codesearch.core.lock import current_holder
    from codesearch.index.hooks import background_waiting

    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while time.monotonic() < deadline:
        if current_holder(index_dir) is None and not background_waiting(index_dir):
            return
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--embed-base", action="store_true",
                        help="embed the whole base index first (slow on a shared CPU)")
    parser.add_argument("--keep", action="store_true", help="keep the temp repository")
    args = parser.parse_args()

    from codesearch.index.build import IndexOptions, build_index

    workdir = Path(tempfile.mkdtemp(prefix="bench-hook-"))
    repo = workdir / "repo"
    repo.mkdir()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results: dict[str, object] = {"files": args.files, "embed_base": args.embed_base}
    try:
        size = make_repo(repo, args.files)
        results["repo_bytes"] = size
        started = time.perf_counter()
        report = build_index(repo, IndexOptions(embed=args.embed_base))
        results["base_index_s"] = round(time.perf_counter() - started, 1)
        results["chunks"] = report.chunks_total
        print(f"repo: {args.files} files, {size / 1e6:.1f} MB, {report.chunks_total} chunks; "
              f"base index {results['base_index_s']} s (embedded: {args.embed_base})", flush=True)
        target = sorted(repo.rglob("*.py"))[len(list(repo.rglob("*.py"))) // 2]
        log = repo / ".codesearch" / "hook.log"
        lexical = [] if args.embed_base else ["--lexical-only"]

        timed_commit(repo, target, 0, "warmup")  # page cache, git's own first-run costs
        plain = [timed_commit(repo, target, n, "plain") for n in range(args.repeat)]

        install(repo, *lexical)  # the default: background
        background, fresh = [], []
        for n in range(args.repeat):
            already = log.read_text().count("background update done") if log.exists() else 0
            background.append(timed_commit(repo, target, n, "background"))
            fresh.append(wait_done(log, already) + background[-1])

        install(repo, "--foreground", *lexical)
        foreground = [timed_commit(repo, target, n, "foreground") for n in range(args.repeat)]
        uninstall(repo)
        wait_idle(repo / ".codesearch")  # detached embedding of the foreground commits

        def med(values: list[float]) -> float:
            return round(statistics.median(values), 3)

        results.update({
            "commit_no_hook_s": med(plain),
            "commit_background_hook_s": med(background),
            "added_by_background_hook_s": round(med(background) - med(plain), 3),
            "searchable_after_background_commit_s": med(fresh),
            "commit_foreground_hook_s": med(foreground),
            "added_by_foreground_hook_s": round(med(foreground) - med(plain), 3),
            "raw": {"plain": plain, "background": background, "fresh": fresh,
                    "foreground": foreground},
        })
        print(json.dumps({k: v for k, v in results.items() if k != "raw"}, indent=2))
        print(f"one-file commit: {med(plain):.3f} s without hook, {med(background):.3f} s with "
              f"the background hook (+{med(background) - med(plain):.3f} s), "
              f"{med(foreground):.3f} s with the foreground hook; new code searchable "
              f"{med(fresh):.1f} s after a background commit starts")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
