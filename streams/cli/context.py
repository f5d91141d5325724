"""Where a command stands: the directory it acts in, the workspace and config it opens, the stream
it acts for.

One place (ghstack's ``cli_context``): every command that needs the repository opens it here, so
the config's warnings are printed once per run, and "which stream am I" has one answer and one
error (``no_stream``, exit 2, whatever the command).
"""

from __future__ import annotations

import os
from pathlib import Path

from streams.cli.base import current_run, warn
from streams.config import Config
from streams.kernel.errors import StreamsError, UnknownStreamError
from streams.workspace import Workspace, check_tracked_files, discover, load_config


def cwd() -> Path:
    """Where the command acts: -C, else the directory it was started in (captured once)."""
    return current_run().cwd


def workspace() -> Workspace:
    """The repository the command runs in, without reading streams.yaml (init, hooks)."""
    return discover(cwd())


def open_workspace(*, check_tracked: bool = True, names: tuple[str, ...] = ()) -> tuple[Workspace, Config]:
    """The workspace and its validated config; unknown ``names`` fail before anything is written.

    The config's warnings go to stderr, each once per run however often the command opens it (a
    ``--watch`` loop re-opens it every pass).
    """
    ws = discover(cwd())
    config = load_config(ws, check_tracked=False)
    try:
        config.select(names)
    except UnknownStreamError as exc:
        if any("not in force until committed" in w for w in config.warnings):
            exc.message += (
                f"; streams.yaml in the main worktree has changes not committed on {config.base}, "
                "and only the committed file is in force"
            )
        raise
    if check_tracked:
        config = check_tracked_files(ws, config)
        _remember(ws, config)
    warned = current_run().warned
    for w in config.warnings:
        if w not in warned:
            warned.add(w)
            warn(w)
    return ws, config


def _remember(ws: Workspace, config: Config) -> None:
    """Leave what this configuration prints for ``streams list``'s quick path (``cli.quickread``),
    when it is the configuration in force and the main worktree's copy is the committed one."""
    origin = config.origin
    if origin is None:
        return
    try:
        if ws.config_path.read_bytes() != origin.source:
            return
    except OSError:
        return
    from streams.cli.quickread import remember

    remember(
        ws.common_dir,
        config_path=str(config.path),
        blob=origin.blob,
        commit=origin.commit,
        worktree_root=config.worktree_root,
        warnings=config.warnings,
    )


def current_stream(ws: Workspace, config: Config, name: str | None) -> str | None:
    """The stream a command acts for: ``--stream NAME`` (checked against streams.yaml), else the one
    whose worktree the command runs in, else None."""
    if name is not None:
        config.stream(name)  # unknown → exit 1 naming the known streams
        return name
    return ws.current_stream()


def which_stream(ws: Workspace, config: Config, name: str | None) -> str:
    """``current_stream``, required: neither ``--stream`` nor a stream's worktree is the one
    ``no_stream`` error (exit 2)."""
    found = current_stream(ws, config, name)
    if found is None:
        raise StreamsError(
            "not inside a stream's worktree; run this in one, or pass --stream NAME "
            f"(streams: {', '.join(config.names) or 'none'})",
            code="no_stream",
        )
    return found


def short(oid: str | None) -> str:
    return oid[:12] if oid else "-"


def shown(path: Path) -> str:
    """A path as a human reads it: relative to where the command runs when that is shorter."""
    try:
        rel = os.path.relpath(path, cwd())
    except ValueError:
        return str(path)
    return rel if len(rel) < len(str(path)) else str(path)
