"""The one door to git: every git command streams runs goes through ``run``.

Plain subprocess, ``-z`` output wherever git offers it, an explicit ``cwd`` on every call, no
prompts, and git's repository-locating variables stripped so that a command run from inside a hook
(where git exports ``GIT_DIR``, ``GIT_INDEX_FILE``, …) acts on the repository its ``cwd`` names.
Each git question is one small named function, grouped below by what it asks about; the parsers
of git's output live in ``streams.kernel.gitparse`` (the hooks share them).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, NewType

from streams.kernel import gitparse
from streams.kernel.errors import GitError, NotARepositoryError
from streams.kernel.paths import ZERO_OID

__all__ = ["ZERO_OID", "Oid", "RefName"]

# Typed git values (as git-revise does): an object id as git prints it (40 hex digits), a full ref
# name ("refs/heads/streams/api"). NewType: free at run time, checked by mypy.
Oid = NewType("Oid", str)
RefName = NewType("RefName", str)

# --- the door: run, run_unpiped, and the environment they give git ------------------------------

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


# --- repository discovery --------------------------------------------------------------------


@dataclass(frozen=True)
class RepoPaths:
    toplevel: Path  # top of the worktree cwd is in
    git_dir: Path  # that worktree's private git dir
    common_dir: Path  # shared by every worktree


def repo_paths(cwd: Path | str) -> RepoPaths:
    """Where the worktree ``cwd`` is in lives (``NotARepositoryError`` outside one, or in a bare
    repository or a git dir)."""
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


def git_dirs(cwd: Path, *, env: Mapping[str, str] | None = None) -> tuple[Path, Path, bool] | None:
    """(git dir, common dir, whether bare) of the repository ``cwd`` is in, a bare one (a server)
    included; None when ``cwd`` is in none."""
    res = run(
        "rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir", "--is-bare-repository",
        cwd=cwd, check=False, env=env,
    )  # fmt: skip
    lines = res.text.splitlines()
    if res.returncode != 0 or len(lines) != 3:
        return None
    return Path(lines[0]), Path(lines[1]), lines[2] == "true"


def config_get(cwd: Path, key: str) -> str | None:
    """The value of git config ``key`` as seen from ``cwd`` (``git config --get``), stripped; None
    when it is not set."""
    res = run("config", "--get", key, cwd=cwd, check=False)
    return res.text.strip() if res.returncode == 0 else None


def idents(cwd: Path) -> tuple[str, str]:
    """(author, committer) as git would record them for a commit made now (``git var``)."""
    return out("var", "GIT_AUTHOR_IDENT", cwd=cwd), out("var", "GIT_COMMITTER_IDENT", cwd=cwd)


# --- refs and objects --------------------------------------------------------------------------


def branch_ref(branch: str) -> RefName:
    """A branch's full ref: ``streams/api`` -> ``refs/heads/streams/api`` (the branch, even when a
    tag has the same name)."""
    return RefName(f"refs/heads/{branch}")


def resolve_commit(cwd: Path, rev: str) -> Oid | None:
    """The commit ``rev`` names, or None when it names none."""
    res = run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", cwd=cwd, check=False)
    return Oid(res.text.strip()) or None if res.returncode == 0 else None


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


def rev_parse(cwd: Path, rev: str = "HEAD", *, env: Mapping[str, str] | None = None) -> Oid:
    """The object ``rev`` names (default: the commit checked out in ``cwd``); ``GitError`` when it
    names none. ``env``: e.g. a pre-receive hook's quarantine variables."""
    return Oid(out("rev-parse", rev, cwd=cwd, env=env))


def symbolic_head(cwd: Path) -> RefName | None:
    """The branch checked out in ``cwd`` as a full ref (``git symbolic-ref -q HEAD``); None when
    HEAD is detached."""
    res = run("symbolic-ref", "--quiet", "HEAD", cwd=cwd, check=False)
    return RefName(res.text.strip()) if res.returncode == 0 and res.text.strip() else None


def git_dir_and_head(cwd: Path) -> tuple[Path, str]:
    """(the private git dir of the worktree at ``cwd``, what HEAD is there as a full ref name:
    ``refs/heads/…``, or ``HEAD`` when detached), one process."""
    lines = run("rev-parse", "--absolute-git-dir", "--symbolic-full-name", "HEAD", cwd=cwd).text.split("\n")
    return Path(lines[0]), (lines[1] if len(lines) > 1 else "")


