"""``kill -9`` of ``streams run`` (and of the ``streams resume`` after it) at random points across a
3-wave run with ``-j 4`` (issue 14, acceptance: fault injection).

Seven streams in three waves run the fake agent (``python -m streams.demo_agent --steps 2``: two
commits under ``src/<name>/``, 1.5 s apart). The runner, started in its own session, is sent SIGKILL
(its pid only: the agents live in sessions of their own) after a random delay, or one time in three
the instant a chosen line shows in its output (``attempt 1 started``, ``verified``, ``landing``...:
the runner says them just before the state save that records them); then ``streams resume``
starts, and is killed in turn, up to ``MAX_KILLS`` times, until one runs to the end. Then:

- every stream is verified (``run.merge: false``) or landed (``true``), and its work is there
  once: two commits touching ``src/<name>/`` on its branch, or one landing on main, and each file
  the agent wrote holds one line (a re-run of finished work would add a second);
- the joblog has one ``verified`` row per stream (no verdict given twice);
- no process with the run's ``STREAMS_RUN_ID`` in its environment is left (``/proc/*/environ``);
- ``git fsck --no-dangling`` is clean.

Each case has its own seed (printed, and in every assertion); ``STREAMS_FAULT_SEED`` replays its
kill points (the processes' timing is the machine's). The windows a random kill seldom hits (an
agent started but not yet recorded, a verdict lost) are set up exactly by the tests after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streams.kernel.procs import group_members
from streams.runstate import read_joblog
from tests.conftest import Repo
from tests.test_run import FAST_RUN, setup

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")

BASE_SEED = int(os.environ.get("STREAMS_FAULT_SEED", "0")) or random.SystemRandom().randrange(1, 1 << 30)
CASES = 5
MIN_KILLS = 4  # landed kills per case: 5 cases, 20+ kill points in all
MAX_KILLS = 12  # then one resume runs to the end
STEPS = 2
STREAMS = {
    "a": "",
    "b": "",
    "c": "",
    "d": "",
    "e": "depends: [a, b]",
    "f": "depends: [c]",
    "g": "depends: [e, d]",
}  # waves: a b c d | e f | g


@dataclass
class Chain:
    """One case: the runs and resumes started, and what each kill hit."""

    repo: Repo
    rng: random.Random
    seed: int
    out: Path
    kills: list[str] = field(default_factory=list)
    restarts: int = 0

    def note(self) -> str:
        return f"seed {self.seed}: kills at {', '.join(self.kills) or 'none'}"

    def start(self, verb: str) -> tuple[subprocess.Popen[bytes], Path]:
        args = [verb, "-j", "4"]  # resume does not remember the run's -j
        path = self.out / f"{len(self.kills) + self.restarts:02d}-{verb}.log"
        with open(path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streams", *args],
                cwd=self.repo.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return proc, path


def runs_dir(repo: Repo) -> Path:
    return repo.root / ".git/streams/runs"


def latest(repo: Repo) -> str | None:
    try:
        return (runs_dir(repo) / "latest").read_text().strip() or None
    except OSError:
        return None


def state(repo: Repo) -> dict[str, Any] | None:
    run_id = latest(repo)
    try:
        return json.loads((runs_dir(repo) / str(run_id) / "state.json").read_text()) if run_id else None
    except OSError:
        return None


TRIGGERS = ("attempt 1 started", ": verified", "landing", "resuming run", "wave ")


def kill_point(chain: Chain, proc: subprocess.Popen[bytes], log: Path) -> str | None:
    """Wait for the moment to kill ``proc`` (a random delay, or, one time in three, the instant a
    random line shows in its output: the runner says it before the save that records it), kill it
    there and say where; None when it ended first."""
    delay = chain.rng.uniform(0.3, 1.8)
    how = f"+{delay:.2f}s"
    if chain.rng.random() < 1 / 3:
        trigger = chain.rng.choice(TRIGGERS)
        nth = 1 if trigger == "resuming run" else chain.rng.randint(1, 3)
        deadline = time.monotonic() + delay  # the kill lands then if the line has not come
        while time.monotonic() < deadline and proc.poll() is None:
            if log.read_text(errors="replace").count(trigger) >= nth:
                how = f"at {trigger!r} #{nth}"
                break
            time.sleep(0.002)
    else:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=delay)
    if proc.poll() is not None:
        return None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return how


def run_to_the_end(chain: Chain) -> int:
    """``streams run``, then ``streams resume`` until the run is over: each killed at a random
    point while fewer than ``MAX_KILLS`` have landed. Returns the last one's exit code."""
    verb = "run"
    while True:
        proc, log = chain.start(verb)
        how = kill_point(chain, proc, log) if len(chain.kills) < MAX_KILLS else None
        st = state(chain.repo)
        if how is not None:
            where = f"wave {st['wave']} {st['phase']}" if st else "before any state"
            chain.kills.append(f"{verb} {how} ({where})")
            if st is not None and st["status"] == "completed":
                return 0  # killed after it saved the run's end: there is nothing to resume
            verb = "resume" if st is not None else "run"
            continue
        code = proc.wait(timeout=240)
        if st is None:  # killed before its first state was written: nothing to resume, run again
            assert code != 0, chain.note()
            chain.restarts += 1
            verb = "run"
            continue
        return code


