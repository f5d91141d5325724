"""The sync loop: keep every stream rebased on the upstream, and halt for a human on a conflict.

One pass (``sync_pass``), under a repository-wide lock so that two syncs never race:

1. fetch once from ``remote`` (when set); the upstream is ``<remote>/<base>``, else the local base;
2. reconcile ``state.json`` with git: halts the human finished or aborted by hand, rebases a killed
   sync left behind, rebases in progress that nobody recorded (git is the truth, the state a hint);
3. per stream, in dependency order: nothing when the branch already contains the upstream tip;
   skipped when its worktree has uncommitted changes to tracked files (never auto-stashed); else
   ``git rebase <upstream>`` in its worktree, recorded in ``state.json`` before it starts. After
   the rebase, unmerged entries and the rebase directory are checked, not only the exit code; a
   conflict leaves the rebase in progress, records a ``Halt`` and stops the pass;
4. with a remote, push every stream branch that moved, each with
   ``--force-with-lease=<ref>:<value fetched a moment ago>``, and only when that remote value is
   contained in the branch as it was before the rebase: commits someone else pushed are reported,
   never overwritten.

Nothing is kept between passes: no git object, no child process, no open lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams import git
from streams.config import Config, Stream
from streams.kernel import events
from streams.kernel.durations import iso_utc
from streams.kernel.errors import BusyError, GitError, HaltedError, ScopeViolationError, StreamsError
from streams.kernel.mutex import held
from streams.kernel.paths import read_marker
from streams.progress import ProgressError, stream_worktree_lock
from streams.state import (
    Halt,
    begin_rebases,
    clear_halt,
    end_rebase,
    finish_pass,
    halts_of,
    inflight_of,
    read_state,
    record_halt,
)
from streams.workspace import Workspace

SYNC_LOCK_WAIT_SECONDS = 300.0

# Outcomes of one stream in one pass.
UP_TO_DATE = "up to date"
REBASED = "rebased"
DIRTY = "dirty"
HALTED = "halted"
NOT_STARTED = "not started"
NO_WORKTREE = "no worktree"
DETACHED = "detached"
FAILED = "failed"
NOT_REACHED = "not reached"

# Push outcomes.
PUSHED = "pushed"
PUSH_REJECTED = "rejected"
PUSH_DIVERGED = "diverged"
PUSH_FAILED = "failed"

Notify = Callable[[str], None]


class SyncError(StreamsError):
    code = "sync"


# --- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamResult:
    name: str
    outcome: str
    old_tip: str | None = None
    new_tip: str | None = None
    files: tuple[str, ...] = ()  # the uncommitted (dirty) or conflicting paths
    detail: str = ""
    push: str | None = None  # pushed | rejected | diverged | failed; None: nothing to push or no remote
    push_detail: str = ""


@dataclass(frozen=True)
class Reconciled:
    """Something a pass found in git that the state did not say, and what it did about it."""

    stream: str
    what: str  # resolved | aborted | worktree gone | recovered | found
    detail: str


@dataclass(frozen=True)
class SyncReport:
    upstream: str  # for people, e.g. origin/main
    upstream_ref: str  # e.g. refs/remotes/origin/main
    upstream_tip: str
    fetched: bool
    streams: tuple[StreamResult, ...]
    halts: tuple[Halt, ...]  # every halt pending among the selected streams after the pass
    new_halt: Halt | None  # the conflict this pass stopped on
    reconciled: tuple[Reconciled, ...]
    predicted: dict[str, list[str]] | None = None
    time: str = field(default_factory=iso_utc)

    @property
    def halted(self) -> bool:
        return bool(self.halts)

    @property
    def failed(self) -> tuple[StreamResult, ...]:
        return tuple(
            r for r in self.streams if r.outcome == FAILED or r.push in (PUSH_REJECTED, PUSH_DIVERGED, PUSH_FAILED)
        )


@dataclass(frozen=True)
class ContinueResult:
    stream: str
    halt: Halt
    tip: str  # the branch tip once the rebase finished
    scope_checked: bool  # False when streams.scope is not available


@dataclass(frozen=True)
class AbortResult:
    stream: str
    halt: Halt | None
    original_tip: str
    replaced_tip: str | None  # a tip the abort moved away from (still in the branch's reflog)
    worktree: Path
    removed: tuple[str, ...] = ()  # untracked copies of committed files a killed rebase left behind


# --- git questions the sync loop asks (all through streams.git.run) ------------------------------


@dataclass(frozen=True)
class Place:
    """Where a stream is right now, as git says."""

    name: str
    ref: str  # refs/heads/<prefix><name>
    tip: str | None
    remote_tip: str | None  # refs/remotes/<remote>/<prefix><name> after the fetch
    worktree: Path | None
    git_dir: Path | None
    rebasing: bool
    detached: bool = False  # HEAD detached with no rebase in progress (e.g. a killed rebase)


def _rebase_dir(git_dir: Path) -> Path | None:
    for name in ("rebase-merge", "rebase-apply"):
        if (git_dir / name).is_dir():
            return git_dir / name
    return None


def _read_small(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def stale_locks(worktree: Path, ref: str) -> list[Path]:
    """Lock files a killed git process may have left around a worktree and its branch."""
    git_dir = git.worktree_git_dir(worktree)
    if git_dir is None:
        return []
    found = sorted(git_dir.glob("*.lock"))
    common = git_dir
    rel = _read_small(git_dir / "commondir")
    if rel is not None:
        common = (git_dir / rel).resolve()
    for candidate in (common / f"{ref}.lock", common / "packed-refs.lock"):
        if candidate.exists():
            found.append(candidate)
    return found


def _refs(cwd: Path, *patterns: str, contains: str | None = None) -> dict[str, str]:
    args = ["for-each-ref", "--format=%(refname)%00%(objectname)"]
    if contains:
        args.append(f"--contains={contains}")
    res = git.run(*args, *patterns, cwd=cwd)
    out: dict[str, str] = {}
    for line in res.text.splitlines():
        ref, _, oid = line.partition("\0")
        out[ref] = oid
    return out


def _is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    res = git.run("merge-base", "--is-ancestor", ancestor, descendant, cwd=cwd, check=False)
    if res.returncode > 1:
        raise GitError(("git", "merge-base", "--is-ancestor"), res.returncode, res.stdout, res.stderr)
    return res.returncode == 0


def _unmerged(worktree: Path) -> tuple[str, ...]:
    """Paths with unmerged index entries (a conflict), each once."""
    seen: dict[str, None] = {}
    for rec in git.split_z(git.run("ls-files", "-u", "-z", cwd=worktree).stdout):
        seen.setdefault(rec.split("\t", 1)[1], None)
    return tuple(seen)


def _dirty_tracked(worktree: Path) -> tuple[str, ...]:
    """Tracked paths with uncommitted changes, staged or not (untracked files do not block a rebase)."""
    return tuple(git.is_dirty(worktree, untracked=False))


def _blocking_files(res: git.Result) -> list[str]:
    """The paths git lists (tab-indented) after a 'would be overwritten' error."""
    lines = res.stderr.decode("utf-8", "replace").splitlines()
    start = next((i for i, ln in enumerate(lines) if "would be overwritten" in ln), None)
    if start is None:
        return []
    files = []
    for ln in lines[start + 1 :]:
        if not ln.startswith("\t"):
            break
        files.append(ln.strip())
    return files


def _git_says(res: git.Result, limit: int = 8) -> str:
    """What git (and its hooks) said, hints left out, on one line."""
    text = (res.stderr if res.stderr.strip() else res.stdout).decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("hint:")]
    return " / ".join(lines[:limit])


def _first_error(res: git.Result) -> str:
    lines = [ln.strip() for ln in (res.stderr + b"\n" + res.stdout).decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("hint:")]
    return next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else "")


def upstream_of(config: Config) -> tuple[str, str]:
    """(ref, name for people) of what streams rebase onto."""
    if config.remote:
        return f"refs/remotes/{config.remote}/{config.base}", f"{config.remote}/{config.base}"
    return f"refs/heads/{config.base}", config.base


def dependency_order(config: Config, streams: Sequence[Stream]) -> list[Stream]:
    """``streams`` with each one after the selected streams it depends on (config order otherwise)."""
    selected = {s.name for s in streams}
    order: list[Stream] = []
    seen: set[str] = set()

    def visit(s: Stream) -> None:
        if s.name in seen:
            return
        seen.add(s.name)
        for dep in s.depends:
            if dep in selected:
                visit(config.stream(dep))
        order.append(s)

    for s in streams:
        visit(s)
    return order


def locate(ws: Workspace, config: Config, names: Sequence[str] | None = None) -> dict[str, Place]:
    """Where each configured stream (or each of ``names``) is: tip, remote tip, worktree, rebase state."""
    wanted = list(names) if names is not None else list(config.names)
    by_ref: dict[str, tuple[Path, Path, bool]] = {}
    detached: dict[str, tuple[Path, Path]] = {}  # stream (from the worktree's marker) -> worktree
    for w in git.worktrees(ws.main_root):
        if w.bare or w.prunable or not w.path.is_dir():
            continue
        git_dir = git.worktree_git_dir(w.path)
        if git_dir is None:
            continue
        rebase_dir = _rebase_dir(git_dir)
        ref = w.branch
        if ref is None and rebase_dir is not None:  # HEAD is detached while a rebase runs
            ref = _read_small(rebase_dir / "head-name")
        if ref:
            by_ref.setdefault(ref, (w.path, git_dir, rebase_dir is not None))
        elif (marker := read_marker(git_dir)) is not None:
            detached.setdefault(marker, (w.path, git_dir))
    prefix = config.branch_prefix.rstrip("/")
    patterns = [f"refs/heads/{prefix}"]
    if config.remote:
        patterns.append(f"refs/remotes/{config.remote}/{prefix}")
    tips = _refs(ws.main_root, *patterns)
    places: dict[str, Place] = {}
    for name in wanted:
        ref = f"refs/heads/{config.branch(name)}"
        remote_tip = tips.get(f"refs/remotes/{config.remote}/{config.branch(name)}") if config.remote else None
        wt = by_ref.get(ref)
        if wt is None and name in detached:
            path, git_dir = detached[name]
            places[name] = Place(name, ref, tips.get(ref), remote_tip, path, git_dir, False, detached=True)
            continue
        places[name] = Place(
            name,
            ref,
            tips.get(ref),
            remote_tip,
            wt[0] if wt else None,
            wt[1] if wt else None,
            wt[2] if wt else False,
        )
    return places


# --- the repository-wide lock -------------------------------------------------------------------


@contextmanager
def sync_lock(ws: Workspace, on_wait: Notify | None = None) -> Iterator[None]:
    """One sync at a time per repository (fetches race on the shared remote-tracking refs)."""
    path = ws.state_dir / "sync.flock"
    with held(
        path,
        timeout=SYNC_LOCK_WAIT_SECONDS,
        waiting="waiting for another `streams sync` in this repository to finish…",
        on_wait=on_wait,
        busy=lambda: BusyError(
            f"another `streams sync` has held {path} for {SYNC_LOCK_WAIT_SECONDS:.0f} s; wait for it to finish and retry"
        ),
    ):
        yield


# --- prediction ---------------------------------------------------------------------------------


def _merge_tree_conflicts(
    cwd: Path, upstream_tip: str, tip: str, env: dict[str, str] | None = None
) -> list[str] | None:
    """Paths ``git merge-tree --write-tree`` says conflict (None: it could not tell)."""
    res = git.run(
        "merge-tree",
        "--write-tree",
        "--name-only",
        "-z",
        "--no-messages",
        upstream_tip,
        tip,
        cwd=cwd,
        check=False,
        optional_locks=False,
        env=env,
    )
    if res.returncode == 0:
        return []
    if res.returncode != 1:
        return None
    records = res.stdout.split(b"\0")[1:]  # the first record is the (conflicted) tree
    names: dict[str, None] = {}
    for rec in records:
        if not rec:
            break
        names.setdefault(rec.decode("utf-8", "surrogateescape"), None)
    return list(names)


def predict_conflicts(ws: Workspace, config: Config, names: Sequence[str] = ()) -> dict[str, list[str]]:
    """Stream -> paths that would conflict when rebased onto the upstream (empty list: clean).

    Uses the upstream as last fetched (no network), ``git merge-tree --write-tree`` (git >= 2.38),
    and touches no worktree. Streams without a branch are left out; a branch that already
    contains the upstream maps to an empty list without running anything. A merge is an
    approximation of the commit-by-commit rebase: good as an early warning.
    """
    upstream_ref, _ = upstream_of(config)
    upstream_tip = git.resolve_commit(ws.main_root, upstream_ref)
    if upstream_tip is None:
        return {}
    streams = config.select(tuple(names))
    return _predict(ws, config, [s.name for s in streams], upstream_tip, locate(ws, config, [s.name for s in streams]))


def _alternate(path: Path) -> str:
    """``path`` as one entry of ``GIT_ALTERNATE_OBJECT_DIRECTORIES`` (colon-separated; an entry
    that holds a colon or starts with a quote is C-quoted)."""
    text = str(path)
    if ":" not in text and not text.startswith('"'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _predict(
    ws: Workspace, config: Config, names: Sequence[str], upstream_tip: str, places: dict[str, Place]
) -> dict[str, list[str]]:
    prefix = config.branch_prefix.rstrip("/")
    on_top = _refs(ws.main_root, f"refs/heads/{prefix}", contains=upstream_tip)
    result: dict[str, list[str]] = {}
    with ExitStack() as stack:
        scratch: dict[str, str] = {}
        for name in names:
            place = places[name]
            if place.tip is None:
                continue
            if place.ref in on_top:
                result[name] = []
                continue
            if not scratch:  # the merged trees go to a throw-away object dir, not the repository
                import tempfile  # only here: a sync with nothing to predict does without it

                scratch["GIT_OBJECT_DIRECTORY"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="streams-"))
                scratch["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = _alternate(ws.common_dir / "objects")
            conflicts = _merge_tree_conflicts(ws.main_root, upstream_tip, place.tip, scratch)
            if conflicts is not None:
                result[name] = conflicts
    return result


# --- scope re-check ------------------------------------------------------------------------------


def _scope_violations(ws: Workspace, config: Config, name: str, tip: str, onto: str) -> list[Any]:
    """Violations in the stream's commits on top of ``onto``."""
    from streams.scope import violations_in_range  # lazily: only --continue needs it

    return list(violations_in_range(ws, config, name, tip, [onto]))


