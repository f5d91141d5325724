"""streams sync against real repositories (and a local bare remote)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streams.predict import predict_conflicts
from streams.state import begin_rebase, read_halts, read_inflight
from streams.workspace import discover, load_config
from tests.conftest import DEFAULT_FILES, Repo, git, make_repo, run_cli, run_streams

# --- helpers -------------------------------------------------------------------------------------


def start(repo: Repo, *names: str) -> None:
    r = run_cli(["start", *names], repo.root)
    assert r.code == 0, r.err


def tip(repo: Repo, name: str) -> str:
    return repo.git("rev-parse", f"refs/heads/streams/{name}").strip()


def contains(repo: Repo, ancestor: str, descendant: str) -> bool:
    cmd = ["git", "merge-base", "--is-ancestor", ancestor, descendant]
    return subprocess.run(cmd, cwd=repo.root, check=False).returncode == 0


def rebasing(wt: Path) -> bool:
    git_dir = Path(git(wt, "rev-parse", "--absolute-git-dir").strip())
    return (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists()


def outcomes(out: str) -> dict[str, str]:
    data = json.loads(out)
    return {s["name"]: s["outcome"] for s in data["data"]["report"]["streams"]}


def events(repo: Repo) -> list[dict[str, object]]:
    path = repo.root / ".git/streams/events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def advance_main(repo: Repo, rel: str = "README.md", text: str = "# demo, updated\n") -> str:
    repo.write(rel, text)
    return repo.commit_all(f"main: {rel}")


def make_conflict(repo: Repo, name: str = "api", rel: str = "src/api/app.py") -> tuple[str, str]:
    """A stream commit and a main commit that change the same line. Returns (stream tip, main tip)."""
    wt = repo.worktree(name)
    repo.write(rel, f"{name} side\n", cwd=wt)
    stream_tip = repo.commit_all(f"{name}: change {rel}", cwd=wt)
    main_tip = advance_main(repo, rel, "main side\n")
    return stream_tip, main_tip


def with_remote(repo: Repo) -> None:
    text = (repo.root / "streams.yaml").read_text().replace("base: main\n", "base: main\nremote: origin\n")
    repo.write("streams.yaml", text)
    repo.commit_all("streams: use origin")
    repo.git("push", "-q", "origin", "main")


# --- clean rebase ----------------------------------------------------------------------------------


def test_clean_rebase_then_nothing_to_do(repo: Repo) -> None:
    start(repo)
    before = {n: tip(repo, n) for n in ("api", "ui", "docs")}
    wt = repo.worktree("api")
    repo.write("src/api/app.py", "print('api v2')\n", cwd=wt)
    repo.commit_all("api work", cwd=wt)
    main_tip = advance_main(repo)

    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r.err
    assert outcomes(r.out) == {"api": "rebased", "ui": "rebased", "docs": "rebased"}
    for n in ("api", "ui", "docs"):
        assert contains(repo, main_tip, tip(repo, n)), n
        assert tip(repo, n) != before[n]
        assert repo.git("status", "--porcelain", cwd=repo.worktree(n)) == ""
    assert (wt / "src/api/app.py").read_text() == "print('api v2')\n"
    assert (wt / ".streams/stream-api.md").exists()
    assert [e["stream"] for e in events(repo) if e["event"] == "sync.rebase"] == ["api", "ui", "docs"]
    assert read_inflight(discover(repo.root)) == {}

    after = {n: tip(repo, n) for n in ("api", "ui", "docs")}
    r = run_cli(["sync"], repo.root)
    assert r.code == 0, r.err
    assert r.out.count("up to date") == 3
    assert {n: tip(repo, n) for n in ("api", "ui", "docs")} == after


def test_dependency_order_and_names(repo: Repo) -> None:
    start(repo)
    advance_main(repo)
    r = run_cli(["sync", "ui", "api", "--json"], repo.root)
    assert r.code == 0, r.err
    assert list(outcomes(r.out)) == ["api", "ui"]  # api first: ui depends on it
    r = run_cli(["sync", "docs"], repo.root)
    assert r.code == 0 and "docs" in r.out and "rebased" in r.out
    r = run_cli(["sync", "nope"], repo.root)
    assert r.code == 1 and "unknown stream 'nope'" in r.err


# --- conflicts ------------------------------------------------------------------------------------


def test_conflict_halts_records_and_exits_4(repo: Repo) -> None:
    start(repo)
    others = {n: tip(repo, n) for n in ("ui", "docs")}
    stream_tip, main_tip = make_conflict(repo)
    wt = repo.worktree("api")

    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 4, r
    env = json.loads(r.out)
    assert env["ok"] is False and env["error"]["code"] == "halted"
    # ui depends on api: left alone; docs does not: rebased in the same pass.
    assert outcomes(r.out) == {"api": "halted", "ui": "blocked", "docs": "rebased"}
    # The message: worktree path and next steps, on one line.
    assert str(wt) in r.err and "streams sync --continue api" in r.err and "streams sync --abort api" in r.err
    assert "src/api/app.py" in r.err
    # The rebase is left in progress for the human; the others are untouched.
    assert rebasing(wt)
    assert "src/api/app.py" in git(wt, "diff", "--name-only", "--diff-filter=U")
    assert tip(repo, "ui") == others["ui"] and tip(repo, "docs") != others["docs"]
    # Recorded in state.json and the event log.
    halt = read_halts(discover(repo.root))["api"]
    assert halt.files == ("src/api/app.py",)
    assert (halt.original_tip, halt.onto, halt.worktree) == (stream_tip, main_tip, str(wt))
    assert halt.time
    assert any(e["event"] == "sync.halt" and e["stream"] == "api" for e in events(repo))

    # A later sync reports the halt, leaves api and its dependent alone, and syncs the others.
    head_during = git(wt, "rev-parse", "HEAD")
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 4
    assert outcomes(r.out) == {"api": "halted", "ui": "blocked", "docs": "up to date"}
    assert rebasing(wt) and git(wt, "rev-parse", "HEAD") == head_during
    assert "waits for a human" in r.err and "api" in r.err


def test_one_of_two_streams_conflicts_the_other_is_synced_first(repo: Repo) -> None:
    start(repo)
    make_conflict(repo, "docs", "docs/index.md")
    r = run_cli(["sync", "api", "docs", "--json"], repo.root)
    assert r.code == 4
    assert outcomes(r.out) == {"api": "rebased", "docs": "halted"}
    main_tip = repo.git("rev-parse", "main").strip()
    assert contains(repo, main_tip, tip(repo, "api"))
    assert not contains(repo, main_tip, tip(repo, "docs"))


FOUR_STREAMS = """\
version: 1
base: main
streams:
  api:
    owns: [src/api/**]
  ui:
    owns: [src/ui/**]
    depends: [api]
  docs:
    owns: [docs/**]
  tools:
    owns: [tools/**]
"""


def test_one_pass_halts_every_conflict_and_rebases_every_independent_stream(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {**DEFAULT_FILES, "tools/run.sh": "echo\n"}, FOUR_STREAMS)
    start(repo)
    api_tip, _ = make_conflict(repo, "api", "src/api/app.py")
    docs_tip, main_tip = make_conflict(repo, "docs", "docs/index.md")
    ui_tip = tip(repo, "ui")

    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 4, r
    # api comes first and halts; the pass still reaches docs (halts too) and tools (rebased); ui,
    # which depends on api, is left alone and says why.
    assert outcomes(r.out) == {"api": "halted", "ui": "blocked", "docs": "halted", "tools": "rebased"}
    report = json.loads(r.out)["data"]["report"]
    assert [h["stream"] for h in report["new_halts"]] == ["api", "docs"]
    assert [h["stream"] for h in report["halts"]] == ["api", "docs"]
    ui = next(s for s in report["streams"] if s["name"] == "ui")
    assert "depends on api" in ui["detail"] and ui["new_tip"] == ui_tip
    assert contains(repo, main_tip, tip(repo, "tools"))
    assert tip(repo, "ui") == ui_tip and rebasing(repo.worktree("api")) and rebasing(repo.worktree("docs"))
    assert set(read_halts(discover(repo.root))) == {"api", "docs"}
    assert read_inflight(discover(repo.root)) == {}
    last = json.loads((repo.root / ".git/streams/state.json").read_text())["sync"]["last"]
    assert last["halted"] == ["api", "docs"]

    # Every halt on a line of its own, with its worktree and its next steps.
    lines = r.err.strip().splitlines()
    assert len(lines) == 3 and "2 streams wait for a human" in lines[0]
    for line, name, file in zip(lines[1:], ("api", "docs"), ("src/api/app.py", "docs/index.md"), strict=True):
        assert f"streams sync --continue {name}" in line and str(repo.worktree(name)) in line and file in line
        assert f"--continue {'docs' if name == 'api' else 'api'}" not in line

    # The text report: one row per stream, the blocked one naming what it waits for.
    r = run_cli(["sync"], repo.root)
    assert r.code == 4
    rows = {line.split()[0]: line for line in r.out.splitlines()[2:]}
    assert "halted" in rows["api"] and "halted" in rows["docs"] and "depends on api" in rows["ui"]
    assert len(r.err.strip().splitlines()) == 3

    # Each halt is finished on its own; ui is rebased once api is.
    for name, rel in (("docs", "docs/index.md"), ("api", "src/api/app.py")):
        wt = repo.worktree(name)
        repo.write(rel, "both sides\n", cwd=wt)
        git(wt, "add", rel)
        r = run_cli(["sync", "--continue", name, "--json"], repo.root)
        if name == "docs":
            assert r.code == 4 and outcomes(r.out)["docs"] == "up to date" and outcomes(r.out)["ui"] == "blocked"
            assert "sync halted: rebasing" not in r.err and "api waits for a human" in r.err
        else:
            assert r.code == 0, r.err
            assert outcomes(r.out) == {
                "api": "up to date",
                "ui": "rebased",
                "docs": "up to date",
                "tools": "up to date",
            }
        assert not rebasing(wt)
    for name, old in (("api", api_tip), ("ui", ui_tip), ("docs", docs_tip), ("tools", None)):
        assert contains(repo, main_tip, tip(repo, name)), name
        assert old is None or tip(repo, name) != old
    assert read_halts(discover(repo.root)) == {}


def test_continue_finishes_the_rebase_and_syncs(repo: Repo) -> None:
    start(repo)
    _, main_tip = make_conflict(repo)
    wt = repo.worktree("api")
    assert run_cli(["sync"], repo.root).code == 4

    r = run_cli(["sync", "--continue", "api"], repo.root)
    assert r.code == 4 and "still unmerged" in r.err and "src/api/app.py" in r.err
    assert rebasing(wt)

    repo.write("src/api/app.py", "both sides\n", cwd=wt)
    git(wt, "add", "src/api/app.py")
    r = run_cli(["sync", "--continue", "api", "--json"], repo.root)
    assert r.code == 0, r.err
    data = json.loads(r.out)["data"]
    assert data["continued"]["stream"] == "api"
    assert not rebasing(wt)
    assert contains(repo, main_tip, tip(repo, "api"))
    assert (wt / "src/api/app.py").read_text() == "both sides\n"
    assert read_halts(discover(repo.root)) == {}
    assert outcomes(r.out)["api"] == "up to date"
    assert any(e["event"] == "halt.resolve" for e in events(repo))
    r = run_cli(["sync", "--continue", "api"], repo.root)
    assert r.code == 1 and "not halted" in r.err


def test_continue_by_hand_is_detected(repo: Repo) -> None:
    start(repo)
    _, main_tip = make_conflict(repo)
    wt = repo.worktree("api")
    assert run_cli(["sync"], repo.root).code == 4
    repo.write("src/api/app.py", "both sides\n", cwd=wt)
    git(wt, "add", "src/api/app.py")
    subprocess.run(
        ["git", "-c", "core.editor=true", "rebase", "--continue"],
        cwd=wt,
        env={**os.environ, "GIT_EDITOR": "true"},
        check=True,
        capture_output=True,
    )
    r = run_cli(["sync"], repo.root)
    assert r.code == 0, r.err
    assert "finished by hand" in r.err
    assert read_halts(discover(repo.root)) == {}
    assert contains(repo, main_tip, tip(repo, "api"))


def test_abort_goes_back_to_the_original_tip(repo: Repo) -> None:
    start(repo)
    stream_tip, _ = make_conflict(repo)
    wt = repo.worktree("api")
    assert run_cli(["sync"], repo.root).code == 4
    r = run_cli(["sync", "--abort", "api"], repo.root)
    assert r.code == 0, r.err
    assert "back at" in r.out
    assert tip(repo, "api") == stream_tip and git(wt, "rev-parse", "HEAD").strip() == stream_tip
    assert git(wt, "symbolic-ref", "HEAD").strip() == "refs/heads/streams/api"
    assert not rebasing(wt) and git(wt, "status", "--porcelain") == ""
    assert read_halts(discover(repo.root)) == {}
    r = run_cli(["sync", "--abort", "api"], repo.root)
    assert r.code == 1 and "not halted" in r.err
    # The conflict is still there: the next sync halts again.
    assert run_cli(["sync", "api"], repo.root).code == 4


def test_abort_after_a_hand_finished_rebase_keeps_the_newer_work(repo: Repo) -> None:
    """The human finished the rebase by hand and the agent committed on top: the halt is over
    (git says so); --abort resets nothing, says so, and clears the halt."""
    start(repo)
    stream_tip, _ = make_conflict(repo)
    wt = repo.worktree("api")
    assert run_cli(["sync"], repo.root).code == 4
    repo.write("src/api/app.py", "both\n", cwd=wt)
    git(wt, "add", "src/api/app.py")
    subprocess.run(
        ["git", "rebase", "--continue"],
        cwd=wt,
        env={**os.environ, "GIT_EDITOR": "true"},
        check=True,
        capture_output=True,
    )
    repo.write("src/api/newer.py", "newer work\n", cwd=wt)
    newer = repo.commit_all("api: newer work", cwd=wt)
    r = run_cli(["sync", "--abort", "api"], repo.root)
    assert r.code == 1 and "finished by hand" in r.err and "git reset --keep" in r.err
    assert tip(repo, "api") == newer != stream_tip
    assert read_halts(discover(repo.root)) == {}


def test_continue_never_says_finished_over_a_lost_commit(repo: Repo) -> None:
    """A rebase whose todo lost a pick (a killed sync's leftovers): --continue finishes it, then
    refuses to call it done, naming the commit and keeping the original tip under a ref."""
    start(repo)
    wt = repo.worktree("api")
    make_conflict(repo)
    repo.write("src/api/second.py", "second\n", cwd=wt)
    second = repo.commit_all("api: second", cwd=wt)
    assert run_cli(["sync"], repo.root).code == 4
    todo = Path(git(wt, "rev-parse", "--git-path", "rebase-merge/git-rebase-todo").strip())
    todo = todo if todo.is_absolute() else wt / todo
    todo.write_text("".join(ln for ln in todo.read_text().splitlines(keepends=True) if second[:7] not in ln))
    repo.write("src/api/app.py", "both\n", cwd=wt)
    git(wt, "add", "src/api/app.py")
    r = run_cli(["sync", "--continue", "api"], repo.root)
    assert r.code == 1 and second[:12] in r.err and "refs/streams/saved/api/" in r.err, r.err
    saved = repo.git("for-each-ref", "--format=%(objectname)", "refs/streams/saved/api/").split()
    is_in = [
        subprocess.run(["git", "merge-base", "--is-ancestor", second, s], cwd=repo.root).returncode == 0 for s in saved
    ]
    assert any(is_in)  # the lost commit is reachable from the kept tip


def test_a_rebase_nobody_recorded_is_found_and_can_be_aborted(repo: Repo) -> None:
    start(repo)
    stream_tip, _ = make_conflict(repo)
    wt = repo.worktree("api")
    git(wt, "rebase", "main", check=False)  # by hand: conflicts, left in progress
    assert rebasing(wt)
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 4
    assert outcomes(r.out)["api"] == "halted"
    assert "did not start" in r.err
    halt = read_halts(discover(repo.root))["api"]
    assert halt.reason == "found" and halt.original_tip == stream_tip and halt.files == ("src/api/app.py",)
    assert run_cli(["sync", "--abort", "api"], repo.root).code == 0
    assert tip(repo, "api") == stream_tip and not rebasing(wt)


def test_an_interrupted_sync_is_reconciled_with_git(repo: Repo) -> None:
    start(repo)
    ws = discover(repo.root)
    # A sync that died after recording its intent and before rebasing: the branch is unchanged.
    begin_rebase(ws, "docs", tip(repo, "docs"), repo.git("rev-parse", "main").strip(), repo.worktree("docs"))
    advance_main(repo)
    r = run_cli(["sync"], repo.root)
    assert r.code == 0, r.err
    assert "interrupted before rebasing docs" in r.err
    assert read_inflight(ws) == {}
    # One that died while git was mid-rebase: the rebase is still there, so it becomes a halt.
    stream_tip, main_tip = make_conflict(repo)
    wt = repo.worktree("api")
    git(wt, "rebase", main_tip, check=False)
    begin_rebase(ws, "api", stream_tip, main_tip, wt)
    r = run_cli(["sync"], repo.root)
    assert r.code == 4
    assert "interrupted while rebasing api" in r.err
    assert read_halts(ws)["api"].original_tip == stream_tip and read_inflight(ws) == {}


# --- what sync refuses to touch ------------------------------------------------------------------


def test_dirty_worktree_is_skipped_not_stashed(repo: Repo) -> None:
    start(repo)
    wt = repo.worktree("docs")
    docs_tip = tip(repo, "docs")
    repo.write("docs/index.md", "# docs, being edited\n", cwd=wt)
    repo.write("docs/new.md", "staged\n", cwd=wt)
    git(wt, "add", "docs/new.md")
    main_tip = advance_main(repo)
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r.err
    report = json.loads(r.out)["data"]["report"]
    docs = next(s for s in report["streams"] if s["name"] == "docs")
    assert docs["outcome"] == "dirty" and sorted(docs["files"]) == ["docs/index.md", "docs/new.md"]
    assert "commit them" in docs["detail"]
    assert tip(repo, "docs") == docs_tip
    assert (wt / "docs/index.md").read_text() == "# docs, being edited\n"
    assert git(wt, "diff", "--cached", "--name-only").split() == ["docs/new.md"]
    assert git(wt, "stash", "list") == ""
    assert contains(repo, main_tip, tip(repo, "api"))
    r = run_cli(["sync"], repo.root)
    assert "dirty" in r.out and "skipped: 2 uncommitted changes" in r.out


def test_untracked_files_do_not_block_but_a_failed_rebase_is_reported(repo: Repo) -> None:
    start(repo)
    wt = repo.worktree("api")
    repo.write("src/api/scratch.txt", "notes\n", cwd=wt)  # untracked: no reason to skip
    advance_main(repo)
    r = run_cli(["sync", "api"], repo.root)
    assert r.code == 0 and "rebased" in r.out
    # main adds a file the stream has untracked: git refuses to overwrite it; nothing changes.
    repo.write("src/api/scratch.txt", "from main\n")
    advance_main(repo, "src/api/scratch.txt", "from main\n")
    before = tip(repo, "api")
    r = run_cli(["sync", "api"], repo.root)
    assert r.code == 1, r
    assert "failed" in r.out and "would be overwritten" in r.err
    assert tip(repo, "api") == before and not rebasing(wt)
    assert (wt / "src/api/scratch.txt").read_text() == "notes\n"
    assert read_halts(discover(repo.root)) == {}


# --- remote -------------------------------------------------------------------------------------


def test_remote_fetch_rebase_and_push(remote_repo: tuple[Repo, Path]) -> None:
    repo, bare = remote_repo
    with_remote(repo)
    start(repo)
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r.err
    report = json.loads(r.out)["data"]["report"]
    assert report["fetched"] and report["upstream"] == "origin/main"
    assert {s["name"]: s["push"] for s in report["streams"]} == {"api": "pushed", "ui": "pushed", "docs": "pushed"}
    for n in ("api", "ui", "docs"):
        assert git(bare, "rev-parse", f"refs/heads/streams/{n}") == repo.git("rev-parse", f"streams/{n}")

    # Someone else pushes to main; sync fetches, rebases onto origin/main and pushes (a rewrite).
    other = repo.root.parent / "other"
    git(repo.root.parent, "clone", "-q", str(bare), str(other))
    (other / "README.md").write_text("# from elsewhere\n")
    git(other, "commit", "-qam", "elsewhere")
    git(other, "push", "-q", "origin", "main")
    upstream = git(other, "rev-parse", "HEAD").strip()
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r.err
    streams = json.loads(r.out)["data"]["report"]["streams"]
    assert {s["name"]: (s["outcome"], s["push"]) for s in streams} == {
        n: ("rebased", "pushed") for n in ("api", "ui", "docs")
    }
    for n in ("api", "ui", "docs"):
        assert contains(repo, upstream, tip(repo, n))
        assert git(bare, "rev-parse", f"refs/heads/streams/{n}").strip() == tip(repo, n)
    assert any(e["event"] == "sync.push" for e in events(repo))
    # A commit made in a stream is published by the next sync even with nothing to rebase.
    wt = repo.worktree("docs")
    repo.write("docs/more.md", "more\n", cwd=wt)
    repo.commit_all("docs work", cwd=wt)
    r = run_cli(["sync", "--json"], repo.root)
    docs = next(s for s in json.loads(r.out)["data"]["report"]["streams"] if s["name"] == "docs")
    assert (docs["outcome"], docs["push"]) == ("up to date", "pushed")


def their_api_commit(repo: Repo, bare: Path) -> tuple[Path, str]:
    """Someone else's clone of streams/api with a commit of theirs on it (not pushed): (clone, commit)."""
    other = repo.root.parent / "other"
    git(repo.root.parent, "clone", "-q", "-b", "streams/api", str(bare), str(other))
    (other / "src/api/other.py").write_text("theirs\n")
    git(other, "add", ".")
    git(other, "commit", "-qm", "their api work")
    return other, git(other, "rev-parse", "HEAD").strip()


def test_someone_elses_push_to_a_stream_branch_is_reported_not_forced(remote_repo: tuple[Repo, Path]) -> None:
    repo, bare = remote_repo
    with_remote(repo)
    start(repo, "api")
    assert run_cli(["sync"], repo.root).code == 0
    other, theirs = their_api_commit(repo, bare)
    git(other, "push", "-q", "origin", "streams/api")
    advance_main(repo)
    repo.git("push", "-q", "origin", "main")

    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 1, r
    api = json.loads(r.out)["data"]["report"]["streams"][0]
    assert (api["outcome"], api["push"]) == ("rebased", "diverged")
    assert "someone else pushed" in r.err and "not forced" in r.err
    assert git(bare, "rev-parse", "refs/heads/streams/api").strip() == theirs


def test_a_push_race_is_rejected_by_the_lease(remote_repo: tuple[Repo, Path]) -> None:
    """Someone pushes between our fetch and our push: --force-with-lease refuses, sync reports it.

    The other push happens from a hook that git runs once the rebased branch is in place (kept by
    streams' reference-transaction hook as its ``.legacy`` hook).
    """
    repo, bare = remote_repo
    with_remote(repo)
    start(repo, "api")
    assert run_cli(["sync"], repo.root).code == 0
    other, theirs = their_api_commit(repo, bare)
    hook = repo.root / ".git/hooks/reference-transaction.legacy"
    hook.write_text(
        "#!/bin/sh\n[ \"$1\" = committed ] || exit 0\ngrep -q ' refs/heads/streams/api$' || exit 0\n"
        f"cd '{other}' && env -u GIT_DIR -u GIT_INDEX_FILE git push -q origin streams/api\n"
    )
    hook.chmod(0o755)
    advance_main(repo)
    repo.git("push", "-q", "origin", "main")
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 1, r
    api = json.loads(r.out)["data"]["report"]["streams"][0]
    assert (api["outcome"], api["push"]) == ("rebased", "rejected")
    assert "stale info" in api["push_detail"] and "not forced" in r.err
    assert git(bare, "rev-parse", "refs/heads/streams/api").strip() == theirs


def test_fetch_failure_is_one_clear_line(remote_repo: tuple[Repo, Path]) -> None:
    repo, bare = remote_repo
    with_remote(repo)
    start(repo, "api")
    repo.git("remote", "set-url", "origin", str(bare.parent / "gone.git"))
    r = run_cli(["sync"], repo.root)
    assert r.code == 1 and "fetching main from remote 'origin' failed" in r.err
    assert r.err.count("\n") == 1 and "git fetch origin" in r.err


def test_fetch_killed_mid_update_names_its_lock(remote_repo: tuple[Repo, Path]) -> None:
    """A `git fetch` killed while updating origin/main leaves main.lock: sync names it and the fix."""
    repo, _bare = remote_repo
    with_remote(repo)
    start(repo, "api")
    repo.write("README.md", "moved on\n")
    repo.commit_all("main moves")
    repo.git("push", "-q", "--no-verify", "origin", "HEAD:main")
    repo.git("update-ref", "refs/remotes/origin/main", "HEAD~1")  # as if someone else had pushed
    lock = repo.root / ".git/refs/remotes/origin/main.lock"
    lock.write_text("")
    before = repo.snapshot()
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 1 and json.loads(r.out)["error"]["code"] == "fetch_failed"
    assert r.err.count("\n") == 1 and f"stale lock files: {lock};" in r.err and "delete them" in r.err
    assert repo.snapshot() == before
    lock.unlink()
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r
    assert json.loads(r.out)["data"]["report"]["streams"][0]["outcome"] == "rebased"


# --- prediction -------------------------------------------------------------------------------------


def test_prediction_with_merge_tree(repo: Repo) -> None:
    start(repo)
    make_conflict(repo)
    wt = repo.worktree("api")
    before = git(wt, "status", "--porcelain"), git(wt, "rev-parse", "HEAD")
    objects = git(repo.root, "count-objects", "-v")
    ws = discover(repo.root)
    predicted = predict_conflicts(ws, load_config(ws))
    assert predicted == {"api": ["src/api/app.py"], "ui": [], "docs": []}
    assert (git(wt, "status", "--porcelain"), git(wt, "rev-parse", "HEAD")) == before
    assert git(repo.root, "count-objects", "-v") == objects  # the merged trees went to a scratch dir
    assert predict_conflicts(ws, load_config(ws), ["docs"]) == {"docs": []}
    r = run_cli(["sync", "--json"], repo.root)
    assert json.loads(r.out)["data"]["report"]["predicted"]["api"] == ["src/api/app.py"]


@pytest.mark.parametrize("folder", ["with:colon", 'a"quote'])
def test_prediction_in_a_repository_whose_path_git_would_split(tmp_path: Path, folder: str) -> None:
    """The repository's objects are passed as an alternate in a colon-separated list: quoted."""
    base = tmp_path / folder
    base.mkdir()
    repo = make_repo(base)
    start(repo)
    make_conflict(repo)
    objects = git(repo.root, "count-objects", "-v")
    ws = discover(repo.root)
    assert predict_conflicts(ws, load_config(ws))["api"] == ["src/api/app.py"]
    assert git(repo.root, "count-objects", "-v") == objects


# --- watch ----------------------------------------------------------------------------------------


def test_watch_repeats_and_stops_on_a_halt(repo: Repo) -> None:
    start(repo)
    r = run_cli(["sync", "--watch", "--interval", "10ms", "--iterations", "3", "--json"], repo.root)
    assert r.code == 0, r.err
    lines = [json.loads(line) for line in r.out.splitlines()]
    assert [e["data"]["iteration"] for e in lines] == [1, 2, 3]
    r = run_cli(["sync", "--watch", "--interval", "0.01", "--iterations", "2", "--json"], repo.root)  # seconds
    assert r.code == 0 and len(r.out.splitlines()) == 2, r.err
    make_conflict(repo)
    r = run_cli(["sync", "--watch", "--interval", "10ms", "--iterations", "50", "--json"], repo.root)
    assert r.code == 4
    lines = [json.loads(line) for line in r.out.splitlines()]
    assert len(lines) == 1 and lines[0]["error"]["code"] == "halted"


def _watch_process(repo: Repo, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "sync", "--watch", *args],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_rereads_the_configuration(repo: Repo) -> None:
    start(repo)
    proc = _watch_process(repo, "--interval", "20ms", "--iterations", "2000", "--json")
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert [s["name"] for s in first["data"]["report"]["streams"]] == ["api", "ui", "docs"]
        text = (repo.root / "streams.yaml").read_text().replace("  docs:\n    owns: [docs/**]\n", "")
        (repo.root / "streams.yaml").write_text(text)
        repo.commit_all("streams: drop docs")
        for line in proc.stdout:
            names = [s["name"] for s in json.loads(line)["data"]["report"]["streams"]]
            if names == ["api", "ui"]:
                break
        else:
            pytest.fail("the watch never saw the new configuration")
    finally:
        proc.kill()
        proc.wait()


def test_watch_ctrl_c_exits_130(repo: Repo) -> None:
    start(repo)
    proc = _watch_process(repo, "--interval", "1h")
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("-- ")  # the first pass is printed
    for line in proc.stdout:
        if line.startswith("docs"):
            break
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--continue", "api", "--abort", "api"], 2, "cannot be used together"),
        (["--watch", "--abort", "api"], 2, "--abort cannot be combined with --watch"),
        (["--watch", "--interval", "soon"], 2, "--interval 'soon' is not a duration"),
        (["--watch", "--interval", "0"], 2, "--interval '0' is zero"),
        (["--iterations", "2"], 2, "--iterations needs --watch"),
        (["--abort", "nope"], 1, "unknown stream 'nope'"),
        (["--continue", "docs"], 1, "not halted"),
    ],
)
def test_bad_input(repo: Repo, args: list[str], code: int, needle: str) -> None:
    start(repo)
    before = {n: tip(repo, n) for n in ("api", "ui", "docs")}
    r = run_cli(["sync", *args], repo.root)
    assert r.code == code, r
    assert needle in r.err
    assert {n: tip(repo, n) for n in ("api", "ui", "docs")} == before


def test_not_started_streams_are_reported(repo: Repo) -> None:
    start(repo, "api")
    advance_main(repo)
    r = run_cli(["sync", "--json"], repo.root)
    assert r.code == 0, r.err
    assert outcomes(r.out) == {"api": "rebased", "ui": "not started", "docs": "not started"}
    assert run_streams(["sync", "--help"], repo.root).code == 0


def test_abort_removes_only_exact_copies_a_killed_rebase_left(repo: Repo) -> None:
    """A rebase killed mid-checkout leaves untracked files that block `git rebase --abort`."""
    start(repo)
    wt = repo.worktree("api")
    repo.write("src/api/app.py", "api side\n", cwd=wt)
    repo.commit_all("api: change app", cwd=wt)
    repo.write("src/api/new.py", "new module\n", cwd=wt)
    stream_tip = repo.commit_all("api: add new", cwd=wt)
    advance_main(repo, "src/api/app.py", "main side\n")
    assert run_cli(["sync", "api"], repo.root).code == 4  # halts on the first commit: new.py not there yet
    repo.write("src/api/new.py", "half written", cwd=wt)  # not a copy of anything committed
    r = run_cli(["sync", "--abort", "api"], repo.root)
    assert r.code == 1 and "src/api/new.py (untracked; not copies of committed files" in r.err
    assert (wt / "src/api/new.py").read_text() == "half written" and rebasing(wt)
    repo.write("src/api/new.py", "new module\n", cwd=wt)  # an exact copy of the committed file
    r = run_cli(["sync", "--abort", "api", "--json"], repo.root)
    assert r.code == 0, r.err
    assert json.loads(r.out)["data"]["aborted"]["removed"] == ["src/api/new.py"]
    assert tip(repo, "api") == stream_tip and not rebasing(wt)
    assert (wt / "src/api/new.py").read_text() == "new module\n"


def _halt_with_out_of_scope_resolution(repo: Repo) -> Path:
    start(repo)
    make_conflict(repo)
    wt = repo.worktree("api")
    assert run_cli(["sync"], repo.root).code == 4
    repo.write("src/api/app.py", "both sides\n", cwd=wt)
    repo.write("src/ui/main.ts", "edited while resolving\n", cwd=wt)  # owned by ui
    git(wt, "add", "-A")
    return wt


def test_continue_with_an_out_of_scope_resolution_is_stopped_by_the_hook(repo: Repo) -> None:
    wt = _halt_with_out_of_scope_resolution(repo)
    r = run_cli(["sync", "--continue", "api"], repo.root)
    assert r.code == 4, r
    assert "src/ui/main.ts" in r.err and "owned by ui" in r.err
    assert rebasing(wt) and "api" in read_halts(discover(repo.root))


def test_continue_rechecks_scope_itself(repo: Repo) -> None:
    """Without the hooks (uninstalled), `--continue` still finds the out-of-scope change: exit 5."""
    wt = _halt_with_out_of_scope_resolution(repo)
    assert run_cli(["hooks", "uninstall"], repo.root).code == 0
    r = run_cli(["sync", "--continue", "api"], repo.root)
    assert r.code == 5, r
    assert "src/ui/main.ts (owned by ui)" in r.err and "reset --keep" in r.err
    assert not rebasing(wt)
    back = r.err.split("`git -C ", 1)[1].split("`", 1)[0].split()
    subprocess.run(["git", "-C", *back], check=True, capture_output=True)
    assert tip(repo, "api") == read_events_halt_original(repo)


def read_events_halt_original(repo: Repo) -> str:
    return next(str(e["original_tip"]) for e in events(repo) if e["event"] == "sync.halt")
