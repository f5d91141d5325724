"""Drawing a run's metrics: the terminal Gantt chart of ``streams metrics --timeline`` and the Chrome
trace-event JSON of ``--trace FILE`` (open it in Perfetto, ui.perfetto.dev, or chrome://tracing).

The chart has one row per stream (its wave before its name), time running left to right across
the terminal's width; an attempt is a bar of its outcome's letter (``=`` verified, ``x`` failed,
``~`` tempfail, ``T`` timeout, ``S`` stall, …), coloured on a terminal (green verified, yellow a
retried class, red the rest) and plain off one or with ``NO_COLOR``. The ``waves`` row numbers the
waves over their spans; the ``marks`` row shows gates (``?`` awaiting, ``A`` approved, ``R``
rejected, ``o`` open; a human's approval ``A`` or rejection ``R``) and landings (``M``), pauses (``P``) and resumes (``>``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from coordinator.metrics import RunMetrics, Span

LETTERS = {
    "verified": "=",
    "failed": "x",
    "tempfail": "~",
    "timeout": "T",
    "stall": "S",
    "crash": "!",
    "blocked": "B",
    "launch_error": "L",
    "check_failed": "K",
    "scope_violation": "V",
    "evidence_mismatch": "E",
    "conflict": "C",
    "interrupted": "I",
    "skipped": "-",
}
RETRIED = {"tempfail", "timeout", "stall", "crash", "interrupted"}
GATE_LETTERS = {"awaiting": "?", "approved": "A", "rejected": "R", "open": "o"}
MARK_LETTERS = {"land": "M", "pause": "P", "resume": ">", "approve": "A", "reject": "R"}
LEGEND = (
    "= verified  x failed  ~ tempfail  T timeout  S stall  ! crash  B blocked  C conflict  "
    "E evidence mismatch  V scope  K check  I interrupted   marks: ? gate awaiting  A approved  "
    "R rejected  o open  M merged  P paused  > resumed"
)


def style_of(klass: str) -> str:
    if klass == "verified":
        return "green"
    return "yellow" if klass in RETRIED else "red"


Cells = list[tuple[str, str]]  # (character, rich style or "")


def _scale(m: RunMetrics, columns: int) -> tuple[float, float]:
    span = max(m.ended - m.started, 1e-3)
    return m.started, span / columns


def _col(ts: float, t0: float, step: float, columns: int) -> int:
    return min(columns - 1, max(0, int((ts - t0) / step)))


def _bar_row(spans: list[Span], t0: float, step: float, columns: int) -> Cells:
    cells: Cells = [(" ", "")] * columns
    for sp in spans:
        lo = _col(sp.start, t0, step, columns)
        hi = max(lo, min(columns - 1, math.ceil((sp.end - t0) / step) - 1))
        for c in range(lo, hi + 1):
            cells[c] = (LETTERS.get(sp.klass, "?"), style_of(sp.klass))
    return cells


def _wave_row(m: RunMetrics, t0: float, step: float, columns: int) -> Cells:
    cells: Cells = [(" ", "")] * columns
    for w in m.waves:
        if w.start is None or w.end is None:
            continue
        lo, hi = _col(w.start, t0, step, columns), _col(w.end, t0, step, columns)
        for c in range(lo, hi + 1):
            cells[c] = ("-", "dim")
        cells[lo] = (str(w.wave)[-1], "bold")
    return cells


def _mark_row(m: RunMetrics, t0: float, step: float, columns: int) -> Cells:
    cells: Cells = [(" ", "")] * columns
    for mark in m.marks:
        if mark.kind == "gate" and mark.what == "approved":
            continue  # the runner passing an approved gate: the human's approval is marked already
        letter = GATE_LETTERS.get(mark.what, "g") if mark.kind == "gate" else MARK_LETTERS.get(mark.kind)
        if letter:
            cells[_col(mark.ts, t0, step, columns)] = (letter, "bold magenta")
    return cells


def _seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m" if s < 7200 else f"{s / 3600:.1f}h"


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split("  "):
        if line and len(line) + 2 + len(word) > width:
            lines.append(line)
            line = ""
        line = f"{line}  {word}" if line else word
    return [*lines, line] if line else lines


def rows(m: RunMetrics, width: int) -> list[tuple[str, Cells]]:
    """(label, cells) per row of the chart: ``width`` is the whole line's."""
    names: list[tuple[int, str]] = []
    for w in m.waves:
        names += [(w.wave, n) for n in w.streams]
    label_w = min(24, max([len(f"w{w} {n}") for w, n in names] + [6]))
    columns = max(10, width - label_w - 3)
    t0, step = _scale(m, columns)
    out: list[tuple[str, Cells]] = [("waves".ljust(label_w), _wave_row(m, t0, step, columns))]
    for wave, name in names:
        label = f"w{wave} {name}"
        label = label if len(label) <= label_w else label[: label_w - 1] + "…"
        out.append((label.ljust(label_w), _bar_row([sp for sp in m.attempts if sp.stream == name], t0, step, columns)))
    out.append(("marks".ljust(label_w), _mark_row(m, t0, step, columns)))
    return out


