"""git's questions about one agent's attempt: its uncommitted work saved as a commit through a
temporary index (never ``git stash``, whose ``refs/stash`` every worktree shares), that work put
back to HEAD, and the size of what its commits changed.

The temporary index is the worktree's own index copied (stat data and all, so ``git add -A``
re-reads only the files that changed), or HEAD's tree when the worktree has no index. git locks
``$GIT_INDEX_FILE.lock``, so none of this ever takes (or, killed, leaves) the worktree's
``index.lock``: an agent committing meanwhile never sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from streams.git import door
from streams.kernel.errors import GitError

__all__ = [
    "added_lines",
    "diff_numstat",
    "head_or_none",
    "reset_to_head",
    "snapshot_tree",
    "tree_of",
    "tree_paths_changed",
    "wip_commit",
]

# Who a WIP commit is by when git knows no identity here (an agent's machine may have none): the
# snapshot must not fail for want of a name.
WIP_IDENT = {
    "GIT_AUTHOR_NAME": "streams",
    "GIT_AUTHOR_EMAIL": "streams@localhost",
    "GIT_COMMITTER_NAME": "streams",
    "GIT_COMMITTER_EMAIL": "streams@localhost",
}


def head_or_none(worktree: Path) -> door.Oid | None:
    """The commit HEAD names in ``worktree``, or None when the branch has no commit yet."""
    res = door.run("rev-parse", "-q", "--verify", "HEAD^{commit}", cwd=worktree, check=False, optional_locks=False)
    return door.Oid(res.text.strip()) if res.returncode == 0 else None


def tree_of(cwd: Path, commit: str) -> door.Oid:
    """The tree of ``commit``."""
    return door.Oid(door.out("rev-parse", "--verify", f"{commit}^{{tree}}", cwd=cwd))


def snapshot_tree(worktree: Path) -> door.Oid:
    """A tree of everything in ``worktree`` now: tracked changes (staged or not), deletions, and
    untracked files that are not ignored; written through a temporary index seeded from the
    worktree's own (copied) or from HEAD's tree. The worktree's index, files and refs are untouched."""
    import shutil  # here, not at the top: every command imports this package, few snapshot
    import tempfile

    git_index = Path(door.out("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=worktree))
    with tempfile.TemporaryDirectory(prefix="streams-wip-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            shutil.copy2(git_index, index)  # mtime kept: git's racy-entry check stays exact
        except FileNotFoundError:
            if head_or_none(worktree) is not None:
                door.run("read-tree", "HEAD", cwd=worktree, env=env)
        # A seed git refuses (an unmerged index copied mid-merge) is replaced by HEAD's tree.
        res = door.run("add", "-A", "--", ".", cwd=worktree, env=env, check=False)
        if res.returncode != 0:
            index.unlink(missing_ok=True)
            door.run("read-tree", "HEAD", cwd=worktree, env=env)
            door.run("add", "-A", "--", ".", cwd=worktree, env=env)
        return door.Oid(door.out("write-tree", cwd=worktree, env=env))


def wip_commit(worktree: Path, tree: str, parent: str, message: str) -> door.Oid:
    """A commit of ``tree`` on ``parent`` (``commit-tree``: no hook runs, no ref moves), by the
    configured identity or, when git knows none here, by ``streams``."""
    res = door.run("commit-tree", tree, "-p", parent, cwd=worktree, input=message.encode(), check=False)
    if res.returncode != 0 and "ident" in res.stderr.decode("utf-8", "replace").lower():
        res = door.run("commit-tree", tree, "-p", parent, cwd=worktree, input=message.encode(), env=WIP_IDENT)
    elif res.returncode != 0:
        raise GitError(("git", "commit-tree", tree, "-p", parent), res.returncode, res.stdout, res.stderr)
    return door.Oid(res.text.strip())


def tree_paths_changed(cwd: Path, old: str, new: str) -> list[str]:
    """The paths that differ between two trees (or commits), recursively, renames as two paths."""
    res = door.run("diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new, cwd=cwd)
    return door.split_z(res.stdout)


def reset_to_head(worktree: Path) -> None:
    """Index and tracked files back to HEAD (``read-tree --reset -u``: files staged as new are
    removed, no ref moves so no hook runs), then untracked files that are not ignored removed
    (``clean -f -d``; ignored files stay)."""
    door.run("read-tree", "--reset", "-u", "HEAD", cwd=worktree)
    door.run("clean", "-q", "-f", "-d", cwd=worktree)


def diff_numstat(cwd: Path, old: str, new: str, *, leave_out: Sequence[str] = ()) -> list[tuple[int, int, str]]:
    """``(insertions, deletions, path)`` per file changed between ``old`` and ``new`` (a binary
    file counts 0 and 0), without renames, the paths in ``leave_out`` left out."""
    specs = [f":(exclude,literal){p}" for p in leave_out]
    res = door.run("diff-tree", "-r", "--numstat", "-z", "--no-renames", old, new, "--", ".", *specs, cwd=cwd)
    found: list[tuple[int, int, str]] = []
    for record in res.stdout.split(b"\0"):
        if not record:
            continue
        added, deleted, path = record.split(b"\t", 2)
        found.append((_count(added), _count(deleted), path.decode("utf-8", "surrogateescape")))
    return found


def _count(field: bytes) -> int:
    return int(field) if field.isdigit() else 0


def added_lines(
    cwd: Path, old: str, new: str, *, leave_out: Sequence[str] = (), limit: int = 4_000_000
) -> list[tuple[str, str]]:
    """``(path, line)`` for every line added between ``old`` and ``new`` (``diff-tree -p -U0``,
    without renames, binary files and the paths in ``leave_out`` left out); a patch longer than
    ``limit`` bytes is read up to there."""
    specs = [f":(exclude,literal){p}" for p in leave_out]
    res = door.run(
        "-c", "core.quotePath=false", "diff-tree", "-r", "-p", "-U0", "--no-renames", "--no-color",
        old, new, "--", ".", *specs, cwd=cwd,
    )  # fmt: skip
    found: list[tuple[str, str]] = []
    path = ""
    for raw in res.stdout[:limit].split(b"\n"):
        if raw.startswith(b"+++ "):
            name = raw[4:].decode("utf-8", "surrogateescape")
            path = name[2:] if name.startswith("b/") else name.strip('"').removeprefix("b/")
        elif raw.startswith(b"+") and path:
            found.append((path, raw[1:].decode("utf-8", "replace")))
        elif raw.startswith(b"diff --git "):
            path = ""
    return found