def agent_processes(run_id: str) -> list[int]:
    """Live processes whose environment carries ``STREAMS_RUN_ID=<run_id>``."""
    needle = f"STREAMS_RUN_ID={run_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if needle in env and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found.append(int(entry))
    return found


def fsck(repo: Repo, note: str) -> None:
    deadline = time.monotonic() + 120  # a guard against a hang, not a speed check
    while (repo.root / ".git/gc.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    res = subprocess.run(
        ["git", "fsck", "--no-progress", "--no-dangling"], cwd=repo.root, capture_output=True, text=True
    )
    assert res.returncode == 0, (note, res.stdout + res.stderr)


def work_once(repo: Repo, name: str, merge: bool, start: str, note: str) -> None:
    """``name``'s work is there exactly once: two commits (or one landing) touching ``src/<name>/``,
    each file it wrote holding one line."""
    ref = "main" if merge else f"streams/{name}"
    commits = repo.git("rev-list", f"{start}..{ref}", "--", f"src/{name}/").split()
    assert len(commits) == (1 if merge else STEPS), (note, name, ref, len(commits))
    for i in range(1, STEPS + 1):
        text = repo.git("show", f"{ref}:src/{name}/demo_{i}.py")
        assert text == f"# step {i} of stream {name}\n", (note, name, i, text)
    if merge:
        # a merge killed after keeping the landed tip keeps it again when the next one finishes
        # that landing: two refs may name it, never two different tips
        tips = set(repo.git("for-each-ref", "--format=%(objectname)", f"refs/streams/landed/{name}/").split())
        assert len(tips) == 1, (note, name, tips)


@pytest.mark.parametrize("case", range(CASES))
def test_kill_9_of_the_runner_then_resume_finishes_every_stream_once(tmp_path: Path, case: int) -> None:
    seed = BASE_SEED + case
    merge = seed % 2 == 1
    print(f"seed {seed} (STREAMS_FAULT_SEED={seed - case} replays), merge {merge}")
    run_block = FAST_RUN.replace("merge: false", f"merge: {str(merge).lower()}")
    repo = setup(tmp_path, STREAMS, run=run_block, agent_args=f"--steps {STEPS} --sleep 1.5")
    start = repo.git("rev-parse", "main").strip()
    out = tmp_path / "runner-logs"
    out.mkdir()
    chain = Chain(repo, random.Random(seed), seed, out)
    code = run_to_the_end(chain)
    note = chain.note()
    print(note)
    run_id = latest(repo)
    st = state(repo)
    assert run_id is not None and st is not None, note
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(out.iterdir()))
    assert code == 0 and st["status"] == "completed", (note, st["status"], logs)
    assert len(chain.kills) >= MIN_KILLS, note
    want = "landed" if merge else "verified"
    assert {n: s["status"] for n, s in st["streams"].items()} == dict.fromkeys(STREAMS, want), note
    for name in STREAMS:
        work_once(repo, name, merge, start, note)
    verdicts = [r["stream"] for r in read_joblog(runs_dir(repo) / run_id / "joblog.tsv") if r["class"] == "verified"]
    assert sorted(verdicts) == sorted(STREAMS), (note, "verified once each in the joblog", verdicts)
    left = agent_processes(run_id)
    assert not left, (note, "agent processes left running", left)
    fsck(repo, note)


# --- the windows a random kill seldom hits, set up exactly -------------------------------------------


def state_file(repo: Repo) -> Path:
    return runs_dir(repo) / str(latest(repo)) / "state.json"


