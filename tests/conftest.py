"""Hermetic real-git fixtures: no mocks, a private HOME, fixed identities and dates."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import streams.cli  # noqa: F401 - registers every command
from streams.cli.base import run_main

HERMETIC_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_EDITOR": "false",
    "GIT_TERMINAL_PROMPT": "0",
    "NO_COLOR": "1",
    "LC_ALL": "C.UTF-8",
}


@pytest.fixture(autouse=True)
def hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs with its own HOME and no system or user git config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    for key in list(os.environ):
        if key.startswith("GIT_") and key not in HERMETIC_ENV:
            monkeypatch.delenv(key)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    yield


def git(cwd: Path, *args: str, check: bool = True, input: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, input=input, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc.stdout.decode("utf-8", "surrogateescape")


def write(root: Path, rel: str, text: str = "x\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


DEFAULT_CONFIG = """\
version: 1
base: main
shared:
  - pyproject.toml
streams:
  api:
    owns: [src/api/**, tests/api/**]
  ui:
    owns: [src/ui/**]
    depends: [api]
  docs:
    owns: [docs/**]
"""

DEFAULT_FILES = {
    "src/api/app.py": "print('api')\n",
    "tests/api/test_app.py": "def test(): pass\n",
    "src/ui/main.ts": "console.log('ui')\n",
    "docs/index.md": "# docs\n",
    "pyproject.toml": "[project]\nname = 'demo'\n",
    "README.md": "# demo\n",
}


@dataclass
class Repo:
    """A real repository in a temp dir: ``root`` is the main worktree."""

    root: Path

    def git(self, *args: str, check: bool = True, cwd: Path | None = None) -> str:
        return git(cwd or self.root, *args, check=check)

    def write(self, rel: str, text: str = "x\n", *, cwd: Path | None = None) -> Path:
        return write(cwd or self.root, rel, text)

    def commit_all(self, message: str = "change", *, cwd: Path | None = None) -> str:
        self.git("add", "-A", cwd=cwd)
        self.git("commit", "-q", "-m", message, cwd=cwd)
        return self.git("rev-parse", "HEAD", cwd=cwd).strip()

    def worktree(self, name: str) -> Path:
        return self.root.parent / f"{self.root.name}.streams" / name

    def snapshot(self) -> dict[str, object]:
        """Everything on disk and in git that a failed command must leave untouched."""
        files: dict[str, bytes] = {}
        for base in (self.root.parent,):
            for p in sorted(base.rglob("*")):
                if p.is_file() and "/.git/" not in str(p) + "/" and "/cache/" not in str(p):
                    files[str(p.relative_to(base))] = p.read_bytes()
        return {
            "files": files,
            "refs": self.git("for-each-ref", "--format=%(refname) %(objectname)"),
            "worktrees": self.git("worktree", "list", "--porcelain"),
        }


def make_repo(tmp_path: Path, files: dict[str, str] | None = None, config: str | None = DEFAULT_CONFIG) -> Repo:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for rel, text in (DEFAULT_FILES if files is None else files).items():
        write(root, rel, text)
    if config is not None:
        write(root, "streams.yaml", config)
    repo = Repo(root)
    repo.commit_all("initial")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path)


@pytest.fixture
def remote_repo(tmp_path: Path) -> tuple[Repo, Path]:
    """A repository whose ``origin`` is a local bare repository."""
    repo = make_repo(tmp_path)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    repo.git("branch", "-q", "--set-upstream-to=origin/main", "main")
    return repo, bare


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def run_cli(args: Sequence[str], cwd: Path) -> Outcome:
    """Run the CLI in-process under click's CliRunner isolation, stdout and stderr kept apart."""
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with runner.isolation() as (out, err, _):
            code = run_main(list(args))
        return Outcome(code, out.getvalue().decode(), err.getvalue().decode())
    finally:
        os.chdir(old)


def run_streams(args: Sequence[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 120) -> Outcome:
    """Run ``python -m streams`` as a real subprocess (end to end)."""
    proc = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def disk_snapshot(root: Path, *, ignore: Sequence[str] = ()) -> dict[str, object]:
    """Every file (with its bytes) and directory under ``root``, ``.git`` included: what a failed
    command must leave exactly as it was. A repository's refs, worktrees and configuration are files
    there too (loose refs, ``packed-refs``, ``worktrees/``), so they are compared byte for byte.

    ``ignore`` lists paths relative to ``root`` (and everything under them) to leave out; the
    directories leading to them are left out too.
    """
    files: dict[str, bytes] = {}
    dirs: list[str] = []
    skipped = [(i, i.rstrip("/") + "/") for i in ignore]
    top = str(root)
    for folder, subdirs, names in os.walk(top):  # os.walk, not Path.rglob: a fuzz case takes two of these
        base = os.path.relpath(folder, top)
        prefix = "" if base == "." else base.replace(os.sep, "/") + "/"
        for name in names + [d for d in subdirs if os.path.islink(os.path.join(folder, d))]:
            rel = prefix + name
            if any(rel == i or rel.startswith(under) or i.startswith(rel + "/") for i, under in skipped):
                continue
            full = os.path.join(folder, name)
            if os.path.islink(full):
                files[rel] = os.readlink(full).encode()
            elif os.path.isfile(full):
                with open(full, "rb") as fh:
                    files[rel] = fh.read()
        for name in subdirs:
            rel = prefix + name
            if not os.path.islink(os.path.join(folder, name)) and not any(
                rel == i or rel.startswith(under) or i.startswith(rel + "/") for i, under in skipped
            ):
                dirs.append(rel)
    dirs.sort(key=lambda rel: rel.split("/"))
    return {"files": files, "dirs": dirs}


def watch_status(repo: Repo, interval: str, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """A `streams status --watch` process and the list its stdout lines are read into (whole lines,
    newline included), by a daemon thread."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "status", "--watch", "--interval", interval, *args],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def wait_for(pred: Callable[[], object], what: str, limit: float = 90.0) -> None:
    """Poll ``pred`` until it is true; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
