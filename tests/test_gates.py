"""Approval gates and change requests (issue 14 item 2; DESIGN "Coordination": approval gates).

Real repositories, real git, the CLI in-process (``run_cli``) and, for the race, as real processes.
A run is laid out on disk as ``streams run`` leaves it at a gate (``RunDir.create``, a ``state.json``
awaiting approval, a wave report with a digest), so each test decides on a gate it controls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator import gates
from coordinator.gates import GateState, Verdict
from coordinator.wavereport import digest_of
from streams.kernel import events
from streams.runclass import RunStatus
from streams.runconfig import Gate
from streams.runstate import RunDir, RunRecord, StreamRecord
from streams.workspace import discover
from tests.conftest import Outcome, Repo, disk_snapshot, make_repo, run_cli

WAVES = [["api", "docs"], ["ui"]]
PLAN_DIGEST = "p" * 64


def report_data(wave: int, tag: str) -> dict[str, object]:
    """A wave report as the gate reads it: its digest is that of its content, as the runner writes it."""
    data: dict[str, object] = {"wave": wave, "streams": [], "tag": tag}
    return {**data, "digest": digest_of(data)}


R1 = str(report_data(1, "r1")["digest"])  # the digest of make_run's report of wave 1


@pytest.fixture(autouse=True)
def human(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are a human at the gate, even when the suite itself runs inside an agent."""
    monkeypatch.delenv("STREAMS_AGENT", raising=False)


def lay_run(
    repo: Repo,
    waves: list[list[str]] | None = None,
    *,
    status: RunStatus = RunStatus.AWAITING_APPROVAL,
    wave: int = 1,
    reports: tuple[int, ...] = (1,),
    run_id: str = "20260101-000000-abcd",
) -> RunDir:
    """A run as the runner leaves it waiting at wave ``wave``'s gate, with reports of ``reports``."""
    waves = waves or WAVES
    rd = RunDir(discover(repo.root), run_id)
    rd.create({"base": "main", "merge": True, "waves": waves}, PLAN_DIGEST)
    record = RunRecord(run_id, PLAN_DIGEST, [n for w in waves for n in w], waves, status=status, wave=wave)
    for i, w in enumerate(waves, 1):
        for n in w:
            record.streams[n] = StreamRecord(n, i)
    rd.save(record)
    for number in reports:
        write_report(rd, number, f"r{number}")
    return rd


def write_report(rd: RunDir, wave: int, tag: str) -> str:
    path = rd.path / "reports" / f"wave-{wave}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = report_data(wave, tag)
    path.write_text(json.dumps(data))
    return str(data["digest"])


def tip(repo: Repo) -> str:
    return repo.git("rev-parse", "main").strip()


def approvals(rd: RunDir) -> list[str]:
    d = rd.path / "approvals"
    return sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) if d.is_dir() else []


def kinds(repo: Repo) -> list[str]:
    return [e["event"] for e in events.read(repo.root / ".git") if e["event"].startswith("gate.")]


def one_line(r: Outcome, code: int, needle: str) -> None:
    """One line on stderr naming ``needle``, exit ``code``, never a traceback."""
    assert r.code == code, r
    assert r.err.count("\n") == 1 and r.err.startswith("streams: error: ") and "Traceback" not in r.err, r
    assert needle in r.err, r


@pytest.fixture
def at_gate(tmp_path: Path) -> Iterator[tuple[Repo, RunDir]]:
    repo = make_repo(tmp_path)
    yield repo, lay_run(repo)


# --- approve: create-only ---------------------------------------------------------------------------------


