"""The one door to git: every git command streams runs goes through ``run``.

Plain subprocess, ``-z`` output wherever git offers it, an explicit ``cwd`` on every call, no
prompts, and git's repository-locating variables stripped so that a command run from inside a hook
(where git exports ``GIT_DIR``, ``GIT_INDEX_FILE``, …) acts on the repository its ``cwd`` names.
Each git question is one small named function.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NewType

from streams.kernel.errors import GitError, NotARepositoryError
from streams.kernel.paths import ZERO_OID

__all__ = ["ZERO_OID", "Oid", "RefName"]

# Typed git values (as git-revise does): an object id as git prints it (40 hex digits), a full ref
# name ("refs/heads/streams/api"). NewType: free at run time, checked by mypy.
Oid = NewType("Oid", str)
RefName = NewType("RefName", str)

# `git rev-parse --local-env-vars`: the variables that tie a git process to one repository.
LOCAL_ENV_VARS = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
        "GIT_QUARANTINE_PATH",
    }
)


def no_git_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default: ``os.environ``) without git's repository-locating variables."""
    source = os.environ if env is None else env
    out = {
        k: v
        for k, v in source.items()
        if k not in LOCAL_ENV_VARS and not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }
    out["GIT_TERMINAL_PROMPT"] = "0"
    return out


def _english(env: dict[str, str]) -> dict[str, str]:
    """``env`` with git's messages in English, which is what streams parses (a rebase's blocking
    files, a push's rejection): ``LC_MESSAGES=C`` and no ``LANGUAGE``. ``LC_ALL`` would override
    them, so its value moves to ``LC_CTYPE``, where it keeps deciding the character set."""
    env.pop("LANGUAGE", None)
    lc_all = env.pop("LC_ALL", "")
    if lc_all:
        env["LC_CTYPE"] = lc_all
    env["LC_MESSAGES"] = "C"
    return env


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")


def run(
    *args: str,
    cwd: Path | str,
    check: bool = True,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    optional_locks: bool = True,
) -> Result:
    """Run ``git ARGS`` in ``cwd``. With ``check`` a non-zero exit raises ``GitError``.

    ``env`` entries are added to the stripped environment. ``optional_locks=False`` sets
    ``GIT_OPTIONAL_LOCKS=0`` so that read-only polling never takes an agent's ``index.lock``.
    """
    full_env = _english(no_git_env())
    if env:
        full_env.update(env)
    if not optional_locks:
        full_env["GIT_OPTIONAL_LOCKS"] = "0"
    argv = ("git", *args)
    try:
        proc = subprocess.run(argv, cwd=cwd, input=input, capture_output=True, env=full_env, check=False)
    except FileNotFoundError as exc:  # git missing, or cwd gone
        if not Path(cwd).is_dir():
            raise NotARepositoryError(f"directory {cwd} does not exist") from exc
        raise GitError(argv, 127, b"", b"fatal: git is not installed or not on PATH") from exc
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise GitError(argv, proc.returncode, proc.stdout, proc.stderr)
    return result


def out(*args: str, cwd: Path | str, **kwargs: object) -> str:
    """stdout of a successful ``git ARGS``, decoded, trailing newline removed."""
    return run(*args, cwd=cwd, **kwargs).text.rstrip("\n")  # type: ignore[arg-type]


def split_z(data: bytes) -> list[str]:
    """Split NUL-terminated ``-z`` output into paths (surrogateescape keeps odd bytes intact)."""
    return [p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p]


# --- repository discovery --------------------------------------------------------------------


@dataclass(frozen=True)
class RepoPaths:
    toplevel: Path  # top of the worktree cwd is in
    git_dir: Path  # that worktree's private git dir
    common_dir: Path  # shared by every worktree


def repo_paths(cwd: Path | str) -> RepoPaths:
    res = run(
        "rev-parse",
        "--path-format=absolute",
        "--show-toplevel",
        "--git-dir",
        "--git-common-dir",
        cwd=cwd,
        check=False,
    )
    lines = res.text.splitlines()
    if res.returncode != 0 or len(lines) != 3:
        if res.returncode != 0 and b"not a git repository" in res.stderr:
            raise NotARepositoryError(
                f"{os.path.abspath(cwd)} is not inside a git repository "
                "(cd into one, pass -C PATH, or run `git init` first)"
            )
        if res.returncode == 0 or b"must be run in a work tree" in res.stderr:  # bare, or inside .git
            raise NotARepositoryError(
                f"{os.path.abspath(cwd)} is a bare repository or a git dir; streams needs a "
                "worktree (run it from a clone with a working tree)"
            )
        raise GitError(("git", "rev-parse"), res.returncode, res.stdout, res.stderr)
    top, git_dir, common = lines
    return RepoPaths(Path(top), Path(git_dir), Path(common))


# --- refs and objects --------------------------------------------------------------------------


def resolve_commit(cwd: Path, rev: str) -> str | None:
    """The commit ``rev`` names, or None when it names none."""
    res = run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", cwd=cwd, check=False)
    return res.text.strip() or None if res.returncode == 0 else None


