from __future__ import annotations

from tests.conftest import Repo, run_cli, run_streams


def test_start_list_stop_round_trip(repo: Repo) -> None:
    r = run_cli(["start"], repo.root)
    assert r.code == 0, r.err
    assert "api" in r.out and "started" in r.out
    assert repo.worktree("api").is_dir()
    r = run_cli(["list", "--json"], repo.root)
    assert r.code == 0 and '"state": "started"' in r.out
    r = run_streams(["stop", "docs"], repo.root)
    assert r.code == 0, r.err
    assert "branch streams/docs kept at" in r.out
