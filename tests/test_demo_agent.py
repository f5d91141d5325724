"""The demo (and fake) agent, run for real in a started stream's worktree with the agent contract's env."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import DEFAULT_CONFIG, Repo, make_repo, run_cli

AGENT = [sys.executable, "-m", "streams.demo_agent"]


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = make_repo(tmp_path)
    assert run_cli(["start", "api", "docs"], repo.root).code == 0
    return repo


def env(repo: Repo, stream: str, attempt: int = 1) -> dict[str, str]:
    wt = repo.worktree(stream)
    return {
        **os.environ,
        "STREAMS_STREAM": stream,
        "STREAMS_ATTEMPT": str(attempt),
        "STREAMS_RUN_ID": "test-run",
        "STREAMS_WAVE": "1",
        "STREAMS_WORKTREE": str(wt),
        "STREAMS_BASE": "main",
        "STREAMS_PROGRESS_FILE": str(wt / ".streams" / f"stream-{stream}.md"),
        "STREAMS_AGENT": "1",
    }


def agent(repo: Repo, stream: str, *args: str, attempt: int = 1) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENT, *args],
        cwd=repo.worktree(stream),
        env=env(repo, stream, attempt),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def started(repo: Repo, stream: str, *args: str) -> subprocess.Popen[str]:
    """The agent in a session of its own, as the runner launches it (its pid is its group's id)."""
    return subprocess.Popen(
        [*AGENT, *args],
        cwd=repo.worktree(stream),
        env=env(repo, stream),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def lines_until(out: IO[str], needle: str, timeout: float = 60) -> list[str]:
    """Lines of ``out`` up to the one holding ``needle`` (fails after ``timeout`` seconds)."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while not got or needle not in got[-1]:
        ready, _, _ = select.select([out], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {needle!r} within {timeout}s; got {got}"
        line = out.readline()
        assert line, f"the agent ended before {needle!r}; got {got}"
        got.append(line)
    return got


@pytest.fixture
def groups() -> Iterator[list[int]]:
    """Process groups to kill whatever the test's outcome."""
    found: list[int] = []
    yield found
    for pgid in found:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if Path(f"/proc/{pid}").exists() else ""
    return state != "Z"


def new_commits(repo: Repo, stream: str) -> list[str]:
    return repo.git("log", "--format=%s", f"main..streams/{stream}").splitlines()[::-1][1:]  # after "start"


def progress(repo: Repo, stream: str) -> Any:
    return json.loads(run_cli(["progress", "--json"], repo.worktree(stream)).out)["data"]["progress"]


def test_by_default_it_commits_in_scope_reports_progress_and_exits_0(repo: Repo) -> None:
    done = agent(repo, "api", "--sleep", "0")
    assert done.returncode == 0, done
    subjects = new_commits(repo, "api")
    assert [s for s in subjects if s.startswith("demo:")] == ["demo: step 1", "demo: step 2", "demo: step 3"]
    assert len([s for s in subjects if s.startswith("progress(api)")]) == 4  # one per step, one to finish
    changed = set(repo.git("diff", "--name-only", "main", "streams/api").split())
    assert changed == {"src/api/demo_1.py", "src/api/demo_2.py", "src/api/demo_3.py", ".streams/stream-api.md"}
    assert run_cli(["verify"], repo.root).code == 0
    p = progress(repo, "api")
    assert (p["status"], p["completion"]) == ("completed", 100)
    assert p["completed"] == ["step 1", "step 2", "step 3", "demo finished"]
    assert repo.git("status", "--porcelain", cwd=repo.worktree("api")) == ""


def test_it_writes_where_the_stream_owns_files_whatever_the_stream(repo: Repo) -> None:
    done = agent(repo, "docs", "--steps", "1")
    assert done.returncode == 0, done
    assert set(repo.git("diff", "--name-only", "main", "streams/docs").split()) == {
        "docs/demo_1.md",
        ".streams/stream-docs.md",
    }
    assert run_cli(["verify"], repo.root).code == 0


def test_it_writes_under_the_first_pattern_with_its_files_extension(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path, config=DEFAULT_CONFIG.replace("[src/api/**, tests/api/**]", "[tests/api/**, src/api/**]")
    )
    assert run_cli(["start", "api"], repo.root).code == 0
    done = agent(repo, "api", "--steps", "1")
    assert done.returncode == 0, done
    assert "tests/api/demo_1.py" in repo.git("diff", "--name-only", "main", "streams/api").split()


def test_exit_codes_blocked_tempfail_and_no_commit(repo: Repo) -> None:
    failed = agent(repo, "api", "--steps", "1", "--exit", "1")
    assert failed.returncode == 1
    assert progress(repo, "api")["status"] == "in_progress"  # it claims nothing on a failure
    blocked = agent(repo, "api", "--steps", "0", "--blocked", "Which database?")
    assert blocked.returncode == 3
    p = progress(repo, "api")
    assert p["status"] == "blocked" and p["blocked"] == ["Which database?"]
    before = repo.git("rev-parse", "streams/api")
    temp = agent(repo, "api", "--tempfail")
    assert temp.returncode == 75 and "rate limited" in temp.stdout.splitlines()
    nothing = agent(repo, "api", "--no-commit")
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert repo.git("rev-parse", "streams/api") == before


def test_out_of_scope_lands_and_verify_finds_it(repo: Repo) -> None:
    done = agent(repo, "api", "--steps", "1", "--out-of-scope", "docs/sneaky.md")
    assert done.returncode == 0, done
    assert "docs/sneaky.md" in repo.git("diff", "--name-only", "main", "streams/api").split()
    r = run_cli(["verify"], repo.root)
    assert r.code == 5 and "docs/sneaky.md" in r.out


def test_leave_dirty_leaves_an_uncommitted_in_scope_file(repo: Repo) -> None:
    done = agent(repo, "api", "--steps", "1", "--leave-dirty")
    assert done.returncode == 0, done
    assert repo.git("status", "--porcelain", cwd=repo.worktree("api")).splitlines() == ["?? src/api/demo_dirty.py"]


def test_crash_kills_itself_by_the_signal(repo: Repo) -> None:
    done = agent(repo, "api", "--steps", "0", "--crash", "SEGV")
    assert done.returncode == -signal.SIGSEGV
    assert agent(repo, "api", "--steps", "0", "--crash", "9").returncode == -signal.SIGKILL
    bad = agent(repo, "api", "--crash", "NOPE")
    assert bad.returncode == 2 and "'NOPE' is not a signal" in bad.stderr


def test_spawn_child_leaves_a_child_in_its_process_group(repo: Repo, groups: list[int]) -> None:
    proc = started(repo, "api", "--steps", "0", "--no-commit", "--spawn-child")
    groups.append(proc.pid)
    assert proc.stdout is not None
    line = lines_until(proc.stdout, "child pid")[-1]
    child = int(line.rsplit(" ", 1)[1])
    assert proc.wait(timeout=60) == 0
    assert alive(child), "the child outlives the agent"
    assert os.getpgid(child) == proc.pid, "in the agent's process group"
    os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "killing the group ends it"


def test_hang_chatters_and_ignore_term_needs_a_kill(repo: Repo, groups: list[int]) -> None:
    proc = started(repo, "api", "--steps", "1", "--hang", "--chatter", "0.1", "--ignore-term")
    groups.append(proc.pid)
    assert proc.stdout is not None
    lines_until(proc.stdout, "hanging")
    lines_until(proc.stdout, "still working")
    lines_until(proc.stdout, "still working")  # the log keeps growing
    os.killpg(proc.pid, signal.SIGTERM)
    lines_until(proc.stdout, "SIGTERM ignored")
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_hang_quietly_writes_nothing_and_ends_on_term(repo: Repo, tmp_path: Path, groups: list[int]) -> None:
    log = tmp_path / "agent.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*AGENT, "--steps", "1", "--hang-quietly"],
            cwd=repo.worktree("api"),
            env=env(repo, "api"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    groups.append(proc.pid)
    deadline = time.monotonic() + 60
    while len(new_commits(repo, "api")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(new_commits(repo, "api")) == 2, "the step and its progress commit came first"
    time.sleep(0.5)
    assert proc.poll() is None and log.read_text() == ""
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM


def test_a_scenario_file_drives_each_stream_per_attempt(repo: Repo, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps({"api": [["--tempfail"], ["--steps", "1"]], "*": [["--steps", "0", "--exit", "1"]]}),
        encoding="utf-8",
    )
    first = agent(repo, "api", "--scenario", str(scenario), attempt=1)
    assert first.returncode == 75 and "rate limited" in first.stdout
    assert new_commits(repo, "api") == []
    second = agent(repo, "api", "--scenario", str(scenario), "--sleep", "0", attempt=2)
    assert second.returncode == 0, second
    assert [s for s in new_commits(repo, "api") if s.startswith("demo:")] == ["demo: step 1"]
    third = agent(repo, "api", "--scenario", str(scenario), attempt=3)  # the last entry repeats
    assert third.returncode == 0 and "step 1: committed src/api/demo_1.py" in third.stdout
    other = agent(repo, "docs", "--scenario", str(scenario))  # not named: "*"
    assert other.returncode == 1 and new_commits(repo, "docs") == []
