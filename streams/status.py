"""The dashboard's data: one frozen ``StreamStatus`` per stream and a ``Summary``. No printing.

``collect(ws, config)`` reads everything the dashboard shows, with as few git processes as it can:

- one ``git worktree list --porcelain -z`` and one ``git for-each-ref`` (tips and commit dates);
- per started stream, one ``git status --porcelain=v2 -z --untracked-files=all`` (dirty files,
  unmerged paths), and per stream with a branch one ``git rev-list --left-right --boundary
  BASE...TIP`` (ahead, behind, and the merge base) — these run concurrently in a small thread pool;
- one ``git diff-tree --stdin`` for the paths every stream changed since its merge base, and the
  merge-tree prediction of ``coordinator.sync.predict_conflicts``.

The dashboard never takes ``index.lock`` from an agent that is committing: ``git status`` runs on
the dashboard's own copy of the worktree's index (``private_index``), every other git call with
``GIT_OPTIONAL_LOCKS=0``. A row whose state cannot be read carries its ``errors``; the
other rows are unaffected. A ``Collector`` kept across refreshes (``--watch``) caches what is keyed
by commit ids, so a refresh pays only for what moved.

Agents: a stream's agent counts as running while ``<git-common-dir>/streams/agents/<name>.pid``
holds the pid (first line, decimal) of a live process. The runner writes it when it launches the
agent and removes it when the agent exits; a stale file shows ``agent_pid`` with
``agent_running: false``.

JSON (``streams status --json``; ``data`` of the common envelope)

===========================  ================  ==================================================
field                        type              meaning
===========================  ================  ==================================================
base                         str               the integration branch (``base:`` in streams.yaml)
base_ref                     str               what ahead/behind/changed are measured against:
                                               ``refs/remotes/<remote>/<base>`` (as last
                                               fetched) when ``remote:`` is set, else
                                               ``refs/heads/<base>`` — what sync rebases onto
base_tip                     str | null        its commit
time                         str               when the snapshot was taken (ISO 8601, UTC)
summary.total                int               rows (configured streams, plus unconfigured
                                               stream worktrees)
summary.started              int               rows with a worktree (state ``started``)
summary.not_started          int               state ``not started`` or ``branch only``
summary.active               int               started, not halted, and progress ``in_progress``
                                               or an agent running
summary.completed            int               progress status ``completed``
summary.blocked              int               progress status ``blocked``
summary.failed               int               progress status ``failed``
summary.halted               int               halted by sync on a conflict (state.json)
summary.locks_held           int               live leases on shared files, all streams
summary.out_of_scope         int               uncommitted out-of-scope paths, all streams
summary.predicted_conflicts  int               streams whose rebase is predicted to conflict
summary.errors               int               rows with at least one error
streams[].name               str               stream name
streams[].state              str               ``started`` | ``not started`` | ``branch only``
                                               (branch, no worktree) | ``missing`` (worktree
                                               registered, directory gone) | ``unconfigured``
                                               (a stream worktree not in streams.yaml)
streams[].branch             str               e.g. ``streams/api``
streams[].worktree           str | null        worktree path (configured path when not started)
streams[].head               str | null        tip of the stream's branch
streams[].status             str | null        progress status: pending | in_progress | blocked
                                               | completed | failed | paused (null: unreadable)
streams[].completion         int | null        0-100 from the progress file
streams[].current_task       str               "Current Task" of the progress file
streams[].blocked_items      [str]             "Blocked Items" of the progress file
streams[].progress_updated   str               ``updated:`` of the progress file
streams[].ahead              int | null        commits on the branch not on ``base_ref``
streams[].behind             int | null        commits on ``base_ref`` not on the branch
streams[].dirty              [str]             uncommitted paths (staged, unstaged, untracked;
                                               both sides of a staged rename)
streams[].out_of_scope       [{path, reason}]  uncommitted paths the stream may not commit,
                                               with why (``streams.scope.check_paths``)
streams[].locks              [LeaseView]       live leases the stream holds (``LeaseView``'s
                                               fields: the lease shape of ``streams locks``)
streams[].halted             bool              sync halted this stream on a conflict
streams[].halt               {files, onto, original_tip, time, reason, upstream} | null
                                               the recorded halt (reason: conflict |
                                               interrupted | found)
streams[].operation          str | null        rebase | merge | cherry-pick | revert in progress
                                               in the worktree
streams[].conflicted         [str]             unmerged paths in the worktree now
streams[].predicted_conflicts [str]            paths a rebase onto the base would conflict on
streams[].changed            [str]             paths changed since the merge base, committed or
                                               not (its own progress file left out)
streams[].overlaps           {stream: [str]}   other streams that changed the same paths
streams[].last_commit        str | null        committer date of the branch tip (ISO 8601, UTC)
streams[].last_commit_age    float | null      seconds since then
streams[].agent_pid          int | null        pid from the agent's pid file
streams[].agent_running      bool              that process is alive
streams[].errors             [str]             what could not be read for this row
streams[].active             bool              started, not halted, and progress ``in_progress``
                                               or an agent running (what summary.active counts)
warnings                     [str]             what could not be read for the whole snapshot
===========================  ================  ==================================================
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from streams import git
from streams.config import Config, progress_path
from streams.kernel import paths
from streams.kernel.durations import iso_utc
from streams.kernel.errors import StreamsError
from streams.kernel.locks import Lease, LeaseView, list_leases
from streams.kernel.paths import read_marker
from streams.kernel.procs import pid_alive
from streams.places import PlaceState
from streams.progress import Progress, ProgressStatus, read_progress
from streams.scope import check_paths
from streams.state import Halt, HaltReason, read_halts
from streams.workspace import Workspace

DEFAULT_THREADS = 4

# The row states by their short names (the dashboard's cells and watchers use them).
STARTED = PlaceState.STARTED
NOT_STARTED = PlaceState.NOT_STARTED
BRANCH_ONLY = PlaceState.BRANCH_ONLY
MISSING = PlaceState.MISSING
UNCONFIGURED = PlaceState.UNCONFIGURED


def agent_pid_file(ws: Workspace, name: str) -> Path:
    """Where the runner records the pid of a stream's agent."""
    return Path(paths.agent_pid_file(ws.common_dir, name))


