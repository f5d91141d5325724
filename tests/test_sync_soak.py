"""`streams sync --watch` for 500 passes: open file descriptors and child processes do not grow.

Counts come from /proc. Between two passes a git child may be running, so each count is the
minimum over ten samples taken at ten different passes: anything leaked is in every sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo, run_cli

ITERATIONS = 500
EARLY = range(50, 60)
LATE = range(ITERATIONS - 15, ITERATIONS - 5)

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> int:
    """Processes whose parent is ``pid`` (zombies included: an unreaped child is a leak too)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                count += 1
    return count


def test_watch_does_not_leak_fds_or_children(repo: Repo) -> None:
    assert run_cli(["start"], repo.root).code == 0
    argv = ["sync", "--watch", "--interval", "5ms", "--iterations", str(ITERATIONS), "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", *argv],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    early: list[tuple[int, int]] = []
    late: list[tuple[int, int]] = []
    rebased = 0
    try:
        assert proc.stdout is not None
        for n in range(1, ITERATIONS + 1):
            line = proc.stdout.readline()
            assert line, f"the watch stopped after {n - 1} passes: {proc.stderr.read() if proc.stderr else ''}"
            envelope = json.loads(line)
            assert envelope["ok"], envelope
            assert envelope["data"]["iteration"] == n
            rebased += sum(s["outcome"] == "rebased" for s in envelope["data"]["report"]["streams"])
            if n in EARLY:
                early.append((open_fds(proc.pid), children(proc.pid)))
            elif n in LATE:
                late.append((open_fds(proc.pid), children(proc.pid)))
            if n % 100 == 0:  # give the passes real work now and then: every stream rebases
                repo.write("README.md", f"# demo {n}\n")
                repo.commit_all(f"main {n}")
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    fds_early, kids_early = min(f for f, _ in early), min(c for _, c in early)
    fds_late, kids_late = min(f for f, _ in late), min(c for _, c in late)
    assert fds_late <= fds_early, (early, late)
    assert kids_late <= kids_early == 0, (early, late)
    assert rebased >= 3 * 3  # the commits to main were picked up (three streams each time)
