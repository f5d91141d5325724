"""``streams status --watch`` over time: the dashboard's snapshots, refreshed by the loop.

``Dashboard`` wraps a ``streams.status.Collector``. ``run(interval, show)`` calls ``show`` after each
refresh (and, in the live view, after a terminal resize, which needs no new snapshot), in every
output mode the same way (the live terminal view, plain text off a terminal, ``--json``):

- on **file events** in the stream worktrees and the common dir (``coordinator.fswatch``, debounced
  by the loop, and never sooner than the last collection took or ``MIN_EVENT_GAP_SECONDS``), and
  every ``interval`` seconds (measured from the end of the last refresh);
- each refresh is **incremental**: ``git status`` runs only in worktrees with file events (or whose
  index changed, or that cannot be watched); refs and worktrees are read again only when the files
  git keeps them in changed (``streams.status.git_stamp``); leases, halts, the run's records and
  progress files are plain file reads. A refresh after nothing changed runs no git process. Every
  ``FULL_REFRESH_SECONDS`` at most, every worktree is read again, events or not (a safety net for
  events the kernel dropped).

``changed(snap)`` says whether a snapshot says anything the last one shown did not
(``streams.dashboard.steady``: the clock alone is no change): plain and JSON output print only then.

Either way an edited ``streams.yaml`` is picked up (streams added or removed) without a restart; one
that cannot be used leaves the previous one in force and adds a warning to each snapshot. A
snapshot that cannot be taken (the repository unreadable for a moment) leaves ``problem`` set and
the loop going. SIGINT and SIGTERM end ``run`` after the refresh in progress (``interrupted`` is
then True; a second one interrupts at once); ``stop()`` ends it too (e.g. its output was closed).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from coordinator.fswatch import WATCHING, FSWatch, ObserverLike
from coordinator.loop import CHANGE, RESIZE, ConfigWatch, Loop, Tick, Wakeup
from streams.config import Config
from streams.dashboard import steady
from streams.kernel.errors import StreamsError
from streams.status import STARTED, UNCONFIGURED, Collector, Snapshot
from streams.workspace import Workspace

FULL_REFRESH_SECONDS = 60.0  # every worktree is re-read at least this often, events or not
MIN_EVENT_GAP_SECONDS = 0.3  # between two refreshes caused by file events (at least one collection's time)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Dashboard:
    """See the module doc. A context manager: leaving it stops the file watcher.

    ``files=False`` watches no files: every refresh then reads every worktree (tests, and file
    systems where events cannot be had). ``observer_factory``: the native observer (tests stand in
    one whose kernel limits are reached)."""

    def __init__(
        self,
        ws: Workspace,
        config: Config,
        collector: Collector,
        *,
        files: bool = True,
        observer_factory: Callable[[], ObserverLike] | None = None,
    ) -> None:
        self.collector = collector
        self.config = ConfigWatch(ws, config, on_change=collector.set_config)
        self._said = frozenset(config.warnings)  # printed once when the command opened the config
        self.wake = Wakeup()
        self.files = (
            FSWatch(
                ws.common_dir,
                lambda _ev: self.wake.poke(CHANGE),
                common=True,
                polling_fallback=False,
                observer_factory=observer_factory,
            )
            if files
            else None
        )  # a worktree that cannot be watched (kernel limits) is read at every refresh: cheaper than polling
        self.snapshot: Snapshot | None = None  # the last one taken
        self.problem = ""  # why the last refresh took none ("" when it did)
        self.interrupted = False  # run ended on SIGINT or SIGTERM
        self._next_full = 0.0
        self._shown: Snapshot | None = None  # steady() of the last snapshot changed() said was new
        self._loop: Loop | None = None

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.files is not None:
            self.files.stop()

    @property
    def notes(self) -> list[str]:
        """What limits the file events (a root polled, or not watched), one line per reason."""
        return sorted(set(self.files.notes.values())) if self.files is not None else []

    def refresh(self, *, follow: bool = True) -> Snapshot | None:
        """A new snapshot (also kept in ``snapshot``), or None and ``problem`` says why. With
        ``follow``, the worktrees it shows are then watched (``follow()``)."""
        began = time.monotonic()
        unchanged: Callable[[Path], bool] | None = None
        if self.files is not None:
            changed = self.files.take_changed()
            if began < self._next_full:
                files = self.files
                unchanged = lambda p: files.watching(p) and p not in changed  # noqa: E731
            else:
                self._next_full = began + FULL_REFRESH_SECONDS
        try:
            snap = self.collector.collect(unchanged=unchanged)
        except (StreamsError, OSError) as exc:
            message = exc.message if isinstance(exc, StreamsError) else str(exc)
            self.problem = f"cannot read the repository: {message}"
            return None
        news = tuple(w for w in self.config.config.warnings if w not in self._said)  # e.g. an uncommitted edit
        if self.config.problem is not None:
            news += (self.config.problem,)
        if news:
            snap = dataclasses.replace(snap, warnings=(*snap.warnings, *news))
        self.snapshot, self.problem = snap, ""
        if follow:
            self.follow()
        return snap

    def changed(self, snap: Snapshot) -> bool:
        """Whether ``snap`` says anything the last snapshot this said True for did not (the clock
        alone is no change); remembers it when so."""
        key = steady(snap)
        if key == self._shown:
            return False
        self._shown = key
        return True

    def follow(self) -> None:
        """Watch the worktrees of the streams in the last snapshot: they come and go while the view
        runs. A worktree newly watched counts as changed at the next refresh (it may have changed
        before its watch began)."""
        snap = self.snapshot
        if self.files is None or snap is None:
            return
        rows = [r for r in snap.streams if r.worktree and r.state in (STARTED, UNCONFIGURED)]
        roots = {Path(r.worktree) for r in rows if r.worktree}
        branches = {f"refs/heads/{r.branch}": Path(r.worktree) for r in rows if r.worktree}
        changes = self.files.follow(lambda lw: lw.root in roots, branches=branches)
        if any(c.action == WATCHING for c in changes):
            self.wake.poke(CHANGE)  # what changed before its watch began is read at the next refresh, now

    def stop(self) -> None:
        """End ``run`` after the refresh in progress (any thread)."""
        if self._loop is not None:
            self._loop.stop()

    def run(self, interval: float, show: Callable[[Tick], None], *, signals: Mapping[int, str] | None = None) -> None:
        """Refresh and ``show`` until SIGINT, SIGTERM or ``stop`` (see the module doc); ``signals`` map
        other signals to loop reasons (a terminal's SIGWINCH to ``RESIZE``: repaint without a new
        snapshot). ``show`` is not called once a stop was asked for."""
        loop = Loop(
            interval,
            wake=self.wake,
            config=self.config,
            min_gap=MIN_EVENT_GAP_SECONDS if self.files is not None else None,
            cheap={RESIZE},
            signals=signals,
        )
        self._loop = loop

        def step(tick: Tick) -> None:
            refreshed = self.snapshot is None or tick.reasons != {RESIZE}
            if refreshed:
                self.refresh(follow=False)
            if not self.interrupted:  # a Ctrl-C in a terminal also kills the git it ran: no warning for that
                show(tick)
            if refreshed:
                self.follow()  # after showing: the first snapshot does not wait for the watches

        previous = self._catch_stop_signals()
        try:
            loop.run(step)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._loop = None

    def _catch_stop_signals(self) -> dict[int, Any]:
        """SIGINT and SIGTERM stop the loop after its step; a second one interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(_signum: int, _frame: FrameType | None) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.stop()

        return {s: signal.signal(s, handler) for s in STOP_SIGNALS}


__all__ = ["FULL_REFRESH_SECONDS", "MIN_EVENT_GAP_SECONDS", "Dashboard"]