@dataclass(frozen=True)
class RefTip:
    oid: str
    committed: float  # committer date, epoch seconds


def ref_tips(cwd: Path, patterns: Iterable[str], *, contains: str | None = None) -> dict[str, RefTip]:
    """Tips (tags peeled) and committer dates of the refs matching ``patterns``, with ``contains``
    only those whose history holds that commit: one ``git for-each-ref``, no optional locks."""
    args = ["for-each-ref", gitparse.REF_TIPS_FORMAT]
    if contains:
        args.append(f"--contains={contains}")
    res = run(*args, *patterns, cwd=cwd, optional_locks=False)
    return {ref: RefTip(oid, when) for ref, (oid, when) in gitparse.parse_ref_tips(res.text).items()}


def read_blob(cwd: Path, rev: str, path: str, *, env: Mapping[str, str] | None = None) -> bytes | None:
    """The bytes of ``path`` in ``rev`` (``git cat-file blob REV:PATH``), or None when there is no
    such file."""
    res = run("cat-file", "blob", f"{rev}:{path}", cwd=cwd, check=False, env=env)
    return res.stdout if res.returncode == 0 else None


def has_path(cwd: Path, commit: str, path: str) -> bool:
    """Whether ``path`` (file or directory) exists in ``commit``'s tree."""
    return run("cat-file", "-e", f"{commit}:{path}", cwd=cwd, check=False).returncode == 0


def ls_tree_names(cwd: Path, treeish: str) -> list[str]:
    """Every file path in ``treeish`` (recursive)."""
    return split_z(run("ls-tree", "-r", "-z", "--name-only", "--full-tree", treeish, cwd=cwd).stdout)


def commit_tree(cwd: Path, tree: str, parents: Iterable[str], message: str) -> str:
    """A new commit of ``tree`` on ``parents`` (no ref moves)."""
    args = ["commit-tree", tree]
    for p in parents:
        args += ["-p", p]
    return run(*args, cwd=cwd, input=message.encode()).text.strip()


def fast_import(cwd: Path, stream: bytes) -> dict[str, Oid]:
    """Feed ``stream`` to ``git fast-import``; the marks it set (``":1"`` -> commit)."""
    import tempfile  # only here and in the other writers: most commands never need it

    with tempfile.TemporaryDirectory(prefix="streams-import-") as tmp:
        marks = Path(tmp) / "marks"
        run("fast-import", "--quiet", f"--export-marks={marks}", cwd=cwd, input=stream)
        return {mark: Oid(oid) for mark, oid in (ln.split() for ln in marks.read_text(encoding="ascii").splitlines())}


def update_ref(cwd: Path, ref: str, new: str, old: str, message: str) -> None:
    """Compare-and-swap ``ref`` from ``old`` (ZERO_OID: must not exist) to ``new``."""
    run("update-ref", "-m", message, ref, new, old, cwd=cwd)


def update_refs(cwd: Path, updates: Iterable[tuple[str, str, str]], message: str) -> None:
    """Compare-and-swap several refs in one transaction: each ``(ref, new, old)`` as in
    ``update_ref``; all move or none does."""
    lines = "".join(f"update {ref} {new} {old}\n" for ref, new, old in updates)
    if lines:
        run("update-ref", "-m", message, "--stdin", cwd=cwd, input=f"start\n{lines}prepare\ncommit\n".encode())


def delete_ref(cwd: Path, ref: str, old: str | None = None, *, message: str | None = None, check: bool = True) -> None:
    """Delete ``ref``; with ``old``, only while it still points there (compare-and-swap).
    ``check=False``: best effort (a clean-up after a failure), errors ignored."""
    run("update-ref", *(("-m", message) if message else ()), "-d", ref, *((old,) if old else ()), cwd=cwd, check=check)


# --- history -------------------------------------------------------------------------------------


