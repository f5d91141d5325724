"""Progress files: ``.streams/stream-NAME.md``, YAML front matter then markdown sections."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from streams import git
from streams.kernel import progressfile
from streams.kernel.atomic import write_atomic
from streams.kernel.durations import iso_utc
from streams.kernel.errors import GitError, StreamsError
from streams.kernel.mutex import held
from streams.kernel.paths import progress_path
from streams.kernel.procs import pid_alive
from streams.kernel.progressfile import ProgressFormatError, plain


class ProgressStatus(StrEnum):
    """A stream's status as its progress file says it (``progress --json``, ``status --json``)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"
    PAUSED = "paused"


STATUSES = tuple(s.value for s in ProgressStatus)
SECTIONS = progressfile.SECTIONS
assert STATUSES == progressfile.STATUSES


class ProgressError(StreamsError):
    code = "progress"


@dataclass(frozen=True)
class Progress:
    """A stream's progress file (``.streams/stream-NAME.md``) as data.

    ==========  ======  ===========================================================================
    field       type    meaning
    ==========  ======  ===========================================================================
    stream      str     the stream
    status      str     pending | in_progress | blocked | completed | failed | paused
    completion  int     0-100
    agent       str     who works on it
    started     str     when the file was first written (ISO 8601, UTC)
    updated     str     when it was last updated
    completed   [str]   Completed Tasks
    current     str     Current Task
    blocked     [str]   Blocked Items
    next        [str]   Next Steps
    ==========  ======  ===========================================================================
    """

    stream: str
    status: ProgressStatus = ProgressStatus.PENDING
    completion: int = 0
    agent: str = ""
    started: str = ""
    updated: str = ""
    completed: tuple[str, ...] = ()
    current: str = ""
    blocked: tuple[str, ...] = ()
    next: tuple[str, ...] = ()

    @classmethod
    def new(cls, stream: str, *, when: str | None = None) -> Progress:
        when = when or iso_utc()
        return cls(stream=stream, started=when, updated=when)

    def with_changes(self, **changes: object) -> Progress:
        return replace(self, **changes)  # type: ignore[arg-type]


def render(p: Progress) -> str:
    def items(values: tuple[str, ...]) -> str:
        return "".join(f"- {v}\n" for v in values)

    front = (
        "---\n"
        f"stream: {p.stream}\n"
        f"agent: {_scalar(p.agent)}\n"
        f"started: {p.started}\n"
        f"updated: {p.updated}\n"
        f"status: {p.status}\n"
        f"completion: {p.completion}\n"
        "---\n"
    )
    return (
        front
        + "## Completed Tasks\n"
        + items(p.completed)
        + "## Current Task\n"
        + (f"{p.current}\n" if p.current else "")
        + "## Blocked Items\n"
        + items(p.blocked)
        + "## Next Steps\n"
        + items(p.next)
    )


# Values the front matter holds as YAML plain scalars that mean themselves: no indicator, no
# type YAML 1.1 would read into them (booleans, null; a number or a date starts with a digit).
# Only these are written and read without PyYAML (a `streams progress` pays no 10 ms import for
# it); anything else goes through PyYAML, both ways, so the file means what YAML says it means.
def _scalar(value: str) -> str:
    if not value:
        return '""'
    if plain(value):
        return value
    import yaml

    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def _yaml_front(lines: list[str], display: str) -> object:
    import yaml

    try:
        return yaml.safe_load("\n".join(lines)) or {}
    except yaml.MarkedYAMLError as exc:
        at = (exc.problem_mark.line + 2) if exc.problem_mark else 1
        raise ProgressError(f"{display}:{at}: front matter is not valid YAML: {exc.problem}") from None


def parse(text: str, *, display: str) -> Progress:
    """Parse a progress file; errors name ``display`` and the line (``streams.kernel.progressfile``
    reads it; PyYAML only for front matter not in the form ``streams progress`` writes)."""
    try:
        found = progressfile.read(text, display, _yaml_front)
    except ProgressFormatError as exc:
        raise ProgressError(exc.message) from None
    assert found is not None  # with a YAML reader there is always an answer
    meta, status, completion, sections = found

    def text_of(key: str) -> str:
        v = meta.get(key)
        if v is None:
            return ""
        if isinstance(v, str):
            return v
        import datetime as dt

        if isinstance(v, dt.datetime):
            return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return str(v)

    return Progress(
        stream=text_of("stream"),
        status=ProgressStatus(status),
        completion=completion,
        agent=text_of("agent"),
        started=text_of("started"),
        updated=text_of("updated"),
        completed=tuple(sections["Completed Tasks"]),
        current=" ".join(sections["Current Task"]),
        blocked=tuple(sections["Blocked Items"]),
        next=tuple(sections["Next Steps"]),
    )


