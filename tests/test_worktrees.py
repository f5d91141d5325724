"""`streams start / stop / list` against real repositories and real worktrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo, disk_snapshot, git, make_repo, run_cli

# Runtime state a refused command may create: the worktree lock file and the validation cache.
STATE = ("repo/.git/streams",)
CACHE = ("repo/.git/streams/cache",)  # content-keyed caches of the parsed config: disposable


def snapshot(repo: Repo) -> dict[str, object]:
    return disk_snapshot(repo.root.parent, ignore=STATE)


def rev(repo: Repo, name: str) -> str:
    return repo.git("rev-parse", name).strip()


def marker(worktree: Path) -> str:
    git_dir = Path(git(worktree, "rev-parse", "--absolute-git-dir").strip())
    return (git_dir / "streams-stream").read_text().strip()


def list_json(repo: Repo, cwd: Path | None = None) -> dict[str, dict[str, object]]:
    result = run_cli(["list", "--json"], cwd or repo.root)
    assert result.code == 0, result.err
    return {s["name"]: s for s in json.loads(result.out)["data"]["streams"]}


# --- start -------------------------------------------------------------------------------------


def test_start_makes_branch_worktree_marker_and_progress_commit(remote_repo: tuple[Repo, Path]) -> None:
    repo, _ = remote_repo
    base = rev(repo, "main")
    result = run_cli(["start", "api"], repo.root)
    assert result.code == 0, result.err
    assert result.out.splitlines()[1].split() == ["api", "streams/api", "../repo.streams/api", "started"]

    wt = repo.worktree("api")
    assert (wt / "src/api/app.py").is_file()
    assert repo.git("branch", "--show-current", cwd=wt).strip() == "streams/api"
    assert marker(wt) == "api"
    # One commit on top of the base, adding only the progress file.
    tip = rev(repo, "streams/api")
    assert rev(repo, "streams/api~1") == base
    assert repo.git("diff", "--name-only", base, tip).split() == [".streams/stream-api.md"]
    progress = repo.git("show", f"{tip}:.streams/stream-api.md")
    assert progress.startswith("---\nstream: api\n")
    assert "status: pending\n" in progress and "completion: 0\n" in progress
    assert (wt / ".streams/stream-api.md").read_text() == progress
    assert repo.git("status", "--porcelain", cwd=wt) == ""
    # No upstream: the stream branch must not track main or origin/main.
    assert repo.git("config", "--get-regexp", r"^branch\.streams/", check=False) == ""
    assert repo.git("for-each-ref", "--format=%(upstream)", "refs/heads/streams/api").strip() == ""
    # The base and the main worktree are untouched.
    assert rev(repo, "main") == base
    assert repo.git("status", "--porcelain") == ""


def test_start_all_then_again_reports_already_started_and_changes_nothing(repo: Repo) -> None:
    first = run_cli(["start"], repo.root)
    assert first.code == 0, first.err
    assert [ln.split()[0] for ln in first.out.splitlines()[1:]] == ["api", "ui", "docs"]
    before = snapshot(repo)
    again = run_cli(["start"], repo.root)
    assert again.code == 0, again.err
    assert [ln.split()[-2:] for ln in again.out.splitlines()[1:]] == [["already", "started"]] * 3
    assert snapshot(repo) == before


def test_start_json_reports_each_stream(repo: Repo) -> None:
    run_cli(["start", "docs"], repo.root)
    result = run_cli(["start", "--json", "api", "docs"], repo.root)
    assert result.code == 0, result.err
    env = json.loads(result.out)
    got = {s["name"]: (s["outcome"], s["branch_created"], s["head"]) for s in env["data"]["streams"]}
    assert got == {
        "api": ("started", True, rev(repo, "streams/api")),
        "docs": ("already started", False, rev(repo, "streams/docs")),
    }


def test_start_reuses_an_existing_branch_and_keeps_its_commits(repo: Repo) -> None:
    repo.git("branch", "streams/ui")
    repo.git("switch", "-q", "streams/ui")
    repo.write("src/ui/extra.ts", "// earlier work\n")
    earlier = repo.commit_all("earlier work on ui")
    repo.git("switch", "-q", "main")

    result = run_cli(["start", "ui"], repo.root)
    assert result.code == 0, result.err
    tip = rev(repo, "streams/ui")
    assert rev(repo, "streams/ui~1") == earlier, "the progress commit goes on top of the existing work"
    assert (repo.worktree("ui") / "src/ui/extra.ts").read_text() == "// earlier work\n"
    assert json.loads(run_cli(["start", "--json", "ui"], repo.root).out)["data"]["streams"][0]["head"] == tip

    # Stop and start again: the branch (with its progress file) is reused as it is, no new commit.
    assert run_cli(["stop", "--force", "ui"], repo.root).code == 0
    again = run_cli(["start", "--json", "ui"], repo.root)
    assert again.code == 0, again.err
    data = json.loads(again.out)["data"]["streams"][0]
    assert (data["outcome"], data["branch_created"], data["head"]) == ("started", False, tip)
    assert rev(repo, "streams/ui") == tip


def test_start_of_a_subset_leaves_the_others_alone(repo: Repo) -> None:
    result = run_cli(["start", "docs", "api"], repo.root)
    assert result.code == 0, result.err
    assert [ln.split()[0] for ln in result.out.splitlines()[1:]] == ["docs", "api"]
    assert repo.worktree("api").is_dir() and repo.worktree("docs").is_dir()
    assert not repo.worktree("ui").exists()
    assert repo.git("branch", "--list", "streams/ui") == ""
    states = list_json(repo)
    assert {n: s["state"] for n, s in states.items()} == {"api": "started", "ui": "not started", "docs": "started"}


def test_start_unknown_name_lists_the_known_ones_and_creates_nothing(repo: Repo) -> None:
    before = disk_snapshot(repo.root.parent, ignore=CACHE)
    result = run_cli(["start", "api", "nope"], repo.root)
    assert result.code == 1
    assert result.err == "streams: error: unknown stream 'nope' (known streams: api, ui, docs; see streams.yaml)\n"
    assert disk_snapshot(repo.root.parent, ignore=CACHE) == before


def test_start_fails_on_a_foreign_directory_before_creating_anything(repo: Repo) -> None:
    foreign = repo.worktree("ui")
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine\n")
    before = snapshot(repo)
    result = run_cli(["start"], repo.root)  # api comes first in the config and must not be created
    assert result.code == 1
    assert len(result.err.splitlines()) == 1
    assert f"{foreign} already exists and is not the worktree of stream 'ui'" in result.err
    assert snapshot(repo) == before
    assert (foreign / "notes.txt").read_text() == "mine\n"


def test_start_fails_cleanly_when_the_worktree_root_is_a_file(repo: Repo) -> None:
    (repo.root.parent / "repo.streams").write_text("not a directory\n")
    before = snapshot(repo)
    result = run_cli(["start", "api"], repo.root)
    assert result.code == 1, result
    assert "repo.streams is a file" in result.err and "worktree_root" in result.err
    assert snapshot(repo) == before


def test_an_empty_directory_at_the_worktree_path_is_used(repo: Repo) -> None:
    repo.worktree("api").mkdir(parents=True)
    assert run_cli(["start", "api"], repo.root).code == 0
    assert marker(repo.worktree("api")) == "api"


def test_start_refuses_a_stream_branch_checked_out_in_the_main_worktree(repo: Repo) -> None:
    repo.git("switch", "-q", "-c", "streams/api")
    before = snapshot(repo)
    result = run_cli(["start", "api"], repo.root)
    assert result.code == 1
    assert "branch streams/api is checked out in" in result.err
    assert snapshot(repo) == before


def test_start_from_inside_a_stream_worktree_uses_the_main_worktree(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    result = run_cli(["start", "docs"], repo.worktree("api"))
    assert result.code == 0, result.err
    assert repo.worktree("docs").is_dir()
    assert not (repo.worktree("api") / "repo.streams").exists()


def test_start_recreates_a_worktree_deleted_by_hand(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    tip = rev(repo, "streams/api")
    subprocess.run(["rm", "-rf", str(repo.worktree("api"))], check=True)
    assert list_json(repo)["api"]["state"] == "branch only"
    result = run_cli(["start", "api"], repo.root)
    assert result.code == 0, result.err
    assert "already" not in result.out
    assert rev(repo, "streams/api") == tip
    assert list_json(repo)["api"]["state"] == "started"


# --- stop --------------------------------------------------------------------------------------


@pytest.fixture
def started(repo: Repo) -> Repo:
    result = run_cli(["start"], repo.root)
    assert result.code == 0, result.err
    return repo


def test_stop_clean_stream_removes_worktree_keeps_branch_and_prints_tip(started: Repo) -> None:
    repo = started
    tip = rev(repo, "streams/api")
    result = run_cli(["stop", "api"], repo.root)
    assert result.code == 0, result.err
    assert result.out == f"api: worktree ../repo.streams/api removed; branch streams/api kept at {tip[:12]}\n"
    assert not repo.worktree("api").exists()
    assert rev(repo, "streams/api") == tip
    assert "repo.streams/api" not in repo.git("worktree", "list")


@pytest.mark.parametrize("kind", ["modified", "untracked", "staged", "deleted"])
def test_stop_refuses_a_dirty_worktree_and_changes_nothing(started: Repo, kind: str) -> None:
    repo = started
    wt = repo.worktree("api")
    if kind == "modified":
        (wt / "src/api/app.py").write_text("changed\n")
    elif kind == "untracked":
        (wt / "src/api/new.py").write_text("new\n")
    elif kind == "staged":
        (wt / "src/api/new.py").write_text("new\n")
        repo.git("add", "src/api/new.py", cwd=wt)
    else:
        (wt / "src/api/app.py").unlink()
    before = snapshot(repo)
    result = run_cli(["stop", "api"], repo.root)
    assert result.code == 1
    assert len(result.err.splitlines()) == 1
    assert "stream 'api' has 1 uncommitted change" in result.err and "--force" in result.err
    assert snapshot(repo) == before


def test_stop_refuses_unmerged_commits_and_changes_nothing(started: Repo) -> None:
    repo = started
    wt = repo.worktree("docs")
    repo.write("docs/guide.md", "# guide\n", cwd=wt)
    tip = repo.commit_all("guide", cwd=wt)
    before = snapshot(repo)
    for args in (["stop", "docs"], ["stop", "docs", "--delete-branch"]):
        result = run_cli(args, repo.root)
        assert result.code == 1
        assert result.err == (
            f"streams: error: branch streams/docs has 1 commit not on main (tip {tip[:12]}); merge them first, "
            "or pass --force (the tip is printed so nothing is lost)\n"
        )
        assert snapshot(repo) == before


def test_stop_one_refusal_stops_nothing(started: Repo) -> None:
    repo = started
    (repo.worktree("ui") / "src/ui/wip.ts").write_text("wip\n")
    before = snapshot(repo)
    result = run_cli(["stop", "api", "ui"], repo.root)
    assert result.code == 1 and "stream 'ui'" in result.err
    assert snapshot(repo) == before
    assert repo.worktree("api").is_dir()


def test_progress_commits_and_merged_work_do_not_count_as_unmerged(started: Repo) -> None:
    repo = started
    wt = repo.worktree("docs")
    repo.write(".streams/stream-docs.md", "---\nstream: docs\nstatus: in_progress\n---\n", cwd=wt)
    repo.commit_all("progress", cwd=wt)
    repo.write("docs/guide.md", "# guide\n", cwd=wt)
    repo.commit_all("guide", cwd=wt)
    # The same change lands on main by cherry-pick: its patch is on the base.
    repo.git("cherry-pick", "streams/docs")
    result = run_cli(["stop", "docs"], repo.root)
    assert result.code == 0, result.err
    assert "not on main" not in result.out


def test_stop_force_saves_uncommitted_work_to_a_ref(started: Repo) -> None:
    repo = started
    wt = repo.worktree("api")
    tip = rev(repo, "streams/api")
    (wt / "src/api/app.py").write_text("edited\n")
    (wt / "src/api/new.py").write_text("brand new\n")
    (wt / "tests/api/test_app.py").unlink()
    repo.git("add", "src/api/app.py", cwd=wt)
    result = run_cli(["stop", "--force", "api"], repo.root)
    assert result.code == 0, result.err
    saved_refs = repo.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/streams/saved/api/").split()
    assert len(saved_refs) == 2, saved_refs
    ref, commit = saved_refs
    assert f"uncommitted work saved as {ref} ({commit[:12]})" in result.out
    assert f"branch streams/api kept at {tip[:12]}" in result.out
    assert not wt.exists()
    # The saved commit sits on the tip and holds every edit, staged or not, tracked or not.
    assert rev(repo, f"{commit}^") == tip
    assert repo.git("show", f"{commit}:src/api/app.py") == "edited\n"
    assert repo.git("show", f"{commit}:src/api/new.py") == "brand new\n"
    assert repo.git("diff", "--name-status", tip, commit).splitlines() == [
        "M\tsrc/api/app.py",
        "A\tsrc/api/new.py",
        "D\ttests/api/test_app.py",
    ]
    assert rev(repo, "streams/api") == tip, "the branch itself is not moved"


def test_stop_force_with_unmerged_commits_prints_the_tip_it_leaves(started: Repo) -> None:
    repo = started
    wt = repo.worktree("docs")
    repo.write("docs/guide.md", "# guide\n", cwd=wt)
    tip = repo.commit_all("guide", cwd=wt)
    result = run_cli(["stop", "--force", "docs"], repo.root)
    assert result.code == 0, result.err
    assert result.out == (
        f"docs: worktree ../repo.streams/docs removed; branch streams/docs kept at {tip[:12]}, 1 commit not on main\n"
    )
    assert rev(repo, "streams/docs") == tip


def test_stop_delete_branch_prints_how_to_restore_it(started: Repo) -> None:
    repo = started
    wt = repo.worktree("docs")
    repo.write("docs/guide.md", "# guide\n", cwd=wt)
    tip = repo.commit_all("guide", cwd=wt)
    result = run_cli(["stop", "--force", "--delete-branch", "docs"], repo.root)
    assert result.code == 0, result.err
    assert f"deleted branch streams/docs (was {tip[:12]}; `git branch streams/docs {tip}` restores it)" in result.out
    assert repo.git("branch", "--list", "streams/docs") == ""
    # Following the printed advice restores every commit.
    repo.git("branch", "streams/docs", tip)
    assert repo.git("show", "streams/docs:docs/guide.md") == "# guide\n"


def test_stop_delete_branch_without_unmerged_work_needs_no_force(started: Repo) -> None:
    repo = started
    tip = rev(repo, "streams/ui")
    result = run_cli(["stop", "--delete-branch", "ui"], repo.root)
    assert result.code == 0, result.err
    assert f"(was {tip[:12]};" in result.out
    assert repo.git("branch", "--list", "streams/ui") == ""


def test_stop_of_a_not_started_stream_is_idempotent(repo: Repo) -> None:
    before = snapshot(repo)
    result = run_cli(["stop", "api"], repo.root)
    assert result.code == 0, result.err
    assert result.out == "api: not started; no branch streams/api\n"
    assert snapshot(repo) == before
    assert run_cli(["start", "api"], repo.root).code == 0
    assert run_cli(["stop", "api"], repo.root).code == 0
    tip = rev(repo, "streams/api")
    again = run_cli(["stop", "api"], repo.root)
    assert again.code == 0, again.err
    assert again.out == f"api: not started; branch streams/api kept at {tip[:12]}\n"


def test_stop_then_start_again(started: Repo) -> None:
    repo = started
    assert run_cli(["stop", "api"], repo.root).code == 0
    result = run_cli(["start", "api"], repo.root)
    assert result.code == 0, result.err
    assert result.out.splitlines()[1].split()[-1] == "started" and "already" not in result.out
    assert marker(repo.worktree("api")) == "api"
    assert list_json(repo)["api"]["state"] == "started"


def test_stop_refuses_a_rebase_in_progress(started: Repo) -> None:
    repo = started
    wt = repo.worktree("docs")
    repo.write("docs/index.md", "# stream\n", cwd=wt)
    repo.commit_all("stream edit", cwd=wt)
    repo.write("docs/index.md", "# main\n")
    repo.commit_all("main edit")
    repo.git("rebase", "main", cwd=wt, check=False)  # conflicts, and stays in progress
    assert (Path(repo.git("rev-parse", "--absolute-git-dir", cwd=wt).strip()) / "rebase-merge").is_dir()
    # Detached mid-rebase, the worktree is still the stream's: found by its marker, not its branch.
    assert list_json(repo)["docs"]["state"] == "started"
    assert "already started" in run_cli(["start", "docs"], repo.root).out
    before = snapshot(repo)
    result = run_cli(["stop", "docs"], repo.root)
    assert result.code == 1
    assert result.err.splitlines() == [
        f"streams: error: stream 'docs' has a rebase in progress in {wt}; finish or abort it, "
        "or pass --force (uncommitted work is saved to a ref first)"
    ]
    assert snapshot(repo) == before


# --- list --------------------------------------------------------------------------------------


def test_list_json_shows_every_state(repo: Repo) -> None:
    assert run_cli(["start", "api", "ui"], repo.root).code == 0
    assert run_cli(["stop", "ui"], repo.root).code == 0
    # A stream worktree whose stream was removed from streams.yaml.
    assert run_cli(["start", "docs"], repo.root).code == 0
    config = (repo.root / "streams.yaml").read_text()
    (repo.root / "streams.yaml").write_text(config.replace("  docs:\n    owns: [docs/**]\n", ""))
    repo.commit_all("streams: drop docs")

    result = run_cli(["list", "--json"], repo.root)
    assert result.code == 0, result.err
    env = json.loads(result.out)
    assert env["ok"] is True and env["command"] == "list" and env["data"]["base"] == "main"
    rows = {s["name"]: s for s in env["data"]["streams"]}
    assert {n: s["state"] for n, s in rows.items()} == {
        "api": "started",
        "ui": "branch only",
        "docs": "unconfigured",
    }
    assert rows["api"]["path"] == str(repo.worktree("api"))
    assert rows["api"]["head"] == rev(repo, "streams/api")
    assert rows["ui"]["head"] == rev(repo, "streams/ui")
    assert rows["docs"]["branch"] == "streams/docs"

    (repo.root / "streams.yaml").write_text(config + "  extra:\n    owns: [extra/**]\n")
    repo.commit_all("streams: extra")
    rows = list_json(repo)
    assert (rows["extra"]["state"], rows["extra"]["head"]) == ("not started", None)
    assert rows["extra"]["path"] == str(repo.worktree("extra"))
    assert rows["docs"]["state"] == "started"


def test_list_text_from_inside_a_stream(started: Repo) -> None:
    repo = started
    result = run_cli(["list"], repo.worktree("ui"))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["STREAM", "BRANCH", "STATE", "HEAD", "PATH"]
    assert [ln.split()[0] for ln in lines[1:]] == ["api", "ui", "docs"]


def test_worktree_root_setting_is_honoured(tmp_path: Path) -> None:
    config = "version: 1\nbase: main\nworktree_root: ../trees/{repo}\nstreams:\n  docs:\n    owns: [docs/**]\n"
    repo = make_repo(tmp_path, config=config)
    assert run_cli(["start"], repo.root).code == 0
    assert (tmp_path / "trees" / "repo" / "docs" / "docs" / "index.md").is_file()


# --- concurrency -------------------------------------------------------------------------------


def test_two_processes_start_different_streams_at_once(repo: Repo) -> None:
    # Hold the worktree lock so both processes are queued on it, then let them race.
    from filelock import FileLock

    (repo.root / ".git" / "streams").mkdir()
    lock = FileLock(str(repo.root / ".git" / "streams" / "worktrees.lock"))
    lock.acquire()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "streams", "start", name],
            cwd=repo.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for name in ("api", "ui", "docs")
    ]
    try:
        # Each says it waits (on stderr) once it meets the held lock.
        for p in procs:
            assert p.stderr is not None
            assert "waiting for another streams process" in p.stderr.readline()
    finally:
        lock.release()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    worktrees = repo.git("worktree", "list", "--porcelain")
    for name in ("api", "ui", "docs"):
        assert f"branch refs/heads/streams/{name}\n" in worktrees
        assert marker(repo.worktree(name)) == name
    assert repo.git("worktree", "list").count("\n") == 4


def test_stop_a_worktree_deleted_by_hand(started: Repo) -> None:
    repo = started
    tip = rev(repo, "streams/api")
    subprocess.run(["rm", "-rf", str(repo.worktree("api"))], check=True)
    result = run_cli(["stop", "api"], repo.root)
    assert result.code == 0, result.err
    assert f"branch streams/api kept at {tip[:12]}" in result.out
    assert "repo.streams/api" not in repo.git("worktree", "list")


def test_paths_with_spaces_and_unicode(tmp_path: Path) -> None:
    parent = tmp_path / "my wörk dir"
    parent.mkdir()
    repo = make_repo(parent)
    result = run_cli(["start", "docs"], repo.root / "src")
    assert result.code == 0, result.err
    wt = parent / "repo.streams" / "docs"
    assert marker(wt) == "docs" and (wt / "docs" / "index.md").is_file()
    assert run_cli(["stop", "docs"], repo.root).code == 0
    assert not wt.exists()


def test_a_stream_removed_from_the_config_can_still_be_stopped_by_its_old_name(started: Repo) -> None:
    config = started.root.joinpath("streams.yaml").read_text()
    started.write("streams.yaml", config.replace("  docs:\n    owns: [docs/**]\n", ""))
    started.commit_all("docs is done")
    assert run_cli(["list"], started.root).out.count("unconfigured") == 1
    result = run_cli(["stop", "docs"], started.root)
    assert result.code == 0, result.err
    assert not started.worktree("docs").exists()
    assert started.git("rev-parse", "--verify", "-q", "streams/docs", check=False).strip()  # branch kept
    unknown = run_cli(["stop", "nope"], started.root)
    assert unknown.code == 1 and "unknown stream 'nope'" in unknown.err


def test_start_with_no_names_leaves_a_stream_stopped_on_purpose(started: Repo) -> None:
    assert run_cli(["stop", "docs"], started.root).code == 0
    again = run_cli(["start"], started.root)
    assert again.code == 0, again.err
    assert not started.worktree("docs").exists()
    docs = next(line for line in again.out.splitlines() if line.startswith("docs "))
    assert docs.split()[-2:] == ["left", "stopped"]
    assert [line.split()[-1] for line in again.out.splitlines()[1:3]] == ["started", "started"]  # api, ui
    named = run_cli(["start", "docs"], started.root)
    assert named.code == 0 and started.worktree("docs").is_dir()
    assert run_cli(["stop", "docs"], started.root).code == 0
    assert run_cli(["start", "docs"], started.root).code == 0  # naming it always starts it
    assert run_cli(["stop", "docs"], started.root).code == 0
    assert run_cli(["start", "--json"], started.root).code == 0 and not started.worktree("docs").exists()
