"""Replaying a stream's commits onto the upstream without touching any worktree.

``replay`` makes the commits ``git rebase`` would make, in the object store alone, when that needs
no merge at all: no commit of the stream is a merge, and no path the stream's commits change was
changed upstream since the fork (streams own disjoint files, so this is the usual case). Each new
commit is then the upstream tree with the stream commit's own changes applied, author and message
kept, committer now: one ``git fast-import`` writes them all. Otherwise it says None and the caller
rebases in the worktree.

``move_checked_out`` publishes the result: a compare-and-swap of the branch, then ``git read-tree
-m -u old new`` in the worktree that has the branch checked out, which updates only the files the
upstream changed and keeps an agent's uncommitted edits to others; when that fails the branch is
moved back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from streams.git import door
from streams.git.refs import fast_import, idents, merge_base
from streams.kernel.paths import SCRATCH_REFS

__all__ = ["bring_along", "index_matches", "move_checked_out", "replay"]

_PLAIN_HEADERS = (b"tree ", b"parent ", b"author ", b"committer ")


def _changes(cwd: Path, commits: list[str]) -> dict[str, list[tuple[str, str, str, str]]]:
    """Per commit, its changes against its parent: (status, new mode, new blob, path)."""
    res = door.run(
        "diff-tree", "--stdin", "-r", "-z", "--no-renames", "--always", cwd=cwd,
        input="".join(f"{c}\n" for c in commits).encode(),
    )  # fmt: skip
    out: dict[str, list[tuple[str, str, str, str]]] = {c: [] for c in commits}
    words = res.stdout.split(b"\0")
    current: str | None = None
    i = 0
    while i < len(words):
        word = words[i].decode("utf-8", "surrogateescape").strip("\n")
        if not word:
            i += 1
            continue
        if word.startswith(":"):
            _old_mode, new_mode, _old, new, status = word[1:].split()
            path = words[i + 1].decode("utf-8", "surrogateescape")
            assert current is not None
            out[current].append((status, new_mode, new, path))
            i += 2
            continue
        current = word
        i += 1
    return out


def _objects(cwd: Path, commits: list[str]) -> dict[str, bytes]:
    res = door.run("cat-file", "--batch", cwd=cwd, input="".join(f"{c}\n" for c in commits).encode())
    data, out, pos = res.stdout, {}, 0
    for c in commits:
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        out[c] = data[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
    return out


def replay(cwd: Path, tip: str, onto: str) -> door.Oid | None:
    """The tip ``git rebase onto`` would give ``tip``, made without a worktree; None when that needs
    a merge (or anything unusual: signed commits, other encodings), so a real rebase must do it."""
    base = merge_base(cwd, onto, tip)
    if base is None:
        return None
    listing = door.run("rev-list", "--reverse", "--topo-order", "--parents", f"{onto}..{tip}", cwd=cwd).text
    rows = [line.split() for line in listing.splitlines()]
    if not rows:
        return door.Oid(onto)  # nothing of its own: the branch catches up with the upstream
    if any(len(r) != 2 for r in rows):
        return None  # a merge (or a root commit)
    commits = [r[0] for r in rows]
    upstream = set(door.split_z(door.run("diff", "--name-only", "-z", "--no-renames", base, onto, cwd=cwd).stdout))
    changes = _changes(cwd, commits)
    if any(path in upstream for c in commits for *_, path in changes[c]):
        return None
    objects = _objects(cwd, commits)
    _, committer = idents(cwd)
    scratch = f"{SCRATCH_REFS}/replay-{os.getpid()}"
    stream = [b"feature done\n"]
    for mark, c in enumerate(commits, 1):
        head, _, message = objects[c].partition(b"\n\n")
        lines = head.split(b"\n")
        if any(not ln.startswith(_PLAIN_HEADERS) for ln in lines):
            return None  # gpgsig, encoding, mergetag…: leave it to git rebase
        author = next(ln for ln in lines if ln.startswith(b"author "))
        stream += [
            f"commit {scratch}\nmark :{mark}\n".encode(),
            author + b"\n",
            f"committer {committer}\n".encode(),
            b"data %d\n%s\n" % (len(message), message),
            f"from {onto if mark == 1 else f':{mark - 1}'}\n".encode(),
        ]
        for status, mode, blob, path in changes[c]:
            quoted = _quote(path)
            stream.append(f"D {quoted}\n".encode() if status == "D" else f"M {mode} {blob} {quoted}\n".encode())
    stream.append(b"done\n")
    try:
        marks = fast_import(cwd, b"".join(stream))
    finally:
        door.run("update-ref", "-d", scratch, cwd=cwd, check=False)
    return marks.get(f":{len(commits)}")


def _quote(path: str) -> str:
    if path.startswith('"') or any(ch in path for ch in '\n\\"') or path != path.strip(" "):
        escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return path


def index_matches(worktree: Path, rev: str) -> bool:
    """Whether the worktree's index holds exactly ``rev``'s tree."""
    res = door.run("diff-index", "--cached", "--quiet", rev, "--", cwd=worktree, check=False, optional_locks=False)
    return res.returncode == 0


def bring_along(worktree: Path, old: str, new: str, *, env: Mapping[str, str] | None = None) -> door.Result:
    """``git read-tree -m -u old new``: the worktree's index and files from ``old`` to ``new``,
    keeping uncommitted edits to files the two do not differ in (refused when they would be lost)."""
    return door.run_unpiped("read-tree", "-m", "-u", old, new, cwd=worktree, env=env)


def move_checked_out(
    worktree: Path, ref: str, new: str, old: str, message: str, *, env: Mapping[str, str] | None = None
) -> door.Result:
    """Move ``ref`` (checked out in ``worktree``) from ``old`` to ``new`` and bring the worktree
    along (``read-tree -m -u``); on failure the ref is moved back and the result says why."""
    moved = door.run("update-ref", "-m", message, ref, new, old, cwd=worktree, check=False, env=env)
    if moved.returncode != 0:
        return moved
    along = bring_along(worktree, old, new, env=env)
    if along.returncode != 0:
        door.run("update-ref", "-m", f"{message} (rolled back)", ref, old, new, cwd=worktree, check=False, env=env)
    return along
