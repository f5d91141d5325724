"""Stream worktrees: start (branch + worktree + progress file), stop, list.

``git worktree add/remove/prune`` are not safe concurrently on one repository, so every change to
the set of worktrees happens under one lock in the common dir.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from streams import git, places
from streams.config import Config, Stream, progress_path
from streams.kernel import locks, paths, reffiles
from streams.kernel.errors import StreamsError, UsageError
from streams.kernel.mutex import held
from streams.kernel.paths import MARKER_FILE
from streams.places import PlaceState
from streams.progress import Progress, render
from streams.state import mark_stopped, read_state, stopped_of
from streams.workspace import Workspace

LOCK_WAIT_SECONDS = 120.0


@contextmanager
def worktree_lock(ws: Workspace, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Serialise worktree creation and removal across processes."""
    path = ws.state_dir / "worktrees.lock"
    with held(
        path,
        timeout=LOCK_WAIT_SECONDS,
        waiting="waiting for another streams process to finish changing worktrees…",
        on_wait=on_wait,
        busy=lambda: StreamsError(
            f"another streams process has held {path} for {LOCK_WAIT_SECONDS:.0f} s; wait for it to finish and retry",
            code="worktree_lock_timeout",
        ),
    ):
        yield


@dataclass(frozen=True)
class StreamState:
    """A configured stream (or a stream worktree streams.yaml no longer names): ``list --json``.

    ======  ===========  ===========================================================================
    field   type         meaning
    ======  ===========  ===========================================================================
    name    str          the stream
    branch  str          its branch, e.g. ``streams/api``
    path    str          its worktree (where it is, or where ``streams start`` would put it)
    state   str          started | not started | branch only | unconfigured (``PlaceState``)
    head    str | null   the tip of its worktree (started) or branch; null: no branch
    ======  ===========  ===========================================================================
    """

    name: str
    branch: str
    path: Path  # the worktree path (configured, or where git says it is)
    state: PlaceState  # started | not started | branch only | unconfigured
    head: str | None


def survey(ws: Workspace, config: Config) -> list[StreamState]:
    """Every configured stream (started or not), plus stream worktrees no longer configured."""
    found = places.locate(ws, config, unconfigured=True)
    result = []
    for p in found.values():
        if p.state == PlaceState.MISSING:  # its directory was deleted by hand: as if not started
            state = PlaceState.BRANCH_ONLY if p.tip else PlaceState.NOT_STARTED
            result.append(StreamState(p.name, p.branch, config.worktree_path(ws.main_root, p.name), state, p.tip))
        elif p.worktree is not None:
            result.append(StreamState(p.name, p.branch, p.worktree, p.state, p.head))
        else:
            result.append(StreamState(p.name, p.branch, p.path, p.state, p.tip))
    return result


# --- start -----------------------------------------------------------------------------------------


class StartOutcome(StrEnum):
    STARTED = "started"
    ALREADY_STARTED = "already started"
    LEFT_STOPPED = "left stopped"  # stopped on purpose: `streams start` with no names leaves it


@dataclass(frozen=True)
class StartResult:
    """A stream ``streams start`` started or found started.

    ==============  ======  ====================================================================
    field           type    meaning
    ==============  ======  ====================================================================
    name            str     the stream
    branch          str     its branch
    path            str     its worktree
    outcome         str     started | already started | left stopped (stopped with
                            ``streams stop``; name it to start it again)
    branch_created  bool    the branch was made from the base (false: an existing one reused)
    head            str     the tip of the worktree
    ==============  ======  ====================================================================
    """

    name: str
    branch: str
    path: Path
    outcome: StartOutcome
    branch_created: bool
    head: str