def _describe_violations(violations: Sequence[Any]) -> str:
    shown = [f"{v.path} ({v.reason})" for v in violations[:10]]
    more = f" and {len(violations) - 10} more" if len(violations) > 10 else ""
    return ", ".join(shown) + more


# --- reconciling state.json with git ---------------------------------------------------------------


def _halt_from_git(name: str, place: Place, upstream: str, reason: str) -> Halt:
    assert place.git_dir is not None and place.worktree is not None
    rebase_dir = _rebase_dir(place.git_dir)
    orig = _read_small(rebase_dir / "orig-head") if rebase_dir else None
    onto = _read_small(rebase_dir / "onto") if rebase_dir else None
    return Halt(
        stream=name,
        files=_unmerged(place.worktree),
        original_tip=orig or place.tip or "",
        onto=onto or "",
        time=iso_utc(),
        worktree=str(place.worktree),
        reason=reason,
        upstream=upstream,
        ref=place.ref,
    )


def _reconcile(
    ws: Workspace, config: Config, places: dict[str, Place], upstream: str
) -> tuple[dict[str, Halt], list[Reconciled]]:
    data = read_state(ws)
    halts = halts_of(data)
    inflight = inflight_of(data)
    notes: list[Reconciled] = []

    for name, rec in inflight.items():
        place = places.get(name)
        if place is not None and (place.rebasing or place.detached) and place.worktree is not None:
            if name not in halts:
                files = _unmerged(place.worktree)
                halt = Halt(
                    name,
                    files,
                    rec.original_tip,
                    rec.onto,
                    iso_utc(),
                    str(place.worktree),
                    "conflict" if files else "interrupted",
                    upstream,
                    place.ref,
                )
                record_halt(ws, halt)
                halts[name] = halt
                left = "the rebase is still in progress" if place.rebasing else "HEAD is left detached"
                detail = f"a sync (pid {rec.pid}) was interrupted while rebasing {name}; {left}"
                notes.append(Reconciled(name, "recovered", detail))
                events.append(ws.common_dir, "sync.recover", stream=name, state="rebase in progress", pid=rec.pid)
            else:
                end_rebase(ws, name)
            continue
        tip = place.tip if place is not None else None
        if tip is not None and tip != rec.original_tip and rec.onto and _is_ancestor(ws.main_root, rec.onto, tip):
            detail = (
                f"a sync (pid {rec.pid}) was interrupted after rebasing {name} onto {rec.onto[:12]}; it had finished"
            )
        elif tip == rec.original_tip:
            detail = f"a sync (pid {rec.pid}) was interrupted before rebasing {name}; the branch is unchanged"
        else:
            detail = f"a sync (pid {rec.pid}) was interrupted around a rebase of {name}; the branch is at {(tip or '-')[:12]}"
        end_rebase(ws, name)
        notes.append(Reconciled(name, "recovered", detail))
        events.append(ws.common_dir, "sync.recover", stream=name, state="no rebase in progress", tip=tip, pid=rec.pid)

    for name, halt in list(halts.items()):
        place = places.get(name)
        if place is None:
            if name in config.names:
                continue  # not selected in this pass: leave it be
            clear_halt(ws, name)
            del halts[name]
            notes.append(Reconciled(name, "worktree gone", f"{name} is no longer configured; its halt is forgotten"))
            continue
        if place.worktree is None or place.tip is None:
            clear_halt(ws, name)
            del halts[name]
            notes.append(Reconciled(name, "worktree gone", f"the worktree of {name} is gone; its halt is forgotten"))
            events.append(ws.common_dir, "halt.clear", stream=name, why="worktree gone")
            continue
        if place.rebasing or place.detached:
            continue
        clear_halt(ws, name)
        del halts[name]
        if halt.onto and _is_ancestor(ws.main_root, halt.onto, place.tip):
            notes.append(
                Reconciled(name, "resolved", f"the rebase of {name} was finished by hand; now at {place.tip[:12]}")
            )
            events.append(ws.common_dir, "halt.resolve", stream=name, tip=place.tip, via="git")
        else:
            notes.append(Reconciled(name, "aborted", f"the rebase of {name} was aborted by hand; at {place.tip[:12]}"))
            events.append(ws.common_dir, "halt.abort", stream=name, tip=place.tip, via="git")

    for name, place in places.items():
        if place.rebasing and name not in halts and place.worktree is not None:
            halt = _halt_from_git(name, place, upstream, "found")
            record_halt(ws, halt)
            halts[name] = halt
            notes.append(
                Reconciled(name, "found", f"a rebase that streams did not start is in progress in {place.worktree}")
            )
            events.append(ws.common_dir, "halt.find", stream=name, worktree=str(place.worktree))
    return halts, notes


