"""The dashboard's data, collected: a ``Snapshot`` of every stream (the model, and its JSON fields,
are in ``streams.dashboard``). No printing.

``collect(ws, config)`` reads everything the dashboard shows, with as few git processes as it can:

- one ``git worktree list --porcelain -z`` and one ``git for-each-ref`` (tips and commit dates);
- one more ``git for-each-ref`` for every stream's ahead/behind (``git.divergence_many``: git's
  ``%(upstream:track)`` with the base as each branch's upstream for that call); per stream that has
  diverged (commits on both sides) one ``git rev-list --left-right --boundary`` for its merge base,
  and per stream with commits of its own one ``rev-list --cherry-pick`` (what AHEAD counts);
- per started stream, one ``git status --porcelain=v2 -z --untracked-files=all`` (dirty files,
  unmerged paths), in a small thread pool while the history questions above run;
- one ``git diff-tree --stdin`` for the paths every stream changed since its merge base, and the
  merge-tree prediction of ``streams.predict`` for the streams the base moved away from.

The dashboard never takes ``index.lock`` from an agent that is committing: ``git status`` runs on
the dashboard's own copy of the worktree's index (``private_index``), every other git call with
``GIT_OPTIONAL_LOCKS=0``. A row whose state cannot be read carries its ``errors``; the
other rows are unaffected.

A ``Collector`` kept across refreshes (``--watch``) pays only for what moved: what is keyed by
commit ids is cached; the refs and worktrees are read again only when a file git keeps them in
changed (``git_stamp``: the stat of ``packed-refs``, of the loose refs read, of each worktree's
``HEAD``, ``index`` and git dir; a few dozen ``stat`` calls instead of two git processes); a
worktree's ``git status`` runs again only when the caller cannot vouch that its files are unchanged
(a file watcher) or its index changed; a progress file is parsed again only when its stat changed.

Agents and runs: from the latest run's records (``runs/<id>/state.json``, written by the
runner): a stream's agent counts as running while its last attempt has not ended and its pid is
alive with the start time recorded for it (a reused pid is never the agent).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streams
from streams import git, hooks_install, places, runstate
from streams.config import Config, progress_path
from streams.dashboard import (
    BRANCH_ONLY,
    LANDED,
    MISSING,
    NOT_STARTED,
    STARTED,
    UNCONFIGURED,
    RunCell,
    RunView,
    ScopeIssue,
    Snapshot,
    StreamStatus,
    Summary,
    summarize,
)
from streams.git import RefTip
from streams.kernel import hookstate, runview
from streams.kernel.durations import iso_utc
from streams.kernel.errors import StreamsError
from streams.kernel.gitparse import line_work
from streams.kernel.locks import Lease, LeaseView, list_leases
from streams.landings import landed
from streams.places import Place, PlaceState
from streams.predict import conflicts_with
from streams.private_index import READERS_FILE, WorktreeRead, private_index, read_worktree
from streams.progress import Progress, read_progress
from streams.progress import parse as parse_progress
from streams.runclass import RunStatus
from streams.runclass import StreamStatus as Stage
from streams.scope import check_paths
from streams.state import Halt, read_halts
from streams.workspace import Workspace
from streams.worktrees import compared_ref, unmerged_commits

__all__ = [
    "BRANCH_ONLY",
    "MISSING",
    "NOT_STARTED",
    "READERS_FILE",
    "STARTED",
    "UNCONFIGURED",
    "Collector",
    "ScopeIssue",
    "Snapshot",
    "StreamStatus",
    "Summary",
    "WorktreeRead",
    "collect",
    "private_index",
    "read_worktree",
    "summarize",
]

DEFAULT_THREADS = 4


# --- reading the pieces other areas own --------------------------------------------------------------


def read_run(ws: Workspace) -> tuple[RunView | None, dict[str, tuple[RunCell, int | None, bool]]]:
    """The latest run, and per stream of it: its cell, its agent's pid, whether that agent runs."""
    latest = runstate.read_latest(ws)
    if latest is None:
        return None, {}
    record, runner = latest
    alive = runner is not None and runner.alive
    status = str(record.status)
    if not alive and record.status in (RunStatus.RUNNING, RunStatus.HALTING):
        status = str(RunStatus.INTERRUPTED)
    cells: dict[str, tuple[RunCell, int | None, bool]] = {}
    for name, s in record.streams.items():
        last = s.last
        cell = RunCell(record.run_id, s.wave, str(s.status), len(s.attempts), s.klass, s.cause)
        cells[name] = (cell, last.pid if last and last.pid else None, bool(last and runstate.agent_alive(last)))
    view = RunView(
        record.run_id, status, record.wave, len(record.waves), alive, record.paused_by, *live_figures(record, status)
    )
    return view, cells


