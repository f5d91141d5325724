"""The fence: a file in a stream worktree's private git dir that keeps agents' commits out while a
sync works there, or while a rebase halted there waits for a human. Standard library only (the git
hooks read it).

``<git-dir>/streams-fence`` holds, one per line: the fence's token, then ``key value`` lines
(``pid``, ``start``: the holder's process start time from ``/proc``, ``purpose``: ``sync`` or
``halted``, ``stream``, ``time``). It is written whole (temp file, ``os.replace``).

Who passes a fence (``verdict``):

- a process whose environment carries the fence's token in ``STREAMS_FENCE``: the sync that raised
  it, and its git children (its rebase commits), ``streams sync --continue/--abort``. This is a
  cooperative marker, not a security boundary: anyone who reads the file can copy the token.
  ``streams verify`` stays the wall;
- while ``halted``: a ref update made by a ``git rebase`` process (the human's ``git rebase
  --continue``, ``--skip`` or ``--abort`` in that worktree), told from the hook's ancestors in
  ``/proc``. While the rebase is in progress a ``git commit`` (with or without ``--no-verify``),
  ``git reset`` and the like are refused: the human resolves with ``git add`` and ``git rebase
  --continue``. Once git says the rebase is over (no rebase directory, HEAD back on a branch: the
  human finished or aborted it by hand) commits pass again; the next sync lifts the fence;
- while ``sync``, when the sync that raised it is gone (dead pid, or the pid now names another
  process) and nothing it started is left (no rebase in progress, HEAD on a branch, no branch move
  whose worktree was not brought along yet): the next sync lifts it, and commits need not wait.

Everything else is refused, with one line.
"""

from __future__ import annotations

import os

from streams.kernel.gitparse import rebase_dir
from streams.kernel.paths import FENCE_ENV, fence_file

SYNC = "sync"
HALTED = "halted"

SYNC_MESSAGE = "streams: sync in progress here; commit again in a moment"


class Fence:
    """What ``<git-dir>/streams-fence`` says."""

    __slots__ = ("moving", "pid", "purpose", "start", "stream", "time", "token")

    def __init__(
        self, token: str, pid: int, start: str, purpose: str, stream: str, time: str, moving: str = ""
    ) -> None:
        self.token = token
        self.pid = pid
        self.start = start
        self.purpose = purpose
        self.stream = stream
        self.time = time
        self.moving = moving  # "OLD NEW": the branch is being moved and its worktree brought along

    def text(self) -> str:
        return (
            f"{self.token}\npid {self.pid}\nstart {self.start}\npurpose {self.purpose}\n"
            f"stream {self.stream}\ntime {self.time}\n" + (f"moving {self.moving}\n" if self.moving else "")
        )

    def holder_alive(self) -> bool:
        from streams.kernel.procs import same_process

        return same_process(self.pid, self.start or None)


def parse(text: str) -> Fence | None:
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return None
    values: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        values[key] = value.strip()
    try:
        pid = int(values.get("pid", "0"))
    except ValueError:
        pid = 0
    return Fence(
        lines[0].strip(),
        pid,
        values.get("start", ""),
        values.get("purpose", SYNC),
        values.get("stream", ""),
        values.get("time", ""),
        values.get("moving", ""),
    )


def read(git_dir: str | os.PathLike[str]) -> Fence | None:
    """The fence of the worktree whose private git dir is ``git_dir``, or None."""
    try:
        with open(fence_file(git_dir), encoding="utf-8", errors="replace") as fh:
            return parse(fh.read())
    except OSError:
        return None


def write(git_dir: str | os.PathLike[str], fence: Fence) -> None:
    """Raise (or replace) the fence, whole: a reader sees the old file or the new one."""
    from streams.kernel.atomic import replace_file  # here: a hook that only reads never imports it

    replace_file(fence_file(git_dir), fence.text().encode("utf-8"))


def remove(git_dir: str | os.PathLike[str]) -> bool:
    """Lower the fence; False when there was none."""
    try:
        os.unlink(fence_file(git_dir))
    except FileNotFoundError:
        return False
    return True


def _head_on_branch(git_dir: str) -> bool:
    try:
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as fh:
            return fh.read().startswith("ref: ")
    except OSError:
        return False


def _git_subcommand(argv: list[str]) -> str | None:
    """``rebase`` for ``git -C x rebase --continue``; None when ``argv`` is not a git command."""
    if not argv or os.path.basename(argv[0]) not in ("git", "git-rebase"):
        return None
    if os.path.basename(argv[0]) == "git-rebase":
        return "rebase"
    words = iter(argv[1:])
    for word in words:
        if word in ("-C", "-c", "--git-dir", "--work-tree", "--namespace"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _parent(pid: int) -> tuple[int, list[str]]:
    """(parent pid, argv) of ``pid`` from ``/proc``; (0, []) when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except (OSError, IndexError, ValueError):
        return 0, []
    return ppid, argv


def from_git_rebase(levels: int = 6) -> bool:
    """Whether this process runs under a ``git rebase`` (its parent, grandparent…, up to ``levels``)."""
    pid = os.getppid()
    for _ in range(levels):
        if pid <= 1:
            return False
        ppid, argv = _parent(pid)
        if _git_subcommand(argv) == "rebase":
            return True
        pid = ppid
    return False


def from_git(commands: tuple[str, ...], levels: int = 6) -> bool | None:
    """Whether this process runs under a git command among ``commands`` (``git fetch``…), looking
    up to ``levels`` ancestors; None when ``/proc`` cannot say."""
    if not os.path.isdir("/proc/self"):
        return None
    pid = os.getppid()
    for _ in range(levels):
        if pid <= 1:
            return False
        ppid, argv = _parent(pid)
        if _git_subcommand(argv) in commands:
            return True
        pid = ppid
    return False


def halted_message(fence: Fence, worktree: str) -> str:
    name = fence.stream or "this stream"
    return (
        f"streams: stream {name} is halted for a human (a sync conflict); commit refused: a human resolves it "
        f"in {worktree} with `git add` and `git rebase --continue` (or `streams sync --continue {name}` / "
        f"`streams sync --abort {name}`)"
    )


def verdict(git_dir: str, worktree: str, env: dict[str, str] | os._Environ[str] | None = None) -> str | None:
    """None: this process may move HEAD or a branch in the worktree of ``git_dir``; else the one line
    that refuses it."""
    fence = read(git_dir)
    if fence is None:
        return None
    source = os.environ if env is None else env
    if source.get(FENCE_ENV) == fence.token:
        return None
    settled = rebase_dir(git_dir) is None and _head_on_branch(git_dir) and not fence.moving
    if fence.purpose == HALTED:
        if settled or from_git_rebase():
            return None  # the human's `git rebase …`, or the rebase is over: the next sync lifts the fence
        return halted_message(fence, worktree)
    if settled and not fence.holder_alive():
        return None  # the sync that raised it is gone and left nothing half done: the next sync lifts it
    return SYNC_MESSAGE
