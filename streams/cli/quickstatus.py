"""`streams status --json` the quick way: before click, PyYAML, ``dataclasses``, ``pathlib``,
``json`` or ``subprocess`` load, for the agents and scripts that poll it.

It answers from what the full path keeps on disk and the fewest git processes, all started at
once (``streams.kernel.gitproc.run_many``):

- the configuration in force and the streams' places as ``streams list``'s quick path reads them
  (``streams.cli.quickread``: the hooks' compiled cache, its record, one ``git worktree list``);
- one ``git config`` (``core.hooksPath``, ``core.untrackedCache``), one ``git for-each-ref`` for
  every tip, author date, parent and ahead/behind (the base as each branch's upstream for that
  call, as ``git.divergence_many`` does), one ``git status`` per started worktree on the
  dashboard's own copy of its index (``streams.kernel.indexcopy``), one ``git diff-tree --stdin``
  for every stream's changed paths; and only when a stream has more than one commit of its own,
  one ``git log`` of them all (``gitparse.line_work`` counts the commits with work);
- the progress files (``streams.kernel.progressfile``), the leases (``streams.kernel.leasedata``),
  ``merge.json``, and the hooks' states as the full status last found them, while their files are
  unchanged (``streams.kernel.hookstate``).

It steps aside, and the full CLI answers as if this module did not exist, whenever the snapshot
needs more than that: another command line, a repository the quick list would not read, a stream
behind the base (a rebase's conflicts are predicted the full way), a halt or an operation in
progress, a run's records or a progress file of a shape it does not read, an unconfigured or
missing worktree, a lease being written, ``core.hooksPath`` set or the untracked cache turned off,
hooks whose files changed since the full path judged them, any git process that failed. With
``remote:`` set it counts against ``<remote>/<base>`` as last fetched, as the full path does.
Its output is the full path's, field for field (``tests/test_quickstatus.py`` runs
both over many repository states); ``STREAMS_FULL_PATH=1`` turns it off.
"""

from __future__ import annotations

import os
import sys
import time

from streams.cli.quickread import (
    FULL_PATH_ENV,
    Repo,
    Served,
    find_repo,
    places,
    served,
    worktree_git_dir,
    write_reply,
)
from streams.kernel import hookstate, leanjson, leasedata, paths, progressfile, runview
from streams.kernel.errors import EXIT_INTERRUPTED
from streams.kernel.gitparse import (
    STATUS_ARGS,
    commits_with_paths_args,
    line_work,
    operation_in_progress,
    parse_commits_with_paths,
    parse_diff_tree_stdin,
    parse_status,
    parse_track,
)
from streams.kernel.gitproc import NO_OPTIONAL_LOCKS, run_many
from streams.kernel.indexcopy import PrivateIndex
from streams.kernel.procs import same_process
from streams.kernel.reffiles import read_ref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from streams.kernel.gitproc import Call

STATE_VERSION = 1  # streams.state.STATE_VERSION (tests/test_quickstatus.py keeps them equal)
_FOREACH_FORMAT = (
    "--format=%(refname)%00%(objectname)%00%(*objectname)%00%(authordate:unix)%00%(parent)"
    "%00%(upstream)%00%(upstream:track,nobracket)"
)
_FALSE = ("false", "no", "off", "0")


class StepAside(Exception):
    """The snapshot needs more than the quick path reads: the full CLI answers."""


def serve(args: list[str]) -> int | None:
    """Run ``streams ARGS`` the quick way and return its exit code, or None: run the full CLI."""
    if os.environ.get(FULL_PATH_ENV) or args != ["status", "--json"]:
        return None
    try:
        repo = find_repo(os.getcwd())
        if repo is None:
            return None
        config = served(repo, printed=True)
        if config is None:
            return None
        data = snapshot(repo, config, time.time())
    except (StepAside, OSError, ValueError, TypeError, KeyError, RecursionError):
        return None  # ValueError and the others: a file of another shape (damaged JSON, a record of
        # another version); the full path reads it and says what it makes of it
    except KeyboardInterrupt:
        sys.stderr.write("streams: interrupted\n")
        return EXIT_INTERRUPTED
    from streams.cli.output import envelope_text

    return write_reply(list(dict.fromkeys(config.warnings)), envelope_text("status", data))


# --- the snapshot ------------------------------------------------------------------------------------