# --- reading and committing a stream's progress file ------------------------------------------------
#
# Below: what `streams progress` does. The file is rewritten atomically (a temp file, fsync,
# `os.replace`), then committed with `git commit --only -- <file>`, which builds the commit from HEAD
# plus that one path in a temporary index and then updates the real index entry of that path only:
# whatever the agent has staged stays staged and out of the commit, its unstaged edits are untouched.
#
# Why `git commit --only` rather than plumbing (read-tree into a private index, commit-tree, move
# the branch, fix up the real index entry): git holds the worktree's `index.lock` for the whole
# operation, so an agent's concurrent `git add`/`git commit` in the same worktree fails cleanly
# instead of interleaving between our ref update and our index fix-up; the branch moves by git's
# own ref transaction (with its reflog entry); and the repository's hooks run as for any commit
# (pre-commit, commit-msg, reference-transaction, post-commit). The scope hooks allow a stream's
# own progress file.


class ProgressUsageError(ProgressError):
    """Bad option values: exit 2, nothing on disk changed."""

    code = "bad_option"


def progress_file(worktree: Path, name: str) -> Path:
    return worktree / progress_path(name)


def read_progress(worktree: Path, name: str) -> Progress | None:
    """The stream's progress file as it is in ``worktree`` (None when there is none).

    Raises ``ProgressError`` (naming the file and line) when the file is hand-broken.
    """
    path = progress_file(worktree, name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ProgressError(f"{path}:1: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ProgressError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse(text, display=str(path))


def check_status(value: str) -> ProgressStatus:
    if value not in STATUSES:
        import difflib

        close = difflib.get_close_matches(value, STATUSES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ProgressUsageError(f"--status {value!r} is not a status; {hint}use one of {', '.join(STATUSES)}")
    return ProgressStatus(value)


def parse_completion(value: str) -> int:
    text = value.strip().removesuffix("%").strip()
    try:
        if not (text.isascii() and text.lstrip("+-").isdigit()):  # int() would read "٣" as 3, "4_0" as 40
            raise ValueError(text)
        number = int(text)
    except ValueError:
        raise ProgressUsageError(
            f"--completion {value!r} is not a number; give a whole number from 0 to 100, e.g. --completion 40"
        ) from None
    if not 0 <= number <= 100:
        raise ProgressUsageError(f"--completion {number} is outside 0-100; give a whole number from 0 to 100")
    return number


@dataclass(frozen=True)
class Update:
    """What `streams progress` changes; unset fields keep their value."""

    status: ProgressStatus | None = None
    completion: int | None = None
    done: tuple[str, ...] = ()
    current: str | None = None
    blocked: tuple[str, ...] = ()
    next: tuple[str, ...] = ()
    agent: str | None = None
    clear_blocked: bool = False
    clear_next: bool = False

    def is_empty(self) -> bool:
        return self == Update()


def _add(items: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    out = list(items)
    for item in new:
        if item and item not in out:
            out.append(item)
    return tuple(out)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def check_update(u: Update) -> None:
    """Refuse text the file could not give back: a Current Task line starting ``## `` would be read
    as a section heading (and the task lost). List items keep their ``- ``, so they are safe."""
    current = _one_line(u.current) if u.current is not None else ""
    if current.startswith("## "):
        raise ProgressUsageError(
            f"--current {current[:60]!r} would be read back as a section heading of the progress file, "
            "and the task lost; reword it (e.g. without the leading '## ')"
        )


def apply_update(p: Progress, u: Update, *, when: str) -> Progress:
    """``p`` with ``u`` applied. A task marked done leaves Current Task, Blocked Items and Next Steps."""
    done = tuple(_one_line(t) for t in u.done if t.strip())
    blocked = () if u.clear_blocked else p.blocked
    next_ = () if u.clear_next else p.next
    current = p.current if u.current is None else _one_line(u.current)
    if current in done:
        current = ""
    return replace(
        p,
        status=u.status or p.status,
        completion=p.completion if u.completion is None else u.completion,
        agent=p.agent if u.agent is None else _one_line(u.agent),
        started=p.started or when,
        updated=when,
        completed=_add(p.completed, done),
        current=current,
        blocked=tuple(b for b in _add(blocked, tuple(_one_line(t) for t in u.blocked)) if b not in done),
        next=tuple(n for n in _add(next_, tuple(_one_line(t) for t in u.next)) if n not in done),
    )


@dataclass(frozen=True)
class ProgressCommit:
    """An update of a progress file: ``streams progress --json`` with options.

    ========  ===========  ========================================================================
    field     type         meaning
    ========  ===========  ========================================================================
    stream    str          the stream
    path      str          the progress file in its worktree
    progress  Progress     the file's contents after the update
    commit    str | null   the commit made on the stream's branch; null: nothing changed
    branch    str          that branch
    changed   bool         a commit was made
    ========  ===========  ========================================================================
    """

    stream: str
    path: Path  # the progress file in the stream's worktree
    progress: Progress
    commit: str | None  # the new commit on the stream's branch; None when nothing changed
    branch: str

    json_properties: ClassVar[tuple[str, ...]] = ("changed",)

    @property
    def changed(self) -> bool:
        return self.commit is not None


def _commit_message(name: str, p: Progress, u: Update, message: str | None) -> str:
    subject = f"progress({name}): {_one_line(message)}" if message else f"progress({name}): {p.status}, {p.completion}%"
    body = [f"status: {p.status}, completion: {p.completion}%"] if message else []
    body += [f"done: {t}" for t in u.done]
    if u.current:
        body.append(f"current: {u.current}")
    body += [f"blocked: {t}" for t in u.blocked]
    body += [f"next: {t}" for t in u.next]
    return subject + ("\n\n" + "\n".join(body) if body else "") + "\n"


def _write_file_atomic(path: Path, data: bytes, scratch_dir: Path) -> None:
    """Replace ``path`` with ``data`` completely or not at all, the temp file in ``scratch_dir``
    (the worktree's private git dir): a writer killed before the rename leaves no stray file in
    the worktree (``_clean_stale_temps`` knows the name)."""
    write_atomic(path, data, scratch_dir=scratch_dir, tmp_name=f".streams-progress.{os.getpid()}.tmp")


def _clean_stale_temps(git_dir: Path, progress_dir: Path) -> None:
    for d in (git_dir, progress_dir):
        for stale in d.glob(".streams-progress.*.tmp"):
            try:
                pid = int(stale.name.split(".")[2])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and not pid_alive(pid):
                stale.unlink(missing_ok=True)


def update_progress(
    state_dir: Path,
    worktree: Path,
    name: str,
    branch: str,
    update: Update,
    *,
    message: str | None = None,
    when: str | None = None,
    dirs: tuple[Path, Path] | None = None,
) -> ProgressCommit:
    """Apply ``update`` to stream ``name``'s progress file in ``worktree`` and commit only that file.

    ``branch`` is the stream's branch (e.g. ``streams/api``): the worktree must have it checked
    out, with no rebase or merge in progress. Validation failures change nothing on disk.
    ``dirs`` (the worktree's git dir and the common dir, when the caller knows them) spares the
    git processes that would ask for HEAD and for the new commit's id.
    """
    check_update(update)  # before the lock: a refused update leaves no trace
    rel = progress_path(name)
    path = progress_file(worktree, name)
    with stream_worktree_lock(state_dir, name):
        return _update_locked(worktree, name, branch, update, rel, path, message=message, when=when, dirs=dirs)


@contextmanager
def stream_worktree_lock(state_dir: Path, name: str, timeout: float = 30.0) -> Iterator[None]:
    """A short lock on one stream's worktree, shared by `streams progress` and `streams sync`, so a
    progress commit never lands in the middle of a sync's rebase of the same worktree."""
    with held(
        state_dir / f"progress-{name}.flock",
        timeout=timeout,
        busy=lambda: ProgressError(
            f"another streams command has worked in stream {name}'s worktree for {timeout:.0f} s; "
            "wait for it and retry",
            code="busy",
        ),
    ):
        yield


_OID = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")


def _head(worktree: Path, dirs: tuple[Path, Path] | None) -> tuple[Path, str]:
    """(the worktree's git dir, HEAD as a full ref name or ``HEAD`` when detached): read from the
    git dir's ``HEAD`` file when ``dirs`` names it, else (or when that file says something else,
    e.g. a reftable repository's placeholder) asked of git."""
    if dirs is not None:
        head = git.read_small(dirs[0] / "HEAD") or ""
        if head.startswith("ref: refs/heads/") and not head.endswith("/.invalid"):
            return dirs[0], head.removeprefix("ref: ")
        if _OID.match(head):
            return dirs[0], "HEAD"
    return git.git_dir_and_head(worktree)


def _new_tip(worktree: Path, head_ref: str, dirs: tuple[Path, Path] | None) -> str:
    """The commit the branch names now: its loose ref file when ``dirs`` names the common dir and it
    holds an object id, else ``git rev-parse HEAD``."""
    if dirs is not None:
        oid = git.read_small(dirs[1] / head_ref) or ""
        if _OID.match(oid):
            return oid
    return git.rev_parse(worktree, "HEAD")


def _update_locked(
    worktree: Path,
    name: str,
    branch: str,
    update: Update,
    rel: str,
    path: Path,
    *,
    message: str | None,
    when: str | None,
    dirs: tuple[Path, Path] | None = None,
) -> ProgressCommit:
    git_dir, head_ref = _head(worktree, dirs)
    if (op := git.operation_in_progress(git_dir)) is not None:
        raise ProgressError(
            f"{worktree} has a {op} in progress; finish it (e.g. `git rebase --continue`) or abort it, "
            "then run `streams progress` again",
            code="operation_in_progress",
        )
    if head_ref != git.branch_ref(branch):
        raise ProgressError(
            f"{worktree} is not on branch {branch} (HEAD is {head_ref or 'detached'}); "
            f"run `git switch {branch}` there first",
            code="wrong_branch",
        )
    _clean_stale_temps(git_dir, path.parent)
    try:
        old_bytes: bytes | None = path.read_bytes()
    except FileNotFoundError:
        old_bytes = None
    if old_bytes is None:
        current = Progress.new(name, when=when)
    else:
        try:
            text = old_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise ProgressError(f"{path}:1: not UTF-8 text; save it as UTF-8") from None
        current = replace(parse(text, display=str(path)), stream=name)
    new = apply_update(current, update, when=when or iso_utc())
    data = render(new).encode()

    # A new file is asked about first. Otherwise the commit is tried at once (the usual update: one
    # git process), and only a refusal asks why: nothing to commit (the file is as HEAD has it), a
    # file git does not know (an untracked one left by hand), or a real refusal (a hook's).
    tracked = bool(git.tracked_files(worktree, rel)) if old_bytes is None else None
    text = _commit_message(name, new, update, message)
    _write_file_atomic(path, data, git_dir)
    added = False
    try:
        if tracked is False:
            git.add_intent_to_add(worktree, rel)
            added = True
        try:
            # Unpiped: a `streams progress` killed now still gets its commit made, not half made.
            git.commit_only(worktree, [rel], text)
        except GitError:
            if git.differs_from_head(worktree, rel):
                raise
            if tracked is not None or git.tracked_files(worktree, rel):
                return ProgressCommit(name, path, new, None, branch)
            git.add_intent_to_add(worktree, rel)
            added = True
            git.commit_only(worktree, [rel], text)
    except BaseException:
        _restore(worktree, rel, path, old_bytes, git_dir, added)
        raise
    return ProgressCommit(name, path, new, _new_tip(worktree, head_ref, dirs), branch)


def _restore(worktree: Path, rel: str, path: Path, old: bytes | None, git_dir: Path, added: bool) -> None:
    """Put the file back as it was after a failed commit (best effort; the error is what matters)."""
    try:
        if old is None:
            path.unlink(missing_ok=True)
        else:
            _write_file_atomic(path, old, git_dir)
        if added:
            git.forget_in_index(worktree, rel)
    except OSError:
        pass
