"""Reading a ref's commit straight from the files git keeps, without a git process. Standard library only.

The hooks run on every commit and start no git process they can avoid: a loose ref is one file,
a packed one a line of ``packed-refs``. Anything unusual (another ref backend, a symbolic ref, a
half-written file) answers None, which callers take as "ask git": it costs them a process, never
a wrong answer.
"""

from __future__ import annotations

import os


def _oid(text: str) -> str | None:
    text = text.strip()
    return text if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else None


def read_ref(common_dir: str, ref: str) -> str | None:
    """The object ``ref`` (``refs/heads/…``) points to, from the loose file or ``packed-refs``."""
    if not ref.startswith("refs/") or ".." in ref:
        return None
    try:
        with open(os.path.join(common_dir, ref), encoding="ascii") as fh:
            return _oid(fh.read())
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return None
    suffix = " " + ref
    try:
        with open(os.path.join(common_dir, "packed-refs"), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if line.endswith(suffix) and len(line) == 40 + len(suffix):
                    return _oid(line[:40])
    except OSError:
        return None
    return None


def read_head(git_dir: str, common_dir: str) -> str | None:
    """The commit HEAD of the worktree whose private git dir is ``git_dir`` points to, or None."""
    try:
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8", errors="replace") as fh:
            head = fh.read().strip()
    except OSError:
        return None
    if not head.startswith("ref: "):
        return _oid(head)
    ref = head[len("ref: ") :]
    return read_ref(common_dir, ref) if ref.startswith("refs/heads/") else None
