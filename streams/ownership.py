"""Who owns a path: a stream, the shared list, streams itself, or nobody.

Patterns follow gitignore/CODEOWNERS semantics: pathspec (``PathSpec.from_lines("gitignore", …)``)
turns each into a regex, and ``classify`` reduces the regex to a plain string test where one is
exactly equivalent (``src/api/**`` is "starts with ``src/api/``"), so that the hooks rarely need
``re`` at all. ``streams.kernel.patterns.Matcher`` evaluates the rules, last match wins. Semantics worth
knowing (they are CODEOWNERS', and pathspec's ``gitignore`` flavour, not ``GitIgnoreSpec``):

- ``docs/*`` owns the files directly in ``docs/``, not ``docs/a/b.md`` (git's ignore rules would
  exclude the directory ``docs/a`` and everything in it);
- a later ``!pattern`` takes back a path even inside a directory an earlier pattern owns (git
  cannot re-include a file whose parent directory is excluded).

The checks that need the repository's tracked files (two streams owning one path, a shared path
that is also owned, a pattern matching nothing) are here too.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from streams import attributes
from streams.config import Config, ConfigError, Origin
from streams.kernel import hookcache
from streams.kernel.paths import CONFIG_FILE
from streams.kernel.patterns import Matcher, Rule
from streams.kernel.rules import CompiledConfig, PatternRule, describe_owner

# Literal text inside a regex written by re.escape: any character but the special ones, or an
# escaped non-alphanumeric character (re.escape never writes \d, \w and friends).
_LIT = r"(?:[^\\.^$*+?{}\[\]|()]|\\[^A-Za-z0-9])+"
_SEG = r"(?:[^\\.^$*+?{}\[\]|()/]|\\[^A-Za-z0-9/])+"
_TEMPLATES = (
    ("prefix", re.compile(rf"\^({_LIT})/")),
    ("path", re.compile(rf"\^({_LIT})\(\?:/\|\$\)")),
    ("seg", re.compile(rf"\^\(\?:\.\+/\)\?({_SEG})\(\?:/\|\$\)")),
    ("dirseg", re.compile(rf"\^\(\?:\.\+/\)\?({_SEG})/")),
    ("segsuffix", re.compile(rf"\^\(\?:\.\+/\)\?\[\^/\]\*({_SEG})\(\?:/\|\$\)")),
    ("child", re.compile(rf"\^({_LIT})/\[\^/\]\+/\?\$")),
)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


def classify(regex: str) -> tuple[str, str]:
    """A pathspec regex as the cheapest exactly-equivalent rule ``(kind, arg)``.

    Recognises the shapes pathspec writes for literal patterns; anything else stays a regex.
    """
    if regex in (".", "^.", "^.*$"):
        return ("all", "")
    for kind, template in _TEMPLATES:
        m = template.fullmatch(regex)
        if m is None:
            continue
        lit = _UNESCAPE.sub(r"\1", m.group(1))
        if not lit or lit.startswith("/") or lit.endswith("/") or "//" in lit:
            break
        if kind in ("prefix", "child"):
            lit += "/"
        return (kind, lit)
    return ("regex", regex)


@functools.lru_cache(maxsize=4096)
def _compile_one(pattern: str) -> tuple[tuple[PatternRule, ...], tuple[tuple[str, bool], ...]]:
    import pathspec  # here, not at the top: a command whose config is cached never pays its 15 ms

    spec = pathspec.PathSpec.from_lines("gitignore", [pattern])
    rules: list[PatternRule] = []
    regexes: list[tuple[str, bool]] = []
    for p in spec.patterns:
        if p.include is None or p.regex is None:
            continue
        kind, arg = classify(p.regex.pattern)
        rules.append((kind, arg, bool(p.include), pattern))
        regexes.append((p.regex.pattern, bool(p.include)))
    return tuple(rules), tuple(regexes)


def compile_patterns(patterns: Iterable[str]) -> list[PatternRule]:
    """gitignore-style patterns -> rules (kind, arg, include, pattern), in order; comments and blanks dropped."""
    return [r for p in patterns for r in _compile_one(p)[0]]


def compile_rules(patterns: Iterable[str]) -> list[Rule]:
    """gitignore-style patterns -> ``streams.kernel.patterns`` rules (kind, arg, include), in order."""
    return [(k, a, i) for k, a, i, _ in compile_patterns(patterns)]


def compile_config(config: Config) -> CompiledConfig:
    """The hooks' view of ``config`` (see ``streams.kernel.rules``); refuses bad ``touches:`` first."""
    check_touches(config)
    origin = config.origin
    return CompiledConfig(
        config_path=str(config.path),
        source=origin.source if origin else b"",
        blob=origin.blob if origin else "",
        base_commit=origin.commit if origin else "",
        base=config.base,
        remote=config.remote,
        branch_prefix=config.branch_prefix,
        unowned=config.unowned,
        streams=[(s.name, compile_patterns(s.owns)) for s in config.streams],
        shared=compile_patterns(config.shared),
        union=compile_patterns([p for p, driver in config.merge_drivers if driver == "union"]),
    )


