"""The coordination log: ``<common-dir>/streams/events.jsonl``, one JSON object a line, append-only.

Standard library only (the hooks append to it). Each line is written with a single ``write`` on a
file opened with ``O_APPEND``, so lines from concurrent processes never interleave.

Every line has ``time`` (ISO 8601 UTC), ``ts`` (seconds since the epoch), ``event`` (one of
``KINDS``, named ``<area>.<what>``), ``pid``, and the fields listed for its kind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.kernel.durations import iso_utc
from streams.kernel.mutex import open_making_dirs
from streams.kernel.paths import events_file

# kind -> its own fields. `append` refuses a kind not listed here.
KINDS: dict[str, str] = {
    "lock.take": "a stream took a free lease",
    "lock.renew": "a stream took a lease it already held: new expiry",
    "lock.steal": "a live lease taken over with --force (the previous holder named)",
    "lock.wait": "a taker waits for a live lease of another stream",
    "lock.expire": "a taker found an expired lease",
    "lock.break": "that expired lease removed (renamed, re-read, unlinked)",
    "lock.release": "a lease released; cause: unlock, commit, rebase, landed, stop, force",
    "scope.reject": "a hook refused a change outside the stream's scope",
    "hooks.uninstall": "the scope hooks were removed (hooks, by: user@host)",
    "sync.rebase": "a stream rebased onto its upstream",
    "sync.halt": "a rebase stopped on a conflict: halted for a human",
    "sync.push": "a rebased stream branch pushed with --force-with-lease",
    "sync.push_reject": "the remote refused that push",
    "sync.recover": "a rebase whose sync was killed, found and recorded by the next sync",
    "halt.find": "a rebase stopped by hand in a stream's worktree, recorded as a halt",
    "halt.resolve": "a halt finished: the rebase completed",
    "halt.abort": "a halt aborted: the stream back at its original tip",
    "halt.clear": "a halt dropped because its worktree is gone",
    "sync.rollback": "a rebase that stopped without a conflict, rolled back at once (branch at its tip)",
    "fence.lift": "a fence that no live sync holds (its sync died, or its halt is over) taken down",
    "merge.land": "a stream landed on the base (base_before, merged, commits)",
    "merge.undo": "the last landing undone: the base back at base_before",
    "fence.halt": "a fence a dead sync left over a half-done rebase, turned into a halted fence",
    "run.start": "`streams run` began a run (run, streams, waves, plan digest)",
    "run.wave.start": "a wave of a run began (run, wave, streams)",
    "run.attempt.start": "an agent launched (run, stream, attempt, pid, command)",
    "run.attempt.end": "an attempt ended (run, stream, attempt, class or verified, cause)",
    "run.retry": "a stream will be tried again after a backoff (run, stream, attempt, delay)",
    "run.skip": "a stream skipped: a dependency failed or the run halted (run, stream, blocked_by)",
    "run.halt": "a run stops starting agents: a critical failure or the --halt threshold (run, reason)",
    "run.pool.pause": "a sub-pool paused after a rate limit (run, pool, until)",
    "run.land": "a wave's verified streams landed by the merge queue (run, wave, landed, ejected)",
    "run.wave.end": "a wave settled (run, wave, counts)",
    "run.end": "a run finished (run, status, counts)",
    "run.pause": "`streams pause` asked a run to pause (run, now, by)",
    "run.abort": "`streams abort` asked a run to stop for good (run, by)",
    "run.resume": "`streams resume` took a run up again (run, adopted, verify, requeued)",
    "run.gate": "a wave's gate: awaiting, approved or open (run, wave, state, why)",
    "gate.approve": "a wave approved at its gate (run, wave, who, note, by_policy)",
    "gate.reject": "a wave rejected at its gate (run, wave, who, note, by_policy)",
    "gate.request_changes": "a human asked a stream to run again with a note (run, stream, n, who, note)",
    "gate.reopen": "a stale decision kept aside: the gate open again (run, wave, stale, why)",
}


def events_path(common_dir: str | os.PathLike[str]) -> Path:
    return Path(events_file(common_dir))


def append(common_dir: Path, kind: str, **fields: Any) -> dict[str, Any]:
    """Append one event ``{"time": …, "event": kind, "pid": …, **fields}`` and return it."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}: list it in streams.kernel.events.KINDS")
    now = time.time()
    record: dict[str, Any] = {
        "time": iso_utc(now),
        "ts": round(now, 6),
        "event": kind,
        "pid": os.getpid(),
        **fields,
    }
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
    fd = open_making_dirs(Path(events_file(common_dir)), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return record


def read(common_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event in order; a torn last line (a writer killed mid-write) is skipped."""
    try:
        with open(events_path(common_dir), encoding="utf-8") as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue
    except FileNotFoundError:
        return