def merge_base(cwd: Path, a: str, b: str) -> Oid | None:
    """The best common ancestor of ``a`` and ``b``, or None when they share no history."""
    return Oid(run("merge-base", a, b, cwd=cwd, check=False, optional_locks=False).text.strip()) or None


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is in ``descendant``'s history (``merge-base --is-ancestor``); ``GitError``
    when git cannot tell (an unknown commit)."""
    res = run("merge-base", "--is-ancestor", ancestor, descendant, cwd=cwd, check=False)
    if res.returncode > 1:
        raise GitError(("git", "merge-base", "--is-ancestor"), res.returncode, res.stdout, res.stderr)
    return res.returncode == 0


@dataclass(frozen=True)
class Divergence:
    ahead: int
    behind: int
    merge_base: str | None


def divergence(cwd: Path, base: str, tip: str) -> Divergence:
    """Commits ``tip`` has that ``base`` lacks and the reverse, and their merge base (one
    ``rev-list --left-right --boundary``; a ``merge-base`` only when the boundary is not one commit)."""
    res = run("rev-list", "--left-right", "--boundary", f"{base}...{tip}", cwd=cwd, optional_locks=False)
    ahead, behind, bounds = gitparse.parse_left_right(res.text)
    if ahead == 0:
        return Divergence(0, behind, tip)
    if behind == 0:
        return Divergence(ahead, 0, base)
    if len(bounds) == 1:
        return Divergence(ahead, behind, bounds[0])
    return Divergence(ahead, behind, merge_base(cwd, base, tip))


def commits_not_on(cwd: Path, base: str, tip: str, *, ignoring: Sequence[str] = ()) -> list[Oid]:
    """Commits of ``tip`` (merges left out) whose patch is not on ``base`` (``rev-list --right-only
    --cherry-pick``), leaving out commits that change only the paths in ``ignoring``."""
    excludes = [f":(exclude){p}" for p in ignoring]
    res = run(
        "rev-list", "--right-only", "--cherry-pick", "--no-merges", f"{base}...{tip}", "--", ".", *excludes, cwd=cwd
    )
    return [Oid(c) for c in res.text.split()]


def range_changes(
    cwd: Path, tips: Sequence[str], exclude: Sequence[str], *, env: Mapping[str, str] | None = None
) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(commit, [(status, path)])]`` for every commit reachable from ``tips`` and not from ``exclude``.

    Oldest first; each commit against its parent, renames as a deletion and an addition, a merge
    with only the paths it changes against every parent. Excludes that do not exist are ignored.
    """
    if not tips:
        return []
    res = run(*gitparse.LOG_ARGS, "--ignore-missing", *tips, "--not", *exclude, "--", cwd=cwd, env=env)
    return gitparse.parse_log(res.stdout)


def changed_paths_many(cwd: Path, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, ...]]:
    """For each (old, new) commit pair, the paths that differ: one ``git diff-tree --stdin``."""
    if not pairs:
        return []
    data = "".join(f"{new} {old}\n" for old, new in pairs).encode()
    res = run(
        "diff-tree", "--stdin", "--always", "-r", "-z", "--name-only", "--no-renames",
        cwd=cwd, input=data, optional_locks=False,
    )  # fmt: skip
    return gitparse.parse_diff_tree_stdin(res.stdout, [new for _, new in pairs])


def rev_parse_range(cwd: Path, rev_range: str, *, env: Mapping[str, str] | None = None) -> list[str]:
    """The object names a revision range stands for (``A..B`` -> ``B``, ``^A``); empty when git
    does not know it."""
    res = run("rev-parse", "--revs-only", rev_range, "--", cwd=cwd, check=False, env=env)
    return res.text.split() if res.returncode == 0 else []


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
    """Every worktree of the repository (``git worktree list --porcelain -z``), the main one first."""
    res = run("worktree", "list", "--porcelain", "-z", cwd=cwd)
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
    run("worktree", "add", "--quiet", str(path), branch, cwd=cwd)


def remove_worktree(cwd: Path, path: Path, *, even_locked: bool = False, check: bool = True) -> None:
    """Remove the worktree at ``path``, uncommitted changes and all (``--force``; twice with
    ``even_locked``). ``check=False``: best effort."""
    run("worktree", "remove", "--force", *(("--force",) if even_locked else ()), str(path), cwd=cwd, check=check)


