"""git's questions about one worktree: the worktree list, status, the index and commits made there,
its state read from its files, a rebase in it, and the lock files a killed git leaves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from streams.git import door
from streams.kernel import gitparse
from streams.kernel.errors import GitError

__all__ = [
    "StatusEntry",
    "Worktree",
    "add_detached_worktree",
    "add_intent_to_add",
    "add_worktree",
    "checkout_detached",
    "cherry_pick",
    "commit_only",
    "differs_from_head",
    "discard_changes",
    "fetch_lock_files",
    "forget_in_index",
    "hash_files",
    "ignored_paths",
    "is_dirty",
    "merge_squash",
    "object_ids",
    "operation_in_progress",
    "prune_worktrees",
    "read_small",
    "rebase",
    "rebase_abort",
    "rebase_continue",
    "rebase_dir",
    "remove_worktree",
    "reset_keep",
    "stale_lock_files",
    "status",
    "switch",
    "tracked_files",
    "unmerged_paths",
    "untracked_files",
    "worktree_git_dir",
    "worktree_operation",
    "worktree_tree",
    "worktrees",
    "write_tree",
]


# --- worktrees ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Worktree:
    """One entry of ``git worktree list --porcelain``."""

    path: Path
    head: str | None
    branch: str | None  # full ref name, e.g. refs/heads/streams/api
    bare: bool = False
    detached: bool = False
    locked: bool = False
    prunable: bool = False


def worktrees(cwd: Path) -> list[Worktree]:
    """Every worktree of the repository (``git worktree list --porcelain -z``), the main one first."""
    res = door.run("worktree", "list", "--porcelain", "-z", cwd=cwd)
    return [
        Worktree(
            path=Path(f["worktree"]),
            head=f.get("HEAD"),
            branch=f.get("branch"),
            bare="bare" in f,
            detached="detached" in f,
            locked="locked" in f,
            prunable="prunable" in f,
        )
        for f in gitparse.parse_worktree_list(res.stdout)
    ]


def add_worktree(cwd: Path, path: Path, branch: str) -> None:
    """Check out ``branch`` (its short name: a full ref would detach HEAD) in a new worktree at ``path``."""
    door.run("worktree", "add", "--quiet", str(path), branch, cwd=cwd)


def add_detached_worktree(cwd: Path, path: Path, commit: str) -> None:
    """A new worktree at ``path`` with ``commit`` checked out detached, locked against pruning."""
    door.run("worktree", "add", "--detach", "--lock", "--quiet", str(path), commit, cwd=cwd)


def checkout_detached(worktree: Path, commit: str) -> None:
    """``commit`` checked out detached in ``worktree``, whatever was there (the files are throw-away)."""
    door.run("checkout", "--quiet", "--force", "--detach", commit, cwd=worktree)
    door.run("clean", "-q", "-f", "-d", "-x", cwd=worktree)


def cherry_pick(worktree: Path, commit: str, *, leave_out: str) -> list[str]:
    """Apply ``commit`` onto HEAD as a new commit with its author and message, ``leave_out`` (a
    path) kept as HEAD has it: [] when done; else the conflicted paths, the worktree put back."""
    res = door.run_unpiped("cherry-pick", "--no-commit", commit, cwd=worktree)
    unmerged = list(unmerged_paths(worktree))
    if res.returncode != 0 and (not unmerged or set(unmerged) - {leave_out}):
        door.run("cherry-pick", "--abort", cwd=worktree, check=False)
        door.run("reset", "-q", "--hard", "HEAD", cwd=worktree, check=False)
        return unmerged or [res.first_error()]
    if door.run("cat-file", "-e", f"HEAD:{leave_out}", cwd=worktree, check=False).returncode == 0:
        door.run("checkout", "HEAD", "--", leave_out, cwd=worktree)
    else:
        door.run("rm", "-q", "-f", "--ignore-unmatch", "--", leave_out, cwd=worktree)
    door.run("commit", "-q", "--allow-empty", "--no-verify", "-C", commit, cwd=worktree)
    door.run("cherry-pick", "--quit", cwd=worktree, check=False)
    return []


def merge_squash(worktree: Path, commit: str) -> list[str]:
    """``git merge --squash --no-commit commit`` onto HEAD: the conflicted paths ([] when clean),
    left in the worktree and its index for a human to resolve."""
    door.run_unpiped("merge", "--squash", "--no-commit", commit, cwd=worktree)
    return list(unmerged_paths(worktree))


def write_tree(worktree: Path) -> str:
    """The tree the worktree's index holds (``git write-tree``)."""
    return door.out("write-tree", cwd=worktree)