class _Row:
    __slots__ = (
        "authored",
        "branch",
        "changes",
        "conflicted",
        "dirty",
        "git_dir",
        "head",
        "landed",
        "name",
        "parents",
        "path",
        "progress",
        "state",
        "track",
        "unmerged",
    )

    def __init__(self, name: str, branch: str, path: str, state: str) -> None:
        self.name, self.branch, self.path, self.state = name, branch, path, state
        self.git_dir: str | None = None
        self.head: str | None = None
        self.authored = 0.0
        self.parents: list[str] = []
        self.track: tuple[int, int] | None = None  # (ahead, behind)
        self.changes: tuple[str, ...] = ()
        self.dirty: list[str] = []
        self.conflicted: list[str] = []
        self.unmerged: int | None = None
        self.progress: dict[str, object] | None = None
        self.landed: str | None = None


def snapshot(repo: Repo, config: Served, now: float) -> dict[str, object]:
    """``streams status --json``'s ``data`` (``streams.dashboard.Snapshot``), or ``StepAside``."""
    cc = config.cc
    common = repo.common_dir
    _halts(common)
    run, cells = _run(common, now)
    landed = _landed(common)
    found = places(repo, config)
    if found is None or any(state == "unconfigured" for _, _, _, state, _ in found):
        raise StepAside("places")
    rows = [_Row(name, branch, path, state) for name, branch, path, state, _ in found]
    for r in rows:
        if r.state == "not started" and r.name in landed:
            r.state, r.landed = "landed", landed[r.name]
    started = [r for r in rows if r.state == "started"]
    for r in started:
        r.git_dir = worktree_git_dir(r.path)
        if r.git_dir is None or operation_in_progress(r.git_dir) is not None:
            raise StepAside("operation")
    hooks = hookstate.recall(common, version=_version(), package=_package())
    if hooks is None:
        raise StepAside("hooks")

    # What ahead/behind count against (``worktrees.compared_ref``): ``<remote>/<base>`` as last
    # fetched when a remote is set and that ref exists, else the base.
    upstream = f"refs/remotes/{cc.remote}/{cc.base}" if cc.remote else None
    upstream_tip = read_ref(common, upstream) if upstream else None
    base_ref = upstream if upstream and upstream_tip else cc.base_ref
    base_tip = upstream_tip or read_ref(common, base_ref)
    branch_refs = {r.name: f"refs/heads/{r.branch}" for r in rows}
    guessed = {r.name: read_ref(common, branch_refs[r.name]) for r in rows}
    if base_tip is None:
        raise StepAside("no base")
    # Every stream is expected on top of the base (else the full path predicts its conflicts): its
    # changes are then those since the base's tip, asked for in the same batch as the rest.
    heads = list(dict.fromkeys(head for head in guessed.values() if head is not None and head != base_tip))
    upstream_env: dict[str, str] = {**NO_OPTIONAL_LOCKS, "GIT_CONFIG_COUNT": str(2 * len(rows))}
    for i, r in enumerate(rows):
        upstream_env[f"GIT_CONFIG_KEY_{2 * i}"], upstream_env[f"GIT_CONFIG_VALUE_{2 * i}"] = (
            f"branch.{r.branch}.remote",
            ".",
        )
        upstream_env[f"GIT_CONFIG_KEY_{2 * i + 1}"], upstream_env[f"GIT_CONFIG_VALUE_{2 * i + 1}"] = (
            f"branch.{r.branch}.merge",
            base_ref,
        )
    calls: list[Call] = [
        (("config", "-z", "--get-regexp", r"^core\.(hookspath|untrackedcache)$"), repo.main_root, NO_OPTIONAL_LOCKS, None),
        (("for-each-ref", _FOREACH_FORMAT, base_ref, f"refs/heads/{cc.branch_prefix}".rstrip("/")), repo.main_root, upstream_env, None),
    ]  # fmt: skip
    if heads:
        stdin = "".join(f"{head} {base_tip}\n" for head in heads).encode()
        diff = ("diff-tree", "--stdin", "--always", "-r", "-z", "--name-only", "--no-renames")
        calls.append((diff, repo.main_root, NO_OPTIONAL_LOCKS, stdin))
    copies: list[PrivateIndex] = []
    try:
        for r in started:
            assert r.git_dir is not None
            copy = PrivateIndex(r.git_dir)
            copies.append(copy)
            index = copy.__enter__()
            args = (*STATUS_ARGS, "--untracked-files=all")
            if index is None:
                calls.append((args, r.path, NO_OPTIONAL_LOCKS, None))
            else:
                # As the full path asks it (``git.status`` with a private index). Whether the user
                # turned the untracked cache off is known once `git config` answered: then the
                # full path answers.
                flags = ("-c", "core.untrackedCache=true", "-c", "status.showUntrackedFiles=all")
                calls.append(((*flags, *args), r.path, {"GIT_INDEX_FILE": index}, None))
        results = run_many(calls)
    finally:
        for copy in copies:
            copy.__exit__(None, None, None)
    (config_code, config_out), (refs_code, refs_out), *rest = results
    if config_code not in (0, 1) or refs_code != 0:
        raise StepAside("git")
    settings = _settings(config_out)
    if settings.get("core.hookspath"):
        raise StepAside("core.hooksPath")
    if settings.get("core.untrackedcache", "").lower() in _FALSE:
        raise StepAside("untracked cache off")
    changes: dict[str, tuple[str, ...]] = {}
    if heads:
        diff_code, diff_out = rest.pop(0)
        if diff_code != 0:
            raise StepAside("git")
        changes = dict(zip(heads, parse_diff_tree_stdin(diff_out, heads), strict=True))
    for r, (code, out) in zip(started, rest, strict=True):
        if code != 0:
            raise StepAside("git status")
        for kind, _xy, path, source in parse_status(out):
            if source:
                r.dirty.append(source)
            r.dirty.append(path)
            if kind == "u":
                r.conflicted.append(path)

    _tips(rows, refs_out, base_ref, base_tip, branch_refs, guessed)
    for r in rows:
        r.changes = changes.get(r.head or "", ())
    _unmerged(repo, rows, base_tip)
    for r in started:
        r.progress = _progress(r)
    leases = _leases(common)
    return _data(cc, rows, leases, hooks, base_ref, base_tip, now, run, cells)


