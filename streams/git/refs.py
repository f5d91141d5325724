"""git's questions about the repository: discovery, refs and objects, history, fetch and push."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.git import door
from streams.kernel import gitparse
from streams.kernel.errors import GitError, NotARepositoryError

__all__ = [
    "Divergence",
    "RefTip",
    "RepoPaths",
    "author_time",
    "author_times",
    "changed_paths_many",
    "commit_tree",
    "commits_from",
    "commits_not_on",
    "commits_not_on_with_subjects",
    "commits_only_in",
    "commits_with_paths",
    "committer_ident",
    "config_get",
    "create_ref_while",
    "delete_ref",
    "divergence",
    "divergence_many",
    "fast_import",
    "fetch",
    "git_dir_and_head",
    "git_dirs",
    "has_path",
    "head_and_tip",
    "idents",
    "is_ancestor",
    "ls_remote",
    "ls_tree_names",
    "merge_base",
    "merge_tree",
    "merge_tree_conflicts",
    "missing_commits",
    "push_with_leases",
    "range_changes",
    "range_changes_per_tip",
    "read_blob",
    "ref_oids",
    "ref_tips",
    "reflog_oids",
    "repo_paths",
    "resolve_commit",
    "resolve_many",
    "rev_parse",
    "rev_parse_range",
    "subjects",
    "symbolic_head",
    "tree_changes",
    "tree_key",
    "tree_with",
    "tree_with_like",
    "update_ref",
    "update_refs",
]


# --- repository discovery --------------------------------------------------------------------


@dataclass(frozen=True)
class RepoPaths:
    toplevel: Path  # top of the worktree cwd is in
    git_dir: Path  # that worktree's private git dir
    common_dir: Path  # shared by every worktree


def repo_paths(cwd: Path | str) -> RepoPaths:
    """Where the worktree ``cwd`` is in lives (``NotARepositoryError`` outside one, or in a bare
    repository or a git dir)."""
    res = door.run(
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
    res = door.run(
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
    res = door.run("config", "--get", key, cwd=cwd, check=False)
    return res.text.strip() if res.returncode == 0 else None


def idents(cwd: Path) -> tuple[str, str]:
    """(author, committer) as git would record them for a commit made now (``git var``)."""
    return door.out("var", "GIT_AUTHOR_IDENT", cwd=cwd), door.out("var", "GIT_COMMITTER_IDENT", cwd=cwd)


# --- refs and objects --------------------------------------------------------------------------


def resolve_commit(cwd: Path, rev: str) -> door.Oid | None:
    """The commit ``rev`` names, or None when it names none."""
    res = door.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", cwd=cwd, check=False)
    return door.Oid(res.text.strip()) or None if res.returncode == 0 else None


def resolve_many(
    cwd: Path, revs: Iterable[str], *, types: tuple[str, ...] = ("commit", "tree")
) -> dict[str, str | None]:
    """Resolve several revisions with one process (``cat-file --batch-check``); None for a revision
    that names nothing, or an object of none of ``types``."""
    revs = list(revs)
    if not revs:
        return {}
    res = door.run(
        "cat-file",
        "--batch-check=%(objectname) %(objecttype)",
        cwd=cwd,
        input="".join(f"{r}\n" for r in revs).encode(),
    )
    result: dict[str, str | None] = {}
    for rev, line in zip(revs, res.text.splitlines(), strict=True):
        parts = line.split()
        result[rev] = parts[0] if len(parts) == 2 and parts[1] in types else None
    return result


def rev_parse(cwd: Path, rev: str = "HEAD", *, env: Mapping[str, str] | None = None) -> door.Oid:
    """The object ``rev`` names (default: the commit checked out in ``cwd``); ``GitError`` when it
    names none. ``env``: e.g. a pre-receive hook's quarantine variables."""
    return door.Oid(door.out("rev-parse", rev, cwd=cwd, env=env))


