"""run, resume, pause, abort: the plan's waves of agents, supervised (``coordinator.runflow``)."""

from __future__ import annotations

import click

from coordinator import runctl, rundry, runflow
from coordinator.runner import RunOptions
from streams.cli.base import Reply, cli, info, json_option, table
from streams.cli.context import open_workspace
from streams.kernel.durations import parse_duration
from streams.kernel.errors import StreamsError, UsageError
from streams.runclass import RunStatus, StreamStatus
from streams.runconfig import MAX_POOL, Gate, parse_halt


def _duration(option: str, text: str | None, *, allow_zero: bool = False) -> float | None:
    return None if text is None else parse_duration(text, option=option, allow_zero=allow_zero)


@cli.command("run")
@click.argument("names", nargs=-1)
@click.option("-j", "--jobs", type=int, metavar="N", help=f"Agents at once, 1..{MAX_POOL} (default: run.max_parallel).")
@click.option("--timeout", metavar="D", help="Wall-clock limit per attempt, e.g. 45m (default: run.timeout).")
@click.option(
    "--stall-timeout",
    metavar="D",
    help="Stop an agent with no new commit, progress write or log output for this long (default: run.stall_timeout).",
)
@click.option("--grace", metavar="D", help="Between TERM and KILL of an agent's process group (default: run.grace).")
@click.option(
    "--retries",
    type=int,
    metavar="N",
    help="Retries per stream for exit 75, timeout, stall, crash (default: run.retries).",
)
@click.option(
    "--halt",
    metavar="P",
    help="never | soon | now, optionally ,fail=N or ,fail=P%: when the run stops starting agents (default: run.halt).",
)
@click.option(
    "--gate",
    type=click.Choice(["manual", "auto-if-clean", "none"]),
    help="Between waves: wait for `streams approve` (manual), approve clean waves by policy, or none (default: run.gate).",
)
@click.option("--no-merge", is_flag=True, help="Do not land waves: a dependent starts from its dependency's branch.")
@click.option("--dry-run", is_flag=True, help="Say what would run, wave by wave; start nothing.")
@click.option("--why", is_flag=True, help="With --dry-run: the reason for each stream.")
@click.option(
    "--detach",
    is_flag=True,
    help="Run in the background; `streams status` shows it, its log is in the run's directory.",
)
@json_option
def run_cmd(
    names: tuple[str, ...],
    jobs: int | None,
    timeout: str | None,
    stall_timeout: str | None,
    grace: str | None,
    retries: int | None,
    halt: str | None,
    gate: str | None,
    no_merge: bool,
    dry_run: bool,
    why: bool,
    detach: bool,
) -> Reply[runflow.RunResult] | Reply[rundry.DryRun] | Reply[rundry.Detached]:
    """Run each stream's agent, wave after wave, and judge each from git.

    The plan's waves (`streams plan`) run one after another. Before a wave, its worktrees are made
    one at a time from the base as it is then; each agent (`command:`) runs in its worktree in its
    own process group, with its brief in $STREAMS_BRIEF and its output in the run's log. At most -j
    run at once (and each named sub-pool's size). An agent's exit 0 is only a claim: its new
    commits must pass the scope check and show work, its worktree be clean, and `run.check` pass.
    Exit 75, timeouts, stalls and crashes are retried with backoff (a `fallback:` command retries
    a failure); exit 3 means it needs a human. A failed stream's dependents are skipped (unless
    `on_failure: isolated`); a critical one halts the run. Between waves the verified streams land
    on the base (`streams merge`). Ctrl-C stops the agents, saves their work, and exits 130.

    Exit: 0 every stream verified; 1 finished with failures; 3 another run is running; 4 a stream
    is blocked; 130 interrupted.
    """
    if jobs is not None and not 1 <= jobs <= MAX_POOL:
        raise UsageError(f"-j {jobs}: the pool holds 1 to {MAX_POOL} agents")
    if retries is not None and not 0 <= retries <= 20:
        raise UsageError(f"--retries {retries}: use 0 to 20")
    if why and not dry_run:
        raise UsageError("--why goes with --dry-run")
    if detach and dry_run:
        raise UsageError("--detach starts a run; --dry-run starts nothing: use one")
    opts = RunOptions(
        names=names,
        jobs=jobs,
        timeout=_duration("--timeout", timeout),
        stall_timeout=_duration("--stall-timeout", stall_timeout),
        grace=_duration("--grace", grace, allow_zero=True),
        retries=retries,
        halt=parse_halt(halt) if halt is not None else None,
        merge=False if no_merge else None,
        gate=Gate(gate) if gate is not None else None,
    )
    ws, config = open_workspace(names=names)
    if dry_run:
        return Reply(rundry.dry_run(ws, config, opts, why=why), rundry.dry_text)
    if detach:
        flags = [
            ("-j", jobs), ("--timeout", timeout), ("--stall-timeout", stall_timeout), ("--grace", grace),
            ("--retries", retries), ("--halt", halt), ("--gate", gate),
        ]  # fmt: skip
        argv = ["run", *names, *(x for f, v in flags if v is not None for x in (f, str(v)))]
        if no_merge:
            argv.append("--no-merge")
        return Reply(rundry.detach(ws, config, argv), rundry.detached_text)
    result = runflow.run(ws, config, opts, notify=info)
    return Reply(result, _text, _judge(result))


