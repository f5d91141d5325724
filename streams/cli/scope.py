"""Commands of the scope area (filled in by its issue)."""

from __future__ import annotations
