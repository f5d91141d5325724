"""The merge queue: land finished streams on the base, verified, in dependency order (DESIGN
"``streams merge``").

Per stream, in order (dependencies first, then the oldest work first): it must be clean (no
uncommitted change, no operation in progress in its worktree) and pass ``verify``; its candidate is
built on the base's current tip without touching any worktree (``git merge-tree``), with the
stream's progress file left out (bookkeeping never reaches the base); ``check`` runs on the
candidate in the integration worktree (detached, locked; never the user's checkout); then the base
moves by compare-and-swap, and a worktree that has the base checked out is brought along
(``read-tree -m -u``; if the user's uncommitted edits are in the way the base moves back and the
files are named). A stream that conflicts or fails its check is ejected with the reason; its
dependents are skipped; the others land.

Crash safety: ``merge.json`` records each landing's intent (base before, candidate) *before* the
base moves; the next ``streams merge`` finishes a landing whose candidate is on the base (keeps the
tip under ``refs/streams/landed/``, releases leases, removes worktree and branch) and drops one
whose candidate never landed. The base is therefore always either before or after a complete
landing. A landed stream's worktree and branch are removed in one background thread while the next
stream lands (``_Queue.remove_later``); its record says "landed" until that is done.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from coordinator.check import run_check
from coordinator.gitlocks import locks_hint
from coordinator.landing import (
    Undone,
    after_landing,
    drop_entry,
    recover,
    release_landed,
    undo,
    update_entry,
)
from streams import git, places, worktrees
from streams.config import Config, progress_path
from streams.graph import dependency_order
from streams.kernel import events, paths
from streams.kernel.errors import StreamsError, UsageError
from streams.landings import read_landings as _read_record
from streams.landings import read_resolving, write_resolving
from streams.landings import write_landings as _write_record
from streams.ownership import compiled
from streams.scope import verify_tip
from streams.state import sync_lock
from streams.workspace import Workspace

STRATEGIES = ("squash", "rebase", "merge")
CAS_RETRIES = 3  # the base moved under a landing: rebuild the candidate on its new tip, this often


class Outcome(StrEnum):
    LANDED = "landed"
    WOULD_LAND = "would land"  # --dry-run
    NOTHING = "nothing to land"  # no work commit, or its changes are on the base already
    EJECTED = "ejected"  # conflicts with the base, fails verify or check, not clean
    SKIPPED = "skipped"  # a dependency did not land, or the queue stopped before it
    ROLLED_BACK = "rolled back"  # landed, then the base moved back: uncommitted edits in the way


@dataclass(frozen=True)
class Landing:
    """One stream in ``streams merge --json``'s ``results``.

    ============  ============  ====================================================================
    field         type          meaning
    ============  ============  ====================================================================
    stream        str           the stream
    outcome       str           landed | would land | nothing to land | ejected | skipped | rolled back
    reason        str           why it did not land ("" when it did)
    files         [str]         the conflicted files, or the user's files in the way of a landing
    commits       [str]         the work commits landed (progress-only commits left out)
    base_before   str | null    the base's tip before this landing
    merged        str | null    the commit the base moved to (the candidate, with --dry-run)
    landed_ref    str | null    ``refs/streams/landed/<stream>/<time>``: the stream's tip, kept
    removed       bool          its worktree and branch were removed (not with --keep)
    check_log     str | null    the check's full output, when a check ran
    ============  ============  ====================================================================
    """

    stream: str
    outcome: Outcome
    reason: str = ""
    files: tuple[str, ...] = ()
    commits: tuple[str, ...] = ()
    base_before: str | None = None
    merged: str | None = None
    landed_ref: str | None = None
    removed: bool = False
    check_log: str | None = None


@dataclass(frozen=True)
class MergeReport:
    """``streams merge --json``'s ``data`` (exit 4 when a stream was ejected or rolled back).

    ========  ==========  ======================================================================
    field     type        meaning
    ========  ==========  ======================================================================
    base      str         the base branch
    strategy  str         squash
    results   [Landing]   one per stream considered, in queue order
    finished  [str]       landings a killed merge left half done, finished now
    ok        bool        nothing was ejected or rolled back
    ========  ==========  ======================================================================
    """

    base: str
    strategy: str
    results: tuple[Landing, ...]
    finished: tuple[str, ...] = ()

    json_properties: ClassVar[tuple[str, ...]] = ("ok",)

    @property
    def ok(self) -> bool:
        return not any(r.outcome in (Outcome.EJECTED, Outcome.ROLLED_BACK) for r in self.results)


# --- merge.json ----------------------------------------------------------------------------------------


# --- the queue -----------------------------------------------------------------------------------------


@dataclass
class _Queue:
    ws: Workspace
    config: Config
    check: str | None
    dry_run: bool
    keep: bool
    push: bool
    strategy: str
    on_wait: Callable[[str], None] | None
    shared_only: bool = False  # land only the commits that change nothing but shared files
    results: list[Landing] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # did not land this time: their dependents wait
    stop_reason: str = ""
    # What git said once per run, not per landing: the worktree list (a landing that removes a
    # worktree drops it; the base's holder is checked against its HEAD file before each use),
    # where each stream is, and each stream's unmerged commits by (its tip, the compared base's tip).
    listed: list[git.Worktree] | None = None
    where: dict[str, places.Place] = field(default_factory=dict)
    unmerged: dict[tuple[str, str, str], list[git.Oid]] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)  # of those commits
    # Landed streams whose worktree and branch are being removed beside the queue (one at a time,
    # in one thread), while the next stream lands: (stream, candidate, its worktree, the removal).
    removing: list[tuple[str, str, Path, Future[tuple[str, bool]]]] = field(default_factory=list)
    remover: ThreadPoolExecutor | None = None

    @property
    def base_ref(self) -> str:
        return self.config.base_ref()

    def worktrees(self) -> list[git.Worktree]:
        if self.listed is None:
            self.listed = git.worktrees(self.ws.main_root)
        return self.listed

    def place(self, name: str) -> places.Place:
        if name not in self.where:
            self.where.update(places.locate(self.ws, self.config, [name], listed=self.worktrees()))
        return self.where[name]

    def unmerged_commits(self, name: str, tip: str, base: str) -> list[git.Oid]:
        """``worktrees.unmerged_commits`` of ``tip`` against the commit ``base``, remembered: the
        same two commits always give the same answer."""
        key = (name, tip, base)
        if key not in self.unmerged:
            found = git.commits_not_on_with_subjects(self.ws.main_root, base, tip, ignoring=[progress_path(name)])
            self.subjects.update(found)
            self.unmerged[key] = [c for c, _ in found]
        return self.unmerged[key]

    def remove_later(self, name: str, tip: str, candidate: str, worktree: Path) -> None:
        """``after_landing`` of a landed stream, in the queue's one background thread: the next
        stream's landing touches neither that worktree nor that branch. ``merge.json`` keeps the
        landing "landed" until ``finish_removals`` records it done, so a kill meanwhile is recovered."""
        if self.remover is None:
            self.remover = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streams-merge-remove")
        future = self.remover.submit(after_landing, self.ws, self.config, name, tip, keep=False, worktree=worktree)
        self.removing.append((name, candidate, worktree, future))

    def finish_removals(self) -> None:
        """Wait for the removals running beside the queue; record each in ``merge.json`` and in its
        result. The first error of one is raised once all have ended."""
        pending, self.removing = self.removing, []
        error: BaseException | None = None
        for name, candidate, worktree, future in pending:
            try:
                landed_ref, removed = future.result()
            except BaseException as exc:  # noqa: BLE001 - the others are waited for and recorded first
                error = error or exc
                continue
            if removed and self.listed is not None:
                self.listed = [w for w in self.listed if w.path != worktree]
            update_entry(self.ws, candidate, state="done", landed_ref=landed_ref)
            self.results[:] = [  # in place: the caller may be appending to this very list
                dataclasses.replace(r, landed_ref=landed_ref, removed=removed)
                if r.stream == name and r.outcome == Outcome.LANDED
                else r
                for r in self.results
            ]
        if self.remover is not None and not self.removing:
            self.remover.shutdown(wait=True)
            self.remover = None
        if error is not None:
            raise error

    def holder(self) -> git.Worktree | None:
        """The worktree that has the base checked out, if any (``git worktree list`` read again when
        the one remembered no longer has: its HEAD file says so without a git process)."""
        for fresh in (False, True):
            if fresh:
                self.listed = None
            found = next((w for w in self.worktrees() if w.branch == self.base_ref and not w.bare), None)
            if found is None:
                return None
            git_dir = git.worktree_git_dir(found.path)
            if git_dir is not None and git.read_small(git_dir / "HEAD") == f"ref: {self.base_ref}":
                return found
        return found


def merge(
    ws: Workspace,
    config: Config,
    names: Sequence[str],
    *,
    strategy: str = "squash",
    check: str | None = None,
    dry_run: bool = False,
    keep: bool = False,
    push: bool = False,
    shared_only: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> MergeReport:
    """Land ``names`` (default: every stream with work not on the base) on the base, in queue order.
    With ``push`` each landing is pushed to the remote with a lease and confirmed."""
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if push and not config.remote:
        raise UsageError(f"--push needs `remote:` in {config.path.name}")
    if shared_only and not names:
        raise UsageError(
            "--shared-only lands the shared-file commits of the streams you name, e.g. `--shared-only api`"
        )
    config.select(list(names))  # unknown names fail before anything
    with sync_lock(ws, on_wait):  # sync and merge both move branches: one at a time
        finished = () if dry_run else recover(ws, config)
        if push:
            _same_as_remote(ws, config)
        q = _Queue(ws, config, check, dry_run, keep, push, strategy, on_wait, shared_only)
        try:
            for name in _order(q, names):
                if q.stop_reason:
                    q.results.append(Landing(name, Outcome.SKIPPED, q.stop_reason))
                    continue
                q.results.append(_one(q, name))
                if q.results[-1].outcome not in (Outcome.LANDED, Outcome.WOULD_LAND, Outcome.NOTHING):
                    q.failed.add(name)
        finally:
            q.finish_removals()
        if not dry_run:
            _offer_resolution(q)
    return MergeReport(config.base, strategy, tuple(q.results), finished)


# --- a conflict resolved by a human: --continue, --abort -----------------------------------------------


def _offer_resolution(q: _Queue) -> None:
    """Leave the first conflict of this run in the integration worktree for a human (a squash
    merge with the conflicts marked), unless one is waiting there already."""
    ws, config = q.ws, q.config
    if read_resolving(ws) is not None:
        return
    for i, r in enumerate(q.results):
        if r.outcome != Outcome.EJECTED or not r.reason.startswith("conflicts with"):
            continue
        base_tip = git.resolve_commit(ws.main_root, q.base_ref)
        tip = git.resolve_commit(ws.main_root, config.branch_ref(r.stream))
        if base_tip is None or tip is None:
            return
        where = _integration(ws, base_tip)
        files = git.merge_squash(where, tip)
        write_resolving(ws, {"stream": r.stream, "tip": tip, "base_before": base_tip, "files": files})
        hint = f"; resolve it in {where}, `git add` the files, then `streams merge --continue` (or `--abort`)"
        q.results[i] = dataclasses.replace(r, reason=r.reason + hint)
        return


def _same_as_remote(ws: Workspace, config: Config) -> None:
    """Fetch the base; refuse unless the local base is exactly the remote's (each landing is then
    pushed with a lease on the tip it was built on)."""
    assert config.remote is not None
    res = git.fetch(ws.main_root, config.remote, [f"+{config.base_ref()}:{config.upstream_ref()}"])
    if res.returncode != 0:
        raise StreamsError(
            f"fetching {config.base} from {config.remote} failed: {res.first_error()}", code="fetch_failed"
        )
    local = git.resolve_commit(ws.main_root, config.base_ref())
    remote = git.resolve_commit(ws.main_root, config.upstream_ref())
    if local != remote:
        raise StreamsError(
            f"{config.base} ({(local or 'missing')[:12]}) and {config.upstream_name()} ({(remote or 'missing')[:12]}) "
            f"differ: make them the same first (e.g. `git pull --ff-only` or `git push` on {config.base}), "
            "then merge again",
            code="diverged",
        )


def _order(q: _Queue, names: Sequence[str]) -> list[str]:
    """Dependencies first, then the stream whose work began earliest (its oldest own commit). Where
    each chosen stream is, is read here once for the run."""
    ws, config = q.ws, q.config
    tips = git.resolve_many(ws.main_root, [*(config.branch_ref(s.name) for s in config.streams), *config.base_refs()])
    chosen = list(dict.fromkeys(names or [s.name for s in config.streams if tips.get(config.branch_ref(s.name))]))
    base = _compared_base(config, tips)
    own: dict[str, list[git.Oid]] = {}
    for name in chosen:
        tip = tips.get(config.branch_ref(name))
        own[name] = q.unmerged_commits(name, tip, base) if tip and base else []
    began = git.author_times(ws.main_root, [c[-1] for c in own.values() if c])
    by_age = sorted(chosen, key=lambda name: began[own[name][-1]] if own[name] else float("inf"))
    q.where.update(places.locate(ws, config, chosen, listed=q.worktrees()))
    return dependency_order(by_age, {s.name: s.depends for s in config.streams})


def _compared_base(config: Config, tips: dict[str, str | None]) -> str | None:
    """The tip of ``worktrees.compared_base`` among resolved ``tips``: the remote's base when there
    is one, else the local base."""
    upstream = tips.get(config.upstream_ref()) if config.remote else None
    return upstream or tips.get(config.base_ref())


def _one(q: _Queue, name: str) -> Landing:
    ws, config = q.ws, q.config
    stream = config.stream(name)
    if any(d == r[0] for d in stream.depends for r in q.removing):
        q.finish_removals()  # a dependency's landing is judged from merge.json: record it first
    waiting = [d for d in stream.depends if d in q.failed]
    if waiting:
        return Landing(name, Outcome.SKIPPED, f"depends on {', '.join(waiting)}, which did not land")
    found = git.resolve_many(ws.main_root, [config.branch_ref(name), *config.base_refs()])
    tip = found[config.branch_ref(name)]
    if tip is None:
        return Landing(name, Outcome.NOTHING, f"no branch {config.branch(name)}")
    unlanded = [] if q.shared_only else [d for d in stream.depends if _has_work(ws, config, d)]
    if unlanded:
        return Landing(
            name, Outcome.SKIPPED, f"depends on {', '.join(unlanded)}, whose work is not on {config.base} yet"
        )
    compared = _compared_base(config, found)
    work: list[str] = list(reversed(q.unmerged_commits(name, tip, compared))) if compared else []
    if q.shared_only:
        work = _shared_commits(ws, config, name, work)
        if not work:
            return Landing(name, Outcome.NOTHING, "no commit of it not on the base changes only shared files")
    if not work:
        return Landing(name, Outcome.NOTHING, f"every change of {config.branch(name)} is on {config.base} already")
    unclean = _unclean(q.place(name))
    if unclean:
        return Landing(name, Outcome.EJECTED, unclean)
    report = verify_tip(ws, config, name, tip, [oid for oid in (found[ref] for ref in config.base_refs()) if oid])
    if not report.ok:
        bad = report.violations
        return Landing(
            name,
            Outcome.EJECTED,
            f"verify: {len(bad)} change{'s' if len(bad) != 1 else ''} outside its scope",
            tuple(dict.fromkeys(v.path for v in bad)),
        )
    base_tip = found[config.base_ref()]
    for _ in range(CAS_RETRIES):
        landing = _land(q, name, tip, work, base_tip)
        if landing is not None:
            return landing
        base_tip = None  # moved: read it again
    q.stop_reason = f"{config.base} kept moving while the queue worked; run `streams merge` again"
    return Landing(name, Outcome.SKIPPED, q.stop_reason)


def _shared_commits(ws: Workspace, config: Config, name: str, work: list[str]) -> list[str]:
    """Those of ``work`` that change nothing but shared files (and the stream's progress file)."""
    cc = compiled(config)
    progress = config.stream(name).progress_path
    chosen = []
    for c in work:
        touched = [p for _, p in git.tree_changes(ws.main_root, f"{c}^", c) if p != progress]
        if touched and all(cc.owner(p)[0] == "shared" for p in touched):
            chosen.append(c)
    return chosen


def _has_work(ws: Workspace, config: Config, name: str) -> bool:
    """Whether ``name`` has work not on the base. A tip the queue landed (``--keep`` leaves the
    branch) counts as landed, though the base holds its commits only squashed."""
    tip = git.resolve_commit(ws.main_root, config.branch_ref(name))
    if tip is None:
        return False
    whole = (
        e for e in _read_record(ws) if e.get("stream") == name and e.get("state") == "done" and not e.get("partial")
    )
    if any(e.get("tip") == tip for e in whole):
        return False
    return bool(worktrees.unmerged_commits(ws, config, name))


def _unclean(place: places.Place) -> str:
    """Why the stream's worktree is not ready to land ("" when it is)."""
    if place.worktree is None or not place.worktree.is_dir() or worktrees.half_removed(place.worktree):
        return ""  # a branch only (or what a killed removal left, which its stop keeps): nothing is lost
    op, _ = git.worktree_operation(place.worktree)
    if op is not None:
        return f"a {op} is in progress in {place.worktree}; finish or abort it"
    dirty = git.is_dirty(place.worktree)
    if dirty:
        return f"{len(dirty)} uncommitted change{'s' if len(dirty) != 1 else ''} in {place.worktree} (e.g. {dirty[0]}); commit them"
    return ""


def _land(q: _Queue, name: str, tip: str, work: list[str], base_tip: str | None) -> Landing | None:
    """Build, check and land one candidate on the base as it is now (``base_tip``, when the caller
    has just read it); None when the base moved meanwhile (the caller tries again on its new tip)."""
    ws, config = q.ws, q.config
    if (q.check or q.shared_only or q.strategy != "squash") and not (
        Path(paths.integration_dir(ws.common_dir)) / ".git"
    ).exists():
        q.finish_removals()  # `git worktree add` (of the integration worktree) must not run beside a removal
    base_tip = base_tip or git.resolve_commit(ws.main_root, q.base_ref)
    if base_tip is None:
        raise StreamsError(f"the base branch {config.base!r} does not exist", code="no_base")
    if q.shared_only:
        tree, conflicts = _replayed(ws, config, name, base_tip, work)
        if tree is None:
            return Landing(
                name, Outcome.EJECTED, f"conflicts with {config.base}", tuple(conflicts), tuple(work), base_tip
            )
        trees = git.resolve_many(ws.main_root, [f"{tree}^{{tree}}", f"{base_tip}^{{tree}}"])
        tree, base_tree = trees[f"{tree}^{{tree}}"] or "", trees[f"{base_tip}^{{tree}}"]
    else:
        tree, conflicts = git.merge_tree(ws.main_root, base_tip, tip)
        if tree is None:
            return Landing(
                name, Outcome.EJECTED, f"conflicts with {config.base}", tuple(conflicts), tuple(work), base_tip
            )
        tree, base_tree = git.tree_with_like(ws.main_root, tree, config.stream(name).progress_path, like=base_tip)
    if tree == base_tree:
        return Landing(name, Outcome.NOTHING, f"its changes are on {config.base} already")
    if q.strategy == "squash" and not q.shared_only:
        candidate = git.commit_tree(ws.main_root, tree, [base_tip], _message(ws, config, name, work, q.subjects))
    else:
        chain, conflicts = _replayed(ws, config, name, base_tip, work)
        if chain is None:
            reason = (
                f"a work commit does not apply to {config.base} one by one (it does squashed: try --strategy squash)"
            )
            return Landing(name, Outcome.EJECTED, reason, tuple(conflicts), tuple(work), base_tip)
        candidate = chain
        if q.strategy == "merge":
            candidate = git.commit_tree(
                ws.main_root, tree, [base_tip, chain], _message(ws, config, name, work, q.subjects)
            )
    log = None
    if q.check:
        passed, log, tail = _run_check(ws, q.check, name, candidate)
        if not passed:
            return Landing(
                name, Outcome.EJECTED, f"check failed: {tail}", (), tuple(work), base_tip, candidate, check_log=log
            )
    if q.dry_run:
        return Landing(name, Outcome.WOULD_LAND, "", (), tuple(work), base_tip, candidate, check_log=log)
    return _publish(q, name, tip, work, base_tip, candidate, log)


def _replayed(ws: Workspace, config: Config, name: str, base_tip: str, work: list[str]) -> tuple[str | None, list[str]]:
    """The work commits cherry-picked onto ``base_tip`` one by one in the integration worktree,
    each without the stream's progress file (authors and messages kept): (the last one, []), or
    (None, the conflicted files)."""
    where = _integration(ws, base_tip)
    progress = config.stream(name).progress_path
    for commit in work:
        conflicts = git.cherry_pick(where, commit, leave_out=progress)
        if conflicts:
            return None, conflicts
    return git.rev_parse(where, "HEAD"), []


def _message(ws: Workspace, config: Config, name: str, work: list[str], subjects: dict[str, str] | None = None) -> str:
    """The landing commit's message; ``subjects``: the work commits' subjects, when known."""
    stream = config.stream(name)
    lines = [f"{name}: {stream.description or 'land stream ' + name}", "", f"Stream: {name} ({config.branch(name)})"]
    known = [(c, subjects[c]) for c in work if c in subjects] if subjects else []
    pairs = known if len(known) == len(work) else git.subjects(ws.main_root, work)
    lines += ["Commits:"] + [f"  {c[:12]} {subject}" for c, subject in pairs]
    return "\n".join(lines) + "\n"


def _run_check(ws: Workspace, command: str, name: str, candidate: str) -> tuple[bool, str, str]:
    """Run ``command`` in the integration worktree with ``candidate`` checked out: (passed, log, one
    line saying how it ended with its output's tail)."""
    where = _integration(ws, candidate)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    log = Path(paths.logs_dir(ws.common_dir)) / f"merge-check-{name}-{stamp}.log"
    result = run_check(command, where, log, env={"STREAMS_STREAM": name, "STREAMS_CANDIDATE": candidate})
    return result.passed, str(log), result.summary(command)


def _integration(ws: Workspace, commit: str) -> Path:
    """The integration worktree, detached at ``commit`` (made and locked on first use)."""
    where = Path(paths.integration_dir(ws.common_dir))
    if not (where / ".git").exists():
        git.prune_worktrees(ws.main_root, check=False)
        git.add_detached_worktree(ws.main_root, where, commit)
    else:
        git.checkout_detached(where, commit)
    return where


def _publish(
    q: _Queue, name: str, tip: str, work: list[str], base_tip: str, candidate: str, log: str | None
) -> Landing | None:
    ws, config = q.ws, q.config
    landings = _read_record(ws)
    entry = {
        "stream": name,
        "tip": tip,
        "base_before": base_tip,
        "merged": candidate,
        "state": "landing",
        "time": time.time(),
        "commits": work,
        **({"partial": True} if q.shared_only else {}),
    }
    _write_record(ws, [*landings, entry])  # the intent first: a kill from here on is recovered
    holder = q.holder()
    message = f"streams merge: land {name}"
    if holder is None:
        try:
            git.update_ref(ws.main_root, q.base_ref, candidate, base_tip, message)
        except StreamsError:
            drop_entry(ws, candidate)
            return None  # the base moved: build again on its new tip
    else:
        moved = git.move_checked_out(
            holder.path, git.worktree_git_dir(holder.path) or holder.path, q.base_ref, candidate, base_tip, message
        )
        if moved.returncode != 0:
            drop_entry(ws, candidate)
            now = git.resolve_commit(ws.main_root, q.base_ref)
            if now != base_tip:
                return None
            files = tuple(moved.blocking_files())
            q.stop_reason = f"uncommitted changes in {holder.path} are in the way of landing on {config.base}"
            why = (
                f"{config.base} moved back: uncommitted changes in {holder.path} would be overwritten "
                "(commit or stash them there, then merge again)"
            )
            if not files:  # git refused before anything moved: a lock file, most often a killed git's
                q.stop_reason = f"{config.base} could not move: {moved.first_error()}"
                why = f"{q.stop_reason}{locks_hint(holder.path, q.base_ref)}"
            return Landing(
                name,
                Outcome.ROLLED_BACK,
                why,
                files,
                tuple(work),
                base_tip,
                candidate,
                check_log=log,
            )
    if q.push:
        refused = _push(ws, config, base_tip, candidate, holder)
        if refused:
            drop_entry(ws, candidate)
            q.stop_reason = f"the push of {config.base} was refused; nothing more is landed"
            return Landing(name, Outcome.ROLLED_BACK, refused, (), tuple(work), base_tip, candidate, check_log=log)
    update_entry(ws, candidate, state="landed")
    events.append(ws.common_dir, "merge.land", stream=name, base_before=base_tip, merged=candidate, commits=len(work))
    if q.shared_only:  # the stream goes on: only the leases those commits waited on go
        release_landed(ws, name, work)
        update_entry(ws, candidate, state="done")
        return Landing(name, Outcome.LANDED, "", (), tuple(work), base_tip, candidate, check_log=log)
    place = q.place(name)
    if not q.keep and place.worktree is not None:
        q.remove_later(name, tip, candidate, place.worktree)
        return Landing(name, Outcome.LANDED, "", (), tuple(work), base_tip, candidate, "", False, log)
    landed_ref, removed = after_landing(ws, config, name, tip, keep=q.keep, worktree=place.worktree)
    if removed and q.listed is not None:
        q.listed = [w for w in q.listed if w.path != place.path]
    update_entry(ws, candidate, state="done", landed_ref=landed_ref)
    return Landing(name, Outcome.LANDED, "", (), tuple(work), base_tip, candidate, landed_ref, removed, log)


def _push(ws: Workspace, config: Config, base_tip: str, candidate: str, holder: git.Worktree | None) -> str:
    """Push the landed base with a lease on ``base_tip`` and confirm it with ``ls-remote``; "" when
    it is there. Otherwise move the local base back (a rejected push leaves local and remote as
    they were) and say why."""
    assert config.remote is not None
    ref = config.base_ref()
    res, _ = git.push_with_leases(ws.main_root, config.remote, [(ref, base_tip)])
    there = git.ls_remote(ws.main_root, config.remote, ref) if res.returncode == 0 else None
    if there == candidate:
        return ""
    message = "streams merge: push refused, landing undone"
    if holder is None:
        git.update_ref(ws.main_root, ref, base_tip, candidate, message)
    else:
        git.move_checked_out(
            holder.path, git.worktree_git_dir(holder.path) or holder.path, ref, base_tip, candidate, message
        )
    why = res.first_error() if res.returncode != 0 else f"{config.remote} has {(there or 'nothing')[:12]}"
    return (
        f"pushing {config.base} to {config.remote} failed ({why}); {config.base} is back where it was, "
        f"locally and on {config.remote}: fetch, then merge again"
    )


__all__ = [
    "Landing",
    "MergeReport",
    "Outcome",
    "Undone",
    "merge",
    "recover",
    "undo",
]
