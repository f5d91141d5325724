"""The closed sets of ``streams run``: how an attempt ended, as the runner, the reports and the
metrics name it (DESIGN "Coordination": failure classes, evidence flags), where a stream and a run
stand, and the one rule by which a progress file says why a stream needed no change.
"""

from __future__ import annotations

import re
from enum import StrEnum

from streams.progress import Progress, ProgressStatus


class FailureClass(StrEnum):
    """The closed set of ways an attempt fails (each recorded with a one-line cause); ``interrupted``
    and ``skipped`` are outcomes that are not failures and cost no retry."""

    FAILED = "failed"  # the agent exited with a code that is not special
    BLOCKED = "blocked"  # exit 3: needs a human (the question is in the progress file)
    TEMPFAIL = "tempfail"  # exit 75: try again later
    TIMEOUT = "timeout"  # the wall-clock timeout stopped it
    STALL = "stall"  # no commit, progress write or log output for stall_timeout
    CRASH = "crash"  # killed by a signal we did not send
    LAUNCH_ERROR = "launch_error"  # the command or the worktree is missing
    CHECK_FAILED = "check_failed"  # exit 0, but the configured check failed
    SCOPE_VIOLATION = "scope_violation"  # exit 0, but a commit changes paths outside the scope
    EVIDENCE_MISMATCH = "evidence_mismatch"  # exit 0, but git shows no work and the progress no reason
    CONFLICT = "conflict"  # the merge queue could not land it
    INTERRUPTED = "interrupted"  # our Ctrl-C, a pause --now, a runner crash: not a failure
    SKIPPED = "skipped"  # never ran: a dependency failed (blocked_by names it)


RETRIED = frozenset({FailureClass.TEMPFAIL, FailureClass.TIMEOUT, FailureClass.STALL, FailureClass.CRASH})


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
    AWAITING_APPROVAL = "awaiting_approval"  # a wave's report waits at its gate (`streams approve N`)
    PAUSED = "paused"  # `streams pause`: no new starts; `streams resume` goes on
    ABORTED = "aborted"  # `streams abort`: its agents stopped; it will not go on


class EvidenceFlag(StrEnum):
    """What a wave report flags beside a verdict: the agent's claim against git."""

    CLAIMED_DONE_NO_COMMITS = "claimed_done_no_commits"  # progress completed, no work commit, no reason
    COMMITS_BUT_CLAIMED_FAILED = "commits_but_claimed_failed"  # work commits, progress says failed
    PLACEHOLDER_TEXT = "placeholder_text"
    DIRTY_WORKTREE = "dirty_worktree"  # uncommitted leftovers (saved as a WIP snapshot)
    BEHIND_BASE = "behind_base"


# A Completed Tasks item of this form, in a progress file whose status is ``completed``, is how an
# agent says its stream needed no change: ``No change needed: <why>`` (any case; the reason may not
# be empty). `streams progress --done "No change needed: the API already returns 404"` writes one.
NO_CHANGE_PREFIX = "no change needed:"
_NO_CHANGE = re.compile(r"^\s*no change needed\s*:\s*(\S.*)$", re.IGNORECASE)


def no_change_reason(progress: Progress | None) -> str | None:
    """Why the stream needed no change, when its progress file says so by the rule above; else None."""
    if progress is None or progress.status != ProgressStatus.COMPLETED:
        return None
    for item in progress.completed:
        m = _NO_CHANGE.match(item)
        if m:
            return m.group(1).strip()
    return None
