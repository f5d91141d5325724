"""Matching paths against compiled ownership patterns, with the standard library only.

``streams.ownership`` compiles gitignore-style patterns through pathspec into (regex, include)
pairs; this module evaluates them (the last matching pattern decides, as in gitignore) and is what
the git hooks import, so it must never import anything outside the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


class Matcher:
    """A list of (regex, include) pairs evaluated with gitignore's last-match-wins rule."""

    __slots__ = ("_combined", "_rules", "source")

    def __init__(self, rules: Iterable[tuple[str, bool]]) -> None:
        self.source: tuple[tuple[str, bool], ...] = tuple(rules)
        self._rules = tuple((re.compile(rx), inc) for rx, inc in self.source)
        # Without negations, one alternation answers in a single regex call.
        if all(inc for _, inc in self.source):
            self._combined = re.compile("|".join(f"(?:{rx})" for rx, _ in self.source)) if self.source else None
        else:
            self._combined = None

    def matches(self, path: str) -> bool:
        if not self._rules:
            return False
        if self._combined is not None:
            return self._combined.match(path) is not None
        result = False
        for rx, inc in self._rules:
            if rx.match(path) is not None:
                result = inc
        return result

    def filter(self, paths: Sequence[str]) -> list[str]:
        if self._combined is not None:
            return list(filter(self._combined.match, paths))
        return [p for p in paths if self.matches(p)]

    def __bool__(self) -> bool:
        return bool(self._rules)