def prune_worktrees(cwd: Path, *, check: bool = True) -> None:
    """Forget worktrees whose directories are gone (``git worktree prune``)."""
    run("worktree", "prune", cwd=cwd, check=check)


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
) -> list[StatusEntry]:
    """The uncommitted state of the worktree at ``cwd``: ``git status --porcelain=v2 -z``, parsed.

    ``untracked``: every untracked file too. ``submodules``: ``--ignore-submodules=`` that value.
    Without ``index``, run without optional locks: no index refresh, so it never takes (or, killed,
    leaves) ``index.lock``. With ``index`` (a private copy of the worktree's index, see
    ``streams.status.private_index``) git reads and may refresh that copy, with git's untracked
    cache unless ``untracked_cache`` is False.
    """
    args = [*gitparse.STATUS_ARGS, f"--untracked-files={'all' if untracked else 'no'}"]
    if submodules is not None:
        args.append(f"--ignore-submodules={submodules}")
    if index is None:
        res = run(*args, cwd=cwd, optional_locks=False)
    else:
        cache = "true" if untracked_cache else "false"
        res = run(
            "-c", f"core.untrackedCache={cache}", "-c", "status.showUntrackedFiles=all", *args,
            cwd=cwd, env={"GIT_INDEX_FILE": str(index)},
        )  # fmt: skip
    return [StatusEntry(*entry) for entry in gitparse.parse_status(res.stdout)]


def is_dirty(cwd: Path, *, untracked: bool = True) -> list[str]:
    """Paths with uncommitted changes (staged, unstaged and, with ``untracked``, untracked) in the
    worktree at ``cwd`` (a rename: its new path). Submodule changes count. No optional locks."""
    return [e.path for e in status(cwd, untracked=untracked, submodules="none")]


def worktree_tree(cwd: Path, *, from_head: bool) -> Oid:
    """A tree of everything in the worktree at ``cwd`` now: staged, unstaged and untracked (not
    ignored). Written through a temporary index (``from_head``: starting from HEAD's tree), so the
    worktree's own index is left alone and nothing goes to the shared ``refs/stash``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="streams-save-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if from_head:
            run("read-tree", "HEAD", cwd=cwd, env=env)
        run("add", "-A", "--", ".", cwd=cwd, env=env)
        return Oid(out("write-tree", cwd=cwd, env=env))


# --- the index of one worktree, and commits made there ----------------------------------------


def tracked_files(cwd: Path, *pathspecs: str) -> list[str]:
    """The paths in the index of the worktree at ``cwd`` (matching ``pathspecs`` when given)."""
    return split_z(run("ls-files", "-z", "--", *pathspecs, cwd=cwd).stdout)


def add_intent_to_add(cwd: Path, path: str) -> None:
    """Record a new file in the index as "to be added" (``git add -N``), so ``commit --only`` takes it."""
    run("add", "--intent-to-add", "--", path, cwd=cwd)


def forget_in_index(cwd: Path, path: str) -> None:
    """Best effort: drop ``path`` from the index, keeping the file (``git rm --cached``)."""
    run("rm", "--cached", "--quiet", "--ignore-unmatch", "--", path, cwd=cwd, check=False)


def differs_from_head(cwd: Path, path: str) -> bool:
    """Whether ``path`` in the worktree at ``cwd`` differs from HEAD's (``git diff --quiet HEAD``)."""
    return run("diff", "--quiet", "HEAD", "--", path, cwd=cwd, check=False).returncode != 0


def commit_only(cwd: Path, paths: Sequence[str], message: str) -> None:
    """Commit ``paths`` as they are in the worktree, and nothing else staged (``git commit --only``).

    Unpiped: a caller killed now still gets its commit made, not half made. ``GitError`` on failure.
    """
    argv = ("commit", "--quiet", "--only", "--no-edit")
    res = run_unpiped(*argv, "-m", message, "--", *paths, cwd=cwd)
    if res.returncode != 0:
        raise GitError(("git", *argv, "--", *paths), res.returncode, res.stdout, res.stderr)


# --- a worktree's state, read from its files (no git process) ---------------------------------

operation_in_progress = gitparse.operation_in_progress
rebase_dir = gitparse.rebase_dir


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
