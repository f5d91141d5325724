"""`streams progress --completion N` versus raw git writing, adding and committing the same file.

A repository of 16 streams (hooks installed by `streams start`), one stream started. Side by side
in one run, alternating A B, B A, … so drift in the machine's load hits both:

- A: ``streams progress --completion N`` in the stream's worktree, as an agent types it (the
  console script; interpreter start-up included): it rewrites ``.streams/stream-NAME.md`` and
  commits that file alone;
- B: the bench writes the same file with the same kind of change, then ``git add`` and ``git
  commit -q -m …`` in the same worktree (the hooks run for both).

Target: A at most 3 times B (issue 10, item 11). Figures: medians of wall seconds and of CPU seconds (user +
system of every process each side waited for: steadier on a shared machine), the ratio pair by
pair (median, min, max: the spread says how noisy the machine was), and how many git processes
one A starts (counted with ``GIT_TRACE``). Python runs with its bytecode cache on (a private
PYTHONPYCACHEPREFIX), as an installed streams would.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bench.common import git, hermetic_env, progress, rounded, run_measured

STREAMS = 16
TARGET_RATIO = 3.0


def _config() -> str:
    lines = ["version: 1", "base: main", "shared:", "  - /pyproject.toml", "streams:"]
    for i in range(STREAMS):
        lines += [f"  s{i:02d}:", f"    owns: [src/s{i:02d}/**, docs/s{i:02d}.md]"]
    return "\n".join(lines) + "\n"


def _build(root: Path, env: Mapping[str, str]) -> Path:
    """The repository at ``root`` with stream s00 started; its worktree."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main", env=env)
    files = {"pyproject.toml": "[project]\nname = 'bench'\n", "streams.yaml": _config(), "README.md": "# bench\n"}
    for i in range(STREAMS):
        for k in range(20):
            files[f"src/s{i:02d}/mod{k:02d}.py"] = f"VALUE = {k}\n"
        files[f"docs/s{i:02d}.md"] = f"# s{i:02d}\n"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "add", "-A", env=env)
    git(root, "commit", "-q", "-m", "initial", env=env)
    run_measured([*_streams(), "start", "s00"], root, env)
    return root.parent / f"{root.name}.streams" / "s00"


def _streams() -> list[str]:
    """The console script beside this interpreter (what an agent runs), else ``python -m streams``."""
    script = Path(sys.executable).parent / "streams"
    return [str(script)] if script.exists() else [sys.executable, "-m", "streams"]


def _raw_git(wt: Path, rel: str, k: int, env: Mapping[str, str]) -> tuple[float, float]:
    """Write the progress file with a new completion, `git add` it, `git commit` it: (wall, cpu)."""
    import resource
    import time

    path = wt / rel
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^completion: \d+$", f"completion: {k}", text), encoding="utf-8")
    git(wt, "add", "--", rel, env=env)
    git(wt, "commit", "-q", "-m", f"progress(s00): {k}%", env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _git_processes(wt: Path, env: Mapping[str, str], trace: Path) -> int:
    """How many git processes one `streams progress` starts (hooks' git included)."""
    traced = {**env, "GIT_TRACE": str(trace)}
    run_measured([*_streams(), "progress", "--completion", "100"], wt, traced)
    text = trace.read_text(encoding="utf-8", errors="replace") if trace.exists() else ""
    return len(re.findall(r"trace: built-in: git ", text))


def run(quick: bool) -> dict[str, object]:
    reps = 3 if quick else 21
    with tempfile.TemporaryDirectory(prefix="streams-bench-progress-") as tmp_name:
        tmp = Path(tmp_name)
        env = hermetic_env(tmp / "home")
        progress("progress: building a repository of 16 streams, starting one")
        wt = _build(tmp / "repo", env)
        rel = ".streams/stream-s00.md"
        for k in range(3):  # warm-up: bytecode cache, hook caches, page cache
            run_measured([*_streams(), "progress", "--completion", str(k)], wt, env)
            _raw_git(wt, rel, 50 + k, env)
        a_wall: list[float] = []
        a_cpu: list[float] = []
        b_wall: list[float] = []
        b_cpu: list[float] = []
        for i in range(reps):
            sides = ("a", "b") if i % 2 == 0 else ("b", "a")
            for side in sides:
                if side == "a":
                    w, c = run_measured([*_streams(), "progress", "--completion", str(i % 100)], wt, env)
                    a_wall.append(w)
                    a_cpu.append(c)
                else:
                    w, c = _raw_git(wt, rel, (i + 50) % 100, env)
                    b_wall.append(w)
                    b_cpu.append(c)
        ratios = [a / b for a, b in zip(a_wall, b_wall, strict=True)]
        cpu_ratios = [a / b for a, b in zip(a_cpu, b_cpu, strict=True) if b > 0]
        processes = _git_processes(wt, env, tmp / "trace")
        commits = int(git(wt, "rev-list", "--count", "HEAD", env=env).strip())
    return {
        "what": "`streams progress --completion N` vs the bench writing the same file + `git add` + `git commit`",
        "runs": reps,
        "streams_progress_s": round(statistics.median(a_wall), 4),
        "raw_git_s": round(statistics.median(b_wall), 4),
        "ratio": round(statistics.median(ratios), 2),
        "ratio_min_max": rounded([min(ratios), max(ratios)], 2),
        "streams_progress_cpu_s": round(statistics.median(a_cpu), 4),
        "raw_git_cpu_s": round(statistics.median(b_cpu), 4),
        "cpu_ratio": round(statistics.median(cpu_ratios), 2) if cpu_ratios else None,
        "target_ratio": TARGET_RATIO,
        "meets_target": statistics.median(ratios) <= TARGET_RATIO,
        "git_processes_per_progress": processes,
        "commits_made": commits,
        "python": sys.version.split()[0],
        "note": "2 shared cores, other engineers working: read the medians and the CPU ratio",
    }
