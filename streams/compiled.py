"""The scope rules, and the compiled configuration the git hooks read. Standard library only.

The hooks must start in milliseconds, so they never parse ``streams.yaml`` (PyYAML) or compile
patterns (pathspec). Whenever the full code loads the configuration (``streams.workspace.
load_config``) it refreshes a compiled copy in ``<git-common-dir>/streams/cache/compiled.marshal``:
every stream's patterns as ``streams.patterns`` rules, the shared list, base, remote, branch prefix
and the unowned policy, plus the exact bytes of the ``streams.yaml`` it was compiled from. A hook
compares those bytes with the file on disk (one read, no hashing library) and falls back to the
full loader when they differ, so an edited configuration is never enforced stale.

``branch-prefix`` next to it holds the branch prefix alone, for the ``reference-transaction``
shell shim, which filters its input before any Python starts.

The rules of DESIGN "Scope enforcement" live here too (``CompiledConfig.judge``), so that the hooks,
``streams verify``, ``streams watch`` and ``streams status`` can never disagree.
"""

from __future__ import annotations

import marshal
import os
import sys

from streams.patterns import Matcher

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

FORMAT = 1
CACHE_DIR = ("streams", "cache")
CACHE_FILE = "compiled.marshal"
PREFIX_FILE = "branch-prefix"
FAST_DIR = "fast"  # the pre-commit shim's shell fast path: see shell_rules
CONFIG_FILE = "streams.yaml"
PROGRESS_DIR = ".streams"
ZERO_OID = "0" * 40

# (kind, arg, include, pattern as written in streams.yaml)
PatternRule = tuple[str, str, bool, str]
# One offending change: (path, reason, fix, status letter, commit or None)
Finding = tuple[str, str, str, str, "str | None"]


def cache_dir(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(common_dir), *CACHE_DIR)


