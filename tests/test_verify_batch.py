"""`streams verify` over every stream in a fixed number of git processes (issue 16): one
``cat-file --batch-check`` for the refs, one ``git log`` for every range, split per stream in Python.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from streams import git
from tests.conftest import Repo, make_repo, run_cli, run_streams


def _branch(repo: Repo, name: str, start: str, files: dict[str, str]) -> str:
    repo.git("checkout", "-q", "-b", name, start)
    for rel, text in files.items():
        repo.write(rel, text)
        repo.commit_all(f"{name} {rel}")
    tip = repo.git("rev-parse", "HEAD").strip()
    repo.git("checkout", "-q", "main")
    return tip


def test_per_tip_ranges_equal_one_log_per_tip(tmp_path: Path) -> None:
    """Stacked, merged, empty and shared ranges: the same commits and changes as one ``git log`` each."""
    repo = make_repo(tmp_path, {"a/x": "0\n", "b/y": "0\n"}, config=None)
    a = _branch(repo, "a", "main", {"a/1": "1\n", "a/2": "2\n"})
    stacked = _branch(repo, "stacked", "a", {"b/3": "3\n"})
    repo.git("checkout", "-q", "-b", "merged", "main")
    repo.write("b/m", "m\n")
    repo.commit_all("merged side")
    repo.git("merge", "-q", "--no-ff", "-m", "merge a", "a")
    repo.write("b/n", "n\n")
    repo.commit_all("after the merge")
    merged = repo.git("rev-parse", "HEAD").strip()
    repo.git("checkout", "-q", "main")
    on_base = repo.git("rev-parse", "main").strip()
    repo.write("a/x", "moved\n")
    repo.commit_all("main moves")
    tips = [a, stacked, merged, on_base, a]
    per_tip = git.range_changes_per_tip(repo.root, tips, ["main"])
    for tip in tips:
        alone = git.range_changes(repo.root, [tip], ["main"])
        assert sorted(per_tip[tip]) == sorted(alone), tip
        order = [c for c, _ in per_tip[tip]]
        for i, commit in enumerate(order):  # oldest first: no commit before one of its parents
            parents = repo.git("rev-parse", f"{commit}^@").split()
            assert all(order.index(p) < i for p in parents if p in order)
    assert len(per_tip[stacked]) == 3 and len(per_tip[on_base]) == 0
    assert len(per_tip[merged]) == 5  # a's two, the side commit, the merge, the one after


def _git_processes(trace: Path) -> list[list[str]]:
    starts = [json.loads(line) for line in trace.read_text().splitlines()]
    return [e["argv"] for e in starts if e.get("event") == "start"]


def _verify_in(tmp_path: Path, n: int) -> list[list[str]]:
    streams = "".join(f"  s{i}:\n    owns: [d{i}/**]\n" for i in range(n))
    files = {f"d{i}/f": "0\n" for i in range(n)}
    (tmp_path / str(n)).mkdir()
    repo = make_repo(tmp_path / str(n), files, config=f"version: 1\nbase: main\nstreams:\n{streams}")
    for i in range(n):
        if i % 3:  # some streams are not started: no branch
            _branch(repo, f"streams/s{i}", "main", {f"d{i}/g": f"{i}\n"})
    assert run_cli(["verify"], repo.root).code == 0  # warm: the config and tree-check caches are written
    trace = tmp_path / f"trace{n}.json"
    r = run_streams(["verify", "--json"], repo.root, env={**os.environ, "GIT_TRACE2_EVENT": str(trace)})
    assert r.code == 0, r.err
    results = json.loads(r.out)["data"]["results"]
    assert len(results) == len([i for i in range(n) if i % 3])
    assert all(res["commits"] == 1 and res["ok"] for res in results)
    return _git_processes(trace)


def test_verify_runs_as_many_git_processes_for_40_streams_as_for_4(tmp_path: Path) -> None:
    few = _verify_in(tmp_path, 4)
    many = _verify_in(tmp_path, 40)
    assert [argv[:2] for argv in many] == [argv[:2] for argv in few]
    assert len(many) <= 5, many
