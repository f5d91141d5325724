"""Commands of the locks area (filled in by its issue)."""

from __future__ import annotations
