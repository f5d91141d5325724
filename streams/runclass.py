"""The closed sets of ``streams run``: how an attempt ended (its class) and where a stream stands.

Shared by the runner, the verification after an attempt, the status dashboard and the reports.
"""

from __future__ import annotations

from enum import StrEnum


class FailureClass(StrEnum):
    """Why an attempt did not end verified (DESIGN "Failure classes"), each with a one-line cause."""

    FAILED = "failed"  # exit code not special
    BLOCKED = "blocked"  # exit 3: needs a human
    TEMPFAIL = "tempfail"  # exit 75: try again later
    TIMEOUT = "timeout"  # the wall-clock limit
    STALL = "stall"  # no commit, progress write or log output for stall_timeout
    CRASH = "crash"  # a signal we did not send
    LAUNCH_ERROR = "launch_error"  # the command or the worktree is missing
    CHECK_FAILED = "check_failed"
    SCOPE_VIOLATION = "scope_violation"
    EVIDENCE_MISMATCH = "evidence_mismatch"  # exit 0 with nothing in git to show for it
    CONFLICT = "conflict"  # the merge queue ejected it: a conflict with the base
    INTERRUPTED = "interrupted"  # our Ctrl-C, a pause --now, a runner crash: not a failure, no retry spent


RETRYABLE = frozenset({FailureClass.TEMPFAIL, FailureClass.TIMEOUT, FailureClass.STALL, FailureClass.CRASH})
# after these, a stream with a `fallback:` command retries with it
FALLBACK_AFTER = frozenset({FailureClass.FAILED, FailureClass.CRASH})


class StreamStatus(StrEnum):
    """Where a stream of a run stands."""

    PENDING = "pending"  # its wave has not come
    QUEUED = "queued"  # its wave is running; waiting for a slot
    RUNNING = "running"  # an attempt's agent is running (or being stopped)
    RETRY_WAIT = "retry_wait"  # waiting out the backoff before its next attempt
    VERIFIED = "verified"  # exit 0 and git agrees
    LANDED = "landed"  # verified and landed on the base by the merge queue
    FAILED = "failed"  # its last attempt failed and no retry is left (class says why)
    BLOCKED = "blocked"  # it said it needs a human (exit 3)
    SKIPPED = "skipped"  # a dependency failed (blocked_by) or the run halted before it
    INTERRUPTED = "interrupted"  # stopped by us (Ctrl-C, halt now): run it again

    @property
    def settled(self) -> bool:
        return self not in (StreamStatus.PENDING, StreamStatus.QUEUED, StreamStatus.RUNNING, StreamStatus.RETRY_WAIT)


class RunStatus(StrEnum):
    RUNNING = "running"
    HALTING = "halting"  # no new starts (a critical failure or the --halt threshold): running ones finish
    INTERRUPTED = "interrupted"  # Ctrl-C, or the runner died (found so by the next command)
    COMPLETED = "completed"  # every stream verified
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    HALTED = "halted"
    BLOCKED = "blocked"  # finished, and a stream waits for a human
