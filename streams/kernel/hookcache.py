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
shim's shell fast path (``shell_rules``), valid while the loose ref file named in ``fast/base``
holds the commit written next to it.
"""

from __future__ import annotations

import contextlib
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


_SHELL_KINDS = ("prefix", "path", "child")  # rules the pre-commit shim can decide with `case`


def shell_rules(cc: CompiledConfig) -> dict[str, tuple[tuple[str, str], ...]]:
    """Per stream, the ``(kind, arg)`` rules the pre-commit shim may decide alone, without Python.

    A staged path that one of its stream's rules matches is that stream's (``owner``) when the
    stream has no negated pattern and no other stream has a pattern that could match a path the
    rule matches: every path under the rule starts with its ``arg``, and a pattern of another
    stream can match such a path only if its literal head (see ``rules.literal_head``) and ``arg`` are prefixes
    one of the other. Rules that fail this are left out, so the shim hands those paths to the full
    check; so are args the shell could misread (quotes, newlines, spaces at either end).
    """
    heads: list[tuple[str, str]] = [
        (name, literal_head(kind, arg))
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
    each). The fast path's ``base`` (the base ref and the commit the rules hold for) is emptied
    first and written last, so a shim never trusts rule files that are being rewritten."""
    from streams.kernel.atomic import replace_file  # here: a hook that only reads never imports it

    folder = cache_dir(common_dir)
    fast = os.path.join(folder, FAST_DIR)
    os.makedirs(fast, exist_ok=True)
    replace_file(os.path.join(fast, "base"), b"")
    for stale in ("source", "config"):  # the fast path of format 1, keyed on the working copy
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(fast, stale))
    replace_file(os.path.join(folder, HOOKCACHE_FILE), marshal.dumps(cc.to_data()))
    replace_file(os.path.join(folder, PREFIX_FILE), cc.branch_prefix.encode() + b"\n")
    replace_file(os.path.join(folder, BASE_REFS_FILE), " ".join(cc.base_refs).encode() + b"\n")
    rules = shell_rules(cc)
    for entry in os.listdir(fast):
        if entry.startswith("s-") and entry[2:] not in rules:
            os.unlink(os.path.join(fast, entry))
    for name, pairs in rules.items():
        text = "".join(f"{kind} {arg}\n" for kind, arg in pairs)
        replace_file(os.path.join(fast, f"s-{name}"), text.encode("utf-8", "surrogateescape"))
    if rules:
        replace_file(os.path.join(fast, "base"), _base_line(cc))


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