@cli.command("resume")
@click.option("-j", "--jobs", type=int, metavar="N", help=f"Agents at once, 1..{MAX_POOL} (default: the run's own -j).")
@json_option
def resume_cmd(jobs: int | None) -> Reply[runflow.RunResult]:
    """Go on with the latest run from where it stopped.

    A paused, interrupted or gated run, or one whose runner was killed: every unfinished stream is
    first checked against git and the processes (a live agent is adopted and supervised; a dead one
    with new commits goes to verification; one with none is re-queued, no retry spent; a rebase or
    merge in progress waits for a human; a missing worktree is made again from its branch), then the
    waves go on. Exit codes as `streams run`.
    """
    if jobs is not None and not 1 <= jobs <= MAX_POOL:
        raise UsageError(f"-j {jobs}: the pool holds 1 to {MAX_POOL} agents")
    ws, config = open_workspace()
    result = runflow.resume(ws, config, RunOptions(jobs=jobs), notify=info)
    return Reply(result, _text, _judge(result))


@cli.command("pause")
@click.option("--now", is_flag=True, help="Stop the running agents too (their work saved, no retry spent).")
@json_option
def pause_cmd(now: bool) -> Reply[runctl.Controlled]:
    """Pause the latest run: no new agent starts; running ones finish (--now: are stopped).

    The runner then writes its checkpoint (runs/<id>/checkpoint.md) and exits 4; `streams resume`
    goes on. With no runner alive (a run waiting at a gate, or interrupted), the run is marked
    paused at once.
    """
    ws, config = open_workspace()
    return Reply(runctl.pause(ws, config, now=now), _control_text)


@cli.command("abort")
@json_option
def abort_cmd() -> Reply[runctl.Controlled]:
    """Stop the latest run for good: every agent stopped (its work saved), the run marked aborted.

    Works from any state: running (its runner stops), paused, waiting at a gate, or with its runner
    gone (this command stops the agents itself).
    """
    ws, config = open_workspace()
    return Reply(runctl.abort(ws, config), _control_text)


def _control_text(c: runctl.Controlled) -> str:
    stopped = f"; stopped {', '.join(c.stopped)}" if c.stopped else ""
    return f"run {c.run_id}: {c.action} {'requested' if c.runner_alive else 'done'}{stopped}; {c.next}"


def _judge(result: runflow.RunResult) -> StreamsError | None:
    if result.status == RunStatus.COMPLETED:
        return None
    if result.status in (RunStatus.PAUSED, RunStatus.AWAITING_APPROVAL):
        return StreamsError(
            f"run {result.run_id} {result.status}; `streams resume` goes on"
            + (
                " once the wave is approved (`streams approve`)" if result.status == RunStatus.AWAITING_APPROVAL else ""
            ),
            code="run_stopped",
        )
    if result.status == RunStatus.ABORTED:
        return StreamsError(f"run {result.run_id} aborted", code="run_failed")
    if result.status == RunStatus.INTERRUPTED:
        return StreamsError(
            f"run {result.run_id} interrupted; run `streams run` again to go on", code="run_interrupted"
        )
    blocked = [s.name for s in result.streams if s.status == StreamStatus.BLOCKED]
    if blocked:
        return StreamsError(
            f"run {result.run_id}: {', '.join(blocked)} blocked, waiting for a human (see each one's progress file)",
            code="run_blocked",
        )
    bad = [s for s in result.streams if s.status not in (StreamStatus.VERIFIED, StreamStatus.LANDED)]
    listed = "; ".join(f"{s.name}: {s.failure or s.status}" for s in bad[:6]) + ("; …" if len(bad) > 6 else "")
    return StreamsError(f"run {result.run_id} finished with {len(bad)} not verified: {listed}", code="run_failed")


def _text(result: runflow.RunResult) -> str:
    rows = []
    for s in result.streams:
        detail = s.cause if s.status not in ("skipped",) or not s.blocked_by else f"blocked by {s.blocked_by}"
        rows.append((s.name, str(s.wave), s.status, s.failure or "-", str(s.attempts), str(s.commits), detail[:100]))
    head = f"run {result.run_id}: {result.status}" + (f" ({result.halt})" if result.halt else "")
    return "\n".join([head, table(rows, ("STREAM", "WAVE", "STATUS", "CLASS", "ATTEMPTS", "COMMITS", "DETAIL"))])
