"""streams progress: the file is rewritten atomically and committed alone on the stream's branch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.progress import Progress, ProgressStatus, parse, read_progress, render
from tests.conftest import Repo, run_cli, run_streams


@pytest.fixture
def started(repo: Repo) -> Repo:
    r = run_cli(["start"], repo.root)
    assert r.code == 0, r.err
    return repo


def head(repo: Repo, cwd: Path) -> str:
    return repo.git("rev-parse", "HEAD", cwd=cwd).strip()


def files_of(repo: Repo, commit: str) -> list[str]:
    return repo.git("diff-tree", "--no-commit-id", "--name-only", "-r", commit, cwd=repo.root).split()


def test_update_commits_only_the_progress_file_and_keeps_staged_work_staged(started: Repo) -> None:
    wt = started.worktree("api")
    before = head(started, wt)
    started.write("src/api/app.py", "staged change\n", cwd=wt)
    started.git("add", "src/api/app.py", cwd=wt)
    started.write("src/api/app.py", "staged change\nplus an unstaged edit\n", cwd=wt)
    started.write("tests/api/test_app.py", "unstaged only\n", cwd=wt)

    r = run_cli(["progress", "--status", "in_progress", "--completion", "40", "--done", "models"], wt)
    assert r.code == 0, r.err

    after = head(started, wt)
    assert started.git("rev-parse", "HEAD~1", cwd=wt).strip() == before
    assert files_of(started, after) == [".streams/stream-api.md"]
    # The staged work is still staged, exactly as it was; the unstaged edits are untouched.
    assert started.git("diff", "--cached", "--name-only", cwd=wt).split() == ["src/api/app.py"]
    assert started.git("show", ":src/api/app.py", cwd=wt) == "staged change\n"
    assert (wt / "src/api/app.py").read_text() == "staged change\nplus an unstaged edit\n"
    assert (wt / "tests/api/test_app.py").read_text() == "unstaged only\n"
    status = started.git("status", "--porcelain", cwd=wt).splitlines()
    assert sorted(status) == [" M tests/api/test_app.py", "MM src/api/app.py"]
    # The committed file is the new one.
    committed = parse(started.git("show", f"{after}:.streams/stream-api.md", cwd=wt), display="x")
    assert (committed.status, committed.completion, committed.completed) == ("in_progress", 40, ("models",))
    assert "progress(api)" in started.git("log", "-1", "--format=%s", cwd=wt)


def test_no_option_prints_current_state_and_json(started: Repo) -> None:
    wt = started.worktree("api")
    assert run_cli(["progress", "--current", "endpoints", "--next", "tests", "--agent", "claude"], wt).code == 0
    before = head(started, wt)
    r = run_cli(["progress"], wt)
    assert r.code == 0, r.err
    assert "api: pending, 0%, agent claude" in r.out and "current: endpoints" in r.out and "next:    tests" in r.out
    assert head(started, wt) == before  # printing commits nothing
    r = run_cli(["progress", "--json"], wt)
    data = json.loads(r.out)
    assert data["ok"] and data["data"]["progress"]["current"] == "endpoints"
    assert data["data"]["progress"]["next"] == ["tests"]


def test_stream_option_from_the_main_worktree_acts_in_that_worktree(started: Repo) -> None:
    wt = started.worktree("docs")
    main_head = head(started, started.root)
    r = run_streams(
        ["progress", "--stream", "docs", "--status", "blocked", "--blocked", "waiting for api", "--json"], started.root
    )
    assert r.code == 0, r.err
    data = json.loads(r.out)["data"]
    assert data["changed"] and data["commit"] == head(started, wt)
    assert head(started, started.root) == main_head
    p = read_progress(wt, "docs")
    assert p is not None and p.status == "blocked" and p.blocked == ("waiting for api",)
    assert started.git("status", "--porcelain", cwd=wt) == ""


def test_done_moves_a_task_out_of_current_next_and_blocked(started: Repo) -> None:
    wt = started.worktree("api")
    run_cli(["progress", "--current", "models", "--next", "endpoints", "--next", "tests", "--blocked", "models"], wt)
    r = run_cli(["progress", "--done", "models", "--done", "endpoints", "--done", "models", "--completion", "60%"], wt)
    assert r.code == 0, r.err
    p = read_progress(wt, "api")
    assert p is not None
    assert p.completed == ("models", "endpoints") and p.current == "" and p.next == ("tests",) and p.blocked == ()
    assert p.completion == 60
    run_cli(["progress", "--clear-next", "--next", "release"], wt)
    p = read_progress(wt, "api")
    assert p is not None and p.next == ("release",)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--status", "doing"], "--status 'doing' is not a status"),
        (["--status", "in-progress"], "did you mean 'in_progress'"),
        (["--completion", "101"], "outside 0-100"),
        (["--completion", "-1"], "outside 0-100"),
        (["--completion", "forty"], "not a number"),
        (["--completion", "4.5"], "not a number"),
    ],
)
def test_bad_values_exit_2_and_change_nothing(started: Repo, args: list[str], needle: str) -> None:
    wt = started.worktree("api")
    before = (head(started, wt), (wt / ".streams/stream-api.md").read_bytes())
    r = run_cli(["progress", *args], wt)
    assert r.code == 2, r
    assert needle in r.err and r.err.count("\n") == 1
    assert (head(started, wt), (wt / ".streams/stream-api.md").read_bytes()) == before


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("---\nstream: api\nstatus: [oops\n---\n", 3, "not valid YAML"),
        ("---\nstream: api\nstatus: done\n---\n", 3, "status 'done' is not one of"),
        ("---\nstream: api\ncompletion: 250\n---\n", 3, "completion must be a whole number"),
        ("stream: api\n", 1, "missing front matter"),
        ("---\nstream: api\n", 1, "not closed"),
    ],
)
def test_hand_broken_file_names_file_and_line_and_commits_nothing(
    started: Repo, text: str, line: int, needle: str
) -> None:
    wt = started.worktree("api")
    path = wt / ".streams/stream-api.md"
    path.write_text(text)
    before = head(started, wt)
    r = run_cli(["progress", "--completion", "50"], wt)
    assert r.code == 1, r
    assert f"{path}:{line}:" in r.err and needle in r.err
    assert head(started, wt) == before
    assert path.read_text() == text
    assert run_cli(["progress"], wt).code == 1  # showing it fails the same way


def test_outside_any_stream_needs_stream_option(started: Repo) -> None:
    r = run_cli(["progress", "--status", "in_progress"], started.root)
    assert r.code == 2 and "--stream NAME" in r.err
    r = run_cli(["progress", "--stream", "nope"], started.root)
    assert r.code == 1 and "unknown stream 'nope'" in r.err


def test_not_started_stream_is_refused_for_updates(repo: Repo) -> None:
    r = run_cli(["progress", "--stream", "api", "--status", "in_progress"], repo.root)
    assert r.code == 1 and "streams start api" in r.err


def test_refused_during_a_rebase(started: Repo) -> None:
    wt = started.worktree("api")
    started.write("src/api/app.py", "stream side\n", cwd=wt)
    started.commit_all("api change", cwd=wt)
    started.write("src/api/app.py", "main side\n")
    started.commit_all("main change")
    assert started.git("rebase", "main", cwd=wt, check=False) is not None
    before = head(started, wt)
    r = run_cli(["progress", "--status", "blocked"], wt)
    assert r.code == 1 and "rebase in progress" in r.err
    assert head(started, wt) == before


def test_a_deleted_progress_file_is_recreated_and_committed(started: Repo) -> None:
    wt = started.worktree("ui")
    started.git("rm", "-q", ".streams/stream-ui.md", cwd=wt)
    started.git("commit", "-q", "-m", "drop progress", cwd=wt)
    r = run_cli(["progress", "--status", "in_progress", "--agent", "bot"], wt)
    assert r.code == 0, r.err
    assert files_of(started, head(started, wt)) == [".streams/stream-ui.md"]
    assert started.git("status", "--porcelain", cwd=wt) == ""
    p = read_progress(wt, "ui")
    assert p is not None and p.agent == "bot" and p.started


def test_unchanged_content_makes_no_commit(started: Repo) -> None:
    wt = started.worktree("api")
    p = Progress(
        stream="api", status=ProgressStatus.COMPLETED, completion=100, started="2026-01-01T00:00:00Z", updated="X"
    )
    # Same content as what the update will render (the update stamps the time, so freeze it via the API).
    from streams.progress import Update, update_progress

    (wt / ".streams/stream-api.md").write_text(render(p))
    started.commit_all("set progress", cwd=wt)
    before = head(started, wt)
    result = update_progress(
        started.root / ".git" / "streams", wt, "api", "streams/api", Update(status=ProgressStatus.COMPLETED), when="X"
    )
    assert result.commit is None and head(started, wt) == before


def test_read_progress(started: Repo, tmp_path: Path) -> None:
    assert read_progress(tmp_path, "api") is None
    p = read_progress(started.worktree("api"), "api")
    assert p is not None and p.stream == "api" and p.status == "pending"


# --- the quick path: an agent's update in its own worktree ------------------------------------------------

LOADED = (
    "import sys; from streams.cli import main\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
    "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'click', 'yaml', 'pathspec', 'rich', 'tempfile'})\n"
    "print('LOADED', code, heavy, sorted(m for m in sys.modules if m.startswith('streams.config')))\n"
)


def loaded(wt: Path, *args: str) -> str:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", LOADED, *args], cwd=wt, capture_output=True, text=True, check=False, timeout=60
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return next(ln for ln in proc.stdout.splitlines() if ln.startswith("LOADED"))


def test_an_update_in_the_streams_own_worktree_loads_neither_click_nor_the_config(started: Repo) -> None:
    wt = started.worktree("api")
    assert run_cli(["progress", "--completion", "1"], wt).code == 0  # the hooks' cache is fresh
    before = head(started, wt)
    assert loaded(wt, "progress", "--status", "in_progress", "--completion", "30", "--done", "models") == (
        "LOADED 0 [] []"
    )
    assert files_of(started, head(started, wt)) == [".streams/stream-api.md"]
    assert started.git("rev-parse", "HEAD~1", cwd=wt).strip() == before
    p = read_progress(wt, "api")
    assert p is not None and (p.status, p.completion, p.completed) == ("in_progress", 30, ("models",))


def test_the_quick_path_says_what_the_full_path_says(started: Repo) -> None:
    wt = started.worktree("api")
    quick = run_streams(["progress", "--completion", "20", "--current", "endpoints", "-m", "half way"], wt)
    assert quick.code == 0, quick.err
    full = run_cli(["progress", "--completion", "25", "--current", "endpoints"], wt)
    assert full.code == 0, full.err

    def shape(out: str) -> list[str]:
        return [
            ln.split(" (updated")[0] if "(updated" in ln else ln for ln in out.splitlines() if "committed" not in ln
        ]

    assert shape(quick.out.replace("20%", "25%")) == shape(full.out)
    assert "committed " + head(started, wt)[:12] in full.out
    assert started.git("log", "-2", "--format=%s", cwd=wt).splitlines() == [
        "progress(api): pending, 25%",
        "progress(api): half way",
    ]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--completion", "200"], 2, "outside 0-100"),
        (["--status", "done"], 2, "is not a status"),
        (["--stream", "ui", "--completion", "5"], 1, "writes only its own progress"),
        (["--json", "--completion", "6"], 0, '"command": "progress"'),
        (["--completion", "7", "--current", "naïve – café"], 0, "current: naïve – café"),
    ],
)
def test_anything_the_quick_path_does_not_take_goes_the_full_way(
    started: Repo, args: list[str], code: int, says: str
) -> None:
    r = run_streams(["progress", *args], started.worktree("api"))
    assert r.code == code, (r.out, r.err)
    assert says in r.out + r.err and "Traceback" not in r.err


def test_an_uncommitted_config_edit_sends_the_update_the_full_way(started: Repo) -> None:
    wt = started.worktree("api")
    config = started.root / "streams.yaml"
    config.write_text(config.read_text() + "  extra:\n    owns: [extra/**]\n")
    said = loaded(wt, "progress", "--completion", "9")
    assert said.startswith("LOADED 0 [") and "'click'" in said and "'yaml'" in said, said
    p = read_progress(wt, "api")
    assert p is not None and p.completion == 9


def test_an_update_runs_no_git_process_but_its_commit(started: Repo, tmp_path: Path) -> None:
    wt = started.worktree("api")
    assert run_cli(["progress", "--completion", "1"], wt).code == 0
    trace = tmp_path / "trace"
    r = run_streams(["progress", "--completion", "2"], wt, env={"GIT_TRACE": str(trace)})
    assert r.code == 0, r.err
    ours = [ln.split("trace: built-in: ", 1)[1] for ln in trace.read_text().splitlines() if "built-in: git" in ln]
    assert ours[0].startswith("git commit --quiet --only"), ours  # the hooks' own git processes follow
    assert "git rev-parse HEAD" not in ours, ours


def test_an_untracked_progress_file_left_by_hand_is_committed(started: Repo) -> None:
    wt = started.worktree("api")
    started.git("rm", "-q", "--cached", ".streams/stream-api.md", cwd=wt)
    started.git("commit", "-q", "--no-verify", "-m", "untrack the progress file", cwd=wt)
    assert started.git("ls-files", ".streams", cwd=wt) == ""
    r = run_streams(["progress", "--completion", "15"], wt)
    assert r.code == 0, r.err
    assert "committed " in r.out
    assert files_of(started, head(started, wt)) == [".streams/stream-api.md"]
    assert "completion: 15" in started.git("show", "HEAD:.streams/stream-api.md", cwd=wt)
