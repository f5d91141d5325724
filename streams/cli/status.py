"""Commands of the status area (filled in by its issue)."""

from __future__ import annotations
