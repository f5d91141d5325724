"""Nothing half done, and gates that report failure fail (issue "Scope that holds against a
determined agent", items 6 and 7, the parts outside sync's halts): a refused command leaves the disk
exactly as it was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo, disk_snapshot, make_repo, run_cli

OVERLAP = """\
version: 1
base: main
streams:
  api:
    owns: [src/**]
  ui:
    owns: [src/ui/**]
"""


def common_state(repo: Repo) -> dict[str, object]:
    return disk_snapshot(repo.root.parent)


def test_start_with_core_hookspath_refuses_before_creating_anything(repo: Repo) -> None:
    repo.git("config", "core.hooksPath", ".githooks")
    before = common_state(repo)
    refs = repo.git("for-each-ref")
    res = run_cli(["start"], repo.root)
    assert res.code == 1 and "core.hooksPath" in res.err
    assert repo.git("for-each-ref") == refs
    assert common_state(repo) == before
    assert not (repo.root.parent / "repo.streams").exists()


@pytest.mark.parametrize("root", ["/", ".git/streams", "./.git", "../{repo}/.git/wt"])
def test_a_worktree_root_at_the_file_system_root_or_inside_git_is_a_config_error(tmp_path: Path, root: str) -> None:
    config = f"version: 1\nbase: main\nworktree_root: '{root}'\nstreams:\n  api:\n    owns: [src/api/**]\n"
    repo = make_repo(tmp_path, config=config)
    before = common_state(repo)
    res = run_cli(["start"], repo.root)
    assert res.code == 1 and "worktree_root" in res.err, res.err
    assert common_state(repo) == before


@pytest.mark.parametrize("flag", ["--continue", "--abort"])
def test_sync_continue_or_abort_with_an_empty_name_is_a_usage_error(repo: Repo, flag: str) -> None:
    assert run_cli(["start"], repo.root).code == 0
    repo.write("README.md", "main moves\n")
    repo.commit_all("main moves")
    tips = repo.git("for-each-ref", "refs/heads/streams")
    res = run_cli(["sync", flag, ""], repo.root)
    assert res.code == 2 and "needs the name of a halted stream" in res.err
    assert repo.git("for-each-ref", "refs/heads/streams") == tips  # no pass ran


def test_a_refused_config_leaves_the_disk_as_it_was(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, config=OVERLAP)
    (repo.root / ".git" / "streams").mkdir(exist_ok=True)
    before = common_state(repo)
    for args in (["start"], ["status"], ["verify"], ["list"]):
        res = run_cli(args, repo.root)
        assert res.code == 1 and "owned by both" in res.err, (args, res.err)
        assert common_state(repo) == before, args


def test_verify_with_the_base_missing_says_so(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    repo.git("branch", "-m", "main", "trunk")
    res = run_cli(["verify"], repo.root)
    assert res.code == 1 and "'main' does not exist" in res.err, res.err
    res = run_cli(["verify", "--config-rev", "trunk"], repo.root)
    assert res.code == 1 and "'main' does not exist" in res.err and "violation" not in res.out, (res.out, res.err)


def test_a_failing_verify_fails_through_a_closed_pipe(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    api = repo.worktree("api")
    for i in range(1500):  # more report than a pipe holds: the writer meets the closed pipe
        repo.write(f"src/ui/gen/file-{i:04}.ts", "not api's\n", cwd=api)
    repo.git("add", "-A", cwd=api)
    repo.git("-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "bad", cwd=api)
    script = f"set -o pipefail; {sys.executable} -m streams verify | head -n 1 >/dev/null"
    res = subprocess.run(["bash", "-c", script], cwd=repo.root, capture_output=True, text=True)
    assert res.returncode == 5, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr


def test_progress_for_another_stream_from_a_streams_worktree_is_refused(repo: Repo) -> None:
    assert run_cli(["start", "api", "ui"], repo.root).code == 0
    before = repo.git("rev-parse", "streams/ui").strip()
    res = run_cli(["progress", "--stream", "ui", "--completion", "90"], repo.worktree("api"))
    assert res.code == 1 and "writes only its own progress" in res.err
    assert repo.git("rev-parse", "streams/ui").strip() == before
    assert run_cli(["progress", "--stream", "ui", "--completion", "90"], repo.root).code == 0  # from main: fine