# --- one pass ------------------------------------------------------------------------------------


def _fetch(ws: Workspace, config: Config) -> None:
    assert config.remote is not None
    prefix = config.branch_prefix
    res = git.run(
        "fetch",
        "--quiet",
        "--prune",
        "--no-write-fetch-head",
        config.remote,
        f"+refs/heads/{config.base}:refs/remotes/{config.remote}/{config.base}",
        f"+refs/heads/{prefix}*:refs/remotes/{config.remote}/{prefix}*",
        cwd=ws.main_root,
        check=False,
    )
    if res.returncode != 0:
        locks = fetch_locks(ws.common_dir, config.remote)
        fix = (
            f"{_stale_locks_fix(locks, 'this repository')}, then sync again"
            if locks
            else f"check the remote with `git fetch {config.remote}`, or remove `remote:` from streams.yaml"
        )
        raise SyncError(
            f"fetching {config.base} from remote {config.remote!r} failed: {_first_error(res)} ({fix})",
            code="fetch_failed",
        )


def fetch_locks(common_dir: Path, remote: str) -> list[Path]:
    """Lock files a killed ``git fetch`` may have left: its remote-tracking refs, packed-refs, shallow."""
    found = sorted((common_dir / "refs" / "remotes" / remote).rglob("*.lock"))
    found += [p for p in (common_dir / "packed-refs.lock", common_dir / "shallow.lock") if p.exists()]
    return found


