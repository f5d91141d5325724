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

    def first_error(self) -> str:
        """git's most telling line: the first ``fatal:``/``error:`` one, else the first (hints left out)."""
        lines = [ln.strip() for ln in (self.stderr + b"\n" + self.stdout).decode("utf-8", "replace").splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("hint:")]
        return next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else "")

    def says(self, limit: int = 8) -> str:
        """What git (and its hooks) said, hints left out, on one line."""
        text = (self.stderr if self.stderr.strip() else self.stdout).decode("utf-8", "replace")
        lines = [ln.strip() for ln in text.splitlines()]
        return " / ".join([ln for ln in lines if ln and not ln.startswith("hint:")][:limit])

    def blocking_files(self) -> list[str]:
        """The paths git lists (tab-indented) after a "would be overwritten" error."""
        lines = self.stderr.decode("utf-8", "replace").splitlines()
        start = next((i for i, ln in enumerate(lines) if "would be overwritten" in ln), None)
        if start is None:
            return []
        files = []
        for ln in lines[start + 1 :]:
            if not ln.startswith("\t"):
                break
            files.append(ln.strip())
        return files


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


# --- refs and history: the sync loop, halts, prediction ------------------------------------------


def ref_oids(cwd: Path, *patterns: str, contains: str | None = None) -> dict[str, Oid]:
    """``{ref: oid}`` of the refs under ``patterns`` (``for-each-ref``), only those containing
    ``contains`` when given."""
    args = ["for-each-ref", "--format=%(refname)%00%(objectname)"]
    if contains:
        args.append(f"--contains={contains}")
    out: dict[str, Oid] = {}
    for line in run(*args, *patterns, cwd=cwd).text.splitlines():
        ref, _, oid = line.partition("\0")
        out[ref] = Oid(oid)
    return out


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is reachable from ``descendant`` (``merge-base --is-ancestor``)."""
    res = run("merge-base", "--is-ancestor", ancestor, descendant, cwd=cwd, check=False)
    if res.returncode > 1:
        raise GitError(("git", "merge-base", "--is-ancestor"), res.returncode, res.stdout, res.stderr)
    return res.returncode == 0


def head(cwd: Path) -> Oid:
    """The commit HEAD names in the worktree at ``cwd``."""
    return Oid(out("rev-parse", "HEAD", cwd=cwd))


def symbolic_head(cwd: Path) -> str | None:
    """The ref HEAD points to (``refs/heads/…``), or None when HEAD is detached."""
    return run("symbolic-ref", "--quiet", "HEAD", cwd=cwd, check=False).text.strip() or None


def reflog_oids(cwd: Path, ref: str) -> list[str]:
    """Every commit ``ref`` has pointed to, newest first, as its reflog remembers."""
    return run("log", "-g", "--format=%H", ref, "--", cwd=cwd, check=False).text.split()


def commits_only_in(cwd: Path, mine: str, theirs: str) -> list[str] | None:
    """Commits of ``theirs`` with no equivalent patch in ``mine`` (merges left out); None when git
    cannot tell."""
    res = run("rev-list", "--right-only", "--cherry-pick", "--no-merges", f"{mine}...{theirs}", cwd=cwd, check=False)
    return res.text.split() if res.returncode == 0 else None


def merge_tree_conflicts(cwd: Path, ours: str, theirs: str, env: dict[str, str] | None = None) -> list[str] | None:
    """Paths ``git merge-tree --write-tree`` says conflict (None: it could not tell). ``env`` may
    point git at a throw-away object dir (``GIT_OBJECT_DIRECTORY`` + the repository as alternate)."""
    res = run(
        "merge-tree",
        "--write-tree",
        "--name-only",
        "-z",
        "--no-messages",
        ours,
        theirs,
        cwd=cwd,
        check=False,
        optional_locks=False,
        env=env,
    )
    if res.returncode == 0:
        return []
    if res.returncode != 1:
        return None
    names: dict[str, None] = {}
    for rec in res.stdout.split(b"\0")[1:]:  # the first record is the (conflicted) tree
        if not rec:
            break
        names.setdefault(rec.decode("utf-8", "surrogateescape"), None)
    return list(names)


def fetch(cwd: Path, remote: str, refspecs: Iterable[str]) -> Result:
    """``git fetch --prune`` of ``refspecs`` from ``remote`` (no FETCH_HEAD); its result, unchecked."""
    return run("fetch", "--quiet", "--prune", "--no-write-fetch-head", remote, *refspecs, cwd=cwd, check=False)


def push_with_leases(
    cwd: Path, remote: str, updates: Iterable[tuple[str, str | None]]
) -> tuple[Result, dict[str, tuple[str, str]]]:
    """Push each local ``ref`` to the same name on ``remote`` with ``--force-with-lease=<ref>:<expected>``
    (``expected`` None: the ref must not exist there). Returns the result and, per ref, git's
    porcelain ``(flag, summary)``."""
    todo = list(updates)
    args = ["push", "--porcelain", *(f"--force-with-lease={ref}:{expected or ''}" for ref, expected in todo), remote]
    args += [f"{ref}:{ref}" for ref, _ in todo]
    res = run_unpiped(*args, cwd=cwd)
    status: dict[str, tuple[str, str]] = {}
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            status[parts[1].split(":", 1)[1]] = (parts[0], parts[2])
    return res, status


# --- a worktree mid-rebase ---------------------------------------------------------------------------


def rebase_dir(git_dir: Path) -> Path | None:
    """The rebase's state dir in a worktree's git dir, while a rebase is in progress."""
    for name in ("rebase-merge", "rebase-apply"):
        if (git_dir / name).is_dir():
            return git_dir / name
    return None


def read_small(path: Path) -> str | None:
    """A small text file git keeps (``rebase-merge/onto``, ``head-name``, …), stripped; None if absent."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def unmerged_paths(worktree: Path) -> tuple[str, ...]:
    """Paths with unmerged index entries (a conflict), each once."""
    seen: dict[str, None] = {}
    for rec in split_z(run("ls-files", "-u", "-z", cwd=worktree).stdout):
        seen.setdefault(rec.split("\t", 1)[1], None)
    return tuple(seen)


