"""``streams locks``' result and its text, without click: the full command (``streams.cli.locks``)
and the quick one (``streams.cli.quickread``) render leases with these."""

from __future__ import annotations

import time
from dataclasses import dataclass

from streams.cli.output import table
from streams.kernel.durations import clock, format_duration
from streams.kernel.errors import printable
from streams.kernel.lease import LeaseView


@dataclass(frozen=True)
class Leases:
    """``streams locks --json``.

    ======  ===========  ==========================================================================
    field   type         meaning
    ======  ===========  ==========================================================================
    leases  [LeaseView]  every lease on a shared file, expired ones included (``live``: false)
    ======  ===========  ==========================================================================
    """

    leases: list[LeaseView]


def leases_text(found: Leases) -> str:
    if not found.leases:
        return "no locks held"
    now = time.time()
    rows = []
    for lease in found.leases:
        until = clock(lease.expires_at, now)
        if lease.live:
            left = format_duration(lease.seconds_left)
        else:
            left = f"expired {format_duration(-lease.seconds_left)} ago"
        reason = " ".join(
            filter(
                None,
                [
                    printable(lease.reason),
                    "(held until landed)" if lease.landing else "(until commit)" if lease.until_commit else "",
                ],
            )
        )
        rows.append([printable(lease.path), lease.stream or "?", printable(lease.holder), until, left, reason])
    return table(rows, ["PATH", "STREAM", "HOLDER", "UNTIL", "LEFT", "REASON"])
