"""Run and sync state shared by every worktree: ``<git-common-dir>/streams/state.json``.

Shape (version 1)::

    {"version": 1,
     "halts": {NAME: {stream, files, original_tip, onto, time, worktree, reason, upstream}},
     "sync": {"inflight": {NAME: {stream, original_tip, onto, worktree, time, pid}},
              "last": {...summary of the last sync pass...}},
     ...other areas' sections, kept as they are...}

Every write is a read-modify-write under a short ``filelock`` and lands with ``write_json_atomic``
(temp file, fsync, ``os.replace``), so a killed writer leaves the old file or the new one. The
state is a record of intent, never the truth: the sync loop reconciles it with git on every run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from streams.kernel.durations import iso_utc
from streams.kernel.errors import BusyError, StreamsError
from streams.kernel.mutex import held
from streams.kernel.paths import STATE_LOCK, SYNC_LOCK
from streams.workspace import Workspace, write_json_atomic

STATE_VERSION = 1
LOCK_TIMEOUT_SECONDS = 10.0


class StateError(StreamsError):
    code = "state"


class HaltReason(StrEnum):
    """Why a stream's rebase waits for a human."""

    CONFLICT = "conflict"  # the rebase stopped on conflicting paths
    STOPPED = "stopped"  # the rebase stopped with no unmerged paths
    INTERRUPTED = "interrupted"  # a sync was killed while rebasing
    FOUND = "found"  # a rebase in progress that streams did not start
    RESOLVED = "resolved"  # finished by hand: what a pass reconciles a halt into


@dataclass(frozen=True)
class Halt:
    """A stream whose rebase stopped and waits for a human (``sync --json``'s ``report.halts[]``).

    ============  ======  =========================================================================
    field         type    meaning
    ============  ======  =========================================================================
    stream        str     the stream
    files         [str]   the conflicting paths (empty: the rebase stopped without a conflict)
    original_tip  str     the branch tip before the rebase (``sync --abort`` restores it)
    onto          str     the upstream commit the rebase replays onto
    time          str     when it halted (ISO 8601, UTC)
    worktree      str     where the rebase waits
    reason        str     conflict | stopped | interrupted | found | resolved (``HaltReason``)
    upstream      str     the upstream's name, e.g. ``origin/main``
    ref           str     the stream's branch, e.g. ``refs/heads/streams/api``
    ============  ======  =========================================================================
    """

    stream: str
    files: tuple[str, ...]  # the conflicting paths (empty when the rebase was interrupted, not conflicted)
    original_tip: str  # the branch tip before the rebase: `--abort` restores it
    onto: str  # the upstream commit the rebase replays onto
    time: str  # ISO 8601, UTC
    worktree: str
    # A string read from state.json is turned into a HaltReason; one a newer streams wrote stays as written.
    reason: HaltReason | str = HaltReason.CONFLICT
    upstream: str = ""  # the upstream's name for messages, e.g. origin/main
    ref: str = ""  # the stream's branch, e.g. refs/heads/streams/api

    def __post_init__(self) -> None:
        if not isinstance(self.reason, HaltReason):
            with suppress(ValueError):  # an unknown reason (a newer streams wrote state.json) stays as written
                object.__setattr__(self, "reason", HaltReason(self.reason))


@dataclass(frozen=True)
class InFlight:
    """A rebase a sync pass is about to run: written before it starts, removed once it is judged."""

    stream: str
    original_tip: str
    onto: str
    worktree: str
    time: str
    pid: int


def _from_dict(cls: type[Any], data: Any) -> Any:
    if not isinstance(data, dict):
        raise TypeError("not a mapping")
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    if "files" in values:
        values["files"] = tuple(values["files"])
    return cls(**values)


def read_state(ws: Workspace) -> dict[str, Any]:
    """The whole state file (a fresh one when there is none)."""
    path = ws.state_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"version": STATE_VERSION}
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateError(
            f"{path} is not valid JSON ({exc}); move it away: streams rebuilds what it needs from git"
        ) from None
    if not isinstance(data, dict):
        raise StateError(f"{path} does not hold a JSON object; move it away: streams rebuilds it from git")
    version = data.get("version", STATE_VERSION)
    if version != STATE_VERSION:
        raise StateError(
            f"{path} has version {version!r}; this streams reads version {STATE_VERSION} (upgrade streams)"
        )
    return data


@contextmanager
def _state_lock(ws: Workspace) -> Iterator[None]:
    with held(
        ws.state_dir / STATE_LOCK,
        timeout=LOCK_TIMEOUT_SECONDS,
        busy=lambda: BusyError(
            f"another streams process has held the lock on {ws.state_file} for {LOCK_TIMEOUT_SECONDS:.0f} s; retry"
        ),
    ):
        yield


