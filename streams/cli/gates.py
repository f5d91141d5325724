"""approve, reject, request-changes: a human's decisions at a run's gates (``coordinator.decide``)."""

from __future__ import annotations

import os

import click

from coordinator import decide
from coordinator.gates import Verdict, who_now
from streams.cli.base import Reply, cli, json_option
from streams.cli.context import open_workspace


def _agent() -> bool:
    return decide.is_agent(os.environ.get("STREAMS_AGENT"))


def _decided_text(d: decide.Decided) -> str:
    dec = d.decision
    lines = [f"run {d.run_id}: wave {dec.wave} {dec.verdict} by {dec.who} at {dec.when}"]
    if dec.note:
        lines.append(f"note: {dec.note}")
    if d.stale:
        lines.append(f"the earlier decision was stale ({d.stale_why}); kept as {d.stale}")
    lines += [f"recorded in {d.file}", f"next: {d.next}"]
    return "\n".join(lines)


def _requested_text(r: decide.Requested) -> str:
    req = r.request
    return "\n".join(
        [
            f"run {r.run_id}: change request {req.n} for {req.stream} by {req.who} at {req.when}",
            f"note: {req.note}",
            f"recorded in {r.file}",
            f"next: {r.next}",
        ]
    )


@cli.command("approve")
@click.argument("wave", type=int, required=False)
@click.option("--note", default="", metavar="TEXT", help="Why, or what to keep in mind (kept with the decision).")
@json_option
def approve_cmd(wave: int | None, note: str) -> Reply[decide.Decided]:
    """Approve a wave at its gate: `streams resume` then lands it and goes on.

    WAVE defaults to the wave the latest run waits on. The decision is written once, with who you
    are, when, your note, and the plan, report and base hashes you saw; if the report, the plan or
    the base changes afterwards the gate opens again. Refused inside an agent (STREAMS_AGENT=1).

    Exit: 0 recorded; 1 refused (nothing waits, no report yet, already decided, inside an agent);
    2 no such wave.
    """
    decide.refuse_agent("approve", _agent())
    ws, config = open_workspace(check_tracked=False)
    who = who_now(ws.main_root)
    return Reply(decide.decide(ws, config, wave, Verdict.APPROVED, note, who, agent=_agent()), _decided_text)


@cli.command("reject")
@click.argument("wave", type=int)
@click.option("--note", required=True, metavar="TEXT", help="Why the wave is rejected (required).")
@json_option
def reject_cmd(wave: int, note: str) -> Reply[decide.Decided]:
    """Reject a wave at its gate: it does not land.

    The decision is written once, like an approval. `streams request-changes STREAM --note` then
    sends a stream of the wave back to its agent. Refused inside an agent (STREAMS_AGENT=1).

    Exit: 0 recorded; 1 refused (no report yet, already decided, inside an agent); 2 no such wave
    or no note.
    """
    decide.refuse_agent("reject", _agent())
    ws, config = open_workspace(check_tracked=False)
    who = who_now(ws.main_root)
    return Reply(decide.decide(ws, config, wave, Verdict.REJECTED, note, who, agent=_agent()), _decided_text)


@cli.command("request-changes")
@click.argument("stream")
@click.option("--note", required=True, metavar="TEXT", help="What to change: it goes into the stream's brief.")
@json_option
def request_changes_cmd(stream: str, note: str) -> Reply[decide.Requested]:
    """Send a stream of the latest run back to its agent with a note.

    The request is written once (create-only); `streams resume` runs the stream again as a
    continuation, every note given for it in its brief. Refused inside an agent (STREAMS_AGENT=1).

    Exit: 0 recorded; 1 refused (no run, not a stream of the run, inside an agent); 2 no note.
    """
    decide.refuse_agent("request-changes", _agent())
    ws, _ = open_workspace(check_tracked=False)
    who = who_now(ws.main_root)
    return Reply(decide.ask_changes(ws, stream, note, who, agent=_agent()), _requested_text)