def sync_pass(
    ws: Workspace,
    config: Config,
    names: Sequence[str] = (),
    *,
    predict: bool = False,
    on_wait: Notify | None = None,
) -> SyncReport:
    """One sync pass over the named streams (all when none), under the repository's sync lock."""
    streams = config.select(tuple(names))
    with sync_lock(ws, on_wait):
        return _pass(ws, config, streams, predict=predict)


def _pass(ws: Workspace, config: Config, streams: Sequence[Stream], *, predict: bool) -> SyncReport:
    fetched = False
    if config.remote:
        _fetch(ws, config)
        fetched = True
    upstream_ref, upstream = upstream_of(config)
    upstream_tip = git.resolve_commit(ws.main_root, upstream_ref)
    if upstream_tip is None:
        hint = (
            f"push {config.base} to {config.remote} first"
            if config.remote
            else f"create branch {config.base}, or set `base:` in streams.yaml"
        )
        raise SyncError(f"the upstream {upstream} does not exist ({hint})", code="no_upstream")

    order = dependency_order(config, streams)
    names = [s.name for s in order]
    places = locate(ws, config, list(config.names))
    halts, notes = _reconcile(ws, config, places, upstream)
    prefix = config.branch_prefix.rstrip("/")
    on_top = _refs(ws.main_root, f"refs/heads/{prefix}", contains=upstream_tip)

    predicted = _predict(ws, config, names, upstream_tip, places) if predict else None

    results: dict[str, StreamResult] = {}
    candidates: list[str] = []
    for name in names:
        place = places[name]
        if place.tip is None:
            results[name] = StreamResult(
                name, NOT_STARTED, detail=f"no branch {config.branch(name)} (`streams start {name}`)"
            )
            continue
        if name in halts:
            h = halts[name]
            results[name] = StreamResult(
                name, HALTED, place.tip, place.tip, files=h.files, detail=f"halted since {h.time}: {_halt_next(h)}"
            )
            continue
        if place.detached:
            results[name] = StreamResult(
                name,
                DETACHED,
                place.tip,
                place.tip,
                detail=f"skipped: HEAD is detached in {place.worktree}; `git switch {config.branch(name)}` there",
            )
            continue
        if place.ref in on_top:
            results[name] = StreamResult(name, UP_TO_DATE, place.tip, place.tip)
            continue
        if place.worktree is None:
            results[name] = StreamResult(
                name,
                NO_WORKTREE,
                place.tip,
                place.tip,
                detail=f"branch {config.branch(name)} is not checked out in any worktree; `streams start {name}` makes one",
            )
            continue
        dirty = _dirty_tracked(place.worktree)
        if dirty:
            results[name] = StreamResult(
                name,
                DIRTY,
                place.tip,
                place.tip,
                files=dirty,
                detail=f"skipped: {len(dirty)} uncommitted change{'s' if len(dirty) != 1 else ''} in "
                f"{place.worktree}; commit them, then sync again",
            )
            continue
        candidates.append(name)

    # Intent first, in one write: a crash from here on is reconciled with git by the next pass.
    if candidates:
        begin_rebases(
            ws,
            [(n, places[n].tip or "", upstream_tip, places[n].worktree or Path()) for n in candidates],
        )
    new_halt: Halt | None = None
    for name in candidates:
        place = places[name]
        if new_halt is not None:
            results[name] = StreamResult(
                name, NOT_REACHED, place.tip, place.tip, detail=f"untouched: the pass stopped at {new_halt.stream}"
            )
            continue
        try:
            with stream_worktree_lock(ws.state_dir, name):  # no progress commit lands mid-rebase
                results[name], halt = _rebase_one(ws, name, place, upstream_tip, upstream)
        except ProgressError as exc:  # busy: another streams command in that worktree
            results[name], halt = StreamResult(name, FAILED, place.tip, place.tip, detail=exc.message), None
        if halt is not None:
            new_halt = halts[name] = halt

    tips = _refs(ws.main_root, f"refs/heads/{prefix}") if any(r.outcome == REBASED for r in results.values()) else {}
    final: dict[str, StreamResult] = {}
    for name, r in results.items():
        if r.outcome == REBASED:
            r = StreamResult(**{**r.__dict__, "new_tip": tips.get(places[name].ref)})
        final[name] = r
    if config.remote:
        final.update(_push(ws, config, places, final))

    summary = {
        "time": iso_utc(),
        "upstream": upstream,
        "upstream_tip": upstream_tip,
        "outcomes": {n: final[n].outcome for n in names},
        "halted": new_halt.stream if new_halt else None,
    }
    finish_pass(ws, [n for n in candidates if not (new_halt and new_halt.stream == n)], summary)
    return SyncReport(
        upstream=upstream,
        upstream_ref=upstream_ref,
        upstream_tip=upstream_tip,
        fetched=fetched,
        streams=tuple(final[n] for n in names),
        halts=tuple(halts[n] for n in names if n in halts),
        new_halt=new_halt,
        reconciled=tuple(notes),
        predicted=predicted,
    )


