"""The brief: what a stream's agent reads before it starts (DESIGN "Coordination", "The brief").

``compose`` gathers the facts from git and streams.yaml, never from the working copy: the task (the
stream's ``task:``, else the file ``task_file:`` names as committed on the base, else its
``description:``), what it owns (its patterns, how many tracked files on the base they match and a
sample of them), the shared files and how to lock them, and what the runner hands over: the run,
wave and attempt, what the waves before delivered, what the previous attempt left and why it
ended, a reviewer's notes. ``render`` writes it as the markdown prompt an LLM agent reads, with the
rules and the exit codes of the agent contract; ``streams brief --json`` writes the same ``Brief``
for a program. The same object, two renderings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from streams import git
from streams.kernel.errors import ConfigError
from streams.kernel.rules import is_reserved

if TYPE_CHECKING:
    from streams.config import Config, Stream
    from streams.workspace import Workspace

SAMPLE_SIZE = 20  # owned files listed by name; the brief says how many there are in all
TAIL_LINES = 40  # lines of the previous attempt's log the brief quotes at most

# The agent contract's environment (DESIGN "Agent contract"), as the brief explains it.
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("STREAMS_STREAM", "the stream you work for"),
    ("STREAMS_RUN_ID", "the run that launched you"),
    ("STREAMS_WAVE", "the wave of the run"),
    ("STREAMS_ATTEMPT", "1 for the first attempt, 2 for the first retry, ..."),
    ("STREAMS_WORKTREE", "your worktree (the directory you start in)"),
    ("STREAMS_BASE", "the integration branch your branch forks from"),
    ("STREAMS_BASE_SHA", "the base's commit when the wave began"),
    ("STREAMS_BRIEF", "the path of this brief"),
    ("STREAMS_PROGRESS_FILE", "your progress file"),
    ("STREAMS_AGENT", "1: you run under `streams run` (commands meant for humans refuse)"),
)

# What the agent's exit code claims (DESIGN "Agent contract"); the runner checks a claim against git.
EXIT_CODES: tuple[tuple[str, str], ...] = (
    (
        "0",
        "I am done. Claimed, not believed: your commits are verified from git (in scope, at least one, clean worktree)",
    ),
    ("3", "blocked, a human must answer: put the question in Blocked Items first"),
    ("75", "temporary failure, try me again later; print a line `rate limited` when it is a rate limit"),
    ("other", "failed"),
)


class TaskSource(StrEnum):
    """Where a brief's task comes from."""

    TASK = "task"  # the stream's task: in streams.yaml
    TASK_FILE = "task_file"  # the file task_file: names, as committed on the base
    DESCRIPTION = "description"  # no task: the stream's description
    NONE = "none"  # neither: the brief says to ask


@dataclass(frozen=True)
class Delivered:
    """What one stream of an earlier wave delivered (from its wave report, given by the runner).

    ========  =====  ===========================================================
    field     type   meaning
    ========  =====  ===========================================================
    stream    str    the stream
    wave      int    its wave
    commits   int    its commits that landed
    files     [str]  the files it changed
    note      str    the report's note ("" for none)
    ========  =====  ===========================================================
    """

    stream: str
    wave: int
    commits: int
    files: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class PreviousAttempt:
    """What the previous attempt left and why it ended (on a retry, given by the runner).

    ========  ==========  ==================================================================
    field     type        meaning
    ========  ==========  ==================================================================
    attempt   int         its number
    klass     str         its failure class (timeout, stall, crash, tempfail, ...)
    cause     str         the one-line cause
    wip_ref   str | null  the ref its uncommitted work was saved under, if it left any
    log_tail  str         the end of its log
    ========  ==========  ==================================================================
    """

    attempt: int
    klass: str
    cause: str
    wip_ref: str | None = None
    log_tail: str = ""


