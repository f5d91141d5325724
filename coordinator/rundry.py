"""``streams run --dry-run [--why]`` (what would run, wave by wave) and ``--detach`` (the runner
in the background)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from coordinator import plan as planning
from coordinator.runner import RunOptions
from streams import git, runstate
from streams.config import Config
from streams.kernel import paths
from streams.kernel.errors import StreamsError
from streams.kernel.paths import CONFIG_FILE
from streams.runstate import latest_run
from streams.workspace import Workspace


@dataclass(frozen=True)
class DryStream:
    """One stream of ``streams run --dry-run --json``'s waves.

    ======  ======  ===========================================================================
    field   type    meaning
    ======  ======  ===========================================================================
    name    str     the stream
    action  str     run | skip (no command, or already verified for the same inputs)
    why     str     the reason (with --why; "" without)
    ======  ======  ===========================================================================
    """

    name: str
    action: str
    why: str


@dataclass(frozen=True)
class DryWave:
    """One wave of ``streams run --dry-run --json``.

    =======  ===========  =====================================================================
    field    type         meaning
    =======  ===========  =====================================================================
    number   int          1-based
    mode     str          parallel | sequential
    streams  [DryStream]  in dispatch order
    =======  ===========  =====================================================================
    """

    number: int
    mode: str
    streams: tuple[DryStream, ...]


@dataclass(frozen=True)
class DryRun:
    """``streams run --dry-run --json``'s ``data``: nothing is started.

    =======  =========  ========================================================================
    field    type       meaning
    =======  =========  ========================================================================
    task_id  str        the plan's id (``streams plan``)
    jobs     int        the pool (-j)
    merge    bool       waves land on the base between waves
    waves    [DryWave]  what each wave would run
    =======  =========  ========================================================================
    """

    task_id: str
    jobs: int
    merge: bool
    waves: tuple[DryWave, ...]


def dry_run(ws: Workspace, cfg: Config, opts: RunOptions, *, why: bool) -> DryRun:
    merge = opts.merge if opts.merge is not None else cfg.run.merge
    plan = planning.build_plan(cfg, opts.names, merge=merge)
    tips = git.resolve_many(ws.main_root, [cfg.branch_ref(n) for w in plan.waves for n in w.streams])
    planned = {s.name for s in plan.steps}
    base_key = git.tree_key(ws.main_root, cfg.base_ref(), leaving_out=[CONFIG_FILE])
    earlier = runstate.earlier_outcomes(ws)
    waves = []
    for w in plan.waves:
        items = []
        for n in w.streams:
            st = cfg.stream(n)
            if not st.command:
                items.append(DryStream(n, "skip", "no `command:` in streams.yaml" if why else ""))
                continue
            reason = ""
            tip = tips.get(cfg.branch_ref(n))
            before = earlier.get(n)
            same = runstate.fingerprint(st.task, st.command, st.owns, base_key)
            if before is not None and before.fingerprint == same and tip == before.tip:
                why_not = f"already verified by run {before.run_id} for the same inputs (task, command, owns, base)"
                items.append(DryStream(n, "skip", why_not if why else ""))
                continue
            if why:
                where = f"continues on {cfg.branch(n)} ({tip[:12]})" if tip else f"a new branch from {cfg.base}"
                deps = [d for d in st.depends if d in planned]
                after = f"; after {', '.join(deps)}" if deps else ""
                reason = f"would run `{st.command}`: {where}{after}"
            items.append(DryStream(n, "run", reason))
        waves.append(DryWave(w.number, w.mode, tuple(items)))
    jobs = opts.jobs if opts.jobs is not None else cfg.run.max_parallel
    return DryRun(plan.task_id, jobs, merge, tuple(waves))


def dry_text(d: DryRun) -> str:
    lines = [f"dry run of {d.task_id}: -j {d.jobs}, {'landing each wave' if d.merge else 'no landing (--no-merge)'}"]
    for w in d.waves:
        lines.append(f"wave {w.number} ({w.mode}):")
        for s in w.streams:
            lines.append(f"  {s.action:<4} {s.name}" + (f"  {s.why}" if s.why else ""))
    return "\n".join(lines)


@dataclass(frozen=True)
class Detached:
    """``streams run --detach --json``'s ``data``.

    ======  ==========  =========================================================================
    field   type        meaning
    ======  ==========  =========================================================================
    pid     int         the runner's process (in its own session)
    run_id  str | null  its run, once it has started (null if it had not within 10 s)
    log     str         the runner's own output
    ======  ==========  =========================================================================
    """

    pid: int
    run_id: str | None
    log: str


def detach(ws: Workspace, cfg: Config, argv: list[str]) -> Detached:
    """Start ``streams ARGV`` (a ``streams run`` without ``--detach``) in a new session, its output
    to a log in the runs directory; wait up to 10 s for its run to start, and fail with the
    runner's own words if it ends first (another run holds the lease, a bad config)."""
    args = argv
    before = latest_run(ws)
    log = Path(paths.runs_dir(ws.common_dir)) / f"detached-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams", *args],
            cwd=os.getcwd(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run_id = None
    deadline = time.time() + 10
    while time.time() < deadline and proc.poll() is None:
        now = latest_run(ws)
        if now and now != before:
            run_id = now
            break
        time.sleep(0.05)
    if run_id is None and proc.poll() is not None and proc.returncode != 0:
        said = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        raise StreamsError(
            f"the detached runner exited {proc.returncode}: {said[-1] if said else 'no output'} (log: {log})",
            code="busy" if proc.returncode == 3 else "error",
        )
    return Detached(proc.pid, run_id, str(log))


def detached_text(d: Detached) -> str:
    which = f"run {d.run_id}" if d.run_id else "the runner"
    return f"{which} started in the background (pid {d.pid}); `streams status` shows it; its output: {d.log}"
