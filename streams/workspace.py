"""Where a repository's streams live: the main worktree, the common dir, and the loaded config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from streams import git
from streams.config import CONFIG_NAME, Config, load
from streams.kernel import paths
from streams.kernel.atomic import write_atomic, write_json_atomic

__all__ = ["Workspace", "check_tracked_files", "discover", "load_config", "write_atomic", "write_json_atomic"]


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
    """Load and validate streams.yaml, including the checks against the base branch's files.

    The tracked-file checks are cached in the common dir, keyed by the file's bytes and the base
    tree, so commands after the first pay only for parsing.
    """
    cfg = load(ws.config_path, display=CONFIG_NAME)
    from streams.ownership import refresh

    refresh(ws.common_dir, cfg)  # the hooks' precompiled copy (streams.kernel.hookcache)
    return check_tracked_files(ws, cfg) if check_tracked else cfg


def check_tracked_files(ws: Workspace, cfg: Config) -> Config:
    """``cfg`` after the checks against the base branch's files (overlaps raise; warnings kept)."""
    rev = f"{cfg.base_ref()}^{{tree}}"  # the branch, even if a tag has the same name
    tree = git.resolve_many(ws.main_root, [rev]).get(rev)
    if tree is None:
        return cfg  # no base yet: commands that need it say so
    warnings = _tree_check_cached(ws, cfg, tree)
    return dataclasses.replace(cfg, warnings=cfg.warnings + warnings)


def _tree_check_cached(ws: Workspace, cfg: Config, tree: str) -> tuple[str, ...]:
    """The tree check's warnings (summarized); every error raised. Only a passed check is cached, so a hit
    needs neither the check nor pathspec (imported only on a miss: 15 ms a command)."""
    key = hashlib.sha256(ws.config_path.read_bytes() + b"\0" + tree.encode()).hexdigest()
    cache = ws.cache_dir / paths.TREE_CHECK_FILE
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("key") == key and not data["errors"]:
            return tuple(str(w) for w in data["warnings"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from streams.ownership import check_tree, raise_errors, summarize_warnings

    result = check_tree(cfg, git.ls_tree_names(ws.main_root, tree))
    raise_errors(result)  # a failing command leaves the disk as it was: nothing cached
    warnings = summarize_warnings(result.warnings)
    write_json_atomic(cache, {"key": key, "errors": [], "warnings": list(warnings)})
    return warnings
