"""`streams verify`, the range checks behind it, and the server-side pre-receive example."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams import scope
from streams.workspace import discover, load_config
from tests.conftest import Repo, make_repo, run_cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def started(repo: Repo) -> Repo:
    assert run_cli(["start"], repo.root).code == 0
    return repo


def sneak(repo: Repo, wt: Path, files: dict[str, str], message: str = "sneaky") -> str:
    """Commit with every hook switched off (as if they had never been installed)."""
    empty = wt.parent / ".no-hooks"
    empty.mkdir(exist_ok=True)
    for rel, text in files.items():
        repo.write(rel, text, cwd=wt)
    repo.git("add", "-A", cwd=wt)
    repo.git("-c", f"core.hooksPath={empty}", "commit", "-q", "-m", message, cwd=wt)
    return repo.git("rev-parse", "HEAD", cwd=wt).strip()


def test_verify_all_streams_clean(started: Repo) -> None:
    api = started.worktree("api")
    started.write("src/api/app.py", "v2\n", cwd=api)
    started.git("commit", "-qam", "api work", cwd=api)
    res = run_cli(["verify"], started.root)
    assert res.code == 0, res.err
    assert "api: 2 commits (main..streams/api" in res.out and ": ok" in res.out
    assert res.out.count(": ok") == 3


def test_verify_reports_every_violation_and_exits_5(started: Repo) -> None:
    api = started.worktree("api")
    bad1 = sneak(started, api, {"src/ui/main.ts": "x\n", "README.md": "y\n"})
    bad2 = sneak(started, api, {"docs/index.md": "z\n", "src/api/app.py": "fine\n"})
    res = run_cli(["verify"], started.root)
    assert res.code == 5
    assert "api: 3 commits" in res.out and "3 violations" in res.out  # start's progress commit + 2
    assert f"{bad1[:12]} M src/ui/main.ts  owned by ui" in res.out
    assert f"{bad1[:12]} M README.md  unowned" in res.out
    assert f"{bad2[:12]} M docs/index.md  owned by docs" in res.out
    assert "src/api/app.py" not in res.out
    assert "ui: " in res.out and "docs: " in res.out  # the other streams are reported too
    assert "3 changes outside scope in 1 stream (api)" in res.err

    res = run_cli(["verify", "--json"], started.root)
    assert res.code == 5
    env = json.loads(res.out)
    assert env["ok"] is False and env["error"]["code"] == "scope_violation"
    [api_result] = [r for r in env["data"]["results"] if r["stream"] == "api"]
    assert {(v["path"], v["reason"], v["commit"]) for v in api_result["violations"]} == {
        ("src/ui/main.ts", "owned by ui", bad1),
        ("README.md", "unowned", bad1),
        ("docs/index.md", "owned by docs", bad2),
    }
    res = run_cli(["verify", "--stream", "ui"], started.root)
    assert res.code == 0 and "api" not in res.out


def test_verify_a_range_infers_or_takes_the_stream(started: Repo) -> None:
    api = started.worktree("api")
    good = sneak(started, api, {"src/api/app.py": "good\n"})
    bad = sneak(started, api, {"src/ui/main.ts": "bad\n"})
    assert run_cli(["verify", "main..streams/api"], started.root).code == 5
    assert run_cli(["verify", f"main..{good}", "--stream", "api"], started.root).code == 0
    assert run_cli(["verify", f"{good}..{bad}", "--stream", "api"], started.root).code == 5
    assert run_cli(["verify", f"{bad}", "--stream", "ui"], started.root).code == 5  # api's file is not ui's
    # Inside a worktree, the worktree's stream; a single revision means "not on the base".
    res = run_cli(["verify", "HEAD"], api)
    assert res.code == 5 and "api: 3 commits (HEAD" in res.out
    res = run_cli(["verify", "main..HEAD"], started.root)
    assert res.code == 2 and "--stream NAME" in res.err


def test_verify_bad_input(started: Repo) -> None:
    before = started.snapshot()
    res = run_cli(["verify", "nope..nada", "--stream", "api"], started.root)
    assert res.code == 2 and "nope..nada" in res.err
    res = run_cli(["verify", "--stream", "nope"], started.root)
    assert res.code == 1 and "unknown stream" in res.err
    res = run_cli(["verify", "--", "-x", "--stream", "api"], started.root)
    assert res.code == 2
    res = run_cli(["verify", "HEAD", "--stream", "api", "--config-rev", "nope"], started.root)
    assert res.code == 1 and "no streams.yaml in nope" in res.err
    assert started.snapshot() == before


def test_shared_paths_are_listed_not_blamed(started: Repo) -> None:
    api = started.worktree("api")
    sneak(started, api, {"pyproject.toml": "[project]\nname = 'x'\n"})
    res = run_cli(["verify", "--stream", "api"], started.root)
    assert res.code == 0
    assert "shared paths changed (leases are checked at commit time): pyproject.toml" in res.out


def test_merges_of_the_base_are_not_blamed_but_evil_merges_are(started: Repo) -> None:
    started.write("src/ui/main.ts", "ui, merged on main\n")
    started.commit_all("ui on main")
    api = started.worktree("api")
    started.write("src/api/app.py", "api\n", cwd=api)
    started.git("commit", "-qam", "api", cwd=api)
    started.git("merge", "-q", "--no-edit", "main", cwd=api)
    assert run_cli(["verify", "--stream", "api"], started.root).code == 0
    started.write("docs/index.md", "main again\n")
    started.commit_all("docs on main")
    started.git("merge", "-q", "--no-commit", "main", cwd=api)
    started.write("src/ui/main.ts", "evil\n", cwd=api)
    started.git("add", "-A", cwd=api)
    empty = api.parent / ".no-hooks"
    empty.mkdir(exist_ok=True)
    started.git("-c", f"core.hooksPath={empty}", "commit", "-q", "-m", "evil merge", cwd=api)
    res = run_cli(["verify", "--stream", "api"], started.root)
    assert res.code == 5 and "src/ui/main.ts" in res.out and "docs/index.md" not in res.out


def test_commits_on_the_remote_base_are_not_the_streams(tmp_path: Path) -> None:
    config = "version: 1\nbase: main\nremote: origin\nstreams:\n  api:\n    owns: [src/api/**]\n  ui:\n    owns: [src/ui/**]\n"
    repo = make_repo(tmp_path, config=config)
    bare = tmp_path / "remote.git"
    repo.git("init", "-q", "--bare", str(bare))
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    assert run_cli(["start", "api"], repo.root).code == 0
    # origin/main moves ahead of the local main (someone else pushed ui work).
    other = tmp_path / "other"
    repo.git("clone", "-q", str(bare), str(other))
    repo.write("src/ui/main.ts", "ui upstream\n", cwd=other)
    repo.git("commit", "-qam", "ui upstream", cwd=other)
    repo.git("push", "-q", "origin", "main", cwd=other)
    repo.git("fetch", "-q", "origin")
    api = repo.worktree("api")
    # Rebasing the stream onto origin/main passes the reference-transaction hook...
    res = subprocess.run(["git", "rebase", "origin/main"], cwd=api, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # ...and verify agrees: ui's upstream commit is not api's.
    assert run_cli(["verify", "--stream", "api"], repo.root).code == 0


def test_library_range_and_path_checks(started: Repo) -> None:
    ws = discover(started.root)
    config = load_config(ws)
    api = started.worktree("api")
    tip = started.git("rev-parse", "HEAD", cwd=api).strip()
    bad = sneak(started, api, {"src/ui/main.ts": "x\n", "pyproject.toml": "[p]\n"})
    found = scope.violations_in_range(ws, config, "api", bad, [tip, "main"])
    assert [(v.path, v.reason, v.commit, v.status, v.stream) for v in found] == [
        ("src/ui/main.ts", "owned by ui", bad, "M", "api")
    ]
    found = scope.violations_in_range(ws, config, "api", bad, [tip], leases=True)
    assert {v.path for v in found} == {"src/ui/main.ts", "pyproject.toml"}
    assert scope.violations_in_range(ws, config, "api", tip, ["main"]) == []
    checked = scope.check_paths(
        ws, config, "api", ["src/api/x.py", "src/ui/y.ts", "pyproject.toml", ".streams/stream-api.md"]
    )
    assert [(v.path, v.reason) for v in checked] == [
        ("src/ui/y.ts", "owned by ui"),
        ("pyproject.toml", "shared: run `streams lock pyproject.toml`"),
    ]
    assert run_cli(["lock", "pyproject.toml"], api).code == 0
    assert [v.path for v in scope.check_paths(ws, config, "api", ["pyproject.toml"])] == []
    held = scope.check_paths(ws, config, "ui", ["pyproject.toml"])
    assert held[0].reason.startswith("shared: held by api until ")


def test_verify_with_config_from_a_revision(started: Repo) -> None:
    api = started.worktree("api")
    sneak(started, api, {"README.md": "x\n"})
    assert run_cli(["verify", "--stream", "api"], started.root).code == 5
    cfg = started.root / "streams.yaml"
    cfg.write_text(cfg.read_text().replace("version: 1\n", "version: 1\nunowned: allow\n"))
    res = run_cli(["verify", "--stream", "api"], started.root)
    assert res.code == 5 and "not in force until committed" in res.err  # the committed file is in force
    started.commit_all("streams: unowned allowed")
    assert run_cli(["verify", "--stream", "api"], started.root).code == 0
    res = run_cli(["verify", "main..streams/api", "--config-rev", "main~1"], started.root)
    assert res.code == 5  # the one committed before


def guarded_server(tmp_path: Path) -> tuple[Repo, Path]:
    """A repository whose ``origin`` is a bare repository running the example pre-receive hook,
    with stream api started."""
    repo = make_repo(tmp_path)
    bare = tmp_path / "server.git"
    repo.git("init", "-q", "--bare", "-b", "main", str(bare))
    shutil.copy(ROOT / "hooks" / "pre-receive", bare / "hooks" / "pre-receive")
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    assert run_cli(["start", "api"], repo.root).code == 0
    return repo, bare


def test_pre_receive_example_guards_a_bare_remote(tmp_path: Path) -> None:
    repo, bare = guarded_server(tmp_path)
    api = repo.worktree("api")
    env = {**os.environ, "STREAMS": f"{sys.executable} -m streams"}

    def push(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "push", *args], cwd=api, capture_output=True, text=True, env=env)

    repo.write("src/api/app.py", "good\n", cwd=api)
    repo.git("commit", "-qam", "good", cwd=api)
    res = push("-q", "origin", "streams/api")
    assert res.returncode == 0, res.stderr
    bad = sneak(repo, api, {"src/ui/main.ts": "pushed past the hooks\n"})
    res = push("origin", "streams/api")
    assert res.returncode != 0
    assert "pre-receive hook declined" in res.stderr
    assert "src/ui/main.ts" in res.stderr and "owned by ui" in res.stderr
    remote_tip = subprocess.run(
        ["git", "rev-parse", "refs/heads/streams/api"], cwd=bare, capture_output=True, text=True
    ).stdout.strip()
    assert remote_tip != bad
    # A new stream branch carrying the bad commit is refused too; deleting one is fine; main is not a stream.
    assert push("origin", f"{bad}:refs/heads/streams/ui").returncode != 0
    assert push("origin", ":refs/heads/streams/api").returncode == 0
    assert push("origin", f"{bad}:refs/heads/feature").returncode == 0
