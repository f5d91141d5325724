"""The one loop of every command that acts over time: interval, wake-ups, debounce, timers, config
reload, signals.

``Loop.run(step)`` calls ``step(tick)`` once at once, then again each time something wakes it:

- the **interval** passed (reason ``TIMER``): measured from the end of the last step, or with
  ``fixed_rate`` from its start (a step every ``interval`` seconds, like ``watch -p``);
- a **wake-up** arrived from any thread (``Wakeup.poke``): a file watcher's ``CHANGE``, a signal
  handler's ``RESIZE``, a process reaper's exit. A ``CHANGE`` is **debounced** (a commit or a rebase
  writes many files) and, with ``min_gap``, never acted on sooner than the last step's own duration
  after it ended: writers that never pause cannot keep the loop busy;
- a named **timer** (``every``, ``after``) is due: its name is the reason;
- ``stop()`` (any thread, or a signal mapped to ``STOP``) ends ``run`` after the step in progress;
  ``iterations`` ends it after that many steps.

With ``config`` (a ``ConfigWatch``), each tick first reloads an edited ``streams.yaml``; a file that
cannot be used leaves the previous configuration in force and says why (``ConfigWatch.problem``).

Signals: ``signals`` maps a signal number to a reason, handled only while ``run`` runs (in the main
thread) and restored after. Ctrl-C (SIGINT) is left to Python: ``KeyboardInterrupt`` leaves ``run``
through the caller's ``finally`` blocks and the CLI exits 130. A step's own exceptions leave ``run``
too; a step catches what it wants to survive.

Standard library and the workspace only; what runs on it: ``streams status --watch`` (the plain and
the live view, see ``coordinator.dashboard``), ``streams sync --watch`` and ``streams watch``
(``coordinator.watcher``).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from streams.config import Config
from streams.kernel.errors import StreamsError
from streams.kernel.reffiles import read_ref
from streams.workspace import Workspace, load_config

# Why a step runs (``Tick.reasons``); a timer's reason is its name, a poke's whatever it says.
START = "start"  # the first step
TIMER = "timer"  # the interval passed
CHANGE = "change"  # files changed (debounced)
RESIZE = "resize"  # the terminal was resized
STOP = "stop"  # end the loop
_RETIME = "timers changed"  # internal: a sleeping loop recomputes how long to sleep

DEBOUNCE_SECONDS = 0.15  # a change is acted on once files were quiet this long …
DEBOUNCE_MAX_SECONDS = 1.0  # … or at the latest this long after it arrived


class Wakeup:
    """Reasons to act now, poked from any thread (a file watcher, a signal handler, a reaper)."""

    def __init__(self, *, debounce: float = DEBOUNCE_SECONDS, debounce_max: float = DEBOUNCE_MAX_SECONDS) -> None:
        self.debounce, self.debounce_max = debounce, debounce_max
        self._cond = threading.Condition()
        self._reasons: set[str] = set()
        self.last_change = 0.0

    def poke(self, reason: str) -> None:
        with self._cond:
            self._reasons.add(reason)
            if reason == CHANGE:
                self.last_change = time.monotonic()
            self._cond.notify_all()

    def wait(self, timeout: float, not_before: float = 0.0) -> set[str]:
        """Block until a reason arrives or ``timeout`` passes; return the reasons (empty: the timeout).

        A ``CHANGE`` is returned once files were quiet for ``debounce`` seconds (at the latest
        ``debounce_max`` after it arrived), and never before ``not_before`` (monotonic).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._reasons:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            reasons, self._reasons = self._reasons, set()
        if CHANGE in reasons and STOP not in reasons:
            first = time.monotonic()
            while True:
                now = time.monotonic()
                quiet = now - self.last_change
                settled = quiet >= self.debounce or now - first >= self.debounce_max
                if settled and now >= not_before:
                    break
                pause = not_before - now if settled else self.debounce - quiet
                time.sleep(max(0.01, pause))
            with self._cond:
                reasons |= self._reasons
                self._reasons = set()
        return reasons


class ConfigWatch:
    """``streams.yaml`` in force for a command that runs a long time: reloaded when the file changes
    (its modification time or size), kept when the new one cannot be used.

    ``on_change(config)`` is told of each new configuration and may refuse it by raising a
    ``StreamsError`` (e.g. the streams named on the command line are gone): then, as for a file that
    does not parse, the previous one stays and ``problem`` says why until the file changes again.
    """

    def __init__(
        self,
        ws: Workspace,
        config: Config,
        *,
        on_change: Callable[[Config], None] | None = None,
        check_tracked: bool = False,
    ) -> None:
        self.ws, self.config = ws, config
        self.on_change = on_change
        self.check_tracked = check_tracked
        self.problem: str | None = None
        self._stamp = self._read_stamp()

    def _read_stamp(self) -> tuple[object, ...]:
        """What says the configuration may have changed: the base's tip (the file in force is
        committed there) and the working copy (whose difference is warned about)."""
        tip = read_ref(str(self.ws.common_dir), self.config.base_ref())
        try:
            st = self.ws.config_path.stat()
        except OSError:
            return (tip,)
        return tip, st.st_mtime_ns, st.st_size

    def check(self) -> bool:
        """Reload if the file changed since the last check; True when it did (see ``problem``)."""
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            config = load_config(self.ws, check_tracked=self.check_tracked)
            if self.on_change is not None:
                self.on_change(config)
        except StreamsError as exc:
            self.problem = f"streams.yaml changed but cannot be used ({exc.message}); still using the previous one"
            return True
        self.config, self.problem = config, None
        return True