# --- the model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeIssue:
    path: str
    reason: str


@dataclass(frozen=True)
class HaltInfo:
    files: tuple[str, ...]
    onto: str
    original_tip: str
    time: str
    reason: HaltReason | str
    upstream: str


@dataclass(frozen=True)
class StreamStatus:
    name: str
    state: PlaceState
    branch: str
    worktree: str | None
    head: str | None = None
    status: ProgressStatus | None = None
    completion: int | None = None
    current_task: str = ""
    blocked_items: tuple[str, ...] = ()
    progress_updated: str = ""
    ahead: int | None = None
    behind: int | None = None
    dirty: tuple[str, ...] = ()
    out_of_scope: tuple[ScopeIssue, ...] = ()
    locks: tuple[LeaseView, ...] = ()
    halted: bool = False
    halt: HaltInfo | None = None
    operation: str | None = None
    conflicted: tuple[str, ...] = ()
    predicted_conflicts: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    overlaps: dict[str, tuple[str, ...]] = field(default_factory=dict)
    last_commit: str | None = None
    last_commit_age: float | None = None
    agent_pid: int | None = None
    agent_running: bool = False
    errors: tuple[str, ...] = ()

    json_properties: ClassVar[tuple[str, ...]] = ("active",)  # derived facts the JSON carries too

    @property
    def active(self) -> bool:
        return self.state == STARTED and not self.halted and (self.status == "in_progress" or self.agent_running)


@dataclass(frozen=True)
class Summary:
    total: int
    started: int
    not_started: int
    active: int
    completed: int
    blocked: int
    failed: int
    halted: int
    locks_held: int
    out_of_scope: int
    predicted_conflicts: int
    errors: int


@dataclass(frozen=True)
class Snapshot:
    base: str
    base_ref: str
    base_tip: str | None
    time: str
    summary: Summary
    streams: tuple[StreamStatus, ...]
    warnings: tuple[str, ...] = ()


