"""``streams metrics [--run ID | --all] [--json] [--timeline] [--trace FILE]``: where a run's time
went (``coordinator/metrics.py`` computes and documents the figures; ``streams/cli/timeline.py``
draws them)."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from coordinator.metrics import Figures, RunMetrics, compute
from streams.cli.base import Reply, cli, json_option, wants_json
from streams.cli.context import workspace
from streams.cli.timeline import render, write_trace
from streams.kernel import events, paths
from streams.kernel.errors import StreamsError, UsageError, printable
from streams.runstate import NoRunError, RunDir, latest_run, read_joblog
from streams.workspace import Workspace, load_config


@dataclass(frozen=True)
class Metrics:
    """``streams metrics --json``: the runs measured.

    =====  ==================  ======================================================================
    field  type                meaning
    =====  ==================  ======================================================================
    runs   [RunMetrics]        one run (the latest, or --run ID), or every run with --all
    trace  str | null          the trace file written (--trace FILE), else null
    =====  ==================  ======================================================================
    """

    runs: tuple[RunMetrics, ...]
    trace: str | None = None


HELP = """Measure a run of `streams run`: throughput, success, parallel efficiency, waits.

\b
From runs/<id>/joblog.tsv, the run's state, its events and its approvals (no git):
  run time        an attempt's end - start; wall: the run's first start to its end
  busy wall       wall less human wait
  slots           min(pool, widest wave); pool: run.max_parallel (or the peak seen)
  throughput      verified streams and work commits per hour of busy wall
  first-attempt   streams verified by their first attempt / streams that ran
  eventual        streams verified by any attempt / streams that ran (a retried
                  stream counts once here, once per attempt in attempts)
  efficiency      sum of run time / (busy wall x slots)
  speed-up        sum of run time / busy wall (against the attempts one after another)
  barrier idle    per wave: idle slot-seconds from its first attempt's end to its last end
  critical path   sum over waves of the longest stream; ratio: critical path / busy wall
  human wait      gate waits (awaiting to the approval's time, else the resume) plus paused
                  time; share: human wait / wall
  rates           retries (attempts after a stream's first), timeouts, stalls, evidence
                  mismatches, scope violations, conflicts: each / attempts
  approval wait   of a verified attempt: its wave's gate wait; merge latency: its end to
                  its wave's landing

Per run, per wave and per sub-pool. --timeline draws the run as a Gantt chart (one row per
stream, attempts as bars of their outcome, waves, gates and merges marked; colour on a terminal,
plain off one or with NO_COLOR). --trace FILE writes Chrome trace-event JSON (one track per
stream; open it in Perfetto). The JSON fields are documented in coordinator/metrics.py.
Exits 1 when no run is recorded or --run names none.
"""


@cli.command("metrics", help=HELP)
@click.option("--run", "run_id", metavar="ID", help="The run (default: the latest).")
@click.option("--all", "every", is_flag=True, help="Every run recorded here, oldest first.")
@click.option("--timeline", is_flag=True, help="Draw the run as a Gantt chart in the terminal.")
@click.option("--trace", "trace_file", metavar="FILE", help="Write Chrome trace-event JSON (Perfetto) to FILE.")
@json_option
def metrics_cmd(run_id: str | None, every: bool, timeline: bool, trace_file: str | None) -> Reply[Metrics]:
    if every and (run_id is not None or timeline or trace_file):
        raise UsageError("--all measures every run; --run, --timeline and --trace take one")
    ws = workspace()
    ids = _all_ids(ws) if every else [_one_id(ws, run_id)]
    pool = _pool(ws)
    measured = tuple(measure(ws, rid, pool) for rid in ids)
    written = None
    if trace_file:
        target = Path(trace_file)
        if target.is_dir():
            raise UsageError(f"--trace {printable(trace_file)} is a directory; name a file")
        try:
            write_trace(measured[0], target)
        except OSError as exc:
            raise StreamsError(f"--trace {printable(trace_file)}: cannot write ({exc.strerror or exc})") from None
        written = str(target)
    data = Metrics(measured, written)
    if timeline and not wants_json():
        return Reply(data, _timeline_text)
    return Reply(data, metrics_text)


def _one_id(ws: Workspace, run_id: str | None) -> str:
    if run_id is not None and (not run_id or "/" in run_id or run_id.startswith(".")):
        raise UsageError(f"--run {printable(run_id)} is not a run id (e.g. 20261202-043444-4c74)")
    rid = run_id or latest_run(ws)
    if rid is None:
        raise NoRunError("no run of `streams run` is recorded here, so there is nothing to measure")
    if not RunDir(ws, rid).state_file.is_file():
        raise NoRunError(f"no run {printable(rid)} is recorded here (the latest is {latest_run(ws) or 'none'})")
    return rid


def _all_ids(ws: Workspace) -> list[str]:
    root = Path(paths.runs_dir(ws.common_dir))
    try:
        ids = sorted(p.name for p in root.iterdir() if (p / "state.json").is_file())
    except OSError:
        ids = []
    if not ids:
        raise NoRunError("no run of `streams run` is recorded here, so there is nothing to measure")
    return ids


def _pool(ws: Workspace) -> int:
    try:
        return load_config(ws, check_tracked=False).run.max_parallel
    except StreamsError:
        return 8


def measure(ws: Workspace, run_id: str, pool: int) -> RunMetrics:
    rd = RunDir(ws, run_id)
    record = rd.load()
    try:
        rows = read_joblog(rd.joblog)
    except OSError:
        rows = []
    return compute(rd, record, rows, events.read(ws.common_dir), pool=record.jobs or pool)  # the run's own -j


# --- text ----------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}s"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _figures_line(f: Figures) -> str:
    return (
        f"{_n(f.attempts, 'attempt')}, {_n(f.streams, 'stream')}, {f.verified} verified · success first "
        f"{_pct(f.first_attempt_success)} eventual {_pct(f.eventual_success)} · "
        f"{_x(f.verified_per_hour)} verified/h, {_x(f.commits_per_hour)} commits/h · retry "
        f"{_pct(f.retry_rate)} timeout {_pct(f.timeout_rate)} stall {_pct(f.stall_rate)} mismatch "
        f"{_pct(f.mismatch_rate)} scope {_pct(f.scope_violation_rate)} conflict {_pct(f.conflict_rate)}"
    )


def run_text(m: RunMetrics) -> str:
    lines = [
        f"run {m.run_id} ({m.status}): wall {_s(m.wall)}, busy {_s(m.busy_wall)}, "
        f"Σ run time {_s(m.figures.run_time)}, slots {m.slots} (pool {m.pool}, widest wave {m.widest_wave})",
        f"  parallel efficiency {_pct(m.parallel_efficiency)} · speed-up {_x(m.speedup)}x · critical path "
        f"{_s(m.critical_path)} (ratio {_x(m.critical_path_ratio)}) · barrier idle {_s(m.barrier_idle)}",
        f"  human wait {_s(m.human_wait)} ({_pct(m.human_wait_share)} of wall: gates {_s(m.gate_wait)}, "
        f"paused {_s(m.paused)})",
        f"  {_figures_line(m.figures)}",
    ]
    for w in m.waves:
        lines.append(
            f"  wave {w.wave} ({_n(len(w.streams), 'stream')}, {_n(w.slots, 'slot')}): efficiency {_pct(w.parallel_efficiency)}, "
            f"speed-up {_x(w.speedup)}x, barrier idle {_s(w.barrier_idle)}, longest {_s(w.critical)}, "
            f"gate wait {_s(w.gate_wait)}"
        )
        lines.append(f"    {_figures_line(w.figures)}")
    if len(m.pools) > 1 or (m.pools and m.pools[0].pool):
        for p in m.pools:
            lines.append(f"  pool {p.pool or '(run)'}: {_figures_line(p.figures)}")
    return "\n".join(lines)


def metrics_text(data: Metrics) -> str:
    text = "\n\n".join(run_text(m) for m in data.runs)
    return text + (f"\ntrace written to {data.trace} (open it in https://ui.perfetto.dev)" if data.trace else "")


def _timeline_text(data: Metrics) -> str:
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    width = shutil.get_terminal_size((100, 24)).columns
    return render(data.runs[0], width, color)
