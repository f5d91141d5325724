"""The starter streams.yaml written by `streams init`."""

from __future__ import annotations

import fnmatch
import json
import re
import unicodedata
from pathlib import Path

import yaml

from streams import git
from streams.config import name_problem
from streams.kernel.paths import CONFIG_FILE

# Top-level folders that hold no source of their own.
_NOT_SOURCE = {".git", ".github", ".streams", ".venv", "venv", "node_modules", "build", "dist", "target", "__pycache__"}


def _top_level_folders(root: Path) -> list[str]:
    folders = sorted({p.split("/", 1)[0] for p in git.tracked_files(root) if "/" in p})
    if not folders:
        folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [f for f in folders if f not in _NOT_SOURCE and not f.startswith(".")]


# Top-level files that several streams usually need to change (manifests, lock files): suggested as
# shared, anchored at the root (``/pyproject.toml``), so that a nested manifest a stream's folder
# holds (``api/pyproject.toml``) stays that stream's. fnmatch patterns, matched against top-level names.
_USUALLY_SHARED = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "requirements*.txt",
    "*-requirements.txt",
    "uv.lock",
    "poetry.lock",
    "Pipfile",
    "Pipfile.lock",
    "package.json",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "pnpm-workspace.yaml",
    "Cargo.toml",
    "Cargo.lock",
    "go.mod",
    "go.sum",
    "go.work",
    "Gemfile",
    "Gemfile.lock",
    "composer.json",
    "composer.lock",
    "Makefile",
    "CHANGELOG.md",
)


def _top_level_files(root: Path) -> list[str]:
    return sorted({p for p in git.tracked_files(root) if "/" not in p})


def _shared_files(top_files: list[str]) -> list[str]:
    return [f for f in top_files if any(fnmatch.fnmatchcase(f, pattern) for pattern in _USUALLY_SHARED)]


def _stream_name(folder: str) -> str | None:
    ascii_ = unicodedata.normalize("NFKD", folder).encode("ascii", "ignore").decode()  # "ünï" -> "uni"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_).strip("-.")
    return name if name and name_problem(name) is None else None


def _quote(value: str) -> str:
    """``value`` as a YAML scalar that reads back as exactly ``value`` (inside ``[...]`` too)."""
    if (
        re.fullmatch(r"[A-Za-z0-9._/*-]+", value)
        and not value.startswith("*")
        and yaml.safe_load(f"[{value}]") == [value]  # not true, null, 1.5, ...
    ):
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _glob_escape(folder: str) -> str:
    """A folder name as a gitignore pattern matching exactly that name (``[x]``, ``a*b``, ``#tmp``)."""
    escaped = re.sub(r"([\\\[\]*?])", r"\\\1", folder)
    if escaped.startswith(("!", "#")):
        escaped = "\\" + escaped
    stripped = escaped.rstrip(" ")
    return stripped + "\\ " * (len(escaped) - len(stripped))  # trailing spaces are dropped unless escaped


def _comment(text: str) -> str:
    """``text`` safe inside a one-line comment (control characters shown as escapes)."""
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


def starter_config(root: Path) -> tuple[str, list[str]]:
    """The text of a starter streams.yaml for the repository at ``root``, and its stream names."""
    branch = (git.symbolic_head(root) or "").removeprefix("refs/heads/") or "main"
    top_files = _top_level_files(root)
    shared = _shared_files(top_files)
    unowned = [f for f in top_files if f not in shared and f != CONFIG_FILE]
    streams: list[tuple[str, str]] = []
    seen: set[str] = set()
    for folder in _top_level_folders(root):
        name = _stream_name(folder)
        if name is None:
            continue
        unique, n = name, 2
        while unique.lower() in seen:  # "src" and "Src" would collide on a case-insensitive disk
            unique, n = f"{name}-{n}", n + 1
        seen.add(unique.lower())
        streams.append((unique, folder))
    lines = [
        "# streams.yaml: who owns what. Each stream gets its own branch and worktree and may change",
        "# only the paths it owns (gitignore pattern syntax) and the shared paths whose lock it holds.",
        "version: 1",
        f"base: {_quote(branch)}                  # integration branch: streams fork from it and rebase onto it",
        "# remote: origin            # sync fetches <remote>/<base> and pushes stream branches",
        "branch_prefix: streams/     # stream X lives on branch streams/X",
        "worktree_root: ../{repo}.streams   # stream X's worktree: <worktree_root>/X",
        "unowned: reject             # reject | allow: paths no stream owns and that are not shared",
        "# shared: any stream may change these while it holds the path's lock (`streams lock PATH`)",
        f"shared: [{', '.join(_quote('/' + f) for f in shared)}]"
        if shared
        else "shared: []                  # e.g. [/pyproject.toml]: a leading / anchors at the root",
        *_unowned_comment(unowned),
        "streams:" if streams else "streams: {}",
    ]
    for name, folder in streams:
        lines += [
            f"  # An example stream owning {_comment(folder)}/: rename it, narrow it, or split it.",
            f"  {_quote(name)}:",
            f"    description: {_quote(f'work in {folder}/')}",
            f"    owns: [{_quote(_glob_escape(folder) + '/**')}]",
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


def _unowned_comment(unowned: list[str]) -> list[str]:
    """Comment lines naming the top-level files no example stream owns and that are not shared:
    with ``unowned: reject`` no stream may change them until streams.yaml says who owns them."""
    if not unowned:
        return []
    shown = ", ".join(_comment(f) for f in unowned[:12]) + (
        f" and {len(unowned) - 12} more" if len(unowned) > 12 else ""
    )
    return [f"# unowned (no stream may change them until a stream owns them or they are shared): {shown}"]


def check_starter(root: Path, text: str) -> None:
    """Refuse (``ConfigError``) a starter config that ``streams start`` would refuse: parsed and
    checked against the tracked files before ``init`` writes it."""
    from streams.config import parse
    from streams.ownership import check_tree, raise_errors

    config = parse(text, path=root / CONFIG_FILE)
    raise_errors(check_tree(config, git.tracked_files(root)))
