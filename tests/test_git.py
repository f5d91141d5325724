"""streams/git/: the one door to git — its environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from streams import git

GERMAN = {"LANGUAGE": "de", "LC_ALL": "C.UTF-8"}


def test_hook_time_variables_are_stripped() -> None:
    env = git.no_git_env(
        {"GIT_DIR": "/x", "GIT_INDEX_FILE": "/y", "GIT_CONFIG_KEY_0": "a", "GIT_CONFIG_VALUE_0": "b", "HOME": "/h"}
    )
    assert env == {"HOME": "/h", "GIT_TERMINAL_PROMPT": "0", **git.JUDGE_ENV}


def test_git_answers_streams_in_english_whatever_the_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """streams parses git's messages (a rebase's blocking files, a push's rejection): a user's
    German locale must not change them. Their character set stays."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    german = subprocess.run(
        ["git", "checkout", "nope"], cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **GERMAN}
    )
    if not german.stderr.startswith("Fehler"):
        pytest.skip("git's German messages are not installed here")
    for key, value in GERMAN.items():
        monkeypatch.setenv(key, value)
    for res in (
        git.run("checkout", "nope", cwd=tmp_path, check=False),
        git.run_unpiped("checkout", "nope", cwd=tmp_path),
    ):
        assert res.returncode == 1 and res.stderr.startswith(b"error: pathspec 'nope'"), res.stderr
    env = git.door._english(git.no_git_env())
    assert "LANGUAGE" not in env and "LC_ALL" not in env
    assert (env["LC_MESSAGES"], env["LC_CTYPE"]) == ("C", "C.UTF-8")


def test_one_status_parser_serves_dirty_paths_renames_and_conflicts(tmp_path: Path) -> None:
    """``git.status`` (porcelain v2, -z) feeds both ``is_dirty`` (a rename: its new path) and the
    dashboard (both sides, and unmerged paths)."""
    from tests.conftest import git as sh

    sh(tmp_path, "init", "-q", "-b", "main")
    for name in ("a.txt", "b.txt", "odd name\n.txt"):
        (tmp_path / name).write_text(f"{name}\n")
    sh(tmp_path, "add", "-A")
    sh(tmp_path, "commit", "-qm", "one")
    sh(tmp_path, "mv", "a.txt", "moved.txt")
    (tmp_path / "b.txt").write_text("changed\n")
    (tmp_path / "new file.txt").write_text("new\n")
    entries = {e.path: e for e in git.status(tmp_path)}
    assert entries["moved.txt"] == git.StatusEntry("2", "R.", "moved.txt", "a.txt")
    assert entries["b.txt"].xy == ".M" and entries["new file.txt"] == git.StatusEntry("?", "??", "new file.txt", None)
    assert sorted(git.is_dirty(tmp_path)) == ["b.txt", "moved.txt", "new file.txt"]
    assert sorted(git.is_dirty(tmp_path, untracked=False)) == ["b.txt", "moved.txt"]
    assert not (tmp_path / ".git" / "index.lock").exists()

    sh(tmp_path, "reset", "-q", "--hard")
    sh(tmp_path, "switch", "-qc", "side")
    (tmp_path / "b.txt").write_text("side\n")
    sh(tmp_path, "commit", "-qam", "side")
    sh(tmp_path, "switch", "-q", "main")
    (tmp_path / "b.txt").write_text("main\n")
    sh(tmp_path, "commit", "-qam", "main")
    sh(tmp_path, "merge", "-q", "side", check=False)
    assert [(e.kind, e.xy, e.path) for e in git.status(tmp_path, untracked=False)] == [("u", "UU", "b.txt")]
    assert git.operation_in_progress(tmp_path / ".git") == "merge"