def _halt_next(h: Halt) -> str:
    where = h.worktree
    if h.reason == "interrupted":
        what = "an interrupted rebase is left half done"
    elif h.reason == "found":
        what = "a rebase streams did not start is in progress"
    elif h.files:
        what = f"conflict in {', '.join(h.files)}"
    else:
        what = "the rebase stopped"
    locks = stale_locks(Path(h.worktree), h.ref) if h.ref else []
    stale = f"; first: {_stale_locks_fix(locks, 'that worktree')}" if locks else ""
    return (
        f"{what} in {where}{stale}; resolve and `git add` the files, then `git rebase --continue` there or "
        f"`streams sync --continue {h.stream}`; or `streams sync --abort {h.stream}` (back to {h.original_tip[:12]})"
    )


def _rebase_one(
    ws: Workspace, name: str, place: Place, upstream_tip: str, upstream: str
) -> tuple[StreamResult, Halt | None]:
    """Rebase one clean stream worktree (its in-flight record is already written)."""
    assert place.worktree is not None and place.git_dir is not None and place.tip is not None
    wt = place.worktree
    res = git.run_unpiped(
        "rebase", "--quiet", "--no-autostash", "--no-update-refs", upstream_tip, cwd=wt, env={"GIT_EDITOR": "true"}
    )
    # The exit code is not the whole story: look at the rebase state and the index.
    rebasing = _rebase_dir(place.git_dir) is not None
    unmerged = _unmerged(wt)
    if rebasing or unmerged:
        halt = Halt(
            stream=name,
            files=unmerged,
            original_tip=place.tip,
            onto=upstream_tip,
            time=iso_utc(),
            worktree=str(wt),
            reason="conflict" if unmerged else "stopped",
            upstream=upstream,
            ref=place.ref,
        )
        record_halt(ws, halt)
        events.append(
            ws.common_dir,
            "sync.halt",
            stream=name,
            files=list(unmerged),
            original_tip=place.tip,
            onto=upstream_tip,
            worktree=str(wt),
        )
        detail = _halt_next(halt) if unmerged else f"the rebase stopped: {_git_says(res)}; {_halt_next(halt)}"
        return StreamResult(name, HALTED, place.tip, None, files=unmerged, detail=detail), halt
    if res.returncode != 0:
        return (
            StreamResult(
                name,
                FAILED,
                place.tip,
                place.tip,
                detail=f"`git rebase` in {wt} failed and changed nothing: {_first_error(res)}{_locks_hint(wt, place.ref)}",
            ),
            None,
        )
    events.append(ws.common_dir, "sync.rebase", stream=name, old=place.tip, onto=upstream_tip)
    return StreamResult(name, REBASED, place.tip, None, detail=f"rebased onto {upstream} ({upstream_tip[:12]})"), None