def live_figures(
    record: runstate.RunRecord, status: str, now: float | None = None
) -> tuple[int, int, int, int, float, float | None]:
    """(running, queued, verified, failed, elapsed, expected remaining) of a run, from its state
    alone (no git): the ``run.*`` figures of the dashboard's summary line (``kernel.runview.figures``)."""
    streams = record.streams.values()
    return runview.figures(
        [str(s.status) for s in streams],
        [a.ended - a.started for s in streams for a in s.attempts if a.ended and a.started],
        [last.started for s in streams if s.status is Stage.RUNNING and (last := s.last) is not None and last.started],
        status,
        record.started,
        record.ended,
        time.time() if now is None else now,
    )


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
    ref: str
    worktree: Path | None
    head: str | None = None
    authored: float | None = None
    progress: Progress | None = None
    ahead: int | None = None  # every commit not on the base (``rev-list``): what the paths come from
    behind: int | None = None
    merge_base: str | None = None
    unmerged: int | None = None  # commits with work not on the base: the AHEAD shown
    dirty: tuple[str, ...] = ()
    conflicted: tuple[str, ...] = ()
    operation: str | None = None
    committed_changes: tuple[str, ...] = ()
    out_of_scope: tuple[ScopeIssue, ...] = ()
    committed_out_of_scope: tuple[ScopeIssue, ...] = ()
    predicted: tuple[str, ...] = ()
    errors: list[str] = field(default_factory=list)


