"""The compiled configuration on disk, for the git hooks. Standard library only.

The hooks must start in milliseconds, so they never parse ``streams.yaml`` (PyYAML) or compile
patterns (pathspec). Whenever the full code loads the configuration in force (``streams.yaml`` as
committed on the base, ``streams.workspace.load_config``) and it passes its checks, it refreshes a
compiled copy (``streams.ownership.refresh``) in ``<git-common-dir>/streams/cache/compiled.marshal``,
together with the blob it was compiled from and a commit of the base that holds that blob. A hook
reads the base ref's file: the same commit means the same configuration (no git process); a moved
base costs one ``git rev-parse`` for the blob; another blob sends it to the full loader, so a
changed configuration is never enforced stale, and an uncommitted edit is never enforced at all.

``branch-prefix`` next to it holds the branch prefix alone, for the ``reference-transaction``
shell shim, which filters its input before any Python starts; ``fast/`` holds the pre-commit
shim's shell fast path (``r-<stream>``: ``shell_rules``; ``floating``: ``floating_guards``), valid
while the loose ref file named in ``fast/base`` holds the commit written next to it.
"""

from __future__ import annotations

import marshal
import os

from streams.kernel.paths import (
    BASE_REFS_FILE,
    CONFIG_FILE,
    FAST_DIR,
    HOOKCACHE_FILE,
    PREFIX_FILE,
    PROGRESS_DIR,
    cache_dir,
)
from streams.kernel.rules import FORMAT, CompiledConfig, literal_head


