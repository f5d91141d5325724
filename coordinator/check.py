"""The one runner of a configured ``check`` (a test command): for the merge queue on a candidate in
the integration worktree, and for ``streams run``'s verification of an attempt in its worktree.

``sh -c CHECK`` in its own session (its own process group), stdin from /dev/null, stdout and stderr
to a log file, git's repository-locating variables stripped. With a timeout: SIGTERM to the group,
a grace period, SIGKILL. Whatever the ending (exit, timeout, our own Ctrl-C), no process of the
group is left behind: a check's stray server or test worker dies with it. The result carries the
exit code, the log's tail and, when the output says so (pytest's summary line, "3 failed, 9
passed in 0.12s"), the passed and failed counts.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from coordinator.supervise import log_tail
from streams import git
from streams.kernel.procs import signal_group

TAIL_LINES = 20  # lines of the output kept in the result (and in a failure's one-line cause)
TAIL_BYTES = 64 * 1024  # read this much of the log's end, at most
GRACE = 2.0  # seconds between SIGTERM and SIGKILL at the timeout

# pytest's summary ("== 3 failed, 9 passed, 1 error in 0.52s =="), also the short form "9 passed".
_COUNT = re.compile(r"\b(\d+) (passed|failed|errors?)\b")


@dataclass(frozen=True)
class CheckResult:
    """How a ``check`` command ended.

    ============  ===========  ====================================================================
    field         type         meaning
    ============  ===========  ====================================================================
    passed        bool         it exited 0 within its time
    exit_code     int | null   its exit code; negative: the signal that ended it; null: timed out
    passed_count  int | null   tests passed, when the output says (pytest's summary line)
    failed_count  int | null   tests failed or in error, when the output says
    log_tail      str          the output's last lines (at most 20)
    timed_out     bool         stopped at the timeout (TERM, grace, KILL to its process group)
    log           str          the file holding the whole output
    ============  ===========  ====================================================================
    """

    passed: bool
    exit_code: int | None
    passed_count: int | None
    failed_count: int | None
    log_tail: str
    timed_out: bool = False
    log: str = ""

    def summary(self, command: str, timeout: float | None = None) -> str:
        """One line: how ``command`` ended, and its output's tail."""
        tail = " / ".join(ln.strip() for ln in self.log_tail.splitlines() if ln.strip())
        if self.timed_out:
            ended = f"timed out after {timeout:g}s" if timeout is not None else "timed out"
        else:
            ended = f"exited {self.exit_code}"
        return f"`{command}` {ended}: {tail or 'no output'}"


def run_check(
    command: str,
    cwd: Path,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    grace: float = GRACE,
) -> CheckResult:
    """Run ``sh -c command`` in ``cwd``, its output to ``log`` (created, parents too); ``env`` added
    to the environment. ``timeout`` (seconds, None: no limit) ends its whole process group."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**git.no_git_env(), **(env or {})}
    timed_out = False
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            ["sh", "-c", command], cwd=cwd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
            env=full_env, start_new_session=True,
        )  # fmt: skip
        try:
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                signal_group(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)
                signal_group(proc.pid, signal.SIGKILL)
                code = proc.wait()
        finally:  # an exit, a timeout, or our own Ctrl-C: nothing of the group outlives the check
            signal_group(proc.pid, signal.SIGKILL)
            if proc.returncode is None:
                proc.wait()
    tail = log_tail(log, TAIL_BYTES)
    passed_count, failed_count = parse_counts(tail)
    return CheckResult(
        passed=code == 0 and not timed_out,
        exit_code=None if timed_out else code,
        passed_count=passed_count,
        failed_count=failed_count,
        log_tail="\n".join(tail.splitlines()[-TAIL_LINES:]),
        timed_out=timed_out,
        log=str(log),
    )


def parse_counts(output: str) -> tuple[int | None, int | None]:
    """(passed, failed) from the last line of ``output`` that reports test counts the way pytest
    does; errors count as failed; (None, None) when no line does."""
    for line in reversed(output.splitlines()):
        found = _COUNT.findall(line)
        if not any(word in ("passed", "failed") for _, word in found):
            continue
        counts = {"passed": 0, "failed": 0}
        for n, word in found:
            counts["passed" if word == "passed" else "failed"] += int(n)
        return counts["passed"], counts["failed"]
    return None, None