def runner_killed_with_an_agent_running(repo: Repo) -> dict[str, Any]:
    """``streams run`` of the one stream ``api``, SIGKILLed once its agent's pid is recorded;
    returns the state it left."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "run"],
        cwd=repo.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60  # a guard against a hang, not a speed check
    st = None
    while time.monotonic() < deadline:
        st = state(repo)
        if st and st["streams"]["api"]["status"] == "running":
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert st is not None and st["streams"]["api"]["status"] == "running", st
    return st


def resume(repo: Repo) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "streams", "resume", "--json"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])["data"], done.stderr


@pytest.mark.parametrize("agent", ["alive", "exited"])
def test_an_agent_started_but_not_recorded_is_adopted_or_verified_not_run_twice(tmp_path: Path, agent: str) -> None:
    """The runner died between starting an agent and saving its pid: ``state.json`` still says
    ``queued`` with no attempt (the file is put back exactly so after a real kill). The next resume
    finds the agent by its environment and adopts it, or, gone already, verifies its commits."""
    repo = setup(tmp_path, {"api": ""}, agent_args="--steps 2 --sleep 1.5")
    start = repo.git("rev-parse", "main").strip()
    st = runner_killed_with_an_agent_running(repo)
    pid = st["streams"]["api"]["attempts"][-1]["pid"]
    st["streams"]["api"]["attempts"].pop()
    st["streams"]["api"]["status"] = "queued"
    state_file(repo).write_text(json.dumps(st))
    if agent == "exited":
        deadline = time.monotonic() + 60  # a guard against a hang, not a speed check
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    code, data, err = resume(repo)
    assert code == 0, err
    assert ("1 agent(s) adopted" if agent == "alive" else "1 to verify") in err, err
    assert [(s["status"], s["attempts"]) for s in data["streams"]] == [("verified", 1)]
    work_once(repo, "api", False, start, agent)
    assert not agent_processes(data["run_id"])


def test_an_attempt_whose_verdict_was_lost_is_verified_not_run_again(tmp_path: Path) -> None:
    """The runner died after saving an exited agent's end (with another stream's save) but before
    its verdict: ``running``, the attempt ended, no class. Resume verifies its commits; the stream
    is not run a second time."""
    repo = setup(tmp_path, {"api": ""}, agent_args="--steps 2 --sleep 0.3")
    start = repo.git("rev-parse", "main").strip()
    st = runner_killed_with_an_agent_running(repo)
    pid = st["streams"]["api"]["attempts"][-1]["pid"]
    deadline = time.monotonic() + 60  # a guard against a hang, not a speed check
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    st["streams"]["api"]["attempts"][-1]["ended"] = time.time()
    state_file(repo).write_text(json.dumps(st))
    code, data, err = resume(repo)
    assert code == 0, err
    assert "1 to verify" in err, err
    assert [(s["status"], s["attempts"]) for s in data["streams"]] == [("verified", 1)]
    work_once(repo, "api", False, start, "verdict lost")


def test_abort_with_no_runner_stops_an_agent_it_never_recorded(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": ""}, agent_args="--steps 2 --sleep 3")
    st = runner_killed_with_an_agent_running(repo)
    pid = st["streams"]["api"]["attempts"].pop()["pid"]
    st["streams"]["api"]["status"] = "queued"
    state_file(repo).write_text(json.dumps(st))
    done = subprocess.run(
        [sys.executable, "-m", "streams", "abort", "--json"], cwd=repo.root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout.strip().splitlines()[-1])["data"]
    assert data["stopped"] == ["api"] and data["status"] == "aborted"
    assert not group_members(pid), "the agent's group outlived the abort"
    assert not agent_processes(str(latest(repo)))


def test_a_verdict_the_joblog_has_is_not_given_twice(tmp_path: Path) -> None:
    """The runner died between the joblog's ``verified`` row and the state save: the state still
    says ``running``. Resume takes the joblog's verdict; it neither verifies nor runs it again."""
    repo = setup(tmp_path, {"api": ""}, agent_args="--steps 2 --sleep 0")
    start = repo.git("rev-parse", "main").strip()
    done = subprocess.run([sys.executable, "-m", "streams", "run"], cwd=repo.root, capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr
    st = state(repo)
    assert st is not None
    st["status"], st["phase"], st["ended"] = "running", "running", None
    s = st["streams"]["api"]
    s["status"], s["cause"] = "running", ""
    s["attempts"][-1].update(ended=None, klass=None, cause="", commits=0)
    state_file(repo).write_text(json.dumps(st))
    code, data, err = resume(repo)
    assert code == 0, err
    assert "0 to verify, 0 re-queued" in err, err
    assert [(s["status"], s["attempts"], s["commits"]) for s in data["streams"]] == [("verified", 1, STEPS)]
    rows = read_joblog(runs_dir(repo) / data["run_id"] / "joblog.tsv")
    assert [r["class"] for r in rows] == ["verified"]
    work_once(repo, "api", False, start, "verdict in the joblog")


def test_a_runner_killed_before_its_first_save_is_resumed(tmp_path: Path) -> None:
    repo = setup(tmp_path, {n: "" for n in "abcd"}, agent_args="--steps 1 --sleep 0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "run", "-j", "4"],
        cwd=repo.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60  # a guard against a hang, not a speed check
    while latest(repo) is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert latest(repo) is not None
    code, data, err = resume(repo)
    assert code == 0, err
    assert {s["status"] for s in data["streams"]} == {"verified"}