def start(
    ws: Workspace,
    config: Config,
    names: list[str],
    *,
    on_wait: Callable[[str], None] | None = None,
) -> list[StartResult]:
    """Start ``names`` (every stream not stopped on purpose when empty): a branch from the base's
    tip and a worktree. An existing branch is reused."""
    everyone = config.select(names)
    stopped = stopped_of(read_state(ws))
    left = stopped if not names else {}  # stopped on purpose: started only by name
    streams = tuple(s for s in everyone if s.name not in left)
    base_tip = git.resolve_commit(ws.main_root, config.base_ref())
    if base_tip is None:
        raise StreamsError(
            f"base branch {config.base!r} does not exist (create it, or set `base:` in {config.path.name})",
            code="no_base",
        )
    from streams import hooks_install  # the scope hooks, in the common dir

    hooks_install.require_hooks_run(ws)  # before anything exists: no stream without its hooks
    with worktree_lock(ws, on_wait):
        git.prune_worktrees(ws.main_root)
        by_name = places.stream_worktrees(ws, config)
        refs = [config.branch_ref(s.name) for s in streams]
        tips = git.resolve_many(ws.main_root, refs)
        todo, results = _plan_start(ws, config, by_name, zip(streams, refs, strict=True))

        # Every branch that lacks a progress file gets one commit adding it: all of them made by one
        # `git fast-import` and published by one compare-and-swap ref transaction.
        parents = {
            s.name: tips[ref] or base_tip
            for s, ref, _ in todo
            if tips[ref] is None or not git.has_path(ws.main_root, tips[ref] or "", s.progress_path)
        }
        heads = _progress_commits(ws, parents)
        git.update_refs(
            ws.main_root,
            [(ref, heads[s.name], tips[ref] or git.ZERO_OID) for s, ref, _ in todo if s.name in heads],
            "streams: start",
        )
        for i, (s, ref, path) in enumerate(todo):
            created = tips[ref] is None
            head = heads.get(s.name) or tips[ref] or ""
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                git.add_worktree(ws.main_root, path, config.branch(s.name))
                _write_marker(path, s.name)
            except BaseException:
                _undo_start(ws, path, ref, head if created else None)
                for later, later_ref, _ in todo[i + 1 :]:  # branches made for streams not reached
                    if tips[later_ref] is None:
                        git.delete_ref(ws.main_root, later_ref, heads[later.name], check=False)
                raise
            results[s.name] = StartResult(s.name, config.branch(s.name), path, StartOutcome.STARTED, created, head)
    hooks_install.install(ws)  # idempotent
    if names:
        mark_stopped(ws, [s.name for s in streams if s.name in stopped], stopped=False)
    for s in everyone:
        if s.name in left:
            tip = git.resolve_commit(ws.main_root, config.branch_ref(s.name)) or ""
            path = config.worktree_path(ws.main_root, s.name)
            results[s.name] = StartResult(s.name, config.branch(s.name), path, StartOutcome.LEFT_STOPPED, False, tip)
    return [results[s.name] for s in everyone]


def _plan_start(
    ws: Workspace, config: Config, by_name: dict[str, git.Worktree], wanted: Iterable[tuple[Stream, git.RefName]]
) -> tuple[list[tuple[Stream, git.RefName, Path]], dict[str, StartResult]]:
    """Check everything before changing anything: (the streams to start, with branch ref and
    worktree path; the results of those already started)."""
    todo: list[tuple[Stream, git.RefName, Path]] = []
    results: dict[str, StartResult] = {}
    for s, ref in wanted:
        wt = by_name.get(s.name)
        if wt is not None:
            if wt.path.resolve() == ws.main_root.resolve() or (wt.path / ".git").is_dir():
                raise StreamsError(
                    f"branch {config.branch(s.name)} is checked out in {wt.path}; switch that worktree "
                    "to another branch, then run `streams start` again",
                    code="branch_checked_out",
                )
            _write_marker(wt.path, s.name)
            results[s.name] = StartResult(
                s.name, config.branch(s.name), wt.path, StartOutcome.ALREADY_STARTED, False, wt.head or ""
            )
            continue
        path = config.worktree_path(ws.main_root, s.name)
        blocker = next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), None)
        if blocker is not None and blocker != path and not blocker.is_dir():
            raise StreamsError(
                f"{blocker} is a file, so the worktree {path} cannot be made; move it away "
                "or set `worktree_root:` in streams.yaml",
                code="path_exists",
            )
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise StreamsError(
                f"{path} already exists and is not the worktree of stream {s.name!r}; move it away "
                "or set `worktree_root:` in streams.yaml",
                code="path_exists",
            )
        todo.append((s, ref, path))
    return todo, results


