"""Matching paths against compiled ownership patterns, with the standard library only.

``streams.ownership`` compiles gitignore-style patterns through pathspec into rules; this module
evaluates them (the last matching rule decides, as in gitignore) and is what the git hooks import.
It must never import anything outside the standard library, and it does not even import ``re``
until a rule needs a regular expression: most ownership patterns (``src/api/**``, ``docs/``,
``pyproject.toml``, ``*.md``) reduce to plain string tests, and importing ``re`` alone costs a hook
about 6 ms.

A rule is ``(kind, arg, include)``:

=============  ================================================================================
kind           matches a file path ``p`` when
=============  ================================================================================
``all``        always (pattern ``**``)
``prefix``     ``p`` starts with ``arg`` (which ends with ``/``): ``src/api/**``, ``src/api/``
``path``       ``p == arg`` or ``p`` is under directory ``arg``: ``src/api``, ``/README.md``
``seg``        some segment of ``p`` is ``arg``: floating ``name``
``dirseg``     some directory segment of ``p`` is ``arg``: floating ``name/``
``segsuffix``  some segment of ``p`` ends with ``arg``: floating ``*.py``
``child``      ``p`` is directly in directory ``arg`` (ends with ``/``): ``docs/*``
``regex``      ``re.match(arg, p)``: everything else, as pathspec compiled it
=============  ================================================================================
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing imports cost hooks milliseconds at run time
    import re
    from collections.abc import Iterable, Sequence

Rule = tuple[str, str, bool]

KINDS = ("all", "prefix", "path", "seg", "dirseg", "segsuffix", "child", "regex")


def _hit(kind: str, arg: str, path: str, compiled: dict[str, re.Pattern[str]]) -> bool:
    if kind == "prefix":
        return path.startswith(arg)
    if kind == "path":
        return path == arg or path.startswith(arg + "/")
    if kind == "seg":
        return path == arg or path.startswith(arg + "/") or path.endswith("/" + arg) or f"/{arg}/" in path
    if kind == "dirseg":
        return path.startswith(arg + "/") or f"/{arg}/" in path
    if kind == "segsuffix":
        return path.endswith(arg) or (arg + "/") in path
    if kind == "child":
        return path.startswith(arg) and len(path) > len(arg) and "/" not in path[len(arg) :]
    if kind == "all":
        return True
    rx = compiled.get(arg)
    if rx is None:
        import re

        rx = compiled[arg] = re.compile(arg)
    return rx.match(path) is not None


class Matcher:
    """A list of rules evaluated with gitignore's last-match-wins rule."""

    __slots__ = ("_compiled", "_exact", "_negations", "_others", "_prefixes", "rules")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        for kind, _, _ in self.rules:
            if kind not in KINDS:
                raise ValueError(f"unknown pattern rule kind {kind!r}")
        self._negations = any(not inc for _, _, inc in self.rules)
        self._compiled: dict[str, re.Pattern[str]] = {}
        # Without negations, order does not matter: every prefix test in one str.startswith call.
        self._prefixes = tuple(a for k, a, _ in self.rules if k == "prefix") + tuple(
            a + "/" for k, a, _ in self.rules if k == "path"
        )
        self._exact = frozenset(a for k, a, _ in self.rules if k == "path")
        self._others = tuple((k, a) for k, a, _ in self.rules if k not in ("prefix", "path"))

    @property
    def source(self) -> tuple[Rule, ...]:
        return self.rules

    def decider(self, path: str) -> int | None:
        """Index of the rule that decides ``path`` (the last one matching), or None."""
        for i in range(len(self.rules) - 1, -1, -1):
            kind, arg, _ = self.rules[i]
            if _hit(kind, arg, path, self._compiled):
                return i
        return None

    def matches(self, path: str) -> bool:
        if self._negations:
            i = self.decider(path)
            return i is not None and self.rules[i][2]
        if path.startswith(self._prefixes) or path in self._exact:
            return True
        compiled = self._compiled
        for kind, arg in self._others:  # noqa: SIM110 - a loop avoids a generator per call
            if _hit(kind, arg, path, compiled):
                return True
        return False

    def filter(self, paths: Sequence[str]) -> list[str]:
        return [p for p in paths if self.matches(p)]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __repr__(self) -> str:
        return f"Matcher({list(self.rules)!r})"
