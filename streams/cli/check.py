"""``streams check``: every problem of streams.yaml, without starting anything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from streams import git
from streams.cli.base import Reply, cli, json_option
from streams.cli.context import shown, workspace
from streams.config import CONFIG_NAME, load
from streams.kernel.errors import ConfigError
from streams.ownership import check_touches, check_tree


@dataclass(frozen=True)
class ConfigCheck:
    """``streams check --json`` (exit 1 when there are errors; the data is there as well).

    ========  ======  ===============================================================================
    field     type    meaning
    ========  ======  ===============================================================================
    path      str     the streams.yaml checked
    base      str     the branch whose tracked files it was checked against
    streams   int     how many streams it configures
    errors    [str]   every problem that makes commands refuse it (file:line: key: what to do)
    warnings  [str]   every warning, each pattern that matches no tracked file included
    in_force  bool    the file checked is the one committed on the base (only that one is in force)
    ok        bool    no errors
    ========  ======  ===============================================================================
    """

    path: Path
    base: str
    streams: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    in_force: bool

    json_properties: ClassVar[tuple[str, ...]] = ("ok",)

    @property
    def ok(self) -> bool:
        return not self.errors


@cli.command("check")
@json_option
def check_cmd() -> Reply[ConfigCheck]:
    """Check streams.yaml: list every problem and every warning, changing nothing.

    Checks the main worktree's copy, the one you edit (only the copy committed on the base branch
    is in force: this says whether they are the same). Checks the file itself (keys, types, names, dependencies, patterns) and, against the files
    tracked on the base branch, that no path has two owners and no shared path is also owned; lists
    each pattern that matches no tracked file (other commands say how many in one line). Exit 1
    when streams.yaml has errors.
    """
    ws = workspace()
    config = load(ws.config_path, display=ws.config_path.name)  # a problem in the file itself: raised here
    check_touches(config)
    rev = f"{config.base_ref()}^{{tree}}"
    tree = git.resolve_many(ws.main_root, [rev]).get(rev)
    tracked = git.ls_tree_names(ws.main_root, tree) if tree is not None else git.tracked_files(ws.main_root)
    result = check_tree(config, tracked)
    committed = git.read_blob(ws.main_root, config.base_ref(), CONFIG_NAME)
    in_force = committed is not None and committed == ws.config_path.read_bytes()
    report = ConfigCheck(ws.config_path, config.base, len(config.streams), result.errors, result.warnings, in_force)
    error = None
    if result.errors:
        n = len(result.errors)
        error = ConfigError(f"streams.yaml has {n} problem{'s' if n != 1 else ''}; fix {'them' if n != 1 else 'it'}")
    return Reply(report, _check_text, error)


def _check_text(report: ConfigCheck) -> str:
    lines = [f"error: {e}" for e in report.errors] + [f"warning: {w}" for w in report.warnings]
    verdict = "has problems" if report.errors else "is fine"
    lines.append(
        f"{shown(report.path)} {verdict}: {report.streams} stream{'s' if report.streams != 1 else ''}, "
        f"{len(report.errors)} error{'s' if len(report.errors) != 1 else ''}, "
        f"{len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''} (against {report.base})"
        + ("" if report.in_force else f"; not in force until committed on {report.base}")
    )
    return "\n".join(lines)
