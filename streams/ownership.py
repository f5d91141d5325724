"""Who owns a path: a stream, the shared list, streams itself, or nobody.

Patterns follow gitignore/CODEOWNERS semantics; pathspec (``PathSpec.from_lines("gitignore", …)``)
turns each into a regex, and ``streams.patterns.Matcher`` evaluates them. The checks that need the
repository's tracked files (two streams owning one path, a shared path that is also owned, a
pattern matching nothing) are here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pathspec

from streams.config import PROGRESS_DIR, Config, ConfigError
from streams.patterns import Matcher

CONFIG_FILE = "streams.yaml"


def compile_rules(patterns: Iterable[str]) -> list[tuple[str, bool]]:
    """gitignore-style patterns → (regex, include) pairs, in order; comments and blanks dropped."""
    spec = pathspec.PathSpec.from_lines("gitignore", list(patterns))
    rules: list[tuple[str, bool]] = []
    for p in spec.patterns:
        if p.include is None or p.regex is None:
            continue
        rules.append((p.regex.pattern, bool(p.include)))
    return rules


class PatternSet(Matcher):
    @classmethod
    def compile(cls, patterns: Iterable[str]) -> PatternSet:
        return cls(compile_rules(patterns))


@dataclass(frozen=True)
class Owner:
    kind: str  # "stream" | "progress" | "shared" | "reserved" | "unowned"
    stream: str | None = None

    def describe(self) -> str:
        if self.kind == "stream":
            return f"owned by {self.stream}"
        if self.kind == "progress":
            return f"progress file of {self.stream}"
        if self.kind == "shared":
            return "shared (take its lock with `streams lock`)"
        if self.kind == "reserved":
            return "belongs to no stream (streams configuration)"
        return "unowned"


class Ownership:
    """Compiled ownership for a configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.streams = {s.name: PatternSet.compile(s.owns) for s in config.streams}
        self.shared = PatternSet.compile(config.shared)

    def owner(self, path: str) -> Owner:
        if path.startswith(f"{PROGRESS_DIR}/"):
            rest = path[len(PROGRESS_DIR) + 1 :]
            if rest.startswith("stream-") and rest.endswith(".md") and "/" not in rest:
                name = rest[len("stream-") : -len(".md")]
                if name in self.streams:
                    return Owner("progress", name)
            return Owner("reserved")
        if path == CONFIG_FILE:
            return Owner("reserved")
        for name, m in self.streams.items():
            if m.matches(path):
                return Owner("stream", name)
        if self.shared.matches(path):
            return Owner("shared")
        return Owner("unowned")


@dataclass(frozen=True)
class TreeCheck:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def check_tree(config: Config, tracked: Sequence[str], *, display: str = CONFIG_FILE) -> TreeCheck:
    """The checks that need tracked files: overlaps (error), shared-and-owned (error), dead patterns (warning)."""
    errors: list[str] = []
    warnings: list[str] = []
    own = Ownership(config)
    owners: dict[str, str] = {}
    reported: set[tuple[str, str]] = set()
    for s in config.streams:
        for path in own.streams[s.name].filter(tracked):
            other = owners.setdefault(path, s.name)
            if other != s.name and (other, s.name) not in reported:
                reported.add((other, s.name))
                errors.append(
                    f"{display}:{s.line}: streams.{s.name}.owns: {path!r} is owned by both {other!r} "
                    f"and {s.name!r}; narrow one of the patterns so each path has one owner"
                )
        for pattern, line in zip(s.owns, s.owns_lines, strict=True):
            if pattern.startswith("!"):
                continue
            if not PatternSet.compile([pattern]).filter(tracked):
                warnings.append(f"{display}:{line}: streams.{s.name}.owns: {pattern!r} matches no tracked file")
    shared_tracked = own.shared.filter(tracked)
    candidates = list(shared_tracked) + [
        p.strip("/") for p in config.shared if not any(c in p for c in "*?[") and p.strip("/") not in shared_tracked
    ]
    for path in candidates:
        if path in owners or any(m.matches(path) for m in own.streams.values()):
            holder = owners.get(path) or next(n for n, m in own.streams.items() if m.matches(path))
            line = next(
                (
                    ln
                    for p, ln in zip(config.shared, config.shared_lines, strict=True)
                    if PatternSet.compile([p]).matches(path)
                ),
                0,
            )
            errors.append(
                f"{display}:{line}: shared: {path!r} is shared but also owned by stream {holder!r}; "
                "remove it from shared or from that stream's owns"
            )
    return TreeCheck(tuple(errors), tuple(warnings))


def raise_first(check: TreeCheck) -> None:
    if check.errors:
        extra = f" (and {len(check.errors) - 1} more)" if len(check.errors) > 1 else ""
        raise ConfigError(check.errors[0] + extra)
