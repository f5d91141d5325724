"""places.locate (where each stream is, as git says) and the dependency graph, against real git."""

from __future__ import annotations

import shutil

import pytest

from streams.graph import dependency_order, find_cycle, levels, waits_for
from streams.places import PlaceState, linked_worktrees, locate
from streams.workspace import discover, load_config
from tests.conftest import Repo, make_repo, run_cli


@pytest.fixture
def started(repo: Repo) -> Repo:
    assert run_cli(["start", "api", "ui"], repo.root).code == 0
    return repo


def test_locate_says_started_branch_only_not_started_and_missing(started: Repo) -> None:
    repo = started
    repo.git("branch", "streams/docs", "main")
    ws = discover(repo.root)
    config = load_config(ws)
    places = locate(ws, config)
    assert list(places) == ["api", "ui", "docs"]
    api = places["api"]
    assert api.state == PlaceState.STARTED and api.worktree == repo.worktree("api")
    assert api.ref == "refs/heads/streams/api" and api.branch == "streams/api"
    assert api.tip == repo.git("rev-parse", "streams/api").strip() == api.head
    assert api.git_dir is not None and (api.git_dir / "streams-stream").is_file()
    assert not api.rebasing and not api.detached
    assert places["docs"].state == PlaceState.BRANCH_ONLY and places["docs"].worktree is None
    assert places["docs"].path == repo.worktree("docs")

    repo.git("branch", "-D", "streams/docs")
    shutil.rmtree(repo.worktree("ui"))
    places = locate(ws, config)
    assert places["docs"].state == PlaceState.NOT_STARTED and places["docs"].tip is None
    ui = places["ui"]
    assert ui.state == PlaceState.MISSING and ui.worktree is None and ui.path == repo.worktree("ui")
    assert ui.tip is not None  # the branch is kept


def test_locate_finds_a_detached_stream_by_its_rebase_or_its_marker(started: Repo) -> None:
    repo = started
    api = repo.worktree("api")
    repo.write("src/api/app.py", "mine\n", cwd=api)
    repo.commit_all("api change", cwd=api)
    repo.write("src/api/app.py", "theirs\n")
    repo.commit_all("main change")
    repo.git("rebase", "main", cwd=api, check=False)  # stops on the conflict
    ws = discover(repo.root)
    config = load_config(ws)
    place = locate(ws, config, ["api"])["api"]
    assert place.rebasing and not place.detached and place.worktree == api  # found by the rebase's head-name
    repo.git("rebase", "--abort", cwd=api)
    repo.git("switch", "--detach", "HEAD", cwd=api)
    place = locate(ws, config, ["api"])["api"]
    assert place.detached and not place.rebasing and place.worktree == api  # found by its marker


def test_locate_lists_unconfigured_stream_worktrees_only_when_asked(started: Repo) -> None:
    repo = started
    repo.write("streams.yaml", repo.root.joinpath("streams.yaml").read_text().replace("  ui:\n", "  ux:\n"))
    repo.commit_all("rename ui")
    ws = discover(repo.root)
    config = load_config(ws)
    assert "ui" not in locate(ws, config)
    extra = locate(ws, config, unconfigured=True)["ui"]
    assert extra.state == PlaceState.UNCONFIGURED and extra.worktree == repo.worktree("ui")


def test_linked_worktrees_reads_the_common_dir(started: Repo) -> None:
    found = {w.root: w.stream for w in linked_worktrees(started.root / ".git")}
    assert found == {started.worktree("api"): "api", started.worktree("ui"): "ui"}


def test_remote_tips_are_located_after_a_fetch(remote_repo: tuple[Repo, object]) -> None:
    repo, _ = remote_repo
    repo.write("streams.yaml", "remote: origin\n" + repo.root.joinpath("streams.yaml").read_text())
    repo.commit_all("remote")
    assert run_cli(["start", "api"], repo.root).code == 0
    ws = discover(repo.root)
    config = load_config(ws)
    assert config.remote == "origin"
    assert locate(ws, config, ["api"])["api"].remote_tip is None  # not pushed yet
    repo.git("push", "-q", "origin", "streams/api")
    repo.git("fetch", "-q", "origin", "+refs/heads/streams/*:refs/remotes/origin/streams/*")
    api = locate(ws, config, ["api"])["api"]
    assert api.remote_tip == api.tip is not None


def test_graph_order_levels_and_cycles() -> None:
    depends = {"api": [], "ui": ["api"], "docs": [], "e2e": ["ui", "docs"]}
    assert dependency_order(["e2e", "ui", "api"], depends) == ["api", "ui", "e2e"]
    assert dependency_order(["ui"], depends) == ["ui"]  # unselected dependencies are not pulled in
    assert levels(depends) == {"api": 0, "ui": 1, "docs": 0, "e2e": 2}
    assert find_cycle(depends) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    # A halted stream stops its dependents, direct or through others, and nothing else.
    assert waits_for("ui", depends, {"api"}) == "api"
    assert waits_for("e2e", depends, {"api"}) == "api"  # through ui
    assert waits_for("e2e", depends, {"docs", "zzz"}) == "docs"
    assert waits_for("api", depends, {"api"}) is None  # not its own dependent
    assert waits_for("docs", depends, {"api", "ui"}) is None


def test_locate_in_a_repo_without_streams_started(tmp_path: object) -> None:
    from pathlib import Path

    repo = make_repo(Path(str(tmp_path)))
    ws = discover(repo.root)
    places = locate(ws, load_config(ws))
    assert {p.state for p in places.values()} == {PlaceState.NOT_STARTED}
