"""``streams run`` with the fake agent (``python -m streams.demo_agent``), real processes in real
worktrees (issue "`streams plan` and `streams run`", acceptance).

Every test runs ``streams run`` as a subprocess and judges from what a user can see: the exit
code, ``--json``, the run's ``joblog.tsv`` and ``state.json``, git, and ``/proc``.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from streams.kernel.procs import group_members, pid_alive
from tests.conftest import Repo, make_repo, run_streams

AGENT = f"{sys.executable} -m streams.demo_agent"
FAST_RUN = "run:\n  backoff: 100ms\n  grace: 1s\n  timeout: 60s\n  stall_timeout: 60s\n  merge: false\n  gate: none\n"


def setup(
    tmp_path: Path,
    streams: dict[str, str],
    scenario: dict[str, Any] | None = None,
    *,
    run: str = FAST_RUN,
    agent_args: str = "--steps 1 --sleep 0",
) -> Repo:
    """A repository whose streams each own ``src/<name>/**`` and run the fake agent with
    ``scenario`` (stream -> per-attempt options). ``streams`` maps a name to extra YAML lines."""
    plan = tmp_path / "scenario.json"
    plan.write_text(json.dumps(scenario or {"*": [[]]}))
    lines = ["version: 1", "base: main", "streams:"]
    for name, extra in streams.items():
        lines += [f"  {name}:", f"    owns: [src/{name}/**]", f"    command: {AGENT} {agent_args} --scenario {plan}"]
        lines += [f"    {x}" for x in extra.splitlines() if x.strip()]
    text = "\n".join(lines) + "\n" + run
    files = {f"src/{name}/a.py": f"# {name}\n" for name in streams}
    files["README.md"] = "demo\n"
    return make_repo(tmp_path, files=files, config=text)


def run(repo: Repo, *args: str, timeout: float = 240) -> tuple[int, dict[str, Any], str]:
    out = run_streams(["run", "--json", *args], repo.root, timeout=timeout)
    doc = json.loads(out.out.strip().splitlines()[-1])
    return out.code, doc["data"], out.err


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in data["streams"]}


def joblog(data: dict[str, Any]) -> list[dict[str, str]]:
    lines = (Path(data["run_dir"]) / "joblog.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


def peak_concurrency(rows: list[dict[str, str]]) -> int:
    """The most attempts running at one moment, from the joblog's start and end times."""
    moments = sorted([(float(r["start"]), 1) for r in rows] + [(float(r["end"]), -1) for r in rows])
    running = peak = 0
    for _, delta in moments:
        running += delta
        peak = max(peak, running)
    return peak


def branch_commits(repo: Repo, name: str) -> int:
    return int(repo.git("rev-list", "--count", f"main..streams/{name}").strip())


def test_every_stream_verified_in_dependency_order(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": "depends: [a]", "c": "depends: [a]", "d": "depends: [b, c]"})
    code, data, err = run(repo)
    assert code == 0, err
    assert data["status"] == "completed" and data["waves"] == 3
    assert {s["name"]: s["status"] for s in data["streams"]} == dict.fromkeys("abcd", "verified")
    rows = {r["stream"]: r for r in joblog(data)}
    assert float(rows["b"]["start"]) >= float(rows["a"]["end"])
    assert float(rows["d"]["start"]) >= max(float(rows["b"]["end"]), float(rows["c"]["end"]))
    for name in "abcd":
        assert branch_commits(repo, name) >= 2  # the agent's commit and its progress commits
    state = json.loads((Path(data["run_dir"]) / "state.json").read_text())
    assert state["status"] == "completed" and state["streams"]["d"]["attempts"][0]["klass"] is None


def test_twelve_streams_run_in_order_and_the_pool_is_never_exceeded(tmp_path: Path) -> None:
    deps = {
        "s01": "", "s02": "", "s03": "", "s04": "",
        "s05": "depends: [s01]", "s06": "depends: [s01, s02]", "s07": "depends: [s03]", "s08": "depends: [s04]",
        "s09": "depends: [s05, s06]", "s10": "depends: [s07]", "s11": "depends: [s08, s09]", "s12": "depends: [s10, s11]",
    }  # fmt: skip
    repo = setup(tmp_path, deps, agent_args="--steps 1 --sleep 0.3")
    code, data, err = run(repo, "-j", "3")
    assert code == 0, err
    rows = joblog(data)
    assert sorted(r["stream"] for r in rows) == sorted(deps)
    span = {r["stream"]: (float(r["start"]), float(r["end"])) for r in rows}
    for name, extra in deps.items():
        for dep in extra.removeprefix("depends: [").removesuffix("]").split(", ") if extra else []:
            assert span[name][0] >= span[dep][1], f"{name} started before {dep} ended"
    peak = peak_concurrency(rows)
    assert peak <= 3
    assert peak >= 2  # the pool was used


@pytest.mark.parametrize("which", ["timeout", "stall"])
def test_a_hanging_agent_and_its_child_are_killed_and_retried(tmp_path: Path, which: str) -> None:
    run_block = FAST_RUN.replace(
        "timeout: 60s\n  stall_timeout: 60s", "timeout: 60s\n  stall_timeout: 60s\n  retries: 1"
    )
    if which == "timeout":
        flags = ["--timeout", "3s"]
        first = ["--spawn-child", "--hang", "--chatter", "0.2", "--ignore-term"]  # chatter: never stalls
    else:
        flags = ["--stall-timeout", "2s"]
        first = ["--spawn-child", "--hang"]  # silent once its step is done
    repo = setup(tmp_path, {"api": ""}, {"api": [first, []]}, run=run_block)
    code, data, err = run(repo, *flags)
    assert code == 0, err
    rows = joblog(data)
    assert [r["class"] for r in rows] == [which, "verified"]
    log = Path(by_name(data)["api"]["log"]).with_name("1.log").read_text()
    child = int(log.split("child pid ")[1].split()[0])
    assert not pid_alive(child), "the agent's child outlived the timeout"
    if which == "timeout":
        assert "KILL after the grace" in rows[0]["cause"]  # it ignored TERM


def test_exit_75_is_retried_with_backoff_and_exit_1_is_not(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": "", "ui": ""}, {"api": [["--tempfail"], []], "ui": [["--exit", "1"]]})
    code, data, err = run(repo)
    assert code == 1, err
    rows = joblog(data)
    api = [r for r in rows if r["stream"] == "api"]
    assert [r["class"] for r in api] == ["tempfail", "verified"]
    assert float(api[1]["start"]) - float(api[0]["end"]) >= 0.08  # the backoff (100 ms ± 20 %)
    ui = [r for r in rows if r["stream"] == "ui"]
    assert [r["class"] for r in ui] == ["failed"] and ui[0]["exit"] == "1"
    assert (by_name(data)["ui"]["status"] == "failed" and "run_failed" in err) or code == 1


def test_exit_3_leaves_the_stream_blocked_and_the_run_exits_4(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": "", "ui": "depends: [api]"}, {"api": [["--blocked", "Which database?"]]})
    code, data, err = run(repo)
    assert code == 4, err
    s = by_name(data)
    assert s["api"]["status"] == "blocked" and s["api"]["attempts"] == 1
    assert s["ui"]["status"] == "skipped" and s["ui"]["blocked_by"] == "api"


def test_a_blocking_failure_skips_exactly_its_dependents(tmp_path: Path) -> None:
    streams = {
        "a": "",
        "b": "",
        "c": "depends: [a]",
        "d": "depends: [c]",
        "e": "depends: [b]",
        "f": "depends: [a]\non_failure: isolated",
        "g": "depends: [f]",
    }
    repo = setup(tmp_path, streams, {"a": [["--exit", "1"]], "f": [["--exit", "2"]]})
    code, data, err = run(repo)
    assert code == 1, err
    s = by_name(data)
    assert s["a"]["status"] == "failed" and s["f"]["status"] == "skipped"  # f depends on a (blocking)
    assert {n for n, v in s.items() if v["status"] == "skipped"} == {"c", "d", "f", "g"}
    assert s["d"]["blocked_by"] == "a" and s["c"]["blocked_by"] == "a"
    assert s["b"]["status"] == s["e"]["status"] == "verified"
    assert {r["stream"] for r in joblog(data)} == {"a", "b", "e"}  # skipped streams never started


def test_an_isolated_failure_lets_its_dependents_run(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "on_failure: isolated", "b": "depends: [a]"}, {"a": [["--exit", "1"]]})
    code, data, err = run(repo)
    assert code == 1, err
    s = by_name(data)
    assert s["a"]["status"] == "failed" and s["b"]["status"] == "verified"


def test_critical_with_halt_soon_lets_running_agents_finish_and_starts_none(tmp_path: Path) -> None:
    streams = {"crit": "on_failure: critical", "slow": "", "later": "", "next": "depends: [slow]"}
    scenario = {"crit": [["--exit", "1"]], "slow": [["--sleep", "2", "--steps", "2"]], "later": [[]]}
    repo = setup(tmp_path, streams, scenario)
    code, data, err = run(repo, "-j", "2", "--halt", "soon")
    assert code == 1, err
    s = by_name(data)
    assert data["status"] == "halted" and "crit" in data["halt"]
    assert s["crit"]["status"] == "failed"
    assert s["slow"]["status"] == "verified"  # it was running: it finished
    assert s["later"]["status"] == "skipped" and s["next"]["status"] == "skipped"
    assert {r["stream"] for r in joblog(data)} == {"crit", "slow"}


def test_a_failed_stream_with_a_fallback_is_retried_with_it(tmp_path: Path) -> None:
    plan = tmp_path / "scenario.json"
    repo = setup(
        tmp_path,
        {"api": f"fallback: {AGENT} --steps 1 --sleep 0 --scenario {plan}.fallback\nretries: 1"},
        {"api": [["--exit", "1"]]},
    )
    Path(f"{plan}.fallback").write_text(json.dumps({"*": [[]]}))
    code, data, err = run(repo)
    assert code == 0, err
    rows = joblog(data)
    assert [r["class"] for r in rows] == ["failed", "verified"]
    assert rows[1]["command"].endswith(".fallback")


def test_exit_0_with_no_commit_is_evidence_mismatch(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": ""}, {"api": [["--no-commit"]]})
    code, data, err = run(repo)
    assert code == 1, err
    api = by_name(data)["api"]
    assert api["status"] == "failed" and api["failure"] == "evidence_mismatch"
    assert api["attempts"] == 1  # not retried: a claim git does not back is not transient


def test_an_agent_committing_out_of_scope_is_a_scope_violation(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": "", "ui": ""}, {"api": [["--out-of-scope", "src/ui/a.py"]]})
    code, data, err = run(repo)
    assert code == 1, err
    api = by_name(data)["api"]
    assert api["failure"] == "scope_violation" and "src/ui/a.py" in api["cause"]
    assert by_name(data)["ui"]["status"] == "verified"


def test_two_runs_at_once_the_second_exits_3(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": ""}, {"api": [["--hang", "--chatter", "0.2"]]})
    first = subprocess.Popen(
        [sys.executable, "-m", "streams", "run", "--timeout", "20s"],
        cwd=repo.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 30
        while not list((repo.root / ".git/streams/runs").glob("*/runner.json")) and time.time() < deadline:
            time.sleep(0.1)
        second = run_streams(["run"], repo.root, timeout=60)
        assert second.code == 3, second.err
        assert "is running (pid" in second.err and str(first.pid) in second.err
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.wait(timeout=60)