@dataclass(frozen=True)
class Tick:
    """One step of a loop: its number (from 1) and why it runs now."""

    n: int
    reasons: frozenset[str]  # START, TIMER, CHANGE, RESIZE, a timer's name, a poke's reason
    reloaded: bool = False  # streams.yaml changed since the last tick (ConfigWatch.problem: usable?)


Step = Callable[[Tick], object]


class Loop:
    """See the module doc. One ``run`` at a time; ``poke``, ``stop`` and the timers from any thread."""

    def __init__(
        self,
        interval: float,
        *,
        wake: Wakeup | None = None,
        config: ConfigWatch | None = None,
        fixed_rate: bool = False,
        min_gap: float | None = None,
        cheap: Iterable[str] = (),
        iterations: int | None = None,
        signals: Mapping[int, str] | None = None,
    ) -> None:
        self.interval = interval
        self.wake = wake if wake is not None else Wakeup()
        self.config = config
        self.fixed_rate = fixed_rate
        self.min_gap = min_gap
        self.cheap = frozenset(cheap)  # ticks woken only by these reasons do not count for min_gap
        self.iterations = iterations
        self.signals = dict(signals or {})
        self._timers: dict[str, tuple[float, float | None]] = {}  # name -> (due, period or None)
        self._timers_lock = threading.Lock()
        self._stopped = False

    # --- from any thread ------------------------------------------------------------------------

    def poke(self, reason: str) -> None:
        self.wake.poke(reason)

    def stop(self) -> None:
        self._stopped = True
        self.wake.poke(STOP)

    def every(self, name: str, seconds: float, *, first: float | None = None) -> None:
        """A timer due every ``seconds`` (first after ``first``, default ``seconds``): reason ``name``."""
        with self._timers_lock:
            self._timers[name] = (time.monotonic() + (seconds if first is None else first), seconds)
        self.wake.poke(_RETIME)

    def after(self, name: str, seconds: float) -> None:
        """A timer due once, ``seconds`` from now (re-arming ``name`` replaces it): reason ``name``."""
        with self._timers_lock:
            self._timers[name] = (time.monotonic() + seconds, None)
        self.wake.poke(_RETIME)

    def cancel(self, name: str) -> None:
        with self._timers_lock:
            self._timers.pop(name, None)

    # --- the loop -------------------------------------------------------------------------------

    def run(self, step: Step) -> None:
        """Call ``step`` at once, then on each wake-up until ``stop``, ``iterations`` or an exception."""
        previous = self._install_signals()
        try:
            self._run(step)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self, step: Step) -> None:
        reasons = {START}
        not_before = 0.0
        n = 0
        while not self._stopped:
            began = time.monotonic()
            reasons = (reasons - {_RETIME}) | self._fire(began)
            n += 1
            reloaded = self.config.check() if self.config is not None else False
            step(Tick(n, frozenset(reasons), reloaded))
            ended = time.monotonic()
            if self.min_gap is not None and not reasons <= self.cheap:
                not_before = ended + max(self.min_gap, ended - began)
            if self.iterations is not None and n >= self.iterations:
                return
            reasons = self._wait((began if self.fixed_rate else ended) + self.interval, not_before)

    def _fire(self, now: float) -> set[str]:
        """The names of the timers due at ``now``; periodic ones re-armed, one-shot ones dropped."""
        fired: set[str] = set()
        with self._timers_lock:
            for name, (due, period) in list(self._timers.items()):
                if now >= due:
                    fired.add(name)
                    if period is None:
                        del self._timers[name]
                    else:
                        self._timers[name] = (now + period, period)
        return fired

    def _next_timer(self) -> float | None:
        with self._timers_lock:
            return min((due for due, _ in self._timers.values()), default=None)

    def _wait(self, deadline: float, not_before: float) -> set[str]:
        """Sleep until ``deadline`` (TIMER), a timer, a wake-up or ``stop``: the reasons."""
        while not self._stopped:
            timer = self._next_timer()
            soonest = deadline if timer is None else min(deadline, timer)
            got = self.wake.wait(max(0.0, soonest - time.monotonic()), not_before)
            if STOP in got:
                self._stopped = True
            if got - {_RETIME}:
                return got
            now = time.monotonic()
            if now >= deadline:
                return {TIMER}
            if (due := self._next_timer()) is not None and now >= due:
                return set()
        return set()

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if not self.signals or threading.current_thread() is not threading.main_thread():
            return previous
        for signum, reason in self.signals.items():
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal(reason))
        return previous

    def _on_signal(self, reason: str) -> Callable[[int, FrameType | None], None]:
        def handler(_signum: int, _frame: FrameType | None) -> None:
            if reason == STOP:
                self.stop()
            else:
                self.wake.poke(reason)

        return handler


__all__ = [
    "CHANGE",
    "DEBOUNCE_MAX_SECONDS",
    "DEBOUNCE_SECONDS",
    "RESIZE",
    "START",
    "STOP",
    "TIMER",
    "ConfigWatch",
    "Loop",
    "Step",
    "Tick",
    "Wakeup",
]
