"""Wave reports (issue "The human in the loop", item 1): real ``streams run`` with the fake agent,
then ``coordinator.report`` on the run it left, judged through the files, the CLI and git.

Each misbehaving agent of the acceptance (exit 0 without commits, "completed 100%" without work,
uncommitted leftovers, a failing check) is flagged in the report and makes the wave not clean; a
clean wave is clean; the digest catches an edit; ``delivered`` carries the work forward.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from coordinator.report import (
    ReportDamagedError,
    WaveReport,
    delivered,
    load_wave_report,
    report_path,
    write_wave_report,
)
from streams.runstate import RunDir
from streams.workspace import discover, load_config
from tests.conftest import Repo, run_cli
from tests.test_run import FAST_RUN, run, setup


def report_of(repo: Repo, run_id: str, wave: int) -> WaveReport:
    """Write wave ``wave``'s report of run ``run_id`` as the runner will, and return it."""
    ws = discover(repo.root)
    rd = RunDir(ws, run_id)
    return write_wave_report(ws, load_config(ws, check_tracked=False), rd, rd.load(), wave)


def streams_of(report: WaveReport) -> dict[str, Any]:
    return {s.name: s for s in report.streams}


def cli_json(repo: Repo, *args: str, code: int = 0) -> Any:
    out = run_cli(["report", *args, "--json"], repo.root)
    assert out.code == code, out
    return json.loads(out.out.strip().splitlines()[-1])


def test_each_misbehaving_agent_is_flagged_and_the_wave_is_not_clean(tmp_path: Path) -> None:
    scenario = {
        "empty": [["--no-commit"]],
        "claims": [["--claim-done"]],
        "dirty": [["--leave-dirty"]],
        "good": [[]],
    }
    repo = setup(tmp_path, dict.fromkeys(scenario, ""), scenario)
    code, data, err = run(repo, "-j", "4")
    assert code == 1, err
    report = report_of(repo, data["run_id"], 1)
    s = streams_of(report)
    assert not report.clean
    # exit 0 without commits: failed, by git; its progress file still says what `start` wrote
    assert (s["empty"].status, s["empty"].klass) == ("failed", "evidence_mismatch")
    assert s["empty"].commits == 0 and s["empty"].claim.status == "pending"
    # "completed 100%" and nothing done
    assert (s["claims"].status, s["claims"].klass) == ("failed", "evidence_mismatch")
    assert (s["claims"].claim.status, s["claims"].claim.completion) == ("completed", 100)
    assert "claimed_done_no_commits" in s["claims"].flags and s["claims"].commits == 0
    # verified, but with leftovers
    assert s["dirty"].status == "verified" and "dirty_worktree" in s["dirty"].flags
    assert s["good"].status == "verified" and s["good"].flags == ()
    assert s["good"].commits == 1 and s["good"].claim.completion == 100
    assert [(f.path, f.insertions, f.deletions) for f in s["good"].files] == [("src/good/demo_1.py", 1, 0)]
    assert len(s["good"].attempts) == 1 and s["good"].wall_time > 0
    assert {g.stream for g in report.gaps} == {"empty", "claims"}
    assert all("no commit beyond the progress file" in g.why for g in report.gaps)
    assert report.totals == {"failed": 2, "verified": 2} and report.failures == 2
    assert "claimed done without doing anything" in s["claims"].log_tail and s["good"].log_tail == ""
    # the CLI shows the same report, flags spelled out and gaps listed
    text = run_cli(["report"], repo.root)
    assert text.code == 0, text
    assert "NOT CLEAN (2 not verified, 2 flagged)" in text.out
    assert "claimed done, but made no work commit" in text.out
    assert "left uncommitted changes in its worktree" in text.out
    assert "- empty (failed): evidence_mismatch:" in text.out
    envelope = cli_json(repo)
    assert envelope["data"]["clean"] is False and envelope["data"]["digest"] == report.digest


def test_a_failing_check_is_reported_with_its_counts_and_its_output(tmp_path: Path) -> None:
    check = "  check: 'echo \"3 passed, 2 failed\"; exit 1'\n"
    repo = setup(tmp_path, {"api": ""}, run=FAST_RUN + check)
    code, data, err = run(repo)
    assert code == 1, err
    report = report_of(repo, data["run_id"], 1)
    api = streams_of(report)["api"]
    assert not report.clean
    assert (api.status, api.klass) == ("failed", "check_failed") and api.commits == 1
    assert api.check.ran and api.check.passed is False
    assert (api.check.passed_count, api.check.failed_count) == (3, 2)
    assert "3 passed, 2 failed" in api.log_tail
    assert "FAILED (3 passed, 2 failed)" in run_cli(["report"], repo.root).out