def test_approve_records_who_when_and_the_hashes_it_saw(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    r = run_cli(["approve", "--note", "looks right"], repo.root)  # WAVE: the one the run waits on
    assert r.code == 0, r
    assert "wave 1 approved" in r.out and "`streams resume` lands wave 1 and starts wave 2" in r.out
    d = gates.decision_of(rd, 1)
    assert d is not None and d.verdict is Verdict.APPROVED and not d.by_policy
    assert (d.note, d.plan_digest, d.report_digest, d.base) == ("looks right", PLAN_DIGEST, R1, tip(repo))
    assert d.who.git_user == "Test Author <author@example.com>" and d.who.host and d.who.os_user
    assert d.when.endswith("Z")
    assert kinds(repo) == ["gate.approve"]
    result = gates.gate(rd, 1, Gate.MANUAL, PLAN_DIGEST, R1, tip(repo), clean=False, has_blocked_or_critical=True)
    assert result.state is GateState.APPROVED and result.decision == d


def test_a_second_approval_is_refused_and_writes_nothing(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    assert run_cli(["approve", "1"], repo.root).code == 0
    before = disk_snapshot(repo.root.parent)
    for args in (["approve", "1"], ["reject", "1", "--note", "changed my mind"]):
        one_line(run_cli(args, repo.root), 1, "wave 1 was already approved by Test Author")
    assert disk_snapshot(repo.root.parent) == before
    assert approvals(rd) == ["wave-1.json"]


RACE = """
import sys
from streams.cli.base import run_main
sys.stdin.readline()  # the starting gun: both processes are loaded and waiting
sys.exit(run_main(["approve", sys.argv[1], "--note", sys.argv[2]]))
"""


def test_concurrent_approvers_in_two_processes_exactly_one_wins(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    waves = [[n] for n in ("api", "docs", "ui")]
    rd = lay_run(repo, waves, reports=(1, 2, 3))
    for wave in (1, 2, 3):
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RACE, str(wave), f"approver {i}"],
                cwd=repo.root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in (1, 2)
        ]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        codes = sorted(p.wait(timeout=60) for p in procs)
        errs = [p.stderr.read() for p in procs if p.stderr is not None]
        assert codes == [0, 1], (codes, errs)
        assert sum("already approved" in e for e in errs) == 1, errs
        d = gates.decision_of(rd, wave)
        assert d is not None and d.note in ("approver 1", "approver 2")
    assert approvals(rd) == ["wave-1.json", "wave-2.json", "wave-3.json"]
    assert kinds(repo) == ["gate.approve"] * 3


# --- stale decisions ----------------------------------------------------------------------------------------


def test_a_report_changed_after_approval_reopens_the_gate(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    assert run_cli(["approve", "1", "--note", "first look"], repo.root).code == 0
    changed = write_report(rd, 1, "changed")
    result = gates.gate(rd, 1, Gate.MANUAL, PLAN_DIGEST, changed, tip(repo), True, False)
    assert result.state is GateState.AWAITING and result.decision is None
    assert "the report changed" in result.why
    r = run_cli(["approve", "1", "--note", "second look", "--json"], repo.root)
    assert r.code == 0, r
    data = json.loads(r.out)["data"]
    assert data["stale"] and "report changed" in data["stale_why"]
    names = approvals(rd)
    assert len(names) == 2 and names[0] == "wave-1.json" and names[1].startswith("wave-1.stale-")
    old = json.loads((rd.path / "approvals" / names[1]).read_text())
    assert old["note"] == "first look" and old["report_digest"] == R1  # the old one kept as it was
    d = gates.decision_of(rd, 1)
    assert d is not None and d.note == "second look" and d.report_digest == changed
    assert kinds(repo) == ["gate.approve", "gate.reopen", "gate.approve"]
    current = gates.gate(rd, 1, Gate.MANUAL, PLAN_DIGEST, changed, tip(repo), True, False)
    assert current.state is GateState.APPROVED


def test_a_base_that_moved_makes_the_decision_stale(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    assert run_cli(["approve", "1"], repo.root).code == 0
    before = tip(repo)
    repo.write("README.md", "moved\n")
    repo.commit_all("the base moves")
    d = gates.decision_of(rd, 1)
    assert d is not None and gates.is_current(d, PLAN_DIGEST, R1, before)
    assert not gates.is_current(d, PLAN_DIGEST, R1, tip(repo))
    result = gates.gate(rd, 1, Gate.MANUAL, PLAN_DIGEST, R1, tip(repo), True, False)
    assert result.state is GateState.AWAITING and "the base changed" in result.why


# --- policies ---------------------------------------------------------------------------------------------


def test_policy_none_opens_and_manual_awaits(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    assert gates.gate(rd, 1, Gate.NONE, PLAN_DIGEST, R1, tip(repo), False, True).state is GateState.OPEN
    manual = gates.gate(rd, 1, Gate.MANUAL, PLAN_DIGEST, R1, tip(repo), True, False)
    assert manual.state is GateState.AWAITING and "streams approve 1" in manual.why
    assert approvals(rd) == []


def test_auto_if_clean_records_a_policy_decision(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    result = gates.gate(rd, 1, Gate.AUTO_IF_CLEAN, PLAN_DIGEST, R1, tip(repo), True, False)
    assert result.state is GateState.APPROVED and result.decision is not None
    d = gates.decision_of(rd, 1)
    assert d == result.decision and d.by_policy and d.who.git_user == "streams run"
    assert (d.plan_digest, d.report_digest, d.base) == (PLAN_DIGEST, R1, tip(repo))
    again = gates.gate(rd, 1, Gate.AUTO_IF_CLEAN, PLAN_DIGEST, R1, tip(repo), True, False)
    assert again.state is GateState.APPROVED and again.decision == d  # read back, not written twice
    assert approvals(rd) == ["wave-1.json"] and kinds(repo) == ["gate.approve"]
    r = run_cli(["approve", "1"], repo.root)
    one_line(r, 1, "(by policy)")


def test_auto_if_clean_waits_for_a_wave_that_is_not_clean(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    result = gates.gate(rd, 1, Gate.AUTO_IF_CLEAN, PLAN_DIGEST, R1, tip(repo), False, False)
    assert result.state is GateState.AWAITING and "not clean" in result.why
    assert approvals(rd) == [] and kinds(repo) == []
    assert run_cli(["approve", "1"], repo.root).code == 0  # a human may approve it
    human = gates.gate(rd, 1, Gate.AUTO_IF_CLEAN, PLAN_DIGEST, R1, tip(repo), False, False)
    assert human.state is GateState.APPROVED and human.decision is not None and not human.decision.by_policy


def test_a_blocked_or_critical_stream_is_never_approved_by_policy(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    for clean in (True, False):
        result = gates.gate(rd, 1, Gate.AUTO_IF_CLEAN, PLAN_DIGEST, R1, tip(repo), clean, True)
        assert result.state is GateState.AWAITING and "blocked or critical" in result.why
    assert approvals(rd) == [] and kinds(repo) == []


# --- reject -------------------------------------------------------------------------------------------------


def test_reject_needs_a_note(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    before = disk_snapshot(repo.root.parent)
    one_line(run_cli(["reject", "1"], repo.root), 2, "--note")
    one_line(run_cli(["reject", "1", "--note", "  "], repo.root), 2, "reject needs a note")
    assert disk_snapshot(repo.root.parent) == before
    r = run_cli(["reject", "1", "--note", "the API breaks the UI"], repo.root)
    assert r.code == 0 and "wave 1 rejected" in r.out and "will not land" in r.out, r
    result = gates.gate(rd, 1, Gate.AUTO_IF_CLEAN, PLAN_DIGEST, R1, tip(repo), True, False)
    assert result.state is GateState.REJECTED and result.decision is not None
    assert result.decision.note == "the API breaks the UI" and kinds(repo) == ["gate.reject"]


# --- change requests ------------------------------------------------------------------------------------------


def test_request_changes_writes_a_request_the_brief_gets(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    r = run_cli(["request-changes", "api", "--note", "return 404, not 500"], repo.root)
    assert r.code == 0 and "runs api (wave 1) again" in r.out, r
    assert run_cli(["request-changes", "api", "--note", "and log it"], repo.root).code == 0
    assert run_cli(["request-changes", "docs", "--note", "mention 404"], repo.root).code == 0
    pending = gates.pending_requests(rd)
    assert [(p.stream, p.n, p.note) for p in pending] == [
        ("api", 1, "return 404, not 500"),
        ("api", 2, "and log it"),
        ("docs", 1, "mention 404"),
    ]
    assert pending[0].who.git_user == "Test Author <author@example.com>" and not pending[0].taken
    taken = gates.consume(rd, pending[0])
    assert taken.taken and gates.consume(rd, pending[0]).taken  # twice is harmless
    assert [(p.stream, p.n) for p in gates.pending_requests(rd)] == [("api", 2), ("docs", 1)]
    assert gates.notes_for(rd, "api") == ("return 404, not 500", "and log it")  # taken ones still in the brief
    assert sorted(p.name for p in (rd.path / "requests").glob("*.json")) == [
        "api-1.taken.json",
        "api-2.json",
        "docs-1.json",
    ]
    assert run_cli(["request-changes", "api", "--note", "third"], repo.root).code == 0
    assert gates.notes_for(rd, "api")[-1] == "third" and gates.pending_requests(rd)[1].n == 3
    assert kinds(repo) == ["gate.request_changes"] * 4


# --- inside an agent, and bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["approve"], "approve is a human's decision; an agent may not approve"),
        (["approve", "1", "--note", "ok"], "approve is a human's decision; an agent may not approve"),
        (["reject", "1", "--note", "no"], "reject is a human's decision; an agent may not reject"),
        (["request-changes", "api", "--note", "x"], "request-changes is a human's decision; an agent may not"),
    ],
)
def test_inside_an_agent_nothing_is_decided(
    at_gate: tuple[Repo, RunDir], monkeypatch: pytest.MonkeyPatch, args: list[str], line: str
) -> None:
    repo, rd = at_gate
    monkeypatch.setenv("STREAMS_AGENT", "1")
    before = disk_snapshot(repo.root.parent)
    r = run_cli(args, repo.root)
    one_line(r, 1, line)
    assert disk_snapshot(repo.root.parent) == before and approvals(rd) == [] and kinds(repo) == []
    j = run_cli([*args, "--json"], repo.root)
    assert json.loads(j.out)["error"]["code"] == "agent_refused"


def test_inside_an_agent_as_a_real_process(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    proc = subprocess.run(
        [sys.executable, "-m", "streams", "approve", "1"],
        cwd=repo.root,
        env={**os.environ, "STREAMS_AGENT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and proc.stderr == (
        "streams: error: approve is a human's decision; an agent may not approve\n"
    )
    assert approvals(rd) == []


def test_no_run_is_one_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    before = disk_snapshot(tmp_path)
    for args in (
        ["approve"],
        ["approve", "1"],
        ["reject", "1", "--note", "x"],
        ["request-changes", "api", "--note", "x"],
    ):
        one_line(run_cli(args, repo.root), 1, "no run of `streams run` is recorded")
    assert disk_snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["approve", "0"], 2, "wave 0 is not one of them"),
        (["approve", "99"], 2, "wave 99 is not one of them"),
        (["reject", "99", "--note", "x"], 2, "has 2 waves"),
        (["approve", "2"], 1, "no report of wave 2 yet"),
        (["reject", "2", "--note", "x"], 1, "no report of wave 2 yet"),
        (["approve", "nope"], 2, "not a valid integer"),
        (["request-changes", "nope", "--note", "x"], 1, "nope is not a stream of run"),
        (["request-changes", "api", "--note", ""], 2, "request-changes needs a note"),
        (["request-changes", "api"], 2, "--note"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    at_gate: tuple[Repo, RunDir], args: list[str], code: int, needle: str
) -> None:
    repo, _ = at_gate
    before = disk_snapshot(repo.root.parent)
    one_line(run_cli(args, repo.root), code, needle)
    assert disk_snapshot(repo.root.parent) == before and kinds(repo) == []


def test_approve_without_a_wave_when_nothing_awaits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    rd = lay_run(repo, status=RunStatus.RUNNING, wave=2)
    before = disk_snapshot(tmp_path)
    one_line(run_cli(["approve"], repo.root), 1, "is running: no wave waits at a gate")
    assert disk_snapshot(tmp_path) == before
    assert run_cli(["approve", "1"], repo.root).code == 0  # a named wave with a report may be decided
    assert approvals(rd) == ["wave-1.json"]


def test_the_last_wave_approved_finishes_the_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    lay_run(repo, wave=2, reports=(1, 2))
    r = run_cli(["approve"], repo.root)
    assert r.code == 0 and "`streams resume` lands wave 2 and finishes the run" in r.out, r


def test_a_damaged_decision_file_is_one_line(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    path = gates.decision_file(rd, 1)
    path.parent.mkdir(parents=True)
    path.write_text('{"wave": "one"}')
    one_line(run_cli(["approve", "1"], repo.root), 1, "not a decision")
    assert path.read_text() == '{"wave": "one"}'


def test_a_report_changed_by_hand_is_not_approved(at_gate: tuple[Repo, RunDir]) -> None:
    repo, rd = at_gate
    path = rd.path / "reports" / "wave-1.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "streams": [{"name": "a", "verdict": "verified"}]}))  # digest kept
    r = run_cli(["approve", "1", "--note", "looks right"], repo.root)
    assert r.code != 0 and "changed after it was written" in r.err, r
    assert approvals(rd) == []
