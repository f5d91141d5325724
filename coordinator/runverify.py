"""The verdict on an attempt whose agent exited 0 ("I claim I am done"), from git alone (DESIGN
"Coordination", Verification). A claim is never evidence; in this order:

1. **Scope.** Every commit of ``since..HEAD`` passes the check of ``streams verify`` (the very
   function, ``streams.scope.verify``: commits already on the base are not the attempt's; shared
   paths pass, their leases having been checked at commit time). Else ``scope_violation``, naming
   the paths.
2. **Evidence.** The worktree is on the stream's branch with no rebase, merge, cherry-pick or
   revert in progress, and at least one commit of ``since..HEAD`` changes something besides the stream's own
   progress file (``.streams/stream-<name>.md``); an empty commit or a progress update is not work.
   Or the progress file *as committed at HEAD* says why no change was needed: status
   ``completed`` and a Completed Tasks item ``No change needed: <why>`` (any case, a reason after
   the colon; ``streams.runclass.no_change_reason``), e.g. written by ``streams progress --status
   completed --done "No change needed: the endpoint already returns 404"``; the attempt must have
   committed that progress file itself (a reason left by an earlier attempt does not count). Else
   ``evidence_mismatch``: "exit 0 but no commit beyond the progress file".
3. **A clean worktree.** Uncommitted leftovers (tracked changes, untracked files not ignored) are
   saved as a WIP snapshot under ``wip_ref`` (``streams.wip``; the worktree is left as it is) and
   flagged ``dirty_worktree``, naming the files: a flag for the report, not a failure on its own.
4. **The check**, when one is configured and nothing above failed: ``sh -c CHECK`` in the
   worktree (leftovers included; the flag says so), its process group killed at
   ``check_timeout``, its output in ``check_log`` (``coordinator.check``). Else ``check_failed``
   with the output's tail, and pytest's pass/fail counts when it prints them.

The claim is set beside the evidence as flags: ``claimed_done_no_commits`` (progress completed, no
work commit and no reason given) and ``commits_but_claimed_failed`` (work commits, progress
failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coordinator.check import CheckResult, run_check
from streams import git, progress, scope
from streams.config import Config
from streams.kernel.errors import StreamsError
from streams.kernel.paths import progress_path
from streams.progress import Progress, ProgressStatus
from streams.runclass import EvidenceFlag, FailureClass, no_change_reason
from streams.wip import WipSnapshot, snapshot
from streams.workspace import Workspace

NO_EVIDENCE = "exit 0 but no commit beyond the progress file"
SHOWN_PATHS = 5  # paths named in a one-line cause


@dataclass(frozen=True)
class Verification:
    """The verdict on one attempt that exited 0.

    ============  ==================  =============================================================
    field         type                meaning
    ============  ==================  =============================================================
    klass         str | null          null: verified; else scope_violation, evidence_mismatch or
                                      check_failed (``streams.runclass.FailureClass``)
    cause         str                 one line: why it failed, or what was verified
    commits       int                 commits since the attempt began (``since..HEAD``)
    work_commits  int                 of those, the ones that change more than the progress file
    files         int                 files changed since, the progress file left out
    insertions    int                 lines added (``git diff --numstat``; binary files count 0)
    deletions     int                 lines deleted
    out_of_scope  [str]               paths changed outside the stream's scope
    flags         [str]               evidence flags (``streams.runclass.EvidenceFlag``)
    wip           WipSnapshot | null  the leftovers saved (ref, commit, files), if any
    check         CheckResult | null  the check's result, when it ran
    no_change     str | null          the progress file's reason for needing no change, if given
    ============  ==================  =============================================================
    """

    klass: FailureClass | None
    cause: str
    commits: int
    work_commits: int
    files: int
    insertions: int
    deletions: int
    out_of_scope: tuple[str, ...]
    flags: tuple[EvidenceFlag, ...]
    wip: WipSnapshot | None
    check: CheckResult | None
    no_change: str | None = None

    @property
    def verified(self) -> bool:
        return self.klass is None


def verify_attempt(
    ws: Workspace,
    cfg: Config,
    name: str,
    worktree: Path,
    since: str,
    *,
    check: str | None,
    check_log: Path,
    wip_ref: str,
    check_timeout: float,
) -> Verification:
    """Judge stream ``name``'s attempt, begun at commit ``since``, from its worktree as git shows it
    now (see the module doc for the rules and their order). Leftovers are saved under ``wip_ref``."""
    rel = progress_path(name)
    head = git.rev_parse(worktree, "HEAD")
    changes = git.range_changes(worktree, [head], [since])
    work = [c for c, paths in changes if any(p != rel for _, p in paths)]
    numstat = git.diff_numstat(worktree, since, head, leave_out=[rel])
    report = scope.verify(ws, cfg, f"{since}..{head}", stream=name)
    out_of_scope = tuple(dict.fromkeys(v.path for v in report.violations))
    claim = _claim(worktree, head, rel)
    said_now = any(p == rel for _, paths in changes for _, p in paths)
    reason = no_change_reason(claim) if said_now else None  # said by this attempt, not left over
    wip = snapshot(worktree, wip_ref, f"streams: {name}: leftovers of an attempt, at {head[:12]}")
    flags = _flags(claim, bool(work), reason, wip)
    klass, cause = None, f"{_plural(len(work), 'work commit')}, in scope"
    result: CheckResult | None = None
    if out_of_scope:
        klass = FailureClass.SCOPE_VIOLATION
        cause = f"commits change {_plural(len(out_of_scope), 'path')} outside stream {name}'s scope: " + _shown(
            out_of_scope
        )
    elif (astray := _astray(cfg, name, worktree)) is not None:
        klass, cause = FailureClass.EVIDENCE_MISMATCH, astray
    elif not work and reason is None:
        klass, cause = FailureClass.EVIDENCE_MISMATCH, NO_EVIDENCE
    elif check:
        env = {"STREAMS_STREAM": name, "STREAMS_WORKTREE": str(worktree)}
        result = run_check(check, worktree, check_log, env=env, timeout=check_timeout)
        if not result.passed:
            klass, cause = FailureClass.CHECK_FAILED, f"check failed: {result.summary(check, check_timeout)}"
    if klass is None and not work:
        cause = f"no work commit: the progress file says no change was needed: {reason}"
    if klass is None and wip is not None:
        cause += f"; uncommitted leftovers saved as {wip.ref}: {_shown(wip.files)}"
    return Verification(
        klass=klass,
        cause=cause,
        commits=len(changes),
        work_commits=len(work),
        files=len(numstat),
        insertions=sum(n for n, _, _ in numstat),
        deletions=sum(n for _, n, _ in numstat),
        out_of_scope=out_of_scope,
        flags=flags,
        wip=wip,
        check=result,
        no_change=reason,
    )


def _astray(cfg: Config, name: str, worktree: Path) -> str | None:
    """Why the worktree's state is not a finished attempt on the stream's branch, or None."""
    operation, _ = git.worktree_operation(worktree)
    if operation is not None:
        return f"exit 0 but a {operation} is in progress in the worktree"
    on = git.symbolic_head(worktree)
    if on != cfg.branch_ref(name):
        where = "HEAD is detached" if on is None else f"it is on {on.removeprefix('refs/heads/')}"
        return f"exit 0 but the worktree is not on {cfg.branch(name)}: {where}"
    return None


def _claim(worktree: Path, head: str, rel: str) -> Progress | None:
    """The progress file as committed at ``head`` (not as it may lie uncommitted in the worktree)."""
    data = git.read_blob(worktree, head, rel)
    if data is None:
        return None
    try:
        return progress.parse(data.decode("utf-8", "replace"), display=f"{head[:12]}:{rel}")
    except StreamsError:
        return None  # a file that does not parse claims nothing


def _flags(
    claim: Progress | None, worked: bool, reason: str | None, wip: WipSnapshot | None
) -> tuple[EvidenceFlag, ...]:
    flags: list[EvidenceFlag] = []
    status = claim.status if claim is not None else None
    if status == ProgressStatus.COMPLETED and not worked and reason is None:
        flags.append(EvidenceFlag.CLAIMED_DONE_NO_COMMITS)
    if status == ProgressStatus.FAILED and worked:
        flags.append(EvidenceFlag.COMMITS_BUT_CLAIMED_FAILED)
    if wip is not None:
        flags.append(EvidenceFlag.DIRTY_WORKTREE)
    return tuple(flags)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _shown(items: tuple[str, ...]) -> str:
    more = len(items) - SHOWN_PATHS
    return ", ".join(items[:SHOWN_PATHS]) + (f" and {more} more" if more > 0 else "")