def _progress_commits(ws: Workspace, parents: dict[str, str]) -> dict[str, str]:
    """For each stream, a commit on top of its parent adding its progress file; no ref is moved.

    One ``git fast-import`` makes them all (instead of five plumbing commands a stream).
    """
    if not parents:
        return {}
    author, committer = git.idents(ws.main_root)

    def data(text: str) -> bytes:
        raw = text.encode()
        return b"data %d\n%s\n" % (len(raw), raw)

    names = list(parents)
    scratch = f"{paths.SCRATCH_REFS}/{os.getpid()}"
    stream = [b"feature done\n"]
    for mark, name in enumerate(names, 1):
        stream += [
            f"commit {scratch}\nmark :{mark}\nauthor {author}\ncommitter {committer}\n".encode(),
            data(f"streams: start stream {name}\n"),
            f"from {parents[name]}\nM 100644 inline {progress_path(name)}\n".encode(),
            data(render(Progress.new(name))),
        ]
    stream.append(b"done\n")
    oids = git.fast_import(ws.main_root, b"".join(stream))
    git.delete_ref(ws.main_root, scratch)
    return {name: oids[f":{mark}"] for mark, name in enumerate(names, 1)}


def _write_marker(path: Path, name: str) -> None:
    """Mark a worktree with its stream: a file in the worktree's private git dir."""
    dotgit = path / ".git"
    text = dotgit.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir: "):
        raise StreamsError(f"{dotgit} is not a linked worktree's .git file", code="bad_worktree")
    git_dir = Path(text[len("gitdir: ") :])
    if not git_dir.is_absolute():
        git_dir = (path / git_dir).resolve()
    tmp = git_dir / f".{MARKER_FILE}.tmp"
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, git_dir / MARKER_FILE)


def _undo_start(ws: Workspace, path: Path, ref: str, created_tip: str | None) -> None:
    """Remove what a failed start made: the half-made worktree and the branch it created."""
    if (path / ".git").exists():
        git.remove_worktree(ws.main_root, path, check=False)
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    git.prune_worktrees(ws.main_root, check=False)
    if created_tip is not None:
        git.delete_ref(ws.main_root, ref, created_tip, check=False)


# --- stop ------------------------------------------------------------------------------------------


class StopOutcome(StrEnum):
    STOPPED = "stopped"  # its worktree removed
    NOT_STARTED = "not started"  # it had no worktree


@dataclass(frozen=True)
class StopResult:
    """A stream ``streams stop`` stopped, and what it left behind.

    ==============  ===========  =================================================================
    field           type         meaning
    ==============  ===========  =================================================================
    name            str          the stream
    branch          str          its branch
    path            str | null   the worktree removed; null: it had none
    outcome         str          stopped | not started
    tip             str | null   the branch tip left behind; null: no branch
    branch_deleted  bool         --delete-branch deleted it (``git branch BRANCH TIP`` restores it)
    unmerged        int          commits on the branch that are not on the base
    saved_ref       str | null   where --force saved uncommitted work
    saved_commit    str | null   that commit
    released_locks  [str]        shared files whose leases the stop released
    kept_ignored    [str]        ignored files (``.env``) copied out before the worktree went
    kept_in         str | null   the directory they were copied to (under the common dir)
    ignored_dirs    [str]        wholly ignored directories removed with the worktree (not kept)
    leftovers_in    str | null   where what a killed ``git worktree remove`` had left of the
                                 worktree (its ``.git`` gone, so git could not say what was
                                 committed) was moved, whole (under the common dir)
    ==============  ===========  =================================================================
    """

    name: str
    branch: str
    path: Path | None
    outcome: StopOutcome
    tip: str | None  # the branch tip left behind (None: no branch)
    branch_deleted: bool
    unmerged: int  # commits on the branch that are not on the base
    saved_ref: str | None  # where uncommitted work was saved before a forced stop
    saved_commit: str | None
    released_locks: tuple[str, ...] = ()  # shared files whose leases the stop released
    kept_ignored: tuple[str, ...] = ()  # ignored files copied to kept_in before the removal
    kept_in: str | None = None
    ignored_dirs: tuple[str, ...] = ()  # wholly ignored directories removed (build output, caches)
    leftovers_in: str | None = None  # a half-removed worktree's remains, moved there whole


