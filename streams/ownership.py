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
    """The checks that need tracked files: overlaps (error), shared-and-owned (error), dead patterns (warning).

    One pass over ``tracked`` (``TreeIndex``): each path is looked up once in tables keyed by what
    its rules start with, so the cost grows with the paths and the rules that can reach them, not
    with streams x paths.
    """
    errors: list[str] = []
    warnings: list[str] = []
    cc = compiled(config)
    index = TreeIndex(cc, config)
    streams = config.streams
    first: dict[str, int] = {}  # path -> the first stream (config order) that owns it
    found: dict[tuple[int, int], tuple[int, str]] = {}  # (first owner, other) -> first path (tracked order)
    shared_tracked: list[str] = []
    for ti, path in enumerate(tracked):
        owning, shared = index.owners(path)
        if shared:
            shared_tracked.append(path)
        if not owning:
            continue
        head = first.setdefault(path, owning[0])
        for s in owning:
            if s != head and (head, s) not in found:
                found[(head, s)] = (ti, path)
    for (other, s), (_, path) in sorted(found.items(), key=lambda item: (item[0][1], item[1][0])):
        st = streams[s]
        errors.append(
            f"{display}:{st.line}: streams.{st.name}.owns: {path!r} is owned by both {streams[other].name!r} "
            f"and {st.name!r}; narrow one of the patterns so each path has one owner"
        )
    for s, st in enumerate(streams):
        for j, (pattern, line) in enumerate(zip(st.owns, st.owns_lines, strict=True)):
            if not pattern.startswith("!") and (s, j) not in index.alive:
                warnings.append(f"{display}:{line}: streams.{st.name}.owns: {pattern!r} matches no tracked file")
    shared_set = set(shared_tracked)
    candidates = shared_tracked + [
        p.strip("/") for p in config.shared if not any(c in p for c in "*?[") and p.strip("/") not in shared_set
    ]
    for path in candidates:
        owning = index.owners(path)[0]
        if not owning:
            continue
        holder = streams[first.get(path, owning[0])].name
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


# An entry of a TreeIndex table: (owner, rule index, regex to test or None when the key decides,
# pattern id for the dead-pattern check or None). Owner: a stream's index, or len(streams) for
# the shared list.
_Entry = tuple[int, int, "re.Pattern[str] | None", "tuple[int, int] | None"]
# What a directory decides: (entries that hit every path in it, entries to test on each, the answer
# when no other entry hits).
_Memo = tuple[list[_Entry], list[_Entry], tuple[list[int], bool]]


