"""Scope enforcement for the full code: who may change what, over paths and over commit ranges.

The rules themselves live in ``streams.kernel.rules`` (shared with the git hooks, so the two can never
disagree); this module applies them to what the commands need:

- ``check_paths``: paths a stream changed or is changing (status: uncommitted edits; watch);
- ``violations_in_range``: every commit of a range against its parent (sync --continue, merge);
- ``verify``: ``streams verify [RANGE] [--stream NAME]`` for people, CI and a server's pre-receive.

Shared paths in a *range* of commits: a lease is a fact about the moment of the commit (the hooks
check it then), and history does not record who held which lease, so range checks accept a stream
changing a shared path and list it under ``shared_changes`` instead. ``leases=True`` applies the
live-lease rule as of now, as the hooks do.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from streams import git
from streams.config import CONFIG_NAME, Config, parse
from streams.kernel import paths
from streams.kernel.errors import ConfigError, NotARepositoryError, PathError, StreamsError, UsageError
from streams.kernel.lease import lease_lookup
from streams.kernel.rules import CompiledConfig, Finding, describe_owner
from streams.ownership import OwnerKind, compiled
from streams.workspace import Workspace, discover

# Set by receive-pack while a push is in quarantine: commands run from a pre-receive hook must keep
# them, or the pushed objects are invisible.
OBJECT_ENV = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")


@dataclass(frozen=True)
class Violation:
    """A change a stream may not make.

    ======  ===========  ==========================================================================
    field   type         meaning
    ======  ===========  ==========================================================================
    path    str          the path, relative to the repository root
    reason  str          why not, as the hooks say it: "owned by ui", "unowned", …
    commit  str | null   the commit that makes the change; null: uncommitted
    fix     str          what to do about it
    status  str          A, M, D or T when known ("" otherwise)
    stream  str          the stream that may not make it
    ======  ===========  ==========================================================================
    """

    path: str
    reason: str  # "owned by ui", "shared: run `streams lock pyproject.toml`", "shared: held by ui until 12:00", "unowned", …
    commit: str | None = None  # the commit that makes the change (None: uncommitted)
    fix: str = ""  # what to do about it
    status: str = ""  # A, M, D or T when known (both sides of a rename are an A and a D)
    stream: str = ""  # the stream that may not make the change


def _violations(stream: str, findings: Iterable[Finding]) -> list[Violation]:
    return [Violation(path, reason, commit, fix, status, stream) for path, reason, fix, status, commit in findings]


def _rules(config: Config, stream: str) -> CompiledConfig:
    config.stream(stream)  # UnknownStreamError naming the known streams
    return compiled(config)


def check_paths(
    ws: Workspace, config: Config, stream: str, paths: Iterable[str], *, leases: bool = True
) -> list[Violation]:
    """The paths among ``paths`` that ``stream`` may not change, each with reason and fix.

    Applies DESIGN "Scope enforcement" as of now, live leases included; with ``leases=False`` a
    shared path passes (what is already committed: the hooks checked its lease at commit time).
    """
    cc = _rules(config, stream)
    lease_of = lease_lookup(ws.common_dir) if leases else (lambda _path: (stream, math.inf))
    return _violations(stream, cc.check(stream, (("", p) for p in paths), lease_of))


def violations_in_range(
    ws: Workspace,
    config: Config,
    stream: str,
    tip: str,
    exclude: Sequence[str],
    *,
    leases: bool = False,
) -> list[Violation]:
    """Every change outside ``stream``'s scope in the commits reachable from ``tip`` and not from ``exclude``.

    ``exclude`` is e.g. ``[old_tip, base]``. Shared paths pass unless ``leases`` (see the module doc).
    """
    cc = _rules(config, stream)
    lease_of = lease_lookup(ws.common_dir) if leases else (lambda _path: (stream, math.inf))
    found: list[Violation] = []
    for commit, changes in git.range_changes(ws.main_root, [tip], list(exclude), env=object_env()):
        found += _violations(stream, cc.check(stream, changes, lease_of, commit))
    return found


# --- streams verify --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamVerdict:
    """One stream's commits, checked.

    ==============  ===========  ==================================================================
    field           type         meaning
    ==============  ===========  ==================================================================
    stream          str          the stream whose scope applies
    range           str          what was checked, e.g. ``main..streams/api``
    tip             str          the commit checked up to
    commits         int          commits checked
    violations      [Violation]  every change outside the scope, commit by commit
    shared_changes  [str]        shared paths the range changes (leases are checked at commit time)
    ok              bool         no violation
    ==============  ===========  ==================================================================
    """

    stream: str
    range: str  # what was checked, e.g. "main..streams/api"
    tip: str  # the commit checked up to
    commits: int
    violations: tuple[Violation, ...]
    shared_changes: tuple[str, ...]  # shared paths the range changes (accepted: see the module doc)

    json_properties: ClassVar[tuple[str, ...]] = ("ok",)  # derived facts the JSON carries too

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class VerifyReport:
    """``streams verify --json``'s ``data``; with violations the command exits 5 and ``ok`` is false
    in the envelope and here.

    =======  ===============  =====================================================================
    field    type             meaning
    =======  ===============  =====================================================================
    results  [StreamVerdict]  one per stream checked
    ok       bool             no stream has a violation
    =======  ===============  =====================================================================
    """

    results: tuple[StreamVerdict, ...]

    json_properties: ClassVar[tuple[str, ...]] = ("ok",)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(v for r in self.results for v in r.violations)


def object_env() -> dict[str, str]:
    return {k: os.environ[k] for k in OBJECT_ENV if os.environ.get(k)}


def open_for_verify(cwd: Path, config_rev: str | None) -> tuple[Workspace, Config]:
    """The workspace and configuration ``verify`` works with; bare repositories (a server) included.

    ``config_rev``: read ``streams.yaml`` from that revision instead of the configuration in force
    (the one committed on the base; default HEAD in a bare repository, which has no worktree).
    """
    env = object_env()
    dirs = git.git_dirs(cwd, env=env)
    if dirs is None:
        raise NotARepositoryError(f"{cwd} is not inside a git repository (cd into one, or pass -C PATH)")
    git_dir, common, bare = dirs
    if bare:
        ws = Workspace(common, git_dir, common, common)
        config_rev = config_rev or "HEAD"
    else:
        ws = discover(cwd)
    if config_rev is None:
        from streams.workspace import load_config

        return ws, load_config(ws)
    if config_rev.startswith("-"):
        raise UsageError(f"--config-rev {config_rev!r}: name a revision, e.g. HEAD or origin/main")
    shown = git.read_blob(ws.main_root, config_rev, CONFIG_NAME, env=env)
    if shown is None:
        raise ConfigError(f"no {CONFIG_NAME} in {config_rev} (commit one there, or pass --config-rev REV)")
    text = shown.decode("utf-8", "replace")
    return ws, parse(text, path=ws.main_root / CONFIG_NAME, display=f"{config_rev}:{CONFIG_NAME}")


def _rev_list_args(ws: Workspace, rev_range: str) -> tuple[list[str], list[str]]:
    """RANGE (``A..B``, ``B``, ``^A B``…) -> positive and negative object names."""
    if rev_range.startswith("-"):
        raise UsageError(f"{rev_range!r} is not a revision range; write e.g. main..HEAD")
    words = git.rev_parse_range(ws.toplevel, rev_range, env=object_env())
    if not words:
        raise UsageError(f"{rev_range!r} is not a revision range this repository knows (e.g. main..HEAD)")
    pos = [w for w in words if not w.startswith("^")]
    neg = [w[1:] for w in words if w.startswith("^")]
    if not pos:
        raise UsageError(f"{rev_range!r} names no commit to check; write e.g. main..HEAD")
    return pos, neg


def _stream_of_range(ws: Workspace, config: Config, rev_range: str) -> str | None:
    right = rev_range.split("..")[-1].lstrip(".") or "HEAD"
    for name in config.names:
        if right in (config.branch(name), config.branch_ref(name), f"heads/{config.branch(name)}"):
            return name
    return None


def verify(ws: Workspace, config: Config, rev_range: str | None = None, stream: str | None = None) -> VerifyReport:
    """Check a commit range (or every stream branch against the base) against the scope rules.

    Revisions are resolved in the worktree the command runs in (``HEAD`` is that worktree's). The
    git processes do not grow with the streams: one ``cat-file --batch-check`` resolves the base
    and every stream branch, one ``git log`` lists the commits of every range (``range_changes_per_tip``).
    """
    env = object_env()
    jobs: list[tuple[str, str, list[str], list[str] | None]] = []  # (stream, description, tips, excludes)
    refs: list[str] = list(config.base_refs())
    if rev_range is not None:
        name = stream or _stream_of_range(ws, config, rev_range) or ws.current_stream()
        if name is None:
            raise UsageError(
                f"say which stream the commits of {rev_range!r} belong to: --stream NAME "
                f"(known streams: {', '.join(config.names) or 'none'})"
            )
        config.stream(name)
        tips, negs = _rev_list_args(ws, rev_range)
        jobs.append((name, rev_range, tips, negs))
    else:
        names = [stream] if stream else list(config.names)
        known = set(config.names)
        refs += [config.branch_ref(n) for n in names if n in known]  # an unknown one fails below
    found = git.resolve_many(ws.main_root, refs)
    bases: list[str] = [ref for ref in config.base_refs() if found.get(ref) is not None]
    if not bases and rev_range is None:
        raise StreamsError(
            f"the base branch {config.base!r} does not exist here, so verify cannot tell the streams' commits "
            f"from the base's; create or fetch it, or give a RANGE (e.g. `streams verify {config.base}..HEAD`)",
            code="no_base",
        )
    if rev_range is None:
        for s in config.select(names):
            jobs.append((s.name, f"{config.base}..{config.branch(s.name)}", [config.branch_ref(s.name)], None))
    cc = compiled(config)
    if rev_range is not None:
        name, description, tips, excludes = jobs[0]
        assert excludes is not None
        commits = git.range_changes(ws.toplevel, tips, excludes + bases, env=env)
        return VerifyReport((_verdict(cc, name, description, tips[0], commits),))
    cc.prime_rivals()
    started: list[tuple[str, str, str]] = []  # (stream, description, tip)
    for name, description, tips, _ in jobs:
        tip = found.get(tips[0])
        if tip is None:
            if stream:
                raise StreamsError(
                    f"stream {name!r} has no branch {config.branch(name)}; start it, or give a RANGE "
                    "to check (e.g. `streams verify main..HEAD --stream NAME`)",
                    code="no_branch",
                )
            continue
        started.append((name, description, tip))
    per_tip = git.range_changes_per_tip(ws.toplevel, [tip for _, _, tip in started], bases, env=env)
    return VerifyReport(tuple(_verdict(cc, name, description, tip, per_tip[tip]) for name, description, tip in started))


def verify_tip(ws: Workspace, config: Config, name: str, tip: str, bases: Sequence[str]) -> VerifyReport:
    """``verify(stream=name)`` of the commit ``tip`` against the commits ``bases`` (the base refs
    resolved), when the caller has resolved them: one git process (the merge queue, per landing)."""
    commits = git.range_changes(ws.toplevel, [tip], list(bases), env=object_env())
    verdict = _verdict(compiled(config), name, f"{config.base}..{config.branch(name)}", tip, commits)
    return VerifyReport((verdict,))


def _verdict(
    cc: CompiledConfig, name: str, description: str, tip: str, commits: Sequence[tuple[str, list[tuple[str, str]]]]
) -> StreamVerdict:
    """``commits`` (each with its changes), judged as ``name``'s."""
    allow_shared = (lambda n: lambda _path: (n, math.inf))(name)
    violations: list[Violation] = []
    shared: dict[str, None] = {}
    shared_list = cc.matcher(None)
    for commit, changes in commits:
        violations += _violations(name, cc.check(name, changes, allow_shared, commit))
        for _, path in changes:
            if shared_list.matches(path) and cc.owner(path)[0] == "shared":  # the first test is the cheap one
                shared[path] = None
    return StreamVerdict(name, description, tip, len(commits), tuple(violations), tuple(shared))


# --- streams owner -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathOwner:
    """Who owns a path, and whether the stream the command runs in may change it.

    =======  ============  ========================================================================
    field    type          meaning
    =======  ============  ========================================================================
    path     str           relative to the repository root
    kind     str           stream | progress | shared | reserved | unowned (``OwnerKind``)
    stream   str | null    the owning stream (kind stream or progress)
    pattern  str | null    the pattern in streams.yaml that decides, as written
    current  str | null    the stream whose worktree the command runs in (null: none)
    allowed  bool | null   may ``current`` change the path (null: no current stream)
    reason   str | null    why not
    =======  ============  ========================================================================
    """

    path: str  # relative to the repository root
    kind: OwnerKind
    stream: str | None  # the owning stream (kind stream or progress)
    pattern: str | None  # the pattern in streams.yaml that decides
    # When run inside a stream's worktree: may that stream change it, and if not, why.
    current: str | None = None
    allowed: bool | None = None
    reason: str | None = None


def repo_path(ws: Workspace, raw: str, cwd: Path) -> str:
    """``raw`` (relative to ``cwd``, or absolute) as a path relative to the worktree root; a path
    that names nothing in the repository is a usage error (exit 2)."""
    try:
        return paths.repo_path(raw, cwd=cwd, roots=[str(ws.toplevel)])
    except PathError as exc:
        raise UsageError(exc.message) from None


def require_shared(config: Config, paths_: Iterable[str]) -> None:
    """Refuse (``PathError``, exit 1) any path that is not shared in ``config``, naming its owner."""
    cc = compiled(config)
    bad = []
    for path in paths_:
        kind, stream = cc.owner(path)
        if kind != "shared":
            bad.append(f"{path} ({describe_owner(kind, stream)})")
    if bad:
        raise PathError(
            f"not a shared file: {', '.join(bad)}; only paths listed under `shared:` in streams.yaml take "
            "locks (a stream changes the files it owns without one)"
        )


def owners(ws: Workspace, config: Config, raw_paths: Sequence[str], cwd: Path) -> list[PathOwner]:
    cc = compiled(config)
    current = ws.current_stream()
    if current is not None and current not in config.names:
        current = None
    lease_of = lease_lookup(ws.common_dir)
    result = []
    for raw in raw_paths:
        path = repo_path(ws, raw, cwd)
        kind, stream = cc.owner(path)
        allowed = reason = None
        if current is not None:
            verdict = cc.judge(current, path, lease_of)
            allowed = verdict is None
            reason = verdict[0] if verdict else None
        result.append(PathOwner(path, OwnerKind(kind), stream, cc.pattern_for(path), current, allowed, reason))
    return result
