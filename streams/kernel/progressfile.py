"""A progress file's text read into its fields, without PyYAML, ``re`` or ``dataclasses``.

``streams.progress.parse`` (every command) and the quick ``status --json``
(``streams.cli.quickstatus``) read a progress file with ``read``; only front matter that is not in
the form ``streams progress`` writes needs PyYAML, which the caller supplies as ``yaml_front`` (the
quick path supplies none and steps aside). Standard library only: the kernel floor.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

STATUSES = ("pending", "in_progress", "blocked", "completed", "failed", "paused")
SECTIONS = ("Completed Tasks", "Current Task", "Blocked Items", "Next Steps")

_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_ASCII_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_PLAIN_FIRST = frozenset(_ASCII_LETTERS + "_")
_PLAIN_REST = frozenset(_ASCII_LETTERS + _DIGITS + "_./@+-")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_")


class ProgressFormatError(Exception):
    """A progress file that is not one: ``message`` names the file and line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def plain(value: str) -> bool:
    """A YAML plain scalar that means itself: ``[A-Za-z_][A-Za-z0-9_./@+-]*``, no YAML 1.1 word."""
    return value[:1] in _PLAIN_FIRST and all(c in _PLAIN_REST for c in value[1:]) and value.lower() not in _YAML_WORDS


def _when(value: str) -> bool:
    """``\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ`` (``\\d``: any Unicode decimal digit, as ``re``'s)."""
    return (
        len(value) == 20
        and value[4] == value[7] == "-"
        and value[10] == "T"
        and value[13] == value[16] == ":"
        and value[19] == "Z"
        and all(value[i].isdecimal() for i in (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18))
    )


def _completion(value: str) -> bool:
    """``0|[1-9][0-9]{0,2}``."""
    return value == "0" or (1 <= len(value) <= 3 and value[0] in "123456789" and all(c in _DIGITS for c in value[1:]))


def _never(_value: str) -> bool:
    return False


def _status(value: str) -> bool:
    return value in STATUSES


_FAST_VALUE: dict[str, Callable[[str], bool]] = {
    "started": _when,
    "updated": _when,
    "status": _status,
    "stream": plain,
    "agent": plain,
}


def simple_front(lines: list[str]) -> dict[str, object] | None:
    """The front matter as ``streams progress`` writes it (each key once, each value of its plain
    form), read without PyYAML; None for anything else (the caller asks PyYAML)."""
    meta: dict[str, object] = {}
    for line in lines:
        cut = 0
        while cut < len(line) and line[cut] in _KEY_CHARS:
            cut += 1
        if cut == 0 or line[cut : cut + 2] != ": ":
            return None
        key, value = line[:cut], line[cut + 2 :]
        if "\n" in value or key in meta:
            return None
        if value == '""':
            meta[key] = ""
        elif key == "completion" and _completion(value):
            meta[key] = int(value)
        elif _FAST_VALUE.get(key, _never)(value):
            meta[key] = value
        else:
            return None
    return meta


def read(
    text: str, display: str, yaml_front: Callable[[list[str], str], object] | None
) -> tuple[dict[str, object], str, int, dict[str, list[str]]] | None:
    """``(front matter, status, completion, sections)`` of a progress file's ``text``; errors name
    ``display`` and the line (``ProgressFormatError``). Front matter not in the simple form is read
    by ``yaml_front(lines, display)``; without one, None."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ProgressFormatError(f"{display}:1: missing front matter: the file must start with a '---' line")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise ProgressFormatError(f"{display}:1: front matter is not closed by a '---' line")
    simple = simple_front(lines[1:end])
    if simple is None and yaml_front is None:
        return None
    meta = simple if simple is not None else yaml_front(lines[1:end], display)  # type: ignore[misc]
    if not isinstance(meta, dict):
        raise ProgressFormatError(f"{display}:2: front matter must be key: value lines")

    def field_line(key: str) -> int:
        return next((i + 1 for i in range(1, end) if lines[i].startswith(f"{key}:")), 2)

    status = str(meta.get("status", "pending"))
    if status not in STATUSES:
        raise ProgressFormatError(
            f"{display}:{field_line('status')}: status {status!r} is not one of {', '.join(STATUSES)}"
        )
    completion = meta.get("completion", 0)
    if isinstance(completion, bool) or not isinstance(completion, int) or not 0 <= completion <= 100:
        raise ProgressFormatError(
            f"{display}:{field_line('completion')}: completion must be a whole number from 0 to 100"
        )
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
    return meta, status, completion, sections
