"""Config scale (issue 16): 10, 200 and 1,000 streams on a generated repository of 20,000 files.

Each stream owns one package directory (``areaNN/pkgMM/**``); stream 0 also owns a floating
``*.md``, every 50th stream a pattern that matches nothing (a dead-pattern warning), and
``pyproject.toml`` is shared. Every stream has a branch with one commit of its own in its scope
(made with one ``git fast-import``), none checked out: a 20,000-file worktree per stream is not what
this measures. Every command runs as a user types it (one ``python -m streams`` process, start-up
included); CPU is the process and everything it waited for (``getrusage(RUSAGE_CHILDREN)``), the
steadier figure on a shared machine. Per size:

- ``list``: `streams list` vs `python -I -S -c pass` (the Python floor), interleaved pairs.
  Target at 1,000 streams: <= 10x in CPU.
- ``owner``: `streams owner PATH` vs the same floor (no target: information).
- ``sync_after_edit``: `streams sync` right after a commit on the base that edits streams.yaml
  (one stream's description: the configuration, its blob and the base's tree all change, the
  tracked-path set does not), vs the warm `streams sync` (nothing changed since the last one),
  interleaved pairs. Target at 1,000 streams: <= 2x.
- ``verify``: `streams verify` over every stream: wall, CPU, and the git processes it starts,
  counted from git's own trace (``GIT_TRACE2_EVENT``: one ``start`` event per git process).
  Target at 1,000 streams: <= 5 git processes.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    bench_tmpdir,
    filesystem_of,
    generate_repo,
    git,
    hermetic_env,
    progress,
    rounded,
    run_measured,
)

FILES = 20_000
SIZES = (10, 200, 1_000)
QUICK_SIZES = (10, 100)
QUICK_FILES = 2_000
TOP_DIRS = [f"area{i:02d}" for i in range(40)]  # 40 x 25 packages: a package per stream up to 1,000
TARGET_LIST_CPU = 10.0
TARGET_SYNC_EDIT = 2.0
TARGET_VERIFY_GIT = 5

Measured = tuple[float, float]  # (wall, cpu) seconds


def owned_dir(i: int) -> str:
    return f"{TOP_DIRS[i % len(TOP_DIRS)]}/pkg{i // len(TOP_DIRS):02d}"


def streams_yaml(n: int, edit: int = 0) -> str:
    lines = ["version: 1", "base: main", "shared: [pyproject.toml]", "streams:"]
    for i in range(n):
        owns = [f"{owned_dir(i)}/**"]
        if i == 0:
            owns.append("'*.md'")
        if i % 50 == 1:
            owns.append(f"{owned_dir(i)}-generated/")
        lines += [f"  s{i:04d}:", f"    owns: [{', '.join(owns)}]"]
        if i == 0:
            lines.append(f"    description: edit {edit}")
    return "\n".join(lines) + "\n"


def build(root: Path, n: int, files: int, env: dict[str, str]) -> Path:
    """The repository with ``n`` stream branches, one commit each, and the caches warm."""
    repo = root / "repo"
    generate_repo(
        repo,
        files,
        env=env,
        top_dirs=TOP_DIRS,
        extra_files={"streams.yaml": streams_yaml(n), "pyproject.toml": "[project]\n", "docs/guide.md": "# guide\n"},
    )
    main = git(repo, "rev-parse", "main", env=env).strip()
    chunks = []
    for i in range(n):
        path = f"{owned_dir(i)}/work.py".encode()
        chunks.append(
            b"commit refs/heads/streams/s%04d\ncommitter Bench <bench@example.com> 1767225700 +0000\n"
            b"data 4\nwork\nfrom %s\nM 100644 inline %s\ndata 8\n# work!\n\n" % (i, main.encode(), path)
        )
    git(repo, "fast-import", "--quiet", "--done", env=env, input=b"".join(chunks) + b"done\n")
    return repo


def streams_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams", *args]


def pairs(reps: int, a: Callable[[], Measured], b: Callable[[], Measured]) -> tuple[list[Measured], list[Measured]]:
    """``reps`` interleaved pairs (A B, B A, ...): drift in the machine's load hits both sides."""
    first: list[Measured] = []
    second: list[Measured] = []
    for rep in range(reps):
        for side in ("a", "b") if rep % 2 == 0 else ("b", "a"):
            (first if side == "a" else second).append(a() if side == "a" else b())
    return first, second


def ratio_figures(ours: list[Measured], floor: list[Measured], names: tuple[str, str]) -> dict[str, object]:
    o, f = names
    ow, oc = statistics.median(w for w, _ in ours), statistics.median(c for _, c in ours)
    fw, fc = statistics.median(w for w, _ in floor), statistics.median(c for _, c in floor)
    return {
        f"{o}_s": round(ow, 4),
        f"{f}_s": round(fw, 4),
        f"{o}_cpu_s": round(oc, 4),
        f"{f}_cpu_s": round(fc, 4),
        "ratio": round(ow / fw, 2),
        "cpu_ratio": round(oc / fc, 2),
        "pair_cpu_ratios": rounded([a[1] / b[1] for a, b in zip(ours, floor, strict=True)], 2),
        "samples": {f"{o}_s": rounded([w for w, _ in ours]), f"{f}_s": rounded([w for w, _ in floor])},
    }


