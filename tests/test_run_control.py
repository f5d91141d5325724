"""``streams pause [--now]``, ``streams resume`` and ``streams abort`` on real runs of the fake
agent (issue "The human in the loop", item 3 and its acceptance)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streams.kernel.procs import group_members, pid_alive
from tests.conftest import Repo, run_streams
from tests.test_run import FAST_RUN, joblog, setup


def start(repo: Repo, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "run", "--json", *args],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def state(repo: Repo) -> dict[str, Any]:
    runs = repo.root / ".git/streams/runs"
    latest = (runs / "latest").read_text().strip()
    return dict(json.loads((runs / latest / "state.json").read_text()))


def wait_running(repo: Repo, n: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            data = state(repo)
        except (OSError, ValueError):
            time.sleep(0.1)
            continue
        running = [s for s in data["streams"].values() if s["status"] == "running" and s["attempts"][-1]["pid"]]
        if len(running) >= n:
            return data
        time.sleep(0.1)
    raise AssertionError(f"{n} agents never ran at once")


def test_pause_lets_the_running_agents_finish_starts_none_and_resume_runs_the_rest(tmp_path: Path) -> None:
    streams = {f"w{i}": "" for i in range(6)} | {"x1": "depends: [w0]", "x2": "depends: [w1]"}
    repo = setup(tmp_path, streams, agent_args="--steps 2 --sleep 0.8")
    runner = start(repo, "-j", "6")
    wait_running(repo, 6)
    paused = run_streams(["pause", "--json"], repo.root)
    assert paused.code == 0, paused.err
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 4, err
    data = json.loads(out.splitlines()[-1])["data"]
    assert data["status"] == "paused"
    statuses = {s["name"]: s["status"] for s in data["streams"]}
    assert all(statuses[f"w{i}"] == "verified" for i in range(6))  # the six finished
    assert statuses["x1"] == statuses["x2"] == "pending"  # and nothing new started
    assert sorted(r["stream"] for r in joblog(data)) == [f"w{i}" for i in range(6)]
    line = run_streams(["status"], repo.root).out.splitlines()[0]
    assert "paused by" in line and "`streams resume` goes on" in line
    checkpoint = (Path(data["run_dir"]) / "checkpoint.md").read_text()
    assert "paused" in checkpoint and "## Completed (6)" in checkpoint and "streams resume" in checkpoint
    resumed = run_streams(["resume", "--json"], repo.root, timeout=240)
    assert resumed.code == 0, resumed.err
    final = json.loads(resumed.out.splitlines()[-1])["data"]
    assert {s["status"] for s in final["streams"]} == {"verified"}
    assert sorted(r["stream"] for r in joblog(final)) == sorted(streams)  # each ran once


def test_pause_now_stops_every_agent_within_grace_and_resume_spends_no_retry(tmp_path: Path) -> None:
    scenario = {"*": [["--hang", "--chatter", "0.2", "--spawn-child"], []]}
    run_block = FAST_RUN.replace("grace: 1s", "grace: 1s\n  retries: 0")
    repo = setup(tmp_path, {"a": "", "b": "", "c": ""}, scenario, run=run_block)
    runner = start(repo)
    data = wait_running(repo, 3)
    time.sleep(0.5)  # the children are up
    pids = [s["attempts"][-1]["pid"] for s in data["streams"].values()]
    asked = time.time()
    assert run_streams(["pause", "--now"], repo.root).code == 0
    out, err = runner.communicate(timeout=60)
    took = time.time() - asked
    assert runner.returncode == 4, err
    assert took < 1.0 + 1.0 + 1.5  # grace + 1 s, and the runner's own exit
    for pid in pids:
        assert not group_members(pid), f"agent group {pid} outlived pause --now"
    data = json.loads(out.splitlines()[-1])["data"]
    assert {s["status"] for s in data["streams"]} == {"interrupted"} and data["status"] == "paused"
    resumed = run_streams(["resume", "--json"], repo.root, timeout=240)
    assert resumed.code == 0, resumed.err  # with retries: 0, a spent retry would have failed them
    final = json.loads(resumed.out.splitlines()[-1])["data"]
    assert {s["status"] for s in final["streams"]} == {"verified"}
    assert all(s["retries_used"] == 0 for s in state(repo)["streams"].values())


def test_abort_from_a_paused_run_and_resume_is_refused_after(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": "depends: [a]"}, {"a": [["--hang", "--chatter", "0.2"]]})
    runner = start(repo)
    wait_running(repo, 1)
    assert run_streams(["pause", "--now"], repo.root).code == 0
    runner.communicate(timeout=60)
    aborted = run_streams(["abort", "--json"], repo.root)
    assert aborted.code == 0, aborted.err
    body = json.loads(aborted.out)["data"]
    assert body["status"] == "aborted" and body["runner_alive"] is False
    again = run_streams(["resume"], repo.root)
    assert again.code == 1 and "aborted" in again.err
    assert run_streams(["pause"], repo.root).code == 1  # nothing to pause


def test_abort_while_running_stops_every_agent(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": ""}, {"*": [["--hang", "--chatter", "0.2"]]})
    runner = start(repo)
    data = wait_running(repo, 2)
    pids = [s["attempts"][-1]["pid"] for s in data["streams"].values()]
    assert run_streams(["abort"], repo.root).code == 0
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 1, err
    assert json.loads(out.splitlines()[-1])["data"]["status"] == "aborted"
    assert not any(pid_alive(p) for p in pids)


def test_resume_with_no_run_or_a_finished_run_says_so(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": ""})
    none = run_streams(["resume"], repo.root)
    assert none.code == 1 and "no run of `streams run`" in none.err
    assert run_streams(["run"], repo.root).code == 0
    done = run_streams(["resume"], repo.root)
    assert done.code == 1 and "is completed: there is nothing to resume" in done.err


def test_a_stream_verified_for_the_same_inputs_is_not_run_again(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "task: first", "b": "task: first"})
    assert run_streams(["run"], repo.root, timeout=240).code == 0
    dry = run_streams(["run", "--dry-run", "--why", "--json"], repo.root)
    waves = json.loads(dry.out)["data"]["waves"]
    assert {s["action"] for w in waves for s in w["streams"]} == {"skip"}
    assert "already verified by run" in waves[0]["streams"][0]["why"]
    text = (repo.root / "streams.yaml").read_text().replace("task: first", "task: second", 1)  # a's
    (repo.root / "streams.yaml").write_text(text)
    repo.commit_all("a's task changes")
    again = run_streams(["run", "--json"], repo.root, timeout=240)
    assert again.code == 0, again.err
    data = json.loads(again.out.splitlines()[-1])["data"]
    ran = {r["stream"] for r in joblog(data)}
    assert ran == {"a"}  # b: same task, command, patterns and base, branch unchanged
    b = next(s for s in data["streams"] if s["name"] == "b")
    assert b["status"] == "verified" and "for the same inputs" in b["cause"] and b["attempts"] == 0
