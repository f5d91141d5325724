"""Durations as people write them: ``90s``, ``30m``, ``2h``, ``1h30m``, ``1d``, ``500ms``; and
the two ways streams writes a moment: ISO 8601 UTC to the second in files, a local wall-clock time
in messages (``clock``).

Standard library only. A bare number is refused as a duration (is ``30`` seconds or minutes?): the
unit is part of the value. Only an interval between passes (``parse_interval``) takes one, as
seconds, like ``watch -n``.
"""

from __future__ import annotations

import math
import time

from streams.kernel.errors import StreamsError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# ASCII digits only: ``\d`` would take ``٣`` (an Arabic-Indic three) for 3.
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_PATTERNS: list[re.Pattern[str]] = []  # compiled on first use: `streams locks` prints durations, parses none


def _patterns() -> list[re.Pattern[str]]:
    """(a part ``90s``, a whole duration, a bare number), compiled once."""
    if not _PATTERNS:
        import re

        _PATTERNS.extend(
            (
                re.compile(rf"({_NUMBER})(ms|d|h|m|s)"),
                re.compile(rf"(?:{_NUMBER}(?:ms|d|h|m|s))+\Z"),
                re.compile(rf"{_NUMBER}\Z"),
            )
        )
    return _PATTERNS


MAX_DURATION = 366 * 86400.0  # a year: beyond it a lease or an interval is a typo, and time_t overflows far later


class DurationError(StreamsError):
    code = "bad_duration"


def parse_duration(
    text: str,
    *,
    option: str = "duration",
    allow_zero: bool = False,
    minimum: float = 0.0,
    maximum: float = MAX_DURATION,
) -> float:
    """``text`` in seconds, from ``minimum`` (when not zero) to ``maximum``. Zero is refused unless
    ``allow_zero``; negative or unparsable always is.

    ``option`` names the value in the message (e.g. ``--ttl``).
    """
    raw = text.strip().lower().replace(" ", "")
    hint = "write it like 90s, 30m, 2h or 1h30m"
    if raw.startswith("-"):
        raise DurationError(f"{option} {_quoted(text)} is negative; {hint}")
    if not raw:
        raise DurationError(f"{option} is empty; {hint}")
    part, whole, bare = _patterns()
    if not whole.match(raw):
        if bare.match(raw):
            if float(raw) == 0 and not allow_zero:
                raise DurationError(f"{option} {_quoted(text)} is zero; give a positive duration, e.g. 30m")
            raise DurationError(f"{option} {_quoted(text)} has no unit; {hint} (e.g. {raw}m)")
        raise DurationError(f"{option} {_quoted(text)} is not a duration; {hint}")
    seconds = sum(float(n) * _UNITS[u] for n, u in part.findall(raw))
    return _in_range(seconds, text, option=option, allow_zero=allow_zero, minimum=minimum, maximum=maximum)


def _in_range(seconds: float, text: str, *, option: str, allow_zero: bool, minimum: float, maximum: float) -> float:
    if seconds <= 0 and not allow_zero:
        raise DurationError(f"{option} {_quoted(text)} is zero; give a positive duration, e.g. 30m")
    if not math.isfinite(seconds) or seconds > maximum:
        raise DurationError(f"{option} {_quoted(text)} is longer than {format_duration(maximum)}; give a shorter one")
    if 0 < seconds < minimum:
        raise DurationError(f"{option} {_quoted(text)} is shorter than {_short(minimum)}; give at least that")
    return seconds


def _quoted(text: str) -> str:
    """``text`` for a message: quoted, and cut when long (a 400-digit value is not read whole)."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _short(seconds: float) -> str:
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


MIN_INTERVAL = 0.1  # seconds between two passes of a loop: below it a loop only burns a core


def parse_interval(text: str, *, option: str = "--interval", minimum: float = MIN_INTERVAL) -> float:
    """The time between two passes of a loop: a duration, or a bare number of seconds (``2``, like
    ``watch -n``), from ``minimum`` to a day. Lock times (``--ttl``, ``--wait``) keep asking for a unit."""
    raw = text.strip()
    if _patterns()[2].match(raw) and float(raw) > 0:
        seconds = _in_range(float(raw), text, option=option, allow_zero=False, minimum=0.0, maximum=86400.0)
    else:
        seconds = parse_duration(raw, option=option, maximum=86400.0)
    if seconds < minimum:
        raise DurationError(f"{option} {_quoted(text)} is below {minimum:g}s; give e.g. 2s")
    return seconds


def iso_utc(ts: float | None = None) -> str:
    """``ts`` (epoch seconds; default now) as ISO 8601 UTC to the second: ``2026-11-22T01:02:03Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def format_duration(seconds: float) -> str:
    """A short human form: ``45s``, ``12m 05s``, ``2h 10m``, ``3d 4h``."""
    s = round(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def clock(ts: float, now: float | None = None) -> str:
    """A local wall-clock time for messages: ``14:05:09``, with the date when it is not today."""
    now = time.time() if now is None else now
    t = time.localtime(ts)
    if time.strftime("%Y-%m-%d", t) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", t)
    return time.strftime("%Y-%m-%d %H:%M:%S", t)