def count_git(repo: Path, env: dict[str, str], trace: Path, *args: str) -> tuple[Measured, list[str]]:
    """(wall, cpu) of one ``streams`` command, and the git commands it started (git's trace)."""
    trace.unlink(missing_ok=True)
    measured = run_measured(streams_cmd(*args), repo, {**env, "GIT_TRACE2_EVENT": str(trace)})
    started = []
    if trace.exists():
        for line in trace.read_text().splitlines():
            event = json.loads(line)
            if event.get("event") == "start":
                started.append(" ".join(event.get("argv", [])[:3]))
    return measured, started


def one_size(tmp: Path, n: int, files: int, reps: int, env: dict[str, str]) -> dict[str, object]:
    root = tmp / f"n{n}"
    root.mkdir()
    progress(f"scale: {n} streams on {files} files: generating")
    repo = build(root, n, files, env)
    run_measured(streams_cmd("check"), repo, env)  # the tree check and the hooks' cache, once

    def floor() -> Measured:
        return run_measured([sys.executable, "-I", "-S", "-c", "pass"], repo, env)

    def streams_list() -> Measured:
        return run_measured(streams_cmd("list"), repo, env)

    def owner() -> Measured:
        return run_measured(streams_cmd("owner", f"{owned_dir(n - 1)}/x.py"), repo, env)

    streams_list(), owner(), floor()  # page cache and bytecode warm
    list_ours, list_floor = pairs(reps, streams_list, floor)
    owner_ours, owner_floor = pairs(reps, owner, floor)
    progress(f"scale: {n} streams: list {statistics.median(c for _, c in list_ours):.3f} s CPU")

    edits = [0]

    def after_edit() -> Measured:
        edits[0] += 1
        (repo / "streams.yaml").write_text(streams_yaml(n, edits[0]))
        git(repo, "commit", "-q", "-am", f"streams.yaml: edit {edits[0]}", env=env)
        return run_measured(streams_cmd("sync"), repo, env)

    def warm() -> Measured:
        return run_measured(streams_cmd("sync"), repo, env)

    warm()
    edit_side, warm_side = pairs(reps, after_edit, warm)
    progress(
        f"scale: {n} streams: sync after an edit {statistics.median(w for w, _ in edit_side):.3f} s, "
        f"warm {statistics.median(w for w, _ in warm_side):.3f} s"
    )

    trace = root / "trace.json"
    count_git(repo, env, trace, "verify")  # warm
    verify_runs = [count_git(repo, env, trace, "verify") for _ in range(reps)]
    started = verify_runs[-1][1]
    verify = {
        "wall_s": round(statistics.median(m[0] for m, _ in verify_runs), 3),
        "cpu_s": round(statistics.median(m[1] for m, _ in verify_runs), 3),
        "git_processes": len(started),
        "git_commands": started if len(started) <= 10 else [*started[:5], "...", *started[-3:]],
        "samples_s": rounded([m[0] for m, _ in verify_runs]),
    }
    progress(f"scale: {n} streams: verify {verify['wall_s']} s, {verify['git_processes']} git processes")
    return {
        "streams": n,
        "list": ratio_figures(list_ours, list_floor, ("streams_list", "python_floor")),
        "owner": ratio_figures(owner_ours, owner_floor, ("streams_owner", "python_floor")),
        "sync_after_edit": ratio_figures(edit_side, warm_side, ("after_edit", "warm")),
        "verify": verify,
    }


def run(quick: bool) -> dict[str, object]:
    reps = 1 if quick else 5
    files = QUICK_FILES if quick else FILES
    sizes = QUICK_SIZES if quick else SIZES
    results: dict[str, object] = {"files": files, "runs": reps, "what": __doc__.split("\n\n")[0]}
    with tempfile.TemporaryDirectory(prefix="streams-bench-scale-", dir=bench_tmpdir()) as tmp_name:
        tmp = Path(tmp_name)
        env = hermetic_env(tmp / "home")
        results["filesystem"] = filesystem_of(tmp)
        for n in sizes:
            results[f"streams_{n}"] = one_size(tmp, n, files, reps, env)
    largest = results[f"streams_{sizes[-1]}"]
    assert isinstance(largest, dict)
    list_cpu = float(largest["list"]["cpu_ratio"])
    sync_ratio = float(largest["sync_after_edit"]["ratio"])
    sync_cpu = float(largest["sync_after_edit"]["cpu_ratio"])
    git_count = int(largest["verify"]["git_processes"])
    results["targets"] = {
        "at": sizes[-1],
        "list_cpu_ratio": {"value": list_cpu, "target": TARGET_LIST_CPU, "met": list_cpu <= TARGET_LIST_CPU},
        "sync_after_edit_ratio": {
            "value": sync_ratio,
            "cpu": sync_cpu,
            "target": TARGET_SYNC_EDIT,
            "met": sync_ratio <= TARGET_SYNC_EDIT,
        },
        "verify_git_processes": {
            "value": git_count,
            "target": TARGET_VERIFY_GIT,
            "met": git_count <= TARGET_VERIFY_GIT,
        },
    }
    return results
