"""Where a repository's streams live: the main worktree, the common dir, and the loaded config."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from streams import git
from streams.config import CONFIG_NAME, Config, ConfigError, Origin, load, parse
from streams.kernel import hookcache, paths
from streams.kernel.atomic import write_atomic, write_json_atomic
from streams.kernel.errors import GitError
from streams.kernel.reffiles import read_ref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from streams.kernel.rules import CompiledConfig

DEFAULT_BASE = "main"

__all__ = [
    "Workspace",
    "check_tracked_files",
    "committed_config",
    "discover",
    "load_config",
    "write_atomic",
    "write_json_atomic",
]


@dataclass(frozen=True)
class Workspace:
    toplevel: Path  # top of the worktree the command runs in
    git_dir: Path  # that worktree's private git dir
    common_dir: Path  # shared by all worktrees
    main_root: Path  # top of the main worktree, where streams.yaml lives

    @property
    def config_path(self) -> Path:
        return self.main_root / CONFIG_NAME

    @property
    def state_dir(self) -> Path:
        return Path(paths.state_dir(self.common_dir))

    @property
    def locks_dir(self) -> Path:
        return Path(paths.locks_dir(self.common_dir))

    @property
    def state_file(self) -> Path:
        return Path(paths.state_file(self.common_dir))

    @property
    def events_file(self) -> Path:
        return Path(paths.events_file(self.common_dir))

    @property
    def logs_dir(self) -> Path:
        return Path(paths.logs_dir(self.common_dir))

    @property
    def cache_dir(self) -> Path:
        return Path(paths.cache_dir(self.common_dir))

    def current_stream(self) -> str | None:
        """The stream whose worktree the command runs in, or None (main worktree, or elsewhere)."""
        return paths.read_marker(self.git_dir)


def discover(cwd: Path | str) -> Workspace:
    paths = git.repo_paths(cwd)
    common = paths.common_dir
    if common.name == ".git" and (common.parent / ".git").exists() and not _is_bare(common):
        main_root = common.parent
    elif paths.git_dir == common:  # the main worktree itself, wherever its git dir is (a submodule's)
        main_root = paths.toplevel
    else:
        entries = git.worktrees(paths.toplevel)
        main_root = entries[0].path if entries and not entries[0].bare else paths.toplevel
        if main_root == common:  # a submodule's: git names the git dir; core.worktree says where it is
            main_root = _core_worktree(common) or paths.toplevel
    return Workspace(paths.toplevel, paths.git_dir, common, main_root)


def _core_worktree(common: Path) -> Path | None:
    """``core.worktree`` of the repository at ``common`` (a submodule sets it), resolved, or None."""
    import configparser

    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(common / "config", encoding="utf-8")
        value = parser.get("core", "worktree", fallback=None)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return (common / value.strip().strip('"')).resolve() if value else None


def _is_bare(common: Path) -> bool:
    try:
        text = (common / "config").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "bare = true" in text


def load_config(ws: Workspace, *, check_tracked: bool = True) -> Config:
    """The configuration in force: ``streams.yaml`` as committed on the base branch, validated.

    With ``check_tracked`` also checked against the base's files (``check_tracked_files``), after
    which the hooks' compiled copy is refreshed. A working copy that differs from the committed file
    is not in force; it adds one warning.
    """
    cfg = committed_config(ws)
    return check_tracked_files(ws, cfg) if check_tracked else cfg


def committed_config(ws: Workspace) -> Config:
    """``streams.yaml`` as committed on the base branch (see ``load_config``), with a warning when the
    main worktree's copy differs. The base is the one the cached configuration names, else the one
    the working copy names; a committed file naming another base is followed once."""
    working = _read(ws.config_path)
    cached = hookcache.load(ws.common_dir)
    if cached is not None and cached.config_path == str(ws.config_path):
        base = cached.base
    elif working is not None:
        base = _working_base(ws, working)
    else:  # neither: the branch the main worktree has checked out may hold one
        head = git.symbolic_head(ws.main_root)
        base = head.removeprefix("refs/heads/") if head else DEFAULT_BASE
        try:
            _committed(ws, base, None)
        except ConfigError:
            load(ws.config_path, display=CONFIG_NAME)  # raises: not found (run `streams init`)
            raise
    for attempt in range(2):
        try:
            origin = _committed(ws, base, cached)
        except ConfigError:
            # The base may have been renamed since it was cached: the working copy names the new one.
            named = _working_base(ws, working) if attempt == 0 and cached is not None and working else base
            if named == base:
                raise
            base = named
            origin = _committed(ws, base, cached)
        display = CONFIG_NAME if working == origin.source else f"{base}:{CONFIG_NAME}"  # git's REV:PATH
        cfg = parse(_text(origin.source, base), path=ws.config_path, display=display)
        if cfg.base == base:
            break
        base = cfg.base
    else:
        raise ConfigError(f"{CONFIG_NAME} on {base} names another base branch ({cfg.base!r}); fix `base:`")
    note = _difference(working, origin.source, base)
    return dataclasses.replace(cfg, origin=origin, warnings=cfg.warnings + ((note,) if note else ()))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        raise ConfigError(f"{CONFIG_NAME}: cannot read {path}: {exc.strerror or exc}") from None


def _working_base(ws: Workspace, working: bytes) -> str:
    """The base the working copy names (nothing is cached yet, e.g. a fresh clone)."""
    try:
        return parse(working.decode("utf-8"), path=ws.config_path).base
    except (ConfigError, UnicodeDecodeError):
        return DEFAULT_BASE


def _committed(ws: Workspace, base: str, cached: CompiledConfig | None) -> Origin:
    ref = f"refs/heads/{base}"
    commit = read_ref(str(ws.common_dir), ref) or git.resolve_commit(ws.main_root, ref)
    if commit is None:
        raise ConfigError(
            f"the base branch {base!r} does not exist yet, so no {CONFIG_NAME} is in force: "
            f"commit {CONFIG_NAME} on {base} (or fix `base:`)"
        )
    spec, tree_spec = f"{commit}:{CONFIG_NAME}", f"{commit}^{{tree}}"
    found = git.resolve_many(ws.main_root, [spec, tree_spec], types=("blob", "tree"))
    blob, tree = found.get(spec), found.get(tree_spec)
    if blob is None or tree is None:
        raise ConfigError(
            f"{CONFIG_NAME} is not committed on {base}, and only the committed file is in force: "
            f"commit it there (`git add {CONFIG_NAME} && git commit`), then run this again"
        )
    if cached is not None and cached.blob == blob:
        source = cached.source
    else:
        read = git.read_blob(ws.main_root, commit, CONFIG_NAME)
        if read is None:
            raise ConfigError(f"cannot read {CONFIG_NAME} from {base} ({commit[:12]})")
        source = read
    return Origin(source=source, blob=blob, commit=commit, tree=tree)


def _text(source: bytes, base: str) -> str:
    try:
        return source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{CONFIG_NAME} on {base}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _difference(working: bytes | None, committed: bytes, base: str) -> str | None:
    """The one warning line when the main worktree's copy is not the configuration in force."""
    if working == committed:
        return None
    if working is None:
        return f"{CONFIG_NAME} is missing from the main worktree; the one committed on {base} is in force"
    return (
        f"{CONFIG_NAME} in the main worktree differs from the one committed on {base}: "
        f"not in force until committed on {base} (`streams check` checks it)"
    )


