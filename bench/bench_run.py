"""`streams run`: the runner's own overhead per attempt, and its parallel efficiency.

1. **Overhead per attempt.** Two identical repositories with N streams, each stream's worktree
   started beforehand (`streams start`, hooks installed). The fake agent is a shell line that
   appends to a file it owns and commits it (`git commit` runs the scope hook on both sides):
   - A: `streams run -j 1 --no-merge` runs the N agents one after another: launch (brief,
     environment, process group, log), supervision, verification from git (scope of the new
     commits, evidence, clean worktree), state.json and joblog.tsv;
   - B: the same agents run one after another by plain `sh -c` in the same worktrees.
   Overhead per attempt = (A - B) / N, wall and CPU; the sides alternate A B, B A, … Goal: ≤ 150 ms.
2. **Parallel efficiency.** 32 equal agents (each sleeps S seconds, then commits) with -j 8:
   Σ run time ÷ (wall * 8), from the run's joblog.tsv (DESIGN's formula). Goal: ≥ 0.9.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bench.common import bench_tmpdir, generate_repo, git, hermetic_env, progress, rounded, run_measured

OVERHEAD_STREAMS = 12
EFFICIENCY_STREAMS = 32
EFFICIENCY_JOBS = 8
AGENT_SLEEP = 2.0
TARGET_MS = 150.0
TARGET_EFFICIENCY = 0.9
AGENT = 'echo "$STREAMS_ATTEMPT" >> "src/$STREAMS_STREAM/work.txt" && git add -A src && git commit -q -m work'


def _streams() -> list[str]:
    return [sys.executable, "-m", "streams"]


def _config(n: int, command: str) -> str:
    lines = ["version: 1", "base: main", "streams:"]
    for i in range(n):
        lines += [f"  s{i:02d}:", f"    owns: [src/s{i:02d}/**]", f"    command: '{command}'"]
    lines += ["run:", "  merge: false", "  gate: none", "  timeout: 10m", "  stall_timeout: 10m"]
    return "\n".join(lines) + "\n"


def _build(root: Path, n: int, command: str, env: Mapping[str, str]) -> None:
    generate_repo(
        root,
        200,
        env=env,
        top_dirs=[f"src/s{i:02d}" for i in range(n)],
        extra_files={"streams.yaml": _config(n, command)},
    )
    run_measured([*_streams(), "start"], root, env)


def _worktrees(root: Path, n: int) -> list[Path]:
    return [root.parent / f"{root.name}.streams" / f"s{i:02d}" for i in range(n)]


def _raw(root: Path, n: int, env: Mapping[str, str]) -> tuple[float, float]:
    """The same agents, one after another, by plain sh -c in the same worktrees."""
    script = " && ".join(
        f"(cd '{wt}' && STREAMS_STREAM=s{i:02d} STREAMS_ATTEMPT=1 sh -c '{AGENT}')"
        for i, wt in enumerate(_worktrees(root, n))
    )
    return run_measured(["sh", "-c", script], root, env)


def _verified(root: Path, env: Mapping[str, str]) -> int:
    runs = root / ".git" / "streams" / "runs"
    latest = (runs / "latest").read_text().strip()
    data = json.loads((runs / latest / "state.json").read_text())
    return sum(1 for s in data["streams"].values() if s["status"] == "verified")


def _overhead(tmp: Path, env: Mapping[str, str], reps: int) -> dict[str, object]:
    a_wall: list[float] = []
    a_cpu: list[float] = []
    b_wall: list[float] = []
    b_cpu: list[float] = []
    n = OVERHEAD_STREAMS
    for i in range(reps):
        progress(f"run: overhead repetition {i + 1} of {reps} ({n} streams each side)")
        ours, raw = tmp / f"o{i}a" / "repo", tmp / f"o{i}b" / "repo"
        _build(ours, n, AGENT, env)
        _build(raw, n, AGENT, env)
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            if side == "a":
                w, c = run_measured([*_streams(), "run", "-j", "1"], ours, env)
                a_wall.append(w)
                a_cpu.append(c)
            else:
                w, c = _raw(raw, n, env)
                b_wall.append(w)
                b_cpu.append(c)
        if _verified(ours, env) != n:
            raise RuntimeError(f"{ours}: {_verified(ours, env)} of {n} streams verified")
    per = [(a - b) / n * 1000 for a, b in zip(a_wall, b_wall, strict=True)]
    per_cpu = [(a - b) / n * 1000 for a, b in zip(a_cpu, b_cpu, strict=True)]
    return {
        "streams": n,
        "streams_run_s": round(statistics.median(a_wall), 3),
        "plain_sh_s": round(statistics.median(b_wall), 3),
        "overhead_ms_per_attempt": round(statistics.median(per), 1),
        "overhead_ms_min_max": rounded([min(per), max(per)], 1),
        "overhead_cpu_ms_per_attempt": round(statistics.median(per_cpu), 1),
        "overhead_cpu_ms_min_max": rounded([min(per_cpu), max(per_cpu)], 1),
        "target_ms": TARGET_MS,
        "meets_target": statistics.median(per) <= TARGET_MS,
    }


def _efficiency(tmp: Path, env: Mapping[str, str], reps: int) -> dict[str, object]:
    values: list[float] = []
    walls: list[float] = []
    n, j = EFFICIENCY_STREAMS, EFFICIENCY_JOBS
    command = f"sleep {AGENT_SLEEP} && {AGENT}"
    for i in range(reps):
        progress(f"run: efficiency repetition {i + 1} of {reps} ({n} agents of {AGENT_SLEEP:g} s, -j {j})")
        root = tmp / f"e{i}" / "repo"
        _build(root, n, command, env)
        wall, _ = run_measured([*_streams(), "run", "-j", str(j)], root, env)
        runs = root / ".git" / "streams" / "runs"
        latest = (runs / "latest").read_text().strip()
        rows = [line.split("\t") for line in (runs / latest / "joblog.tsv").read_text().splitlines()]
        head, body = rows[0], rows[1:]
        start, end = head.index("start"), head.index("end")
        spans = [(float(r[start]), float(r[end])) for r in body]
        busy = sum(e - s for s, e in spans)
        first, last = min(s for s, _ in spans), max(e for _, e in spans)
        values.append(busy / ((last - first) * j))
        walls.append(wall)
        if _verified(root, env) != n:
            raise RuntimeError(f"{root}: {_verified(root, env)} of {n} streams verified")
    return {
        "agents": n,
        "jobs": j,
        "agent_sleep_s": AGENT_SLEEP,
        "ideal_s": round(n / j * AGENT_SLEEP, 2),
        "streams_run_wall_s": round(statistics.median(walls), 2),
        "efficiency": round(statistics.median(values), 3),
        "efficiency_min_max": rounded([min(values), max(values)], 3),
        "target": TARGET_EFFICIENCY,
        "meets_target": statistics.median(values) >= TARGET_EFFICIENCY,
    }


def run(quick: bool) -> dict[str, object]:
    reps = 1 if quick else 5
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="streams-bench-run-", dir=bench_tmpdir()) as tmp_name:
        tmp = Path(tmp_name)
        env = hermetic_env(tmp / "home")
        git(tmp, "--version", env=env)
        overhead = _overhead(tmp, env, reps)
        efficiency = _efficiency(tmp, env, 1 if quick else 3)
    return {
        "what": "streams run: overhead per attempt against plain sh -c (-j 1, same agents, same worktrees); "
        "parallel efficiency of 32 equal agents with -j 8 (from joblog.tsv)",
        "overhead": overhead,
        "efficiency": efficiency,
        "load_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]],
        "python": sys.version.split()[0],
        "note": "2 shared cores, other engineers working: read the medians, the CPU figure and the spread",
    }
