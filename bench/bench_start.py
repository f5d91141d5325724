"""`streams start` of 16 streams versus 16 sequential `git worktree add -b`, side by side.

One generated repository of 20,000 files is copied afresh for every timed run, so both sides start
from identical bytes; the two sides alternate (A B, B A, …) so drift in the machine's load hits both.
`streams start` runs as one process, as a user types it (interpreter start-up included). The raw git
side is the floor: a worktree checkout of 20,000 files costs what it costs.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import (
    bench_tmpdir,
    copy_repo,
    filesystem_of,
    generate_repo,
    hermetic_env,
    progress,
    rounded,
    run_measured,
)

FILES = 20_000
STREAMS = 16
TARGET_RATIO = 1.15

NAMES = [f"s{i:02d}" for i in range(STREAMS)]


def streams_yaml() -> str:
    lines = ["version: 1", "base: main", "shared: [pyproject.toml]", "streams:"]
    for name in NAMES:
        lines += [f"  {name}:", f"    owns: [{name}/**]"]
    return "\n".join(lines) + "\n"


def _streams_side(repo: Path, env: dict[str, str]) -> tuple[float, float]:
    return run_measured([sys.executable, "-m", "streams", "start"], repo, env)


def _git_side(repo: Path, env: dict[str, str]) -> tuple[float, float]:
    wall = cpu = 0.0
    root = repo.parent / f"{repo.name}.streams"
    for name in NAMES:
        argv = ["git", "worktree", "add", "-q", "-b", f"streams/{name}", str(root / name), "main"]
        w, c = run_measured(argv, repo, env)
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def run(quick: bool) -> dict[str, object]:
    reps = 1 if quick else 5
    with tempfile.TemporaryDirectory(prefix="streams-bench-start-", dir=bench_tmpdir()) as tmp_name:
        tmp = Path(tmp_name)
        fs = filesystem_of(tmp)
        env = hermetic_env(tmp / "home")
        template = tmp / "template" / "repo"
        progress(f"start: generating a repository of {FILES} files")
        generate_repo(
            template,
            FILES,
            env=env,
            top_dirs=NAMES,
            extra_files={"streams.yaml": streams_yaml(), "pyproject.toml": "[project]\nname = 'bench'\n"},
        )
        streams_s: list[float] = []
        git_s: list[float] = []
        streams_cpu: list[float] = []
        git_cpu: list[float] = []
        for rep in range(reps):
            order = ("streams", "git") if rep % 2 == 0 else ("git", "streams")
            for side in order:
                repo = tmp / f"{side}-{rep}" / "repo"
                copy_repo(template, repo)
                if side == "streams":
                    wall, cpu = _streams_side(repo, env)
                    streams_s.append(wall)
                    streams_cpu.append(cpu)
                else:
                    wall, cpu = _git_side(repo, env)
                    git_s.append(wall)
                    git_cpu.append(cpu)
                shutil.rmtree(repo.parent)  # 16 checkouts of 20,000 files: free the space at once
            progress(
                f"start: run {rep + 1}/{reps}: streams {streams_s[-1]:.2f} s ({streams_cpu[-1]:.2f} s CPU), "
                f"git {git_s[-1]:.2f} s ({git_cpu[-1]:.2f} s CPU)"
            )
    streams_median = statistics.median(streams_s)
    git_median = statistics.median(git_s)
    ratio = streams_median / git_median
    return {
        "what": f"`streams start` of {STREAMS} streams vs {STREAMS} sequential `git worktree add -b` on {FILES} files",
        "files": FILES,
        "filesystem": fs,
        "streams": STREAMS,
        "runs": reps,
        "streams_start_s": round(streams_median, 3),
        "git_worktree_add_s": round(git_median, 3),
        "git_per_worktree_s": round(git_median / STREAMS, 3),
        "streams_overhead_s": round(streams_median - git_median, 3),
        "ratio": round(ratio, 3),  # of the wall-clock medians
        "pair_ratios": rounded([s / g for s, g in zip(streams_s, git_s, strict=True)]),
        "streams_start_cpu_s": round(statistics.median(streams_cpu), 3),
        "git_worktree_add_cpu_s": round(statistics.median(git_cpu), 3),
        "cpu_ratio": round(statistics.median(streams_cpu) / statistics.median(git_cpu), 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "samples": {
            "streams_start_s": rounded(streams_s),
            "git_worktree_add_s": rounded(git_s),
            "streams_start_cpu_s": rounded(streams_cpu),
            "git_worktree_add_cpu_s": rounded(git_cpu),
        },
    }
