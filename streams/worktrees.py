"""Stream worktrees: start (branch + worktree + progress file), stop, list.

``git worktree add/remove/prune`` are not safe concurrently on one repository, so every change to
the set of worktrees happens under one lock in the common dir.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from streams import git, locks
from streams.config import PROGRESS_DIR, Config, Stream
from streams.errors import StreamsError, UsageError
from streams.progress import Progress, render
from streams.workspace import MARKER_FILE, Workspace, read_marker

LOCK_WAIT_SECONDS = 120.0


@contextmanager
def worktree_lock(ws: Workspace, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Serialise worktree creation and removal across processes."""
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(ws.state_dir / "worktrees.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait("waiting for another streams process to finish changing worktrees…")
        try:
            lock.acquire(timeout=LOCK_WAIT_SECONDS)
        except Timeout:
            raise StreamsError(
                f"another streams process has held {ws.state_dir / 'worktrees.lock'} for "
                f"{LOCK_WAIT_SECONDS:.0f} s; wait for it to finish and retry",
                code="worktree_lock_timeout",
            ) from None
    try:
        yield
    finally:
        lock.release()


@dataclass(frozen=True)
class StreamState:
    name: str
    branch: str
    path: Path  # the worktree path (configured, or where git says it is)
    state: str  # "started" | "not started" | "branch only" | "unconfigured"
    head: str | None


def stream_worktrees(ws: Workspace, config: Config) -> dict[str, git.Worktree]:
    """Each stream's worktree: found by its branch or, while detached (a rebase stopped on a
    conflict, a checkout of a commit), by the stream marker in its git dir."""
    prefix = f"refs/heads/{config.branch_prefix}"
    result: dict[str, git.Worktree] = {}
    for w in git.worktrees(ws.main_root):
        if w.branch and w.branch.startswith(prefix):
            result.setdefault(w.branch[len(prefix) :], w)
        elif w.detached and (name := _marker_of(w.path)) is not None:
            result.setdefault(name, w)
    return result


def _marker_of(path: Path) -> str | None:
    git_dir = git.worktree_git_dir(path)
    return read_marker(git_dir) if git_dir is not None else None


def survey(ws: Workspace, config: Config) -> list[StreamState]:
    """Every configured stream (started or not), plus stream worktrees no longer configured."""
    by_name = stream_worktrees(ws, config)
    refs = [f"refs/heads/{config.branch(s.name)}" for s in config.streams]
    tips = git.resolve_many(ws.toplevel, refs)
    result = []
    for s, ref in zip(config.streams, refs, strict=True):
        wt = by_name.get(s.name)
        if wt is not None and not wt.prunable:  # prunable: its directory was deleted by hand
            result.append(StreamState(s.name, config.branch(s.name), wt.path, "started", wt.head))
        else:
            result.append(
                StreamState(
                    s.name,
                    config.branch(s.name),
                    config.worktree_path(ws.main_root, s.name),
                    "branch only" if tips[ref] else "not started",
                    tips[ref],
                )
            )
    for name, wt in by_name.items():
        if name not in config.names:
            result.append(StreamState(name, config.branch(name), wt.path, "unconfigured", wt.head))
    return result


# --- start -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartResult:
    name: str
    branch: str
    path: Path
    outcome: str  # "started" | "already started"
    branch_created: bool
    head: str


def start(
    ws: Workspace,
    config: Config,
    names: list[str],
    *,
    on_wait: Callable[[str], None] | None = None,
) -> list[StartResult]:
    streams = config.select(names)
    base_tip = git.resolve_commit(ws.main_root, f"refs/heads/{config.base}")
    if base_tip is None:
        raise StreamsError(
            f"base branch {config.base!r} does not exist (create it, or set `base:` in {config.path.name})",
            code="no_base",
        )
    with worktree_lock(ws, on_wait):
        git.run("worktree", "prune", cwd=ws.main_root)
        by_name = stream_worktrees(ws, config)
        refs = [f"refs/heads/{config.branch(s.name)}" for s in streams]
        tips = git.resolve_many(ws.main_root, refs)

        # Check everything before changing anything.
        todo: list[tuple[Stream, str, Path]] = []
        results: dict[str, StartResult] = {}
        for s, ref in zip(streams, refs, strict=True):
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
                    s.name, config.branch(s.name), wt.path, "already started", False, wt.head or ""
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

        root_entries = git.ls_tree(ws.main_root, base_tip) if todo else []
        for s, ref, path in todo:
            tip = tips[ref]
            created = tip is None
            if created:
                head = _commit_progress(ws, root_entries, base_tip, s.name)
                git.update_ref(ws.main_root, ref, head, git.ZERO_OID, f"streams: start {s.name}")
            else:
                assert tip is not None
                head = tip
                if not git.has_path(ws.main_root, tip, s.progress_path):
                    head = _commit_progress(ws, git.ls_tree(ws.main_root, tip), tip, s.name)
                    git.update_ref(ws.main_root, ref, head, tip, f"streams: start {s.name}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                git.run("worktree", "add", "--quiet", str(path), config.branch(s.name), cwd=ws.main_root)
                _write_marker(path, s.name)
            except BaseException:
                _undo_start(ws, path, ref, head if created else None)
                raise
            results[s.name] = StartResult(s.name, config.branch(s.name), path, "started", created, head)
    from streams import hooks_install  # the scope hooks, in the common dir (idempotent)

    hooks_install.install(ws)
    return [results[s.name] for s in streams]


def _commit_progress(ws: Workspace, root: list[git.TreeEntry], parent: str, name: str) -> str:
    """A commit on top of ``parent`` adding the stream's progress file, built without a worktree."""
    blob = git.hash_blob(ws.main_root, render(Progress.new(name)).encode())
    filename = f"stream-{name}.md"
    sub = next((e for e in root if e.name == PROGRESS_DIR and e.type == "tree"), None)
    sub_entries = [e for e in git.ls_tree(ws.main_root, sub.oid)] if sub else []
    sub_entries = [e for e in sub_entries if e.name != filename]
    sub_entries.append(git.TreeEntry("100644", "blob", blob, filename))
    sub_oid = git.mktree(ws.main_root, sub_entries)
    new_root = [e for e in root if e.name != PROGRESS_DIR]
    new_root.append(git.TreeEntry("040000", "tree", sub_oid, PROGRESS_DIR))
    tree = git.mktree(ws.main_root, new_root)
    return git.commit_tree(ws.main_root, tree, [parent], f"streams: start stream {name}\n")


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
        git.run("worktree", "remove", "--force", str(path), cwd=ws.main_root, check=False)
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    git.run("worktree", "prune", cwd=ws.main_root, check=False)
    if created_tip is not None:
        git.run("update-ref", "-d", ref, created_tip, cwd=ws.main_root, check=False)


# --- stop ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StopResult:
    name: str
    branch: str
    path: Path | None
    outcome: str  # "stopped" | "not started"
    tip: str | None  # the branch tip left behind (None: no branch)
    branch_deleted: bool
    unmerged: int  # commits on the branch that are not on the base
    saved_ref: str | None  # where uncommitted work was saved before a forced stop
    saved_commit: str | None
    released_locks: tuple[str, ...] = ()  # shared files whose leases the stop released


def unmerged_commits(ws: Workspace, config: Config, name: str) -> list[str]:
    """Commits on the stream's branch whose changes are not on the base.

    Commits that only touch the stream's own progress file are bookkeeping, and commits whose patch
    is already on the base (cherry-picked or rebased there) count as merged.
    """
    branch = config.branch(name)
    res = git.run(
        "rev-list",
        "--right-only",
        "--cherry-pick",
        "--no-merges",
        f"refs/heads/{config.base}...refs/heads/{branch}",
        "--",
        ".",
        f":(exclude){PROGRESS_DIR}/stream-{name}.md",
        cwd=ws.main_root,
    )
    return res.text.split()


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
    streams = config.select(names)
    with worktree_lock(ws, on_wait):
        by_name = stream_worktrees(ws, config)
        plans = []
        for s in streams:
            branch = config.branch(s.name)
            ref = f"refs/heads/{branch}"
            wt = by_name.get(s.name)
            tip = git.resolve_commit(ws.main_root, ref)
            dirty: list[str] = []
            op = None
            if wt is not None and wt.path.is_dir():
                dirty = git.is_dirty(wt.path)
                git_dir = git.worktree_git_dir(wt.path)
                op = git.operation_in_progress(git_dir) if git_dir is not None else None
            unmerged = unmerged_commits(ws, config, s.name) if tip is not None else []
            if not force:
                if op is not None:
                    raise StreamsError(
                        f"stream {s.name!r} has a {op} in progress in {wt.path if wt else ''}; finish or abort it, "
                        "or pass --force (uncommitted work is saved to a ref first)",
                        code="operation_in_progress",
                    )
                if dirty:
                    raise StreamsError(
                        f"stream {s.name!r} has {len(dirty)} uncommitted change{'s' if len(dirty) != 1 else ''} "
                        f"in {wt.path if wt else ''} (e.g. {dirty[0]}); commit them, or pass --force "
                        "(they are saved to a ref first)",
                        code="dirty",
                    )
                if unmerged and (wt is not None or delete_branch):
                    raise StreamsError(
                        f"branch {branch} has {len(unmerged)} commit{'s' if len(unmerged) != 1 else ''} not on "
                        f"{config.base} (tip {tip[:12] if tip else ''}); merge them first, or pass --force "
                        "(the tip is printed so nothing is lost)",
                        code="unmerged",
                    )
            plans.append((s, branch, ref, wt, tip, dirty, unmerged))

        results = []
        for s, branch, ref, wt, tip, dirty, unmerged in plans:
            saved_ref = saved_commit = None
            if wt is not None and dirty:
                saved_ref, saved_commit = _save_uncommitted(ws, wt.path, s.name)
            if wt is not None:
                git.run("worktree", "remove", "--force", "--force", str(wt.path), cwd=ws.main_root)
            deleted = False
            if delete_branch and tip is not None:
                git.run("update-ref", "-m", "streams: stop --delete-branch", "-d", ref, tip, cwd=ws.main_root)
                deleted = True
            results.append(
                StopResult(
                    s.name,
                    branch,
                    wt.path if wt is not None else None,
                    "stopped" if wt is not None else "not started",
                    tip,
                    deleted,
                    len(unmerged),
                    saved_ref,
                    saved_commit,
                    tuple(lease.path for lease in locks.release_stream(ws.common_dir, s.name)),
                )
            )
    return results


def _save_uncommitted(ws: Workspace, path: Path, name: str) -> tuple[str, str]:
    """Snapshot every uncommitted change (staged, unstaged, untracked) as a commit kept under a ref."""
    with tempfile.TemporaryDirectory(prefix="streams-save-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        head = git.resolve_commit(path, "HEAD")
        if head:
            git.run("read-tree", "HEAD", cwd=path, env=env)
        git.run("add", "-A", "--", ".", cwd=path, env=env)
        tree = git.out("write-tree", cwd=path, env=env)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    commit = git.commit_tree(path, tree, [head] if head else [], f"streams: uncommitted work of {name} at stop\n")
    ref = f"refs/streams/saved/{name}/{stamp}"
    git.update_ref(ws.main_root, ref, commit, git.ZERO_OID, f"streams: stop {name} --force")
    return ref, commit