def resolve_many(cwd: Path, revs: Iterable[str]) -> dict[str, str | None]:
    """Resolve several revisions with one process (``cat-file --batch-check``)."""
    revs = list(revs)
    if not revs:
        return {}
    res = run(
        "cat-file",
        "--batch-check=%(objectname) %(objecttype)",
        cwd=cwd,
        input="".join(f"{r}\n" for r in revs).encode(),
    )
    result: dict[str, str | None] = {}
    for rev, line in zip(revs, res.text.splitlines(), strict=True):
        parts = line.split()
        result[rev] = parts[0] if len(parts) == 2 and parts[1] in ("commit", "tree") else None
    return result


def ls_tree_names(cwd: Path, treeish: str) -> list[str]:
    """Every file path in ``treeish`` (recursive)."""
    return split_z(run("ls-tree", "-r", "-z", "--name-only", "--full-tree", treeish, cwd=cwd).stdout)


def commit_tree(cwd: Path, tree: str, parents: Iterable[str], message: str) -> str:
    args = ["commit-tree", tree]
    for p in parents:
        args += ["-p", p]
    return run(*args, cwd=cwd, input=message.encode()).text.strip()


def update_ref(cwd: Path, ref: str, new: str, old: str, message: str) -> None:
    """Compare-and-swap ``ref`` from ``old`` (ZERO_OID: must not exist) to ``new``."""
    run("update-ref", "-m", message, ref, new, old, cwd=cwd)


def update_refs(cwd: Path, updates: Iterable[tuple[str, str, str]], message: str) -> None:
    """Compare-and-swap several refs in one transaction: each ``(ref, new, old)`` as in
    ``update_ref``; all move or none does."""
    lines = "".join(f"update {ref} {new} {old}\n" for ref, new, old in updates)
    if lines:
        run("update-ref", "-m", message, "--stdin", cwd=cwd, input=f"start\n{lines}prepare\ncommit\n".encode())


# --- worktrees ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Worktree:
    path: Path
    head: str | None
    branch: str | None  # full ref name, e.g. refs/heads/streams/api
    bare: bool = False
    detached: bool = False
    locked: bool = False
    prunable: bool = False


def worktrees(cwd: Path) -> list[Worktree]:
    """``git worktree list --porcelain -z``, parsed."""
    res = run("worktree", "list", "--porcelain", "-z", cwd=cwd)
    result: list[Worktree] = []
    fields: dict[str, str] = {}
    for rec in res.stdout.split(b"\0"):
        if rec == b"":
            if fields:
                result.append(
                    Worktree(
                        path=Path(fields["worktree"]),
                        head=fields.get("HEAD"),
                        branch=fields.get("branch"),
                        bare="bare" in fields,
                        detached="detached" in fields,
                        locked="locked" in fields,
                        prunable="prunable" in fields,
                    )
                )
                fields = {}
            continue
        key, _, value = rec.decode("utf-8", "surrogateescape").partition(" ")
        fields[key] = value
    return result


def is_dirty(cwd: Path, *, untracked: bool = True) -> list[str]:
    """Paths with uncommitted changes (staged, unstaged and, with ``untracked``, untracked) in the
    worktree at ``cwd``. Submodule changes count. Run without optional locks: no index refresh, so
    it never takes (or, killed, leaves) ``index.lock``."""
    res = run(
        "status",
        "--porcelain",
        "-z",
        f"--untracked-files={'all' if untracked else 'no'}",
        "--ignore-submodules=none",
        cwd=cwd,
        optional_locks=False,
    )
    paths: list[str] = []
    records = res.stdout.split(b"\0")
    i = 0
    while i < len(records):
        rec = records[i]
        i += 1
        if not rec:
            continue
        xy, path = rec[:2], rec[3:]
        paths.append(path.decode("utf-8", "surrogateescape"))
        if xy[:1] in (b"R", b"C"):
            i += 1  # the rename's source follows as its own record
    return paths


def has_path(cwd: Path, commit: str, path: str) -> bool:
    """Whether ``path`` (file or directory) exists in ``commit``'s tree."""
    return run("cat-file", "-e", f"{commit}:{path}", cwd=cwd, check=False).returncode == 0


def run_unpiped(*args: str, cwd: Path | str, env: Mapping[str, str] | None = None) -> Result:
    """``run(..., check=False)`` with git's output in temp files instead of pipes.

    For commands that change state (rebase, commit, push): if the caller is killed, git finishes
    its work instead of dying of SIGPIPE at its next write and leaving the job half done.
    """
    import tempfile

    full_env = _english(no_git_env())
    if env:
        full_env.update(env)
    argv = ("git", *args)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=full_env)
        except FileNotFoundError as exc:
            if not Path(cwd).is_dir():
                raise NotARepositoryError(f"directory {cwd} does not exist") from exc
            raise GitError(argv, 127, b"", b"fatal: git is not installed or not on PATH") from exc
        out.seek(0)
        err.seek(0)
        return Result(proc.returncode, out.read(), err.read())


# --- a worktree's state, read from its files (no git process) ---------------------------------


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


_OPERATION_MARKERS = (
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase"),
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
)


def operation_in_progress(git_dir: Path) -> str | None:
    """``rebase``, ``merge``, ``cherry-pick`` or ``revert`` when one is in progress, else None."""
    for marker, what in _OPERATION_MARKERS:
        if (git_dir / marker).exists():
            return what
    return None
