"""What the runner's judgement of one attempt costs: a WIP snapshot and ``verify_attempt``.

A repository of 10,000 files (1,000 with ``--quick``) in four streams, one started; in its worktree
10 tracked files changed and 5 untracked ones added. Figures (median seconds):

- ``snapshot``: ``streams.wip.snapshot`` (its temporary index seeded from a copy of the worktree's
  own, so ``git add -A`` re-reads only what changed), a new ref each time;
- ``snapshot_seeded_from_head``: the same tree through an index seeded from HEAD's tree instead
  (``read-tree HEAD``; every file hashed again): why the copy is the seed;
- ``git_status``: ``git status --porcelain`` in the same worktree, the floor any "is it dirty?" pays;
- ``verify_attempt``: the whole verdict (scope, evidence, numstat, snapshot; no check) after three
  work commits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import bench_tmpdir, generate_repo, git, hermetic_env, median_of, progress, rounded

STREAMS = ("s0", "s1", "s2", "s3")


def _config() -> str:
    lines = ["version: 1", "base: main", "streams:"]
    for s in STREAMS:
        lines += [f"  {s}:", f"    owns: [{s}/**]"]
    return "\n".join(lines) + "\n"


def run(quick: bool) -> dict[str, object]:
    n_files, runs = (1000, 3) if quick else (10000, 15)
    with tempfile.TemporaryDirectory(prefix="streams-bench-wip-", dir=bench_tmpdir()) as tmp:
        env = hermetic_env(Path(tmp) / "home")
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)  # the in-process calls below run git with this environment
        try:
            return _measure(Path(tmp) / "repo", n_files, runs, env)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _measure(root: Path, n_files: int, runs: int, env: dict[str, str]) -> dict[str, object]:
    from coordinator.runverify import verify_attempt
    from streams import wip
    from streams.workspace import discover, load_config

    progress(f"wip: generating {n_files} files")
    generate_repo(root, n_files, env=env, top_dirs=STREAMS, extra_files={"streams.yaml": _config()})
    subprocess.run([sys.executable, "-m", "streams", "start", "s0"], cwd=root, env=env, check=True, capture_output=True)
    wt = root.parent / f"{root.name}.streams" / "s0"
    since = git(wt, "rev-parse", "HEAD", env=env).strip()
    tracked = git(wt, "ls-files", "s0", env=env).split()
    for rel in tracked[:10]:
        (wt / rel).write_text("changed\n")
    for k in range(5):
        (wt / f"s0/new{k}.py").write_text(f"new = {k}\n")
    counter = iter(range(10**6))

    def snap() -> None:
        assert wip.snapshot(wt, f"refs/streams/wip/s0/bench/{next(counter)}", "bench") is not None

    def from_head() -> None:
        with tempfile.TemporaryDirectory() as d:
            e = {**env, "GIT_INDEX_FILE": str(Path(d) / "index")}
            git(wt, "read-tree", "HEAD", env=e)
            git(wt, "add", "-A", "--", ".", env=e)
            git(wt, "write-tree", env=e)

    progress("wip: snapshot")
    t_snap, s_snap = median_of(snap, runs, warmup=1)
    t_head, _ = median_of(from_head, runs, warmup=1)
    t_status, _ = median_of(lambda: git(wt, "status", "--porcelain", env=env), runs, warmup=1)
    for k in range(3):
        (wt / tracked[20 + k]).write_text(f"work {k}\n")
        git(wt, "commit", "-q", "-am", f"work {k}", env=env)
    ws = discover(root)
    cfg = load_config(ws)

    def judge() -> None:
        v = verify_attempt(
            ws, cfg, "s0", wt, since, check=None, check_log=root / "check.log",
            wip_ref=f"refs/streams/wip/s0/judge/{next(counter)}", check_timeout=60,
        )  # fmt: skip
        assert v.verified, v.cause

    progress("wip: verify_attempt")
    t_judge, s_judge = median_of(judge, runs, warmup=1)
    return {
        "files": n_files,
        "runs": runs,
        "snapshot_s": round(t_snap, 4),
        "snapshot_samples_s": rounded(s_snap, 4),
        "snapshot_seeded_from_head_s": round(t_head, 4),
        "git_status_s": round(t_status, 4),
        "verify_attempt_s": round(t_judge, 4),
        "verify_attempt_samples_s": rounded(s_judge, 4),
    }
