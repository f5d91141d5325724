"""``streams metrics`` against real runs of the fake agent whose durations are known from its sleeps
(issue "`streams metrics`", acceptance).

The agent sleeps ``--sleep`` seconds between its ``--steps`` commits, so an attempt of ``--steps 2
--sleep S`` runs S seconds plus the agent's own overhead (a Python start, two commits, a progress
write: well under ``OVERHEAD`` on a loaded machine). Each figure is checked twice: against the
sleeps, within ``OVERHEAD`` (scheduler noise), and against the hand computation from the run's
joblog and events, within ``EXACT``.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Repo, make_repo, run_streams
from tests.test_run import AGENT, FAST_RUN

OVERHEAD = 3.0  # seconds an attempt may take beyond its sleeps (python start-up, git, on 2 busy cores)
EXACT = 2e-3  # the metrics against the same arithmetic here: the joblog keeps milliseconds (rounded twice)
SHORT, LONG = 0.5, 4.0


def repo_with(tmp: Path, streams: dict[str, str], scenario: dict[str, Any], run: str = FAST_RUN) -> Repo:
    plan = tmp / "scenario.json"
    plan.write_text(json.dumps(scenario))
    lines = ["version: 1", "base: main", "streams:"]
    for name, extra in streams.items():
        lines += [f"  {name}:", f"    owns: [src/{name}/**]", f"    command: {AGENT} --scenario {plan}"]
        lines += [f"    {x}" for x in extra.splitlines() if x.strip()]
    files = {f"src/{name}/a.py": f"# {name}\n" for name in streams}
    return make_repo(tmp, files=files, config="\n".join(lines) + "\n" + run)


def metrics(repo: Repo, *args: str) -> dict[str, Any]:
    out = run_streams(["metrics", "--json", *args], repo.root)
    assert out.code == 0, out
    data: dict[str, Any] = json.loads(out.out)["data"]
    return data


def rows_of(repo: Repo, run_id: str) -> list[dict[str, str]]:
    lines = (repo.root / ".git" / "streams" / "runs" / run_id / "joblog.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


@pytest.fixture(scope="module")
def barrier_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Repo, dict[str, Any], list[dict[str, str]]]:
    """-j 2: wave 1 a short and a long stream side by side (an idle barrier of about LONG - SHORT),
    wave 2 a stream whose first attempt fails with tempfail and whose retry is verified."""
    tmp = tmp_path_factory.mktemp("barrier")
    steps = ["--steps", "2", "--sleep"]
    scenario = {
        "short": [[*steps, str(SHORT)]],
        "long": [[*steps, str(LONG)]],
        "c": [["--tempfail"], [*steps, str(SHORT)]],
    }
    repo = repo_with(tmp, {"short": "", "long": "", "c": "depends: [short, long]"}, scenario)
    ran = run_streams(["run", "-j", "2", "--retries", "1"], repo.root, timeout=240)
    assert ran.code == 0, ran
    data = metrics(repo)
    return repo, data["runs"][0], rows_of(repo, data["runs"][0]["run_id"])


def test_each_attempt_runs_its_sleeps(barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]]) -> None:
    _, m, rows = barrier_run
    spans = {(a["stream"], a["attempt"]): a for a in m["attempts"]}
    assert sorted(spans) == [("c", 1), ("c", 2), ("long", 1), ("short", 1)]
    for stream, sleep in (("short", SHORT), ("long", LONG), ("c", 0.0)):
        assert sleep <= spans[(stream, 1)]["run_time"] <= sleep + OVERHEAD
    for r in rows:
        a = spans[(r["stream"], int(r["attempt"]))]
        assert abs(a["start"] - float(r["start"])) < EXACT and abs(a["end"] - float(r["end"])) < EXACT
        assert abs(a["run_time"] - float(r["run_time"])) < EXACT


def test_a_retried_attempt_counts_once_in_eventual_success_and_twice_in_attempts(
    barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]],
) -> None:
    _, m, _ = barrier_run
    f = m["figures"]
    assert (f["attempts"], f["streams"], f["verified"]) == (4, 3, 3)
    assert f["first_attempt_success"] == pytest.approx(2 / 3)
    assert f["eventual_success"] == 1.0
    assert f["retry_rate"] == pytest.approx(1 / 4)
    assert f["commits"] == 6  # two steps each for the three verified attempts, none for the tempfail
    assert [a["klass"] for a in m["attempts"] if a["stream"] == "c"] == ["tempfail", "verified"]
    assert f["timeout_rate"] == f["stall_rate"] == f["conflict_rate"] == f["mismatch_rate"] == 0.0
    wave2 = m["waves"][1]["figures"]
    assert (wave2["attempts"], wave2["streams"], wave2["first_attempt_success"], wave2["eventual_success"]) == (
        2,
        1,
        0.0,
        1.0,
    )


def test_the_barrier_idle_time_is_the_long_stream_less_the_short(
    barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]],
) -> None:
    _, m, rows = barrier_run
    w1 = m["waves"][0]
    assert w1["slots"] == 2 and m["slots"] == 2
    end = {r["stream"]: float(r["end"]) for r in rows if r["stream"] in ("short", "long")}
    assert abs(w1["barrier_idle"] - (end["long"] - end["short"])) < EXACT  # one slot idle from short's end
    assert LONG - SHORT - OVERHEAD <= w1["barrier_idle"] <= LONG - SHORT + OVERHEAD
    assert w1["first_end"] == pytest.approx(end["short"], abs=EXACT)
    assert m["barrier_idle"] == pytest.approx(sum(w["barrier_idle"] for w in m["waves"]), abs=EXACT)


def test_efficiency_speedup_and_critical_path_follow_from_the_joblog(
    barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]],
) -> None:
    _, m, rows = barrier_run
    total = sum(float(r["end"]) - float(r["start"]) for r in rows)  # the joblog's run_time, unrounded
    assert m["figures"]["run_time"] == pytest.approx(total, abs=EXACT)
    assert m["human_wait"] == 0.0 and m["busy_wall"] == pytest.approx(m["wall"])  # gate: none, no pause
    wall = m["wall"]
    assert wall >= max(float(r["end"]) for r in rows) - min(float(r["start"]) for r in rows) - EXACT
    assert LONG + SHORT <= wall <= LONG + SHORT + 3 * OVERHEAD  # wave 1 waits on long, then c twice
    assert m["speedup"] == pytest.approx(total / wall, abs=EXACT)
    assert m["parallel_efficiency"] == pytest.approx(total / (wall * 2), abs=EXACT)
    by = {r["stream"]: r for r in rows if r["attempt"] == "1"}
    c_span = max(float(r["end"]) for r in rows if r["stream"] == "c") - float(by["c"]["start"])
    long_span = float(by["long"]["end"]) - float(by["long"]["start"])
    assert m["critical_path"] == pytest.approx(long_span + c_span, abs=EXACT)
    assert m["critical_path_ratio"] == pytest.approx(m["critical_path"] / wall, abs=EXACT)
    assert m["critical_path_ratio"] <= 1.0
    w1 = m["waves"][0]
    w1_total = sum(float(by[n]["end"]) - float(by[n]["start"]) for n in ("short", "long"))
    w1_wall = w1["end"] - w1["start"]
    assert w1["speedup"] == pytest.approx(w1_total / w1_wall, abs=EXACT)
    assert (LONG + SHORT) / (LONG + OVERHEAD) <= w1["speedup"] <= (LONG + SHORT + 2 * OVERHEAD) / LONG
    assert m["figures"]["verified_per_hour"] == pytest.approx(3 * 3600 / wall, rel=1e-6)
    assert m["figures"]["commits_per_hour"] == pytest.approx(6 * 3600 / wall, rel=1e-6)
    assert [p["pool"] for p in m["pools"]] == [""] and m["pools"][0]["figures"]["attempts"] == 4


def test_the_trace_has_one_complete_event_per_attempt_on_its_own_track(
    barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]], tmp_path: Path
) -> None:
    repo, _, rows = barrier_run
    target = tmp_path / "run.trace.json"
    out = run_streams(["metrics", "--trace", str(target)], repo.root)
    assert out.code == 0, out
    doc = json.loads(target.read_text())
    evs = doc["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    complete = [e for e in evs if e["ph"] == "X"]
    assert len(complete) == len(rows) == 4
    t0 = doc["otherData"]["started"]
    for r in rows:
        (e,) = [e for e in complete if e["name"] == f"{r['stream']} #{r['attempt']}"]
        assert names[e["tid"]] == r["stream"] and e["args"]["class"] == r["class"]
        assert abs(t0 + e["ts"] / 1e6 - float(r["start"])) < EXACT
        assert abs(e["dur"] / 1e6 - float(r["run_time"])) < EXACT
    for tid in {e["tid"] for e in complete}:  # no event leaves its track: one after another on it
        mine = sorted((e["ts"], e["ts"] + e["dur"]) for e in complete if e["tid"] == tid)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(mine))
    instants = [e for e in evs if e["ph"] == "i"]
    assert instants and all(e["tid"] == 0 and e["cat"] in ("gate", "merge") for e in instants)
    assert all(e["tid"] in names for e in evs)


def _tmux_capture(repo: Repo, width: int) -> list[str]:
    session = f"metrics-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    env.pop("TMUX", None)
    command = f"cd {repo.root} && {AGENT.split()[0]} -m streams metrics --timeline; sleep 30"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", "40", command], env=env, check=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
            if "resumed" in shown:  # the legend's last words: the chart is drawn
                return shown.rstrip("\n").splitlines()
            time.sleep(0.2)
        raise AssertionError(f"no timeline in tmux at {width} columns:\n{shown}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.parametrize("width", [80, 200])
def test_the_timeline_fits_the_terminal_and_names_each_stream(
    barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]], width: int
) -> None:
    repo, _, _ = barrier_run
    lines = _tmux_capture(repo, width)
    assert all(len(line) < width for line in lines), lines
    for name in ("short", "long", "c"):
        (row,) = [ln for ln in lines if ln.startswith(f"w{'2' if name == 'c' else '1'} {name} ")]
        assert row.rstrip().endswith("|")
    bars = {ln.split()[1]: ln.split("|", 1)[1] for ln in lines if ln.startswith("w")}
    # 4 s against 0.5 s of sleep: under load both pay more start-up, so only the order and a gap of
    # a few columns are certain (a fixed ratio failed at load 10-17).
    assert bars["long"].count("=") >= bars["short"].count("=") + 2 and bars["short"].count("=") > 0
    assert "~" in bars["c"] and "=" in bars["c"]  # the tempfail, then the verified retry
    assert any(ln.startswith("waves") and "1" in ln and "2" in ln for ln in lines)


def test_the_timeline_off_a_terminal_is_plain(barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]]) -> None:
    repo, _, _ = barrier_run
    out = run_streams(["metrics", "--timeline"], repo.root)
    assert out.code == 0 and "\x1b[" not in out.out and "w1 long" in out.out


def test_all_and_the_text(barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]]) -> None:
    repo, m, _ = barrier_run
    every = metrics(repo, "--all")
    assert [r["run_id"] for r in every["runs"]] == [m["run_id"]]
    assert metrics(repo, "--run", m["run_id"])["runs"][0]["figures"] == m["figures"]
    text = run_streams(["metrics"], repo.root).out
    assert "parallel efficiency" in text and "barrier idle" in text and "wave 2 (1 stream, 1 slot)" in text


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--run", "20990101-000000-dead"], 1, "no run 20990101-000000-dead"),
        (["--run", "../x"], 2, "is not a run id"),
        (["--all", "--timeline"], 2, "--all measures every run"),
    ],
)
def test_bad_input_is_one_line(
    barrier_run: tuple[Repo, dict[str, Any], list[dict[str, str]]], args: list[str], code: int, says: str
) -> None:
    repo, _, _ = barrier_run
    out = run_streams(["metrics", *args], repo.root)
    assert out.code == code and out.out == "" and len(out.err.strip().splitlines()) == 1 and says in out.err, out


def test_no_run_is_one_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    for args in ([], ["--all"], ["--timeline"]):
        out = run_streams(["metrics", *args], repo.root)
        assert out.code == 1 and out.out == "" and len(out.err.strip().splitlines()) == 1, out
        assert "no run" in out.err


def test_human_wait_at_a_gate_is_measured_to_the_approval(tmp_path: Path) -> None:
    """gate: manual stops the run after wave 1 for an approval given WAIT seconds later."""
    wait = 2.0
    run = FAST_RUN.replace("gate: none", "gate: manual")
    scenario = {"*": [["--steps", "1", "--sleep", "0"]]}
    repo = repo_with(tmp_path, {"a": "", "b": "depends: [a]"}, scenario, run=run)
    first = run_streams(["run"], repo.root, timeout=120)
    assert "awaiting" in first.out + first.err or first.code != 0, first
    time.sleep(wait)
    env = {k: v for k, v in os.environ.items() if k != "STREAMS_AGENT"}
    assert run_streams(["approve", "1"], repo.root, env=env).code == 0
    assert run_streams(["resume"], repo.root, timeout=120).code == 4  # wave 2 at its gate now
    assert run_streams(["approve", "2"], repo.root, env=env).code == 0
    assert run_streams(["resume"], repo.root, timeout=120).code == 0
    m = metrics(repo)["runs"][0]
    evs = [json.loads(ln) for ln in (repo.root / ".git" / "streams" / "events.jsonl").read_text().splitlines()]
    per_wave = []
    for wave in (1, 2):
        awaiting = next(
            e["ts"] for e in evs if e["event"] == "run.gate" and e["state"] == "awaiting" and e["wave"] == wave
        )
        approved = next(e["ts"] for e in evs if e["event"] == "gate.approve" and e["wave"] == wave)
        per_wave.append(approved - awaiting)
        assert m["waves"][wave - 1]["gate_wait"] == pytest.approx(approved - awaiting, abs=EXACT)
    assert wait <= m["waves"][0]["gate_wait"] <= wait + OVERHEAD
    assert m["gate_wait"] == pytest.approx(sum(per_wave), abs=EXACT) and m["paused"] == 0.0
    assert m["human_wait_share"] == pytest.approx(m["gate_wait"] / m["wall"], abs=EXACT)
    assert m["busy_wall"] == pytest.approx(m["wall"] - m["gate_wait"], abs=EXACT)
    (a,) = [x for x in m["attempts"] if x["stream"] == "a"]
    assert a["approval_wait"] == pytest.approx(per_wave[0], abs=EXACT)
    assert {mk["kind"] for mk in m["marks"]} >= {"gate", "approve"}


def test_status_shows_the_live_figures_of_the_run(tmp_path: Path) -> None:
    """-j 1: a quick stream, then a slow one while a third waits; status reads them from the state."""
    scenario = {"a": [["--steps", "1", "--sleep", "0"]], "b": [["--steps", "2", "--sleep", "20"]], "c": [[]]}
    repo = repo_with(tmp_path, {"a": "", "b": "", "c": ""}, scenario)
    pid = json.loads(run_streams(["run", "--detach", "-j", "1", "--json"], repo.root).out)["data"]["pid"]
    try:
        deadline, run = time.monotonic() + 90, dict[str, Any]()
        while time.monotonic() < deadline:
            run = json.loads(run_streams(["status", "--json"], repo.root).out)["data"]["run"] or {}
            if run.get("running") == 1 and run.get("verified") == 1:
                break
            time.sleep(0.3)
        assert (run["running"], run["queued"], run["verified"], run["failed"]) == (1, 1, 1, 0), run
        assert run["elapsed"] > 0 and run["remaining"] is not None
        state = json.loads((repo.root / ".git" / "streams" / "runs" / run["run_id"] / "state.json").read_text())
        median = statistics.median(
            a["ended"] - a["started"] for s in state["streams"].values() for a in s["attempts"] if a["ended"]
        )
        assert median <= run["remaining"] <= 2 * median + 1  # c's median, plus what b has left of it
        line = run_streams(["status"], repo.root).out.splitlines()[0]
        assert "1 running, 1 queued, 1 verified, 0 failed" in line and "elapsed" in line
    finally:
        os.kill(pid, 15)
