"""The scope rules of DESIGN "Scope enforcement", compiled. Standard library only.

``CompiledConfig`` is what the hooks need of a ``Config``: every stream's patterns already compiled
into ``streams.kernel.patterns`` rules, the shared list, base, remote, branch prefix and the unowned
policy. ``judge``/``check`` are the rules themselves, so that the hooks, ``streams verify``,
``streams watch`` and ``streams status`` can never disagree. ``streams.ownership`` builds one from a
``Config``; ``streams.kernel.hookcache`` keeps one on disk for the hooks.
"""

from __future__ import annotations

import sys

from streams.kernel.paths import CONFIG_FILE, PROGRESS_DIR, progress_path, progress_stream
from streams.kernel.patterns import Matcher

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

FORMAT = 4  # 2: compiled from the streams.yaml committed on the base (blob, base commit); 3: merge drivers installed

# (kind, arg, include, pattern as written in streams.yaml)
PatternRule = tuple[str, str, bool, str]
# One offending change: (path, reason, fix, status letter, commit or None)
Finding = tuple[str, str, str, str, "str | None"]


class CompiledConfig:
    """What the hooks need of a ``Config``, with patterns already compiled into rules."""

    __slots__ = (
        "_matchers",
        "_rivals",
        "base",
        "base_commit",
        "blob",
        "branch_prefix",
        "config_path",
        "remote",
        "shared_rules",
        "source",
        "stream_rules",
        "union_rules",
        "unowned",
    )

    def __init__(
        self,
        *,
        config_path: str,
        source: bytes,
        blob: str,
        base_commit: str,
        base: str,
        remote: str | None,
        branch_prefix: str,
        unowned: str,
        streams: Sequence[tuple[str, Sequence[PatternRule]]],
        shared: Sequence[PatternRule],
        union: Sequence[PatternRule] = (),
    ) -> None:
        self.config_path = config_path
        self.source = source  # the bytes of streams.yaml as committed on the base: blob ``blob``
        self.blob = blob
        self.base_commit = base_commit  # a commit of the base whose streams.yaml is ``blob``
        self.base = base
        self.remote = remote
        self.branch_prefix = branch_prefix
        self.unowned = unowned
        self.stream_rules: dict[str, tuple[PatternRule, ...]] = {n: tuple(r) for n, r in streams}
        self.shared_rules: tuple[PatternRule, ...] = tuple(shared)
        self.union_rules: tuple[PatternRule, ...] = tuple(union)  # shared paths with git's union merge driver
        self._matchers: dict[str | None, Matcher] = {}
        self._rivals: dict[str, tuple[str, ...]] = {}

    # --- serialisation ---------------------------------------------------------------------------

    def to_data(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "python": sys.version_info[:2],
            "config_path": self.config_path,
            "source": self.source,
            "blob": self.blob,
            "base_commit": self.base_commit,
            "base": self.base,
            "remote": self.remote,
            "branch_prefix": self.branch_prefix,
            "unowned": self.unowned,
            "streams": [(n, list(r)) for n, r in self.stream_rules.items()],
            "shared": list(self.shared_rules),
            "union": list(self.union_rules),
        }

    @classmethod
    def from_data(cls, data: dict[str, object]) -> CompiledConfig:
        return cls(
            config_path=str(data["config_path"]),
            source=data["source"],  # type: ignore[arg-type]
            blob=str(data["blob"]),
            base_commit=str(data["base_commit"]),
            base=str(data["base"]),
            remote=data["remote"],  # type: ignore[arg-type]
            branch_prefix=str(data["branch_prefix"]),
            unowned=str(data["unowned"]),
            streams=[(n, [tuple(r) for r in rules]) for n, rules in data["streams"]],  # type: ignore[attr-defined]
            shared=[tuple(r) for r in data["shared"]],  # type: ignore[attr-defined]
            union=[tuple(r) for r in data["union"]],  # type: ignore[attr-defined]
        )

    @property
    def base_ref(self) -> str:
        return f"refs/heads/{self.base}"

    @property
    def base_refs(self) -> tuple[str, ...]:
        """The refs that say what is on the base: the branch, and its remote-tracking ref."""
        return (self.base_ref, *([f"refs/remotes/{self.remote}/{self.base}"] if self.remote else []))

    def in_force(self, common_dir: str) -> bool | None:
        """Whether this is still the configuration in force, judged from the files alone: True when
        the base branch still points at ``base_commit``; None when it moved (or cannot be read),
        and only git can say whether its ``streams.yaml`` is still ``blob``."""
        from streams.kernel.reffiles import read_ref

        tip = read_ref(common_dir, self.base_ref)
        return True if tip is not None and tip == self.base_commit else None

    # --- ownership -------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.stream_rules)

    def branch(self, name: str) -> str:
        return f"{self.branch_prefix}{name}"

    def stream_of_ref(self, ref: str) -> str | None:
        """``refs/heads/<prefix>X`` -> ``X`` when X is a configured stream, else None."""
        head = f"refs/heads/{self.branch_prefix}"
        if not ref.startswith(head):
            return None
        name = ref[len(head) :]
        return name if name in self.stream_rules else None

    def matcher(self, name: str | None) -> Matcher:
        """The compiled patterns of stream ``name`` (None: the shared list)."""
        m = self._matchers.get(name)
        if m is None:
            rules = self.shared_rules if name is None else self.stream_rules[name]
            m = self._matchers[name] = Matcher((k, a, i) for k, a, i, _ in rules)
        return m

    def rivals(self, name: str) -> tuple[str, ...]:
        """The other streams with a pattern that could match a path one of ``name``'s patterns matches
        (their literal heads, ``literal_head``, are prefixes one of the other): only those can make
        a path of ``name``'s ambiguous."""
        found = self._rivals.get(name)
        if found is None:
            mine = {literal_head(k, a) for k, a, inc, _ in self.stream_rules[name] if inc}
            found = tuple(
                other
                for other, rules in self.stream_rules.items()
                if other != name
                and any(
                    h.startswith(m) or m.startswith(h)
                    for k, a, inc, _ in rules
                    if inc
                    for h in [literal_head(k, a)]
                    for m in mine
                )
            )
            self._rivals[name] = found
        return found

    def prime_rivals(self) -> None:
        """Every stream's ``rivals`` at once, from an index of the literal heads (a dict of heads and
        a sorted list of them), instead of each stream against every other: what a command that
        judges all streams (``streams verify``) calls first, so 1,000 streams cost 1,000 lookups."""
        import bisect

        names = list(self.stream_rules)
        heads: dict[str, set[int]] = {}
        mine: list[set[str]] = []
        for i, name in enumerate(names):
            own = {literal_head(k, a) for k, a, inc, _ in self.stream_rules[name] if inc}
            mine.append(own)
            for h in own:
                heads.setdefault(h, set()).add(i)
        ordered = sorted(heads)
        for i, name in enumerate(names):
            if name in self._rivals:
                continue
            found: set[int] = set()
            for m in mine[i]:
                for cut in range(len(m) + 1):  # heads that are prefixes of m (m itself included)
                    found |= heads.get(m[:cut], set())
                at = bisect.bisect_left(ordered, m)  # heads that m is a prefix of
                while at < len(ordered) and ordered[at].startswith(m):
                    found |= heads[ordered[at]]
                    at += 1
            found.discard(i)
            self._rivals[name] = tuple(names[j] for j in sorted(found))

    def co_owners(self, name: str, path: str) -> list[str]:
        """The other streams whose patterns match ``path``, which ``name``'s patterns match too."""
        return [o for o in self.rivals(name) if self.matcher(o).matches(path)]

    def conflict_free(self, path: str) -> bool:
        """Whether ``path`` merges with git's union driver (two edits never conflict)."""
        if not self.union_rules:
            return False
        m = self._matchers.get("\0union")
        if m is None:
            m = self._matchers["\0union"] = Matcher((k, a, i) for k, a, i, _ in self.union_rules)
        return m.matches(path)

    def owner(self, path: str) -> tuple[str, str | None]:
        """``(kind, stream)``; kind is stream, progress, shared, reserved or unowned."""
        if path.startswith(PROGRESS_DIR + "/") or path == PROGRESS_DIR:
            name = progress_stream(path)
            if name is not None and name in self.stream_rules:
                return ("progress", name)
            return ("reserved", None)
        if path == CONFIG_FILE:
            return ("reserved", None)
        for name in self.stream_rules:
            if self.matcher(name).matches(path):
                return ("stream", name)
        if self.matcher(None).matches(path):
            return ("shared", None)
        return ("unowned", None)

    def pattern_for(self, path: str) -> str | None:
        """The pattern (as written) that gives ``path`` its owner, if a pattern does."""
        kind, name = self.owner(path)
        if kind not in ("stream", "shared"):
            return None
        rules = self.stream_rules[name] if kind == "stream" and name is not None else self.shared_rules
        i = self.matcher(name if kind == "stream" else None).decider(path)
        return rules[i][3] if i is not None else None

    # --- the rules -------------------------------------------------------------------------------

    def judge(
        self, stream: str, path: str, lease_of: Callable[[str], tuple[str, float] | None]
    ) -> tuple[str, str] | None:
        """Why ``stream`` may not change ``path`` as ``(reason, fix)``, or None when it may.

        Allowed: the stream's progress file, a path it owns, a shared path it holds a live lease
        on, an unowned path under ``unowned: allow``.
        """
        if path == progress_path(stream):
            return None
        if not is_reserved(path) and self.matcher(stream).matches(path):
            others = self.co_owners(stream, path)
            if not others:
                return None
            return (
                f"owned by {' and '.join([stream, *others])}: two owners",
                "streams.yaml gives it two owners; ask your human to fix that",
            )
        kind, other = self.owner(path)
        if kind == "stream":
            return (f"owned by {other}", f"leave it to stream {other}")
        if kind == "progress":
            return (f"progress file of {other}", f"only stream {other} writes it (`streams progress` in its worktree)")
        if kind == "reserved":
            if path == CONFIG_FILE:
                return (
                    "streams.yaml belongs to no stream",
                    f"only your human changes it, on {self.base}; ask them",
                )
            return (f"{PROGRESS_DIR}/ belongs to no stream", "a stream may change only its own progress file there")
        if kind == "shared":
            held = lease_of(path)
            lock = f"streams lock {shell_quote(path)}"
            if held is None:
                return (f"shared: run `{lock}`", "take the lock, then commit again")
            holder, until = held
            if holder == stream:
                return None
            import time

            clock = time.strftime("%H:%M", time.localtime(until))
            return (f"shared: held by {holder} until {clock}", f"wait until {holder} releases it, then `{lock}`")
        if self.unowned == "allow":
            return None
        return ("unowned", "no stream owns it; ask your human to give it an owner in streams.yaml")

    def check(
        self,
        stream: str,
        changes: Iterable[tuple[str, str]],
        lease_of: Callable[[str], tuple[str, float] | None],
        commit: str | None = None,
    ) -> list[Finding]:
        """Every change ``(status, path)`` that ``stream`` may not make, each with reason and fix."""
        found: list[Finding] = []
        seen: set[str] = set()
        mine = self.matcher(stream).matches
        alone = not self.rivals(stream)  # no other stream's pattern can reach a path of this one's
        progress = progress_path(stream)
        for status, path in changes:
            if path == progress or (alone and mine(path) and not is_reserved(path)):  # the common case
                continue
            if path in seen:
                continue
            seen.add(path)
            verdict = self.judge(stream, path, lease_of)
            if verdict is not None:
                found.append((path, verdict[0], verdict[1], status, commit))
        return found