def summarize(rows: Sequence[StreamStatus], locks_held: int) -> Summary:
    return Summary(
        total=len(rows),
        started=sum(r.state == STARTED for r in rows),
        not_started=sum(r.state in (NOT_STARTED, BRANCH_ONLY) for r in rows),
        active=sum(r.active for r in rows),
        completed=sum(r.status == "completed" for r in rows),
        blocked=sum(r.status == "blocked" for r in rows),
        failed=sum(r.status == "failed" for r in rows),
        halted=sum(r.halted for r in rows),
        locks_held=locks_held,
        out_of_scope=sum(len(r.out_of_scope) for r in rows),
        predicted_conflicts=sum(bool(r.predicted_conflicts) for r in rows),
        errors=sum(bool(r.errors) for r in rows),
    )


# --- git questions (all read-only, all without optional locks) ---------------------------------------


def _git(*args: str, cwd: Path, input: bytes | None = None) -> git.Result:
    return git.run(*args, cwd=cwd, input=input, optional_locks=False)


@dataclass(frozen=True)
class RefTip:
    oid: str
    committed: float  # committer date, epoch seconds


def ref_tips(cwd: Path, patterns: Iterable[str]) -> dict[str, RefTip]:
    """Tips and committer dates of the refs matching ``patterns`` (``git for-each-ref``), one process."""
    res = _git(
        "for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)%00%(committerdate:unix)",
        *patterns, cwd=cwd,
    )  # fmt: skip
    tips: dict[str, RefTip] = {}
    for line in res.text.splitlines():
        parts = line.split("\0")
        if len(parts) != 4:
            continue
        ref, oid, peeled, date = parts
        try:
            when = float(date)
        except ValueError:
            when = 0.0
        tips[ref] = RefTip(peeled or oid, when)
    return tips


@dataclass(frozen=True)
class WorktreeRead:
    dirty: tuple[str, ...]
    conflicted: tuple[str, ...]


READERS_FILE = paths.PRIVATE_INDEX_READERS


@contextmanager
def private_index(git_dir: Path) -> Iterator[Path | None]:
    """A copy of a worktree's index that only dashboards read and write, for as long as the
    ``with`` lasts; None when there can be none (no index, a split index whose shared part git
    would write next to the agent's, a git dir we cannot write).

    ``git status`` on the agent's own index must not write it (``GIT_OPTIONAL_LOCKS=0``: never take
    the agent's ``index.lock``), so every call would redo the whole untracked scan and re-hash any
    racily clean file. On a copy it may write: refreshed stat data and the untracked cache stay for
    the next call. The copy (a hard link until a git status first rewrites it) is named after the
    inode, size and modification time of the index it was taken from; git replaces an index by
    renaming a new file over it, so any change of the agent's index (a stage, a commit, a checkout)
    yields a new name and a fresh copy, and a name never holds a copy of another version. It lives
    in the worktree's private git dir, so removing the worktree removes it.

    Dashboards using a copy hold a shared ``flock`` on ``readers.flock``; copies of earlier versions
    (and locks or temp files of killed dashboards) are removed only under the exclusive lock, so a
    copy never vanishes under a running git status (which would read it as an empty index).
    """
    if next(git_dir.glob("sharedindex.*"), None) is not None or not (git_dir / "index").is_file():
        yield None
        return
    folder = git_dir / paths.PRIVATE_INDEX_DIR
    try:
        folder.mkdir(exist_ok=True)
        readers = os.open(folder / READERS_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield None
        return
    try:
        fcntl.flock(readers, fcntl.LOCK_SH)
        copy = _take_copy(git_dir, folder)
        yield copy
        fcntl.flock(readers, fcntl.LOCK_UN)
        if copy is not None:
            _sweep(folder, readers, keep=copy.name)
    finally:
        os.close(readers)


def _take_copy(git_dir: Path, folder: Path) -> Path | None:
    """The copy of the index as it is now, made when there is none."""
    try:
        with open(git_dir / "index", "rb") as fh:
            st = os.fstat(fh.fileno())
            copy = folder / f"index-{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"  # not ctime: a link moves it
            if copy.is_file():
                return copy
            tmp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}"
            _link_or_copy(git_dir / "index", fh, st, tmp)
            os.replace(tmp, copy)
            return copy
    except OSError:
        return None