class Collector:
    """Collects snapshots of the streams in ``names`` (all when empty).

    With ``predict``, each snapshot says which paths a rebase onto the base would conflict on
    (``streams.predict``, asked only about streams whose tips moved).

    Keep one across refreshes (``--watch``): divergence and committed changes are cached by commit
    ids, and the thread pool is reused. ``close()`` (or ``with``) shuts the pool down.
    """

    def __init__(
        self,
        ws: Workspace,
        config: Config,
        names: Sequence[str] = (),
        *,
        predict: bool = False,
        threads: int | None = None,
    ) -> None:
        self.ws = ws
        self.predict = predict
        self.config = config
        self.names = tuple(names)
        config.select(list(self.names))  # fail early on unknown names
        self.threads = max(1, threads or DEFAULT_THREADS)
        self._pool: ThreadPoolExecutor | None = None
        self._divergence: dict[tuple[str, str, str], git.Divergence] = {}
        self._changes: dict[tuple[str, str], tuple[str, ...]] = {}
        self._predicted: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._unmerged: dict[tuple[str, str, str], int] = {}
        self._worktrees: dict[Path, WorktreeRead] = {}  # the last git status of each worktree
        self._untracked: bool | None = None
        self._hooks_path: str | None = None
        self._hooks_path_read = False
        self._landed: dict[str, str] = {}  # stream -> the commit it landed as (merge.json)
        self._stamp: tuple[object, ...] | None = None  # git_stamp when the refs and worktrees were read
        self._state: tuple[dict[str, RefTip], list[git.Worktree]] | None = None
        self._index_stamps: dict[Path, tuple[object, ...]] = {}
        self._progress_cache: dict[Path, tuple[tuple[int, int, int], Progress | None]] = {}

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
            value = git.config_get(self.ws.main_root, "core.untrackedCache") or ""
            self._untracked = value.lower() not in ("false", "no", "off", "0")
        return self._untracked

    def _progress(self, r: _Row) -> Progress | None:
        """The stream's progress: its worktree's file; during a rebase (a halt) its branch tip's,
        not the half-rebased file's (which holds the upstream's older version, or conflict markers)."""
        assert r.worktree is not None
        if r.operation != "rebase" or r.head is None:
            path = r.worktree / progress_path(r.name)
            key = _stat_key(str(path), int((time.time() - RACY_SECONDS) * 1e9))
            cached = self._progress_cache.get(path)
            if key is not None and cached is not None and cached[0] == key:
                return cached[1]
            progress = read_progress(r.worktree, r.name)
            if key is not None:
                self._progress_cache[path] = (key, progress)
            return progress
        rel = progress_path(r.name)
        blob = git.read_blob(self.ws.main_root, r.head, rel)
        return parse_progress(blob.decode("utf-8"), display=f"{r.branch}:{rel}") if blob is not None else None

    def _hooks(self) -> tuple[dict[str, str], str | None]:
        """Each scope hook's state (missing, foreign, outdated are flagged), and ``core.hooksPath``
        when set (read once: a git process)."""
        if not self._hooks_path_read:
            self._hooks_path, self._hooks_path_read = hooks_install.hooks_path(self.ws), True
        report = hooks_install.status(self.ws, hooks_path_value=self._hooks_path)
        hookstate.remember(
            str(self.ws.common_dir),
            version=streams.__version__,
            package=str(hooks_install.TEMPLATE_DIR.parent),
            hooks=[
                (h.name, str(h.path), str(hooks_install.TEMPLATE_DIR / f"{h.name}.in"), str(h.state), h.python)
                for h in report.hooks
            ],
        )  # for the quick status --json (``streams.cli.quickstatus``)
        return {h.name: str(h.state) for h in report.hooks}, report.hooks_path

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="streams-status")
        return self._pool.submit(fn, *args)

    # The snapshot ----------------------------------------------------------------------------------

    def collect(self, now: float | None = None, *, unchanged: Callable[[Path], bool] | None = None) -> Snapshot:
        """A snapshot. ``unchanged(worktree)`` may vouch that nothing in a worktree changed since the
        last snapshot (a file watcher knows): its previous ``git status`` is reused, unless the
        worktree's index changed meanwhile."""
        config = self.config
        now = time.time() if now is None else now
        warnings: list[str] = []
        local_base = config.base_ref()
        remote_base = config.upstream_ref() if config.remote else None
        tips, listed = self._git_state([r for r in (local_base, remote_base) if r] + [config.branch_ref_prefix()])
        base_ref = compared_ref(config, tips)  # what sync rebases onto, and `stop` counts against
        base_tip = tips[base_ref].oid if base_ref in tips else None
        if base_tip is None:
            warnings.append(f"base branch {config.base!r} does not exist: ahead/behind and predictions are unknown")

        rows, places_found = self._rows(tips, listed)

        # One git status per worktree that may have changed, in the pool; meanwhile this thread asks
        # the history questions (one for-each-ref for all, then only what it could not answer).
        status_f: dict[str, Future[WorktreeRead]] = {}
        reused: dict[str, WorktreeRead] = {}
        for r in rows:
            if r.state in (STARTED, UNCONFIGURED) and r.worktree is not None:
                cached = self._worktrees.get(r.worktree)
                stamp = _index_stamp(r.worktree)
                if (
                    cached is not None
                    and unchanged is not None
                    and unchanged(r.worktree)
                    and stamp is not None
                    and self._index_stamps.get(r.worktree) == stamp
                ):
                    reused[r.name] = cached
                else:
                    status_f[r.name] = self._submit(read_worktree, r.worktree, self._untracked_cache())
                if stamp is not None:
                    self._index_stamps[r.worktree] = stamp
        predicted: dict[str, tuple[str, ...]] | None = None
        if base_tip is not None:
            self._history(rows, base_ref, base_tip)
            if self.predict:
                try:
                    predicted = self._predict(base_ref, base_tip, rows, tips, places_found)
                except (StreamsError, OSError) as exc:
                    warnings.append(f"conflict prediction failed: {_describe(exc)}")

        # The files: progress, leases, halts, agents.
        for r in rows:
            if r.state in (STARTED, UNCONFIGURED) and r.worktree is not None:
                r.operation, _ = git.worktree_operation(r.worktree)
                try:
                    r.progress = self._progress(r)
                except (StreamsError, OSError, UnicodeDecodeError) as exc:
                    r.errors.append(f"progress file: {_describe(exc)}")
        leases = self._leases(warnings)
        halts = self._halts(warnings)
        self._landed = self._landings(warnings)

        self._take_reads(rows, reused, status_f)
        if predicted is not None:
            for r in rows:
                r.predicted = predicted.get(r.name, ())

        self._committed_changes(rows, warnings)
        self._scope(rows, warnings)
        self._trim_caches()
        return self._snapshot(rows, leases, halts, base_ref, base_tip, now, warnings)

    def _git_state(self, patterns: list[str]) -> tuple[dict[str, RefTip], list[git.Worktree]]:
        """The tips of the refs matching ``patterns`` and git's list of worktrees: read again only
        when ``git_stamp`` says a file they come from changed (taken before the reads, so a change
        during them is seen next time)."""
        root = self.ws.main_root
        stamp = git_stamp(self.ws.common_dir, patterns)
        if stamp is not None and stamp == self._stamp and self._state is not None:
            return self._state
        tips_f = self._submit(git.ref_tips, root, [p.rstrip("/") for p in patterns])
        listed = git.worktrees(root)
        state = (tips_f.result(), listed)
        self._stamp, self._state = stamp, state
        return state

    def _take_reads(
        self, rows: list[_Row], reused: dict[str, WorktreeRead], status_f: dict[str, Future[WorktreeRead]]
    ) -> None:
        """Each started row's dirty and conflicted paths: reused, or from its ``git status``."""
        self._worktrees = {}
        for r in rows:
            if r.name in reused:
                wt = reused[r.name]
            elif r.name in status_f:
                try:
                    wt = status_f[r.name].result()
                except (StreamsError, OSError) as exc:
                    r.errors.append(_unreadable(r, exc))
                    continue
            else:
                continue
            r.dirty, r.conflicted = wt.dirty, wt.conflicted
            if r.worktree is not None:
                self._worktrees[r.worktree] = wt

    def _history(self, rows: list[_Row], base_ref: str, base_tip: str) -> None:
        """Each row's ahead, behind, merge base and unmerged count: cached by commit ids; the others
        from one ``divergence_many`` (taken only when it read the base at ``base_tip`` and each tip
        at the row's head, and the refs' stamp did not change meanwhile), then per stream only what
        it cannot give (a merge base of a diverged stream, the commits whose work is not on the
        base for a stream with commits of its own)."""
        todo = [r for r in rows if r.head is not None and (base_tip, r.head, base_ref) not in self._divergence]
        many: dict[str, tuple[str, int, int]] = {}
        if todo and base_ref.startswith("refs/"):
            before = self._stamp
            try:
                read_base, many = git.divergence_many(self.ws.main_root, base_ref, [r.ref for r in todo])
            except (StreamsError, OSError):
                read_base, many = None, {}
            if read_base != base_tip or (
                before is not None and git_stamp(self.ws.common_dir, self._patterns()) != before
            ):
                many = {}  # the base moved meanwhile: the counts may be against another commit
        counted: list[_Row] = []
        for r in rows:
            if r.head is None:
                continue
            key = (base_tip, r.head, base_ref)
            try:
                if key not in self._divergence:
                    self._divergence[key] = _divergence_of(self.ws.main_root, base_tip, r, many.get(r.ref))
                d = self._divergence[key]
                r.ahead, r.behind, r.merge_base = d.ahead, d.behind, d.merge_base
                counted.append(r)
            except (StreamsError, OSError) as exc:
                r.errors.append(f"ahead/behind: {_describe(exc)}")
        self._unmerged_counts(counted, base_tip)

    def _unmerged_counts(self, rows: list[_Row], base_tip: str) -> None:
        """Each row's commits with work not on the base (``worktrees.unmerged_commits``): cached by
        commit ids; none without commits of its own; for the streams the base is an ancestor of
        (no patch of theirs can be on it) from one ``git log`` of them all when their commits are a
        line (no merge: rev-list's path limiting then counts exactly the commits touching more than
        the progress file); else its own ``rev-list --cherry-pick``."""
        todo = [r for r in rows if (base_tip, r.head, r.name) not in self._unmerged]
        ahead_only = [r for r in todo if r.ahead and r.behind == 0 and r.head is not None]
        graph: dict[str, tuple[list[str], list[str]]] = {}
        if ahead_only:
            try:
                graph = git.commits_with_paths(self.ws.main_root, [r.head or "" for r in ahead_only], [base_tip])
            except (StreamsError, OSError):
                graph = {}
        for r in todo:
            assert r.head is not None
            try:
                count = 0 if not r.ahead else line_work(graph, r.head, progress_path(r.name)) if r.behind == 0 else None
                if count is None:
                    count = self._count_unmerged(r.name, base_tip, r.head)
                self._unmerged[(base_tip, r.head, r.name)] = count
            except (StreamsError, OSError) as exc:
                r.errors.append(f"commits not on the base: {_describe(exc)}")
        for r in rows:
            r.unmerged = self._unmerged.get((base_tip, r.head or "", r.name))

    def _patterns(self) -> list[str]:
        c = self.config
        return [r for r in (c.base_ref(), c.upstream_ref() if c.remote else None) if r] + [c.branch_ref_prefix()]

    def _count_unmerged(self, name: str, base_tip: str, head: str) -> int:
        return len(unmerged_commits(self.ws, self.config, name, base=base_tip, tip=head))

    def _rows(self, tips: dict[str, RefTip], listed: list[git.Worktree]) -> tuple[list[_Row], dict[str, Place]]:
        config = self.config
        found = places.locate(
            self.ws,
            config,
            self.names or None,
            unconfigured=not self.names,
            tips={ref: tip.oid for ref, tip in tips.items()},
            listed=listed,
        )
        rows: list[_Row] = []
        for p in found.values():
            row = _Row(p.name, p.state, p.branch, p.ref, p.worktree or p.path)
            tip = tips.get(p.ref)
            if tip is not None:
                row.head, row.authored = tip.oid, tip.authored
            if p.state == PlaceState.MISSING:
                row.errors.append(
                    f"worktree {p.path} is gone: run `git worktree prune` and "
                    f"`streams start {p.name}` (the branch is kept)"
                )
            rows.append(row)
        return rows, found

    def _predict(
        self, base_ref: str, base_tip: str, rows: list[_Row], tips: dict[str, RefTip], found: dict[str, Place]
    ) -> dict[str, tuple[str, ...]]:
        """Predicted conflicts against the upstream (``streams.predict``), asked only about streams
        whose tips moved and that the upstream moved away from (``behind``, when the rows were
        counted against the upstream: else git answers it)."""
        upstream = self.config.upstream_ref()
        if upstream not in tips:
            return {}
        upstream_tip = tips[upstream].oid
        want = [r for r in rows if r.state != UNCONFIGURED and r.head is not None]
        keys = {r.name: (upstream_tip, r.head or "", r.name) for r in want}
        todo = [r for r in want if keys[r.name] not in self._predicted]
        if todo:
            on_top = None
            if base_ref == upstream and base_tip == upstream_tip and all(r.behind is not None for r in todo):
                on_top = {found[r.name].ref for r in todo if r.behind == 0}
            names = [r.name for r in todo]
            conflicts = conflicts_with(self.ws, self.config, names, upstream_tip, found, on_top=on_top)
            for name in names:
                self._predicted[keys[name]] = tuple(sorted(conflicts.get(name, ())))
        return {name: self._predicted[key] for name, key in keys.items() if key in self._predicted}

    def _leases(self, warnings: list[str]) -> list[Lease]:
        try:
            return list_leases(self.ws.common_dir)
        except (StreamsError, OSError) as exc:
            warnings.append(f"locks unreadable: {_describe(exc)}")
            return []

    def _landings(self, warnings: list[str]) -> dict[str, str]:
        try:
            return landed(self.ws)
        except (StreamsError, OSError) as exc:
            warnings.append(f"merge.json unreadable: {_describe(exc)}")
            return {}

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
            for pair, paths in zip(todo, git.changed_paths_many(self.ws.main_root, todo), strict=True):
                self._changes[pair] = paths
        except (StreamsError, OSError) as exc:
            warnings.append(f"changed paths unknown: {_describe(exc)}")
        for r in rows:
            if r.head and r.merge_base and r.ahead:
                r.committed_changes = self._changes.get((r.merge_base, r.head), ())

    def _scope(self, rows: list[_Row], warnings: list[str]) -> None:
        """Out-of-scope paths: uncommitted (a conflicted path is the rebase's, not an edit), and
        committed since the merge base (shared paths pass: their leases were checked at commit)."""
        for r in rows:
            if r.state != STARTED or r.name not in self.config.names:
                continue
            conflicted = set(r.conflicted)
            edits = [p for p in r.dirty if p not in conflicted]
            try:
                if edits:
                    found = check_paths(self.ws, self.config, r.name, edits)
                    r.out_of_scope = tuple(ScopeIssue(v.path, v.reason) for v in found)
                if r.committed_changes:
                    found = check_paths(self.ws, self.config, r.name, r.committed_changes, leases=False)
                    r.committed_out_of_scope = tuple(ScopeIssue(v.path, v.reason) for v in found)
            except (StreamsError, OSError) as exc:
                r.errors.append(f"scope check: {_describe(exc)}")

    def _trim_caches(self) -> None:
        caches: tuple[dict[Any, Any], ...] = (
            self._divergence, self._changes, self._predicted, self._unmerged, self._progress_cache, self._index_stamps,
        )  # fmt: skip
        for cache in caches:
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
        held, live = _held_locks(leases, now)
        run, runs = read_run(self.ws)
        result: list[StreamStatus] = []
        for r in rows:
            overlaps = {
                other: tuple(sorted(changed[r.name] & paths))
                for other, paths in changed.items()
                if other != r.name and changed[r.name] & paths
            }
            p = r.progress
            halt = halts.get(r.name)
            if halt is not None and not (r.state == STARTED and r.operation):
                halt = None  # finished by hand, or the stream stopped: git says it is over (sync drops the record)
            cell, pid, running = runs.get(r.name, (None, None, False))
            merged = self._landed.get(r.name) if r.state == NOT_STARTED else None
            result.append(
                StreamStatus(
                    name=r.name,
                    state=LANDED if merged else r.state,
                    branch=r.branch,
                    worktree=str(r.worktree) if r.worktree is not None else None,
                    head=r.head,
                    status=p.status if p is not None else None,
                    completion=p.completion if p is not None else None,
                    current_task=p.current if p is not None else "",
                    blocked_items=p.blocked if p is not None else (),
                    progress_updated=p.updated if p is not None else "",
                    ahead=r.unmerged if r.ahead is not None else None,
                    behind=r.behind,
                    dirty=r.dirty,
                    out_of_scope=r.out_of_scope,
                    committed_out_of_scope=r.committed_out_of_scope,
                    locks=tuple(held.get(r.name, ())),
                    halted=halt is not None,
                    halt=halt,
                    operation=r.operation,
                    conflicted=r.conflicted,
                    predicted_conflicts=r.predicted,
                    changed=tuple(sorted(changed[r.name])),
                    overlaps=overlaps,
                    last_commit=iso_utc(r.authored) if r.authored else None,
                    last_commit_age=max(0.0, round(now - r.authored, 1)) if r.authored else None,
                    agent_pid=pid,
                    agent_running=running,
                    errors=tuple(r.errors),
                    landed=merged,
                    run=cell,
                )
            )
        return Snapshot(
            base=self.config.base,
            base_ref=base_ref,
            base_tip=base_tip,
            time=iso_utc(now),
            summary=summarize(result, live, *self._hooks()),
            streams=tuple(result),
            warnings=tuple(warnings),
            run=run,
        )


