"""The wave report's model (``coordinator.report`` computes it, ``coordinator.reporttext`` renders
it): frozen dataclasses whose field tables are the JSON of ``reports/wave-N.json`` and of
``streams report --json``, the digest that seals a written report, and the reading back of one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from streams.kernel.errors import StreamsError

DONE = ("verified", "landed")  # the statuses of a stream whose work git backs


class ReportDamagedError(StreamsError):
    """A wave report whose digest does not match its content (edited, or half-written by hand)."""

    code = "report_damaged"


@dataclass(frozen=True)
class AgentClaim:
    """What the agent says, from its progress file as committed at the branch tip.

    ==========  ============  ================================================================
    field       type          meaning
    ==========  ============  ================================================================
    status      str | null    the progress file's status (null: no progress file, or unreadable)
    completion  int | null    its completion, 0-100
    completed   [str]         its Completed Tasks
    no_change   str | null    its "No change needed: <why>" reason, if it gives one
    ==========  ============  ================================================================
    """

    status: str | None
    completion: int | None
    completed: tuple[str, ...] = ()
    no_change: str | None = None


@dataclass(frozen=True)
class AttemptSummary:
    """One attempt of a stream.

    ========  ============  ==================================================================
    field     type          meaning
    ========  ============  ==================================================================
    n         int           the attempt (1 is the first)
    klass     str | null    how it ended (null: verified; ``streams.runclass.FailureClass``)
    cause     str           one line: why
    exit      int | null    the agent's exit code (null: killed, or still running)
    run_time  float         seconds it ran
    wip       str | null    the ref its uncommitted work was saved under, if any
    ========  ============  ==================================================================
    """

    n: int
    klass: str | None
    cause: str
    exit: int | None
    run_time: float
    wip: str | None


@dataclass(frozen=True)
class FileChange:
    """A file the stream's commits change.

    ==========  =====  ==========================================================
    field       type   meaning
    ==========  =====  ==========================================================
    path        str    relative to the repository root
    insertions  int    lines added (a binary file counts 0)
    deletions   int    lines deleted
    ==========  =====  ==========================================================
    """

    path: str
    insertions: int
    deletions: int


@dataclass(frozen=True)
class CheckOutcome:
    """The configured check (``run.check``) on the stream's last attempt.

    ============  ============  ==============================================================
    field         type          meaning
    ============  ============  ==============================================================
    command       str | null    the check (null: none configured)
    ran           bool          it ran on the last attempt (its log exists)
    passed        bool | null   it passed (null: it did not run)
    passed_count  int | null    tests passed, when its output says (pytest, "N passed")
    failed_count  int | null    tests failed or in error, when its output says
    ============  ============  ==============================================================
    """

    command: str | None
    ran: bool
    passed: bool | None
    passed_count: int | None
    failed_count: int | None


@dataclass(frozen=True)
class StreamReport:
    """One stream of the wave: the verdict from git beside the agent's claim.

    ============  ==================  ==========================================================
    field         type                meaning
    ============  ==================  ==========================================================
    name          str                 the stream
    wave          int                 its wave
    status        str                 verified | landed | failed | blocked | skipped |
                                      interrupted | pending | ... (``StreamStatus``)
    klass         str | null          the class of its failure (null: none)
    cause         str                 one line: what was verified, or why it failed
    blocked_by    str | null          skipped: the stream whose failure it waits on
    claim         AgentClaim          what its progress file says at the branch tip
    attempts      [AttemptSummary]    its attempts, in order
    wall_time     float               seconds its attempts ran, summed
    since         str                 the commit its work is counted from ("" never launched)
    tip           str | null          its branch tip (null: no branch)
    commits       int                 work commits since ``since`` (more than the progress file)
    files         [FileChange]        files changed since ``since``, the progress file left out
    insertions    int                 lines added, summed
    deletions     int                 lines deleted, summed
    out_of_scope  [str]               paths its commits change outside its scope
    conflicts     [str]               paths a rebase onto the base would conflict on
    behind        int                 base commits the branch lacks
    leases        [str]               shared files it holds a live lease on
    flags         [str]               evidence flags (``EvidenceFlag``)
    placeholders  [str]               the added lines that set ``placeholder_text`` (path: line)
    check         CheckOutcome        the check's result
    log_tail      str                 not verified: the tail of its last attempt's log ("" else)
    ============  ==================  ==========================================================
    """

    name: str
    wave: int
    status: str
    klass: str | None
    cause: str
    blocked_by: str | None
    claim: AgentClaim
    attempts: tuple[AttemptSummary, ...]
    wall_time: float
    since: str
    tip: str | None
    commits: int
    files: tuple[FileChange, ...]
    insertions: int
    deletions: int
    out_of_scope: tuple[str, ...]
    conflicts: tuple[str, ...]
    behind: int
    leases: tuple[str, ...]
    flags: tuple[str, ...]
    placeholders: tuple[str, ...]
    check: CheckOutcome
    log_tail: str

    @property
    def verified(self) -> bool:
        return self.status in DONE


@dataclass(frozen=True)
class WaveGap:
    """A planned stream of the wave that is not verified.

    ======  =====  ==================================================================
    field   type   meaning
    ======  =====  ==================================================================
    stream  str    the stream
    status  str    where it stands (``StreamStatus``)
    why     str    one line: its class and cause, or the stream it waits on
    ======  =====  ==================================================================
    """

    stream: str
    status: str
    why: str


@dataclass(frozen=True)
class WaveReport:
    """A wave's report (``streams report --json``; the content of ``reports/wave-N.json``).

    ========  ================  ==================================================================
    field     type              meaning
    ========  ================  ==================================================================
    run_id    str               the run
    wave      int               the wave (1-based)
    base      str               the base branch
    base_sha  str | null        the base's commit when the report was written
    written   float             when (epoch seconds)
    streams   [StreamReport]    the wave's streams, in plan order
    totals    {status: int}     how many of them stand in each status
    gaps      [WaveGap]         the planned streams not verified, each with why
    failures  int               streams failed for good in this wave and the ones before
    digest    str               sha256 of the canonical JSON of the rest (sorted keys, no spaces)
    clean     bool              every stream verified, no flag, no path outside its scope
    ========  ================  ==================================================================
    """

    run_id: str
    wave: int
    base: str
    base_sha: str | None
    written: float
    streams: tuple[StreamReport, ...]
    totals: dict[str, int]
    gaps: tuple[WaveGap, ...]
    failures: int
    digest: str = ""

    json_properties: ClassVar[tuple[str, ...]] = ("clean",)

    @property
    def clean(self) -> bool:
        """What the gate's ``auto-if-clean`` policy approves: every stream verified (or landed),
        none flagged, none changing a path outside its scope."""
        return bool(self.streams) and all(s.verified and not s.flags and not s.out_of_scope for s in self.streams)

    def to_json(self) -> dict[str, Any]:
        """The report as written (``clean`` included, so a reader needs no code to know it)."""
        data = asdict(self)
        data["clean"] = self.clean
        return data


def digest_of(data: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``data`` without its ``digest`` (sorted keys, no spaces)."""
    rest = {k: v for k, v in data.items() if k != "digest"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def from_json(data: dict[str, Any]) -> WaveReport:
    streams = []
    for s in data["streams"]:
        s = dict(s)
        s["claim"] = AgentClaim(**{**s["claim"], "completed": tuple(s["claim"]["completed"])})
        s["attempts"] = tuple(AttemptSummary(**a) for a in s["attempts"])
        s["files"] = tuple(FileChange(**f) for f in s["files"])
        s["check"] = CheckOutcome(**s["check"])
        for key in ("out_of_scope", "conflicts", "leases", "flags", "placeholders"):
            s[key] = tuple(s[key])
        streams.append(StreamReport(**s))
    rest = {k: v for k, v in data.items() if k not in ("streams", "gaps", "clean")}
    gaps = tuple(WaveGap(**g) for g in data["gaps"])
    return WaveReport(**rest, streams=tuple(streams), gaps=gaps)