def compared_ref(config: Config, exists: Container[str]) -> str:
    """The ref a stream's commits are counted against (``streams stop``, the dashboard's AHEAD and
    BEHIND): ``<remote>/<base>`` as last fetched when a remote is set and ``exists`` holds it (what
    sync rebases onto), else the base."""
    up = config.upstream_ref()
    return up if config.remote and up in exists else config.base_ref()


def compared_base(ws: Workspace, config: Config) -> tuple[str, str]:
    """(``compared_ref``, its name as people write it: ``origin/main`` or ``main``)."""
    if config.remote and git.resolve_commit(ws.main_root, config.upstream_ref()) is not None:
        return config.upstream_ref(), config.upstream_name()
    return config.base_ref(), config.base


def unmerged_commits(
    ws: Workspace, config: Config, name: str, *, base: str | None = None, tip: str | None = None
) -> list[git.Oid]:
    """Commits on the stream's branch (or ``tip``) whose changes are not on the base (or ``base``:
    ``compared_base`` by default). ``streams stop`` and the dashboard's AHEAD count these.

    Commits that only touch the stream's own progress file are bookkeeping, and commits whose patch
    is already on the base (cherry-picked or rebased there) count as merged.
    """
    base = base if base is not None else compared_base(ws, config)[0]
    tip = tip if tip is not None else config.branch_ref(name)
    return git.commits_not_on(ws.main_root, base, tip, ignoring=[progress_path(name)])


def _stoppable(ws: Workspace, config: Config, names: list[str]) -> list[str]:
    """``names`` without repeats, each configured or (removed or renamed in streams.yaml since) the
    name of a stream worktree that still exists; any other name fails, naming the known streams."""
    wanted = list(dict.fromkeys(names))
    others = [n for n in wanted if n not in config.names]
    if others:  # only then ask git which stream worktrees exist
        worktrees = places.stream_worktrees(ws, config)
        unknown = [n for n in others if n not in worktrees]
        if unknown:
            config.select(unknown)  # UnknownStreamError naming the known streams
    return wanted


