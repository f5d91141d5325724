"""Parsers of git's ``-z`` output, one per format, and the arguments that produce it; and what a
worktree's git dir says without asking git (an operation in progress). Standard library only.

The git hooks use them as well as the full code, so they live on the floor the hooks may import:
no ``dataclasses``, ``typing`` or ``pathlib`` here (``streams.git`` wraps the tuples in types).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# `git log` arguments that list, for each commit, its changes against each parent, NUL-separated,
# immune to the user's configuration (renames, relative paths, signatures, merge display).
LOG_ARGS = (
    "log",
    "--format=%x01%H %P",
    "-z",
    "--name-status",
    "--no-renames",
    "--diff-merges=remerge",
    "--root",
    "--no-relative",
    "--no-show-signature",
    "--no-color",
    "--no-ext-diff",
    "--ignore-submodules=none",
)
DIFF_ARGS = ("--name-status", "-z", "--no-renames", "--no-relative", "--no-ext-diff", "--ignore-submodules=none")


def parse_name_status(data: bytes) -> list[tuple[str, str]]:
    """``--name-status -z --no-renames`` output -> ``[(status, path)]`` (paths surrogate-escaped)."""
    parts = data.split(b"\0")
    out: list[tuple[str, str]] = []
    i = 0
    n = len(parts) - 1  # the output ends with NUL: the last part is empty
    while i < n:
        status = parts[i].strip(b"\n")
        if not status:
            i += 1
            continue
        out.append((status[:1].decode("ascii", "replace"), parts[i + 1].decode("utf-8", "surrogateescape")))
        i += 2
    return out


def parse_log(data: bytes) -> list[tuple[str, list[tuple[str, str]]]]:
    """``git log LOG_ARGS`` output -> ``[(commit, [(status, path)])]``, oldest first.

    A merge counts the paths where it differs from the automatic merge of its parents
    (``--diff-merges=remerge``, git ≥ 2.36): what it brought in from one side is that side's change
    (its commits are judged themselves), while whatever the merge itself adds, removes or reverts
    shows, e.g. a file deleted while merging an unrelated branch, or another stream's work put
    back as an old base had it.
    """
    return [(commit, changes) for commit, _, changes in parse_log_graph(data)]


def parse_log_graph(data: bytes) -> list[tuple[str, tuple[str, ...], list[tuple[str, str]]]]:
    """``parse_log`` with each commit's parents: ``[(commit, parents, [(status, path)])]``, oldest first."""
    parts = data.split(b"\0")
    result: list[tuple[str, tuple[str, ...], list[tuple[str, str]]]] = []
    i = 0
    n = len(parts)
    while i < n:
        tok = parts[i].lstrip(b"\n")
        i += 1
        if not tok:
            continue
        if tok.startswith(b"\x01"):
            words = tok[1:].decode("ascii").split()
            result.append((words[0], tuple(words[1:]), []))
            continue
        if i < n and result:
            result[-1][2].append((tok[:1].decode("ascii", "replace"), parts[i].decode("utf-8", "surrogateescape")))
            i += 1
    result.reverse()
    return result


# --- git status --------------------------------------------------------------------------------------

# `git status` arguments whose output ``parse_status`` reads.
STATUS_ARGS = ("status", "--porcelain=v2", "-z")

# Fields before the path in each kind of v2 record ("1" changed, "2" renamed or copied, "u" unmerged,
# "?" untracked, "!" ignored): the record splits into that many + 1 parts, the path last.
_STATUS_SPLITS = {b"1": 8, b"2": 9, b"u": 10, b"?": 1, b"!": 1}


def parse_status(data: bytes) -> list[tuple[str, str, str, str | None]]:
    """``git status --porcelain=v2 -z`` output -> ``[(kind, xy, path, source)]``, in git's order.

    ``kind`` is ``1`` (changed), ``2`` (renamed or copied), ``u`` (unmerged), ``?`` (untracked) or
    ``!`` (ignored); ``xy`` the two status letters (``??`` and ``!!`` for the last two); ``source``
    a rename's or copy's original path, else None. Header lines (``# branch.…``) are skipped.
    """
    records = data.split(b"\0")
    out: list[tuple[str, str, str, str | None]] = []
    i = 0
    while i < len(records):
        rec = records[i]
        i += 1
        kind = rec[:1]
        splits = _STATUS_SPLITS.get(kind)
        if splits is None:  # empty, a header, or a kind this parser does not know
            continue
        fields = rec.split(b" ", splits)
        source = None
        if kind == b"2":  # the source follows as its own record
            if i < len(records) and records[i]:
                source = records[i].decode("utf-8", "surrogateescape")
            i += 1
        xy = fields[1].decode("ascii", "replace") if splits > 1 else (kind * 2).decode("ascii")
        out.append((kind.decode("ascii"), xy, fields[-1].decode("utf-8", "surrogateescape"), source))
    return out


# --- git worktree list -------------------------------------------------------------------------------


def parse_worktree_list(data: bytes) -> list[dict[str, str]]:
    """``git worktree list --porcelain -z`` output -> one ``{field: value}`` per worktree.

    Fields: ``worktree`` (its path), ``HEAD``, ``branch`` (a full ref), and the flags ``bare``,
    ``detached``, ``locked``, ``prunable`` (present with their reason, often empty, when set).
    """
    result: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for rec in data.split(b"\0"):
        if rec == b"":
            if fields:
                result.append(fields)
                fields = {}
            continue
        key, _, value = rec.decode("utf-8", "surrogateescape").partition(" ")
        fields[key] = value
    return result


# --- refs and history --------------------------------------------------------------------------------

