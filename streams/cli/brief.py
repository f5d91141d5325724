"""``streams brief [STREAM]``: the brief an agent of the stream reads ("what may I touch?").

``--json``: the core's ``Brief`` (``streams/brief.py`` documents its fields).

Works with or without a run: inside an agent launched by ``streams run`` (``STREAMS_STREAM`` names
the stream asked for) the run, wave and attempt come from the environment; what the waves before
delivered and the previous attempt are in the runner's own copy, the file ``$STREAMS_BRIEF``.
"""

from __future__ import annotations

import os

import click

from streams.brief import Brief, compose, render
from streams.cli.base import Reply, cli, json_option
from streams.cli.context import open_workspace
from streams.kernel.errors import UsageError


def _from_env(name: str) -> tuple[str | None, int | None, int]:
    """The run, wave and attempt of the agent ``streams run`` launched for ``name``, if this is it."""
    if os.environ.get("STREAMS_STREAM") != name or not os.environ.get("STREAMS_RUN_ID"):
        return None, None, 1
    wave, attempt = os.environ.get("STREAMS_WAVE", ""), os.environ.get("STREAMS_ATTEMPT", "")
    return (
        os.environ["STREAMS_RUN_ID"],
        int(wave) if wave.isdigit() else None,
        int(attempt) if attempt.isdigit() and int(attempt) > 0 else 1,
    )


@cli.command("brief")
@click.argument("stream", required=False, metavar="[STREAM]")
@json_option
def brief_cmd(stream: str | None) -> Reply[Brief]:
    """Print a stream's brief: its task, what it owns, the shared files, the rules and exit codes.

    The prompt `streams run` gives the stream's agent, composed from streams.yaml and the files
    tracked on the base branch. Inside a stream's worktree STREAM defaults to that stream. With
    --json, the same facts for a program (what may I touch?).
    """
    ws, config = open_workspace(names=(stream,) if stream else ())
    name = stream or ws.current_stream()
    if name is None:
        raise UsageError(
            "which stream? run this in a stream's worktree, or name it: `streams brief STREAM` "
            f"(streams: {', '.join(config.names) or 'none'})"
        )
    run_id, wave, attempt = _from_env(name)
    return Reply(compose(ws, config, name, run_id=run_id, wave=wave, attempt=attempt), render)