def is_reserved(path: str) -> bool:
    """streams' own files, which no pattern can give a stream: ``streams.yaml`` and ``.streams/``
    (a stream writes only its own progress file there, whatever its patterns say)."""
    return path in (CONFIG_FILE, PROGRESS_DIR) or path.startswith(PROGRESS_DIR + "/")


_REGEX_META = frozenset(".^$*+?{}[]\\|()")


def literal_head(kind: str, arg: str) -> str:
    """A string every path a rule matches starts with ("" when it may match anywhere)."""
    if kind in ("prefix", "path", "child"):
        return arg
    if kind == "regex" and arg.startswith("^") and not arg.startswith("^(?:.+/)?"):
        head = ""
        for ch in arg[1:]:
            if ch in _REGEX_META:
                break
            head += ch
        return head
    return ""  # all, seg, dirseg, segsuffix: floating


# --- messages --------------------------------------------------------------------------------------


def describe_owner(kind: str, stream: str | None) -> str:
    """An owner (``CompiledConfig.owner``) in words, for messages."""
    if kind == "stream":
        return f"owned by {stream}"
    if kind == "progress":
        return f"progress file of {stream}"
    if kind == "shared":
        return "shared (take its lock with `streams lock`)"
    if kind == "reserved":
        return "belongs to no stream (streams configuration)"
    return "unowned"


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")