# --- what says git's answers may have changed ---------------------------------------------------------

RACY_SECONDS = 2.0  # a file changed this recently may change again with the same stat: not trusted


def _stat_key(path: str, racy_after: int) -> tuple[int, int, int] | None:
    """(inode, mtime, size) of ``path``, (0, 0, 0) when it does not exist; None when it changed too
    recently for its stat to tell the next change apart (a write within the file system's time
    granularity, into a reused inode, could leave all three alone)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (0, 0, 0)
    if st.st_mtime_ns >= racy_after:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def git_stamp(common_dir: Path, patterns: Sequence[str], now: float | None = None) -> tuple[object, ...] | None:
    """What changes whenever ``git for-each-ref PATTERNS`` or ``git worktree list`` may answer
    differently: the stat of ``packed-refs``, ``HEAD`` and ``config``, of every loose ref under the
    patterns (a ref is replaced by a rename: a new inode), and, per linked worktree, of its ``HEAD``,
    ``gitdir``, ``locked`` and rebase state, and whether the directory ``gitdir`` names exists.
    None when a file changed too recently to be trusted, or cannot be read: ask git."""
    racy_after = int(((time.time() if now is None else now) - RACY_SECONDS) * 1e9)
    common = str(common_dir)
    items: list[object] = []
    try:
        for name in ("packed-refs", "HEAD", "config"):
            items.append(_stat_key(os.path.join(common, name), racy_after))
        for pattern in patterns:
            _walk_refs(os.path.join(common, pattern.rstrip("/")), racy_after, items)
        wt_root = os.path.join(common, "worktrees")
        names = sorted(os.listdir(wt_root)) if os.path.isdir(wt_root) else []
        for name in names:
            folder = os.path.join(wt_root, name)
            items.append(name)
            for part in ("HEAD", "gitdir", "locked", "rebase-merge", "rebase-apply"):
                items.append(_stat_key(os.path.join(folder, part), racy_after))
            try:
                with open(os.path.join(folder, "gitdir"), encoding="utf-8", errors="surrogateescape") as fh:
                    items.append(os.path.exists(fh.read().strip()))
            except FileNotFoundError:
                items.append(None)
    except OSError:
        return None
    return None if None in items else tuple(items)


def _walk_refs(path: str, racy_after: int, items: list[object]) -> None:
    """The stat of the loose ref at ``path``, or of every file and directory below it."""
    if not os.path.isdir(path):
        items.append((path, _stat_key(path, racy_after)))
        return
    items.append((path, _stat_key(path, racy_after)))
    with os.scandir(path) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                _walk_refs(entry.path, racy_after, items)
            else:
                items.append((entry.path, _stat_key(entry.path, racy_after)))


def _index_stamp(worktree: Path) -> tuple[object, ...] | None:
    """The stat of a worktree's index and ``HEAD`` (its private git dir's): a stage, a commit or a
    checkout changes them. None when not to be trusted (see ``_stat_key``)."""
    git_dir = git.worktree_git_dir(worktree)
    if git_dir is None:
        return None
    racy_after = int((time.time() - RACY_SECONDS) * 1e9)
    items = (_stat_key(str(git_dir / "index"), racy_after), _stat_key(str(git_dir / "HEAD"), racy_after))
    return None if None in items else items


def _divergence_of(root: Path, base_tip: str, r: _Row, counted: tuple[str, int, int] | None) -> git.Divergence:
    """A row's divergence from what ``divergence_many`` counted for its tip (the merge base follows
    when one side has no commits of its own), else from its own ``rev-list``."""
    assert r.head is not None
    if counted is not None and counted[0] == r.head:
        _, ahead, behind = counted
        if ahead == 0:
            return git.Divergence(0, behind, r.head)
        if behind == 0:
            return git.Divergence(ahead, 0, base_tip)
    return git.divergence(root, base_tip, r.head)


def _held_locks(leases: list[Lease], now: float) -> tuple[dict[str, list[LeaseView]], int]:
    """The live leases by holding stream, in the one lease shape (``LeaseView``), and their count."""
    held: dict[str, list[LeaseView]] = {}
    live = 0
    for lease in leases:
        if lease.live(now):
            live += 1
            held.setdefault(lease.stream, []).append(lease.view(now))
    return held, live


def _unreadable(r: _Row, exc: BaseException) -> str:
    if r.worktree is not None and not r.worktree.is_dir():
        return f"worktree {r.worktree} is gone: run `git worktree prune` and `streams start {r.name}`"
    return f"cannot read worktree {r.worktree}: {_describe(exc)}"


def collect(
    ws: Workspace,
    config: Config,
    names: Sequence[str] = (),
    *,
    predict: bool = False,
    threads: int | None = None,
) -> Snapshot:
    """One snapshot of the streams in ``names`` (all when empty)."""
    with Collector(ws, config, names, predict=predict, threads=threads) as c:
        return c.collect()
