"""What the CLI writes, without click: the JSON envelope, plain tables, text a strict UTF-8 stdout
can take.

``streams.cli.base`` writes every reply through these; the quick paths (``streams.cli.quick``,
``streams.cli.quickread``), which answer before click is imported, write the same bytes with them.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # dataclasses, enum, pathlib, typing: 20 ms of imports the quick paths do without
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

ENVELOPE_VERSION = 1

# Derived facts (``@property``s) serialised next to a type's fields: a class lists them in
# ``json_properties``; types the CLI may not edit are registered with ``add_json_properties``.
_JSON_PROPERTIES: dict[type, tuple[str, ...]] = {}


def add_json_properties(cls: type, *names: str) -> None:
    _JSON_PROPERTIES[cls] = (*_JSON_PROPERTIES.get(cls, ()), *names)


def json_properties(cls: type) -> tuple[str, ...]:
    """The derived facts ``jsonable`` writes for ``cls`` after its fields."""
    return (*getattr(cls, "json_properties", ()), *_JSON_PROPERTIES.get(cls, ()))


def jsonable(value: Any) -> Any:
    if hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type):
        import dataclasses

        names = [f.name for f in dataclasses.fields(value)] + list(json_properties(type(value)))
        return {name: jsonable(getattr(value, name)) for name in names}
    # An Enum or a Path exists only where its module was imported: looked up, not imported here.
    enum, pathlib = sys.modules.get("enum"), sys.modules.get("pathlib")
    if enum is not None and isinstance(value, enum.Enum):
        return value.value
    if pathlib is not None and isinstance(value, pathlib.Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def envelope_text(command: str, data: Any, error: tuple[str, str] | None = None) -> str:
    """The JSON envelope, on one line: ``data`` (made ``jsonable``) and the error's (code, message)."""
    from streams.kernel import leanjson

    doc = {
        "version": ENVELOPE_VERSION,
        "command": command,
        "ok": error is None,
        "data": jsonable(data),
        "error": None if error is None else {"code": error[0], "message": error[1]},
    }
    text = leanjson.dumps(doc, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: its bytes as \udcXX escapes
        return leanjson.dumps(doc)
    return text


def writable(text: str) -> str:
    """``text`` with the bytes of a file name that is not UTF-8 (kept as surrogates) shown as
    ``\\xNN``: a strict UTF-8 stdout cannot write them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text)
            .encode("utf-8", "replace")
            .decode("utf-8")
        )
    return text


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Plain aligned columns, git style."""
    cols = [header, *rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cols]
    return "\n".join(lines)


def leases_table(leases: Sequence[Mapping[str, Any]]) -> str:
    """``streams locks``' text: one row per lease (``LeaseView``'s fields, as a mapping)."""
    if not leases:
        return "no locks held"
    import time

    from streams.kernel.durations import clock, format_duration
    from streams.kernel.errors import printable

    now = time.time()
    rows = []
    for lease in leases:
        until = clock(lease["expires_at"], now)
        if lease["live"]:
            left = format_duration(lease["seconds_left"])
        else:
            left = f"expired {format_duration(-lease['seconds_left'])} ago"
        mark = "(held until landed)" if lease["landing"] else "(until commit)" if lease["until_commit"] else ""
        reason = " ".join(filter(None, [printable(lease["reason"]), mark]))
        rows.append([printable(lease["path"]), lease["stream"] or "?", printable(lease["holder"]), until, left, reason])
    return table(rows, ["PATH", "STREAM", "HOLDER", "UNTIL", "LEFT", "REASON"])
