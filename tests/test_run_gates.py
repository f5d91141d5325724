"""Wave reports and approval gates inside ``streams run`` / ``streams resume`` (issue "The human in
the loop", items 1 and 2, end to end with the fake agent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Repo, run_streams
from tests.test_run import FAST_RUN, joblog, setup

MANUAL = FAST_RUN.replace("gate: none", "gate: manual").replace("merge: false", "merge: true")


def go(repo: Repo, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    out = run_streams([*args, "--json"], repo.root, env=env, timeout=240)
    lines = out.out.strip().splitlines()
    return out.code, json.loads(lines[-1])["data"] if lines else {}, out.err


def test_a_manual_gate_stops_each_wave_until_a_human_approves(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": "depends: [a]"}, run=MANUAL)
    code, data, err = go(repo, "run")
    assert code == 4 and data["status"] == "awaiting_approval", err
    status = run_streams(["status"], repo.root).out
    assert "awaiting_approval" in status.splitlines()[0]
    assert json.loads(run_streams(["status", "--json"], repo.root).out)["data"]["run"]["status"] == "awaiting_approval"
    assert "a" in run_streams(["report"], repo.root).out
    assert repo.git("log", "--format=%s", "-1", "main").strip() != "a: land stream a"  # nothing landed yet
    refused = run_streams(["approve", "1"], repo.root, env={"STREAMS_AGENT": "1"})
    assert refused.code == 1 and "an agent may not approve" in refused.err
    assert run_streams(["resume"], repo.root).code == 4  # still waiting: nobody approved
    assert run_streams(["approve", "1", "--note", "looks right"], repo.root).code == 0
    code, data, err = go(repo, "resume")
    assert code == 4 and data["status"] == "awaiting_approval", err  # wave 1 landed, wave 2 waits
    assert "land stream a" in repo.git("log", "--format=%s", "main")
    assert run_streams(["approve"], repo.root).code == 0  # the wave that waits: 2
    code, data, err = go(repo, "resume")
    assert code == 0 and data["status"] == "completed", err
    assert {s["status"] for s in data["streams"]} == {"landed"}
    rows = joblog(data)  # complete per DESIGN: the gate's wait and the landing's latency filled in
    assert all(float(r["approval_wait"]) > 0 and float(r["merge_latency"]) >= 0 for r in rows), rows


def test_auto_if_clean_approves_a_clean_wave_and_stops_a_flagged_one(tmp_path: Path) -> None:
    auto = MANUAL.replace("gate: manual", "gate: auto-if-clean")
    repo = setup(
        tmp_path, {"good": "", "dirty": "", "late": "depends: [good]"}, {"dirty": [["--leave-dirty"]]}, run=auto
    )
    code, data, err = go(repo, "run")
    assert code == 4 and data["status"] == "awaiting_approval", err  # dirty is verified but flagged
    wave = json.loads(run_streams(["report", "--json"], repo.root).out)["data"]
    assert wave["clean"] is False
    assert "dirty_worktree" in next(s for s in wave["streams"] if s["name"] == "dirty")["flags"]
    (tmp_path / "clean").mkdir()
    clean = setup(tmp_path / "clean", {"good": "", "late": "depends: [good]"}, run=auto)
    code, data, err = go(clean, "run")
    assert code == 0 and data["status"] == "completed", err
    decision = json.loads((Path(data["run_dir"]) / "approvals" / "wave-1.json").read_text())
    assert decision["by_policy"] is True and decision["verdict"] == "approved"


def test_request_changes_runs_exactly_one_stream_again_with_the_note_in_its_brief(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": ""}, run=MANUAL)
    code, data, err = go(repo, "run")
    assert code == 4, err
    assert run_streams(["approve", "1"], repo.root).code == 0
    asked = run_streams(["request-changes", "b", "--note", "return 404 for missing ids"], repo.root)
    assert asked.code == 0, asked.err
    code, data, err = go(repo, "resume")
    assert code == 4 and data["status"] == "awaiting_approval", err  # the re-run wave's new report waits
    rows = joblog(data)
    assert sorted(r["stream"] for r in rows) == ["a", "b", "b"]  # exactly b ran again
    brief = (Path(data["run_dir"]) / "briefs" / "b.md").read_text()
    assert "return 404 for missing ids" in brief
    stale = run_streams(["resume"], repo.root)
    assert stale.code == 4  # the approval of the old report no longer holds: the gate re-opened
    assert run_streams(["approve", "1"], repo.root).code == 0
    code, data, err = go(repo, "resume")
    assert code == 0 and data["status"] == "completed", err


def test_reject_halts_the_run_and_lands_nothing(tmp_path: Path) -> None:
    repo = setup(tmp_path, {"a": "", "b": "depends: [a]"}, run=MANUAL)
    assert go(repo, "run")[0] == 4
    base = repo.git("rev-parse", "main").strip()
    assert run_streams(["reject", "1", "--note", "wrong approach"], repo.root).code == 0
    code, data, err = go(repo, "resume")
    assert code == 1 and data["status"] == "halted" and "rejected" in data["halt"], err
    assert repo.git("rev-parse", "main").strip() == base


@pytest.mark.parametrize(
    ("options", "check", "expect"),
    [
        (["--no-commit"], None, "evidence_mismatch"),
        (["--claim-done"], None, "claimed_done_no_commits"),
        (["--leave-dirty"], None, "dirty_worktree"),
        ([], 'test "$(basename "$PWD")" != api', "check_failed"),
    ],
)
def test_each_kind_of_bad_evidence_is_in_the_report_and_blocks_auto_if_clean(
    tmp_path: Path, options: list[str], check: str | None, expect: str
) -> None:
    auto = MANUAL.replace("gate: manual", "gate: auto-if-clean") + (f"  check: '{check}'\n" if check else "")
    repo = setup(tmp_path, {"api": "", "ui": ""}, {"api": [options]}, run=auto)
    code, data, err = go(repo, "run")
    assert code == 4 and data["status"] == "awaiting_approval", err
    wave = json.loads(run_streams(["report", "--json"], repo.root).out)["data"]
    api = next(s for s in wave["streams"] if s["name"] == "api")
    assert wave["clean"] is False
    assert expect in (*api["flags"], api["klass"]), api
    assert not (Path(data["run_dir"]) / "approvals" / "wave-1.json").exists()  # no approval by policy