# `git for-each-ref` format read by ``parse_ref_tips``: ref, object, peeled object, committer date.
REF_TIPS_FORMAT = "--format=%(refname)%00%(objectname)%00%(*objectname)%00%(authordate:unix)"


def parse_ref_tips(text: str) -> dict[str, tuple[str, float]]:
    """``git for-each-ref REF_TIPS_FORMAT`` output -> ``{ref: (commit, author date)}``.

    A tag is peeled to what it points to; an unreadable date is 0.
    """
    tips: dict[str, tuple[str, float]] = {}
    for line in text.splitlines():
        parts = line.split("\0")
        if len(parts) != 4:
            continue
        ref, oid, peeled, date = parts
        try:
            when = float(date)
        except ValueError:
            when = 0.0
        tips[ref] = (peeled or oid, when)
    return tips


def parse_track(text: str) -> tuple[int, int]:
    """``%(upstream:track,nobracket)`` (``ahead 2, behind 1``; empty when level) -> (ahead, behind)."""
    counts = {"ahead": 0, "behind": 0}
    for item in filter(None, text.split(", ")):
        word, _, number = item.partition(" ")
        if word in counts and number.isdigit():
            counts[word] = int(number)
    return counts["ahead"], counts["behind"]


def parse_left_right(text: str) -> tuple[int, int, list[str]]:
    """``git rev-list --left-right --boundary A...B`` output -> (commits only B has, commits only
    A has, the boundary commits)."""
    right = left = 0
    bounds: list[str] = []
    for line in text.splitlines():
        mark, oid = line[:1], line[1:]
        if mark == ">":
            right += 1
        elif mark == "<":
            left += 1
        elif mark == "-":
            bounds.append(oid)
    return right, left, bounds


def parse_diff_tree_stdin(data: bytes, news: list[str]) -> list[tuple[str, ...]]:
    """``git diff-tree --stdin --always -r -z --name-only`` output, fed one ``NEW OLD`` line per
    entry of ``news`` -> for each, the paths that differ (git prints NEW, then the paths)."""
    result: list[list[str]] = []
    k = 0
    for tok in data.split(b"\0"):
        if not tok:
            continue
        path = tok.decode("utf-8", "surrogateescape")
        if k < len(news) and path == news[k]:
            result.append([])
            k += 1
        elif result:
            result[-1].append(path)
    while len(result) < len(news):
        result.append([])
    return [tuple(r) for r in result]


def commits_with_paths_args(tips: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The ``git log`` that ``parse_commits_with_paths`` reads: every commit reachable from
    ``tips`` and from none of ``exclude``, each against its parent (a merge's paths left out)."""
    return [
        "log", "--format=%x01%H %P", "-z", "--name-only", "--no-renames", "--diff-merges=off",
        *tips, "--not", *exclude, "--",
    ]  # fmt: skip


def parse_commits_with_paths(data: bytes) -> dict[str, tuple[list[str], list[str]]]:
    """``commits_with_paths_args``'s output -> ``{commit: (parents, paths)}``."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    paths: list[str] = []
    for token in data.split(b"\0"):
        token = token.lstrip(b"\n")
        if token.startswith(b"\x01"):
            commit, *parents = token[1:].decode("ascii").split()
            paths = []
            found[commit] = (parents, paths)
        elif token and found:
            paths.append(token.decode("utf-8", "surrogateescape"))
    return found


def line_work(graph: dict[str, tuple[list[str], list[str]]], tip: str, progress_file: str) -> int | None:
    """The commits from ``tip`` back through ``graph`` (``parse_commits_with_paths``) that change
    more than ``progress_file``; None when a merge is on the way (or ``tip`` is not in ``graph``):
    ask git."""
    if tip not in graph:
        return None
    count, commit = 0, tip
    while commit in graph:
        parents, paths = graph[commit]
        if len(parents) > 1:
            return None
        count += any(p != progress_file for p in paths)
        if not parents:
            break
        commit = parents[0]
    return count


# --- a worktree's state, read from git's files (no git process) --------------------------------------


def rebase_dir(git_dir: str | os.PathLike[str]) -> str | None:
    """The directory of the rebase in progress in ``git_dir`` (``rebase-merge``, ``rebase-apply``),
    or None: the one test of "is a rebase running" (its files say where it started)."""
    for name in ("rebase-merge", "rebase-apply"):
        path = os.path.join(git_dir, name)
        if os.path.isdir(path):
            return path
    return None


_OPERATION_MARKERS = (("MERGE_HEAD", "merge"), ("CHERRY_PICK_HEAD", "cherry-pick"), ("REVERT_HEAD", "revert"))


def operation_in_progress(git_dir: str | os.PathLike[str]) -> str | None:
    """``rebase``, ``merge``, ``cherry-pick`` or ``revert`` when one is in progress in the worktree
    whose private git dir is ``git_dir``, else None."""
    if rebase_dir(git_dir) is not None:
        return "rebase"
    for marker, what in _OPERATION_MARKERS:
        if os.path.exists(os.path.join(git_dir, marker)):
            return what
    return None


# --- git ls-files -s / git ls-tree ----------------------------------------------------------------------


def parse_entries(data: bytes, *, stage: bool) -> dict[str, tuple[str, str]]:
    """``git ls-files -s -z`` (``stage``: ``MODE OID STAGE\tPATH``) or ``git ls-tree -z``
    (``MODE TYPE OID\tPATH``) output -> ``{path: (mode, oid)}``."""
    out: dict[str, tuple[str, str]] = {}
    for rec in data.split(b"\0"):
        if rec:
            meta, _, path = rec.partition(b"\t")
            fields = meta.decode().split()
            out[path.decode("utf-8", "surrogateescape")] = (fields[0], fields[1] if stage else fields[2])
    return out