def update_state(ws: Workspace, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply ``change`` to the state under the lock and write it back atomically. Returns the new state.

    Other areas keep their own top-level section and write it through this function too.
    """
    with _state_lock(ws):
        data = read_state(ws)
        change(data)
        data["version"] = STATE_VERSION
        write_json_atomic(ws.state_file, data)
        return data


# --- halts -------------------------------------------------------------------------------------


def halts_of(data: dict[str, Any]) -> dict[str, Halt]:
    result: dict[str, Halt] = {}
    raw = data.get("halts")
    if not isinstance(raw, dict):
        return result
    for name, value in raw.items():
        try:
            result[name] = _from_dict(Halt, value)
        except TypeError:
            continue  # a damaged entry: git is asked again anyway
    return result


def read_halts(ws: Workspace) -> dict[str, Halt]:
    return halts_of(read_state(ws))


def record_halt(ws: Workspace, halt: Halt) -> None:
    """Record ``halt`` and forget the stream's in-flight rebase (one write: both or neither)."""

    def change(data: dict[str, Any]) -> None:
        data.setdefault("halts", {})[halt.stream] = asdict(halt)
        data.setdefault("sync", {}).setdefault("inflight", {}).pop(halt.stream, None)

    update_state(ws, change)


def clear_halt(ws: Workspace, stream: str) -> Halt | None:
    """Forget the stream's halt; returns it (None when there was none)."""
    found: list[Halt] = []

    def change(data: dict[str, Any]) -> None:
        raw = data.setdefault("halts", {}).pop(stream, None)
        if raw is not None:
            with suppress(TypeError):
                found.append(_from_dict(Halt, raw))

    update_state(ws, change)
    return found[0] if found else None


# --- rebases in flight --------------------------------------------------------------------------


def inflight_of(data: dict[str, Any]) -> dict[str, InFlight]:
    raw = data.get("sync", {}).get("inflight") if isinstance(data.get("sync"), dict) else None
    result: dict[str, InFlight] = {}
    if not isinstance(raw, dict):
        return result
    for name, value in raw.items():
        try:
            result[name] = _from_dict(InFlight, value)
        except TypeError:
            continue
    return result


def read_inflight(ws: Workspace) -> dict[str, InFlight]:
    return inflight_of(read_state(ws))


def begin_rebase(ws: Workspace, stream: str, original_tip: str, onto: str, worktree: Path) -> InFlight:
    """Record, before it starts, that a sync is about to rebase ``stream``."""
    record = InFlight(stream, original_tip, onto, str(worktree), iso_utc(), os.getpid())

    def change(data: dict[str, Any]) -> None:
        data.setdefault("sync", {}).setdefault("inflight", {})[stream] = asdict(record)

    update_state(ws, change)
    return record


def begin_rebases(ws: Workspace, plans: Sequence[tuple[str, str, str, Path]]) -> None:
    """``begin_rebase`` for several streams in one write: (stream, original tip, onto, worktree)."""
    when, pid = iso_utc(), os.getpid()

    def change(data: dict[str, Any]) -> None:
        inflight = data.setdefault("sync", {}).setdefault("inflight", {})
        for stream, tip, onto, worktree in plans:
            inflight[stream] = asdict(InFlight(stream, tip, onto, str(worktree), when, pid))

    update_state(ws, change)


def finish_pass(ws: Workspace, done: Sequence[str], summary: dict[str, Any]) -> None:
    """Forget the in-flight records of ``done`` streams and record the pass summary, in one write."""

    def change(data: dict[str, Any]) -> None:
        sync = data.setdefault("sync", {})
        inflight = sync.setdefault("inflight", {})
        for stream in done:
            inflight.pop(stream, None)
        sync["last"] = summary

    update_state(ws, change)


def end_rebase(ws: Workspace, stream: str) -> None:
    def change(data: dict[str, Any]) -> None:
        data.setdefault("sync", {}).setdefault("inflight", {}).pop(stream, None)

    update_state(ws, change)


def stopped_of(data: dict[str, Any]) -> dict[str, str]:
    """Streams stopped on purpose (``streams stop``): name -> when. ``streams start`` with no names
    leaves them stopped; naming one starts it again."""
    stopped = data.get("stopped", {})
    return {str(k): str(v) for k, v in stopped.items()} if isinstance(stopped, dict) else {}


def mark_stopped(ws: Workspace, names: Sequence[str], *, stopped: bool) -> None:
    """Record (``stopped``) or forget that ``names`` were stopped on purpose."""
    if not names:
        return

    def change(data: dict[str, Any]) -> None:
        table = data.setdefault("stopped", {})
        for name in names:
            if stopped:
                table[name] = iso_utc()
            else:
                table.pop(name, None)

    update_state(ws, change)


def record_last_sync(ws: Workspace, summary: dict[str, Any]) -> None:
    def change(data: dict[str, Any]) -> None:
        data.setdefault("sync", {})["last"] = summary

    update_state(ws, change)


def last_sync(ws: Workspace) -> dict[str, Any] | None:
    sync = read_state(ws).get("sync")
    last = sync.get("last") if isinstance(sync, dict) else None
    return last if isinstance(last, dict) else None


# --- one sync at a time ----------------------------------------------------------------------------

SYNC_LOCK_WAIT_SECONDS = 300.0


@contextmanager
def sync_lock(ws: Workspace, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """One sync (pass, --continue, --abort) at a time per repository: fetches race on the shared
    remote-tracking refs, and a halt must not change under the human resolving it."""
    path = ws.state_dir / SYNC_LOCK
    with held(
        path,
        timeout=SYNC_LOCK_WAIT_SECONDS,
        waiting="waiting for another `streams sync` in this repository to finish…",
        on_wait=on_wait,
        busy=lambda: BusyError(
            f"another `streams sync` has held {path} for {SYNC_LOCK_WAIT_SECONDS:.0f} s; wait for it to finish and retry"
        ),
    ):
        yield