def discard_changes(worktree: Path) -> None:
    """Back to HEAD: index, files and untracked files (a throw-away worktree, never an agent's)."""
    door.run("merge", "--abort", cwd=worktree, check=False)
    door.run("reset", "-q", "--hard", "HEAD", cwd=worktree)
    door.run("clean", "-q", "-f", "-d", "-x", cwd=worktree)


def remove_worktree(cwd: Path, path: Path, *, even_locked: bool = False, check: bool = True) -> None:
    """Remove the worktree at ``path``, uncommitted changes and all (``--force``; twice with
    ``even_locked``). ``check=False``: best effort."""
    door.run("worktree", "remove", "--force", *(("--force",) if even_locked else ()), str(path), cwd=cwd, check=check)


def ignored_paths(cwd: Path) -> list[str]:
    """The ignored files in the worktree at ``cwd``; a wholly ignored directory is one entry
    ending in ``/`` (``git ls-files --others --ignored --exclude-standard --directory``)."""
    return door.split_z(
        door.run("ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory", cwd=cwd).stdout
    )


def prune_worktrees(cwd: Path, *, check: bool = True) -> None:
    """Forget worktrees whose directories are gone (``git worktree prune``)."""
    door.run("worktree", "prune", cwd=cwd, check=check)


class StatusEntry(NamedTuple):
    """One path of ``git status --porcelain=v2`` (``gitparse.parse_status``)."""

    kind: str  # "1" changed, "2" renamed or copied, "u" unmerged, "?" untracked, "!" ignored
    xy: str  # the two status letters: index, worktree ("??" untracked)
    path: str
    source: str | None  # a rename's or copy's original path


def status(
    cwd: Path,
    *,
    untracked: bool = True,
    submodules: str | None = None,
    index: Path | None = None,
    untracked_cache: bool = True,
    paths: Sequence[str] | None = None,
    renames: bool = True,
    ignored: bool = False,
) -> list[StatusEntry]:
    """The uncommitted state of the worktree at ``cwd``: ``git status --porcelain=v2 -z``, parsed.

    ``untracked``: every untracked file too. ``submodules``: ``--ignore-submodules=`` that value.
    Without ``index``, run without optional locks: no index refresh, so it never takes (or, killed,
    leaves) ``index.lock``. With ``index`` (a private copy of the worktree's index, see
    ``streams.status.private_index``) git reads and may refresh that copy, with git's untracked
    cache unless ``untracked_cache`` is False. ``paths``: only these (literal pathspecs);
    ``renames=False``: a rename is a deletion and an addition. ``ignored``: the ignored files and
    directories too (kind ``!``), those an ignore pattern names (``--ignored=matching``; a directory
    ends in ``/``), the files of such a directory left out.
    """
    args = [*gitparse.STATUS_ARGS, f"--untracked-files={'all' if untracked else 'no'}"]
    if ignored:
        args.append("--ignored=matching")
    if submodules is not None:
        args.append(f"--ignore-submodules={submodules}")
    if not renames:
        args.append("--no-renames")
    if paths is not None:
        args += ["--", *(f":(literal){p}" for p in paths)]
    if index is None:
        res = door.run(*args, cwd=cwd, optional_locks=False)
    else:
        cache = "true" if untracked_cache else "false"
        res = door.run(
            "-c", f"core.untrackedCache={cache}", "-c", "status.showUntrackedFiles=all", *args,
            cwd=cwd, env={"GIT_INDEX_FILE": str(index)},
        )  # fmt: skip
    return [StatusEntry(*entry) for entry in gitparse.parse_status(res.stdout)]


