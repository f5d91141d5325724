"""The run settings of streams.yaml: the ``run:`` block and each stream's run keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import parse
from streams.kernel.errors import ConfigError, UsageError
from streams.runconfig import FailurePolicy, Gate, HaltMode, HaltPolicy, RunSettings, parse_halt

HEAD = "version: 1\nbase: main\nstreams:\n  api:\n    owns: [src/**]\n"


def load(text: str):  # type: ignore[no-untyped-def]
    return parse(text, path=Path("streams.yaml"))


def test_defaults_when_there_is_no_run_block() -> None:
    c = load(HEAD)
    assert c.run == RunSettings()
    assert (c.run.max_parallel, c.run.timeout, c.run.stall_timeout, c.run.grace) == (8, 2700.0, 900.0, 30.0)
    assert (c.run.retries, c.run.backoff, c.run.gate, c.run.merge) == (2, 30.0, Gate.MANUAL, True)
    assert c.run.on_failure is FailurePolicy.BLOCKING and c.run.halt.mode is HaltMode.NEVER
    assert c.streams[0].run.priority == 0 and c.streams[0].task == ""


def test_every_key_is_read() -> None:
    c = load(
        HEAD
        + "    task: Build the v2 endpoints\n    pool: claude\n    on_failure: critical\n"
        + "    fallback: ./other.sh\n    priority: 5\n    timeout: 2h\n    stall_timeout: 10m\n    retries: 4\n"
        + "run:\n  max_parallel: 4\n  pools: {claude: 2}\n  timeout: 1h\n  stall_timeout: 5m\n  grace: 0s\n"
        + "  retries: 0\n  backoff: 1s\n  on_failure: isolated\n  halt: 'soon,fail=20%'\n  gate: none\n"
        + "  merge: false\n  check: ./scripts/test\n"
    )
    st = c.streams[0].run
    assert (st.task, st.pool, st.on_failure, st.fallback) == (
        "Build the v2 endpoints",
        "claude",
        "critical",
        "./other.sh",
    )
    assert (st.priority, st.timeout, st.stall_timeout, st.retries) == (5, 7200.0, 600.0, 4)
    r = c.run
    assert (r.max_parallel, r.pools, r.timeout, r.stall_timeout, r.grace) == (4, (("claude", 2),), 3600.0, 300.0, 0.0)
    assert (r.retries, r.backoff, r.on_failure, r.gate, r.merge) == (0, 1.0, "isolated", "none", False)
    assert r.halt == HaltPolicy(HaltMode.SOON, None, 20.0) and r.check == "./scripts/test"


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("run:\n  max_parallel: 65\n", "streams.yaml:7: run.max_parallel: 65 is out of range"),
        ("run:\n  max_parallel: true\n", "run.max_parallel: expected a whole number from 1 to 64"),
        ("run:\n  timeout: 30\n", "run.timeout: expected a string, got a number (a duration such as 90s"),
        ("run:\n  gate: sometimes\n", "run.gate: 'sometimes' is not one of manual | auto-if-clean | none"),
        ("run:\n  halt: 'never,fail=2'\n", "run.halt: 'never,fail=2': a threshold needs soon or now"),
        ("run:\n  pools: {claude: 0}\n", "run.pools.claude: 0 is out of range"),
        ("run:\n  bogus: 1\n", "run.bogus: unknown key"),
        ("    pool: claude\n", "streams.api.pool: unknown pool 'claude' (run.pools has: none)"),
        (
            "    on_failure: sometimes\n",
            "streams.api.on_failure: 'sometimes' is not one of isolated | blocking | critical",
        ),
        ("    retries: -1\n", "streams.api.retries: -1 is out of range"),
    ],
)
def test_bad_run_settings_name_line_and_key(tail: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load(HEAD + tail)
    assert message in str(exc.value)


def test_halt_spec() -> None:
    assert parse_halt("now,fail=3") == HaltPolicy(HaltMode.NOW, 3, None)
    assert str(parse_halt("soon,fail=12.5%")) == "soon,fail=12.5%"
    assert parse_halt("soon,fail=2").reached(2, 5) and not parse_halt("soon,fail=2").reached(1, 5)
    assert parse_halt("soon,fail=50%").reached(1, 2) and not parse_halt("soon,fail=50%").reached(1, 3)
    assert not parse_halt("never").reached(100, 100)
    for bad in ("sometimes", "soon,fail=0", "soon,fail=101%", "now,fail=x"):
        with pytest.raises(UsageError):
            parse_halt(bad)
