"""``streams.yaml`` (version 1): parsing into frozen dataclasses, and validation.

Every error names the file, the line and the key, and says what to do. Checks that need the
repository's tracked files (overlapping ownership, patterns that match nothing) live in
``streams.ownership``; this module needs only the text.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from streams.git import RefName, branch_ref
from streams.graph import find_cycle
from streams.kernel.errors import ConfigError, UnknownStreamError
from streams.kernel.paths import CONFIG_FILE, PROGRESS_DIR, progress_path
from streams.runconfig import STREAM_RUN_KEYS, RunSettings, StreamRun, check_pools, read_run, read_stream_run
from streams.yamlreader import Fields, Reader

__all__ = ["Config", "ConfigError", "Origin", "Stream", "load", "parse", "progress_path"]

CONFIG_NAME = CONFIG_FILE

TOP_KEYS = ("version", "base", "remote", "branch_prefix", "worktree_root", "unowned", "shared", "streams", "run")
STREAM_KEYS = ("description", "owns", "depends", "parallel", "touches", "command", *STREAM_RUN_KEYS)

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_PREFIX_RE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._-]*/)+\Z")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a stream name (it becomes a branch, a directory and a file name)."""
    if not name:
        return "a stream name cannot be empty"
    if len(name) > 100:
        return f"stream name {name[:20]!r}… is longer than 100 characters"
    if name == "HEAD":
        return "'HEAD' cannot be a stream name (git reserves it)"
    if not _NAME_RE.match(name) or ".." in name or name.endswith((".lock", ".")):
        return (
            f"{name!r} is not a valid stream name: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (no '/', spaces, '..', or a '.lock' ending)"
        )
    return None


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an ownership pattern, or None."""
    if not pattern.strip():
        return "an empty pattern matches nothing; remove it"
    body = pattern[1:] if pattern.startswith("!") else pattern
    if not body.strip():
        return f"pattern {pattern!r} takes back nothing (a '!' needs a pattern after it); remove it"
    segments = body.strip("/").split("/")
    if ".." in segments or "." in segments:
        return f"pattern {pattern!r} escapes the repository ('.' and '..' segments are not allowed); write it relative to the repository root"
    if body.startswith(".git/") or body in (".git", "/.git") or body.startswith("/.git/"):
        return f"pattern {pattern!r} points into .git; git's own files cannot be owned"
    head = body.lstrip("/")
    if head in (CONFIG_FILE, PROGRESS_DIR) or head.startswith(PROGRESS_DIR + "/"):
        return (
            f"pattern {pattern!r} names only streams' own files ({CONFIG_FILE}, {PROGRESS_DIR}/), "
            "which no stream may own; remove it"
        )
    if "[" in body or "\\" in body:  # only brackets and escapes can make a pattern that does not compile
        return _compile_problem(pattern)
    return None


def _compile_problem(pattern: str) -> str | None:
    """Why pathspec (or the regex it writes) cannot compile ``pattern``: ``[z-a]``, a trailing ``\\``."""
    import pathspec

    try:
        for compiled in pathspec.PathSpec.from_lines("gitignore", [pattern]).patterns:
            regex = getattr(compiled, "regex", None)
            if regex is not None:
                re.compile(regex.pattern)
    except (ValueError, re.error) as exc:  # pathspec's GitIgnorePatternError is a ValueError
        why = re.sub(r" at position \d+", "", str(exc).splitlines()[0])
        return f"pattern {pattern!r} is not a valid gitignore pattern ({why}); fix it"
    return None


@dataclass(frozen=True)
class Stream:
    name: str
    description: str = ""
    owns: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()
    parallel: bool = True
    touches: tuple[str, ...] = ()
    command: str | None = None
    line: int = 0
    owns_lines: tuple[int, ...] = ()
    run: StreamRun = field(default_factory=StreamRun)

    @property
    def task(self) -> str:
        return self.run.task

    @property
    def progress_path(self) -> str:
        return progress_path(self.name)


@dataclass(frozen=True)
class Origin:
    """Where the configuration in force came from: ``streams.yaml`` as committed on the base."""

    source: bytes  # the committed bytes
    blob: str  # their blob
    commit: str  # the base's commit they were read from
    tree: str  # that commit's tree (the tracked files the ownership checks run against)


@dataclass(frozen=True)
class Config:
    path: Path  # the streams.yaml file
    base: str
    streams: tuple[Stream, ...]
    version: int = 1
    remote: str | None = None
    branch_prefix: str = "streams/"
    worktree_root: str = "../{repo}.streams"
    unowned: str = "reject"
    shared: tuple[str, ...] = ()
    shared_lines: tuple[int, ...] = ()
    merge_drivers: tuple[tuple[str, str], ...] = ()  # (shared pattern, git merge driver), e.g. union
    run: RunSettings = field(default_factory=RunSettings)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    origin: Origin | None = field(default=None, compare=False)  # None: parsed from a working copy

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams)

    @functools.cached_property
    def _by_name(self) -> dict[str, Stream]:
        """Streams by name (computed once: select and stream_of_ref stay linear at 1,000 streams)."""
        return {s.name: s for s in self.streams}

    def stream(self, name: str) -> Stream:
        found = self._by_name.get(name)
        if found is not None:
            return found
        known = ", ".join(self.names) or "none"
        raise UnknownStreamError(f"unknown stream {name!r} (known streams: {known}; see {self.path.name})")

    def select(self, names: tuple[str, ...] | list[str]) -> tuple[Stream, ...]:
        """The named streams (all when ``names`` is empty), failing on the first unknown one."""
        if not names:
            return self.streams
        by_name = self._by_name
        unknown = [n for n in names if n not in by_name]
        if unknown:
            known = ", ".join(self.names) or "none"
            which = ", ".join(repr(n) for n in unknown)
            raise UnknownStreamError(
                f"unknown stream{'s' if len(unknown) > 1 else ''} {which} (known streams: {known}; see {self.path.name})"
            )
        seen: dict[str, Stream] = {}
        for n in names:
            seen.setdefault(n, by_name[n])
        return tuple(seen.values())

    def branch(self, name: str) -> str:
        """Stream ``name``'s branch, e.g. ``streams/api``."""
        return f"{self.branch_prefix}{name}"

    def branch_ref(self, name: str) -> RefName:
        """Stream ``name``'s branch as a full ref, e.g. ``refs/heads/streams/api``."""
        return branch_ref(self.branch(name))

    def branch_ref_prefix(self) -> str:
        """What every stream branch's full ref starts with, e.g. ``refs/heads/streams/``."""
        return branch_ref(self.branch_prefix)

    def remote_branch_ref(self, name: str) -> RefName | None:
        """Stream ``name``'s remote-tracking ref (``refs/remotes/<remote>/<prefix><name>``), or None."""
        return RefName(f"refs/remotes/{self.remote}/{self.branch_prefix}{name}") if self.remote else None

    def base_ref(self) -> RefName:
        """The base branch as a full ref (the branch, even when a tag has the same name)."""
        return branch_ref(self.base)

    def upstream_ref(self) -> RefName:
        """What streams rebase onto: ``<remote>/<base>`` when a remote is set, else the base."""
        return RefName(f"refs/remotes/{self.remote}/{self.base}") if self.remote else self.base_ref()

    def upstream_name(self) -> str:
        """``upstream_ref`` as people write it: ``origin/main`` or ``main``."""
        return f"{self.remote}/{self.base}" if self.remote else self.base

    def base_refs(self) -> tuple[RefName, ...]:
        """The refs whose commits are never a stream's own: the base, locally and on the remote."""
        return (self.base_ref(), self.upstream_ref()) if self.remote else (self.base_ref(),)

    def stream_of_ref(self, ref: str) -> str | None:
        """``refs/heads/<prefix>X`` -> ``X`` when X is a configured stream, else None."""
        head = self.branch_ref_prefix()
        name = ref[len(head) :] if ref.startswith(head) else None
        return name if name is not None and name in self._by_name else None

    def worktree_dir(self, main_root: Path) -> Path:
        return Path(os.path.normpath(main_root / self.worktree_root.replace("{repo}", main_root.name)))

    def worktree_path(self, main_root: Path, name: str) -> Path:
        return self.worktree_dir(main_root) / name