def test_ctrl_c_stops_every_agent_and_leaves_every_stream_re_runnable(tmp_path: Path) -> None:
    streams = {"a": "", "b": "", "c": "depends: [a]"}
    scenario = {"a": [["--spawn-child", "--hang", "--chatter", "0.2"], []], "b": [["--leave-dirty", "--hang"], []]}
    repo = setup(tmp_path, streams, scenario)
    runner = subprocess.Popen(
        [sys.executable, "-m", "streams", "run", "--json"],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    state = repo.root / ".git/streams/runs"
    deadline = time.time() + 60
    pids: list[int] = []
    while time.time() < deadline:
        files = list(state.glob("*/state.json"))
        if files:
            data = json.loads(files[0].read_text())
            running = {n: s["attempts"][-1] for n, s in data["streams"].items() if s["status"] == "running"}
            pids = [a["pid"] for a in running.values()]
            log_a = Path(running["a"]["log"]) if "a" in running else None
            if len(pids) == 2 and log_a is not None and "child pid" in log_a.read_text():
                break
        time.sleep(0.1)
    assert len(pids) == 2
    time.sleep(1.5)  # b has made its commit and left its file
    os.kill(runner.pid, signal.SIGINT)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, err.decode()
    data = json.loads(out.decode().strip().splitlines()[-1])["data"]
    assert {s["name"]: s["status"] for s in data["streams"]} == {"a": "interrupted", "b": "interrupted", "c": "pending"}
    for pid in pids:
        assert not group_members(pid), f"agent group {pid} left running"
    wip = repo.git("for-each-ref", "--format=%(refname)", "refs/streams/wip/").split()
    assert any("/b/" in ref for ref in wip)  # b's uncommitted file was saved
    (tmp_path / "scenario.json").write_text(json.dumps({"*": [[]]}))  # the agents behave this time
    again = run_streams(["resume", "--json"], repo.root, timeout=240)
    assert again.code == 0, again.err
    resumed = json.loads(again.out.splitlines()[-1])["data"]
    assert {s["status"] for s in resumed["streams"]} == {"verified"}
    assert resumed["run_id"] == data["run_id"]


def test_waves_land_between_and_the_next_wave_starts_on_top(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": "depends: [a]"}, run=FAST_RUN.replace("merge: false", "merge: true"))
    code, data, err = run(repo)
    assert code == 0, err
    s = by_name(data)
    assert s["a"]["status"] == s["b"]["status"] == "landed"
    main_files = repo.git("ls-tree", "-r", "--name-only", "main").split()
    assert any(f.startswith("src/a/demo_") for f in main_files) and any(f.startswith("src/b/demo_") for f in main_files)
    assert not any(f.startswith(".streams/") for f in main_files)  # bookkeeping never lands
    # b was cut after a landed: its first commit's parent holds a's work
    landed_b = repo.git("for-each-ref", "--format=%(refname)", "refs/streams/landed/b/").split()[0]
    root_of_b = repo.git("rev-list", "--reverse", f"{landed_b}", "--not", "HEAD~1").split()[0]
    parent = repo.git("rev-parse", f"{root_of_b}^").strip()
    assert any(f.startswith("src/a/demo_") for f in repo.git("ls-tree", "-r", "--name-only", parent).split())


def test_a_sub_pool_is_respected_and_higher_priority_starts_first(tmp_path: Path) -> None:
    streams = {
        "p1": "pool: slow\npriority: 1",
        "p2": "pool: slow\npriority: 9",
        "p3": "pool: slow\npriority: 5",
        "free": "",
    }
    run_block = FAST_RUN + "  pools: {slow: 1}\n"
    repo = setup(tmp_path, streams, run=run_block, agent_args="--steps 1 --sleep 0.5")
    code, data, err = run(repo, "-j", "3")
    assert code == 0, err
    rows = sorted(joblog(data), key=lambda r: float(r["start"]))
    pooled = [r for r in rows if r["pool"] == "slow"]
    assert [r["stream"] for r in pooled] == ["p2", "p3", "p1"]
    for first, second in itertools.pairwise(pooled):
        assert float(second["start"]) >= float(first["end"])  # one at a time in the pool of 1
    assert float(next(r for r in rows if r["stream"] == "free")["start"]) < float(pooled[1]["start"])


def test_a_rate_limit_pauses_its_whole_sub_pool_for_the_backoff(tmp_path: Path) -> None:
    streams = {"x": "pool: api", "y": "pool: api", "z": "pool: api"}
    scenario = {"x": [["--tempfail"], []], "y": [["--sleep", "3"]], "z": [[]]}
    run_block = FAST_RUN.replace("backoff: 100ms", "backoff: 2s") + "  pools: {api: 2}\n"
    repo = setup(tmp_path, streams, scenario, run=run_block)
    code, data, err = run(repo, "-j", "3")
    assert code == 0, err
    rows = joblog(data)
    x1 = next(r for r in rows if r["stream"] == "x" and r["attempt"] == "1")
    z = next(r for r in rows if r["stream"] == "z")
    assert x1["class"] == "tempfail" and "rate limited" in x1["cause"]
    assert float(z["start"]) >= float(x1["end"]) + 1.5  # z waited out the pause (2 s ± 20 %), not a free slot


def test_every_transition_is_an_event(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": "depends: [a]", "c": ""}, {"a": [["--tempfail"], ["--exit", "1"]]})
    code, data, err = run(repo)
    assert code == 1, err
    lines = (repo.root / ".git/streams/events.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["event"] for line in lines if json.loads(line).get("run") == data["run_id"]]
    assert kinds[0] == "run.start" and kinds[-1] == "run.end"
    assert kinds.count("run.attempt.start") == kinds.count("run.attempt.end") == 3  # a twice, c once
    assert {"run.wave.start", "run.wave.end", "run.retry", "run.skip"} <= set(kinds)


def test_sixty_four_agents_at_once_lose_nothing(tmp_path: Path) -> None:
    names = [f"s{i:02d}" for i in range(64)]
    plan = tmp_path / "scenario.json"
    plan.write_text(json.dumps({"*": [[]]}))
    agent = (
        'for i in 1 2 3; do sleep 0.3; echo "$i" >> "src/$STREAMS_STREAM/work.txt"; '
        'git add -A src && git commit -q -m "work $i" || exit 1; done'
    )
    lines = ["version: 1", "base: main", "streams:"]
    for n in names:
        lines += [f"  {n}:", f"    owns: [src/{n}/**]", f"    command: '{agent}'"]
    config = "\n".join(lines) + "\n" + FAST_RUN
    repo = make_repo(tmp_path, files={f"src/{n}/a.py": "x\n" for n in names}, config=config)
    code, data, err = run(repo, "-j", "64", timeout=900)
    assert code == 0, err
    assert {s["status"] for s in data["streams"]} == {"verified"}
    assert "index.lock" not in err
    for n in names:
        assert repo.git("log", "--format=%s", f"main..streams/{n}", "--", "src").split("\n")[:3] == [
            "work 3",
            "work 2",
            "work 1",
        ]
    rows = joblog(data)
    assert len(rows) == 64 and peak_concurrency(rows) >= 32  # side by side, not one after another
    assert all("index.lock" not in Path(s["log"]).read_text() for s in data["streams"])


def test_merge_wave_lands_that_waves_verified_streams(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": "", "c": "depends: [a]"}, {"b": [["--exit", "1"]]})
    code, _, err = run(repo)  # merge: false: nothing lands
    assert code == 1, err
    assert run_streams(["merge", "--wave", "3"], repo.root).code == 2
    assert run_streams(["merge", "--wave", "1", "a"], repo.root).code == 2
    out = run_streams(["merge", "--wave", "1", "--json"], repo.root)
    assert out.code == 0, out.err
    landed = [r["stream"] for r in json.loads(out.out)["data"]["results"] if r["outcome"] == "landed"]
    assert landed == ["a"]  # b failed: not verified, not landed; c is wave 2


def test_a_retry_continues_on_the_branch_with_the_failed_attempts_work_saved(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": ""}, {"api": [["--leave-dirty", "--exit", "75"], []]})
    code, data, err = run(repo)
    assert code == 0, err
    rows = joblog(data)
    assert [r["class"] for r in rows] == ["tempfail", "verified"]
    ref = rows[0]["wip"]
    assert ref.startswith("refs/streams/wip/api/")
    saved = repo.git("show", "--stat", "--format=", ref)
    assert "src/api/" in saved  # the leftover file, kept under the WIP ref
    assert repo.git("-C", str(repo.worktree("api")), "status", "--porcelain").strip() == ""
    # the retry continued the same branch: attempt 1's commit is still there, under attempt 2's
    subjects = repo.git("log", "--format=%s", "main..streams/api", "--", "src").splitlines()
    assert len(subjects) == 2


def test_critical_with_halt_now_stops_the_running_agents(tmp_path: Path) -> None:
    streams = {"crit": "on_failure: critical", "slow": ""}
    scenario = {"crit": [["--sleep", "1", "--exit", "1"]], "slow": [["--hang", "--chatter", "0.2"]]}
    repo = setup(tmp_path, streams, scenario)
    code, data, err = run(repo, "--halt", "now")
    assert code == 1, err
    s = by_name(data)
    assert data["status"] == "halted" and s["crit"]["status"] == "failed"
    assert s["slow"]["status"] == "interrupted" and s["slow"]["failure"] == "interrupted"


def test_a_slow_check_does_not_hold_the_pool(tmp_path: Path) -> None:
    """run.check runs beside the loop: the slot of an agent that exited is free while its check runs."""
    repo = setup(tmp_path, {"a": "priority: 2", "b": "priority: 1"}, run=FAST_RUN + "  check: sleep 3\n")
    code, data, err = run(repo, "-j", "1")
    assert code == 0, err
    rows = {r["stream"]: r for r in joblog(data)}
    assert float(rows["b"]["start"]) - float(rows["a"]["end"]) < 1.5  # not after a's 3 s check
    assert {s["status"] for s in data["streams"]} == {"verified"}


def test_status_shows_the_run_its_wave_and_each_agent(tmp_path: Path) -> None:
    scenario = {"a": [["--tempfail"], ["--hang", "--chatter", "0.2"]], "b": [["--exit", "1"]]}
    repo = setup(tmp_path, {"a": "", "b": "on_failure: isolated"}, scenario)
    detached = run_streams(["run", "--detach", "--json"], repo.root)
    assert detached.code == 0, detached.err
    info = json.loads(detached.out)["data"]
    try:
        deadline = time.time() + 60
        snap: dict[str, Any] = {}
        while time.time() < deadline:
            snap = json.loads(run_streams(["status", "--json"], repo.root).out)["data"]
            rows = {r["name"]: r for r in snap["streams"]}
            if (
                rows["a"]["agent_running"]
                and rows["a"]["run"]["attempt"] == 2
                and rows["b"]["run"]["status"] == "failed"
            ):
                break
            time.sleep(0.2)
        rows = {r["name"]: r for r in snap["streams"]}
        assert snap["run"] == {
            "run_id": info["run_id"],
            "status": "running",
            "wave": 1,
            "waves": 1,
            "runner_alive": True,
            "paused_by": "",
            "running": 1,
            "queued": 0,
            "verified": 0,
            "failed": 1,
            "elapsed": snap["run"]["elapsed"],
            "remaining": snap["run"]["remaining"],
        }
        assert snap["run"]["elapsed"] > 0 and snap["run"]["remaining"] is not None  # b's attempt ended: a median
        a, b = rows["a"], rows["b"]
        assert a["run"]["status"] == "running" and a["agent_running"] and a["run"]["failure"] == "tempfail"
        assert b["run"]["failure"] == "failed" and b["run"]["cause"] == "exit 1" and not b["agent_running"]
        text = run_streams(["status"], repo.root).out
        assert f"running {a['agent_pid']} (a2)" in text and "failed: failed" in text
        assert f"run {info['run_id']} running wave 1/1: 1 running, 0 queued, 0 verified, 1 failed" in text
    finally:
        os.kill(info["pid"], signal.SIGINT)
        deadline = time.time() + 60
        while pid_alive(info["pid"]) and time.time() < deadline:
            time.sleep(0.1)
    snap = json.loads(run_streams(["status", "--json"], repo.root).out)["data"]
    assert snap["run"]["status"] == "interrupted" and not snap["run"]["runner_alive"]
    assert not any(r["agent_running"] for r in snap["streams"])


def test_a_worktree_started_before_the_run_is_rebased_onto_the_base_before_its_wave(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": ""})
    assert run_streams(["start", "a"], repo.root).code == 0
    (repo.root / "README.md").write_text("moved on\n")
    repo.commit_all("main moves on")
    code, _, err = run(repo)
    assert code == 0, err
    assert "a: rebased onto main before its wave" in err
    repo.git("merge-base", "--is-ancestor", "main", "streams/a")  # fails unless main is in a's history