def cache_file(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(cache_dir(common_dir), HOOKCACHE_FILE)


def prefix_file(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(cache_dir(common_dir), PREFIX_FILE)


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


RULES_PREFIX = "r-"  # fast/r-<stream>: shell_rules
FLOATING_FILE = "floating"  # fast/floating: floating_guards
_SHELL_KINDS = ("prefix", "path", "child")  # rules the pre-commit shim can decide with `case`
RIVALS_PER_RULE = 16  # a rule that more rival patterns could reach is left to the full check


def shell_rules(cc: CompiledConfig) -> dict[str, tuple[tuple[str, str], ...]]:
    """Per stream, what the pre-commit shim needs to decide alone, without Python: ``(kind, arg)``
    pairs, where kind is ``prefix``, ``path`` or ``child`` (a rule of the stream: a path it matches
    is the stream's, unless a guard says otherwise) or ``guard`` (a ``case`` glob,
    ``shellglob.covers``, of another stream's anchored pattern that could match such a path: a path
    a guard matches goes to the full check).

    A stream with a negated pattern has none; so have args the shell could misread (quotes,
    newlines, spaces at either end) and streams' own paths. The rival patterns that could reach a
    rule are those whose literal head (``rules.literal_head``) and the rule's arg are prefixes one
    of the other, looked up in a sorted table of heads (no stream is compared with every other); a
    rule that more than ``RIVALS_PER_RULE`` of them could reach is left out. Floating patterns (an
    empty head: ``*.md``, ``README``, ``build/``) could reach any path: they are not here but in
    ``floating_guards``, once for all streams.
    """
    from bisect import bisect_left

    from streams.kernel.shellglob import covers  # here: a hook that only reads never imports it

    by_head: dict[str, list[tuple[str, str, str]]] = {}  # head -> (stream, kind, arg) of include rules
    for name, rules in cc.stream_rules.items():
        for kind, arg, include, _ in rules:
            head = literal_head(kind, arg)
            if include and head:
                by_head.setdefault(head, []).append((name, kind, arg))
    heads = sorted(by_head)

    def rivals(name: str, arg: str) -> list[tuple[str, str]] | None:
        """The other streams' anchored rules that could reach a path under ``arg``; None: too many."""
        related = [arg[:i] for i in range(1, len(arg)) if arg[:i] in by_head]  # heads arg starts with
        at = bisect_left(heads, arg)
        while at < len(heads) and heads[at].startswith(arg):  # heads starting with arg (arg itself too)
            related.append(heads[at])
            at += 1
        found: list[tuple[str, str]] = []
        for head in related:
            for other, kind, rival in by_head[head]:
                if other != name:
                    if len(found) == RIVALS_PER_RULE:
                        return None
                    found.append((kind, rival))
        return found

    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, rules in cc.stream_rules.items():
        if any(not include for _, _, include, _ in rules):
            continue
        fast: list[tuple[str, str]] = []
        guards: dict[str, None] = {}  # ordered, without repeats
        for kind, arg, _, _ in rules:
            found = rivals(name, arg) if _shell_safe(kind, arg) else None
            if found is None:
                continue
            fast.append((kind, arg))
            guards.update((g, None) for k, a in found for g in covers(k, a))
        if fast:
            out[name] = (*fast, *(("guard", g) for g in guards))
    return out


def floating_guards(cc: CompiledConfig) -> tuple[tuple[str, str], ...]:
    """``(stream, glob)``: every stream's floating include patterns (an empty literal head) as
    ``case`` globs (``shellglob.covers``). The pre-commit shim of a stream sends a staged path that
    another stream's glob matches to the full check."""
    from streams.kernel.shellglob import covers

    out: dict[tuple[str, str], None] = {}
    for name, rules in cc.stream_rules.items():
        for kind, arg, include, _ in rules:
            if include and not literal_head(kind, arg):
                out.update(((name, g), None) for g in covers(kind, arg))
    return tuple(out)


def _shell_safe(kind: str, arg: str) -> bool:
    """Whether the shim may decide paths by rule ``(kind, arg)``: a kind it tests with ``case``,
    an arg it reads back intact, none of streams' own paths."""
    return (
        kind in _SHELL_KINDS
        and bool(arg)
        and arg == arg.strip()
        and "\n" not in arg
        and not arg.startswith(('"', PROGRESS_DIR + "/"))
        and arg not in (PROGRESS_DIR, CONFIG_FILE)
    )


def save(common_dir: str | os.PathLike[str], cc: CompiledConfig) -> None:
    """Write the cache, the branch-prefix file and the shell fast path (temp file + ``os.replace``
    each). The fast path's ``base`` (the base ref and the commit the rules hold for) is emptied
    first and written last, so a shim never trusts rule files that are being rewritten."""
    from streams.kernel.atomic import replace_file  # here: a hook that only reads never imports it

    folder = cache_dir(common_dir)
    fast = os.path.join(folder, FAST_DIR)
    os.makedirs(fast, exist_ok=True)
    replace_file(os.path.join(fast, "base"), b"")
    import contextlib  # here: a hook or a quick command that only reads never imports it

    for stale in ("source", "config"):  # the fast path of format 1, keyed on the working copy
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(fast, stale))
    replace_file(os.path.join(folder, HOOKCACHE_FILE), marshal.dumps(cc.to_data()))
    replace_file(os.path.join(folder, PREFIX_FILE), cc.branch_prefix.encode() + b"\n")
    replace_file(os.path.join(folder, BASE_REFS_FILE), " ".join(cc.base_refs).encode() + b"\n")
    rules = shell_rules(cc)
    for entry in os.listdir(fast):
        # s-<stream>: the rules of shims from before the guards, which would read them without the
        # guards: removed, so such a shim asks Python (`streams hooks install` updates it).
        if entry.startswith("s-") or (entry.startswith(RULES_PREFIX) and entry[len(RULES_PREFIX) :] not in rules):
            os.unlink(os.path.join(fast, entry))
    for name, pairs in rules.items():
        replace_file(os.path.join(fast, RULES_PREFIX + name), _lines(pairs))
    replace_file(os.path.join(fast, FLOATING_FILE), _lines(floating_guards(cc)))
    if rules:
        replace_file(os.path.join(fast, "base"), _base_line(cc))


def _lines(pairs: tuple[tuple[str, str], ...]) -> bytes:
    return "".join(f"{a} {b}\n" for a, b in pairs).encode("utf-8", "surrogateescape")


def move_base(common_dir: str | os.PathLike[str], cc: CompiledConfig, commit: str) -> None:
    """Record that the base moved to ``commit`` with ``streams.yaml`` unchanged (same blob): the
    compiled rules stand, only the commit they hold for changes."""
    from streams.kernel.atomic import replace_file

    cc.base_commit = commit
    folder = cache_dir(common_dir)
    replace_file(os.path.join(folder, HOOKCACHE_FILE), marshal.dumps(cc.to_data()))
    fast = os.path.join(folder, FAST_DIR, "base")
    if os.path.exists(fast):
        replace_file(fast, _base_line(cc))


def _base_line(cc: CompiledConfig) -> bytes:
    return f"{cc.base_ref} {cc.base_commit}\n".encode("utf-8", "surrogateescape")


def prefix_matches(common_dir: str | os.PathLike[str], prefix: str) -> bool:
    """Whether the branch-prefix file holds ``prefix`` (the shim reads it, not the marshal cache)."""
    try:
        with open(prefix_file(common_dir), "rb") as fh:
            return fh.read() == prefix.encode() + b"\n"
    except OSError:
        return False