def rebase(worktree: Path, onto: str) -> Result:
    """``git rebase <onto>`` in ``worktree``: no autostash, no editor, no other branch moved."""
    return run_unpiped(
        "rebase", "--quiet", "--no-autostash", "--no-update-refs", onto, cwd=worktree, env={"GIT_EDITOR": "true"}
    )


def rebase_continue(worktree: Path) -> Result:
    return run_unpiped("rebase", "--continue", cwd=worktree, env={"GIT_EDITOR": "true"})


def rebase_abort(worktree: Path) -> Result:
    return run_unpiped("rebase", "--abort", cwd=worktree)


def switch(worktree: Path, branch: str) -> Result:
    return run_unpiped("switch", "--quiet", branch, cwd=worktree)


def reset_keep(worktree: Path, rev: str) -> Result:
    """``git reset --keep <rev>``: move HEAD's branch, keeping (or refusing to lose) local changes."""
    return run_unpiped("reset", "--quiet", "--keep", rev, cwd=worktree)


def untracked_files(worktree: Path) -> list[str]:
    return split_z(run("ls-files", "--others", "-z", cwd=worktree).stdout)


def hash_files(worktree: Path, paths: Iterable[str]) -> list[str]:
    """The blob id each file in ``paths`` (relative to ``worktree``) would have; nothing written."""
    data = "".join(f"{p}\n" for p in paths).encode()
    return run("hash-object", "--stdin-paths", cwd=worktree, input=data).text.split()


def object_ids(cwd: Path, specs: Iterable[str]) -> list[str]:
    """``cat-file --batch-check`` of each spec (``rev:path``): its object id, or git's "missing" line."""
    data = "".join(f"{q}\n" for q in specs).encode()
    return run("cat-file", "--batch-check=%(objectname)", cwd=cwd, input=data).text.splitlines()


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
