"""Every figure of the README's Speed section in one run: index speed on three real
codebases (bench_index.py), then embedding runtimes side by side with each one's NDCG@10
on the development benchmark (bench_embed.py --ndcg).

    python bench/prepare_corpora.py && python bench/run_all.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    steps = [
        [sys.executable, str(BENCH / "bench_index.py")],
        [sys.executable, str(BENCH / "bench_index.py"), "--sizes", "thousand", "large",
         "--first-answer-only", "--first-runs", "9"],
        [sys.executable, str(BENCH / "bench_embed.py"), "--limit", "500", "--threads", "1", "2", "--ndcg"],
    ]
    for step in steps:
        print(f"$ {' '.join(step[1:])}", flush=True)
        if subprocess.run(step, check=False).returncode:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
