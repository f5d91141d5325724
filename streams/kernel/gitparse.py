"""Parsers of git's ``-z`` output, one per format, and the arguments that produce it. Standard library only.

The git hooks use them as well as the full code, so they live on the floor the hooks may import.
"""

from __future__ import annotations

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
