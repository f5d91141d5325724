"""The run settings of streams.yaml: the ``run:`` block (defaults for ``streams run``) and each
stream's own run keys (``task``, ``pool``, ``on_failure``, ``fallback``, ``priority``, ``timeout``,
``stall_timeout``, ``retries``). Read by ``streams.config``; used by plan, run and merge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from yaml.nodes import Node, ScalarNode

from streams.kernel.errors import ConfigError, UsageError
from streams.yamlreader import Fields, Reader

RUN_KEYS = (
    "max_parallel",
    "pools",
    "timeout",
    "stall_timeout",
    "grace",
    "retries",
    "backoff",
    "on_failure",
    "halt",
    "gate",
    "merge",
    "check",
)
STREAM_RUN_KEYS = (
    "task",
    "task_file",
    "pool",
    "on_failure",
    "fallback",
    "priority",
    "timeout",
    "stall_timeout",
    "retries",
)
MAX_POOL = 64
MAX_RETRIES = 20
BACKOFF_CAP = 30 * 60.0


class FailurePolicy(StrEnum):
    ISOLATED = "isolated"  # its dependents still run
    BLOCKING = "blocking"  # its dependents are skipped, naming it
    CRITICAL = "critical"  # the run halts


class Gate(StrEnum):
    MANUAL = "manual"
    AUTO_IF_CLEAN = "auto-if-clean"
    NONE = "none"


class HaltMode(StrEnum):
    NEVER = "never"
    SOON = "soon"  # no new starts; running attempts finish
    NOW = "now"  # running attempts are terminated


@dataclass(frozen=True)
class HaltPolicy:
    """``--halt never|soon|now[,fail=N|fail=P%]`` (GNU parallel's ``--halt``): what a critical
    failure does, and the run-wide failure threshold that does the same."""

    mode: HaltMode = HaltMode.NEVER
    fail_count: int | None = None
    fail_percent: float | None = None

    def reached(self, failed: int, finished: int) -> bool:
        """Whether ``failed`` failures out of ``finished`` settled streams cross the threshold."""
        if self.fail_count is not None:
            return failed >= self.fail_count
        if self.fail_percent is not None:
            return finished > 0 and failed * 100.0 >= self.fail_percent * finished and failed > 0
        return False

    def __str__(self) -> str:
        if self.fail_count is not None:
            return f"{self.mode},fail={self.fail_count}"
        if self.fail_percent is not None:
            return f"{self.mode},fail={self.fail_percent:g}%"
        return str(self.mode)


_HALT_RE = re.compile(r"(never|soon|now)(?:,fail=(?:([0-9]+)|([0-9]+(?:\.[0-9]+)?)%))?\Z")


def parse_halt(text: str, *, option: str = "--halt") -> HaltPolicy:
    """``never``, ``soon``, ``now``, optionally ``,fail=N`` or ``,fail=P%``."""
    m = _HALT_RE.match(text.strip())
    if m is None:
        raise UsageError(f"{option} {text!r}: write never, soon or now, optionally with ,fail=N or ,fail=P%")
    mode = HaltMode(m.group(1))
    count = int(m.group(2)) if m.group(2) is not None else None
    percent = float(m.group(3)) if m.group(3) is not None else None
    if count == 0 or (percent is not None and not 0 < percent <= 100):
        raise UsageError(f"{option} {text!r}: fail=N needs N ≥ 1 and fail=P% a P from 0 (exclusive) to 100")
    if mode is HaltMode.NEVER and (count is not None or percent is not None):
        raise UsageError(f"{option} {text!r}: a threshold needs soon or now (never halts); e.g. soon,fail=3")
    return HaltPolicy(mode, count, percent)


@dataclass(frozen=True)
class RunSettings:
    """The ``run:`` block, each value its default when the key is absent."""

    max_parallel: int = 8
    pools: tuple[tuple[str, int], ...] = ()
    timeout: float = 45 * 60.0
    stall_timeout: float = 15 * 60.0
    grace: float = 30.0
    retries: int = 2
    backoff: float = 30.0
    on_failure: FailurePolicy = FailurePolicy.BLOCKING
    halt: HaltPolicy = field(default_factory=HaltPolicy)
    gate: Gate = Gate.MANUAL
    merge: bool = True
    check: str | None = None

    def pool_size(self, name: str) -> int | None:
        return dict(self.pools).get(name)


@dataclass(frozen=True)
class StreamRun:
    """A stream's own run keys; None means "the run: block's value"."""

    task: str = ""
    task_file: str | None = None
    pool: str | None = None
    on_failure: FailurePolicy | None = None
    fallback: str | None = None
    priority: int = 0
    timeout: float | None = None
    stall_timeout: float | None = None
    retries: int | None = None


def _null(r: Reader, node: Node) -> bool:
    return isinstance(node, ScalarNode) and r.scalar(node) is None


def read_run(r: Reader, top: Fields) -> RunSettings:
    """The ``run:`` block of ``top`` (defaults when absent or null)."""
    entry = top.get("run")
    if entry is None or _null(r, entry[1]):
        return RunSettings()
    f = r.mapping(entry[1], "run", RUN_KEYS, "e.g. run: {max_parallel: 8, timeout: 45m}")
    d = RunSettings()
    pools: list[tuple[str, int]] = []
    if "pools" in f and not _null(r, f["pools"][1]):
        for name, (_, vnode) in r.mapping(f["pools"][1], "run.pools", (), "e.g. pools: {claude: 4}").items():
            pools.append((name, r.integer(vnode, f"run.pools.{name}", 1, MAX_POOL)))
    halt = d.halt
    if "halt" in f:
        text = r.string(f["halt"][1], "run.halt", "never | soon | now, optionally ,fail=N or ,fail=P%") or ""
        try:
            halt = parse_halt(text, option="run.halt")
        except UsageError as exc:
            raise r.fail(f["halt"][1], "run.halt", str(exc).removeprefix("run.halt ")) from None
    check = d.check
    if "check" in f:
        check = r.string(f["check"][1], "run.check", "a shell command", allow_null=True) or None
    return RunSettings(
        max_parallel=r.integer(f["max_parallel"][1], "run.max_parallel", 1, MAX_POOL)
        if "max_parallel" in f
        else d.max_parallel,
        pools=tuple(pools),
        timeout=r.duration(f["timeout"][1], "run.timeout") if "timeout" in f else d.timeout,
        stall_timeout=r.duration(f["stall_timeout"][1], "run.stall_timeout")
        if "stall_timeout" in f
        else d.stall_timeout,
        grace=r.duration(f["grace"][1], "run.grace", allow_zero=True) if "grace" in f else d.grace,
        retries=r.integer(f["retries"][1], "run.retries", 0, MAX_RETRIES) if "retries" in f else d.retries,
        backoff=r.duration(f["backoff"][1], "run.backoff", allow_zero=True) if "backoff" in f else d.backoff,
        on_failure=FailurePolicy(r.choice(f["on_failure"][1], "run.on_failure", tuple(FailurePolicy)))
        if "on_failure" in f
        else d.on_failure,
        halt=halt,
        gate=Gate(r.choice(f["gate"][1], "run.gate", tuple(Gate))) if "gate" in f else d.gate,
        merge=r.boolean(f["merge"][1], "run.merge") if "merge" in f else d.merge,
        check=check,
    )


def read_stream_run(r: Reader, key: str, f: Fields) -> StreamRun:
    """A stream's run keys from its fields (``key`` is ``streams.<name>``)."""
    d = StreamRun()

    def text(k: str, hint: str) -> str | None:
        return r.string(f[k][1], f"{key}.{k}", hint, allow_null=True) or None if k in f else None

    return StreamRun(
        task=text("task", "what the stream's agent is to do") or "",
        task_file=text("task_file", "a file in the repository holding the task"),
        pool=text("pool", "the name of a sub-pool under run.pools"),
        on_failure=FailurePolicy(r.choice(f["on_failure"][1], f"{key}.on_failure", tuple(FailurePolicy)))
        if "on_failure" in f
        else None,
        fallback=text("fallback", "a shell command"),
        priority=r.integer(f["priority"][1], f"{key}.priority", -1000, 1000) if "priority" in f else d.priority,
        timeout=r.duration(f["timeout"][1], f"{key}.timeout") if "timeout" in f else None,
        stall_timeout=r.duration(f["stall_timeout"][1], f"{key}.stall_timeout") if "stall_timeout" in f else None,
        retries=r.integer(f["retries"][1], f"{key}.retries", 0, MAX_RETRIES) if "retries" in f else None,
    )


def check_pools(display: str, run: RunSettings, pools: list[tuple[str, str | None, int]]) -> None:
    """Each stream's ``pool`` (stream, pool, line) must be named under ``run.pools``."""
    known = dict(run.pools)
    for name, pool, line in pools:
        if pool is not None and pool not in known:
            have = ", ".join(known) or "none"
            raise ConfigError(
                f"{display}:{line}: streams.{name}.pool: unknown pool {pool!r} (run.pools has: {have}); "
                f"add it under run.pools with its size, e.g. run: {{pools: {{{pool}: 4}}}}"
            )