def _link_or_copy(index: Path, fh: BinaryIO, st: os.stat_result, dest: Path) -> None:
    """A hard link to the open index when the name still holds it, else a copy. Sharing the inode is
    safe: git never writes an index in place, it renames a new file over the name, so the agent's
    next write leaves this version alone and ours never reaches the agent's."""
    try:
        os.link(index, dest)
        linked = os.stat(dest)
        if (linked.st_ino, linked.st_dev) == (st.st_ino, st.st_dev):
            return
        dest.unlink()  # the agent replaced its index in between: copy the version we opened
    except OSError:
        dest.unlink(missing_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(fh, out)


def _sweep(folder: Path, readers: int, keep: str) -> None:
    """With no dashboard reading: remove all but ``keep`` (older copies, a killed git's lock on a
    copy, a killed dashboard's temp file). When another dashboard reads, the next one sweeps."""
    try:
        if not set(os.listdir(folder)) - {keep, READERS_FILE}:
            return
        fcntl.flock(readers, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for name in os.listdir(folder):
            if name not in (keep, READERS_FILE):
                (folder / name).unlink(missing_ok=True)
    except OSError:  # busy (another dashboard reads), or the worktree is going away
        return


def read_worktree(path: Path, untracked_cache: bool = True) -> WorktreeRead:
    """Uncommitted and unmerged paths of one worktree: one ``git status --porcelain=v2``, on the
    dashboard's own copy of the index when there can be one (``private_index``), with git's
    untracked cache unless ``untracked_cache`` is False (``core.untrackedCache=false``)."""
    git_dir = git.worktree_git_dir(path)
    argv = ("status", "--porcelain=v2", "-z", "--untracked-files=all")
    with private_index(git_dir) if git_dir is not None else nullcontext() as copy:
        if copy is None:
            res = _git(*argv, cwd=path)
        else:
            cache = "true" if untracked_cache else "false"
            res = git.run(
                "-c", f"core.untrackedCache={cache}", "-c", "status.showUntrackedFiles=all", *argv,
                cwd=path, env={"GIT_INDEX_FILE": str(copy)},
            )  # fmt: skip
    dirty: list[str] = []
    conflicted: list[str] = []
    records = res.stdout.split(b"\0")
    i = 0
    while i < len(records):
        rec = records[i]
        i += 1
        if not rec or rec[:1] == b"#":
            continue
        kind = rec[:1]
        if kind == b"1":
            fields = rec.split(b" ", 8)
        elif kind == b"2":
            fields = rec.split(b" ", 9)
            if i < len(records) and records[i]:
                dirty.append(records[i].decode("utf-8", "surrogateescape"))  # the rename's source
            i += 1
        elif kind == b"u":
            fields = rec.split(b" ", 10)
        elif kind in (b"?", b"!"):
            fields = rec.split(b" ", 1)
        else:
            continue
        name = fields[-1].decode("utf-8", "surrogateescape")
        dirty.append(name)
        if kind == b"u":
            conflicted.append(name)
    return WorktreeRead(tuple(dirty), tuple(conflicted))


@dataclass(frozen=True)
class Divergence:
    ahead: int
    behind: int
    merge_base: str | None


def divergence(cwd: Path, base: str, tip: str) -> Divergence:
    """Commits ``tip`` has that ``base`` lacks and the reverse, and their merge base."""
    res = _git("rev-list", "--left-right", "--boundary", f"{base}...{tip}", cwd=cwd)
    ahead = behind = 0
    bounds: list[str] = []
    for line in res.text.splitlines():
        mark, oid = line[:1], line[1:]
        if mark == ">":
            ahead += 1
        elif mark == "<":
            behind += 1
        elif mark == "-":
            bounds.append(oid)
    if ahead == 0:
        return Divergence(0, behind, tip)
    if behind == 0:
        return Divergence(ahead, 0, base)
    if len(bounds) == 1:
        return Divergence(ahead, behind, bounds[0])
    mb = git.run("merge-base", base, tip, cwd=cwd, check=False, optional_locks=False).text.strip()
    return Divergence(ahead, behind, mb or None)


def changed_paths_many(cwd: Path, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, ...]]:
    """For each (old, new) commit pair, the paths that differ: one ``git diff-tree --stdin``."""
    if not pairs:
        return []
    data = "".join(f"{new} {old}\n" for old, new in pairs).encode()
    res = _git("diff-tree", "--stdin", "--always", "-r", "-z", "--name-only", "--no-renames", cwd=cwd, input=data)
    tokens = git.split_z(res.stdout)
    result: list[list[str]] = []
    k = 0
    for tok in tokens:
        if k < len(pairs) and tok == pairs[k][1]:
            result.append([])
            k += 1
        elif result:
            result[-1].append(tok)
    while len(result) < len(pairs):
        result.append([])
    return [tuple(r) for r in result]


def in_progress_operation(worktree: Path) -> tuple[str | None, Path | None]:
    """(rebase | merge | cherry-pick | revert in progress, or None; the worktree's private git dir)."""
    git_dir = git.worktree_git_dir(worktree)
    if git_dir is None:
        return None, None
    return git.operation_in_progress(git_dir), git_dir


# --- reading the pieces other areas own --------------------------------------------------------------


def read_agent(ws: Workspace, name: str) -> tuple[int | None, bool]:
    try:
        text = agent_pid_file(ws, name).read_text(encoding="utf-8")
    except OSError:
        return None, False
    try:
        pid = int(text.split()[0])
    except (ValueError, IndexError):
        return None, False
    return pid, pid_alive(pid)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StreamsError):
        return exc.message
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
    return f"{type(exc).__name__}: {exc}"


