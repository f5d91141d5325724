"""Replaying a stream's commits onto the upstream without touching any worktree.

``replay`` makes the commits ``git rebase`` would make, in the object store alone: each stream
commit's changes applied on top of the one before, starting at the upstream; a path the upstream
changed as well is merged with ``git merge-file`` when both sides edited a text file and the merge
is clean. Author and message are kept, the committer is now; a commit whose changes are all
upstream already is dropped, as ``git rebase`` drops it; one ``git fast-import`` writes them all.
Anything else (a conflict, a merge commit, a deletion or type change against an upstream edit, a
signed commit) says None and the caller rebases in the worktree. Streams own disjoint files, so
this is the usual case.

``rebase_aside`` is for what ``replay`` leaves to git: ``git rebase`` run in a private worktree made
for it and removed after, so that the stream's own worktree, where an agent may be editing, is not
touched unless the rebase conflicts (then a human resolves it there).

``move_checked_out`` publishes either result: a compare-and-swap of the branch, then ``git read-tree
-m -u old new`` in the worktree that has the branch checked out, which updates only the files the
upstream changed and keeps an agent's uncommitted edits to others; when that fails the branch is
moved back.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.git import door
from streams.git.refs import committer_ident, fast_import
from streams.kernel import gitparse
from streams.kernel.atomic import create_exclusive
from streams.kernel.paths import MOVE_INDEX, MOVE_LOCK_TAG, SCRATCH_REFS

__all__ = [
    "ASIDE_PREFIX",
    "Aside",
    "Replayed",
    "bring_along",
    "bring_along_locked",
    "drop_asides",
    "held_lock",
    "index_matches",
    "move_checked_out",
    "rebase_aside",
    "replay",
    "replay_many",
]

ASIDE_PREFIX = "streams-rebase-"  # a private worktree for one rebase: <state dir>/aside/streams-rebase-<pid>

_PLAIN_HEADERS = (b"tree ", b"parent ", b"author ", b"committer ")
_FILE_MODES = ("100644", "100755")

Entry = tuple[str, str]  # (mode, object id) of a path in a tree
Change = tuple[str, Entry | None, Entry | None, str]  # (status, before, after, path)


def _changes(cwd: Path, commits: list[str]) -> dict[str, list[Change]]:
    """Per commit, its changes against its parent (``diff-tree --raw``, no renames)."""
    res = door.run(
        "diff-tree", "--stdin", "-r", "-z", "--no-renames", "--always", cwd=cwd,
        input="".join(f"{c}\n" for c in commits).encode(),
    )  # fmt: skip
    out: dict[str, list[Change]] = {c: [] for c in commits}
    words = res.stdout.split(b"\0")
    current: str | None = None
    i = 0
    while i < len(words):
        word = words[i].decode("utf-8", "surrogateescape").strip("\n")
        if not word:
            i += 1
            continue
        if word.startswith(":"):
            old_mode, new_mode, old, new, status = word[1:].split()
            path = words[i + 1].decode("utf-8", "surrogateescape")
            assert current is not None
            before = None if status.startswith("A") else (old_mode, old)
            after = None if status.startswith("D") else (new_mode, new)
            out[current].append((status[:1], before, after, path))
            i += 2
            continue
        current = word
        i += 1
    return out


def _entries(cwd: Path, treeish: str, paths: list[str]) -> dict[str, Entry]:
    """``{path: (mode, oid)}`` in ``treeish`` for those of ``paths`` it has."""
    args = ["--literal-pathspecs", "ls-tree", "-r", "-z", "--full-tree", treeish]
    wanted = set(paths)
    if len(paths) <= 500:
        args += ["--", *paths]
    out: dict[str, Entry] = {}
    for rec in door.split_z(door.run(*args, cwd=cwd).stdout):
        meta, _, path = rec.partition("\t")
        mode, _kind, oid = meta.split()
        if path in wanted:
            out[path] = (mode, oid)
    return out


def _objects(cwd: Path, oids: list[str]) -> dict[str, bytes]:
    res = door.run("cat-file", "--batch", cwd=cwd, input="".join(f"{c}\n" for c in oids).encode())
    data, out, pos = res.stdout, {}, 0
    for c in oids:
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        out[c] = data[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
    return out


def _merge(cwd: Path, base: Entry | None, ours: Entry | None, theirs: Entry | None) -> Entry | None:
    """A clean three-way merge of one regular file (``git merge-file``), written as a blob; None
    when it conflicts or is anything but a plain edit of a text file on both sides."""
    if base is None or ours is None or theirs is None or not (base[0] == ours[0] == theirs[0] in _FILE_MODES):
        return None
    import tempfile

    blobs = _objects(cwd, [ours[1], base[1], theirs[1]])
    with tempfile.TemporaryDirectory(prefix="streams-merge-") as tmp:
        files = []
        for name, oid in (("ours", ours[1]), ("base", base[1]), ("theirs", theirs[1])):
            path = Path(tmp) / name
            path.write_bytes(blobs[oid])
            files.append(str(path))
        merged = door.run("merge-file", "-p", *files, cwd=cwd, check=False)
    if merged.returncode != 0:
        return None
    oid = door.run("hash-object", "-w", "--stdin", cwd=cwd, input=merged.stdout).text.strip()
    return (ours[0], oid)


def _replayed(
    cwd: Path, commits: list[str], changes: dict[str, list[Change]], upstream: dict[str, Entry]
) -> list[tuple[str, list[str]]] | None:
    """Per commit to make, its file commands for ``fast-import`` on top of the one before (a commit
    whose changes are all upstream already is dropped, as ``git rebase`` drops it); None when a
    change does not apply cleanly. ``upstream``: the upstream's entries (at least for every path
    the commits change)."""
    current: dict[str, Entry | None] = {ch[3]: upstream.get(ch[3]) for c in commits for ch in changes[c]}
    plan: list[tuple[str, list[str]]] = []
    for c in commits:
        lines: list[str] = []
        for _status, before, after, path in changes[c]:
            now = current.get(path)
            if now == after:
                continue  # already so on the upstream
            result = after if now == before else _merge(cwd, before, now, after)
            if result is None and not (now == before and after is None):
                return None
            current[path] = result
            quoted = _quote(path)
            lines.append(f"D {quoted}" if result is None else f"M {result[0]} {result[1]} {quoted}")
        if lines or not changes[c]:  # a commit empty from the start is kept, as git rebase keeps it
            plan.append((c, lines))
    return plan


@dataclass(frozen=True)
class Replayed:
    """What ``replay_many`` made of one tip: ``new``, the tip ``git rebase`` would give it (None: a
    real rebase must do it); ``fork``, the commit its own commits start from, which is the merge
    base with the upstream (None when they are not a plain line of commits on the upstream's
    history: a merge, or no shared history)."""

    new: door.Oid | None
    fork: door.Oid | None


def _lines(cwd: Path, tips: list[str], onto: str) -> dict[str, tuple[list[str], str] | None]:
    """Per tip, its own commits (those ``onto`` lacks), oldest first, and the commit they start
    from; None when they are not a plain line (a merge, a root commit). One ``rev-list`` for all."""
    listing = door.run(
        "rev-list", "--topo-order", "--parents", "--stdin", cwd=cwd,
        input="".join(f"{t}\n" for t in [f"^{onto}", *tips]).encode(),
    ).text  # fmt: skip
    parents = {row[0]: row[1:] for row in (line.split() for line in listing.splitlines()) if row}
    out: dict[str, tuple[list[str], str] | None] = {}
    for tip in tips:
        chain: list[str] = []
        c: str | None = tip
        while c in parents:
            if len(parents[c]) != 1:
                c = None  # a merge, or a root commit (no history shared with onto)
                break
            chain.append(c)
            c = parents[c][0]
        out[tip] = None if c is None else (chain[::-1], c)
    return out


def replay_many(cwd: Path, tips: Sequence[str], onto: str) -> dict[str, Replayed]:
    """``replay`` of each of ``tips`` onto ``onto``, in one pass for all: one ``rev-list``, one
    ``diff-tree``, one ``ls-tree``, one ``cat-file`` and one ``fast-import`` whatever their number
    (plus a ``merge-file`` per path both sides edited). The new commits are in the object store,
    on no ref: the caller moves each branch (a compare-and-swap from the tip it was made from)."""
    wanted = list(dict.fromkeys(tips))
    lines = _lines(cwd, wanted, onto)
    commits = list(dict.fromkeys(c for line in lines.values() if line is not None for c in line[0]))
    changes = _changes(cwd, commits) if commits else {}
    paths = sorted({ch[3] for c in commits for ch in changes[c]})
    upstream = _entries(cwd, onto, paths) if paths else {}
    plans: dict[str, list[tuple[str, list[str]]] | None] = {}
    for tip, line in lines.items():
        plans[tip] = None if line is None else _replayed(cwd, line[0], changes, upstream)
    made = _write(cwd, plans, onto)
    return {tip: Replayed(made.get(tip), None if line is None else door.Oid(line[1])) for tip, line in lines.items()}


def _write(cwd: Path, plans: dict[str, list[tuple[str, list[str]]] | None], onto: str) -> dict[str, door.Oid]:
    """The commits of every plan, made by one ``fast-import``; per tip, its new tip (``onto`` for
    an empty plan). A tip whose commits carry headers other than the plain ones (gpgsig, encoding,
    mergetag…) is left out: git rebase makes those."""
    made: dict[str, door.Oid] = {tip: door.Oid(onto) for tip, plan in plans.items() if plan == []}
    todo = {tip: plan for tip, plan in plans.items() if plan}
    if not todo:
        return made
    objects = _objects(cwd, list(dict.fromkeys(c for plan in todo.values() for c, _ in plan)))
    committer = committer_ident(cwd)
    scratch = f"{SCRATCH_REFS}/replay-{os.getpid()}"
    stream = [b"feature done\n"]
    last: dict[str, str] = {}  # tip -> the mark of its new tip
    mark = 0
    for tip, plan in todo.items():
        chunk: list[bytes] = []
        for i, (c, lines) in enumerate(plan):
            head, _, message = objects[c].partition(b"\n\n")
            headers = head.split(b"\n")
            if any(not ln.startswith(_PLAIN_HEADERS) for ln in headers):
                break  # gpgsig, encoding, mergetag…: leave it to git rebase
            author = next(ln for ln in headers if ln.startswith(b"author "))
            mark += 1
            chunk += [
                f"commit {scratch}\nmark :{mark}\n".encode(),
                author + b"\n",
                f"committer {committer}\n".encode(),
                b"data %d\n%s\n" % (len(message), message),
                f"from {onto if i == 0 else f':{mark - 1}'}\n".encode(),
                "".join(f"{ln}\n" for ln in lines).encode("utf-8", "surrogateescape"),
            ]
        else:
            stream += chunk
            last[tip] = f":{mark}"
    if not last:
        return made
    stream.append(b"done\n")
    common = Path(door.out("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=cwd))
    _drop_scratch(cwd, common, scratch)  # a killed run's leftover (pids are reused)
    try:
        marks = fast_import(cwd, b"".join(stream))
    finally:
        _drop_scratch(cwd, common, scratch)
    made.update({tip: marks[m] for tip, m in last.items() if m in marks})
    return made


def replay(cwd: Path, tip: str, onto: str) -> door.Oid | None:
    """The tip ``git rebase onto`` would give ``tip``, made without a worktree; None when that needs
    more than replaying each commit's changes with clean file merges (a conflict, a merge commit,
    a rename or type change against an upstream edit, signed commits…), so a real rebase must do it."""
    return replay_many(cwd, [tip], onto)[tip].new


def _drop_scratch(cwd: Path, common: Path, scratch: str) -> None:
    """Delete the scratch ref: its loose file, as fast-import wrote it. (``git update-ref -d`` locks
    packed-refs to delete: killed there, it would leave a ``packed-refs.lock`` that makes every later
    ref deletion wait, a rebase a second per commit.) Only a ref a ``gc`` packed meanwhile is left
    to git."""
    try:
        (common / scratch).unlink()
        return
    except FileNotFoundError:
        pass
    if door.run("show-ref", "--verify", "--quiet", scratch, cwd=cwd, check=False).returncode == 0:
        door.run("update-ref", "-d", scratch, cwd=cwd, check=False)


def held_lock(lock: Path, timeout: float = 10.0) -> Path | None:
    """None once no git process holds ``lock`` (waiting at most ``timeout`` seconds), else the lock
    file: still held, or left by a killed git (one older than ``timeout`` is returned at once)."""
    try:
        if lock.stat().st_mtime < time.time() - timeout:
            return lock
    except OSError:
        return None
    deadline = time.monotonic() + timeout
    while lock.exists():
        if time.monotonic() >= deadline:
            return lock
        time.sleep(0.02)
    return None


def _quote(path: str) -> str:
    if path.startswith('"') or any(ch in path for ch in '\n\\"') or path != path.strip(" "):
        escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return path


def index_matches(worktree: Path, rev: str, index_file: Path | None = None) -> bool:
    """Whether the worktree's index (or ``index_file``) holds exactly ``rev``'s tree."""
    env = {"GIT_INDEX_FILE": str(index_file)} if index_file is not None else None
    res = door.run(
        "diff-index", "--cached", "--quiet", rev, "--", cwd=worktree, check=False, optional_locks=False, env=env
    )
    return res.returncode == 0


def bring_along(worktree: Path, old: str, new: str, *, env: Mapping[str, str] | None = None) -> door.Result:
    """``git read-tree -m -u old new``: the worktree's index and files from ``old`` to ``new``,
    keeping uncommitted edits to files the two do not differ in (refused when they would be lost).
    A refusal changes nothing; then the index's stat data is refreshed and it is tried once more: a
    file touched but not changed is not an edit (the refresh, a scan of the worktree, is paid only
    when git refused)."""
    res = door.run_unpiped("read-tree", "-m", "-u", old, new, cwd=worktree, env=env)
    if res.returncode == 0:
        return res
    door.run("update-index", "-q", "--refresh", cwd=worktree, check=False, env=env)
    return door.run_unpiped("read-tree", "-m", "-u", old, new, cwd=worktree, env=env)


def _take_index_lock(git_dir: Path, tries: int = 250) -> bool:
    """Hold the worktree's ``index.lock`` for this process (naming its pid, as ``move_checked_out``
    does): made anew, or taken over from a killed sync whose lock names a dead pid. An agent's git
    holds it only for a moment: tried ``tries`` times, 20 ms apart."""
    from streams.kernel.procs import pid_alive

    lock, mine = git_dir / "index.lock", f"{MOVE_LOCK_TAG}{os.getpid()}\n".encode()
    tag = MOVE_LOCK_TAG.encode()
    for _ in range(tries):
        if not create_named(lock, mine):
            try:
                head = lock.read_bytes()[:64]
                pid = int(head[len(tag) :].split()[0]) if head.startswith(tag) else 0
            except (OSError, ValueError, IndexError):
                pid = 0
            if pid and pid != os.getpid() and not pid_alive(pid):
                lock.write_bytes(mine)  # a killed sync's lock: nobody else may take it meanwhile
                return True
            time.sleep(0.02)
            continue
        return True
    return False


def create_named(lock: Path, content: bytes) -> bool:
    """Create ``lock`` already holding ``content`` (whose lock it is), or False when it exists: a
    process killed at any instant never leaves a lock file without those words."""
    return create_exclusive(lock, content)


def bring_along_locked(worktree: Path, git_dir: Path, old: str, new: str) -> door.Result:
    """``bring_along`` for a worktree a killed sync left behind its branch, with the worktree's
    ``index.lock`` held from start to end (taken over from that sync when it is still there), so
    that no agent's ``git add`` writes the old index in between; the new index is built in a copy
    and renamed into place, or is the one the killed sync had built, when that is complete."""
    lock, index = git_dir / "index.lock", git_dir / "index"
    if not _take_index_lock(git_dir):
        return door.Result(128, b"", f"fatal: Unable to create '{lock}': File exists.".encode())
    tmp = git_dir / MOVE_INDEX.format(pid=os.getpid())
    try:
        for built in sorted(git_dir.glob(MOVE_INDEX.format(pid="*"))):
            if built != tmp and index_matches(worktree, new, built):
                os.replace(built, index)  # its read-tree finished: files and index are at ``new``
                return door.Result(0, b"", b"")
        shutil.copyfile(index, tmp)
        along = bring_along(worktree, old, new, env={"GIT_INDEX_FILE": str(tmp)})
        if along.returncode == 0:
            os.replace(tmp, index)
        return along
    finally:
        tmp.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)


def move_checked_out(
    worktree: Path,
    git_dir: Path,
    ref: str,
    new: str,
    old: str,
    message: str,
    *,
    env: Mapping[str, str] | None = None,
) -> door.Result:
    """Move ``ref`` (checked out in ``worktree``, whose private git dir is ``git_dir``) from ``old``
    to ``new`` and bring the worktree along (``read-tree -m -u``).

    The worktree's ``index.lock`` is held from before the branch moves until the new index is in
    place, so no other git command (an agent's ``git add``) writes the index in between; the new
    index is built in a copy and renamed into place. On failure the branch is moved back and the
    result says why.
    """
    lock, index = git_dir / "index.lock", git_dir / "index"
    # whose lock it is, for a sync that finds it after this one was killed (git's own hold index data)
    if not create_named(lock, f"{MOVE_LOCK_TAG}{os.getpid()}\n".encode()):
        return door.Result(128, b"", f"fatal: Unable to create '{lock}': File exists.".encode())
    tmp = git_dir / MOVE_INDEX.format(pid=os.getpid())
    try:
        shutil.copyfile(index, tmp)
        moved = door.run("update-ref", "-m", message, ref, new, old, cwd=worktree, check=False, env=env)
        if moved.returncode != 0:
            return moved
        along = bring_along(worktree, old, new, env={**(env or {}), "GIT_INDEX_FILE": str(tmp)})
        if along.returncode == 0:
            os.replace(tmp, index)
            return along
        for _ in range(100):  # an agent's commit may hold the branch's lock for a moment
            back = door.run(
                "update-ref", "-m", f"{message} (undone)", ref, old, new, cwd=worktree, check=False, env=env
            )
            if back.returncode == 0:
                break
            time.sleep(0.02)
        return along
    finally:
        tmp.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)


# --- a rebase in a private worktree ----------------------------------------------------------------


@dataclass(frozen=True)
class Aside:
    """What ``rebase_aside`` did: ``new`` the rebased tip (None when the rebase did not finish);
    ``stopped``: it stopped half way, ``conflict``: on a conflict; ``made``: False when no private
    worktree could be made; ``result``: git's own word."""

    new: door.Oid | None
    result: door.Result
    stopped: bool = False
    conflict: bool = False
    made: bool = True


def rebase_aside(cwd: Path, tip: str, onto: str, parent: Path, *, env: Mapping[str, str] | None = None) -> Aside:
    """``git rebase onto`` of ``tip`` (detached) in a worktree made for it under ``parent`` and removed
    after (a killed run's is removed by the next: ``drop_asides``). No ref moves; the caller publishes
    ``new``."""
    from streams.git.worktree import rebase, unmerged_paths

    drop_asides(cwd, parent)
    place = parent / f"{ASIDE_PREFIX}{os.getpid()}"
    parent.mkdir(parents=True, exist_ok=True)
    add = door.run("worktree", "add", "--quiet", "--detach", str(place), tip, cwd=cwd, check=False, env=env)
    if add.returncode != 0:
        _drop(cwd, place)
        return Aside(None, add, made=False)
    try:
        res = rebase(place, onto, env=env)
        git_dir = Path(door.out("rev-parse", "--absolute-git-dir", cwd=place))
        stopped = gitparse.rebase_dir(git_dir) is not None
        if res.returncode == 0 and not stopped:
            return Aside(door.Oid(door.out("rev-parse", "HEAD", cwd=place)), res)
        return Aside(None, res, stopped=stopped, conflict=stopped and bool(unmerged_paths(place)))
    finally:
        _drop(cwd, place)


def drop_asides(cwd: Path, parent: Path) -> list[Path]:
    """Remove the private rebase worktrees under ``parent`` whose sync is gone (killed); returns them."""
    from streams.kernel.procs import pid_alive

    dropped = []
    for place in sorted(parent.glob(f"{ASIDE_PREFIX}*")) if parent.is_dir() else []:
        pid = place.name[len(ASIDE_PREFIX) :]
        if not pid.isdigit() or (int(pid) != os.getpid() and pid_alive(int(pid))):
            continue
        _drop(cwd, place)
        dropped.append(place)
    return dropped


def _drop(cwd: Path, place: Path) -> None:
    """Remove the worktree at ``place``: its files and its admin dir in the common git dir."""
    common = Path(door.out("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=cwd))
    for admin in (common / "worktrees").glob(f"{ASIDE_PREFIX}*"):
        try:
            ours = Path((admin / "gitdir").read_text(encoding="utf-8").strip()).parent == place
        except OSError:
            ours = admin.name == place.name  # killed inside `worktree add`
        if ours:
            shutil.rmtree(admin, ignore_errors=True)
    shutil.rmtree(place, ignore_errors=True)
