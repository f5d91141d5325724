"""Installing the scope hooks into ``<git-common-dir>/hooks``, where one install serves every worktree.

Like pre-commit does it: each hook is a small shell shim rendered from a template in ``streams/hook_templates/``
with a marker line, so streams recognises its own files; a foreign hook already in place is kept
as ``<hook>.legacy`` and the shim runs it first (its failure still fails the operation);
``uninstall`` removes the shims and puts the legacy hooks back. The shim calls the interpreter that
installed it, by absolute path (a ``python3`` found on PATH may be another environment, or a slow
wrapper script), with ``-I -S`` and the streams package put on ``sys.path``.

``core.hooksPath`` is refused, not supported: when it is set git ignores ``<git-common-dir>/hooks``
altogether, and writing into a directory some other tool manages (often a tracked one) would be
worse. The error says how to proceed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

import streams
from streams import git
from streams.kernel import events, hookstate, paths, procs
from streams.kernel.errors import StreamsError
from streams.workspace import Workspace

HOOK_NAMES = ("pre-commit", "reference-transaction", "post-commit", "post-rewrite")
MARKER = "streams-managed-hook 4f5b1a57"
LEGACY_SUFFIX = ".legacy"
# Package data, so a wheel install finds them too (the repo-level hooks/ holds the pre-receive example).
TEMPLATE_DIR = Path(__file__).resolve().parent / "hook_templates"


# The on-disk names the shims use, from the one place that defines them.
TEMPLATE_NAMES = {
    "MARKER_FILE": paths.MARKER_FILE,
    "TOKEN_FILE": paths.TOKEN_FILE,
    "FENCE_FILE": paths.FENCE_FILE,
    "REBASE_LEASES_FILE": paths.REBASE_LEASES_FILE,
    "FENCE_ENV": paths.FENCE_ENV,
    "NO_GRAFT_FILE": paths.NO_GRAFT_FILE,
    "STATE_DIR": paths.STATE_DIR,
    "LOCKS_DIR": paths.LOCKS_DIR,
    "CACHE_DIR": paths.CACHE_DIR,
    "FAST_DIR": paths.FAST_DIR,
    "PREFIX_FILE": paths.PREFIX_FILE,
    "BASE_REFS_FILE": paths.BASE_REFS_FILE,
    "PROGRESS_DIR": paths.PROGRESS_DIR,
    "PROGRESS_PREFIX": paths.PROGRESS_PREFIX,
    "PROGRESS_SUFFIX": paths.PROGRESS_SUFFIX,
    "CONFIG_FILE": paths.CONFIG_FILE,
}


class HooksError(StreamsError):
    code = "hooks"


class HooksPathError(HooksError):
    code = "hooks_path"


class HookState(StrEnum):
    """What became of a hook (install: installed | updated | unchanged; uninstall: removed | restored |
    not installed | foreign; status: installed | outdated | foreign | missing)."""

    INSTALLED = "installed"  # install: written where there was none; status: ours and current
    UPDATED = "updated"  # install: ours, rewritten
    UNCHANGED = "unchanged"  # install: ours and current already
    OUTDATED = "outdated"  # status: ours, but from another version or interpreter
    REMOVED = "removed"  # uninstall: ours, removed (its .legacy hook put back)
    RESTORED = "restored"  # uninstall: ours was gone, the kept .legacy hook put back
    NOT_INSTALLED = "not installed"  # uninstall: nothing there
    FOREIGN = "foreign"  # not a streams hook: left alone
    MISSING = "missing"  # status: no hook there


@dataclass(frozen=True)
class HookFile:
    """One hook in ``<git-common-dir>/hooks``.

    ======  ===========  ==========================================================================
    field   type         meaning
    ======  ===========  ==========================================================================
    name    str          pre-commit | reference-transaction | post-commit | post-rewrite
    path    str          the hook file
    state   str          what became of it (``HookState``): installed | updated | unchanged |
                         outdated | removed | restored | not installed | foreign | missing
    legacy  bool         a foreign hook is kept as <name>.legacy (the shim runs it first)
    python  str | null   the interpreter the shim calls (null: not ours, or not there)
    ======  ===========  ==========================================================================
    """

    name: str
    path: Path
    state: HookState
    legacy: bool  # a foreign hook kept as <name>.legacy (run by the shim)
    python: str | None = None  # the interpreter the shim calls


@dataclass(frozen=True)
class HooksReport:
    """``streams hooks install|uninstall|status --json``'s ``data``.

    ==========  ===========  ======================================================================
    field       type         meaning
    ==========  ===========  ======================================================================
    hooks_dir   str          ``<git-common-dir>/hooks``
    python      str          the interpreter installing (install) or running this command
    hooks       [HookFile]   one per hook
    hooks_path  str | null   core.hooksPath when set (status; git then ignores ``hooks_dir``)
    installed   bool         every hook is ours and current, and git runs them (no hooks_path)
    ==========  ===========  ======================================================================
    """

    hooks_dir: Path
    python: str
    hooks: tuple[HookFile, ...]
    hooks_path: str | None = None  # core.hooksPath, when set

    json_properties: ClassVar[tuple[str, ...]] = ("installed",)  # derived facts the JSON carries too

    @property
    def installed(self) -> bool:
        """Every hook ours and current, and git runs them (no core.hooksPath sends it elsewhere)."""
        return not self.hooks_path and all(
            h.state in (HookState.INSTALLED, HookState.UPDATED, HookState.UNCHANGED) for h in self.hooks
        )


def hooks_dir(ws: Workspace) -> Path:
    return ws.common_dir / "hooks"


def launcher(python: str | None = None) -> str:
    """The shell words that start the hook entry point with ``python``."""
    python = python or sys.executable
    pkg_parent = str(Path(streams.__file__).resolve().parent.parent)
    code = f"import sys;sys.path.insert(0,{json.dumps(pkg_parent)});from streams.hook import main;sys.exit(main())"
    return f"{shlex.quote(python)} -I -S -c {shlex.quote(code)}"


def render(name: str, python: str | None = None) -> str:
    python = python or sys.executable
    template = TEMPLATE_DIR / f"{name}.in"
    try:
        text = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise HooksError(
            f"hook template {template} is missing ({exc.strerror}); reinstall streams",
            code="hook_template_missing",
        ) from None
    values = {
        "MARKER": MARKER,
        "VERSION": streams.__version__,
        "PYTHON": python,
        "RUN": launcher(python),
        "CHECK_PYTHON": _check_python(python),
        **TEMPLATE_NAMES,
    }
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def _check_python(python: str) -> str:
    """A shell line that fails clearly (not with `not found`) when the baked interpreter is gone."""
    message = (
        f"streams: {python} (the interpreter the scope hooks were installed with) is gone; "
        "run `streams hooks install` again from streams' current environment"
    )
    return f"[ -x {shlex.quote(python)} ] || {{ echo {shlex.quote(message)} >&2; exit 1; }}"


def is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return MARKER.encode() in head


def baked_python(path: Path) -> str | None:
    try:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[:8]:
            if line.startswith("# python: "):
                return line[len("# python: ") :]
    except OSError:
        return None
    return None


def hooks_path(ws: Workspace) -> str | None:
    """``core.hooksPath`` when it sends git somewhere other than ``<git-common-dir>/hooks``: the
    repository's, else one a worktree sets for itself alone (``git config --worktree``, read from
    ``config.worktree`` files when ``extensions.worktreeConfig`` is on), said with its worktree."""
    value = git.config_get(ws.toplevel, "core.hooksPath")
    if value and _elsewhere(ws, value):
        return value
    if (git.config_get(ws.toplevel, "extensions.worktreeConfig") or "").lower() not in ("true", "yes", "on", "1"):
        return None
    files = [ws.common_dir / "config.worktree", *sorted((ws.common_dir / "worktrees").glob("*/config.worktree"))]
    for file in files:
        if not file.is_file():
            continue
        res = git.run("config", "--file", str(file), "--get", "core.hooksPath", cwd=ws.main_root, check=False)
        own = res.text.strip()
        if res.returncode == 0 and own and _elsewhere(ws, own):
            where = "the main worktree" if file.parent == ws.common_dir else f"worktree {file.parent.name}"
            return f"{own} (set for {where} only)"
    return None


def _elsewhere(ws: Workspace, value: str) -> bool:
    target = Path(os.path.expanduser(value))
    if not target.is_absolute():
        target = ws.toplevel / target
    return target.resolve() != hooks_dir(ws).resolve()


def _refuse_hooks_path(ws: Workspace, value: str) -> HooksPathError:
    return HooksPathError(
        f"core.hooksPath is set to {value!r}, so git ignores {hooks_dir(ws)}, where streams installs its "
        "scope hooks; unset it (`git config --unset core.hooksPath`, moving any hooks from there into "
        f"{hooks_dir(ws)}: streams keeps them as <hook>.legacy and still runs them), then run "
        "`streams hooks install`"
    )


def require_hooks_run(ws: Workspace) -> None:
    """Refuse (``HooksPathError``) when git would not run the hooks streams installs: a
    ``core.hooksPath`` sends it elsewhere. ``start`` asks first, before it creates anything."""
    value = hooks_path(ws)
    if value is not None:
        raise _refuse_hooks_path(ws, value)


def install(ws: Workspace, *, python: str | None = None) -> HooksReport:
    """Install (or update) the shims. Idempotent; checks everything before changing anything."""
    python = python or sys.executable
    require_hooks_run(ws)
    folder = hooks_dir(ws)
    wanted = {name: render(name, python) for name in HOOK_NAMES}
    for name in HOOK_NAMES:
        path = folder / name
        legacy = folder / (name + LEGACY_SUFFIX)
        if (path.exists() or path.is_symlink()) and not is_ours(path) and (legacy.exists() or legacy.is_symlink()):
            raise HooksError(
                f"{path} is not a streams hook and {legacy.name} exists as well; streams keeps a foreign hook "
                f"as {legacy.name}, so merge the two (or remove one), then run `streams hooks install` again",
                code="legacy_exists",
            )
    _write_config_cache(ws)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for name in HOOK_NAMES:
        path = folder / name
        legacy = folder / (name + LEGACY_SUFFIX)
        exists = path.exists() or path.is_symlink()
        if exists and not is_ours(path):
            os.rename(path, legacy)
            exists = False
        if exists and path.read_text(encoding="utf-8", errors="replace") == wanted[name] and os.access(path, os.X_OK):
            state = HookState.UNCHANGED
        else:
            _write_executable(path, wanted[name])
            state = HookState.UPDATED if exists else HookState.INSTALLED
        results.append(HookFile(name, path, state, legacy.exists() or legacy.is_symlink(), python))
    status(ws, hooks_path_value=None)  # keeps the hooks' states for the quick status --json
    return HooksReport(folder, python, tuple(results))


def _write_config_cache(ws: Workspace) -> None:
    """Compile the configuration in force for the hooks now, so the first commit does not pay for it."""
    if not ws.config_path.exists():
        return
    from streams.workspace import load_config

    with contextlib.suppress(StreamsError):  # none in force, or refused: the hooks report it when they run
        load_config(ws)


def _write_executable(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _hook_files(folder: Path, name: str) -> tuple[Path, Path, bool]:
    """The hook ``name`` in ``folder``, its ``.legacy`` keep, and whether that exists (or is a link)."""
    path, legacy = folder / name, folder / (name + LEGACY_SUFFIX)
    return path, legacy, legacy.exists() or legacy.is_symlink()


def uninstall(ws: Workspace) -> HooksReport:
    """Remove the shims and put back the hooks they kept as ``.legacy``; foreign hooks are left alone."""
    folder = hooks_dir(ws)
    results = []
    for name in HOOK_NAMES:
        path, legacy, has_legacy = _hook_files(folder, name)
        if not (path.exists() or path.is_symlink()):
            if has_legacy:  # a shim removed by hand: still put the kept hook back
                os.rename(legacy, path)
            results.append(
                HookFile(name, path, HookState.RESTORED if has_legacy else HookState.NOT_INSTALLED, has_legacy)
            )
            continue
        if not is_ours(path):
            results.append(HookFile(name, path, HookState.FOREIGN, has_legacy))
            continue
        python = baked_python(path)
        if has_legacy:
            os.replace(legacy, path)
        else:
            path.unlink()
        results.append(HookFile(name, path, HookState.REMOVED, has_legacy, python))
    removed = [h.name for h in results if h.state in (HookState.REMOVED, HookState.RESTORED)]
    if removed:
        events.append(ws.common_dir, "hooks.uninstall", hooks=removed, by=procs.holder_name())
    return HooksReport(folder, sys.executable, tuple(results))


def status(ws: Workspace, *, hooks_path_value: str | bool | None = True) -> HooksReport:
    """Each hook's state. ``hooks_path_value``: ``core.hooksPath`` as the caller already read it
    (``hooks_path``), or True to read it here."""
    folder = hooks_dir(ws)
    results = []
    kept: list[tuple[str, str, str, str, str | None, bool]] = []
    seen = []
    for name in HOOK_NAMES:
        path, _legacy, has_legacy = _hook_files(folder, name)
        seen.append(hookstate.read(str(path)))  # before the judging: the record must not outlive a rewrite
        matches = False
        if not (path.exists() or path.is_symlink()):
            state, python = HookState.MISSING, None
        elif not is_ours(path):
            state, python = HookState.FOREIGN, None
        else:
            python = baked_python(path)
            current = render(name, python) if python else None
            matches = current == path.read_text(encoding="utf-8", errors="replace") and python is not None
            fine = matches and python is not None and os.access(python, os.X_OK) and os.access(path, os.X_OK)
            state = HookState.INSTALLED if fine else HookState.OUTDATED
        results.append(HookFile(name, path, state, has_legacy, python))
        kept.append((name, str(path), str(TEMPLATE_DIR / f"{name}.in"), str(state), python, matches))
    hookstate.remember(
        str(ws.common_dir), version=streams.__version__, package=str(TEMPLATE_DIR.parent), hooks=kept, seen=seen
    )  # for the quick status --json (``streams.cli.quickstatus``)
    value = hooks_path(ws) if hooks_path_value is True else hooks_path_value or None
    return HooksReport(folder, sys.executable, tuple(results), value)


def refuse_in_stream_worktree(ws: Workspace, verb: str) -> None:
    """Scope cannot be switched off (or swapped) from a stream's worktree: an agent works there."""
    stream = ws.current_stream()
    if stream is not None:
        raise HooksError(
            f"`streams hooks {verb}` is refused in stream {stream}'s worktree: the hooks guard every "
            "stream's scope; ask your human to run it from the main worktree",
            code="hooks_in_stream",
        )