@dataclass(frozen=True)
class Brief:
    """A stream's brief (``streams brief --json``); ``render`` writes it for an agent to read.

    =============  =======================  ============================================================
    field          type                     meaning
    =============  =======================  ============================================================
    stream         str                      the stream
    description    str                      its description: in streams.yaml
    base           str                      the integration branch
    base_sha       str | null               the base's commit the brief was composed from
    branch         str                      the stream's branch
    worktree       str                      where its worktree is (or will be)
    progress_file  str                      its progress file, relative to the worktree
    task           str                      what to do ("" when nothing says)
    task_source    str                      task | task_file | description | none
    task_file      str | null               the file the task was read from (on the base)
    owns           [str]                    the stream's patterns, as in streams.yaml
    owned_files    int                      how many files tracked on the base the patterns match
    sample         [str]                    up to 20 of them, spread over the list
    shared         [str]                    the shared paths (change one only under its lock)
    union_merged   [str]                    those of them merged by git's union driver
    touches        [str]                    the shared files the stream expects to change
    depends        [str]                    the streams it depends on
    run_id         str | null               the run (null: composed outside a run)
    wave           int | null               the wave of the run
    attempt        int                      the attempt (1 is the first)
    delivered      [Delivered]              what the waves before delivered
    previous       PreviousAttempt | null   on a retry: what the previous attempt left and why it ended
    notes          [str]                    a reviewer's notes (``streams request-changes``)
    =============  =======================  ============================================================
    """

    stream: str
    description: str
    base: str
    base_sha: str | None
    branch: str
    worktree: str
    progress_file: str
    task: str
    task_source: TaskSource
    task_file: str | None
    owns: tuple[str, ...]
    owned_files: int
    sample: tuple[str, ...]
    shared: tuple[str, ...]
    union_merged: tuple[str, ...]
    touches: tuple[str, ...]
    depends: tuple[str, ...]
    run_id: str | None = None
    wave: int | None = None
    attempt: int = 1
    delivered: tuple[Delivered, ...] = ()
    previous: PreviousAttempt | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The brief as JSON-able values (the ``--json`` data)."""
        from dataclasses import asdict

        return asdict(self)


def compose(
    ws: Workspace,
    cfg: Config,
    name: str,
    *,
    run_id: str | None = None,
    wave: int | None = None,
    attempt: int = 1,
    delivered: tuple[Delivered, ...] = (),
    previous: PreviousAttempt | None = None,
    notes: tuple[str, ...] = (),
) -> Brief:
    """Stream ``name``'s brief, from the base as it is now (an unknown name raises
    ``UnknownStreamError``; a ``task_file`` missing on the base raises ``ConfigError``)."""
    stream = cfg.stream(name)
    commit = cfg.origin.commit if cfg.origin is not None else git.resolve_commit(ws.main_root, str(cfg.base_ref()))
    tracked = git.ls_tree_names(ws.main_root, commit) if commit is not None else []
    owned = _owned(stream, tracked)
    source, task = _task(ws, cfg, stream, commit)
    return Brief(
        stream=name,
        description=stream.description,
        base=cfg.base,
        base_sha=commit,
        branch=cfg.branch(name),
        worktree=str(cfg.worktree_path(ws.main_root, name)),
        progress_file=stream.progress_path,
        task=task,
        task_source=source,
        task_file=stream.run.task_file if source is TaskSource.TASK_FILE else None,
        owns=stream.owns,
        owned_files=len(owned),
        sample=spread(owned, SAMPLE_SIZE),
        shared=cfg.shared,
        union_merged=tuple(p for p, driver in cfg.merge_drivers if driver == "union"),
        touches=stream.touches,
        depends=stream.depends,
        run_id=run_id,
        wave=wave,
        attempt=attempt,
        delivered=delivered,
        previous=previous,
        notes=notes,
    )


def _owned(stream: Stream, tracked: list[str]) -> list[str]:
    """The tracked files ``stream``'s patterns give it (streams' own files never count)."""
    from streams.ownership import PatternSet

    return [p for p in PatternSet.compile(stream.owns).filter(tracked) if not is_reserved(p)]


def spread(items: list[str], n: int) -> tuple[str, ...]:
    """At most ``n`` of ``items``, evenly spaced from the first to the last, so a sample shows
    every part of a long list."""
    if len(items) <= n:
        return tuple(items)
    return tuple(items[i * (len(items) - 1) // (n - 1)] for i in range(n))


def _task(ws: Workspace, cfg: Config, stream: Stream, commit: str | None) -> tuple[TaskSource, str]:
    if stream.task.strip():
        return TaskSource.TASK, stream.task.strip()
    if stream.run.task_file:
        path = stream.run.task_file.lstrip("/")
        data = git.read_blob(ws.main_root, commit, path) if commit is not None else None
        if data is None:
            raise ConfigError(
                f"streams.yaml: streams.{stream.name}.task_file: {path!r} is not committed on {cfg.base}; "
                f"commit it there (only the base's copy is read)"
            )
        return TaskSource.TASK_FILE, data.decode("utf-8", "replace").strip()
    if stream.description.strip():
        return TaskSource.DESCRIPTION, stream.description.strip()
    return TaskSource.NONE, ""


# --- the markdown -------------------------------------------------------------------------------------


def render(brief: Brief) -> str:
    """The brief as the markdown prompt an agent reads."""
    parts = [
        _header(brief),
        _task_section(brief),
        _scope_section(brief),
        _shared_section(brief),
        _delivered_section(brief),
        _previous_section(brief),
        _notes_section(brief),
        _rules_section(brief),
        _contract_section(),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _header(b: Brief) -> str:
    where = f"run {b.run_id}, wave {b.wave}, attempt {b.attempt}" if b.run_id else f"attempt {b.attempt}, outside a run"
    base = f"`{b.base}` at {b.base_sha[:12]}" if b.base_sha else f"`{b.base}`"
    return (
        f"# Brief: stream `{b.stream}`\n\n"
        f"You are the agent of stream `{b.stream}` ({where}). You work in the git worktree "
        f"`{b.worktree}` on branch `{b.branch}`, forked from {base}. Other agents work on other "
        "streams of the same repository at the same time, each in its own worktree."
    )


def _task_section(b: Brief) -> str:
    if b.task_source is TaskSource.NONE:
        body = "streams.yaml gives this stream no task. Report it as blocked (see the exit codes) and ask what to do."
    else:
        origin = {
            TaskSource.TASK: "from streams.yaml",
            TaskSource.TASK_FILE: f"from `{b.task_file}` on `{b.base}`",
            TaskSource.DESCRIPTION: "the stream's description in streams.yaml",
        }[b.task_source]
        body = f"({origin})\n\n{b.task}"
    return f"## Your task\n\n{body}"


def _scope_section(b: Brief) -> str:
    lines = ["## What you own", "", "You may change only the files these patterns match (gitignore syntax):", ""]
    lines += [f"- `{p}`" for p in b.owns] or ["- (no patterns: you own no file)"]
    lines += ["", f"and your progress file `{b.progress_file}`. "]
    if b.owned_files:
        shown = "all of them" if len(b.sample) == b.owned_files else f"{len(b.sample)} of them"
        files = "1 tracked file" if b.owned_files == 1 else f"{b.owned_files} tracked files"
        lines[-1] += f"On `{b.base}` the patterns match {files}; {shown}:"
        lines += ["", *(f"- {p}" for p in b.sample)]
    else:
        lines[-1] += f"On `{b.base}` the patterns match no tracked file yet: new files under them are yours."
    lines += [
        "",
        "New files are yours when your patterns match them. `streams owner PATH` says who owns a path;"
        " `streams brief --json` gives this brief to a program.",
    ]
    if b.depends:
        lines += ["", "Your stream builds on: " + ", ".join(f"`{d}`" for d in b.depends) + "."]
    return "\n".join(lines)


def _shared_section(b: Brief) -> str:
    if not b.shared:
        return "## Shared files\n\nNone: every file you may change is listed above."
    lines = ["## Shared files", "", "Any stream may change these, but only while it holds the file's lock:", ""]
    for p in b.shared:
        extra = " (merged by git's union driver: its lock is released at your commit)" if p in b.union_merged else ""
        mine = " (you expect to change it)" if p in b.touches else ""
        lines.append(f"- `{p}`{extra}{mine}")
    lines += [
        "",
        'Take the lock before you edit: `streams lock PATH --reason "why"` (exit 3 means another stream'
        " holds it: wait with `--wait 5m`, or work on something else first). Add `--until-commit` to let the"
        " lock go by itself once your change is committed, else `streams unlock PATH` when done."
        " `streams locks` lists who holds what.",
    ]
    return "\n".join(lines)


def _delivered_section(b: Brief) -> str:
    if not b.delivered:
        return ""
    lines = ["## What the waves before delivered", ""]
    for d in b.delivered:
        files = ", ".join(f"`{f}`" for f in d.files[:10]) + (
            f" and {len(d.files) - 10} more" if len(d.files) > 10 else ""
        )
        lines.append(f"- wave {d.wave}, `{d.stream}`: {d.commits} commit{'s' if d.commits != 1 else ''}")
        if files:
            lines[-1] += f"; files: {files}"
        if d.note:
            lines[-1] += f". Note: {d.note}"
    lines += ["", "Their work is on your base already; build on it, do not redo it."]
    return "\n".join(lines)


def _previous_section(b: Brief) -> str:
    p = b.previous
    if p is None:
        return ""
    lines = [
        "## The previous attempt",
        "",
        f"Attempt {p.attempt} ended as `{p.klass}`: {p.cause}. Its commits are on your branch: "
        "continue from them (`git log --oneline` shows them), do not start over.",
    ]
    if p.wip_ref:
        lines += [
            "",
            f"It left uncommitted work, saved under `{p.wip_ref}`: `git show --stat {p.wip_ref}` lists it,"
            f" `git checkout {p.wip_ref} -- PATH` takes a file back (into your index: review it, then commit).",
        ]
    tail = "\n".join(p.log_tail.rstrip("\n").splitlines()[-TAIL_LINES:])
    if tail:
        fence = "`" * max(3, _longest_backtick_run(tail) + 1)
        lines += ["", "The end of its log:", "", f"{fence}text", tail, fence]
    return "\n".join(lines)


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for c in text:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    return longest


def _notes_section(b: Brief) -> str:
    if not b.notes:
        return ""
    return "\n".join(["## Reviewer notes (`streams request-changes`)", "", *(f"- {n}" for n in b.notes)])


def _rules_section(b: Brief) -> str:
    return "\n".join(
        [
            "## Rules",
            "",
            "- Stay in scope: the git hooks refuse a commit that touches a file you do not own, and the"
            " runner re-checks every commit of your branch (`streams verify`).",
            "- Commit often, small commits with honest messages; uncommitted work is not delivered.",
            f'- After each step: `streams progress --done "STEP" --completion N` (also `--current "TASK"`,'
            f' `--next "STEP"`). It rewrites and commits `{b.progress_file}` alone; your staged work stays staged.',
            '- Blocked on a question only a human can answer: `streams progress --status blocked --blocked "QUESTION"`,'
            " then exit 3.",
            "- Never `git stash`: the stash is shared by every worktree of the repository. Never switch"
            " branches, rebase onto another branch or push; `streams sync` keeps you on top of the base.",
            "- Never edit `streams.yaml` or another stream's progress file.",
            "- Leave the worktree clean when you exit: commit what belongs, delete what does not.",
        ]
    )


def _contract_section() -> str:
    lines = ["## Exit codes", ""]
    lines += [f"- `{code}`: {meaning}" for code, meaning in EXIT_CODES]
    lines += ["", "## Environment", ""]
    lines += [f"- `{name}`: {meaning}" for name, meaning in ENVIRONMENT]
    return "\n".join(lines)