# --- pushing --------------------------------------------------------------------------------------


def _push(
    ws: Workspace, config: Config, places: dict[str, Place], results: dict[str, StreamResult]
) -> dict[str, StreamResult]:
    assert config.remote is not None
    todo: list[tuple[str, str, str | None]] = []  # (name, local tip, expected remote value)
    out: dict[str, StreamResult] = {}
    for name, r in results.items():
        if r.outcome not in (REBASED, UP_TO_DATE) or r.new_tip is None:
            continue
        place = places[name]
        if place.remote_tip == r.new_tip:
            continue
        before = r.old_tip or r.new_tip
        if (
            place.remote_tip is not None
            and place.remote_tip != before
            and not _remote_is_ours(ws.main_root, place.ref, place.remote_tip, before)
        ):
            out[name] = _with_push(
                r,
                PUSH_DIVERGED,
                f"not pushed: {config.remote}/{config.branch(name)} ({place.remote_tip[:12]}) has commits that "
                f"{config.branch(name)} does not (someone else pushed); not forced. Look with "
                f"`git log {place.ref}..{config.remote}/{config.branch(name)}` and reconcile by hand",
            )
            continue
        todo.append((name, r.new_tip, place.remote_tip))
    if not todo:
        return out
    args = ["push", "--porcelain"]
    for name, _tip, expected in todo:
        args.append(f"--force-with-lease=refs/heads/{config.branch(name)}:{expected or ''}")
    args.append(config.remote)
    for name, _tip, _expected in todo:
        args.append(f"refs/heads/{config.branch(name)}:refs/heads/{config.branch(name)}")
    res = git.run_unpiped(*args, cwd=ws.main_root)
    status: dict[str, tuple[str, str]] = {}
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            dst = parts[1].split(":", 1)[1]
            status[dst] = (parts[0], parts[2])
    for name, tip, expected in todo:
        r = results[name]
        flag, summary = status.get(f"refs/heads/{config.branch(name)}", ("", ""))
        if flag in (" ", "+", "*", "="):
            out[name] = _with_push(r, PUSHED, f"pushed {tip[:12]} to {config.remote}")
            events.append(ws.common_dir, "sync.push", stream=name, tip=tip, remote=config.remote, was=expected)
        elif flag == "!":
            out[name] = _with_push(
                r,
                PUSH_REJECTED,
                f"push to {config.remote} rejected {summary}; not forced: someone else pushed "
                f"{config.branch(name)}; fetch and reconcile by hand",
            )
            events.append(ws.common_dir, "sync.push_reject", stream=name, tip=tip, summary=summary)
        else:
            out[name] = _with_push(r, PUSH_FAILED, f"push to {config.remote} failed: {_first_error(res)}")
    return out


def _remote_is_ours(cwd: Path, ref: str, remote_tip: str, before: str) -> bool:
    """May ``remote_tip`` be replaced by the local branch without losing anyone's commits?

    Yes when it is contained in the branch as it was before this pass's rebase; or when the local
    branch itself once pointed at it (its reflog: we pushed it, and a later rebase or a push that
    never happened left the remote behind); or when every commit on it has an equivalent patch in
    the branch (``--cherry-pick``). A commit someone else pushed satisfies none of these.
    """
    if _is_ancestor(cwd, remote_tip, before):
        return True
    reflog = git.run("log", "-g", "--format=%H", ref, "--", cwd=cwd, check=False)
    if remote_tip in reflog.text.split():
        return True
    theirs = git.run(
        "rev-list", "--right-only", "--cherry-pick", "--no-merges", f"{before}...{remote_tip}", cwd=cwd, check=False
    )
    return theirs.returncode == 0 and not theirs.text.split()


