"""What ``streams hooks status`` found, kept for the quick ``status --json``.

A hook's state (installed, outdated, foreign, missing: ``streams.hooks_install.status``) follows
from its file, the template it was rendered from, and the interpreter it names. The full
``status`` keeps each state here with the stat of the files it came from; the quick
``status --json`` (``streams.cli.quickstatus``), which must not import ``hooks_install`` (it
renders templates with ``shlex`` and ``json``), takes a state from the record only while the
hook file and its template have the same stat, streams is the same version in the same place, and
an installed hook's interpreter and file are still executable. Anything else: no answer, and the
full path computes the states again (and keeps them). Standard library only: the kernel floor.
"""

from __future__ import annotations

import marshal
import os
import time

from streams.kernel.paths import cache_dir

RECORD_FILE = "hook-states.marshal"
RECORD_FORMAT = 1
RACY_SECONDS = 2.0  # a file changed this recently may change again with the same stat: not kept
INSTALLED = "installed"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def _key(path: str, racy_after: int) -> tuple[object, ...] | bool:
    """The stat of ``path`` and of what it links to: False when it changed too recently to be
    told apart from its next change."""
    items: list[object] = []
    for stat in (os.lstat, os.stat):
        try:
            st = stat(path)
        except OSError:
            items.append(None)
            continue
        if st.st_mtime_ns >= racy_after or st.st_ctime_ns >= racy_after:
            return False
        items.append((st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode))
    return tuple(items)


def _file(common_dir: str) -> str:
    return os.path.join(cache_dir(common_dir), RECORD_FILE)


def remember(
    common_dir: str,
    *,
    version: str,
    package: str,
    hooks: Sequence[tuple[str, str, str, str, str | None]],
) -> None:
    """Keep ``hooks``: ``(name, hook file, template file, state, interpreter)`` as
    ``hooks_install.status`` found them, for streams ``version`` at ``package``. Not kept when a
    file changed within the last seconds; a record that cannot be written is no error."""
    racy_after = int((time.time() - RACY_SECONDS) * 1e9)
    entries = []
    for name, hook, template, state, python in hooks:
        hook_key, template_key = _key(hook, racy_after), _key(template, racy_after)
        if hook_key is False or template_key is False:
            return
        entries.append((name, hook, hook_key, template, template_key, state, python))
    data = {"format": RECORD_FORMAT, "version": version, "package": package, "hooks": entries}
    blob = marshal.dumps(data)
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
    racy_after = int((time.time() - RACY_SECONDS) * 1e9)
    states: dict[str, str] = {}
    for name, hook, hook_key, template, template_key, state, python in data.get("hooks", ()):
        if (
            hook != os.path.join(common_dir, "hooks", name)
            or _key(hook, racy_after) != hook_key
            or _key(template, racy_after) != template_key
        ):
            return None
        if state == INSTALLED and not (python and os.access(python, os.X_OK) and os.access(hook, os.X_OK)):
            return None  # the interpreter went away: the full path says how the hook stands now
        states[name] = state
    return states or None
