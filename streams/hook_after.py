"""The advisory hooks, run after the fact (they cannot refuse anything): ``post-commit`` releases or
holds a stream's ``--until-commit`` leases on the paths it just committed; ``post-rewrite`` releases
the leases taken during a rebase when it finishes. Standard library only, like ``streams.hook``,
whose helpers they use; ``streams.hook.main`` imports this module only for them.
"""

from __future__ import annotations

import os

from streams.hookio import HookError, common_dir, config, git, git_dir, marker, say
from streams.kernel import rules
from streams.kernel.paths import REBASE_LEASES_FILE
from streams.kernel.reffiles import read_head

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def post_commit() -> int:
    gd = git_dir()
    stream = marker(gd)
    if stream is None:
        return 0
    from streams.kernel.locks import release_committed

    code, out, _ = git(
        "log", "-1", "--format=", "--name-only", "-z", "--no-renames", "--diff-merges=first-parent", "HEAD", "--"
    )
    if code != 0:
        return 0
    paths = [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p.strip(b"\n")]
    paths = [p.lstrip("\n") for p in paths]
    from pathlib import Path

    common = common_dir(gd)
    try:
        cc = config(common)
    except HookError:
        cc = None  # the configuration cannot be read: release as at any commit
    try:
        released, held = release_committed(
            Path(common),
            stream,
            paths,
            commit=read_head(gd, common) or "",
            conflict_free=cc.conflict_free if cc is not None else (lambda _path: True),
        )
    except Exception as exc:  # noqa: BLE001 - post-commit cannot undo the commit; say what went wrong
        say(f"streams: warning: could not release --until-commit locks: {exc}")
        return 0
    for lease in released:
        say(f"streams: released the lock on {rules.show(lease.path)} (taken --until-commit)")
    for lease in held:
        say(
            f"streams: the lock on {rules.show(lease.path)} stays until this commit lands on the base "
            "(`streams merge` releases it): other streams' edits of it would conflict with yours"
        )
    return 0


def post_rewrite(args: Sequence[str]) -> int:
    """After a rebase: release the leases ``streams lock`` took while it was in progress here."""
    gd = git_dir()
    stream = marker(gd)
    if stream is None or not args or args[0] != "rebase":
        return 0  # (git runs it at the very end of a rebase, before it removes its directory)
    from pathlib import Path

    from streams.kernel.locks import release_ids

    listing = os.path.join(gd, REBASE_LEASES_FILE)
    try:
        with open(listing, encoding="utf-8", errors="surrogateescape") as fh:
            records = [r.partition(" ") for r in fh.read().split("\0") if " " in r]
        released = release_ids(Path(common_dir(gd)), stream, [(i, p) for i, _, p in records], cause="rebase")
        os.unlink(listing)
    except Exception as exc:  # noqa: BLE001 - the rebase is done; say what went wrong
        say(f"streams: warning: could not release the locks taken during the rebase: {exc}")
        return 0
    for lease in released:
        say(f"streams: released the lock on {rules.show(lease.path)} (taken during the rebase)")
    return 0
