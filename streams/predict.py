"""Conflicts a rebase onto the upstream would hit, predicted without touching any worktree.

``git merge-tree --write-tree`` (git >= 2.38) merges each stream's tip with the upstream tip in
memory. The trees it writes go to a throw-away object directory (``GIT_OBJECT_DIRECTORY``, with the
repository's objects as an alternate), so a prediction adds no object to the repository. A merge is
an approximation of the commit-by-commit rebase: good as an early warning (``status``, ``sync``).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from streams import git
from streams.config import Config
from streams.places import Place, locate
from streams.workspace import Workspace


def predict_conflicts(ws: Workspace, config: Config, names: Sequence[str] = ()) -> dict[str, list[str]]:
    """Stream -> paths that would conflict when rebased onto the upstream (empty list: clean).

    Uses the upstream as last fetched (no network). Streams without a branch are left out; a branch
    that already contains the upstream maps to an empty list without running anything.
    """
    upstream_tip = git.resolve_commit(ws.main_root, config.upstream_ref())
    if upstream_tip is None:
        return {}
    selected = [s.name for s in config.select(tuple(names))]
    return conflicts_with(ws, config, selected, upstream_tip, locate(ws, config, selected))


def conflicts_with(
    ws: Workspace,
    config: Config,
    names: Sequence[str],
    upstream_tip: str,
    places: Mapping[str, Place],
    *,
    on_top: Container[str] | None = None,
) -> dict[str, list[str]]:
    """``predict_conflicts`` for ``names`` against ``upstream_tip``, their places already located.
    ``on_top``: the refs already known to contain ``upstream_tip`` (else one ``for-each-ref
    --contains`` asks)."""
    if on_top is None:
        prefix = config.branch_prefix.rstrip("/")
        on_top = git.ref_oids(ws.main_root, f"refs/heads/{prefix}", contains=upstream_tip)
    result: dict[str, list[str]] = {}
    with ExitStack() as stack:
        scratch: dict[str, str] = {}
        for name in names:
            place = places[name]
            if place.tip is None:
                continue
            if place.ref in on_top:
                result[name] = []
                continue
            if not scratch:  # the merged trees go to a throw-away object dir, not the repository
                import tempfile  # only here: a sync with nothing to predict does without it

                scratch["GIT_OBJECT_DIRECTORY"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="streams-"))
                scratch["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = alternate(ws.common_dir / "objects")
            conflicts = git.merge_tree_conflicts(ws.main_root, upstream_tip, place.tip, scratch)
            if conflicts is not None:
                result[name] = conflicts
    return result


def alternate(path: Path) -> str:
    """``path`` as one entry of ``GIT_ALTERNATE_OBJECT_DIRECTORIES`` (colon-separated; an entry
    that holds a colon or starts with a quote is C-quoted)."""
    text = str(path)
    if ":" not in text and not text.startswith('"'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
