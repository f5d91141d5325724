"""End to end, as a user types it: every step is a real `python -m streams` process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_repo, run_streams


def test_session_init_start_list_stop(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        files={
            "api/app.py": "def handler():\n    return 'ok'\n",
            "ui/app.ts": "export const App = () => 'shop';\n",
            "docs/index.md": "# Shop\n",
            "pyproject.toml": "[project]\nname = 'shop'\n",
        },
        config=None,
    )
    root = repo.root

    # $ streams init
    r = run_streams(["init"], root)
    assert r.code == 0, r.err
    assert (
        r.out
        == "wrote streams.yaml with 3 example streams: api, docs, ui; edit it, commit it, then run `streams start`\n"
    )
    repo.commit_all("streams: configure")

    # $ streams start api ui docs
    r = run_streams(["start", "api", "ui", "docs"], root)
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "STREAM  BRANCH        PATH",
        "api     streams/api   ../repo.streams/api   started",
        "ui      streams/ui    ../repo.streams/ui    started",
        "docs    streams/docs  ../repo.streams/docs  started",
    ]

    # $ streams list
    r = run_streams(["list"], root)
    assert r.code == 0, r.err
    rows = [line.split() for line in r.out.splitlines()]
    assert rows[0] == ["STREAM", "BRANCH", "STATE", "HEAD", "PATH"]
    assert [(row[0], row[2]) for row in rows[1:]] == [("api", "started"), ("docs", "started"), ("ui", "started")]

    # An agent works in the api stream and commits.
    wt = repo.worktree("api")
    (wt / "api" / "routes.py").write_text("ROUTES = []\n")
    tip = repo.commit_all("api: routes", cwd=wt)

    # $ streams stop api  (refused: one commit not on main)
    r = run_streams(["stop", "api"], root)
    assert r.code == 1
    assert r.err == (
        f"streams: error: branch streams/api has 1 commit not on main (tip {tip[:12]}); merge them first, "
        "or pass --force (the tip is printed so nothing is lost)\n"
    )

    # $ streams stop ui docs
    r = run_streams(["stop", "ui", "docs"], root)
    assert r.code == 0, r.err
    assert [line.split(";")[0] for line in r.out.splitlines()] == [
        "ui: worktree ../repo.streams/ui removed",
        "docs: worktree ../repo.streams/docs removed",
    ]

    # $ streams stop --force api
    r = run_streams(["stop", "--force", "api"], root)
    assert r.code == 0, r.err
    assert (
        r.out
        == f"api: worktree ../repo.streams/api removed; branch streams/api kept at {tip[:12]}, 1 commit not on main\n"
    )

    # $ streams list --json
    r = run_streams(["list", "--json"], root)
    assert r.code == 0, r.err
    env = json.loads(r.out)
    assert {s["name"]: s["state"] for s in env["data"]["streams"]} == {
        "api": "branch only",
        "docs": "branch only",
        "ui": "branch only",
    }
    assert repo.git("worktree", "list").count("\n") == 1
    assert repo.git("rev-parse", "streams/api").strip() == tip
