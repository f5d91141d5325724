"""Where each stream is now: its branch, tip, worktree, git dir and state. ONE ``locate``.

A stream's worktree is the one that has its branch checked out; while a rebase runs there (HEAD
detached) the rebase's ``head-name`` says which branch it rebases; a worktree detached otherwise (a
killed rebase, a checkout of a commit) is known by the stream marker in its git dir
(``kernel.paths.MARKER_FILE``). ``start``/``list``, ``status``, ``sync`` and ``progress`` all ask here.

``linked_worktrees`` reads the common dir alone (no git process), for the file watchers that must
follow worktrees as they come and go.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from streams import git
from streams.config import Config
from streams.git import Oid, RefName
from streams.kernel.paths import read_marker
from streams.workspace import Workspace


class PlaceState(StrEnum):
    """Where a stream is (``list --json``'s and ``status --json``'s ``state``)."""

    STARTED = "started"  # its worktree exists
    NOT_STARTED = "not started"  # no branch, no worktree
    BRANCH_ONLY = "branch only"  # a branch, no worktree
    MISSING = "missing"  # git lists a worktree whose directory is gone
    UNCONFIGURED = "unconfigured"  # a stream worktree that streams.yaml no longer names
    LANDED = "landed"  # no branch, no worktree: `streams merge` landed it (status only)


@dataclass(frozen=True)
class Place:
    """Where one stream is right now, as git says."""

    name: str
    branch: str  # e.g. streams/api
    ref: RefName  # refs/heads/streams/api
    state: PlaceState
    path: Path  # its worktree: where git says it is, else where `streams start` puts it
    tip: Oid | None  # the branch's tip
    remote_tip: Oid | None = None  # refs/remotes/<remote>/<branch>, as last fetched
    worktree: Path | None = None  # set when the worktree exists (started, unconfigured)
    git_dir: Path | None = None  # that worktree's private git dir
    head: Oid | None = None  # the worktree's HEAD (mid-rebase not the branch tip)
    rebasing: bool = False  # a rebase is in progress in the worktree
    detached: bool = False  # HEAD detached with no rebase in progress (e.g. a killed rebase)


@dataclass(frozen=True)
class _Found:
    tree: git.Worktree
    git_dir: Path | None
    rebasing: bool
    usable: bool  # its directory and git dir exist


def _stream_worktrees(ws: Workspace, config: Config, listed: Sequence[git.Worktree] | None = None) -> dict[str, _Found]:
    """Each stream's worktree by stream name (the first one git lists wins); ``listed``: git's list
    when the caller has just read it."""
    prefix = f"refs/heads/{config.branch_prefix}"
    found: dict[str, _Found] = {}
    for w in git.worktrees(ws.main_root) if listed is None else listed:
        if w.bare:
            continue
        git_dir = git.worktree_git_dir(w.path) if w.path.is_dir() else None
        rebase_dir = git.rebase_dir(git_dir) if git_dir is not None else None
        ref = w.branch
        if ref is None and rebase_dir is not None:  # HEAD is detached while a rebase runs
            ref = git.read_small(rebase_dir / "head-name")
        name: str | None = None
        if ref and ref.startswith(prefix):
            name = ref[len(prefix) :]
        elif not ref and git_dir is not None:
            name = read_marker(git_dir)
        if name and name not in found:
            usable = git_dir is not None and not w.prunable
            found[name] = _Found(w, git_dir, rebase_dir is not None, usable)
    return found


def stream_worktrees(ws: Workspace, config: Config) -> dict[str, git.Worktree]:
    """Each stream's worktree as ``git worktree list`` gives it (prunable ones included)."""
    return {name: f.tree for name, f in _stream_worktrees(ws, config).items()}


def locate(
    ws: Workspace,
    config: Config,
    names: Sequence[str] | None = None,
    *,
    unconfigured: bool = False,
    tips: Mapping[str, str] | None = None,
    listed: Sequence[git.Worktree] | None = None,
) -> dict[str, Place]:
    """Where each configured stream (or each of ``names``, in that order) is; with ``unconfigured``
    also the stream worktrees streams.yaml no longer names. ``tips`` (``{ref: oid}``) saves the
    ``for-each-ref`` when the caller has just read the stream refs, ``listed`` (``git.worktrees``)
    the ``git worktree list``."""
    wanted = list(names) if names is not None else list(config.names)
    trees = _stream_worktrees(ws, config, listed)
    if tips is None:
        prefix = config.branch_prefix.rstrip("/")
        patterns = [f"refs/heads/{prefix}"] + ([f"refs/remotes/{config.remote}/{prefix}"] if config.remote else [])
        tips = git.ref_oids(ws.main_root, *patterns)
    places = {name: _place(ws, config, name, trees.get(name), tips) for name in wanted}
    if unconfigured and names is None:
        for name, f in sorted(trees.items()):
            if name not in config.names and f.usable:
                branch = f.tree.branch.removeprefix("refs/heads/") if f.tree.branch else config.branch(name)
                ref = RefName(f"refs/heads/{branch}")
                tip = tips.get(ref)
                places[name] = Place(
                    name, branch, ref, PlaceState.UNCONFIGURED, f.tree.path, Oid(tip) if tip else None,
                    worktree=f.tree.path, git_dir=f.git_dir, head=_oid(f.tree.head), rebasing=f.rebasing,
                )  # fmt: skip
    return places


def _oid(value: str | None) -> Oid | None:
    return Oid(value) if value else None


def _place(ws: Workspace, config: Config, name: str, f: _Found | None, tips: Mapping[str, str]) -> Place:
    ref = config.branch_ref(name)
    tip = _oid(tips.get(ref))
    remote_ref = config.remote_branch_ref(name)
    remote_tip = _oid(tips.get(remote_ref)) if remote_ref else None
    branch = config.branch(name)
    if f is None:
        state = PlaceState.BRANCH_ONLY if tip is not None else PlaceState.NOT_STARTED
        return Place(name, branch, ref, state, config.worktree_path(ws.main_root, name), tip, remote_tip)
    if not f.usable:
        return Place(name, branch, ref, PlaceState.MISSING, f.tree.path, tip, remote_tip)
    return Place(
        name,
        branch,
        ref,
        PlaceState.STARTED,
        f.tree.path,
        tip,
        remote_tip,
        worktree=f.tree.path,
        git_dir=f.git_dir,
        head=_oid(f.tree.head),
        rebasing=f.rebasing,
        detached=f.tree.branch is None and not f.rebasing,
    )


@dataclass(frozen=True)
class LinkedWorktree:
    """A linked worktree as the common dir records it (``<common>/worktrees/<id>/``)."""

    id: str  # the name of its private git dir under <common>/worktrees/
    root: Path  # the top of the worktree (its gitdir file points at <root>/.git)
    git_dir: Path  # <common>/worktrees/<id>
    stream: str | None  # the stream whose marker its git dir holds, if any


def linked_worktrees(common_dir: Path) -> list[LinkedWorktree]:
    """Every linked worktree whose directory exists, read from ``<common>/worktrees`` (no git process)."""
    found: list[LinkedWorktree] = []
    try:
        entries = sorted(os.scandir(common_dir / "worktrees"), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        git_dir = Path(entry.path)
        try:
            dotgit = (git_dir / "gitdir").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        root = Path(os.path.dirname(os.path.normpath(dotgit)))
        if root.is_dir():
            found.append(LinkedWorktree(entry.name, root, git_dir, read_marker(git_dir)))
    return found