def is_dirty(cwd: Path, *, untracked: bool = True) -> list[str]:
    """Paths with uncommitted changes (staged, unstaged and, with ``untracked``, untracked) in the
    worktree at ``cwd`` (a rename: its new path). Submodule changes count. No optional locks."""
    return [e.path for e in status(cwd, untracked=untracked, submodules="none")]


def worktree_tree(cwd: Path, *, from_head: bool) -> door.Oid:
    """A tree of everything in the worktree at ``cwd`` now: staged, unstaged and untracked (not
    ignored). Written through a temporary index (``from_head``: starting from HEAD's tree), so the
    worktree's own index is left alone and nothing goes to the shared ``refs/stash``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="streams-save-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if from_head:
            door.run("read-tree", "HEAD", cwd=cwd, env=env)
        door.run("add", "-A", "--", ".", cwd=cwd, env=env)
        return door.Oid(door.out("write-tree", cwd=cwd, env=env))


# --- the index of one worktree, and commits made there ----------------------------------------


def tracked_files(cwd: Path, *pathspecs: str) -> list[str]:
    """The paths in the index of the worktree at ``cwd`` (matching ``pathspecs`` when given)."""
    return door.split_z(door.run("ls-files", "-z", "--", *pathspecs, cwd=cwd).stdout)


def add_intent_to_add(cwd: Path, path: str) -> None:
    """Record a new file in the index as "to be added" (``git add -N``), so ``commit --only`` takes it."""
    door.run("add", "--intent-to-add", "--", path, cwd=cwd)


def forget_in_index(cwd: Path, path: str) -> None:
    """Best effort: drop ``path`` from the index, keeping the file (``git rm --cached``)."""
    door.run("rm", "--cached", "--quiet", "--ignore-unmatch", "--", path, cwd=cwd, check=False)


def differs_from_head(cwd: Path, path: str) -> bool:
    """Whether ``path`` in the worktree at ``cwd`` differs from HEAD's (``git diff --quiet HEAD``)."""
    return door.run("diff", "--quiet", "HEAD", "--", path, cwd=cwd, check=False).returncode != 0


ARG_MESSAGE_LIMIT = 64 * 1024  # a commit message this long or longer goes to git by file


def commit_only(cwd: Path, paths: Sequence[str], message: str) -> None:
    """Commit ``paths`` as they are in the worktree, and nothing else staged (``git commit --only``).

    Unpiped: a caller killed now still gets its commit made, not half made. ``GitError`` on failure.
    """
    argv = ("commit", "--quiet", "--only", "--no-edit")
    data = message.encode("utf-8")
    if len(data) < ARG_MESSAGE_LIMIT:
        res = door.run_unpiped(*argv, "-m", message, "--", *paths, cwd=cwd)
    else:  # by file: one argv string holds at most 128 KiB on Linux (E2BIG beyond)
        import tempfile

        with tempfile.NamedTemporaryFile("wb", prefix="streams-msg-", suffix=".txt") as msg:
            msg.write(data)
            msg.flush()
            res = door.run_unpiped(*argv, "--file", msg.name, "--", *paths, cwd=cwd)
    if res.returncode != 0:
        raise GitError(("git", *argv, "--", *paths), res.returncode, res.stdout, res.stderr)


# --- a worktree's state, read from its files (no git process) ---------------------------------

operation_in_progress = gitparse.operation_in_progress


def rebase_dir(git_dir: Path) -> Path | None:
    """The rebase's state dir in a worktree's git dir while a rebase is in progress (``gitparse.rebase_dir``)."""
    found = gitparse.rebase_dir(git_dir)
    return Path(found) if found is not None else None


def worktree_git_dir(worktree: Path) -> Path | None:
    """The private git dir of the worktree at ``worktree`` (its ``.git`` dir, or the dir its
    ``.git`` file points to), or None when there is none."""
    dotgit = worktree / ".git"
    if dotgit.is_dir():
        return dotgit
    try:
        text = dotgit.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    path = Path(text[len("gitdir: ") :])
    return path if path.is_absolute() else (worktree / path).resolve()