def symbolic_head(cwd: Path) -> door.RefName | None:
    """The branch checked out in ``cwd`` as a full ref (``git symbolic-ref -q HEAD``); None when
    HEAD is detached."""
    res = door.run("symbolic-ref", "--quiet", "HEAD", cwd=cwd, check=False)
    return door.RefName(res.text.strip()) if res.returncode == 0 and res.text.strip() else None


def head_and_tip(
    cwd: Path, ref: str, *, git_dir: Path | None = None, common_dir: Path | None = None
) -> tuple[door.RefName | None, door.Oid | None]:
    """(the branch checked out in ``cwd`` as a full ref, None when HEAD is detached; the commit
    ``ref`` names, None when none): what ``symbolic_head`` and ``resolve_commit`` say, in one
    process when both exist, else asked apart. Given the worktree's ``git_dir`` and the
    ``common_dir``, read from git's files first when HEAD is on ``ref`` and ``ref`` holds a commit id
    there (``kernel.reffiles``; anything else is asked of git)."""
    if git_dir is not None and common_dir is not None:
        from streams.kernel import reffiles

        try:
            head = (git_dir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            head = ""
        tip = reffiles.read_ref(str(common_dir), ref) if head == f"ref: {ref}" else None
        if tip is not None:
            return door.RefName(ref), door.Oid(tip)
    res = door.run("rev-parse", f"{ref}^{{commit}}", "--symbolic-full-name", "HEAD", cwd=cwd, check=False)
    lines = res.text.split()
    if res.returncode == 0 and len(lines) == 2 and lines[1] != "HEAD":
        return door.RefName(lines[1]), door.Oid(lines[0])
    return symbolic_head(cwd), resolve_commit(cwd, ref)


def committer_ident(cwd: Path) -> str:
    """The committer git would record for a commit made now (``git var GIT_COMMITTER_IDENT``)."""
    return door.out("var", "GIT_COMMITTER_IDENT", cwd=cwd)


def git_dir_and_head(cwd: Path) -> tuple[Path, str]:
    """(the private git dir of the worktree at ``cwd``, what HEAD is there as a full ref name:
    ``refs/heads/…``, or ``HEAD`` when detached), one process."""
    lines = door.run("rev-parse", "--absolute-git-dir", "--symbolic-full-name", "HEAD", cwd=cwd).text.split("\n")
    return Path(lines[0]), (lines[1] if len(lines) > 1 else "")


@dataclass(frozen=True)
class RefTip:
    oid: str
    authored: float  # author date, epoch seconds: a rebase keeps it (and resets the committer date)


def ref_tips(cwd: Path, patterns: Iterable[str], *, contains: str | None = None) -> dict[str, RefTip]:
    """Tips (tags peeled) and author dates of the refs matching ``patterns``, with ``contains``
    only those whose history holds that commit: one ``git for-each-ref``, no optional locks."""
    args = ["for-each-ref", gitparse.REF_TIPS_FORMAT]
    if contains:
        args.append(f"--contains={contains}")
    res = door.run(*args, *patterns, cwd=cwd, optional_locks=False)
    return {ref: RefTip(oid, when) for ref, (oid, when) in gitparse.parse_ref_tips(res.text).items()}


def read_blob(cwd: Path, rev: str, path: str, *, env: Mapping[str, str] | None = None) -> bytes | None:
    """The bytes of ``path`` in ``rev`` (``git cat-file blob REV:PATH``), or None when there is no
    such file."""
    res = door.run("cat-file", "blob", f"{rev}:{path}", cwd=cwd, check=False, env=env)
    return res.stdout if res.returncode == 0 else None


def has_path(cwd: Path, commit: str, path: str) -> bool:
    """Whether ``path`` (file or directory) exists in ``commit``'s tree."""
    return door.run("cat-file", "-e", f"{commit}:{path}", cwd=cwd, check=False).returncode == 0


def ls_tree_names(cwd: Path, treeish: str) -> list[str]:
    """Every file path in ``treeish`` (recursive)."""
    return door.split_z(door.run("ls-tree", "-r", "-z", "--name-only", "--full-tree", treeish, cwd=cwd).stdout)


def tree_key(cwd: Path, treeish: str, *, leaving_out: Sequence[str] = ()) -> str:
    """A key of ``treeish``'s content without the top-level entries named in ``leaving_out``: the
    same files give the same key whatever commit holds them (one ``ls-tree``, not recursive: git's
    own tree ids stand for the directories)."""
    import hashlib

    entries = door.split_z(door.run("ls-tree", "-z", "--full-tree", treeish, cwd=cwd).stdout)
    kept = [e for e in entries if e.split("\t", 1)[-1] not in leaving_out]
    return hashlib.sha256("\0".join(kept).encode("utf-8", "surrogateescape")).hexdigest()


def commit_tree(cwd: Path, tree: str, parents: Iterable[str], message: str) -> str:
    """A new commit of ``tree`` on ``parents`` (no ref moves)."""
    args = ["commit-tree", tree]
    for p in parents:
        args += ["-p", p]
    return door.run(*args, cwd=cwd, input=message.encode()).text.strip()


def fast_import(cwd: Path, stream: bytes) -> dict[str, door.Oid]:
    """Feed ``stream`` to ``git fast-import``; the marks it set (``":1"`` -> commit)."""
    import tempfile  # only here and in the other writers: most commands never need it

    with tempfile.TemporaryDirectory(prefix="streams-import-") as tmp:
        marks = Path(tmp) / "marks"
        door.run("fast-import", "--quiet", f"--export-marks={marks}", cwd=cwd, input=stream)
        return {
            mark: door.Oid(oid) for mark, oid in (ln.split() for ln in marks.read_text(encoding="ascii").splitlines())
        }


def update_ref(cwd: Path, ref: str, new: str, old: str, message: str) -> None:
    """Compare-and-swap ``ref`` from ``old`` (ZERO_OID: must not exist) to ``new``."""
    door.run("update-ref", "-m", message, ref, new, old, cwd=cwd)


def update_refs(cwd: Path, updates: Iterable[tuple[str, str, str]], message: str) -> None:
    """Compare-and-swap several refs in one transaction: each ``(ref, new, old)`` as in
    ``update_ref``; all move or none does."""
    lines = "".join(f"update {ref} {new} {old}\n" for ref, new, old in updates)
    if lines:
        door.run("update-ref", "-m", message, "--stdin", cwd=cwd, input=f"start\n{lines}prepare\ncommit\n".encode())


def create_ref_while(
    cwd: Path, ref: str, new: str, *, other: str, at: str, message: str, delete_other: bool = False
) -> bool:
    """Create ``ref`` at ``new`` while ``other`` still points at ``at``, in one transaction (``update-ref
    --stdin``: ``create`` and ``verify``, or ``delete`` of ``other`` with ``delete_other``); False, and
    nothing changed, when ``other`` moved."""
    lines = f"start\ncreate {ref} {new}\n{'delete' if delete_other else 'verify'} {other} {at}\nprepare\ncommit\n"
    res = door.run("update-ref", "-m", message, "--stdin", cwd=cwd, input=lines.encode(), check=False)
    if res.returncode == 0:
        return True
    if resolve_many(cwd, [other]).get(other) == at:  # not that: a real failure
        raise GitError(("git", "update-ref", "--stdin"), res.returncode, res.stdout, res.stderr)
    return False


def delete_ref(cwd: Path, ref: str, old: str | None = None, *, message: str | None = None, check: bool = True) -> None:
    """Delete ``ref``; with ``old``, only while it still points there (compare-and-swap).
    ``check=False``: best effort (a clean-up after a failure), errors ignored."""
    door.run(
        "update-ref", *(("-m", message) if message else ()), "-d", ref, *((old,) if old else ()), cwd=cwd, check=check
    )


# --- history -------------------------------------------------------------------------------------


def merge_base(cwd: Path, a: str, b: str) -> door.Oid | None:
    """The best common ancestor of ``a`` and ``b``, or None when they share no history."""
    return door.Oid(door.run("merge-base", a, b, cwd=cwd, check=False, optional_locks=False).text.strip()) or None


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is in ``descendant``'s history (``merge-base --is-ancestor``); ``GitError``
    when git cannot tell (an unknown commit)."""
    res = door.run("merge-base", "--is-ancestor", ancestor, descendant, cwd=cwd, check=False)
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
    res = door.run("rev-list", "--left-right", "--boundary", f"{base}...{tip}", cwd=cwd, optional_locks=False)
    ahead, behind, bounds = gitparse.parse_left_right(res.text)
    if ahead == 0:
        return Divergence(0, behind, tip)
    if behind == 0:
        return Divergence(ahead, 0, base)
    if len(bounds) == 1:
        return Divergence(ahead, behind, bounds[0])
    return Divergence(ahead, behind, merge_base(cwd, base, tip))


def divergence_many(cwd: Path, base: str, refs: Sequence[str]) -> tuple[str | None, dict[str, tuple[str, int, int]]]:
    """(``base``'s commit as this read it, ``{ref: (tip, ahead, behind)}`` of the branch refs in
    ``refs`` against it), all from one ``git for-each-ref``: git computes ``%(upstream:track)``
    with each branch's upstream set to ``base`` for this call (``GIT_CONFIG_COUNT``:
    ``branch.<name>.remote=.``, ``.merge=<base>``).

    Left out (ask ``divergence``): a ref that is not a branch or does not exist, a branch whose own
    configuration names another upstream (git reads the repository's ``branch.<name>.merge``
    first), and every ref when ``base`` does not exist. No optional locks."""
    heads = [r for r in dict.fromkeys(refs) if r.startswith("refs/heads/") and r != base]
    if not heads:
        return None, {}
    env = {"GIT_CONFIG_COUNT": str(2 * len(heads))}
    for i, ref in enumerate(heads):
        branch = ref.removeprefix("refs/heads/")
        env[f"GIT_CONFIG_KEY_{2 * i}"], env[f"GIT_CONFIG_VALUE_{2 * i}"] = f"branch.{branch}.remote", "."
        env[f"GIT_CONFIG_KEY_{2 * i + 1}"], env[f"GIT_CONFIG_VALUE_{2 * i + 1}"] = f"branch.{branch}.merge", base
    fmt = "--format=%(refname)%00%(objectname)%00%(upstream)%00%(upstream:track,nobracket)"
    res = door.run("for-each-ref", fmt, base, *heads, cwd=cwd, env=env, optional_locks=False)
    base_oid: str | None = None
    found: dict[str, tuple[str, int, int]] = {}
    for line in res.text.splitlines():
        parts = line.split("\0")
        if len(parts) != 4:
            continue
        if parts[0] == base:
            base_oid = parts[1]
            continue
        if parts[2] != base or parts[3] == "gone":
            continue
        found[parts[0]] = (parts[1], *gitparse.parse_track(parts[3]))
    return base_oid, found


def commits_with_paths(
    cwd: Path, tips: Sequence[str], exclude: Sequence[str]
) -> dict[str, tuple[list[str], list[str]]]:
    """``{commit: (parents, paths)}`` for every commit reachable from ``tips`` and from none of
    ``exclude``: one ``git log --name-only`` (each commit against its parent, renames as a deletion
    and an addition; a merge's paths are left empty). No optional locks."""
    if not tips:
        return {}
    res = door.run(*gitparse.commits_with_paths_args(tips, exclude), cwd=cwd, optional_locks=False)
    return gitparse.parse_commits_with_paths(res.stdout)


def commits_not_on(cwd: Path, base: str, tip: str, *, ignoring: Sequence[str] = ()) -> list[door.Oid]:
    """Commits of ``tip`` (merges left out) whose patch is not on ``base`` (``rev-list --right-only
    --cherry-pick``), leaving out commits that change only the paths in ``ignoring``."""
    excludes = [f":(exclude){p}" for p in ignoring]
    res = door.run(
        "rev-list", "--right-only", "--cherry-pick", "--no-merges", f"{base}...{tip}", "--", ".", *excludes, cwd=cwd
    )
    return [door.Oid(c) for c in res.text.split()]


def commits_not_on_with_subjects(
    cwd: Path, base: str, tip: str, *, ignoring: Sequence[str] = ()
) -> list[tuple[door.Oid, str]]:
    """``commits_not_on``, each commit with its subject: one ``rev-list --format`` (each commit a
    ``commit <id>`` line, then its subject)."""
    excludes = [f":(exclude){p}" for p in ignoring]
    res = door.run(
        "rev-list", "--right-only", "--cherry-pick", "--no-merges", "--format=%s", f"{base}...{tip}", "--", ".",
        *excludes, cwd=cwd,
    )  # fmt: skip
    lines = res.text.split("\n")
    return [
        (door.Oid(line[7:]), lines[i + 1] if i + 1 < len(lines) else "")
        for i, line in enumerate(lines)
        if line.startswith("commit ") and i % 2 == 0
    ]


def range_changes(
    cwd: Path, tips: Sequence[str], exclude: Sequence[str], *, env: Mapping[str, str] | None = None
) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(commit, [(status, path)])]`` for every commit reachable from ``tips`` and not from ``exclude``.

    Oldest first; each commit against its parent, renames as a deletion and an addition, a merge
    with only the paths it changes against every parent. Excludes that do not exist are ignored.
    """
    if not tips:
        return []
    res = door.run(*gitparse.LOG_ARGS, "--ignore-missing", *tips, "--not", *exclude, "--", cwd=cwd, env=env)
    return gitparse.parse_log(res.stdout)


def range_changes_per_tip(
    cwd: Path, tips: Sequence[str], exclude: Sequence[str], *, env: Mapping[str, str] | None = None
) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
    """``range_changes(tip, exclude)`` for every tip of ``tips``, from ONE ``git log`` of them all.

    The commits of one tip are those of the union reachable from it through parents inside the
    union (a commit outside is reachable from ``exclude``, and so is everything below it); each
    tip's list keeps the union's order: oldest first, and never a commit before its parents
    (``--topo-order``, which a subset keeps; git's default order does not, when dates tie).
    """
    if not tips:
        return {}
    res = door.run(
        *gitparse.LOG_ARGS, "--topo-order", "--ignore-missing", *dict.fromkeys(tips), "--not", *exclude, "--",
        cwd=cwd, env=env,
    )  # fmt: skip
    graph = gitparse.parse_log_graph(res.stdout)
    parents = {commit: ps for commit, ps, _ in graph}
    order = {commit: i for i, (commit, _, _) in enumerate(graph)}
    out: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}
    for tip in tips:
        if tip in out:
            continue
        seen: set[str] = set()
        todo = [tip] if tip in parents else []
        while todo:
            commit = todo.pop()
            if commit in seen:
                continue
            seen.add(commit)
            todo.extend(p for p in parents[commit] if p in parents and p not in seen)
        out[tip] = [(graph[i][0], graph[i][2]) for i in sorted(order[c] for c in seen)]
    return out


def changed_paths_many(cwd: Path, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, ...]]:
    """For each (old, new) commit pair, the paths that differ: one ``git diff-tree --stdin``."""
    if not pairs:
        return []
    data = "".join(f"{new} {old}\n" for old, new in pairs).encode()
    res = door.run(
        "diff-tree", "--stdin", "--always", "-r", "-z", "--name-only", "--no-renames",
        cwd=cwd, input=data, optional_locks=False,
    )  # fmt: skip
    return gitparse.parse_diff_tree_stdin(res.stdout, [new for _, new in pairs])


def tree_changes(cwd: Path, old: str, new: str) -> list[tuple[str, str]]:
    """``(status, path)`` of every path that differs between two trees (or commits)."""
    res = door.run("diff-tree", "-r", *gitparse.DIFF_ARGS, old, new, "--", cwd=cwd, optional_locks=False)
    return gitparse.parse_name_status(res.stdout)


def rev_parse_range(cwd: Path, rev_range: str, *, env: Mapping[str, str] | None = None) -> list[str]:
    """The object names a revision range stands for (``A..B`` -> ``B``, ``^A``); empty when git
    does not know it."""
    res = door.run("rev-parse", "--revs-only", rev_range, "--", cwd=cwd, check=False, env=env)
    return res.text.split() if res.returncode == 0 else []


# --- refs and history: the sync loop, halts, prediction ------------------------------------------


def ref_oids(cwd: Path, *patterns: str, contains: str | None = None) -> dict[str, door.Oid]:
    """``ref_tips`` without the dates: ``{ref: oid}``."""
    return {ref: door.Oid(tip.oid) for ref, tip in ref_tips(cwd, patterns, contains=contains).items()}


def commits_from(cwd: Path, tip: str, exclude: Iterable[str]) -> list[door.Oid]:
    """Commits reachable from ``tip`` and from none of ``exclude`` (merges included), newest first."""
    res = door.run("rev-list", tip, "--not", *exclude, "--", cwd=cwd)
    return [door.Oid(c) for c in res.text.split()]


def reflog_oids(cwd: Path, ref: str) -> list[str]:
    """Every commit ``ref`` has pointed to, newest first, as its reflog remembers."""
    return door.run("log", "-g", "--format=%H", ref, "--", cwd=cwd, check=False).text.split()


def commits_only_in(cwd: Path, mine: str, theirs: str) -> list[str] | None:
    """Commits of ``theirs`` with no equivalent patch in ``mine`` (merges left out); None when git
    cannot tell."""
    res = door.run(
        "rev-list", "--right-only", "--cherry-pick", "--no-merges", f"{mine}...{theirs}", cwd=cwd, check=False
    )
    return res.text.split() if res.returncode == 0 else None


def merge_tree_conflicts(cwd: Path, ours: str, theirs: str, env: dict[str, str] | None = None) -> list[str] | None:
    """Paths ``git merge-tree --write-tree`` says conflict (None: it could not tell). ``env`` may
    point git at a throw-away object dir (``GIT_OBJECT_DIRECTORY`` + the repository as alternate)."""
    res = door.run(
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


def author_time(cwd: Path, commit: str) -> float:
    """``commit``'s author date, epoch seconds."""
    return float(door.out("log", "-1", "--format=%at", commit, "--", cwd=cwd) or 0)


def author_times(cwd: Path, commits: Sequence[str]) -> dict[str, float]:
    """Each of ``commits``' author date, epoch seconds: one ``git log --no-walk``."""
    if not commits:
        return {}
    res = door.run("log", "--no-walk=unsorted", "--format=%H %at", *dict.fromkeys(commits), "--", cwd=cwd)
    found = dict(line.split(" ", 1) for line in res.text.splitlines() if " " in line)
    return {c: float(found.get(c) or 0) for c in commits}


def missing_commits(cwd: Path, original: str, onto: str, new: str) -> list[str]:
    """The commits of ``original`` (not already on ``onto`` by patch) that a rebase of it onto
    ``onto`` ending at ``new`` lost: none of ``new``'s own commits has their author, author date
    and subject, which a rebase keeps even when a conflict changed the patch. Oldest first."""
    wanted = door.run(
        "rev-list", "--reverse", "--no-merges", "--right-only", "--cherry-pick", f"{onto}...{original}", cwd=cwd
    ).text.split()
    if not wanted:
        return []
    fmt = "--format=%H%x00%an%x00%ae%x00%ad%x00%s"
    have = {
        line.split("\0", 1)[1]
        for line in door.run("log", fmt, new, "--not", onto, "--", cwd=cwd).text.splitlines()
        if "\0" in line
    }
    mine = door.run("log", "--no-walk=unsorted", fmt, *wanted, "--", cwd=cwd).text.splitlines()
    return [line.split("\0", 1)[0] for line in mine if "\0" in line and line.split("\0", 1)[1] not in have]


def subjects(cwd: Path, commits: Sequence[str]) -> list[tuple[str, str]]:
    """``(commit, subject)`` of each of ``commits``, in the order given."""
    if not commits:
        return []
    res = door.run("log", "--no-walk=unsorted", "--format=%H%x00%s", *commits, "--", cwd=cwd)
    found = dict(line.split("\0", 1) for line in res.text.splitlines() if "\0" in line)
    return [(c, found.get(c, "")) for c in commits]


def merge_tree(cwd: Path, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """``git merge-tree --write-tree``: (the merged tree, []) when clean; (None, conflicted paths)."""
    res = door.run(
        "merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", ours, theirs, cwd=cwd, check=False
    )
    records = res.stdout.split(b"\0")
    if res.returncode == 0:
        return records[0].decode().strip(), []
    if res.returncode != 1:
        raise GitError(("git", "merge-tree", ours, theirs), res.returncode, res.stdout, res.stderr)
    names = [r.decode("utf-8", "surrogateescape") for r in records[1:] if r]
    return None, list(dict.fromkeys(names))


def tree_with(cwd: Path, tree: str, path: str, like: str) -> str:
    """``tree`` with ``path`` as it is in ``like`` (absent there: removed; a directory left empty
    goes too), built without an index (``tree_with_like``)."""
    return tree_with_like(cwd, tree, path, like)[0]


def tree_with_like(cwd: Path, tree: str, path: str, like: str) -> tuple[str, str]:
    """(``tree_with``'s tree, ``like``'s own tree). No index: the trees along ``path`` are read with
    one ``cat-file --batch`` and the changed ones written with one ``mktree --batch``, bottom up
    (each one's id computed here, as git does, so that its parent can name it)."""
    parts = path.split("/")
    dirs = ["/".join(parts[:i]) for i in range(len(parts))]  # "", then each directory on the way
    specs = [tree, *(f"{tree}:{d}" for d in dirs[1:]), f"{like}:{dirs[-1]}", f"{like}^{{tree}}"]
    res = door.run("cat-file", "--batch", cwd=cwd, input="".join(f"{spec}\n" for spec in specs).encode())
    found = _batch_trees(res.stdout, len(specs))
    ours, theirs, like_tree = [t for _, t in found[:-2]], found[-2][1], found[-1][0]
    name = parts[-1].encode("utf-8", "surrogateescape")
    want = theirs.get(name) if theirs is not None else None
    if (ours[-1] or {}).get(name) == want:
        return tree, like_tree  # already as in ``like``
    entries = dict(ours[-1] or {})
    if want is None:
        entries.pop(name, None)
    else:
        entries[name] = want
    size = len(tree) // 2  # the object id's length in bytes: sha1 or sha256
    written: list[dict[bytes, tuple[bytes, bytes]]] = []
    for depth in range(len(parts) - 1, 0, -1):  # the directory ``parts[depth - 1]`` in its parent
        parent = dict(ours[depth - 1] or {})
        key = parts[depth - 1].encode("utf-8", "surrogateescape")
        if entries:
            written.append(entries)
            parent[key] = (b"40000", _tree_id(entries, size))
        else:
            parent.pop(key, None)
        entries = parent
    written.append(entries)
    lines = b"\0\0".join(  # an empty record ends a tree
        b"\0".join(
            b"%s %s %s\t%s" % (mode, _TYPES.get(mode, b"blob"), oid.hex().encode(), n) for n, (mode, oid) in t.items()
        )
        for t in written
    )
    made = door.run("mktree", "-z", "--batch", cwd=cwd, input=lines + b"\0").text.split()
    if len(made) != len(written) or any(m != _tree_id(t, size).hex() for m, t in zip(made, written, strict=False)):
        raise GitError(
            ("git", "mktree", "--batch"), 0, " ".join(made).encode(), b"fatal: not the tree ids computed for them"
        )
    return made[-1], like_tree


_TYPES = {b"40000": b"tree", b"160000": b"commit"}


def _tree_id(entries: dict[bytes, tuple[bytes, bytes]], size: int) -> bytes:
    """The object id git gives a tree of ``entries`` (``{name: (mode, raw id)}``): entries in git's
    order (a directory sorts as its name with a ``/``)."""
    import hashlib

    order = sorted(entries, key=lambda n: n + b"/" if entries[n][0] == b"40000" else n)
    body = b"".join(b"%s %s\0%s" % (entries[n][0], n, entries[n][1]) for n in order)
    return hashlib.new("sha1" if size == 20 else "sha256", b"tree %d\0%s" % (len(body), body)).digest()


def _batch_trees(data: bytes, count: int) -> list[tuple[str, dict[bytes, tuple[bytes, bytes]] | None]]:
    """``cat-file --batch`` output of ``count`` objects -> each one's (id, ``{name: (mode, raw id)}``
    when a tree); ("", None) for a name that is missing, (id, None) for an object not a tree."""
    out: list[tuple[str, dict[bytes, tuple[bytes, bytes]] | None]] = []
    at = 0
    for _ in range(count):
        end = data.index(b"\n", at)
        header = data[at:end].split()
        at = end + 1
        if len(header) != 3 or header[1] not in (b"tree", b"blob", b"commit", b"tag"):
            out.append(("", None))  # "<name> missing" (or ambiguous): no content follows
            continue
        size = int(header[2])
        body, at = data[at : at + size], at + size + 1
        if header[1] != b"tree":
            out.append((header[0].decode(), None))
            continue
        raw = len(header[0]) // 2
        entries: dict[bytes, tuple[bytes, bytes]] = {}
        i = 0
        while i < len(body):
            space = body.index(b" ", i)
            nul = body.index(b"\0", space)
            entries[body[space + 1 : nul]] = (body[i:space], body[nul + 1 : nul + 1 + raw])
            i = nul + 1 + raw
        out.append((header[0].decode(), entries))
    return out


def fetch(cwd: Path, remote: str, refspecs: Iterable[str]) -> door.Result:
    """``git fetch --prune`` of ``refspecs`` from ``remote`` (no FETCH_HEAD); its result, unchecked."""
    return door.run("fetch", "--quiet", "--prune", "--no-write-fetch-head", remote, *refspecs, cwd=cwd, check=False)


def ls_remote(cwd: Path, remote: str, ref: str) -> str | None:
    """What ``ref`` points to on ``remote`` right now (``git ls-remote``), or None when it is not there."""
    res = door.run("ls-remote", "--", remote, ref, cwd=cwd)
    for line in res.text.splitlines():
        oid, _, name = line.partition("\t")
        if name == ref:
            return oid
    return None


def push_with_leases(
    cwd: Path, remote: str, updates: Iterable[tuple[str, str | None]]
) -> tuple[door.Result, dict[str, tuple[str, str]]]:
    """Push each local ``ref`` to the same name on ``remote`` with ``--force-with-lease=<ref>:<expected>``
    (``expected`` None: the ref must not exist there). Returns the result and, per ref, git's
    porcelain ``(flag, summary)``."""
    todo = list(updates)
    args = ["push", "--porcelain", *(f"--force-with-lease={ref}:{expected or ''}" for ref, expected in todo), remote]
    args += [f"{ref}:{ref}" for ref, _ in todo]
    res = door.run_unpiped(*args, cwd=cwd)
    status: dict[str, tuple[str, str]] = {}
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            status[parts[1].split(":", 1)[1]] = (parts[0], parts[2])
    return res, status