def refresh(common_dir: str | os.PathLike[str], config: Config) -> CompiledConfig:
    """The compiled form of ``config``, rewriting the hooks' cache (``kernel.hookcache``) if stale.

    Only the configuration in force (``config.origin``: committed on the base) is ever cached. The
    cache is current when it was compiled from the same blob; a base that moved without changing
    ``streams.yaml`` only updates the commit it names. A cache that cannot be written (read-only
    repository) is not an error: the hooks then use the loader.
    """
    origin = config.origin
    cc = hookcache.load(common_dir)
    if (
        origin is not None
        and cc is not None
        and cc.blob == origin.blob
        and cc.config_path == os.fspath(config.path)
        and hookcache.prefix_matches(common_dir, cc.branch_prefix)
    ):
        if cc.base_commit != origin.commit:
            with contextlib.suppress(OSError):
                hookcache.move_base(common_dir, cc, origin.commit)
        return _remember((config, origin), cc)
    cc = compiled(config)
    if origin is not None:
        with contextlib.suppress(OSError):
            hookcache.save(common_dir, cc)
            attributes.install(common_dir, config.merge_drivers)  # what sync and merge honour
    return cc


def check_touches(config: Config, *, display: str | None = None) -> None:
    """Refuse a ``touches:`` entry that names no shared path (plan uses them to split waves)."""
    if not any(s.touches for s in config.streams):
        return
    shown = display or config.path.name
    shared_set = PatternSet.compile(config.shared)
    for s in config.streams:
        for t in s.touches:
            if not shared_set.matches(t.strip("/")):
                raise ConfigError(
                    f"{shown}:{s.line}: streams.{s.name}.touches: {t!r} is not a shared path; add it to `shared:` or remove it"
                )


# compiled()'s memo, by configuration and where it came from (the compiled form records the blob and
# the base commit too); ``refresh`` seeds it with the hooks' cache when that is current.
_COMPILED: dict[tuple[Config, Origin | None], CompiledConfig] = {}


def compiled(config: Config) -> CompiledConfig:
    """``compile_config`` memoised per configuration value: a command whose configuration is
    cached compiles nothing (and never imports pathspec: 11 ms)."""
    key = (config, config.origin)
    cc = _COMPILED.get(key)
    if cc is None:
        cc = _remember(key, compile_config(config))
    return cc


def _remember(key: tuple[Config, Origin | None], cc: CompiledConfig) -> CompiledConfig:
    if len(_COMPILED) >= 32:
        _COMPILED.clear()
    _COMPILED[key] = cc
    return cc


class PatternSet(Matcher):
    """A Matcher that also keeps pathspec's regexes, to filter long path lists in one regex call."""

    __slots__ = ("_combined", "regexes")

    def __init__(self, rules: Iterable[Rule], regexes: Sequence[tuple[str, bool]] = ()) -> None:
        super().__init__(rules)
        self.regexes = tuple(regexes)
        self._combined: re.Pattern[str] | None = None

    @classmethod
    def compile(cls, patterns: Iterable[str]) -> PatternSet:
        compiled_ = [_compile_one(p) for p in patterns]
        return cls(
            [(k, a, i) for rules, _ in compiled_ for k, a, i, _ in rules],
            [rx for _, rxs in compiled_ for rx in rxs],
        )

    def filter(self, paths: Sequence[str]) -> list[str]:
        if len(paths) < 64 or not self.regexes or any(not inc for _, inc in self.regexes):
            return super().filter(paths)
        if self._combined is None:
            self._combined = re.compile("|".join(f"(?:{rx})" for rx, _ in self.regexes))
        return list(filter(self._combined.match, paths))


class OwnerKind(StrEnum):
    """Who owns a path (``owner --json``'s ``paths[].kind``)."""

    STREAM = "stream"  # a stream's owns: patterns
    PROGRESS = "progress"  # a stream's own progress file
    SHARED = "shared"  # listed under shared: (changed under a lease)
    RESERVED = "reserved"  # streams' own files: streams.yaml, a progress file of no configured stream
    UNOWNED = "unowned"  # nobody


@dataclass(frozen=True)
class Owner:
    kind: OwnerKind
    stream: str | None = None
    pattern: str | None = None  # the pattern that decided, as written in streams.yaml

    def describe(self) -> str:
        return describe_owner(self.kind, self.stream)


class Ownership:
    """Compiled ownership for a configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.compiled = compiled(config)
        self.streams = {s.name: PatternSet.compile(s.owns) for s in config.streams}
        self.shared = PatternSet.compile(config.shared)

    def owner(self, path: str) -> Owner:
        kind, stream = self.compiled.owner(path)
        return Owner(OwnerKind(kind), stream, self.compiled.pattern_for(path))


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


def raise_errors(check: TreeCheck) -> None:
    """Raise ``ConfigError`` listing every error of ``check``, one per line (none: return)."""
    if len(check.errors) == 1:
        raise ConfigError(check.errors[0])
    if check.errors:
        listed = "\n".join(f"  {e}" for e in check.errors)
        raise ConfigError(f"streams.yaml has {len(check.errors)} problems (`streams check` lists them):\n{listed}")


def summarize_warnings(warnings: Sequence[str]) -> tuple[str, ...]:
    """The tree check's warnings as a command says them: patterns that match no tracked file are
    one line however many there are (``streams check`` lists them); others as they are."""
    dead = [w for w in warnings if w.endswith("matches no tracked file")]
    rest = tuple(w for w in warnings if w not in dead)
    if len(dead) <= 1:
        return (*rest, *dead)
    return (*rest, f"{len(dead)} patterns in streams.yaml match no tracked file yet (`streams check` lists them)")
