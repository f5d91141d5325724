"""The merge drivers of shared files (``shared: [{path: CHANGELOG.md, merge: union}]``), as git
attributes in ``<git-common-dir>/info/attributes``: one file every worktree reads, so ``git
rebase`` (sync), ``git merge-tree`` (the merge queue, conflict prediction) and a human's merge all
honour them. streams owns one marked block of that file and leaves every other line alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from streams.kernel.atomic import replace_file

BEGIN = "# streams: merge drivers of shared files from streams.yaml (managed: edit streams.yaml, not this block)"
END = "# streams: end"


def attributes_file(common_dir: str | os.PathLike[str]) -> Path:
    return Path(common_dir) / "info" / "attributes"


def _pattern(pattern: str) -> str:
    """``pattern`` as a gitattributes pattern: C-quoted when it holds blanks, quotes or backslashes."""
    if not any(c.isspace() or c in '"\\' for c in pattern):
        return pattern
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n") + '"'


def install(common_dir: str | os.PathLike[str], drivers: Sequence[tuple[str, str]]) -> bool:
    """Make the managed block say ``drivers`` (pattern, driver); True when the file changed."""
    file = attributes_file(common_dir)
    try:
        text = file.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        text = ""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line == BEGIN:
            inside = True
        elif line == END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    block = [BEGIN, *(f"{_pattern(p)} merge={d}" for p, d in drivers), END] if drivers else []
    new = "\n".join([*kept, *block]) + "\n" if kept or block else ""
    if new == text or (not new and not file.exists()):
        return False
    file.parent.mkdir(parents=True, exist_ok=True)
    replace_file(str(file), new.encode("utf-8", "surrogateescape"))
    return True
