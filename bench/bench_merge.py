"""`streams merge` landing 16 clean streams versus raw git landing the same 16, side by side in one run.

Each repetition builds two identical repositories (2,000 files; 16 streams started by `streams
start`, hooks installed, each stream with two work commits in its worktree; the main worktree
has the base checked out) and lands every stream on ``main``, once per side, the sides
alternating A B, B A, … so drift in the machine's load hits both:

- A: ``streams merge`` as a user types it (one process, interpreter start-up included): order,
  clean + verify each stream, build each candidate with ``merge-tree`` on the base's tip
  (progress file left out), land it by compare-and-swap, bring the main worktree along, keep the
  tip under refs/streams/landed/, remove the worktree and branch;
- B: raw git doing the closest same thing, per stream: ``git merge-tree --write-tree main
  streams/X``, ``git commit-tree`` of that tree on main, ``git update-ref refs/heads/main NEW OLD``
  (compare-and-swap), ``git read-tree -m -u OLD NEW`` in the main worktree (it has main checked
  out), then ``git worktree remove --force`` and ``git branch -D`` (the same end state). The
  landing part alone (the first four) is timed too: ``raw_land_s``.

No ``--check``: the check's own time is zero here, so the issue's goal (<= 2x raw plus the check's
own time) reads as <= 2x raw. Figures: medians of wall and CPU seconds (user + system of every
process each side waited for: steadier on a shared machine), the ratio pair by pair (median, min,
max), the load average before and after, and how many git processes one ``streams merge`` starts
(``GIT_TRACE``).
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from bench.common import bench_tmpdir, filesystem_of, generate_repo, git, hermetic_env, progress, rounded, run_measured

FILES = 2_000
STREAMS = 16
NAMES = [f"s{i:02d}" for i in range(STREAMS)]
TARGET_RATIO = 2.0


def _config() -> str:
    lines = ["version: 1", "base: main", "streams:"]
    for name in NAMES:
        lines += [f"  {name}:", f"    owns: [{name}/**]"]
    return "\n".join(lines) + "\n"


def _streams() -> list[str]:
    """The console script beside this interpreter (what a user runs), else ``python -m streams``."""
    script = Path(sys.executable).parent / "streams"
    return [str(script)] if script.exists() else [sys.executable, "-m", "streams"]


def _build(root: Path, env: Mapping[str, str]) -> None:
    """The repository at ``root``: every stream started, two work commits in each (the author dates
    in stream order, so both sides land s00 … s15 in that order)."""
    generate_repo(root, FILES, env=env, top_dirs=NAMES, extra_files={"streams.yaml": _config()})
    run_measured([*_streams(), "start"], root, env)
    for i, name in enumerate(NAMES):
        wt = root.parent / f"{root.name}.streams" / name
        dated = {**env, "GIT_AUTHOR_DATE": f"2026-01-01T{i:02d}:00:00Z"}
        for k in range(2):
            (wt / name / f"work{k}.py").write_text(f"WORK = {k}\n")
            git(wt, "add", "-A", env=dated)
            git(wt, "commit", "-q", "-m", f"{name}: work {k}", env=dated)


def _raw(root: Path, env: Mapping[str, str]) -> tuple[float, float, float]:
    """Land every stream with raw git (see the module's text): (wall, cpu, wall of the landings alone)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    landing = 0.0
    for name in NAMES:
        t1 = time.perf_counter()
        old = git(root, "rev-parse", "main", env=env).strip()
        tree = git(root, "merge-tree", "--write-tree", "main", f"streams/{name}", env=env).split()[0]
        new = git(root, "commit-tree", tree, "-p", old, "-m", f"{name}: land stream {name}", env=env).strip()
        git(root, "update-ref", "-m", f"land {name}", "refs/heads/main", new, old, env=env)
        git(root, "read-tree", "-m", "-u", old, new, env=env)
        landing += time.perf_counter() - t1
        git(root, "worktree", "remove", "--force", str(root.parent / f"{root.name}.streams" / name), env=env)
        git(root, "branch", "-q", "-D", f"streams/{name}", env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), landing


def _landed(root: Path, env: Mapping[str, str]) -> int:
    """How many landing commits main has over the generated one (a side that landed less is no figure)."""
    subjects = git(root, "log", "--format=%s", "main", env=env).splitlines()
    return sum(1 for s in subjects if re.fullmatch(r"s\d\d: land stream s\d\d", s))


def _git_processes(tmp: Path, env: Mapping[str, str]) -> int:
    root = tmp / "traced" / "repo"
    _build(root, env)
    trace = tmp / "trace"
    run_measured([*_streams(), "merge"], root, {**env, "GIT_TRACE": str(trace)})
    return len(re.findall(r"trace: built-in: git ", trace.read_text(encoding="utf-8", errors="replace")))


def run(quick: bool) -> dict[str, object]:
    reps = 1 if quick else 7
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="streams-bench-merge-", dir=bench_tmpdir()) as tmp_name:
        tmp = Path(tmp_name)
        env = hermetic_env(tmp / "home")
        a_wall: list[float] = []
        a_cpu: list[float] = []
        b_wall: list[float] = []
        b_cpu: list[float] = []
        b_land: list[float] = []
        for i in range(reps):
            progress(f"merge: repetition {i + 1} of {reps}: building two repositories of {STREAMS} streams")
            ours, raw = tmp / f"r{i}a" / "repo", tmp / f"r{i}b" / "repo"
            _build(ours, env)
            _build(raw, env)
            for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
                if side == "a":
                    w, c = run_measured([*_streams(), "merge"], ours, env)
                    a_wall.append(w)
                    a_cpu.append(c)
                else:
                    w, c, land = _raw(raw, env)
                    b_wall.append(w)
                    b_cpu.append(c)
                    b_land.append(land)
            for root in (ours, raw):
                if _landed(root, env) != STREAMS:
                    raise RuntimeError(f"{root}: {_landed(root, env)} of {STREAMS} streams landed")
        processes = _git_processes(tmp, env)
        fs = filesystem_of(tmp)
    ratios = [a / b for a, b in zip(a_wall, b_wall, strict=True)]
    cpu_ratios = [a / b for a, b in zip(a_cpu, b_cpu, strict=True) if b > 0]
    land_ratios = [a / b for a, b in zip(a_wall, b_land, strict=True)]
    return {
        "what": f"`streams merge` landing {STREAMS} clean streams vs raw git (merge-tree + commit-tree + "
        "update-ref + read-tree -m -u, then worktree remove + branch -D), per stream",
        "runs": reps,
        "files": FILES,
        "filesystem": fs,
        "streams_merge_s": round(statistics.median(a_wall), 4),
        "raw_git_s": round(statistics.median(b_wall), 4),
        "raw_land_s": round(statistics.median(b_land), 4),
        "ratio": round(statistics.median(ratios), 2),
        "ratio_min_max": rounded([min(ratios), max(ratios)], 2),
        "ratio_to_raw_land": round(statistics.median(land_ratios), 2),
        "streams_merge_cpu_s": round(statistics.median(a_cpu), 4),
        "raw_git_cpu_s": round(statistics.median(b_cpu), 4),
        "cpu_ratio": round(statistics.median(cpu_ratios), 2) if cpu_ratios else None,
        "cpu_ratio_min_max": rounded([min(cpu_ratios), max(cpu_ratios)], 2) if cpu_ratios else None,
        "check_s": 0.0,
        "target_ratio": TARGET_RATIO,
        "meets_target": statistics.median(ratios) <= TARGET_RATIO,
        "git_processes_per_merge": processes,
        "git_processes_per_landing": round(processes / STREAMS, 1),
        "git_processes_raw": 6 * STREAMS,
        "load_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]],
        "python": sys.version.split()[0],
        "note": "2 shared cores, other engineers working: read the medians and the CPU ratio",
    }