def _halts(common: str) -> None:
    """Step aside when sync halted a stream (``state.json``): the full path shows the halt."""
    try:
        with open(paths.state_file(common), encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return
    data = leanjson.loads(text)
    if not isinstance(data, dict) or data.get("version", STATE_VERSION) != STATE_VERSION or data.get("halts"):
        raise StepAside("state")


Cells = dict[str, tuple[dict[str, object], "int | None", bool]]  # stream -> (run cell, agent pid, agent running)


def _run(common: str, now: float) -> tuple[dict[str, object] | None, Cells]:
    """The latest run and each of its streams' cell (``streams.status.read_run``)."""
    found = runview.read(common)
    if found is False:
        raise StepAside("run state")
    if not isinstance(found, tuple):
        return None, {}  # no run recorded
    record: Any = found[0]
    runner: Any = found[1]
    alive = runner is not None and same_process(runner["pid"], runner["start_time"])
    status = str(record["status"])
    if not alive and status in ("running", "halting"):
        status = "interrupted"
    streams: dict[str, Any] = record.get("streams", {})
    attempts: dict[str, list[Any]] = {name: s.get("attempts", []) for name, s in streams.items()}
    cells: Cells = {}
    for name, s in streams.items():
        last = attempts[name][-1] if attempts[name] else None
        pid = last.get("pid", 0) if last else 0
        running = bool(last and last.get("ended") is None and pid > 0 and same_process(pid, last.get("start_time")))
        cell = {
            "run_id": record["run_id"],
            "wave": s["wave"],
            "status": s["status"],
            "attempt": len(attempts[name]),
            "failure": s.get("klass"),
            "cause": s.get("cause", ""),
        }
        cells[name] = (cell, pid or None, running)
    times = [
        a["ended"] - a["started"] for tried in attempts.values() for a in tried if a.get("ended") and a.get("started")
    ]
    since = [
        tried[-1]["started"]
        for name, tried in attempts.items()
        if streams[name]["status"] == "running" and tried and tried[-1].get("started")
    ]
    figures = runview.figures(
        [str(s["status"]) for s in streams.values()],
        times,
        since,
        status,
        record.get("started", now),
        record.get("ended"),
        now,
    )
    view = {
        "run_id": record["run_id"],
        "status": status,
        "wave": record.get("wave", 0),
        "waves": len(record["waves"]),
        "runner_alive": alive,
        "paused_by": record.get("paused_by", ""),
        **dict(zip(("running", "queued", "verified", "failed", "elapsed", "remaining"), figures, strict=True)),
    }
    return view, cells


def _landed(common: str) -> dict[str, str]:
    """``streams.landings.landed``: stream -> the commit its last completed landing made."""
    try:
        with open(paths.merge_file(common), encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return {}
    data = leanjson.loads(text)
    if not isinstance(data, dict):
        return {}
    entries = data.get("landings", [])
    if not isinstance(entries, list):
        raise StepAside("merge.json")
    return {
        str(e["stream"]): str(e["merged"])
        for e in entries
        if isinstance(e, dict) and e.get("state") == "done" and e.get("merged")
    }


def _version() -> str:
    from streams import __version__

    return __version__


def _package() -> str:
    import streams

    return os.path.dirname(os.path.realpath(streams.__file__))


def _settings(out: bytes) -> dict[str, str]:
    """``git config -z --get-regexp`` output -> ``{key: last value}``."""
    found: dict[str, str] = {}
    for record in out.split(b"\0"):
        if record:
            key, _, value = record.decode("utf-8", "surrogateescape").partition("\n")
            found[key] = value
    return found


def _tips(
    rows: list[_Row],
    refs_out: bytes,
    base_ref: str,
    base_tip: str,
    branch_refs: dict[str, str],
    guessed: dict[str, str | None],
) -> None:
    """Each row's tip, author date, parents and (ahead, behind) from the one ``for-each-ref``; step
    aside when a ref moved since its file was read, or a stream is not on top of the base."""
    tips: dict[str, list[str]] = {}
    for line in refs_out.decode("utf-8", "surrogateescape").splitlines():
        parts = line.split("\0")
        if len(parts) == 7:
            tips[parts[0]] = parts
    base = tips.get(base_ref)
    if base is None or (base[2] or base[1]) != base_tip:
        raise StepAside("base moved")
    for r in rows:
        tip = tips.get(branch_refs[r.name])
        if tip is None:
            if guessed[r.name] is not None:
                raise StepAside("ref moved")
            continue
        _, oid, peeled, date, parents, upstream, track = tip
        r.head = peeled or oid
        if r.head != guessed[r.name] or upstream != base_ref or track == "gone":
            raise StepAside("ref moved")
        try:
            r.authored = float(date)
        except ValueError:
            r.authored = 0.0
        r.parents = parents.split()
        ahead, behind = parse_track(track)
        if behind:
            raise StepAside("behind")  # its conflicts are predicted the full way
        r.track = (ahead, 0)


def _unmerged(repo: Repo, rows: list[_Row], base_tip: str) -> None:
    """Each row's commits with work not on the base (``Collector._unmerged_counts``): from its one
    commit's changes when it has one on the base's tip, else from one ``git log`` of them all."""
    graph: dict[str, tuple[list[str], list[str]]] = {}
    ahead = [r for r in rows if r.head is not None and r.track is not None and r.track[0]]
    if any(r.track is not None and (r.track[0] != 1 or r.parents != [base_tip]) for r in ahead):
        args = commits_with_paths_args([r.head or "" for r in ahead], [base_tip])
        ((code, out),) = run_many([(args, repo.main_root, NO_OPTIONAL_LOCKS, None)])
        if code != 0:
            raise StepAside("git log")
        graph = parse_commits_with_paths(out)
    else:
        graph = {r.head or "": ([base_tip], list(r.changes)) for r in ahead}
    for r in rows:
        if r.head is None:
            continue
        if r.track is None or not r.track[0]:
            r.unmerged = 0
            continue
        count = line_work(graph, r.head, paths.progress_path(r.name))
        if count is None:
            raise StepAside("merge on the way")  # the full path asks rev-list --cherry-pick
        r.unmerged = count


def _progress(r: _Row) -> dict[str, object] | None:
    """The stream's progress file in its worktree (``streams.progress.read_progress``)."""
    rel = paths.progress_path(r.name)
    file = os.path.join(r.path, rel)
    try:
        with open(file, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    try:
        found = progressfile.read(text, file, None)
    except progressfile.ProgressFormatError:
        found = None
    if found is None:
        raise StepAside("progress file")
    meta, status, completion, sections = found
    updated = meta.get("updated")
    return {
        "status": status,
        "completion": completion,
        "current": " ".join(sections["Current Task"]),
        "blocked": list(sections["Blocked Items"]),
        "updated": updated if isinstance(updated, str) else "",
    }


def _leases(common: str) -> list[dict[str, object]]:
    """Every lease, sorted by path (``kernel.locks.list_leases``; a lease being written: step aside)."""
    found, temps = leasedata.read_all(paths.locks_dir(common))
    if temps:
        raise StepAside("lease being written")
    return found


def _held_by(stream: str) -> Callable[[str], tuple[str, float] | None]:
    """Every shared path as leased to ``stream``: committed changes pass (``scope.check_paths``
    with ``leases=False``: the hooks checked the lease at commit time)."""
    held = (stream, float("inf"))

    def lease_of(_path: str) -> tuple[str, float] | None:
        return held

    return lease_of


def _iso(ts: float) -> str:
    """``streams.kernel.durations.iso_utc``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _data(
    cc: object,
    rows: list[_Row],
    leases: list[dict[str, object]],
    hooks: dict[str, str],
    base_ref: str,
    base_tip: str,
    now: float,
    run: dict[str, object] | None,
    cells: Cells,
) -> dict[str, object]:
    """The snapshot in ``streams.dashboard``'s JSON shape, field for field."""
    from streams.kernel.rules import CompiledConfig

    assert isinstance(cc, CompiledConfig)
    held: dict[str, list[dict[str, object]]] = {}
    live: dict[str, tuple[str, float]] = {}
    for lease in leases:
        expires = lease["expires_at"]
        assert isinstance(expires, float)
        if now < expires:
            held.setdefault(str(lease["stream"]), []).append(leasedata.view(lease, now))
            live[str(lease["path"])] = (str(lease["stream"]), expires)
    changed: dict[str, set[str]] = {}
    for r in rows:
        touched = set(r.changes) | set(r.dirty)
        touched.discard(paths.progress_path(r.name))
        changed[r.name] = touched
    streams: list[dict[str, object]] = []
    out_of_scope_total = 0
    for r in rows:
        out_of_scope: list[dict[str, str]] = []
        committed_out: list[dict[str, str]] = []
        if r.state == "started" and r.name in cc.stream_rules:
            conflicted = set(r.conflicted)
            edits = [p for p in r.dirty if p not in conflicted]
            if edits:
                found = cc.check(r.name, (("", p) for p in edits), live.get)
                out_of_scope = [{"path": f[0], "reason": f[1]} for f in found]
            if r.changes:
                found = cc.check(r.name, (("", p) for p in r.changes), _held_by(r.name))
                committed_out = [{"path": f[0], "reason": f[1]} for f in found]
        out_of_scope_total += len(out_of_scope)
        p = r.progress
        overlaps = {
            other: sorted(changed[r.name] & touched)
            for other, touched in changed.items()
            if other != r.name and changed[r.name] & touched
        }
        cell, pid, running = cells.get(r.name, (None, None, False))
        active = r.state == "started" and ((p is not None and p["status"] == "in_progress") or running)
        streams.append({
            "name": r.name,
            "state": r.state,
            "branch": r.branch,
            "worktree": r.path,
            "head": r.head,
            "status": p["status"] if p is not None else None,
            "completion": p["completion"] if p is not None else None,
            "current_task": p["current"] if p is not None else "",
            "blocked_items": p["blocked"] if p is not None else [],
            "progress_updated": p["updated"] if p is not None else "",
            "ahead": r.unmerged if r.track is not None else None,
            "behind": r.track[1] if r.track is not None else None,
            "dirty": r.dirty,
            "out_of_scope": out_of_scope,
            "committed_out_of_scope": committed_out,
            "locks": held.get(r.name, []),
            "halted": False,
            "halt": None,
            "operation": None,
            "conflicted": r.conflicted,
            "predicted_conflicts": [],
            "changed": sorted(changed[r.name]),
            "overlaps": overlaps,
            "last_commit": _iso(r.authored) if r.authored else None,
            "last_commit_age": max(0.0, round(now - r.authored, 1)) if r.authored else None,
            "agent_pid": pid,
            "agent_running": running,
            "errors": [],
            "landed": r.landed,
            "run": cell,
            "active": active,
        })  # fmt: skip
    summary = {
        "total": len(streams),
        "started": sum(s["state"] == "started" for s in streams),
        "not_started": sum(s["state"] in ("not started", "branch only") for s in streams),
        "active": sum(bool(s["active"]) for s in streams),
        "completed": sum(s["status"] == "completed" for s in streams),
        "blocked": sum(s["status"] == "blocked" for s in streams),
        "failed": sum(s["status"] == "failed" for s in streams),
        "halted": 0,
        "locks_held": sum(len(v) for v in held.values()),
        "out_of_scope": out_of_scope_total,
        "predicted_conflicts": 0,
        "errors": 0,
        "hooks": hooks,
        "hooks_path": None,
        "hooks_ok": all(state == "installed" for state in hooks.values()),
    }
    return {
        "base": cc.base,
        "base_ref": base_ref,
        "base_tip": base_tip,
        "time": _iso(now),
        "summary": summary,
        "streams": streams,
        "warnings": [],
        "run": run,
    }
