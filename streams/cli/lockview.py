"""``streams locks``' result and its text, without click (the full command, ``streams.cli.locks``;
the quick one, ``streams.cli.quickread``, writes the same with ``output.leases_table`` and plain
dicts, without the dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

from streams.cli.output import leases_table
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
    return leases_table([vars(lease) for lease in found.leases])
