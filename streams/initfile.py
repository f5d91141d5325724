"""The starter streams.yaml written by `streams init`."""

from __future__ import annotations

import re
from pathlib import Path

from streams import git
from streams.config import name_problem

# Top-level folders that hold no source of their own.
_NOT_SOURCE = {".git", ".github", ".streams", ".venv", "venv", "node_modules", "build", "dist", "target", "__pycache__"}


def _top_level_folders(root: Path) -> list[str]:
    tracked = git.run("ls-files", "-z", cwd=root).stdout.split(b"\0")
    folders = sorted({p.split(b"/", 1)[0].decode("utf-8", "surrogateescape") for p in tracked if b"/" in p})
    if not folders:
        folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [f for f in folders if f not in _NOT_SOURCE and not f.startswith(".")]


# Top-level files that several streams usually need to change: suggested as shared.
_USUALLY_SHARED = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "requirements.txt",
    "package.json",
    "package-lock.json",
    "Cargo.toml",
    "Cargo.lock",
    "go.mod",
    "go.sum",
    "Makefile",
    "CHANGELOG.md",
)


def _shared_files(root: Path) -> list[str]:
    tracked = set(git.split_z(git.run("ls-files", "-z", "--", *_USUALLY_SHARED, cwd=root).stdout))
    return [f for f in _USUALLY_SHARED if f in tracked]


def _stream_name(folder: str) -> str | None:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder).strip("-.")
    return name if name and name_problem(name) is None else None


def _quote(pattern: str) -> str:
    return pattern if re.fullmatch(r"[A-Za-z0-9._/*-]+", pattern) and not pattern.startswith("*") else repr(pattern)


def starter_config(root: Path) -> tuple[str, list[str]]:
    """The text of a starter streams.yaml for the repository at ``root``, and its stream names."""
    branch = git.run("symbolic-ref", "--quiet", "--short", "HEAD", cwd=root, check=False).text.strip() or "main"
    shared = _shared_files(root)
    streams: list[tuple[str, str]] = []
    seen: set[str] = set()
    for folder in _top_level_folders(root):
        name = _stream_name(folder)
        if name and name not in seen:
            seen.add(name)
            streams.append((name, folder))
    lines = [
        "# streams.yaml: who owns what. Each stream gets its own branch and worktree and may change",
        "# only the paths it owns (gitignore pattern syntax) and the shared paths whose lock it holds.",
        "version: 1",
        f"base: {branch}                  # integration branch: streams fork from it and rebase onto it",
        "# remote: origin            # sync fetches <remote>/<base> and pushes stream branches",
        "branch_prefix: streams/     # stream X lives on branch streams/X",
        "worktree_root: ../{repo}.streams   # stream X's worktree: <worktree_root>/X",
        "unowned: reject             # reject | allow: paths no stream owns and that are not shared",
        "# shared: any stream may change these while it holds the path's lock (`streams lock PATH`)",
        f"shared: [{', '.join(_quote(f) for f in shared)}]"
        if shared
        else "shared: []                  # e.g. [pyproject.toml]",
        "streams:" if streams else "streams: {}",
    ]
    for name, folder in streams:
        lines += [
            f"  # An example stream owning {folder}/: rename it, narrow it, or split it.",
            f"  {name}:",
            f"    description: work in {folder}/",
            f"    owns: [{_quote(folder + '/**')}]",
            "    depends: []              # streams that must finish first (used by `streams plan`)",
            "    # command: ./agents/run.sh   # the agent `streams run` launches in the worktree",
        ]
    if not streams:
        lines += [
            "  # api:",
            "  #   description: Backend API",
            "  #   owns: [src/api/**, tests/api/**]",
        ]
    return "\n".join(lines) + "\n", [n for n, _ in streams]
