"""streams/git.py: the one door to git — its environment."""

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
    assert env == {"HOME": "/h", "GIT_TERMINAL_PROMPT": "0"}


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
    env = git._english(git.no_git_env())
    assert "LANGUAGE" not in env and "LC_ALL" not in env
    assert (env["LC_MESSAGES"], env["LC_CTYPE"]) == ("C", "C.UTF-8")
