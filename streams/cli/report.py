"""``streams report [--wave N] [--run ID]``: a wave's report, as written when the wave settled.

``--json``: the ``WaveReport`` (``coordinator/report.py`` documents its fields). The text is the
report's Markdown (``reports/wave-N.md``), rendered again from the JSON once its digest is checked.
"""

from __future__ import annotations

import click

from coordinator.report import WaveReport, load_wave_report, written_waves
from coordinator.reporttext import render_markdown
from streams.cli.base import Reply, cli, json_option
from streams.cli.context import workspace
from streams.kernel.errors import StreamsError, UsageError, printable
from streams.runstate import NoRunError, RunDir, latest_run


@cli.command("report")
@click.option("--wave", type=int, metavar="N", help="The wave (default: the latest with a report).")
@click.option("--run", "run_id", metavar="ID", help="The run (default: the latest).")
@json_option
def report_cmd(wave: int | None, run_id: str | None) -> Reply[WaveReport]:
    """Show a wave's report: per stream, the verdict from git beside the agent's claim.

    Written by `streams run` when a wave settles (runs/<id>/reports/wave-N.json and .md, with a
    digest): attempts and their classes, time, work commits, files changed with +/-, paths outside
    the stream's scope, conflicts predicted against the base, leases held, the evidence flags
    (claimed_done_no_commits, commits_but_claimed_failed, placeholder_text, dirty_worktree,
    behind_base), the check's result, the log's tail on failure; then the wave's gaps and totals.
    A report whose digest no longer matches is refused. Changes nothing.
    """
    ws = workspace()
    if run_id is not None and (not run_id or "/" in run_id or run_id.startswith(".")):
        raise UsageError(f"--run {printable(run_id)} is not a run id (e.g. 20261202-043444-4c74)")
    rid = run_id or latest_run(ws)
    if rid is None:
        raise NoRunError("no run of `streams run` is recorded here, so there is no report")
    rd = RunDir(ws, rid)
    if not rd.path.is_dir():
        raise NoRunError(f"no run {printable(rid)} is recorded here (the latest is {latest_run(ws) or 'none'})")
    number = wave if wave is not None else _latest_wave(rd)
    if number < 1:
        raise UsageError(f"--wave {number}: waves are numbered from 1")
    planned = _planned(rd)
    if planned is not None and number > planned:
        raise UsageError(f"--wave {number}: run {rid} has {planned} wave{'s' if planned != 1 else ''}")
    report = load_wave_report(rd, number)
    if report is None:
        raise StreamsError(f"run {rid} has no report of wave {number} (not written yet)", code="no_report")
    return Reply(report, render_markdown)


def _latest_wave(rd: RunDir) -> int:
    waves = written_waves(rd)
    if not waves:
        raise StreamsError(f"run {rd.run_id} has no wave report yet", code="no_report")
    return waves[-1]


def _planned(rd: RunDir) -> int | None:
    """How many waves the run has, from its state (None when it cannot be read)."""
    try:
        return len(rd.load().waves)
    except StreamsError:
        return None