def cache_file(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(cache_dir(common_dir), CACHE_FILE)


def prefix_file(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(cache_dir(common_dir), PREFIX_FILE)


def progress_path(name: str) -> str:
    return f"{PROGRESS_DIR}/stream-{name}.md"


class CompiledConfig:
    """What the hooks need of a ``Config``, with patterns already compiled into rules."""

    __slots__ = (
        "_matchers",
        "base",
        "branch_prefix",
        "config_path",
        "remote",
        "shared_rules",
        "source",
        "stream_rules",
        "unowned",
    )

    def __init__(
        self,
        *,
        config_path: str,
        source: bytes,
        base: str,
        remote: str | None,
        branch_prefix: str,
        unowned: str,
        streams: Sequence[tuple[str, Sequence[PatternRule]]],
        shared: Sequence[PatternRule],
    ) -> None:
        self.config_path = config_path
        self.source = source
        self.base = base
        self.remote = remote
        self.branch_prefix = branch_prefix
        self.unowned = unowned
        self.stream_rules: dict[str, tuple[PatternRule, ...]] = {n: tuple(r) for n, r in streams}
        self.shared_rules: tuple[PatternRule, ...] = tuple(shared)
        self._matchers: dict[str | None, Matcher] = {}

    # --- serialisation ---------------------------------------------------------------------------

    def to_data(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "python": sys.version_info[:2],
            "config_path": self.config_path,
            "source": self.source,
            "base": self.base,
            "remote": self.remote,
            "branch_prefix": self.branch_prefix,
            "unowned": self.unowned,
            "streams": [(n, list(r)) for n, r in self.stream_rules.items()],
            "shared": list(self.shared_rules),
        }

    @classmethod
    def from_data(cls, data: dict[str, object]) -> CompiledConfig:
        return cls(
            config_path=str(data["config_path"]),
            source=data["source"],  # type: ignore[arg-type]
            base=str(data["base"]),
            remote=data["remote"],  # type: ignore[arg-type]
            branch_prefix=str(data["branch_prefix"]),
            unowned=str(data["unowned"]),
            streams=[(n, [tuple(r) for r in rules]) for n, rules in data["streams"]],  # type: ignore[attr-defined]
            shared=[tuple(r) for r in data["shared"]],  # type: ignore[attr-defined]
        )

    def is_fresh(self) -> bool:
        """Whether ``streams.yaml`` still holds exactly the bytes this was compiled from."""
        try:
            with open(self.config_path, "rb") as fh:
                return fh.read() == self.source
        except OSError:
            return False

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

    def owner(self, path: str) -> tuple[str, str | None]:
        """``(kind, stream)``; kind is stream, progress, shared, reserved or unowned."""
        if path.startswith(PROGRESS_DIR + "/") or path == PROGRESS_DIR:
            rest = path[len(PROGRESS_DIR) + 1 :]
            if rest.startswith("stream-") and rest.endswith(".md") and "/" not in rest:
                name = rest[len("stream-") : -len(".md")]
                if name in self.stream_rules:
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
        if self.matcher(stream).matches(path):
            return None
        kind, other = self.owner(path)
        if kind == "stream":
            return (f"owned by {other}", f"leave it to stream {other}")
        if kind == "progress":
            return (f"progress file of {other}", f"only stream {other} writes it (`streams progress` in its worktree)")
        if kind == "reserved":
            if path == CONFIG_FILE:
                return (
                    "streams.yaml belongs to no stream",
                    f"change it on {self.base} in the main worktree",
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
        return ("unowned", "add it to a stream's owns in streams.yaml (or set `unowned: allow`)")

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
        progress = progress_path(stream)
        for status, path in changes:
            if path == progress or mine(path):  # the common case, without the full judgement
                continue
            if path in seen:
                continue
            seen.add(path)
            verdict = self.judge(stream, path, lease_of)
            if verdict is not None:
                found.append((path, verdict[0], verdict[1], status, commit))
        return found


# --- the cache on disk ---------------------------------------------------------------------------


def load(common_dir: str | os.PathLike[str]) -> CompiledConfig | None:
    """The cached compiled configuration, or None (missing, unreadable, other format)."""
    try:
        with open(cache_file(common_dir), "rb") as fh:
            data = marshal.loads(fh.read())  # marshal.load(fh) reads in small pieces: 10x slower
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        return CompiledConfig.from_data(data)
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
        return None


_SHELL_KINDS = ("prefix", "path", "child")  # rules the pre-commit shim can decide with `case`
_REGEX_META = frozenset(".^$*+?{}[]\\|()")


def _head(kind: str, arg: str) -> str:
    """A string every path the rule matches starts with ("" when it may match anywhere)."""
    if kind in _SHELL_KINDS:
        return arg
    if kind == "regex" and arg.startswith("^") and not arg.startswith("^(?:.+/)?"):
        head = ""
        for ch in arg[1:]:
            if ch in _REGEX_META:
                break
            head += ch
        return head
    return ""  # all, seg, dirseg, segsuffix: floating


def shell_rules(cc: CompiledConfig) -> dict[str, tuple[tuple[str, str], ...]]:
    """Per stream, the ``(kind, arg)`` rules the pre-commit shim may decide alone, without Python.

    A staged path that one of its stream's rules matches is that stream's (``owner``) when the
    stream has no negated pattern and no other stream has a pattern that could match a path the
    rule matches: every path under the rule starts with its ``arg``, and a pattern of another
    stream can match such a path only if its literal head (see ``_head``) and ``arg`` are prefixes
    one of the other. Rules that fail this are left out, so the shim hands those paths to the full
    check; so are args the shell could misread (quotes, newlines, spaces at either end).
    """
    heads: list[tuple[str, str]] = [
        (name, _head(kind, arg))
        for name, rules in cc.stream_rules.items()
        for kind, arg, include, _ in rules
        if include
    ]
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, rules in cc.stream_rules.items():
        if any(not include for _, _, include, _ in rules):
            continue
        fast = []
        for kind, arg, _, _ in rules:
            if (
                kind not in _SHELL_KINDS
                or not arg
                or arg != arg.strip()
                or "\n" in arg
                or arg.startswith(('"', PROGRESS_DIR + "/", PROGRESS_DIR + "\n"))
                or arg in (PROGRESS_DIR, CONFIG_FILE)
            ):
                continue
            if all(other == name or not (arg.startswith(h) or h.startswith(arg)) for other, h in heads):
                fast.append((kind, arg))
        if fast:
            out[name] = tuple(fast)
    return out


def save(common_dir: str | os.PathLike[str], cc: CompiledConfig) -> None:
    """Write the cache, the branch-prefix file and the shell fast path (temp file + ``os.replace``
    each). The fast path's copy of streams.yaml is emptied first and written last, so a shim never
    trusts prefix files that are being rewritten."""
    folder = cache_dir(common_dir)
    fast = os.path.join(folder, FAST_DIR)
    os.makedirs(fast, exist_ok=True)
    _replace(os.path.join(fast, "source"), b"")
    _replace(os.path.join(folder, CACHE_FILE), marshal.dumps(cc.to_data()))
    _replace(os.path.join(folder, PREFIX_FILE), cc.branch_prefix.encode() + b"\n")
    rules = shell_rules(cc)
    for entry in os.listdir(fast):
        if entry.startswith("s-") and entry[2:] not in rules:
            os.unlink(os.path.join(fast, entry))
    for name, pairs in rules.items():
        text = "".join(f"{kind} {arg}\n" for kind, arg in pairs)
        _replace(os.path.join(fast, f"s-{name}"), text.encode("utf-8", "surrogateescape"))
    _replace(os.path.join(fast, "config"), os.fsencode(cc.config_path) + b"\n")
    if rules:
        _replace(os.path.join(fast, "source"), cc.source)


def _replace(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:  # noqa: SIM105 - contextlib costs the hooks an import
            os.unlink(tmp)
        except OSError:
            pass
        raise


def refresh(common_dir: str | os.PathLike[str], config: object) -> CompiledConfig:
    """The compiled form of ``config`` (a ``streams.config.Config``), rewriting the cache if stale.

    Full code only (it imports pathspec through ``streams.ownership`` when it must compile). A cache
    that cannot be written (read-only repository) is not an error: the hooks then use the loader.
    """
    path = os.fspath(config.path)  # type: ignore[attr-defined]
    try:
        with open(path, "rb") as fh:
            source = fh.read()
    except OSError:
        source = b""
    cc = load(common_dir)
    if (
        cc is not None
        and cc.config_path == path
        and cc.source == source
        and source
        and _prefix_matches(common_dir, cc.branch_prefix)
    ):
        return cc
    from streams.ownership import compile_config

    cc = compile_config(config, source=source, config_path=path)  # type: ignore[arg-type]
    if source:
        try:  # noqa: SIM105
            save(common_dir, cc)
        except OSError:
            pass
    return cc


def _prefix_matches(common_dir: str | os.PathLike[str], prefix: str) -> bool:
    try:
        with open(prefix_file(common_dir), "rb") as fh:
            return fh.read() == prefix.encode() + b"\n"
    except OSError:
        return False


# --- git output ----------------------------------------------------------------------------------

# `git log` arguments that list, for each commit, its changes against each parent, NUL-separated,
# immune to the user's configuration (renames, relative paths, signatures, merge display).
LOG_ARGS = (
    "log",
    "--format=%x01%H %P",
    "-z",
    "--name-status",
    "--no-renames",
    "--diff-merges=combined",
    "--root",
    "--no-relative",
    "--no-show-signature",
    "--no-color",
    "--no-ext-diff",
    "--ignore-submodules=none",
)
DIFF_ARGS = ("--name-status", "-z", "--no-renames", "--no-relative", "--no-ext-diff", "--ignore-submodules=none")


def parse_name_status(data: bytes) -> list[tuple[str, str]]:
    """``--name-status -z --no-renames`` output -> ``[(status, path)]`` (paths surrogate-escaped)."""
    parts = data.split(b"\0")
    out: list[tuple[str, str]] = []
    i = 0
    n = len(parts) - 1  # the output ends with NUL: the last part is empty
    while i < n:
        status = parts[i].strip(b"\n")
        if not status:
            i += 1
            continue
        out.append((status[:1].decode("ascii", "replace"), parts[i + 1].decode("utf-8", "surrogateescape")))
        i += 2
    return out


def parse_log(data: bytes) -> list[tuple[str, list[tuple[str, str]]]]:
    """``git log LOG_ARGS`` output -> ``[(commit, [(status, path)])]``, oldest first.

    A merge counts only the paths it changes against *every* parent (``--diff-merges=combined``):
    what it brought in from one side is that side's change, not the merge's; an evil merge's own
    edits still show.
    """
    parts = data.split(b"\0")
    result: list[tuple[str, list[tuple[str, str]]]] = []
    i = 0
    n = len(parts)
    while i < n:
        tok = parts[i].lstrip(b"\n")
        i += 1
        if not tok:
            continue
        if tok.startswith(b"\x01"):
            result.append((tok[1:].decode("ascii").split()[0], []))
            continue
        if i < n and result:
            result[-1][1].append((tok[:1].decode("ascii", "replace"), parts[i].decode("utf-8", "surrogateescape")))
            i += 1
    result.reverse()
    return result


# --- messages --------------------------------------------------------------------------------------

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