def check_tracked_files(ws: Workspace, cfg: Config) -> Config:
    """``cfg`` after the checks against the base's files (overlaps raise; warnings kept). A config
    in force that passes refreshes the hooks' compiled copy (``streams.kernel.hookcache``); one
    that fails leaves the disk as it was."""
    if cfg.origin is not None:
        tree: str | None = cfg.origin.tree
    else:
        rev = f"{cfg.base_ref()}^{{tree}}"  # the branch, even if a tag has the same name
        tree = git.resolve_many(ws.main_root, [rev]).get(rev)
    if tree is None:
        return cfg  # no base yet: commands that need it say so
    warnings = _tree_check_cached(ws, cfg, tree)
    from streams.ownership import refresh

    refresh(ws.common_dir, cfg)
    return dataclasses.replace(cfg, warnings=cfg.warnings + warnings)


def _tree_check_cached(ws: Workspace, cfg: Config, tree: str) -> tuple[str, ...]:
    """The tree check's warnings (summarized); every error raised. Only a passed check is cached, so a hit
    needs neither the check nor pathspec (imported only on a miss: 15 ms a command).

    The check's answer depends on the configuration and on the set of tracked paths alone, so the
    cache is keyed on those: ``config`` (its bytes) and ``names`` (the sorted path list, hashed).
    ``tree`` is the last tree seen with that set: the same tree is a hit with no git at all; a base
    that moved is a hit when one ``git diff-tree`` shows no path added or removed (a changed file
    does not matter), and the cache then names the new tree; else the paths are listed and hashed.
    """
    source = cfg.origin.source if cfg.origin is not None else ws.config_path.read_bytes()
    config_key = hashlib.sha256(source).hexdigest()
    cache = ws.cache_dir / paths.TREE_CHECK_FILE
    data: dict[str, object] = {}
    try:
        loaded = json.loads(cache.read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and loaded.get("config") == config_key and loaded.get("errors") == []:
            data = loaded
    except (OSError, ValueError):
        pass
    raw_warnings = data.get("warnings")
    warnings = tuple(str(w) for w in raw_warnings) if isinstance(raw_warnings, list) else None
    old_tree = data.get("tree")
    if warnings is not None and old_tree == tree:
        return warnings
    if warnings is not None and isinstance(old_tree, str) and _same_paths(ws, old_tree, tree):
        _note_tree(cache, data, tree)
        return warnings
    names = git.ls_tree_names(ws.main_root, tree)
    names_key = hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()
    if warnings is not None and data.get("names") == names_key:
        _note_tree(cache, data, tree)
        return warnings
    from streams.ownership import check_tree, raise_errors, summarize_warnings

    result = check_tree(cfg, names)
    raise_errors(result)  # a failing command leaves the disk as it was: nothing cached
    warnings = summarize_warnings(result.warnings)
    record = {
        "config": config_key,
        "names": names_key,
        "tree": tree,
        "ran": time.time_ns(),
        "errors": [],
        "warnings": list(warnings),
    }
    write_json_atomic(cache, record)
    return warnings


def _note_tree(cache: Path, data: dict[str, object], tree: str) -> None:
    """The cache now names ``tree`` (same paths): the next look at it needs no git. Best effort: a
    cache that cannot be written (a read-only repository) only costs the next look a ``diff-tree``."""
    with contextlib.suppress(OSError):
        write_json_atomic(cache, {**data, "tree": tree})


def _same_paths(ws: Workspace, old: str, new: str) -> bool:
    """Whether trees ``old`` and ``new`` hold the same paths (False when git cannot tell, e.g. ``old``
    was collected as garbage)."""
    try:
        changes = git.tree_changes(ws.main_root, old, new)
    except GitError:
        return False
    return all(status not in ("A", "D") for status, _ in changes)
