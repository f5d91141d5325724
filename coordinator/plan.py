"""``streams plan``: the streams of streams.yaml as waves (the PARALLEL EXECUTION PLAN of the MAKER
seed), the one plan object that ``streams run`` follows and freezes in ``runs/<id>/plan.json``.

How the waves are made (DESIGN, "Coordination"):

- A stream's **level** is its longest dependency chain (``streams.graph.levels``); with nothing
  else in the way, a level's streams form one wave, run side by side (mode ``parallel``).
- A stream with ``parallel: false`` gets a wave of its own (mode ``sequential``), placed after
  the parallel wave of the streams that became ready with it.
- Two streams of one wave that ``touch`` the same shared file are split: the later one (in the
  order they became ready, then config order) moves to the next wave, and whatever depends on it
  moves along, so a stream's dependencies always come in earlier waves. A stream that was moved
  goes before the streams that only just became ready.
- Within a wave: higher ``priority`` first, then the longest expected first (the stream's
  ``timeout``, else ``run.timeout``, as its expected duration), then config order.
- A wave of one stream is ``sequential``: nothing runs beside it.

**A selection** (``streams plan NAME…``) plans only the named streams. A dependency outside the
selection is *external*: it is not scheduled, it is taken as done (its work already landed, or
run separately), it is listed in ``external`` and named in the step's and the wave's reason. The
selection's own dependencies still order its waves.

**Without merging** (``streams run --no-merge``, or ``run.merge: false``) nothing lands between
waves, and every stream still starts from the base (``start_from`` is ``base``): a branch cut from
a dependency's tip would hold that stream's commits, which the scope check (hooks, ``verify``,
the merge queue) judges as the dependent's own and refuses. ``notes`` says, per dependent, on
which branches its dependencies' work waits for it to read (``git show streams/a:PATH``) until it
lands with ``streams merge``.

The plan is a value: the same config, selection and merge setting give the same plan, and the
same ``digest`` (sha256 of its canonical JSON: sorted keys, no spaces, UTF-8; the config's path
is not in it). The task id is ``plan-`` and the digest's first 8 hex digits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from streams.config import Config, Stream
from streams.graph import levels


class WaveMode(StrEnum):
    PARALLEL = "parallel"  # its streams run side by side
    SEQUENTIAL = "sequential"  # one stream: nothing runs beside it


@dataclass(frozen=True)
class Step:
    """One stream of the plan.

    ===========  =======  ================================================================================
    field        type     meaning
    ===========  =======  ================================================================================
    name         str      the stream
    wave         int      the wave it runs in (1-based)
    branch       str      its branch, e.g. streams/api
    depends      [str]    its dependencies in this plan (each in an earlier wave)
    external     [str]    its dependencies outside the selection, taken as done
    parallel     bool     its ``parallel:`` setting (false: a wave of its own)
    touches      [str]    the shared files it expects to change
    priority     int      its ``priority`` (higher is dispatched first within the wave)
    expected     float    its expected duration in seconds (its ``timeout``, else ``run.timeout``)
    start_from   str      what its branch starts from: "base", or a dependency's branch (no merge)
    reason       str      why it is in this wave: "no dependencies", "depends on a", "parallel: false",
                          "touches pyproject.toml like api, moved after it"
    ===========  =======  ================================================================================
    """

    name: str
    wave: int
    branch: str
    depends: tuple[str, ...]
    external: tuple[str, ...]
    parallel: bool
    touches: tuple[str, ...]
    priority: int
    expected: float
    start_from: str
    reason: str


@dataclass(frozen=True)
class Wave:
    """One wave: streams started together, all verified (and landed) before the next wave starts.

    =======  ======  ==================================================================================
    field    type    meaning
    =======  ======  ==================================================================================
    number   int     1-based
    mode     str     parallel (its streams run side by side) or sequential (one stream alone)
    streams  [str]   its streams in dispatch order (priority, longest expected, config order)
    reason   str     why these are together, or why this one is alone (each step's reason, grouped)
    =======  ======  ==================================================================================
    """

    number: int
    mode: WaveMode
    streams: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Edge:
    """A line of the dependency graph: ``[stream] -> [dependent], …``.

    ==========  =====  =================================================================================
    field       type   meaning
    ==========  =====  =================================================================================
    stream      str    a dependency
    dependents  [str]  the planned streams that depend on it directly (config order)
    external    bool   the dependency is outside the selection (not planned, taken as done)
    ==========  =====  =================================================================================
    """

    stream: str
    dependents: tuple[str, ...]
    external: bool


@dataclass(frozen=True)
class Plan:
    """``streams plan --json``: the waves, and what ``streams run`` freezes in ``runs/<id>/plan.json``.

    ================  ======  ==========================================================================
    field             type    meaning
    ================  ======  ==========================================================================
    base              str     the branch the streams start from and land on
    merge             bool    each wave lands before the next starts (false: ``--no-merge``, dependents
                              start from their dependency's branch)
    selected          [str]   the streams named on the command line ([] = every stream)
    steps             [Step]  every planned stream, in wave order
    waves             [Wave]  the waves in order
    graph             [Edge]  the dependency graph, one line per dependency with dependents
    critical_path     [str]   the longest dependency chain (first to last)
    external          [str]   dependencies outside the selection (not planned, taken as done)
    notes             [str]   what to know beyond the waves (several dependencies without merging)
    total_steps       int     how many streams are planned
    total_waves       int     how many waves
    parallel_steps    int     steps that run beside another step in their wave
    parallelism       float   parallel_steps / total_steps, in percent (0 when there are none)
    digest            str     sha256 of the plan's canonical JSON (the fields above the derived ones)
    task_id           str     ``plan-`` and the digest's first 8 hex digits
    ================  ======  ==========================================================================
    """

    base: str
    merge: bool
    selected: tuple[str, ...]
    steps: tuple[Step, ...]
    waves: tuple[Wave, ...]
    graph: tuple[Edge, ...]
    critical_path: tuple[str, ...]
    external: tuple[str, ...]
    notes: tuple[str, ...]

    json_properties: ClassVar[tuple[str, ...]] = (
        "total_steps",
        "total_waves",
        "parallel_steps",
        "parallelism",
        "digest",
        "task_id",
    )

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    @property
    def total_waves(self) -> int:
        return len(self.waves)

    @property
    def parallel_steps(self) -> int:
        return sum(len(w.streams) for w in self.waves if w.mode is WaveMode.PARALLEL)

    @property
    def parallelism(self) -> float:
        return round(100.0 * self.parallel_steps / self.total_steps, 1) if self.steps else 0.0

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical(self.content())).hexdigest()

    @property
    def task_id(self) -> str:
        return f"plan-{self.digest[:8]}"

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def content(self) -> dict[str, Any]:
        """The plan's own fields as JSON values (what the digest covers)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> dict[str, Any]:
        """The plan as ``streams plan --json`` writes its data: the fields, then the derived facts."""
        return {**self.content(), **{name: getattr(self, name) for name in self.json_properties}}


def canonical(value: Any) -> bytes:
    """``value``'s canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --- building it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    """The waves as the scheduler makes them: streams (unsorted) and each stream's moves."""

    waves: tuple[tuple[str, ...], ...]
    solo: frozenset[str]  # streams alone in a sequential wave because of parallel: false
    moved: Mapping[str, str]  # stream -> the move's reason


def build_plan(cfg: Config, names: Sequence[str] = (), *, merge: bool = True) -> Plan:
    """The plan of ``names`` (every stream when empty; an unknown name raises UnknownStreamError),
    landing each wave before the next (``merge``) or starting dependents from their dependency's
    branch (not ``merge``). See the module docstring for the rules."""
    chosen = cfg.select(tuple(names))
    planned = {s.name for s in chosen}
    order = {s.name: i for i, s in enumerate(cfg.streams)}
    streams = sorted(chosen, key=lambda s: order[s.name])
    by_name = {s.name: s for s in streams}
    inside = {s.name: tuple(d for d in s.depends if d in planned) for s in streams}
    outside = {s.name: tuple(d for d in s.depends if d not in planned) for s in streams}
    placed = _place(streams, inside)
    wave_of = {n: i + 1 for i, wave in enumerate(placed.waves) for n in wave}

    def expected(s: Stream) -> float:
        return s.run.timeout if s.run.timeout is not None else cfg.run.timeout

    def dispatch(n: str) -> tuple[int, float, int]:
        s = by_name[n]
        return (-s.run.priority, -expected(s), order[n])

    starts, notes = _starts(streams, inside, outside, wave_of, order, cfg, merge=merge)
    steps: list[Step] = []
    waves: list[Wave] = []
    for number, members in enumerate(placed.waves, start=1):
        ranked = tuple(sorted(members, key=dispatch))
        reasons = {n: _reason(by_name[n], inside[n], outside[n], placed) for n in ranked}
        mode = WaveMode.PARALLEL if len(ranked) > 1 else WaveMode.SEQUENTIAL
        waves.append(Wave(number, mode, ranked, _wave_reason(ranked, reasons)))
        for n in ranked:
            s = by_name[n]
            steps.append(
                Step(
                    name=n,
                    wave=number,
                    branch=cfg.branch(n),
                    depends=inside[n],
                    external=outside[n],
                    parallel=s.parallel,
                    touches=s.touches,
                    priority=s.run.priority,
                    expected=expected(s),
                    start_from=starts[n],
                    reason=reasons[n],
                )
            )
    external = tuple(sorted({d for n in outside for d in outside[n]}, key=lambda d: order[d]))
    return Plan(
        base=cfg.base,
        merge=merge,
        selected=tuple(dict.fromkeys(names)),
        steps=tuple(steps),
        waves=tuple(waves),
        graph=_graph(streams, inside, outside, order),
        critical_path=_critical_path(streams, inside, {n: expected(by_name[n]) for n in by_name}),
        external=external,
        notes=tuple(notes),
    )


def _place(streams: Sequence[Stream], inside: Mapping[str, tuple[str, ...]]) -> _Placed:
    """Ready-list scheduling: each round, the streams whose dependencies are all placed form a
    parallel wave (less those that touch a file one placed before them in the round touches: they
    wait for the next round), then each ``parallel: false`` one a wave of its own."""
    waves: list[tuple[str, ...]] = []
    done: set[str] = set()
    ready_since: dict[str, int] = {}
    moved: dict[str, str] = {}
    solo: set[str] = set()
    todo = list(streams)  # config order
    rnd = 0
    while todo:
        for s in todo:
            if s.name not in ready_since and all(d in done for d in inside[s.name]):
                ready_since[s.name] = rnd
        ready = sorted((s for s in todo if s.name in ready_since), key=lambda s: ready_since[s.name])
        together: list[Stream] = []
        alone: list[Stream] = []
        for s in ready:
            if not s.parallel:
                alone.append(s)
                continue
            clash = next((o for o in together if _shared_touch(s, o) is not None), None)
            if clash is None:
                together.append(s)
            else:
                moved[s.name] = f"touches {_shared_touch(s, clash)} like {clash.name}, moved after it"
        if together:
            waves.append(tuple(s.name for s in together))
        for s in alone:
            solo.add(s.name)
            waves.append((s.name,))
        placed = {s.name for s in together} | {s.name for s in alone}
        done |= placed
        todo = [s for s in todo if s.name not in placed]
        rnd += 1
    return _Placed(tuple(waves), frozenset(solo), moved)


def _shared_touch(a: Stream, b: Stream) -> str | None:
    """The first shared file both ``a`` and ``b`` touch, or None."""
    theirs = {t.strip("/") for t in b.touches}
    return next((t.strip("/") for t in a.touches if t.strip("/") in theirs), None)


def _reason(s: Stream, inside: tuple[str, ...], outside: tuple[str, ...], placed: _Placed) -> str:
    parts = []
    if s.name in placed.solo:
        parts.append("parallel: false")
    if inside:
        parts.append(f"depends on {', '.join(inside)}")
    if outside:
        parts.append(f"depends on {', '.join(outside)} outside this plan (taken as done)")
    if s.name in placed.moved:
        parts.append(placed.moved[s.name])
    return "; ".join(parts) or "no dependencies"


def _wave_reason(ranked: Sequence[str], reasons: Mapping[str, str]) -> str:
    """The steps' reasons, grouped: one reason when all share it, else ``a, b: reason; c: reason``."""
    groups: dict[str, list[str]] = {}
    for n in ranked:
        groups.setdefault(reasons[n], []).append(n)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{', '.join(members)}: {reason}" for reason, members in groups.items())


def _starts(
    streams: Sequence[Stream],
    inside: Mapping[str, tuple[str, ...]],
    outside: Mapping[str, tuple[str, ...]],
    wave_of: Mapping[str, int],
    order: Mapping[str, int],
    cfg: Config,
    *,
    merge: bool,
) -> tuple[dict[str, str], list[str]]:
    """Each stream's ``start_from``, and the notes on dependencies a start leaves out."""
    starts = {s.name: "base" for s in streams}
    if merge:
        return starts, []
    notes: list[str] = []
    for s in sorted(streams, key=lambda s: (wave_of[s.name], order[s.name])):
        deps = [*inside[s.name], *outside[s.name]]
        if deps:
            where = ", ".join(cfg.branch(d) for d in deps)
            notes.append(
                f"{s.name} starts from the base: the work of {', '.join(deps)} stays on {where} until it "
                "lands (`streams merge`); read it there"
            )
    return starts, notes


def _graph(
    streams: Sequence[Stream],
    inside: Mapping[str, tuple[str, ...]],
    outside: Mapping[str, tuple[str, ...]],
    order: Mapping[str, int],
) -> tuple[Edge, ...]:
    """``[a] -> [b], [c]`` for every dependency with dependents, in config order."""
    dependents: dict[str, list[str]] = {}
    for s in streams:  # config order, so each list is too
        for d in (*inside[s.name], *outside[s.name]):
            dependents.setdefault(d, []).append(s.name)
    external = {d for n in outside for d in outside[n]}
    return tuple(Edge(d, tuple(dependents[d]), d in external) for d in sorted(dependents, key=lambda d: order[d]))


def _critical_path(
    streams: Sequence[Stream], inside: Mapping[str, tuple[str, ...]], expected: Mapping[str, float]
) -> tuple[str, ...]:
    """The longest dependency chain: most steps, then most expected time, then first in config order."""
    level = levels(inside)
    best: dict[str, tuple[int, float, tuple[str, ...]]] = {}
    for s in sorted(streams, key=lambda s: level[s.name]):
        chains = [best[d] for d in inside[s.name]]
        below = max(chains, key=lambda c: (c[0], c[1]), default=(0, 0.0, ()))
        best[s.name] = (below[0] + 1, below[1] + expected[s.name], (*below[2], s.name))
    if not best:
        return ()
    return max(best.values(), key=lambda c: (c[0], c[1]))[2]