def stop(
    ws: Workspace,
    config: Config,
    names: list[str],
    *,
    force: bool = False,
    delete_branch: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> list[StopResult]:
    if not names:
        raise UsageError("name the streams to stop, e.g. `streams stop api`")
    wanted = _stoppable(ws, config, names)  # before anything is written
    with worktree_lock(ws, on_wait):
        by_name = places.stream_worktrees(ws, config)
        base_ref, base_name = compared_base(ws, config)
        plans = []
        for name in wanted:
            branch = config.branch(name)
            ref = config.branch_ref(name)
            wt = by_name.get(name)
            tip = git.resolve_commit(ws.main_root, ref)
            dirty: list[str] = []
            op = None
            if wt is not None and wt.path.is_dir() and not half_removed(wt.path):
                dirty = git.is_dirty(wt.path)
                op, _ = git.worktree_operation(wt.path)
            unmerged = unmerged_commits(ws, config, name, base=base_ref) if tip is not None else []
            if not force:
                if op is not None:
                    raise StreamsError(
                        f"stream {name!r} has a {op} in progress in {wt.path if wt else ''}; finish or abort it, "
                        "or pass --force (uncommitted work is saved to a ref first)",
                        code="operation_in_progress",
                    )
                if dirty:
                    raise StreamsError(
                        f"stream {name!r} has {len(dirty)} uncommitted change{'s' if len(dirty) != 1 else ''} "
                        f"in {wt.path if wt else ''} (e.g. {dirty[0]}); commit them, or pass --force "
                        "(they are saved to a ref first)",
                        code="dirty",
                    )
                if unmerged and (wt is not None or delete_branch):
                    raise StreamsError(
                        f"branch {branch} has {len(unmerged)} commit{'s' if len(unmerged) != 1 else ''} not on "
                        f"{base_name} (tip {tip[:12] if tip else ''}); merge them first, or pass --force "
                        "(the tip is printed so nothing is lost)",
                        code="unmerged",
                    )
            plans.append((name, branch, ref, wt, tip, dirty, unmerged))

        results = [_stop_one(ws, plan, delete_branch=delete_branch) for plan in plans]
        mark_stopped(ws, [r.name for r in results if r.outcome == StopOutcome.STOPPED], stopped=True)
    return results


def _stop_one(ws: Workspace, plan: tuple[Any, ...], *, delete_branch: bool) -> StopResult:
    """Carry out one checked stop: save uncommitted work, keep ignored files, remove the worktree,
    delete the branch if asked, release the leases."""
    name, branch, ref, wt, tip, dirty, unmerged = plan
    saved_ref = saved_commit = None
    if wt is not None and dirty:
        saved_ref, saved_commit = _save_uncommitted(ws, wt.path, name)
    kept: tuple[str | None, tuple[str, ...], tuple[str, ...]] = (None, (), ())
    leftovers = None
    if wt is not None and half_removed(wt.path):
        leftovers = keep_leftovers(ws, wt.path, name)
        git.prune_worktrees(ws.main_root)  # its record points to a .git that is gone: git forgets it
    elif wt is not None:
        kept = keep_ignored(ws, wt.path, name)  # `git worktree remove` deletes them without a word
        git.remove_worktree(ws.main_root, wt.path, even_locked=True)
    deleted = False
    if delete_branch and tip is not None:
        git.delete_ref(ws.main_root, ref, tip, message="streams: stop --delete-branch")
        deleted = True
    return StopResult(
        name,
        branch,
        wt.path if wt is not None else None,
        StopOutcome.STOPPED if wt is not None else StopOutcome.NOT_STARTED,
        tip,
        deleted,
        len(unmerged),
        saved_ref,
        saved_commit,
        tuple(lease.path for lease in locks.release_stream(ws.common_dir, name)),
        kept[1],
        kept[0],
        kept[2],
        leftovers,
    )


def remove_landed(
    ws: Workspace, config: Config, name: str, path: Path, tip: str, *, landed: str, message: str
) -> bool | None:
    """Stop a stream `streams merge` has just landed, whose worktree is at ``path`` and branch at
    ``tip``, without ``stop``'s other re-checks (the merge queue found it clean a moment ago): one
    ``git status`` says whether it is still clean and which files are ignored; those are kept, the
    worktree removed, then one transaction creates ``landed`` (the tip kept) and deletes the branch
    while it is still at ``tip``. True when all that was done; False when the worktree went but the
    branch had moved in the meantime (it stays, with its new commits; ``landed`` is made alone);
    None, with nothing removed or created, when something was written there since or the branch
    moved before: the caller stops it the careful way (``stop --force`` saves uncommitted work first)."""
    if not path.is_dir() or half_removed(path):
        return None  # a killed removal's leftovers: the careful way keeps them (``stop``)
    branch = config.branch_ref(name)
    with worktree_lock(ws):
        if reffiles.read_ref(str(ws.common_dir), branch) != tip:
            return None
        entries = git.status(path, submodules="none", ignored=True)
        if any(e.kind != "!" for e in entries):
            return None
        keep_ignored(ws, path, name, found=[e.path for e in entries])
        git.remove_worktree(ws.main_root, path, even_locked=True)
        # A crash from here until the transaction below leaves the branch at the landed tip with no
        # worktree: `streams merge`'s recovery finishes the landing, as after any crash past landing.
        at_tip = git.create_ref_while(
            ws.main_root, landed, tip, other=branch, at=tip, message=message, delete_other=True
        )
        if not at_tip:
            git.update_ref(ws.main_root, landed, tip, git.ZERO_OID, message)
        locks.release_stream(ws.common_dir, name)
        mark_stopped(ws, [name], stopped=True)
    return at_tip


def half_removed(path: Path) -> bool:
    """A worktree's directory whose ``.git`` is gone: a ``git worktree remove`` killed while it
    deleted the directory (the files, ``.git`` among them, then its own record). git can neither
    read nor remove it (`validation failed`) and lists it as prunable."""
    return path.is_dir() and not os.path.lexists(path / ".git")


def keep_leftovers(ws: Workspace, path: Path, name: str) -> str | None:
    """Move what a killed ``git worktree remove`` left of the worktree at ``path`` (``half_removed``)
    to ``<common>/streams/kept/<name>/<time>-leftovers/``: without its ``.git`` no git can say
    whether a file there was committed, so none is deleted. Returns that directory (None: there
    was no file left, and the empty directories are removed)."""
    import shutil

    if not any(names for _folder, _dirs, names in os.walk(path)):
        shutil.rmtree(path)
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = Path(paths.state_dir(ws.common_dir)) / "kept" / name / f"{stamp}-leftovers"
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, dest)
    except OSError:  # another file system
        shutil.copytree(path, dest, symlinks=True)
        shutil.rmtree(path)
    return str(dest)


