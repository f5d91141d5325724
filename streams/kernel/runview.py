"""The latest run of ``streams run`` as the dashboard shows it, from the runner's records as plain
JSON: its figures (running, queued, verified, failed, elapsed, expected remaining) and each
stream's cell.

``streams.status.read_run`` (from ``streams.runstate``'s records) and the quick ``status --json``
(``streams.cli.quickstatus``, from ``runs/<id>/state.json`` read here) compute the figures with
``figures``; ``read`` reads a run's state for the quick path and answers only when the file has
the shape ``runstate.RunRecord.from_json`` accepts (``tests/test_quickstatus.py`` keeps the field
names and states here equal to the dataclasses' and enums'). Standard library only: the kernel floor.
"""

from __future__ import annotations

import os

from streams.kernel import leanjson, paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

LATEST = "latest"  # runs/latest: the id of the newest run
RUN_STATES = (
    "running", "halting", "interrupted", "completed", "completed_with_failures", "halted", "blocked",
    "awaiting_approval", "paused", "aborted",
)  # fmt: skip
STREAM_STATES = (
    "pending", "queued", "running", "retry_wait", "verified", "landed", "failed", "blocked", "skipped", "interrupted",
)  # fmt: skip
WAITING = ("pending", "queued", "retry_wait")
FAILED = ("failed", "blocked", "interrupted")
RUN_FIELDS = frozenset({
    "run_id", "plan_digest", "names", "waves", "status", "wave", "started", "ended", "halt_reason", "phase",
    "paused_by", "merge", "gate", "jobs", "streams",
})  # fmt: skip
RUN_REQUIRED = frozenset({"run_id", "plan_digest", "names", "waves", "status"})  # status: from_json reads it
STREAM_FIELDS = frozenset({
    "name", "wave", "pool", "status", "attempts", "klass", "cause", "blocked_by", "retries_used", "next_at", "since",
    "worktree", "fingerprint", "tip",
})  # fmt: skip
STREAM_REQUIRED = frozenset({"name", "wave", "status"})
ATTEMPT_FIELDS = frozenset({
    "n", "command", "fallback", "pid", "start_time", "submit", "started", "ended", "exit", "signal", "klass", "cause",
    "since", "tip_at_start", "wip", "log", "commits", "files", "insertions", "deletions", "check_passed",
    "check_failed", "flags",
})  # fmt: skip
ATTEMPT_REQUIRED = frozenset({"n", "command"})
RUNNER_FIELDS = frozenset({"run_id", "pid", "start_time", "holder", "started", "heartbeat"})


def figures(
    states: Sequence[str],
    times: Sequence[float],
    running_since: Sequence[float],
    status: str,
    started: float,
    ended: float | None,
    now: float,
) -> tuple[int, int, int, int, float, float | None]:
    """(running, queued, verified, failed, elapsed, expected remaining) of a run whose streams stand
    at ``states``, whose ended attempts took ``times`` and whose running attempts began at
    ``running_since``: each running stream's median attempt time less its time so far, plus the
    median for each waiting one, over the streams running (at least 1); None before any attempt
    ended or once the run is not running."""
    running = sum(st == "running" for st in states)
    queued = sum(st in WAITING for st in states)
    verified = sum(st in ("verified", "landed") for st in states)
    failed = sum(st in FAILED for st in states)
    elapsed = max(0.0, (ended or now) - started)
    if status != "running" or not times or not running + queued:
        return running, queued, verified, failed, elapsed, None
    import statistics  # here: only a run in progress needs it (3 ms of every status)

    median = statistics.median(times)
    left = queued * median
    for since in running_since:
        left += max(0.0, median - (now - since))
    return running, queued, verified, failed, elapsed, left / max(1, running)


def _shaped(value: object, known: frozenset[str], required: frozenset[str]) -> bool:
    return isinstance(value, dict) and set(value) <= known and required <= set(value)


def read(common_dir: str) -> tuple[dict[str, object], dict[str, object] | None] | bool | None:
    """``(state, runner)`` of the newest run (``runner``: its ``runner.json``, None when that
    cannot be read, as ``runstate.read_runner`` says); None when no run is recorded; False when
    the state is not one ``runstate`` would read (the caller asks the full way)."""
    runs = paths.runs_dir(common_dir)
    try:
        with open(os.path.join(runs, LATEST), encoding="utf-8") as fh:
            run_id = fh.read().strip()
    except OSError:
        return None
    if not run_id:
        return None
    folder = paths.run_dir(common_dir, run_id)
    try:
        with open(os.path.join(folder, "state.json"), encoding="utf-8") as fh:
            state = leanjson.loads(fh.read())
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict) or not _shaped(state, RUN_FIELDS, RUN_REQUIRED) or state["status"] not in RUN_STATES:
        return False
    streams = state.get("streams", {})
    if not isinstance(streams, dict) or not isinstance(state["waves"], list):
        return False
    for s in streams.values():
        if not _shaped(s, STREAM_FIELDS, STREAM_REQUIRED) or s["status"] not in STREAM_STATES:
            return False
        attempts = s.get("attempts", [])
        if not isinstance(attempts, list) or not all(_shaped(a, ATTEMPT_FIELDS, ATTEMPT_REQUIRED) for a in attempts):
            return False
    runner: dict[str, object] | None = None
    try:
        with open(os.path.join(folder, "runner.json"), encoding="utf-8") as fh:
            found = leanjson.loads(fh.read())
        if isinstance(found, dict) and set(found) == RUNNER_FIELDS:
            runner = found
    except (OSError, ValueError):
        runner = None
    return state, runner
