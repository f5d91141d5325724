"""``streams status --watch`` over time: the dashboard's snapshots, refreshed by the loop.

``Dashboard`` wraps a ``streams.status.Collector``. ``run(interval, show)`` calls ``show`` after each
refresh (and, in the live view, after a terminal resize, which needs no new snapshot):

- **plain** (``files=False``: off a terminal, or ``--json``): a snapshot every ``interval`` seconds,
  measured from the start of the last one;
- **live** (``files=True``): also on file events in the stream worktrees and the common dir
  (``coordinator.fswatch``, debounced by the loop, and never sooner than the last collection took
  or ``MIN_EVENT_GAP_SECONDS``). Between full refreshes (every ``FULL_REFRESH_SECONDS`` at most)
  ``git status`` runs only in worktrees with file events; the others' last reading is reused.

Either way an edited ``streams.yaml`` is picked up (streams added or removed) without a restart; one
that cannot be used leaves the previous one in force and adds a warning to each snapshot. A
snapshot that cannot be taken (the repository unreadable for a moment) leaves ``problem`` set and
the loop going.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from coordinator.fswatch import FSWatch
from coordinator.loop import CHANGE, RESIZE, ConfigWatch, Loop, Tick, Wakeup
from streams.config import Config
from streams.kernel.errors import StreamsError
from streams.status import STARTED, UNCONFIGURED, Collector, Snapshot
from streams.workspace import Workspace

FULL_REFRESH_SECONDS = 30.0  # the live view re-reads every worktree at least this often, events or not
MIN_EVENT_GAP_SECONDS = 0.3  # between two refreshes caused by file events (at least one collection's time)


class Dashboard:
    """See the module doc. A context manager: leaving it stops the file watcher."""

    def __init__(self, ws: Workspace, config: Config, collector: Collector, *, files: bool = False) -> None:
        self.collector = collector
        self.config = ConfigWatch(ws, config, on_change=collector.set_config)
        self._said = frozenset(config.warnings)  # printed once when the command opened the config
        self.wake = Wakeup()
        self.files = FSWatch(ws.common_dir, lambda _ev: self.wake.poke(CHANGE), common=True) if files else None
        self.snapshot: Snapshot | None = None  # the last one taken
        self.problem = ""  # why the last refresh took none ("" when it did)
        self._next_full = 0.0

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

    def refresh(self) -> Snapshot | None:
        """A new snapshot (also kept in ``snapshot``), or None and ``problem`` says why."""
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
        if self.files is not None:
            self._follow(snap)
        return snap

    def _follow(self, snap: Snapshot) -> None:
        """Watch the worktrees of the streams shown: they come and go while the view runs."""
        assert self.files is not None
        rows = [r for r in snap.streams if r.worktree and r.state in (STARTED, UNCONFIGURED)]
        roots = {Path(r.worktree) for r in rows if r.worktree}
        branches = {f"refs/heads/{r.branch}": Path(r.worktree) for r in rows if r.worktree}
        self.files.follow(lambda lw: lw.root in roots, branches=branches)

    def run(self, interval: float, show: Callable[[Tick], None], *, signals: Mapping[int, str] | None = None) -> None:
        """Refresh and ``show`` until Ctrl-C (see the module doc); ``signals`` map to loop reasons
        (a terminal's SIGWINCH to ``RESIZE``: repaint without a new snapshot)."""
        live = self.files is not None
        loop = Loop(
            interval,
            wake=self.wake,
            config=self.config,
            fixed_rate=not live,
            min_gap=MIN_EVENT_GAP_SECONDS if live else None,
            cheap={RESIZE},
            signals=signals,
        )

        def step(tick: Tick) -> None:
            if self.snapshot is None or tick.reasons != {RESIZE}:
                self.refresh()
            show(tick)

        loop.run(step)


__all__ = ["FULL_REFRESH_SECONDS", "MIN_EVENT_GAP_SECONDS", "Dashboard"]