def test_a_clean_wave_its_digest_and_what_it_delivers(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": "depends: [a]"}, run=FAST_RUN + "  check: 'echo \"4 passed\"'\n")
    code, data, err = run(repo)
    assert code == 0, err
    first = report_of(repo, data["run_id"], 1)
    assert first.clean and first.gaps == () and first.totals == {"verified": 1}
    a = streams_of(first)["a"]
    assert a.check.passed is True and a.check.passed_count == 4
    rd = RunDir(discover(repo.root), data["run_id"])
    assert load_wave_report(rd, 1) == first
    assert load_wave_report(rd, 2) is not None  # the runner wrote it when wave 2 settled
    # what wave 2's briefs carry forward: wave 1's report; wave 3's would carry both
    assert [d.stream for d in delivered(rd, rd.load(), 3)] == ["a", "b"]
    (got,) = delivered(rd, rd.load(), 2)
    assert (got.stream, got.wave, got.commits, got.files) == ("a", 1, 1, ("src/a/demo_1.py",))
    assert "verified on its branch" in got.note
    assert delivered(rd, rd.load(), 1) == ()
    # the CLI: the latest written wave by default; a wave with no report; a wave the run lacks
    assert cli_json(repo)["data"]["wave"] == 2
    (rd.path / "reports" / "wave-2.json").unlink()
    assert cli_json(repo)["data"]["wave"] == 1
    missing = run_cli(["report", "--wave", "2"], repo.root)
    assert missing.code == 1 and "no report of wave 2" in missing.err and len(missing.err.splitlines()) == 1
    for bad in ("3", "0", "two"):
        wrong = run_cli(["report", "--wave", bad], repo.root)
        assert wrong.code == 2 and "Traceback" not in wrong.err, wrong
    second = report_of(repo, data["run_id"], 2)
    assert second.clean and cli_json(repo)["data"]["wave"] == 2
    assert [d.stream for d in delivered(rd, rd.load(), 3)] == ["a", "b"]
    # an edited report is refused, naming the file
    path = report_path(rd, 1)
    doc = json.loads(path.read_text())
    doc["streams"][0]["commits"] = 7
    path.write_text(json.dumps(doc))
    with pytest.raises(ReportDamagedError, match=r"wave-1\.json"):
        load_wave_report(rd, 1)
    refused = run_cli(["report", "--wave", "1"], repo.root)
    assert refused.code == 1 and "wave-1.json" in refused.err and "digest" in refused.err
    with pytest.raises(ReportDamagedError):
        delivered(rd, rd.load(), 2)


def test_git_now_flags_a_failed_claim_placeholders_leftovers_and_a_base_gone_ahead(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": ""})
    code, data, err = run(repo)
    assert code == 0, err
    assert report_of(repo, data["run_id"], 1).clean
    wt = repo.worktree("api")
    repo.write("src/api/stub.py", "def handler():\n    raise NotImplementedError  # TODO\n", cwd=wt)
    repo.commit_all("api: a stub", cwd=wt)
    assert run_cli(["progress", "--status", "failed"], wt).code == 0  # committed: the claim at the tip
    progress_file = wt / ".streams" / "stream-api.md"
    progress_file.write_text(progress_file.read_text().replace("status: failed", "status: completed"))
    assert "status: completed" in progress_file.read_text()
    repo.write("src/api/scratch.txt", "not committed\n", cwd=wt)
    repo.write("README.md", "moved on\n")
    repo.commit_all("main moves")
    report = report_of(repo, data["run_id"], 1)
    api = streams_of(report)["api"]
    assert not report.clean
    assert api.claim.status == "failed"  # as committed, not as the worktree's copy says
    assert set(api.flags) == {"commits_but_claimed_failed", "placeholder_text", "dirty_worktree", "behind_base"}
    assert api.placeholders == ("src/api/stub.py: raise NotImplementedError  # TODO",)
    assert api.behind == 1 and api.commits == 2


def test_no_run_and_no_report_are_one_line_and_exit_1(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"api": ""})
    none = run_cli(["report"], repo.root)
    assert none.code == 1 and "no run" in none.err and len(none.err.splitlines()) == 1
    code, data, err = run(repo)
    assert code == 0, err
    shutil.rmtree(Path(data["run_dir"]) / "reports")  # the runner writes them; here they are gone
    unwritten = run_cli(["report"], repo.root)
    assert unwritten.code == 1 and "no wave report yet" in unwritten.err, unwritten
    other = run_cli(["report", "--run", "20990101-000000-ffff"], repo.root)
    assert other.code == 1 and "no run 20990101-000000-ffff" in other.err