# --- parsing -------------------------------------------------------------------------------------


def load(path: Path, *, display: str | None = None) -> Config:
    """Read and validate ``path``. Raises ``ConfigError`` with file, line, key and fix."""
    display = display or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{display} not found at {path.parent} (run `streams init` to write one)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{display}: cannot read {path}: {exc.strerror or exc}") from None
    return parse(text, path=path, display=display)


def parse(text: str, *, path: Path, display: str | None = None) -> Config:
    """Parse and validate the text of a streams.yaml. Raises ``ConfigError`` with file, line, key and fix."""
    display = display or path.name
    r = Reader(display)
    root = _compose(text, display)
    top = r.mapping(root, "", TOP_KEYS, "streams.yaml holds keys such as version, base and streams")
    _read_version(r, root, top)
    base = _read_base(r, root, top)
    remote = _read_remote(r, top)
    prefix = _read_branch_prefix(r, top)
    worktree_root = _read_worktree_root(r, top)
    unowned = _read_unowned(r, top)
    shared = _read_shared(r, top)
    streams = _read_streams(r, top)
    run = read_run(r, top)
    check_pools(display, run, [(st.name, st.run.pool, st.line) for st in streams])
    return Config(
        path=path,
        version=1,
        base=base,
        remote=remote,
        branch_prefix=prefix,
        worktree_root=worktree_root,
        unowned=unowned,
        shared=tuple(p for p, _, _ in shared),
        shared_lines=tuple(ln for _, ln, _ in shared),
        merge_drivers=tuple((p, m) for p, _, m in shared if m),
        streams=streams,
        run=run,
    )