def worktree_operation(worktree: Path) -> tuple[str | None, Path | None]:
    """(``rebase`` | ``merge`` | ``cherry-pick`` | ``revert`` in progress in the worktree at
    ``worktree``, or None; that worktree's private git dir, or None when it has none)."""
    git_dir = worktree_git_dir(worktree)
    if git_dir is None:
        return None, None
    return operation_in_progress(git_dir), git_dir


# --- a worktree mid-rebase ---------------------------------------------------------------------------


def read_small(path: Path) -> str | None:
    """A small text file git keeps (``rebase-merge/onto``, ``head-name``, …), stripped; None if absent."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def unmerged_paths(worktree: Path) -> tuple[str, ...]:
    """Paths with unmerged index entries (a conflict), each once."""
    seen: dict[str, None] = {}
    for rec in door.split_z(door.run("ls-files", "-u", "-z", cwd=worktree).stdout):
        seen.setdefault(rec.split("\t", 1)[1], None)
    return tuple(seen)


def rebase(worktree: Path, onto: str, *, env: Mapping[str, str] | None = None) -> door.Result:
    """``git rebase <onto>`` in ``worktree``: no autostash, no editor, no other branch moved.
    ``env``: added to git's environment (the fence's token)."""
    return door.run_unpiped(
        "rebase",
        "--quiet",
        "--no-autostash",
        "--no-update-refs",
        onto,
        cwd=worktree,
        env={"GIT_EDITOR": "true", **(env or {})},
    )


def rebase_continue(worktree: Path, *, env: Mapping[str, str] | None = None) -> door.Result:
    return door.run_unpiped("rebase", "--continue", cwd=worktree, env={"GIT_EDITOR": "true", **(env or {})})


def rebase_abort(worktree: Path, *, env: Mapping[str, str] | None = None) -> door.Result:
    return door.run_unpiped("rebase", "--abort", cwd=worktree, env=env)


def switch(worktree: Path, branch: str, *, env: Mapping[str, str] | None = None) -> door.Result:
    return door.run_unpiped("switch", "--quiet", branch, cwd=worktree, env=env)


def reset_keep(worktree: Path, rev: str, *, env: Mapping[str, str] | None = None) -> door.Result:
    """``git reset --keep <rev>``: move HEAD's branch, keeping (or refusing to lose) local changes."""
    return door.run_unpiped("reset", "--quiet", "--keep", rev, cwd=worktree, env=env)


def untracked_files(worktree: Path) -> list[str]:
    return door.split_z(door.run("ls-files", "--others", "-z", cwd=worktree).stdout)


def hash_files(worktree: Path, paths: Iterable[str]) -> list[str]:
    """The blob id each file in ``paths`` (relative to ``worktree``) would have; nothing written."""
    data = "".join(f"{p}\n" for p in paths).encode()
    return door.run("hash-object", "--stdin-paths", cwd=worktree, input=data).text.split()


def object_ids(cwd: Path, specs: Iterable[str]) -> list[str]:
    """``cat-file --batch-check`` of each spec (``rev:path``): its object id, or git's "missing" line."""
    data = "".join(f"{q}\n" for q in specs).encode()
    return door.run("cat-file", "--batch-check=%(objectname)", cwd=cwd, input=data).text.splitlines()


# --- lock files a killed git left --------------------------------------------------------------------


def stale_lock_files(worktree: Path, ref: str) -> list[Path]:
    """Lock files a killed git process may have left around a worktree and its branch."""
    git_dir = worktree_git_dir(worktree)
    if git_dir is None:
        return []
    found = sorted(git_dir.glob("*.lock"))
    common = git_dir
    rel = read_small(git_dir / "commondir")
    if rel is not None:
        common = (git_dir / rel).resolve()
    for candidate in (common / f"{ref}.lock", common / "packed-refs.lock"):
        if candidate.exists():
            found.append(candidate)
    return found


def fetch_lock_files(common_dir: Path, remote: str) -> list[Path]:
    """Lock files a killed ``git fetch`` may have left: its remote-tracking refs, packed-refs, shallow."""
    found = sorted((common_dir / "refs" / "remotes" / remote).rglob("*.lock"))
    found += [p for p in (common_dir / "packed-refs.lock", common_dir / "shallow.lock") if p.exists()]
    return found