class TreeIndex:
    """Every stream's rules (and the shared list's) in tables keyed by what a path must contain for
    the rule to match it, so one path is matched against the few rules that can reach it.

    ===============  ============================================================================
    table            holds
    ===============  ============================================================================
    ``dirs``         ``prefix`` rules and ``path`` rules' ``arg/``, keyed by the directory a path
                     must be under; ``regex`` rules whose literal head has a ``/``, under its
                     directory part (their regex is then tested)
    ``exact``        ``path`` rules, keyed by the path itself
    ``parents``      ``child`` rules, keyed by the path's directory
    ``heads``        ``regex`` rules with a literal head and no ``/`` in it, keyed by the head
    ``segs``         ``seg`` (any segment) and ``dirsegs`` (any directory segment) rules
    ``suffixes``     ``segsuffix`` rules, keyed by the suffix a segment must end with
    ``anywhere``     ``all`` rules and floating ``regex`` rules (tested on every path)
    ===============  ============================================================================

    Each rule hits exactly the paths ``streams.kernel.patterns`` says it does; the last hitting rule
    of a stream decides, as in ``Matcher``. ``alive`` collects the patterns that hit a path.
    """

    def __init__(self, cc: CompiledConfig, config: Config) -> None:
        self.dirs: dict[str, list[_Entry]] = {}
        self.exact: dict[str, list[_Entry]] = {}
        self.parents: dict[str, list[_Entry]] = {}
        self.heads: dict[str, list[_Entry]] = {}
        self.segs: dict[str, list[_Entry]] = {}
        self.dirsegs: dict[str, list[_Entry]] = {}
        self.suffixes: dict[str, list[_Entry]] = {}
        self.anywhere: list[_Entry] = []
        self.include: list[tuple[bool, ...]] = []
        self.alive: set[tuple[int, int]] = set()
        regexes: dict[str, re.Pattern[str]] = {}
        owners: list[list[tuple[str, str, bool, tuple[int, int] | None]]] = []
        for s, st in enumerate(config.streams):
            rules: list[tuple[str, str, bool, tuple[int, int] | None]] = []
            for j, pattern in enumerate(st.owns):
                rules += [(k, a, inc, (s, j)) for k, a, inc, _ in _compile_one(pattern)[0]]
            owners.append(rules)
        owners.append([(k, a, inc, None) for k, a, inc, _ in cc.shared_rules])
        for s, rules in enumerate(owners):
            self.include.append(tuple(inc for _, _, inc, _ in rules))
            for r, (kind, arg, _, pid) in enumerate(rules):
                if kind == "prefix":
                    self.dirs.setdefault(arg, []).append((s, r, None, pid))
                elif kind == "path":
                    self.exact.setdefault(arg, []).append((s, r, None, pid))
                    self.dirs.setdefault(arg + "/", []).append((s, r, None, pid))
                elif kind == "child":
                    self.parents.setdefault(arg, []).append((s, r, None, pid))
                elif kind == "seg":
                    self.segs.setdefault(arg, []).append((s, r, None, pid))
                elif kind == "dirseg":
                    self.dirsegs.setdefault(arg, []).append((s, r, None, pid))
                elif kind == "segsuffix":
                    self.suffixes.setdefault(arg, []).append((s, r, None, pid))
                elif kind == "all":
                    self.anywhere.append((s, r, None, pid))
                else:
                    rx = regexes.get(arg)
                    if rx is None:
                        rx = regexes[arg] = re.compile(arg)
                    head = regex_head(arg)
                    cut = head.rfind("/") + 1
                    if cut:
                        self.dirs.setdefault(head[:cut], []).append((s, r, rx, pid))
                    elif head:
                        self.heads.setdefault(head, []).append((s, r, rx, pid))
                    else:
                        self.anywhere.append((s, r, rx, pid))
        self.head_lengths = sorted({len(h) for h in self.heads})
        self.suffix_lengths = sorted({len(x) for x in self.suffixes})
        self.shared = len(config.streams)
        self._dirs_memo: dict[str, _Memo] = {}
        self._leaves: dict[str, _Memo] = {}

    def owners(self, path: str) -> tuple[list[int], bool]:
        """The streams whose rules match ``path`` (in config order), and whether the shared list does.

        What a path's directory decides is worked out once per directory (``_directory``, itself
        from its parent's); each path then adds what its name decides (``_name_entries``). Every
        hit marks its pattern ``alive``: ask about tracked paths only until the dead patterns are read.
        """
        cut = path.rfind("/") + 1
        if cut == len(path):  # no name (never a tracked path): no child rule can match it
            certain, tested, _ = self._directory(path)
            return self._decide([certain, tested, *self._name_entries(path, cut)], path)
        certain, tested, decided = self._in_directory(path[:cut])
        named = self._name_entries(path, cut)
        if not named and not tested:
            return decided
        return self._decide([certain, tested, *named], path)

    def _in_directory(self, directory: str) -> _Memo:
        """For the paths directly in ``directory``: the entries that hit each of them, those to test
        on each, and the answer when nothing else hits (the ``child`` rules of ``directory`` included)."""
        children = self.parents.get(directory)
        if children is None:
            return self._directory(directory)
        found = self._leaves.get(directory)
        if found is None:
            certain, tested, _ = self._directory(directory)
            certain = certain + [e for e in children if e[2] is None]
            tested = tested + [e for e in children if e[2] is not None]
            found = self._leaves[directory] = (certain, tested, self._decide([certain], directory))
        return found

    def _directory(self, directory: str) -> _Memo:
        """The entries every path under ``directory`` (``""`` or ending with ``/``) reaches through
        its directories, certain and to test, and the answer they give: the parent directory's, and
        the last segment's."""
        found = self._dirs_memo.get(directory)
        if found is not None:
            return found
        if not directory:
            found = self._dirs_memo[directory] = ([], [], ([], False))
            return found
        start = directory.rfind("/", 0, len(directory) - 1) + 1
        certain, tested, decided = self._directory(directory[:start])
        new: list[list[_Entry] | None] = [self.dirs.get(directory)]
        for n in self.head_lengths:
            if n > len(directory):
                break
            if n > start:
                new.append(self.heads.get(directory[:n]))
        if self.segs or self.dirsegs or self.suffixes:
            part = directory[start:-1]
            new += (self.segs.get(part), self.dirsegs.get(part))
            for n in self.suffix_lengths:
                if n > len(part):
                    break
                new.append(self.suffixes.get(part[len(part) - n :]))
        entries = [e for f in new if f for e in f]
        if entries:
            certain = certain + [e for e in entries if e[2] is None]
            tested = tested + [e for e in entries if e[2] is not None]
            decided = self._decide([certain], directory)
        found = self._dirs_memo[directory] = (certain, tested, decided)
        return found

    def _name_entries(self, path: str, cut: int) -> list[list[_Entry]]:
        """The entries ``path`` reaches through its name ``path[cut:]``, the whole path, or no
        literal at all (``anywhere``)."""
        found: list[list[_Entry] | None] = [self.exact.get(path), self.anywhere]
        for n in self.head_lengths:
            if n > len(path):
                break
            if n > cut:
                found.append(self.heads.get(path[:n]))
        if self.segs or self.suffixes:
            name = path[cut:]
            found.append(self.segs.get(name))
            for n in self.suffix_lengths:
                if n > len(name):
                    break
                found.append(self.suffixes.get(name[len(name) - n :]))
        return [f for f in found if f]

    def _decide(self, tables: list[list[_Entry]], path: str) -> tuple[list[int], bool]:
        """The owners when ``tables`` hold every entry that can hit ``path`` (the last hit of each decides)."""
        best: dict[int, int] = {}
        alive = self.alive
        for entries in tables:
            if not entries:
                continue
            for s, r, rx, pid in entries:
                if rx is not None and rx.match(path) is None:
                    continue
                if pid is not None:
                    alive.add(pid)
                if best.get(s, -1) < r:
                    best[s] = r
        include = self.include
        if not best:
            return [], False
        owning = sorted(s for s, r in best.items() if include[s][r] and s != self.shared)
        shared = self.shared in best and include[self.shared][best[self.shared]]
        return owning, shared


def regex_head(regex: str) -> str:
    """A string every path ``re.match(regex, path)`` accepts starts with ("" when none is known).

    Reads the literal characters after ``^`` (``re.escape``'s ``\\x`` pairs included) up to the
    first special one; a quantifier there takes the last literal back, and an alternation outside
    parentheses voids the head.
    """
    if not regex.startswith("^") or not _grouped_alternation(regex):
        return ""
    head: list[str] = []
    i, n = 1, len(regex)
    while i < n:
        ch = regex[i]
        if ch == "\\" and i + 1 < n and not regex[i + 1].isalnum():
            head.append(regex[i + 1])
            i += 2
            continue
        if ch in "\\.^$*+?{}[]|()":
            if ch in "?*+{" and head:
                head.pop()
            break
        head.append(ch)
        i += 1
    return "".join(head)


def _grouped_alternation(regex: str) -> bool:
    """Whether every ``|`` of ``regex`` sits inside parentheses (or a ``[...]`` set, conservatively
    counted as outside: a false answer only costs the index a literal head)."""
    depth = 0
    i = 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth <= 0:
            return False
        i += 1
    return True


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