_Top = Fields


# libyaml's loader, when PyYAML was built with it: 15x faster than the pure-Python one (0.03 ms
# against 0.45 ms for a 3-stream file), with the same nodes, tags (resolved by the same Python
# resolver) and line marks.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _compose(text: str, display: str) -> Node:
    """The YAML node tree of ``text`` (line numbers kept for the messages). libyaml reads it when
    it can; a text it refuses is read again by the pure-Python loader, whose messages (and limits)
    are the ones users see, so an error says the same with or without libyaml."""
    if _FAST_LOADER is not None:
        try:
            root: Node | None = yaml.compose(text, Loader=_FAST_LOADER)
        except Exception:  # noqa: BLE001 - any refusal: the pure-Python loader says why below
            pass
        else:
            if root is not None:
                return root
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{display}{line}: YAML syntax error: {problem} (fix the YAML syntax)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{display}: YAML error: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(
            f"{display}: nested too deeply to read (streams.yaml needs at most four levels); fix the brackets"
        ) from None
    if root is None:
        raise ConfigError(f"{display}: the file is empty (run `streams init --force` for a starter file)")
    return root


def _read_version(r: Reader, root: Node, top: _Top) -> None:
    if (v := top.get("version")) is None:
        raise r.fail(root, "version", "missing; add `version: 1` at the top")
    vnode = v[1]
    version = r.scalar(vnode) if isinstance(vnode, ScalarNode) else None
    if type(version) is not int or version != 1:  # not 1.0, not true
        raise r.fail(vnode, "version", f"unsupported version {version!r}; this streams reads version 1")


def _read_base(r: Reader, root: Node, top: _Top) -> str:
    if (b := top.get("base")) is None:
        raise r.fail(root, "base", "missing; name the integration branch, e.g. `base: main`")
    base = r.string(b[1], "base", "the integration branch, e.g. main")
    assert base is not None
    if not base or base.startswith("-") or any(c in base for c in " ~^:?*[\\\t\n") or ".." in base:
        raise r.fail(b[1], "base", f"{base!r} is not a valid branch name")
    return base


