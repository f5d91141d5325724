"""Upstream rewrites are not undone (issue "Scope that holds against a determined agent", item 5):
a commit force-pushed away from the base never comes back through sync."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import make_repo, run_cli

CONFIG = """\
version: 1
base: main
remote: origin
streams:
  api:
    owns: [src/api/**]
  docs:
    owns: [docs/**]
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_a_commit_dropped_upstream_is_not_replayed_or_pushed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"src/api/a.py": "a\n", "docs/i.md": "d\n", "README.md": "r\n"}, config=CONFIG)
    bare = tmp_path / "remote.git"
    repo.git("init", "-q", "--bare", "-b", "main", str(bare))
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    assert run_cli(["start"], repo.root).code == 0
    # A secret lands on main, every stream syncs onto it and is pushed.
    repo.write("SECRET.txt", "hunter2\n")
    secret = repo.commit_all("oops: a secret")
    repo.git("push", "-q", "origin", "main")
    assert run_cli(["sync"], repo.root).code == 0
    # Upstream drops it by force-push (from another clone), and adds a fix.
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(bare), str(other)], check=True)
    git(other, "reset", "-q", "--hard", "HEAD~1")
    (other / "README.md").write_text("r2\n")
    git(other, "commit", "-qam", "readme")
    git(other, "push", "-q", "--force", "origin", "main")
    res = run_cli(["sync"], repo.root)
    assert res.code == 4, res.out + res.err
    assert "upstream rewritten" in res.out and secret[:12] in res.err and "git rebase --onto" in res.err
    for name in ("api", "docs"):
        remote_branch = git(bare, "rev-parse", f"streams/{name}")
        assert subprocess.run(["git", "merge-base", "--is-ancestor", secret, remote_branch], cwd=bare).returncode == 0
        # ... it was there before; sync neither replayed it onto the new main nor pushed a new copy.
        tip = repo.git("rev-parse", f"streams/{name}").strip()
        new_main = git(bare, "rev-parse", "main")
        assert subprocess.run(["git", "merge-base", "--is-ancestor", new_main, tip], cwd=repo.root).returncode != 0
    # The human follows the advice for api: the secret is gone from it; docs still waits.
    api = repo.worktree("api")
    old = secret
    subprocess.run(["git", "rebase", "-q", "--onto", "origin/main", old, "streams/api"], cwd=api, check=True)
    res = run_cli(["sync"], repo.root)
    out = res.out + res.err
    assert "api" in out and res.code == 4  # docs still holds it
    assert subprocess.run(["git", "merge-base", "--is-ancestor", secret, "streams/api"], cwd=repo.root).returncode != 0
    assert not [ln for ln in res.out.splitlines() if ln.startswith("api") and "rewritten" in ln]


SIMPLE = "version: 1\nbase: main\nstreams:\n  api:\n    owns: [src/api/**]\n"


def test_sync_skips_a_worktree_with_a_merge_in_progress_and_says_so(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"src/api/a.py": "a\n", "README.md": "r\n"}, config=SIMPLE)
    assert run_cli(["start"], repo.root).code == 0
    api = repo.worktree("api")
    git(api, "checkout", "-q", "-b", "side")
    (api / "src" / "api" / "b.py").write_text("b\n")
    git(api, "add", "-A")
    git(api, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "side")
    git(api, "checkout", "-q", "streams/api")
    git(api, "merge", "--no-ff", "--no-commit", "side")
    repo.write("README.md", "main moves\n")
    repo.commit_all("main moves")
    res = run_cli(["sync"], repo.root)
    assert "a merge is in progress" in res.out, res.out
    assert (Path(git(api, "rev-parse", "--absolute-git-dir")) / "MERGE_HEAD").exists()  # not dropped


def test_sync_never_overwrites_an_ignored_file_the_upstream_starts_tracking(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"src/api/a.py": "a\n", ".gitignore": ".env\n"}, config=SIMPLE)
    assert run_cli(["start"], repo.root).code == 0
    api = repo.worktree("api")
    (api / ".env").write_text("MY_TOKEN=local\n")
    repo.write(".env", "SHARED=1\n")
    repo.git("add", "-f", ".env")
    repo.commit_all("main tracks .env")
    res = run_cli(["sync"], repo.root)
    assert ".env" in res.out and "ignored file" in res.out, res.out
    assert (api / ".env").read_text() == "MY_TOKEN=local\n"
