"""plan: the streams as waves, in the PARALLEL EXECUTION PLAN format (``coordinator.plan``).

``plan_text`` is the one renderer of a plan; ``streams run --dry-run`` may print it too.
"""

from __future__ import annotations

import click

from coordinator.plan import Plan, WaveMode, build_plan
from streams.cli.base import Reply, cli, json_option
from streams.cli.context import open_workspace
from streams.kernel.durations import format_duration


@cli.command("plan")
@click.argument("names", nargs=-1)
@click.option(
    "--no-merge",
    is_flag=True,
    help="Plan for `streams run --no-merge`: nothing lands between waves, so a dependent stream starts "
    "from its dependency's branch instead of the base.",
)
@json_option
def plan_cmd(names: tuple[str, ...], no_merge: bool) -> Reply[Plan]:
    """Show the waves `streams run` would follow: which streams run side by side, and why.

    A stream's wave comes after every wave holding one of its dependencies (its level: the longest
    dependency chain below it). A stream with `parallel: false` gets a wave of its own; of two
    streams in one wave that `touches` the same shared file, the later one moves to the next wave,
    its dependents with it. Within a wave, higher `priority` first, then the longest expected
    (`timeout`, else run.timeout). With NAME… only those streams are planned; their dependencies
    outside the selection are listed as external and taken as done. Changes nothing.
    """
    _ws, config = open_workspace(names=names)
    merge = config.run.merge and not no_merge
    return Reply(build_plan(config, names, merge=merge), plan_text)


def _percent(plan: Plan) -> str:
    return f"{round(plan.parallelism)}% ({plan.parallel_steps} of {plan.total_steps} step{'s' if plan.total_steps != 1 else ''} run in parallel)"


def plan_text(plan: Plan) -> str:
    """The plan as the MAKER seed's PARALLEL EXECUTION PLAN, plus the critical path."""
    lines = [
        "PARALLEL EXECUTION PLAN",
        "",
        f"TASK ID {plan.task_id}",
        f"BASE {plan.base}" + ("" if plan.merge else "  (no merge: dependents start from their dependency's branch)"),
        f"TOTAL STEPS {plan.total_steps}",
        f"TOTAL WAVES {plan.total_waves}",
        f"PARALLELISM {_percent(plan)}",
    ]
    if plan.steps and plan.parallel_steps == 0:
        lines.append("All waves are sequential")
    if plan.selected:
        lines.append(f"SELECTED {', '.join(plan.selected)}")
    if plan.external:
        lines.append(f"EXTERNAL {', '.join(plan.external)}  (outside the selection: not planned, taken as done)")
    if not plan.steps:
        return "\n".join([*lines, "", "No streams to plan: add some under `streams:` in streams.yaml."])
    lines += ["", *_waves_text(plan), "", "DEPENDENCY GRAPH"]
    for edge in plan.graph:
        mark = " (external)" if edge.external else ""
        lines.append(f"  [{edge.stream}]{mark} -> " + ", ".join(f"[{d}]" for d in edge.dependents))
    if not plan.graph:
        lines.append("  (no dependencies)")
    expected = sum(plan.step(n).expected for n in plan.critical_path)
    n = len(plan.critical_path)
    lines += [
        "",
        "CRITICAL PATH",
        f"  {' -> '.join(plan.critical_path)}  ({n} step{'s' if n != 1 else ''}, up to {format_duration(expected)})",
    ]
    if plan.notes:
        lines += ["", "NOTES", *(f"  - {note}" for note in plan.notes)]
    lines += ["", "ORCHESTRATOR INSTRUCTIONS", *_instructions(plan)]
    return "\n".join(lines)


def _waves_text(plan: Plan) -> list[str]:
    """Each wave's line, and under it what orders its streams (when they differ) or where they start."""
    lines = []
    for wave in plan.waves:
        lines.append(f"WAVE {wave.number} ({wave.mode}): {', '.join(wave.streams)}  — {wave.reason}")
        steps = [plan.step(name) for name in wave.streams]
        ordered = len({(s.priority, s.expected) for s in steps}) > 1  # the order says something
        for step in steps:
            details = []
            if ordered and step.priority:
                details.append(f"priority {step.priority}")
            if ordered:
                details.append(f"expected up to {format_duration(step.expected)}")
            if step.start_from != "base":
                details.append(f"starts from {step.start_from}")
            if details:
                lines.append(f"    {step.name}: {', '.join(details)}")
    return lines


def _instructions(plan: Plan) -> list[str]:
    """The numbered steps an orchestrator (``streams run``, or a person) follows."""
    land = (
        "Land the wave's verified streams on the base (`streams merge NAME…`, dependencies first), "
        "so the next wave's worktrees start on top of their work."
        if plan.merge
        else "Do not land anything: each stream of the next waves starts from the branch named above (`starts from`)."
    )
    sequential = any(w.mode is WaveMode.SEQUENTIAL for w in plan.waves)
    parallel = any(w.mode is WaveMode.PARALLEL for w in plan.waves)
    steps = []
    if parallel:
        steps.append(
            "For a parallel wave, start all its streams at once, in the order listed (higher priority, "
            "then the longest expected, first), as the pool allows."
        )
    if sequential:
        steps.append("For a sequential wave, run its one stream alone: nothing else runs beside it.")
    steps += [
        "Wait until every stream of the wave has finished and is verified (`streams verify`); a claim "
        "of being done is not evidence.",
        land,
        "Sync the streams that go on (`streams sync`), then start the next wave.",
        "If a stream fails, do not start the streams that depend on it: fix it or re-run it first.",
        f"The plan is done when wave {plan.total_waves} is verified" + (" and landed." if plan.merge else "."),
        "`streams run` follows these steps for you.",
    ]
    return [f"  {i}. {text}" for i, text in enumerate(steps, start=1)]