def _read_remote(r: Reader, top: _Top) -> str | None:
    if (rm := top.get("remote")) is None:
        return None
    remote = r.string(rm[1], "remote", "a remote name such as origin", allow_null=True)
    if remote is not None and (not remote or remote.startswith("-") or any(c in remote for c in " \t\n:")):
        raise r.fail(rm[1], "remote", f"{remote!r} is not a valid remote name")
    return remote


def _read_branch_prefix(r: Reader, top: _Top) -> str:
    if (bp := top.get("branch_prefix")) is None:
        return "streams/"
    prefix = r.string(bp[1], "branch_prefix", "e.g. streams/") or ""
    if (
        not _PREFIX_RE.match(prefix)
        or ".." in prefix
        or any(seg.endswith((".lock", ".")) for seg in prefix.split("/")[:-1])
    ):
        raise r.fail(
            bp[1], "branch_prefix", f"{prefix!r} must be one or more ref components ending in '/', e.g. streams/"
        )
    return prefix


def _read_worktree_root(r: Reader, top: _Top) -> str:
    if (wr := top.get("worktree_root")) is None:
        return "../{repo}.streams"
    worktree_root = r.string(wr[1], "worktree_root", "a directory, e.g. ../{repo}.streams") or ""
    stripped = worktree_root.replace("{repo}", "")
    if not worktree_root.strip() or "{" in stripped or "}" in stripped:
        raise r.fail(
            wr[1], "worktree_root", f"{worktree_root!r}: use a directory path; the only placeholder is {{repo}}"
        )
    segments = [s for s in worktree_root.replace("\\", "/").split("/") if s not in ("", ".")]
    if ".git" in segments or os.path.normpath(worktree_root) in ("/", "//"):
        raise r.fail(
            wr[1],
            "worktree_root",
            f"{worktree_root!r} puts worktrees {'inside .git' if '.git' in segments else 'at the file system root'}; "
            "use a directory of their own, e.g. ../{repo}.streams",
        )
    return worktree_root


def _read_unowned(r: Reader, top: _Top) -> str:
    if (un := top.get("unowned")) is None:
        return "reject"
    unowned = r.string(un[1], "unowned", "reject or allow") or ""
    if unowned not in ("reject", "allow"):
        raise r.fail(un[1], "unowned", f"{unowned!r} must be reject or allow")
    return unowned


MERGE_DRIVERS = ("union",)  # git's built-in drivers a shared file may name: union never conflicts
SHARED_KEYS = ("path", "merge")


def _read_shared(r: Reader, top: _Top) -> list[tuple[str, int, str | None]]:
    """Each shared entry as (pattern, line, merge driver or None): a path, or ``{path: P, merge: union}``."""
    if (sh := top.get("shared")) is None:
        return []
    node = sh[1]
    if isinstance(node, ScalarNode) and r.scalar(node) is None:
        return []
    if not isinstance(node, SequenceNode):
        raise r.fail(node, "shared", f"expected a list, got {r.kind(node)} (e.g. [pyproject.toml])")
    shared: list[tuple[str, int, str | None]] = []
    for item in node.value:
        line = item.start_mark.line + 1
        if isinstance(item, MappingNode):
            keys = r.mapping(item, "shared", SHARED_KEYS, "e.g. {path: CHANGELOG.md, merge: union}")
            if "path" not in keys:
                raise r.fail(item, "shared", "an entry needs `path:` (e.g. {path: CHANGELOG.md, merge: union})")
            pat = r.string(keys["path"][1], "shared.path", "a path, e.g. CHANGELOG.md") or ""
            driver = r.string(keys["merge"][1], "shared.merge", "union") if "merge" in keys else None
            if driver is not None and driver not in MERGE_DRIVERS:
                raise r.fail(
                    keys["merge"][1], "shared.merge", f"{driver!r}: the merge driver may be {', '.join(MERGE_DRIVERS)}"
                )
        elif isinstance(item, ScalarNode) and isinstance(r.scalar(item), str):
            pat, driver = r.scalar(item), None
        else:
            raise r.fail(item, "shared", f"expected a path or {{path: …, merge: union}}, found {r.kind(item)}")
        if (bad := pattern_problem(pat)) is not None:
            raise ConfigError(f"{r.display}:{line}: shared: {bad}")
        if pat.startswith("!"):
            raise ConfigError(
                f"{r.display}:{line}: shared: negated pattern {pat!r} is not supported here; list the shared paths"
            )
        shared.append((pat, line, driver))
    return shared


