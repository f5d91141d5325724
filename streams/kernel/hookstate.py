"""What ``streams hooks status`` found, kept for the quick ``status --json``.

A hook's state (installed, outdated, foreign, missing: ``streams.hooks_install.status``) is a
function of its file's bytes, the template it is rendered from, the streams it was rendered by
(version, place) and whether the interpreter it names and the file itself are executable.
``hooks_install.status`` (so ``streams hooks status``, the full ``status``, and ``hooks install``
and ``start``, which end with it) keeps each state here with those bytes; the quick
``status --json`` (``streams.cli.quickstatus``), which must not import ``hooks_install`` (it
renders templates with ``shlex`` and ``json``), takes a state from the record only while the hook
file and its template hold the same bytes, streams is the same version in the same place, and an
installed hook's interpreter and file are still executable. Bytes, not the files' stat: a hook
rewritten within the file system's time granularity is still told apart. Anything else: no
answer, and the full path computes the states again (and keeps them). Standard library only: the
kernel floor.
"""

from __future__ import annotations

import marshal
import os

from streams.kernel.paths import cache_dir

RECORD_FILE = "hook-states.marshal"
RECORD_FORMAT = 2
OURS = ("installed", "outdated")  # streams' own shims: which of the two, the accesses decide now
MAX_BYTES = 1 << 18  # a hook larger than this (someone's binary) is not kept: the full path reads it

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def _bytes(path: str) -> tuple[bool, bytes | None] | None:
    """(whether ``path`` exists or is a link, its bytes through the link or None when they cannot
    be read); None when it is too large to keep."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError:
        return os.path.lexists(path), None
    return None if len(data) > MAX_BYTES else (True, data)


def _file(common_dir: str) -> str:
    return os.path.join(cache_dir(common_dir), RECORD_FILE)


def remember(
    common_dir: str,
    *,
    version: str,
    package: str,
    hooks: Sequence[tuple[str, str, str, str, str | None, bool]],
    seen: Sequence[tuple[bool, bytes | None] | None],
) -> None:
    """Keep ``hooks``: ``(name, hook file, template file, state, interpreter, current)`` as
    ``hooks_install.status`` found them (``current``: streams' shim, rendered as this streams
    renders it for that interpreter), for streams ``version`` at ``package``, with ``seen``, each
    hook file as ``read`` found it before its state was judged (so a hook rewritten meanwhile is
    kept with its old bytes, and the record does not hold for it). A record that cannot be
    written is no error."""
    entries = []
    for (name, hook, template, state, python, current), hook_seen in zip(hooks, seen, strict=True):
        template_seen = _bytes(template)
        if hook_seen is None or template_seen is None:
            return
        entries.append((name, hook, hook_seen, template, template_seen, state, python, current))
    blob = marshal.dumps({"format": RECORD_FORMAT, "version": version, "package": package, "hooks": entries})
    file = _file(common_dir)
    try:
        with open(file, "rb") as fh:
            if fh.read() == blob:
                return
    except OSError:
        pass
    from streams.kernel.atomic import replace_file

    try:
        os.makedirs(cache_dir(common_dir), exist_ok=True)
        replace_file(file, blob)
    except OSError:
        return


def read(path: str) -> tuple[bool, bytes | None] | None:
    """A hook file as ``remember`` keeps it: read it before judging its state."""
    return _bytes(path)


def recall(common_dir: str, *, version: str, package: str) -> dict[str, str] | None:
    """``{hook: state}`` of the hooks in ``<common_dir>/hooks`` as the record keeps them, when it
    holds for every one of them; else None."""
    try:
        with open(_file(common_dir), "rb") as fh:
            data = marshal.loads(fh.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != RECORD_FORMAT
        or data.get("version") != version
        or data.get("package") != package
    ):
        return None
    states: dict[str, str] = {}
    for name, hook, hook_seen, template, template_seen, state, python, current in data.get("hooks", ()):
        if hook != os.path.join(common_dir, "hooks", name) or _bytes(hook) != hook_seen:
            return None
        if _bytes(template) != template_seen:
            return None
        if state in OURS:  # as hooks_install.status judges it: the bytes, then the accesses now
            fine = current and python and os.access(python, os.X_OK) and os.access(hook, os.X_OK)
            state = OURS[0] if fine else OURS[1]
        states[name] = state
    return states or None
