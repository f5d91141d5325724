"""The configuration in force is streams.yaml as committed on the base (DESIGN "Sync loop", last
paragraph; issue "Safe under real agents", items 4 and 6): an uncommitted edit changes nothing but
a warning, a refusal tells an agent to ask its human, and an ambiguous configuration or a path with
two possible owners is refused by the hooks as well as by the commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo, disk_snapshot, make_repo, run_cli, run_streams
from tests.test_judge import with_guarded_remote

NOT_IN_FORCE = "not in force until committed on main"


def git_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def commit_files(repo: Repo, wt: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for rel, text in files.items():
        repo.write(rel, text, cwd=wt)
    git_run(wt, "add", "-A", "--", *files)
    return git_run(wt, "commit", "-q", "-m", "agent work")


@pytest.fixture
def started(repo: Repo) -> Repo:
    assert run_cli(["start"], repo.root).code == 0
    return repo


def edit_config(repo: Repo, old: str, new: str) -> None:
    path = repo.root / "streams.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    "args",
    [["list"], ["status"], ["verify"], ["sync"], ["owner", "docs/index.md"], ["status", "--json"]],
    ids=lambda a: " ".join(a),
)
def test_every_command_warns_once_when_the_working_copy_differs(started: Repo, args: list[str]) -> None:
    edit_config(started, "  docs:\n    owns: [docs/**]\n", "")
    res = run_streams(args, started.root)
    assert res.code == 0, res.err
    lines = [ln for ln in res.err.splitlines() if NOT_IN_FORCE in ln]
    assert len(lines) == 1, res.err


def test_status_sync_and_owner_judge_by_the_committed_config(started: Repo) -> None:
    # The working copy drops docs and gives docs/ to api: none of it is in force.
    edit_config(started, "  docs:\n    owns: [docs/**]\n", "")
    edit_config(started, "owns: [src/api/**, tests/api/**]", "owns: [src/api/**, tests/api/**, docs/**]")
    started.write("README.md", "moved on\n")
    git_run(started.root, "commit", "-q", "-m", "main moves", "--", "README.md")
    status = run_cli(["status", "--json"], started.root)
    names = [s["name"] for s in __import__("json").loads(status.out)["data"]["streams"]]
    assert names == ["api", "ui", "docs"]
    owner = run_cli(["owner", "docs/index.md"], started.root)
    assert owner.code == 0 and "docs" in owner.out and "api" not in owner.out
    sync = run_cli(["sync"], started.root)
    assert sync.code == 0, sync.err
    main_tip = started.git("rev-parse", "main").strip()
    assert started.git("merge-base", "main", "streams/docs").strip() == main_tip  # docs was synced


def test_start_of_a_stream_only_in_the_uncommitted_copy_says_so(repo: Repo) -> None:
    edit_config(repo, "  docs:\n", "  extra:\n    owns: [extra/**]\n  docs:\n")
    before = disk_snapshot(repo.root.parent, ignore=[".git/streams"])
    res = run_cli(["start", "extra"], repo.root)
    assert res.code == 1
    assert "unknown stream 'extra'" in res.err and "not committed on main" in res.err, res.err
    assert disk_snapshot(repo.root.parent, ignore=[".git/streams"]) == before
    repo.commit_all("streams: extra")
    assert run_cli(["start", "extra"], repo.root).code == 0


def test_refusals_tell_the_agent_to_ask_its_human_never_to_edit_the_config(started: Repo) -> None:
    api = started.worktree("api")
    res = commit_files(started, api, {"README.md": "mine now\n"})
    assert res.returncode == 1 and "ask your human" in res.stderr
    git_run(api, "reset", "-q", "--", "README.md")
    res = commit_files(started, api, {"streams.yaml": "version: 1\n"})
    assert res.returncode == 1 and "ask them" in res.stderr and "main worktree" not in res.stderr


# --- two owners -------------------------------------------------------------------------------------

TWO_OWNERS = """\
version: 1
base: main
streams:
  lib:
    owns: [lib/**]
  gen:
    owns: ['*.gen.py']
"""


def test_a_new_path_with_two_possible_owners_is_refused_for_both(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"lib/x.py": "x\n", "tools/y.gen.py": "y\n"}, config=TWO_OWNERS)
    with_guarded_remote(repo, tmp_path)
    assert run_cli(["start"], repo.root).code == 0  # no tracked file has two owners
    for name in ("lib", "gen"):
        wt = repo.worktree(name)
        res = commit_files(repo, wt, {"lib/new.gen.py": "both?\n"})
        assert res.returncode == 1, (name, res.stderr)
        assert "owned by" in res.stderr and "lib" in res.stderr and "gen" in res.stderr
        assert "two owners" in res.stderr
        git_run(wt, "reset", "-q")
    # Their own paths still go through.
    assert commit_files(repo, repo.worktree("lib"), {"lib/ok.py": "ok\n"}).returncode == 0
    assert commit_files(repo, repo.worktree("gen"), {"tools/z.gen.py": "ok\n"}).returncode == 0
    # Past the hooks (--no-verify and no reference-transaction: a raw update-ref), verify catches it.
    gen = repo.worktree("gen")
    repo.write("lib/new.gen.py", "both?\n", cwd=gen)
    git_run(gen, "add", "lib/new.gen.py")
    tree = git_run(gen, "write-tree").stdout.strip()
    parent = git_run(gen, "rev-parse", "HEAD").stdout.strip()
    sneaked = git_run(gen, "commit-tree", tree, "-p", parent, "-m", "sneak").stdout.strip()
    git_run(repo.root, "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/streams/gen", sneaked)
    verdict = run_cli(["verify", "--stream", "gen"], repo.root)
    assert verdict.code == 5 and "lib/new.gen.py" in verdict.out and "two owners" in verdict.out
    pushed = subprocess.run(
        ["git", "push", "origin", "streams/gen"],
        cwd=gen,
        capture_output=True,
        text=True,
        env={**os.environ, "STREAMS": f"{sys.executable} -m streams"},
    )
    assert pushed.returncode != 0 and "lib/new.gen.py" in pushed.stderr, pushed.stderr


AMBIGUOUS = TWO_OWNERS.replace("owns: [lib/**]", "owns: [lib/**, docs/**]").replace(
    "owns: ['*.gen.py']", "owns: ['*.gen.py', docs/**]"
)


def test_the_hooks_refuse_an_ambiguous_committed_config(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path, files={"lib/x.py": "x\n", "tools/y.gen.py": "y\n", "docs/a.md": "a\n"}, config=TWO_OWNERS
    )
    assert run_cli(["start"], repo.root).code == 0
    repo.write("streams.yaml", AMBIGUOUS)
    repo.commit_all("streams: both own docs")  # a human commits an ambiguous configuration
    for name, files in (
        ("lib", {"docs/a.md": "lib's\n"}),
        ("gen", {"docs/a.md": "gen's\n"}),
        ("lib", {"lib/y.py": "y\n"}),
    ):
        res = commit_files(repo, repo.worktree(name), files)
        assert res.returncode == 1, (name, res.stderr)
        assert "docs/a.md" in res.stderr and "ask your human" in res.stderr.lower(), res.stderr
        git_run(repo.worktree(name), "reset", "-q")
    for args in (["status"], ["sync"], ["verify"], ["list"]):
        out = run_cli(args, repo.root)
        assert out.code == 1 and "docs/a.md" in out.err, (args, out.err)


def test_a_renamed_base_is_followed_through_the_working_copy(started: Repo) -> None:
    started.git("branch", "-m", "main", "trunk")
    edit_config(started, "base: main\n", "base: trunk\n")
    started.commit_all("streams: the base is trunk now")
    res = run_cli(["list"], started.root)
    assert res.code == 0, res.err
    assert "not in force" not in res.err