def _read_streams(r: Reader, top: _Top) -> tuple[Stream, ...]:
    """Every stream entry, each one's ``depends`` checked against the others, and no cycle."""
    display = r.display
    streams: list[Stream] = []
    st = top.get("streams")
    if st is not None and not (isinstance(st[1], ScalarNode) and r.scalar(st[1]) is None):
        smap = r.mapping(st[1], "streams", (), "each stream name maps to its settings")
        for name, (knode, vnode) in smap.items():
            stream, depends = _read_stream(r, name, knode, vnode)
            streams.append(stream)
            for dep, ln in depends:
                if dep not in smap:
                    known = ", ".join(smap) or "none"
                    raise ConfigError(
                        f"{display}:{ln}: streams.{name}.depends: unknown stream {dep!r} (known streams: {known})"
                    )
                if dep == name:
                    raise ConfigError(
                        f"{display}:{ln}: streams.{name}.depends: a stream cannot depend on itself; remove {dep!r}"
                    )
    by_name = {s.name: s for s in streams}
    if (cycle := find_cycle({n: st.depends for n, st in by_name.items()})) is not None:
        first = by_name[cycle[0]]
        raise ConfigError(
            f"{display}:{first.line}: streams.{cycle[0]}.depends: dependency cycle "
            f"{' -> '.join(cycle)}; remove one of these dependencies"
        )
    return tuple(streams)


def _read_stream(r: Reader, name: str, knode: Node, vnode: Node) -> tuple[Stream, list[tuple[str, int]]]:
    """One entry under ``streams:``, and its ``depends`` with their lines (checked by the caller)."""
    key = f"streams.{name}"
    if (bad := name_problem(name)) is not None:
        raise r.fail(knode, "streams", bad)  # the message quotes the name; `streams.../x` would not
    if isinstance(vnode, ScalarNode) and r.scalar(vnode) is None:
        fields: _Top = {}
    else:
        fields = r.mapping(vnode, key, STREAM_KEYS, "e.g. owns: [src/api/**]")
    desc = ""
    if "description" in fields:
        desc = r.string(fields["description"][1], f"{key}.description", "one line of text", allow_null=True) or ""
    owns = r.strings(fields["owns"][1], f"{key}.owns", "e.g. owns: [src/api/**]") if "owns" in fields else []
    for pat, ln in owns:
        if (bad := pattern_problem(pat)) is not None:
            raise ConfigError(f"{r.display}:{ln}: {key}.owns: {bad}")
    depends = r.strings(fields["depends"][1], f"{key}.depends", "stream names") if "depends" in fields else []
    touches = r.strings(fields["touches"][1], f"{key}.touches", "shared paths") if "touches" in fields else []
    parallel = r.boolean(fields["parallel"][1], f"{key}.parallel") if "parallel" in fields else True
    command = None
    if "command" in fields:
        command = r.string(fields["command"][1], f"{key}.command", "a shell command", allow_null=True)
    stream = Stream(
        name=name,
        description=desc,
        owns=tuple(p for p, _ in owns),
        owns_lines=tuple(ln for _, ln in owns),
        depends=tuple(d for d, _ in depends),
        parallel=parallel,
        touches=tuple(t for t, _ in touches),
        command=command,
        line=knode.start_mark.line + 1,
        run=read_stream_run(r, key, fields),
    )
    return stream, depends
