"""coordinator.loop (the one loop) and coordinator.fswatch (the one file watcher), on their own.

The commands that run on them are tested end to end elsewhere (test_status, test_status_tty,
test_sync, test_watch); here: the loop's reasons, timers, pacing, stop and signals, the config
reload, and what the file watcher reports and follows. Bounded waits, no timed assertions beyond
"well within a second".
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from coordinator.fswatch import GONE, WATCHING, FileEvent, FSWatch, stream_worktree
from coordinator.loop import CHANGE, START, STOP, TIMER, ConfigWatch, Loop, Tick, Wakeup
from streams.kernel.errors import StreamsError
from streams.workspace import discover, load_config
from tests.conftest import Repo, run_cli

# --- the loop ----------------------------------------------------------------------------------------------


def test_first_tick_at_once_then_every_interval_until_iterations() -> None:
    ticks: list[Tick] = []
    began = time.monotonic()
    Loop(0.01, iterations=3).run(ticks.append)
    assert [t.n for t in ticks] == [1, 2, 3]
    assert [t.reasons for t in ticks] == [{START}, {TIMER}, {TIMER}]
    assert time.monotonic() - began < 1.0


def test_a_poke_wakes_it_long_before_the_interval_and_stop_ends_it() -> None:
    loop = Loop(60.0)
    ticks: list[Tick] = []

    def step(tick: Tick) -> None:
        ticks.append(tick)
        if tick.n == 1:
            threading.Timer(0.05, loop.poke, args=("exit",)).start()
        else:
            threading.Timer(0.05, loop.stop).start()

    began = time.monotonic()
    loop.run(step)
    assert [t.reasons for t in ticks] == [{START}, {"exit"}]
    assert time.monotonic() - began < 5.0


def test_changes_are_debounced_into_one_tick() -> None:
    wake = Wakeup(debounce=0.1)
    loop = Loop(60.0, wake=wake, iterations=2)
    ticks: list[Tick] = []

    def step(tick: Tick) -> None:
        ticks.append(tick)
        if tick.n == 1:

            def burst() -> None:
                for _ in range(5):
                    wake.poke(CHANGE)
                    time.sleep(0.02)

            threading.Thread(target=burst).start()

    loop.run(step)
    assert [t.reasons for t in ticks] == [{START}, {CHANGE}]
    assert wake.wait(0.2) == set()  # the burst was one wake-up, nothing left over


def test_min_gap_holds_a_change_back_but_not_a_cheap_reason() -> None:
    loop = Loop(60.0, min_gap=0.4, cheap={"resize"}, iterations=3)
    times: list[tuple[frozenset[str], float]] = []

    def step(tick: Tick) -> None:
        times.append((tick.reasons, time.monotonic()))
        if tick.n == 1:
            loop.poke("resize")
        elif tick.n == 2:
            loop.poke(CHANGE)

    loop.run(step)
    (_, t1), (second, t2), (third, t3) = times
    assert second == {"resize"} and t2 - t1 < 0.3  # a resize is not held back
    assert third == {CHANGE} and t3 - t1 >= 0.4  # a change waits for the gap after the last real step


def test_timers_fire_by_name_and_can_be_cancelled() -> None:
    loop = Loop(60.0)
    loop.every("often", 0.05)
    loop.after("once", 0.12)
    loop.after("never", 0.1)
    loop.cancel("never")
    seen: list[frozenset[str]] = []

    def step(tick: Tick) -> None:
        seen.append(tick.reasons)
        if "once" in tick.reasons:
            loop.stop()

    loop.run(step)
    fired = set().union(*seen)
    assert {"often", "once"} <= fired and "never" not in fired and TIMER not in fired
    assert sum("once" in r for r in seen) == 1


def test_fixed_rate_counts_the_interval_from_the_start_of_a_step() -> None:
    for fixed, least, most in ((True, 0.15, 0.3), (False, 0.3, 1.0)):
        stamps: list[float] = []

        def slow_step(_tick: Tick, stamps: list[float] = stamps) -> None:
            stamps.append(time.monotonic())
            time.sleep(0.15)

        Loop(0.15, fixed_rate=fixed, iterations=2).run(slow_step)
        gap = stamps[1] - stamps[0]
        assert least <= gap < most, (fixed, gap)


def test_signals_map_to_reasons_while_running_and_are_restored() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    loop = Loop(60.0, signals={signal.SIGUSR1: "usr1", signal.SIGUSR2: STOP})
    seen: list[frozenset[str]] = []

    def step(tick: Tick) -> None:
        seen.append(tick.reasons)
        os.kill(os.getpid(), signal.SIGUSR1 if tick.n == 1 else signal.SIGUSR2)

    loop.run(step)
    assert seen == [{START}, {"usr1"}]
    assert signal.getsignal(signal.SIGUSR1) == before


def test_an_exception_in_a_step_leaves_the_loop() -> None:
    def step(tick: Tick) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Loop(0.01).run(step)


# --- the config reload -------------------------------------------------------------------------------------


def test_config_is_reloaded_on_change_and_kept_when_broken(repo: Repo) -> None:
    ws = discover(repo.root)
    told: list[tuple[str, ...]] = []
    watch = ConfigWatch(ws, load_config(ws, check_tracked=False), on_change=lambda c: told.append(c.names))
    assert watch.check() is False
    path = repo.root / "streams.yaml"
    path.write_text(path.read_text() + "  extra:\n    owns: [extra/**]\n")
    assert watch.check() is True and "extra" not in watch.config.names  # not in force until committed
    assert any("not in force until committed" in w for w in watch.config.warnings)
    repo.commit_all("streams: extra")
    assert watch.check() is True and "extra" in watch.config.names and watch.problem is None
    assert told and "extra" in told[-1]
    path.write_text("version: [\n")
    repo.commit_all("streams: broken")
    assert watch.check() is True and "extra" in watch.config.names
    assert watch.problem is not None and "streams.yaml changed but cannot be used" in watch.problem
    assert watch.check() is False  # said once per change


def test_on_change_may_refuse_a_configuration(repo: Repo) -> None:
    ws = discover(repo.root)
    before = load_config(ws, check_tracked=False)

    def refuse(_config: object) -> None:
        raise StreamsError("not this one")

    watch = ConfigWatch(ws, before, on_change=refuse)
    path = repo.root / "streams.yaml"
    path.write_text(path.read_text() + "  extra:\n    owns: [extra/**]\n")
    repo.commit_all("streams: extra")
    assert watch.check() is True and watch.config is before
    assert watch.problem is not None and "not this one" in watch.problem


def test_the_loop_reloads_the_config_before_each_step(repo: Repo) -> None:
    ws = discover(repo.root)
    watch = ConfigWatch(ws, load_config(ws, check_tracked=False))
    path = repo.root / "streams.yaml"
    reloaded: list[bool] = []

    def step(tick: Tick) -> None:
        reloaded.append(tick.reloaded)
        if tick.n == 1:
            path.write_text(path.read_text() + "  extra:\n    owns: [extra/**]\n")
            repo.commit_all("streams: extra")  # the base moves: the configuration in force changed

    Loop(0.01, config=watch, iterations=3).run(step)
    assert reloaded == [False, True, False] and "extra" in watch.config.names


# --- the file watcher --------------------------------------------------------------------------------------


def _wait_for(events: list[FileEvent], pred: object, limit: float = 3.0) -> FileEvent | None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for ev in list(events):
            if callable(pred) and pred(ev):
                return ev
        time.sleep(0.02)
    return None


def test_fswatch_follows_stream_worktrees_and_reports_what_matters(repo: Repo) -> None:
    assert run_cli(["start", "api", "docs"], repo.root).code == 0
    ws = discover(repo.root)
    api, docs = repo.worktree("api"), repo.worktree("docs")
    events: list[FileEvent] = []
    with FSWatch(ws.common_dir, events.append, common=True) as fs:
        changes = fs.follow(stream_worktree, branches={"refs/heads/streams/api": api})
        assert {(c.root, c.action, c.stream) for c in changes} == {(api, WATCHING, "api"), (docs, WATCHING, "docs")}
        assert fs.take_changed() == {api, docs}  # they may have changed before their watch began
        assert fs.watching(api) and not fs.watching(repo.root)
        repo.write("src/api/new.py", "x\n", cwd=api)
        ev = _wait_for(events, lambda e: e.rel == "src/api/new.py")
        assert ev is not None and ev.root == api and ev.worktree == api
        repo.git("add", "src/api/new.py", cwd=api)
        repo.git("commit", "-q", "-m", "new", cwd=api)  # the branch moves in the common dir
        ev = _wait_for(events, lambda e: e.rel == "refs/heads/streams/api")
        assert ev is not None and ev.root == fs.common_dir and ev.worktree == api
        assert api in fs.take_changed()
        events.clear()
        (ws.common_dir / "objects" / "noise").write_text("x")  # objects, logs, git's own locks: never
        (ws.common_dir / "refs" / "heads" / "x.lock").write_text("x")
        repo.write("vendor/.git/HEAD", "a nested repository\n", cwd=api)
        time.sleep(0.3)
        assert not [e for e in events if "noise" in e.rel or e.rel.endswith(".lock") or ".git" in e.rel.split("/")]
        assert run_cli(["stop", "--force", "docs"], repo.root).code == 0
        changes = fs.follow(stream_worktree)
        assert [(c.root, c.action, c.stream) for c in changes] == [(docs, GONE, "docs")]
        assert set(fs.worktrees) == {api}


def test_fswatch_rewatches_a_worktree_that_came_back_at_the_same_path(repo: Repo) -> None:
    assert run_cli(["start", "docs"], repo.root).code == 0
    ws = discover(repo.root)
    docs = repo.worktree("docs")
    events: list[FileEvent] = []
    with FSWatch(ws.common_dir, events.append) as fs:
        fs.follow()
        assert run_cli(["stop", "--force", "docs"], repo.root).code == 0
        assert run_cli(["start", "docs"], repo.root).code == 0
        time.sleep(0.2)  # the deletion's event arrives
        changes = fs.follow()
        assert [c.action for c in changes] == [GONE, WATCHING]
        repo.write("docs/new.md", "x\n", cwd=docs)
        assert _wait_for(events, lambda e: e.rel == "docs/new.md") is not None


def test_fswatch_polls_when_asked(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    ws = discover(repo.root)
    events: list[FileEvent] = []
    with FSWatch(ws.common_dir, events.append, polling=True, poll_interval=0.1) as fs:
        (change,) = fs.follow()
        assert change.observer == "polling"
        time.sleep(0.3)  # a polling observer needs one snapshot before it can see a change
        repo.write("src/api/polled.py", "x\n", cwd=repo.worktree("api"))
        ev = _wait_for(events, lambda e: e.rel == "src/api/polled.py")
        assert ev is not None and ev.polled
