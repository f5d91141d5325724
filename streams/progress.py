"""Progress files: ``.streams/stream-NAME.md``, YAML front matter then markdown sections."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import yaml

from streams.errors import StreamsError

STATUSES = ("pending", "in_progress", "blocked", "completed", "failed", "paused")
SECTIONS = ("Completed Tasks", "Current Task", "Blocked Items", "Next Steps")


class ProgressError(StreamsError):
    code = "progress"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Progress:
    stream: str
    status: str = "pending"
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
        when = when or now_iso()
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


def _scalar(value: str) -> str:
    if not value:
        return '""'
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def parse(text: str, *, display: str) -> Progress:
    """Parse a progress file; errors name ``display`` and the line."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ProgressError(f"{display}:1: missing front matter: the file must start with a '---' line")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ProgressError(f"{display}:1: front matter is not closed by a '---' line") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.MarkedYAMLError as exc:
        at = (exc.problem_mark.line + 2) if exc.problem_mark else 1
        raise ProgressError(f"{display}:{at}: front matter is not valid YAML: {exc.problem}") from None
    if not isinstance(meta, dict):
        raise ProgressError(f"{display}:2: front matter must be key: value lines")

    def field_line(key: str) -> int:
        return next((i + 1 for i in range(1, end) if lines[i].startswith(f"{key}:")), 2)

    status = str(meta.get("status", "pending"))
    if status not in STATUSES:
        raise ProgressError(f"{display}:{field_line('status')}: status {status!r} is not one of {', '.join(STATUSES)}")
    completion = meta.get("completion", 0)
    if isinstance(completion, bool) or not isinstance(completion, int) or not 0 <= completion <= 100:
        raise ProgressError(f"{display}:{field_line('completion')}: completion must be a whole number from 0 to 100")

    sections: dict[str, list[str]] = {s: [] for s in SECTIONS}
    current: str | None = None
    for line in lines[end + 1 :]:
        if line.startswith("## "):
            title = line[3:].strip()
            current = title if title in sections else None
            continue
        if current is None or not line.strip():
            continue
        if current == "Current Task":
            sections[current].append(line.strip())
        else:
            sections[current].append(line.strip()[2:] if line.strip().startswith("- ") else line.strip())

    def text_of(key: str) -> str:
        v = meta.get(key)
        if v is None:
            return ""
        if isinstance(v, dt.datetime):
            return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return str(v)

    return Progress(
        stream=text_of("stream"),
        status=status,
        completion=completion,
        agent=text_of("agent"),
        started=text_of("started"),
        updated=text_of("updated"),
        completed=tuple(sections["Completed Tasks"]),
        current=" ".join(sections["Current Task"]),
        blocked=tuple(sections["Blocked Items"]),
        next=tuple(sections["Next Steps"]),
    )