def _with_push(r: StreamResult, push: str, detail: str) -> StreamResult:
    return StreamResult(**{**r.__dict__, "push": push, "push_detail": detail})


# --- continue and abort ---------------------------------------------------------------------------


def _place_or_fail(ws: Workspace, config: Config, name: str) -> Place:
    config.stream(name)
    place = locate(ws, config, [name])[name]
    return place


def continue_halt(ws: Workspace, config: Config, name: str, *, on_wait: Notify | None = None) -> ContinueResult:
    """Finish a halted stream's rebase (``git rebase --continue``), then re-check its scope.

    Raises ``HaltedError`` when files are still unmerged or the next commit conflicts too (the
    halt is updated), ``ScopeViolationError`` when the finished rebase holds out-of-scope changes.
    """
    with sync_lock(ws, on_wait):
        place = _place_or_fail(ws, config, name)
        _, upstream = upstream_of(config)
        halts, notes = _reconcile(ws, config, {name: place}, upstream)
        halt = halts.get(name)
        if halt is None:
            done = next((n for n in notes if n.stream == name and n.what == "resolved"), None)
            if done is not None and place.tip is not None:
                return ContinueResult(
                    name, _resolved_halt(name, place), place.tip, _check_scope(ws, config, name, place)
                )
            raise SyncError(
                f"stream {name!r} is not halted; nothing to continue (run `streams sync` to sync it)", code="not_halted"
            )
        assert place.worktree is not None and place.git_dir is not None
        wt = place.worktree
        unmerged = _unmerged(wt)
        if unmerged:
            raise HaltedError(
                f"{name}: {len(unmerged)} file{'s' if len(unmerged) != 1 else ''} still unmerged in {wt}: "
                f"{', '.join(unmerged)}; resolve them, `git add` them, then run `streams sync --continue {name}` again"
            )
        res = git.run_unpiped("rebase", "--continue", cwd=wt, env={"GIT_EDITOR": "true"})
        if _rebase_dir(place.git_dir) is not None:
            files = _unmerged(wt)
            again = Halt(
                **{**halt.__dict__, "files": files, "time": iso_utc(), "reason": "conflict" if files else halt.reason}
            )
            record_halt(ws, again)
            events.append(ws.common_dir, "sync.halt", stream=name, files=list(files), onto=halt.onto, worktree=str(wt))
            what = (
                f"the next commit conflicts too, in {', '.join(files)}"
                if files
                else f"the rebase stopped again: {_git_says(res)}"
            )
            raise HaltedError(f"{name}: {what}; {_halt_next(again)}")
        if res.returncode != 0:
            raise SyncError(f"`git rebase --continue` in {wt} failed: {_first_error(res)}", code="continue_failed")
        tip = git.out("rev-parse", "HEAD", cwd=wt)
        clear_halt(ws, name)
        events.append(ws.common_dir, "halt.resolve", stream=name, tip=tip, via="streams sync --continue")
        checked = _check_scope(
            ws, config, name, Place(**{**place.__dict__, "tip": tip}), onto=halt.onto, original=halt.original_tip
        )
        return ContinueResult(name, halt, tip, checked)


def _resolved_halt(name: str, place: Place) -> Halt:
    return Halt(name, (), place.tip or "", "", iso_utc(), str(place.worktree or ""), "resolved", ref=place.ref)


def _check_scope(
    ws: Workspace, config: Config, name: str, place: Place, *, onto: str | None = None, original: str | None = None
) -> bool:
    """Raise ``ScopeViolationError`` when the stream's rebased commits leave its scope."""
    assert place.tip is not None
    upstream_ref, _ = upstream_of(config)
    base = onto or git.resolve_commit(ws.main_root, upstream_ref) or upstream_ref
    violations = _scope_violations(ws, config, name, place.tip, base)
    if violations:
        back = (
            f", or go back to before the rebase with `git -C {place.worktree} reset --keep {original}` "
            "(the rebased commits stay in the reflog)"
            if original and place.worktree
            else ""
        )
        raise ScopeViolationError(
            f"{name}: the rebase finished (tip {place.tip[:12]}) but its commits change paths outside the "
            f"stream's scope: {_describe_violations(violations)}; put them back with a new commit{back}"
        )
    return True


def _rebase_leftovers(worktree: Path, revs: Sequence[str]) -> list[str]:
    """Untracked files a killed rebase wrote without recording them in the index.

    Only files whose content is byte for byte the blob at the same path in one of ``revs`` (the
    commit the rebase was onto, the original tip) count: removing them loses nothing.
    """
    others = git.split_z(git.run("ls-files", "--others", "-z", cwd=worktree).stdout)
    others = [p for p in others if "\n" not in p and (worktree / p).is_file() and not (worktree / p).is_symlink()]
    if not others or not revs:
        return []
    mine = git.run("hash-object", "--stdin-paths", cwd=worktree, input="".join(f"{p}\n" for p in others).encode())
    queries = [f"{rev}:{p}" for p in others for rev in revs]
    res = git.run(
        "cat-file", "--batch-check=%(objectname)", cwd=worktree, input="".join(f"{q}\n" for q in queries).encode()
    )
    known = res.text.splitlines()
    leftovers = []
    for i, (path, oid) in enumerate(zip(others, mine.text.split(), strict=True)):
        if oid in known[i * len(revs) : (i + 1) * len(revs)]:
            leftovers.append(path)
    return leftovers