def keep_ignored(
    ws: Workspace, path: Path, name: str, *, found: Sequence[str] | None = None
) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    """Copy the ignored files of the worktree at ``path`` (an ``.env``: in no commit, so removing the
    worktree would lose it) to ``<common>/streams/kept/<name>/<time>/``, before it is removed.
    ``found``: its ignored files and directories (``/`` at the end) when the caller has listed them.
    Returns (that directory or None, the files kept, the wholly ignored directories, not kept)."""
    import shutil

    if not path.is_dir():
        return None, (), ()
    found = git.ignored_paths(path) if found is None else found
    files = tuple(p for p in found if not p.endswith("/"))
    dirs = tuple(p for p in found if p.endswith("/"))
    if not files:
        return None, (), dirs
    dest = Path(paths.state_dir(ws.common_dir)) / "kept" / name / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path / rel, dest / rel, follow_symlinks=False)
    return str(dest), files, dirs


def _save_uncommitted(ws: Workspace, path: Path, name: str) -> tuple[str, str]:
    return save_uncommitted(ws, path, name, "at stop", f"streams: stop {name} --force")


def save_uncommitted(ws: Workspace, path: Path, name: str, when: str, why: str) -> tuple[str, str]:
    """Snapshot every uncommitted change (staged, unstaged, untracked) in the worktree at ``path`` as
    a commit on top of HEAD kept under ``refs/streams/saved/<name>/<time>``. Returns (ref, commit)."""
    head = git.resolve_commit(path, "HEAD")
    tree = git.worktree_tree(path, from_head=bool(head))
    commit = git.commit_tree(path, tree, [head] if head else [], f"streams: uncommitted work of {name} {when}\n")
    return save_ref(ws, name, commit, why), commit


def save_ref(ws: Workspace, name: str, commit: str, why: str) -> str:
    """Keep ``commit`` under a new ``refs/streams/saved/<name>/<time>`` (never overwriting one); returns it."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    ref = paths.saved_ref(name, stamp)
    git.update_ref(ws.main_root, ref, commit, git.ZERO_OID, why)
    return ref