# --- collecting ---------------------------------------------------------------------------------------


@dataclass
class _Row:
    """A row while it is being filled in."""

    name: str
    state: PlaceState
    branch: str
    worktree: Path | None
    head: str | None = None
    committed: float | None = None
    progress: Progress | None = None
    ahead: int | None = None
    behind: int | None = None
    merge_base: str | None = None
    dirty: tuple[str, ...] = ()
    conflicted: tuple[str, ...] = ()
    operation: str | None = None
    committed_changes: tuple[str, ...] = ()
    out_of_scope: tuple[ScopeIssue, ...] = ()
    predicted: tuple[str, ...] = ()
    errors: list[str] = field(default_factory=list)


# ``coordinator.sync.predict_conflicts``: the core cannot import the coordinator, so the CLI passes it.
Predictor = Callable[[Workspace, Config, Sequence[str]], "dict[str, list[str]]"]


class Collector:
    """Collects snapshots of the streams in ``names`` (all when empty).

    ``predict`` answers "which paths would a rebase onto the base conflict on" for a list of
    streams (``coordinator.sync.predict_conflicts``); without it, no predictions are made.

    Keep one across refreshes (``--watch``): divergence and committed changes are cached by commit
    ids, and the thread pool is reused. ``close()`` (or ``with``) shuts the pool down.
    """

    def __init__(
        self,
        ws: Workspace,
        config: Config,
        names: Sequence[str] = (),
        *,
        predict: Predictor | None = None,
        threads: int | None = None,
    ) -> None:
        self.ws = ws
        self.predict = predict
        self.config = config
        self.names = tuple(names)
        config.select(list(self.names))  # fail early on unknown names
        self.threads = max(1, threads or DEFAULT_THREADS)
        self._pool: ThreadPoolExecutor | None = None
        self._divergence: dict[tuple[str, str, str], Divergence] = {}
        self._changes: dict[tuple[str, str], tuple[str, ...]] = {}
        self._predicted: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._worktrees: dict[Path, WorktreeRead] = {}  # the last git status of each worktree
        self._untracked: bool | None = None

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def set_config(self, config: Config) -> None:
        config.select(list(self.names))
        self.config = config

    def _untracked_cache(self) -> bool:
        """False when the user turned git's untracked cache off (a file system whose directory
        times cannot be trusted); read once."""
        if self._untracked is None:
            res = git.run("config", "--get", "core.untrackedCache", cwd=self.ws.main_root, check=False)
            self._untracked = res.text.strip().lower() not in ("false", "no", "off", "0")
        return self._untracked

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="streams-status")
        return self._pool.submit(fn, *args)

    # The snapshot ----------------------------------------------------------------------------------

    def collect(self, now: float | None = None, *, unchanged: Callable[[Path], bool] | None = None) -> Snapshot:
        """A snapshot. ``unchanged(worktree)`` may vouch that nothing in a worktree changed since the
        last snapshot (a file watcher knows): its previous ``git status`` is reused."""
        ws, config = self.ws, self.config
        now = time.time() if now is None else now
        root = ws.main_root
        warnings: list[str] = []
        local_base = f"refs/heads/{config.base}"
        remote_base = f"refs/remotes/{config.remote}/{config.base}" if config.remote else None
        prefix = f"refs/heads/{config.branch_prefix}"

        tips_f = self._submit(ref_tips, root, [r for r in (local_base, remote_base) if r] + [prefix.rstrip("/")])
        worktrees = git.worktrees(root)
        tips: dict[str, RefTip] = tips_f.result()
        # What sync rebases onto: <remote>/<base> as last fetched when a remote is set, else the base.
        base_ref = remote_base if remote_base in tips else local_base
        base_tip = tips[base_ref].oid if base_ref in tips else None
        if base_tip is None:
            warnings.append(f"base branch {config.base!r} does not exist: ahead/behind and predictions are unknown")

        rows = self._rows(worktrees, tips, prefix)

        # Concurrent git: the prediction first (a chain of short git calls that would otherwise end
        # last), then one rev-list per branch and one status per worktree.
        predict_f = None
        if self.predict is not None and base_tip is not None:
            predict_f = self._submit(self._predict, base_tip, rows)
        status_f: dict[str, Future[WorktreeRead]] = {}
        reused: dict[str, WorktreeRead] = {}
        div_f: dict[str, Future[Divergence]] = {}
        for r in rows:
            if r.state in (STARTED, UNCONFIGURED) and r.worktree is not None:
                cached = self._worktrees.get(r.worktree)
                if cached is not None and unchanged is not None and unchanged(r.worktree):
                    reused[r.name] = cached
                else:
                    status_f[r.name] = self._submit(read_worktree, r.worktree, self._untracked_cache())
            if r.head is not None and base_tip is not None:
                key = (base_tip, r.head, base_ref)
                if key not in self._divergence:
                    div_f[r.name] = self._submit(divergence, root, base_tip, r.head)

        # Meanwhile, the files: progress, leases, halts, agents.
        for r in rows:
            if r.state in (STARTED, UNCONFIGURED) and r.worktree is not None:
                try:
                    r.progress = read_progress(r.worktree, r.name)
                except (StreamsError, OSError, UnicodeDecodeError) as exc:
                    r.errors.append(f"progress file: {_describe(exc)}")
                r.operation, _ = in_progress_operation(r.worktree)
        leases = self._leases(warnings)
        halts = self._halts(warnings)

        self._worktrees = {}
        for r in rows:
            if r.name in reused:
                wt = reused[r.name]
                r.dirty, r.conflicted = wt.dirty, wt.conflicted
                if r.worktree is not None:
                    self._worktrees[r.worktree] = wt
            elif r.name in status_f:
                try:
                    wt = status_f[r.name].result()
                    r.dirty, r.conflicted = wt.dirty, wt.conflicted
                    if r.worktree is not None:
                        self._worktrees[r.worktree] = wt
                except (StreamsError, OSError) as exc:
                    r.errors.append(_unreadable(r, exc))
            if r.head is not None and base_tip is not None:
                key = (base_tip, r.head, base_ref)
                try:
                    if r.name in div_f:
                        self._divergence[key] = div_f[r.name].result()
                    d = self._divergence[key]
                    r.ahead, r.behind, r.merge_base = d.ahead, d.behind, d.merge_base
                except (StreamsError, OSError) as exc:
                    r.errors.append(f"ahead/behind: {_describe(exc)}")
        if predict_f is not None:
            try:
                predicted: dict[str, tuple[str, ...]] = predict_f.result()
                for r in rows:
                    r.predicted = predicted.get(r.name, ())
            except (StreamsError, OSError) as exc:
                warnings.append(f"conflict prediction failed: {_describe(exc)}")

        self._committed_changes(rows, warnings)
        self._scope(rows, warnings)
        self._trim_caches()
        return self._snapshot(rows, leases, halts, base_ref, base_tip, now, warnings)

    def _rows(self, worktrees: list[git.Worktree], tips: dict[str, RefTip], prefix: str) -> list[_Row]:
        config = self.config
        by_name: dict[str, git.Worktree] = {}
        for w in worktrees:
            if w.bare:
                continue
            name: str | None = None
            if w.branch and w.branch.startswith(prefix):
                name = w.branch[len(prefix) :]
            elif w.detached:  # mid-rebase the branch is not checked out: the marker says whose it is
                git_dir = git.worktree_git_dir(w.path)
                name = read_marker(git_dir) if git_dir is not None else None
            if name is not None and name not in by_name:
                by_name[name] = w
        rows: list[_Row] = []
        selected = config.select(list(self.names))
        for s in selected:
            ref = f"refs/heads/{config.branch(s.name)}"
            tip = tips.get(ref)
            wt = by_name.get(s.name)
            if wt is not None:
                state = MISSING if (wt.prunable or not wt.path.is_dir()) else STARTED
                path: Path | None = wt.path
            else:
                state = BRANCH_ONLY if tip is not None else NOT_STARTED
                path = config.worktree_path(self.ws.main_root, s.name)
            row = _Row(s.name, state, config.branch(s.name), path)
            if tip is not None:
                row.head, row.committed = tip.oid, tip.committed
            if state == MISSING:
                row.errors.append(
                    f"worktree {wt.path if wt else path} is gone: run `git worktree prune` and "
                    f"`streams start {s.name}` (the branch is kept)"
                )
            rows.append(row)
        if not self.names:
            for name, wt in sorted(by_name.items()):
                if name in config.names:
                    continue
                branch = wt.branch[len("refs/heads/") :] if wt.branch else f"{config.branch_prefix}{name}"
                row = _Row(name, UNCONFIGURED, branch, wt.path)
                tip = tips.get(f"refs/heads/{branch}")
                if tip is not None:
                    row.head, row.committed = tip.oid, tip.committed
                rows.append(row)
        return rows

    def _predict(self, base_tip: str, rows: list[_Row]) -> dict[str, tuple[str, ...]]:
        """Predicted conflicts, asking ``predict`` only about streams whose tips moved."""
        assert self.predict is not None
        want = [r for r in rows if r.state != UNCONFIGURED and r.head is not None]
        keys = {r.name: (base_tip, r.head or "", r.name) for r in want}
        todo = [r.name for r in want if keys[r.name] not in self._predicted]
        if todo:
            found = self.predict(self.ws, self.config, todo)
            for name in todo:
                self._predicted[keys[name]] = tuple(sorted(found.get(name, ())))
        return {name: self._predicted[key] for name, key in keys.items()}

    def _leases(self, warnings: list[str]) -> list[Lease]:
        try:
            return list_leases(self.ws.common_dir)
        except (StreamsError, OSError) as exc:
            warnings.append(f"locks unreadable: {_describe(exc)}")
            return []

    def _halts(self, warnings: list[str]) -> dict[str, Halt]:
        try:
            return dict(read_halts(self.ws))
        except (StreamsError, OSError, ValueError) as exc:
            warnings.append(f"state.json unreadable: {_describe(exc)}")
            return {}

    def _committed_changes(self, rows: list[_Row], warnings: list[str]) -> None:
        todo: list[tuple[str, str]] = []
        for r in rows:
            if r.head and r.merge_base and r.ahead and (r.merge_base, r.head) not in self._changes:
                todo.append((r.merge_base, r.head))
        todo = list(dict.fromkeys(todo))
        try:
            for pair, paths in zip(todo, changed_paths_many(self.ws.main_root, todo), strict=True):
                self._changes[pair] = paths
        except (StreamsError, OSError) as exc:
            warnings.append(f"changed paths unknown: {_describe(exc)}")
        for r in rows:
            if r.head and r.merge_base and r.ahead:
                r.committed_changes = self._changes.get((r.merge_base, r.head), ())

    def _scope(self, rows: list[_Row], warnings: list[str]) -> None:
        for r in rows:
            if not r.dirty or r.state != STARTED:
                continue
            try:
                found = check_paths(self.ws, self.config, r.name, r.dirty)
            except (StreamsError, OSError) as exc:
                r.errors.append(f"scope check: {_describe(exc)}")
                continue
            r.out_of_scope = tuple(ScopeIssue(v.path, v.reason) for v in found)

    def _trim_caches(self) -> None:
        for cache in (self._divergence, self._changes, self._predicted):
            if len(cache) > 4096:
                cache.clear()

    def _snapshot(
        self,
        rows: list[_Row],
        leases: list[Lease],
        halts: dict[str, Halt],
        base_ref: str,
        base_tip: str | None,
        now: float,
        warnings: list[str],
    ) -> Snapshot:
        changed: dict[str, frozenset[str]] = {}
        for r in rows:
            paths = set(r.committed_changes) | set(r.dirty)
            paths.discard(progress_path(r.name))
            changed[r.name] = frozenset(paths)
        held: dict[str, list[LeaseView]] = {}
        live = 0
        for lease in leases:
            if not lease.live(now):
                continue
            live += 1
            held.setdefault(lease.stream, []).append(lease.view(now))
        result: list[StreamStatus] = []
        for r in rows:
            overlaps = {
                other: tuple(sorted(changed[r.name] & paths))
                for other, paths in changed.items()
                if other != r.name and changed[r.name] & paths
            }
            p = r.progress
            h = halts.get(r.name)
            halt = None
            if h is not None:
                halt = HaltInfo(
                    files=tuple(h.files),
                    onto=str(h.onto),
                    original_tip=str(h.original_tip),
                    time=str(h.time),
                    reason=h.reason,
                    upstream=h.upstream,
                )
            pid, running = read_agent(self.ws, r.name)
            result.append(
                StreamStatus(
                    name=r.name,
                    state=r.state,
                    branch=r.branch,
                    worktree=str(r.worktree) if r.worktree is not None else None,
                    head=r.head,
                    status=p.status if p is not None else None,
                    completion=p.completion if p is not None else None,
                    current_task=p.current if p is not None else "",
                    blocked_items=p.blocked if p is not None else (),
                    progress_updated=p.updated if p is not None else "",
                    ahead=r.ahead,
                    behind=r.behind,
                    dirty=r.dirty,
                    out_of_scope=r.out_of_scope,
                    locks=tuple(held.get(r.name, ())),
                    halted=halt is not None,
                    halt=halt,
                    operation=r.operation,
                    conflicted=r.conflicted,
                    predicted_conflicts=r.predicted,
                    changed=tuple(sorted(changed[r.name])),
                    overlaps=overlaps,
                    last_commit=iso_utc(r.committed) if r.committed else None,
                    last_commit_age=max(0.0, round(now - r.committed, 1)) if r.committed else None,
                    agent_pid=pid,
                    agent_running=running,
                    errors=tuple(r.errors),
                )
            )
        return Snapshot(
            base=self.config.base,
            base_ref=base_ref,
            base_tip=base_tip,
            time=iso_utc(now),
            summary=summarize(result, live),
            streams=tuple(result),
            warnings=tuple(warnings),
        )


def _unreadable(r: _Row, exc: BaseException) -> str:
    if r.worktree is not None and not r.worktree.is_dir():
        return f"worktree {r.worktree} is gone: run `git worktree prune` and `streams start {r.name}`"
    return f"cannot read worktree {r.worktree}: {_describe(exc)}"


def collect(
    ws: Workspace,
    config: Config,
    names: Sequence[str] = (),
    *,
    predict: Predictor | None = None,
    threads: int | None = None,
) -> Snapshot:
    """One snapshot of the streams in ``names`` (all when empty)."""
    with Collector(ws, config, names, predict=predict, threads=threads) as c:
        return c.collect()