def render(m: RunMetrics, width: int, color: bool) -> str:
    """The chart as text, every line at most ``width - 1`` characters; ANSI colours when ``color``."""
    width = max(40, width - 1)
    head = f"run {m.run_id} · {m.status} · wall {_seconds(m.wall)} · {len(m.attempts)} attempts"
    lines = [head[:width]]
    body = rows(m, width)
    plain = [label + " |" + "".join(ch for ch, _ in cells) + "|" for label, cells in body]
    if color:
        from rich.console import Console
        from rich.text import Text

        console = Console(width=width + 1, force_terminal=True, color_system="standard", highlight=False)
        with console.capture() as cap:
            for label, cells in body:
                text = Text(label + " |")
                for ch, style in cells:
                    text.append(ch, style=style or None)
                text.append("|")
                console.print(text, no_wrap=True, overflow="crop")
        lines += cap.get().rstrip("\n").split("\n")
    else:
        lines += plain
    label_w = len(body[0][0])
    axis = " " * label_w + "  0"
    lines.append((axis + _seconds(m.wall).rjust(len(plain[-1]) - len(axis) - 1))[:width])
    lines += _wrap(LEGEND, width)
    return "\n".join(lines)


# --- Chrome trace-event JSON ----------------------------------------------------------------------------


def trace(m: RunMetrics) -> dict[str, Any]:
    """The run as Chrome trace events: one thread (tid) per stream, an attempt a complete event
    (``"ph": "X"``, ts and dur in microseconds from the run's start), gates and merges instant
    events (``"ph": "i"``) on the ``run`` track (tid 0)."""
    names = [n for w in m.waves for n in w.streams]
    names += sorted({sp.stream for sp in m.attempts} - set(names))
    tid = {n: i + 1 for i, n in enumerate(names)}
    evs: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": f"streams run {m.run_id}"}},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "run: gates, merges"}},
    ]
    evs += [{"name": "thread_name", "ph": "M", "pid": 1, "tid": t, "args": {"name": n}} for n, t in tid.items()]
    evs += [
        {"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": t, "args": {"sort_index": t}} for t in tid.values()
    ]

    def us(ts: float) -> float:
        return round((ts - m.started) * 1e6, 1)

    for sp in m.attempts:
        evs.append(
            {
                "name": f"{sp.stream} #{sp.attempt}",
                "cat": sp.klass,
                "ph": "X",
                "ts": us(sp.start),
                "dur": round(sp.run_time * 1e6, 1),
                "pid": 1,
                "tid": tid[sp.stream],
                "args": {"class": sp.klass, "attempt": sp.attempt, "wave": sp.wave, "commits": sp.commits},
            }
        )
    names_of = {
        "gate": "gate {what}",
        "approve": "approved by {what}",
        "reject": "rejected by {what}",
        "land": "merged",
    }
    for mark in m.marks:
        if mark.kind in names_of:
            name = f"wave {mark.wave} " + names_of[mark.kind].format(what=mark.what)
            cat = "merge" if mark.kind == "land" else "gate"
            args = {"wave": mark.wave, "kind": mark.kind, "what": mark.what}
            evs.append(
                {"name": name, "cat": cat, "ph": "i", "s": "t", "ts": us(mark.ts), "pid": 1, "tid": 0, "args": args}
            )
    return {"traceEvents": evs, "displayTimeUnit": "ms", "otherData": {"run": m.run_id, "started": m.started}}


def write_trace(m: RunMetrics, path: Path) -> None:
    from streams.kernel.atomic import write_atomic

    write_atomic(path, (json.dumps(trace(m), indent=None) + "\n").encode())
