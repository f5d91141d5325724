"""A released lease leaves nothing on the hot path: the post-commit shim starts Python only while
some lease exists, not because of what a released one left behind (its guard, its folders).

Real shims rendered from the templates, real git, real commits and a real sync; the interpreter
baked into the shims is a wrapper that writes down each hook it is started for.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import hooks_install
from streams.kernel import locks, paths
from streams.workspace import discover
from tests.conftest import Repo, make_repo, run_cli
from tests.test_locks import SHARED_CONFIG, SHARED_FILES, common


def _fake_python(tmp_path: Path, log: Path, *, real: bool) -> Path:
    """An interpreter for the shims that logs the hook it runs ("$5": -I -S -c CODE HOOK)."""
    fake = tmp_path / "python"
    then = f'exec {sys.executable} "$@"' if real else "exit 0"
    fake.write_text(f'#!/bin/sh\necho "$5" >> {log}\n{then}\n')
    fake.chmod(0o755)
    return fake


# --- the shim's decision, on its own ---------------------------------------------------------------

NO_LEASE = {
    "no locks folder": [],
    "empty locks folder": ["/"],
    "guards of released leases": [".pyproject.toml.lock.guard", "config/.shared.toml.lock.guard", "a/b/c/"],
    "temp and broken files": [".x.lock.1f2e.tmp", "d/.y.lock.9a8b.broken"],
    "not a lease file": ["x.lock", ".d.lock/", "e/.lock"],
}
LEASE = {
    "top level": [".pyproject.toml.lock.guard", ".pyproject.toml.lock"],
    "nested": ["config/.shared.toml.lock.guard", "config/.shared.toml.lock"],
    "deep, after guards": [".a.lock.guard", "a/b/c/.d.toml.lock"],
    "hidden file": ["..gitignore.lock"],
    "in a hidden folder": [".github/workflows/.ci.yml.lock"],
}


@pytest.mark.parametrize(
    ("layout", "starts"),
    [(v, False) for v in NO_LEASE.values()] + [(v, True) for v in LEASE.values()],
    ids=[*NO_LEASE, *LEASE],
)
def test_post_commit_shim_starts_python_only_for_a_lease(tmp_path: Path, layout: list[str], starts: bool) -> None:
    log = tmp_path / "started"
    common_dir = tmp_path / "common"
    hooks = common_dir / "hooks"
    hooks.mkdir(parents=True)
    shim = hooks / "post-commit"
    shim.write_text(hooks_install.render("post-commit", python=str(_fake_python(tmp_path, log, real=False))))
    shim.chmod(0o755)
    git_dir = common_dir / "worktrees" / "api"
    git_dir.mkdir(parents=True)
    (git_dir / paths.MARKER_FILE).write_text("api\n")
    root = Path(paths.locks_dir(common_dir))
    for rel in layout:
        target = root / rel.lstrip("/")
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("{}")
    env = {**os.environ, "GIT_DIR": str(git_dir)}
    res = subprocess.run(["sh", str(shim)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert log.exists() is starts, layout
    if starts:
        assert log.read_text().split() == ["post-commit"]


# --- end to end -----------------------------------------------------------------------------------------


def _commit(repo: Repo, wt: Path, rel: str, text: str) -> None:
    repo.write(rel, text, cwd=wt)
    repo.git("add", rel, cwd=wt)
    res = subprocess.run(["git", "commit", "-q", "-m", f"change {rel}"], cwd=wt, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_after_lock_and_unlock_no_commit_starts_python_in_post_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SHARED_FILES, SHARED_CONFIG)
    assert run_cli(["start", "api", "ui"], repo.root).code == 0
    log = tmp_path / "python-runs"
    hooks_install.install(discover(repo.root), python=str(_fake_python(tmp_path, log, real=True)))
    api = repo.worktree("api")

    def runs() -> list[str]:
        text = log.read_text() if log.exists() else ""
        log.unlink(missing_ok=True)
        return text.split()

    # Lock and unlock two shared files, one at the top and one in a folder: their guards stay.
    assert run_cli(["lock", "pyproject.toml", "config/shared.toml"], api).code == 0
    assert run_cli(["unlock", "pyproject.toml", "config/shared.toml"], api).code == 0
    assert locks.list_leases(common(repo)) == []
    root = locks.locks_root(common(repo))
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.guard")) == [
        ".pyproject.toml.lock.guard",
        "config/.shared.toml.lock.guard",
    ]
    runs()
    _commit(repo, api, "src/api/app.py", "api v2\n")
    assert "post-commit" not in runs()
    # Nor in the commits a sync replays.
    repo.write("README.md", "main moved\n")
    repo.commit_all("main")
    assert run_cli(["sync", "api"], repo.root).code == 0
    assert repo.git("log", "-1", "--format=%s", cwd=api).strip() == "change src/api/app.py"
    assert "post-commit" not in runs()

    # While a lease exists, post-commit runs; an --until-commit lease is held from the commit of its
    # file until that commit lands (the merge queue releases it), then nothing runs Python again.
    assert run_cli(["lock", "config/shared.toml", "--until-commit"], api).code == 0
    _commit(repo, api, "src/api/app.py", "api v3\n")
    assert "post-commit" in runs()
    assert locks.read_lease(common(repo), "config/shared.toml") is not None
    _commit(repo, api, "config/shared.toml", "a = 2\n")
    assert "post-commit" in runs()
    [held] = locks.list_leases(common(repo))
    assert held.landing == repo.git("rev-parse", "HEAD", cwd=api).strip()
    assert run_cli(["merge", "api", "--keep"], repo.root).code == 0
    assert locks.list_leases(common(repo)) == []
    _commit(repo, api, "src/api/app.py", "api v4\n")
    assert "post-commit" not in runs()