def _blocking_hint(res: git.Result) -> str:
    files = _blocking_files(res)
    if not files:
        return ""
    return (
        f" {', '.join(files)} (untracked; not copies of committed files, so streams leaves them: "
        "look at them and move them away)"
    )


def _locks_hint(worktree: Path, ref: str) -> str:
    locks = stale_locks(worktree, ref)
    return f" ({_stale_locks_fix(locks, 'that worktree')})" if locks else ""


def _stale_locks_fix(locks: Sequence[Path], where: str) -> str:
    """What to do about lock files a killed git left (``stale_locks``, ``fetch_locks``)."""
    return (
        f"stale lock files: {', '.join(str(p) for p in locks)}; a killed git process may have left them: "
        f"delete them if no git command runs in {where}"
    )


def abort_halt(ws: Workspace, config: Config, name: str, *, on_wait: Notify | None = None) -> AbortResult:
    """Abort a halted stream's rebase and make sure its branch is back at the original tip."""
    with sync_lock(ws, on_wait):
        place = _place_or_fail(ws, config, name)
        state = read_state(ws)
        halt = halts_of(state).get(name)
        inflight = inflight_of(state).get(name)  # a killed sync's rebase, not reconciled yet
        if halt is None and inflight is None and not place.rebasing:
            raise SyncError(f"stream {name!r} is not halted; nothing to abort", code="not_halted")
        if place.worktree is None or place.git_dir is None:
            clear_halt(ws, name)
            raise SyncError(
                f"stream {name!r} has no worktree any more; its halt is forgotten (the branch is at "
                f"{(place.tip or '-')[:12]}, the original tip was {(halt.original_tip if halt else '-')[:12]})",
                code="no_worktree",
            )
        wt = place.worktree
        rebase_dir = _rebase_dir(place.git_dir)
        if halt is not None and halt.original_tip:
            original: str | None = halt.original_tip
        elif inflight is not None:
            original = inflight.original_tip
        else:
            original = _read_small(rebase_dir / "orig-head") if rebase_dir else None
        if not original:
            raise SyncError(f"cannot tell the original tip of {name}; run `git rebase --abort` in {wt} yourself")
        removed: list[str] = []
        if rebase_dir is not None:
            onto = _read_small(rebase_dir / "onto")
            res = git.run_unpiped("rebase", "--abort", cwd=wt)
            if _rebase_dir(place.git_dir) is not None and "untracked working tree files" in res.stderr.decode(
                "utf-8", "replace"
            ):
                removed = _rebase_leftovers(wt, [r for r in (onto, original) if r])
                for path in removed:
                    (wt / path).unlink()
                res = git.run_unpiped("rebase", "--abort", cwd=wt)
            if _rebase_dir(place.git_dir) is not None:
                raise SyncError(
                    f"`git rebase --abort` in {wt} failed: {_first_error(res)}{_blocking_hint(res)}"
                    f"{_locks_hint(wt, place.ref)}; fix that, then retry `streams sync --abort {name}`",
                    code="abort_failed",
                )
        branch = place.ref.removeprefix("refs/heads/")
        head = git.run("symbolic-ref", "--quiet", "HEAD", cwd=wt, check=False).text.strip()
        if not head:  # detached with no rebase state: a rebase killed at its start or its end
            res = git.run_unpiped("switch", "--quiet", branch, cwd=wt)
            if res.returncode != 0 and "untracked working tree files" in res.stderr.decode("utf-8", "replace"):
                ontos = [h.onto for h in (halt, inflight) if h is not None and h.onto]
                more = _rebase_leftovers(wt, [*ontos, original])
                for path in more:
                    (wt / path).unlink()
                removed += more
                res = git.run_unpiped("switch", "--quiet", branch, cwd=wt)
            if res.returncode != 0:
                raise SyncError(
                    f"HEAD is detached in {wt} and `git switch {branch}` failed: {_first_error(res)}"
                    f"{_blocking_hint(res)}{_locks_hint(wt, place.ref)}; fix that, then retry `streams sync --abort {name}`",
                    code="abort_failed",
                )
            head = git.run("symbolic-ref", "--quiet", "HEAD", cwd=wt, check=False).text.strip()
        if head != place.ref:
            raise SyncError(
                f"{wt} is on {head} after the abort, not on {branch}; run `git switch {branch}` there, "
                f"then retry `streams sync --abort {name}`",
                code="abort_failed",
            )
        tip = git.out("rev-parse", "HEAD", cwd=wt)
        replaced = None
        if tip != original:
            # Put the branch back; the tip it moves away from stays in the branch's reflog.
            res = git.run_unpiped("reset", "--quiet", "--keep", original, cwd=wt)
            now = git.out("rev-parse", "HEAD", cwd=wt)
            if res.returncode != 0 or now != original:
                raise SyncError(
                    f"could not move {place.ref.removeprefix('refs/heads/')} back to {original[:12]} in {wt}: "
                    f"{_first_error(res)}{_locks_hint(wt, place.ref)}; commit or clean up the worktree and retry",
                    code="abort_failed",
                )
            replaced = tip
        clear_halt(ws, name)
        end_rebase(ws, name)
        events.append(
            ws.common_dir,
            "halt.abort",
            stream=name,
            tip=original,
            replaced=replaced,
            removed=removed,
            via="streams sync --abort",
        )
        return AbortResult(name, halt, original, replaced, wt, tuple(removed))
