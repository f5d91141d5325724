"""The verdict on an attempt that exited 0 (coordinator.runverify), from real commits in a real
started stream's worktree, and the one check runner it shares with the merge queue."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from coordinator.check import parse_counts, run_check
from coordinator.runverify import NO_EVIDENCE, Verification, verify_attempt
from streams.kernel.paths import wip_ref
from streams.kernel.procs import pid_alive
from streams.runclass import EvidenceFlag, FailureClass
from streams.workspace import discover, load_config
from tests.conftest import Repo, disk_snapshot, run_cli
from tests.test_verify import sneak


@pytest.fixture
def started(repo: Repo) -> Repo:
    assert run_cli(["start"], repo.root).code == 0
    return repo


def judge(repo: Repo, since: str, *, check: str | None = None, timeout: float = 60.0, attempt: int = 1) -> Verification:
    ws = discover(repo.root)
    return verify_attempt(
        ws,
        load_config(ws),
        "api",
        repo.worktree("api"),
        since,
        check=check,
        check_log=repo.root.parent / "logs" / f"check-{attempt}.log",
        wip_ref=wip_ref("api", "run1", attempt),
        check_timeout=timeout,
    )


def all_gone(pids: list[int]) -> bool:
    """Whether every process of ``pids`` is dead, allowing the kernel a moment to deliver a SIGKILL
    already sent (a wait for a condition, not a timing assertion)."""
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def head(repo: Repo) -> str:
    return repo.git("rev-parse", "HEAD", cwd=repo.worktree("api")).strip()


def test_in_scope_work_is_verified_and_measured(started: Repo) -> None:
    wt, since = started.worktree("api"), head(started)
    started.write("src/api/app.py", "print('api v2')\nprint('more')\n", cwd=wt)
    started.commit_all("api: v2", cwd=wt)
    started.write("src/api/routes.py", "routes = []\n", cwd=wt)
    started.commit_all("api: routes", cwd=wt)
    assert run_cli(["progress", "--done", "v2 and routes"], wt).code == 0  # bookkeeping, not counted

    v = judge(started, since)

    assert v.verified and v.klass is None, v.cause
    assert (v.commits, v.work_commits) == (3, 2)
    assert (v.files, v.insertions, v.deletions) == (2, 3, 1)  # the progress file left out
    assert v.out_of_scope == () and v.flags == () and v.wip is None and v.check is None
    assert v.cause == "2 work commits, in scope"


def test_an_out_of_scope_commit_made_with_hooks_off_is_a_scope_violation(started: Repo) -> None:
    wt, since = started.worktree("api"), head(started)
    sneak(started, wt, {"src/api/app.py": "v2\n", "src/ui/main.ts": "hijacked\n"})

    v = judge(started, since)

    assert v.klass == FailureClass.SCOPE_VIOLATION
    assert v.out_of_scope == ("src/ui/main.ts",)
    assert "src/ui/main.ts" in v.cause and "outside stream api's scope" in v.cause


def test_exit_0_with_no_commit_is_an_evidence_mismatch(started: Repo) -> None:
    v = judge(started, head(started))
    assert v.klass == FailureClass.EVIDENCE_MISMATCH and v.cause == NO_EVIDENCE
    assert v.commits == 0 and v.work_commits == 0


def test_an_empty_commit_is_not_work(started: Repo) -> None:
    wt, since = started.worktree("api"), head(started)
    started.git("commit", "-q", "--allow-empty", "-m", "did things, honest", cwd=wt)
    v = judge(started, since)
    assert v.klass == FailureClass.EVIDENCE_MISMATCH and v.commits == 1 and v.work_commits == 0


def test_only_a_progress_commit_is_a_mismatch_unless_the_progress_says_why(started: Repo) -> None:
    wt, since = started.worktree("api"), head(started)
    assert run_cli(["progress", "--status", "completed", "--done", "all done"], wt).code == 0
    v = judge(started, since)
    assert v.klass == FailureClass.EVIDENCE_MISMATCH and v.cause == NO_EVIDENCE
    assert v.flags == (EvidenceFlag.CLAIMED_DONE_NO_COMMITS,) and v.commits == 1

    why = "No change needed: the API already returns 404 for unknown ids"
    assert run_cli(["progress", "--status", "completed", "--done", why], wt).code == 0
    v = judge(started, since, attempt=2)
    assert v.verified, v.cause
    assert v.no_change == "the API already returns 404 for unknown ids" and v.flags == ()
    assert "no change was needed" in v.cause


def test_a_reason_needs_status_completed_and_this_attempts_own_commit(started: Repo) -> None:
    wt = started.worktree("api")
    why = "No change needed: nothing to do"
    assert run_cli(["progress", "--status", "in_progress", "--done", why], wt).code == 0
    since = head(started)
    assert judge(started, since).klass == FailureClass.EVIDENCE_MISMATCH  # said by an earlier attempt
    assert run_cli(["progress", "--current", "thinking"], wt).code == 0  # still in_progress
    assert judge(started, since, attempt=2).klass == FailureClass.EVIDENCE_MISMATCH


def test_leftovers_are_snapshotted_and_flagged_and_the_worktree_is_untouched(started: Repo) -> None:
    wt, since = started.worktree("api"), head(started)
    started.write("src/api/app.py", "v2\n", cwd=wt)
    started.commit_all("api: v2", cwd=wt)
    started.write("src/api/app.py", "v3, not committed\n", cwd=wt)
    started.write("src/api/forgotten.py", "x = 1\n", cwd=wt)
    before = disk_snapshot(wt)

    v = judge(started, since)

    assert v.verified and v.flags == (EvidenceFlag.DIRTY_WORKTREE,)
    assert v.wip is not None and set(v.wip.files) == {"src/api/app.py", "src/api/forgotten.py"}
    assert started.git("rev-parse", v.wip.ref).strip() == v.wip.commit
    assert v.wip.ref == "refs/streams/wip/api/run1/1" and v.wip.ref in v.cause
    assert disk_snapshot(wt) == before  # files, index and HEAD as they were
    assert started.git("show", f"{v.wip.ref}:src/api/forgotten.py") == "x = 1\n"


def test_a_passing_check_is_parsed(started: Repo) -> None:
    wt, since = started.worktree("api"), head(started)
    started.write("src/api/app.py", "v2\n", cwd=wt)
    started.commit_all("api: v2", cwd=wt)
    v = judge(started, since, check='echo "== 12 passed in 0.31s =="; echo "in $STREAMS_STREAM" >&2')
    assert v.verified and v.check is not None
    assert (v.check.passed, v.check.exit_code, v.check.passed_count, v.check.failed_count) == (True, 0, 12, 0)
    assert "in api" in Path(v.check.log).read_text()  # stderr in the log too


def test_a_failing_check_is_check_failed_with_counts_and_tail(started: Repo) -> None:
    wt, since = started.worktree("api"), head(started)
    started.write("src/api/app.py", "v2\n", cwd=wt)
    started.commit_all("api: v2", cwd=wt)
    v = judge(
        started, since, check='echo "FAILED test_app.py::test_x"; echo "== 2 failed, 7 passed in 0.5s =="; exit 1'
    )
    assert v.klass == FailureClass.CHECK_FAILED and v.check is not None
    assert (v.check.passed, v.check.exit_code, v.check.passed_count, v.check.failed_count) == (False, 1, 7, 2)
    assert "FAILED test_app.py::test_x" in v.check.log_tail and "2 failed, 7 passed" in v.cause


def test_no_check_runs_when_the_verdict_is_already_a_failure(started: Repo, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    v = judge(started, head(started), check=f"touch {marker}")
    assert v.klass == FailureClass.EVIDENCE_MISMATCH and v.check is None and not marker.exists()


def test_a_check_timeout_kills_its_whole_process_group(started: Repo, tmp_path: Path) -> None:
    wt, since = started.worktree("api"), head(started)
    started.write("src/api/app.py", "v2\n", cwd=wt)
    started.commit_all("api: v2", cwd=wt)
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! >> {pids}; trap '' TERM; echo $$ >> {pids}; echo started; sleep 300; echo never"
    v = judge(started, since, check=script, timeout=1.0)
    assert v.klass == FailureClass.CHECK_FAILED and v.check is not None
    assert v.check.timed_out and v.check.exit_code is None and "timed out after 1s" in v.cause
    assert "started" in v.check.log_tail and "never" not in v.check.log_tail
    found = [int(p) for p in pids.read_text().split()]
    assert len(found) == 2 and all_gone(found)  # the shell ignored TERM: KILL got it


def test_run_check_leaves_no_stray_child_after_a_normal_exit(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    result = run_check(f"sleep 300 & echo $! > {pid_file}; echo 3 passed", tmp_path, tmp_path / "log")
    assert result.passed and result.passed_count == 3
    assert all_gone([int(pid_file.read_text())])


@pytest.mark.parametrize(
    ("output", "counts"),
    [
        ("===== 3 failed, 9 passed, 1 error in 0.52s =====", (9, 4)),
        ("collected 5 items\n...\n5 passed in 0.01s", (5, 0)),
        ("== 1 failed in 2s ==", (0, 1)),
        ("2 passed\nlater: 4 passed, 1 failed", (4, 1)),  # the last summary wins
        ("make: *** [all] Error 2", (None, None)),
        ("", (None, None)),
    ],
)
def test_parse_counts(output: str, counts: tuple[int | None, int | None]) -> None:
    assert parse_counts(textwrap.dedent(output)) == counts


def test_the_check_sees_no_git_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/nowhere")
    result = run_check('test -z "$GIT_DIR" && echo 1 passed', tmp_path, tmp_path / "log", env={"EXTRA": "1"})
    assert result.passed, result.log_tail
    assert os.environ["GIT_DIR"] == "/nowhere"


def test_a_worktree_left_off_its_branch_is_an_evidence_mismatch(started: Repo) -> None:
    wt, since = started.worktree("api"), head(started)
    started.write("src/api/app.py", "v2\n", cwd=wt)
    started.commit_all("api: v2", cwd=wt)
    started.git("checkout", "-q", "--detach", cwd=wt)
    v = judge(started, since)
    assert v.klass == FailureClass.EVIDENCE_MISMATCH and v.work_commits == 1
    assert v.cause == "exit 0 but the worktree is not on streams/api: HEAD is detached"