def shell_quote(path: str) -> str:
    """``path`` as a shell word (like ``shlex.quote``, without importing ``re``)."""
    if path and all(c in _SAFE for c in path) and not path.startswith("-"):
        return path
    if path.startswith("-"):
        path = "./" + path
        if all(c in _SAFE for c in path):
            return path
    return "'" + path.replace("'", "'\"'\"'") + "'"


def show(path: str) -> str:
    """``path`` for a message: C-quoted like git when it holds control characters, quotes or backslashes."""
    if not any(c < " " or c in '"\\\x7f' for c in path):
        return path
    out = []
    for c in path:
        if c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c in '"\\':
            out.append("\\" + c)
        elif c < " " or c == "\x7f":
            out.append(f"\\{ord(c):03o}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def format_findings(findings: Sequence[Finding], *, with_commit: bool = False) -> list[str]:
    """One line per offending path: status, path, reason, fix; aligned."""
    rows = []
    for path, reason, fix, status, commit in findings:
        lead = f"{commit[:12]} " if with_commit and commit else ""
        rows.append((f"{lead}{status or '?'} {show(path)}", f"{reason} ({fix})"))
    width = min(max((len(a) for a, _ in rows), default=0), 60)
    return [f"  {a.ljust(width)}  {b}" for a, b in rows]
