"""``streams brief`` and ``streams.brief``: the brief is composed from git and streams.yaml, and says it all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.brief import Brief, Delivered, PreviousAttempt, TaskSource, compose, render
from streams.cli.base import jsonable
from streams.workspace import discover, load_config
from tests.conftest import DEFAULT_CONFIG, DEFAULT_FILES, Repo, make_repo, run_cli
from tests.test_json_docs import SHAPES, check

CONFIG = DEFAULT_CONFIG.replace(
    "    owns: [src/api/**, tests/api/**]\n",
    "    owns: [src/api/**, tests/api/**]\n    task: Build the v2 endpoints\n    touches: [pyproject.toml]\n",
).replace("    owns: [docs/**]\n", "    owns: [docs/**]\n    task_file: tasks/docs.md\n    description: The manual\n")


def many_files(n: int) -> dict[str, str]:
    files = dict(DEFAULT_FILES)
    files.update({f"src/api/mod_{i:02}.py": f"# {i}\n" for i in range(n)})
    files["tasks/docs.md"] = "Write the manual, chapter by chapter.\n"
    return files


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path, files=many_files(40), config=CONFIG)


def brief_json(cwd: Path, *args: str, code: int = 0) -> Any:
    r = run_cli(["brief", *args, "--json"], cwd)
    assert r.code == code, r
    return json.loads(r.out)


def test_the_sample_is_owned_files_and_the_count_is_all_of_them(repo: Repo) -> None:
    data = brief_json(repo.root, "api")["data"]
    tracked = repo.git("ls-files").split()
    owned = [p for p in tracked if p.startswith(("src/api/", "tests/api/"))]
    assert data["owned_files"] == len(owned) == 42
    assert len(data["sample"]) == 20 and len(set(data["sample"])) == 20
    assert set(data["sample"]) <= set(owned)
    owners = json.loads(run_cli(["owner", *data["sample"], "--json"], repo.root).out)["data"]["paths"]
    assert {o["stream"] for o in owners} == {"api"}, owners  # streams itself says each one is api's
    assert data["sample"][-1].startswith("tests/api/"), "the sample spreads over the whole list"
    text = run_cli(["brief", "api"], repo.root).out
    assert "match 42 tracked files; 20 of them:" in text
    assert all(f"- {p}\n" in text for p in data["sample"])


def test_a_small_stream_lists_every_file_and_its_shared_files_with_how_to_lock(repo: Repo) -> None:
    data = brief_json(repo.root, "ui")["data"]
    assert data["sample"] == ["src/ui/main.ts"] and data["owned_files"] == 1
    assert data["shared"] == ["pyproject.toml"] and data["depends"] == ["api"]
    text = run_cli(["brief", "ui"], repo.root).out
    assert "match 1 tracked file; all of them:" in text
    assert "`pyproject.toml`" in text and "streams lock PATH" in text and "--until-commit" in text
    assert "`api`" in text  # what it builds on


def test_the_task_comes_from_task_then_task_file_on_the_base_then_description(repo: Repo) -> None:
    api = brief_json(repo.root, "api")["data"]
    assert (api["task"], api["task_source"], api["task_file"]) == ("Build the v2 endpoints", "task", None)
    repo.write("tasks/docs.md", "an edit nobody committed\n")  # the working copy is not the brief
    docs = brief_json(repo.root, "docs")["data"]
    assert docs["task_source"] == "task_file" and docs["task_file"] == "tasks/docs.md"
    assert docs["task"] == "Write the manual, chapter by chapter."
    assert "Write the manual, chapter by chapter." in run_cli(["brief", "docs"], repo.root).out
    assert "from `tasks/docs.md` on `main`" in run_cli(["brief", "docs"], repo.root).out
    repo.commit_all("the new task")
    assert brief_json(repo.root, "docs")["data"]["task"] == "an edit nobody committed"
    ui = brief_json(repo.root, "ui")["data"]
    assert (ui["task"], ui["task_source"]) == ("", "none")
    assert "Report it as blocked" in run_cli(["brief", "ui"], repo.root).out


def test_a_task_file_missing_on_the_base_is_one_clear_error(tmp_path: Path) -> None:
    files = many_files(0)
    del files["tasks/docs.md"]
    repo = make_repo(tmp_path, files=files, config=CONFIG)
    repo.write("tasks/docs.md", "only in the working copy\n")
    r = run_cli(["brief", "docs"], repo.root)
    assert r.code == 1 and r.out == ""
    assert r.err.strip().splitlines() == [
        "streams: error: streams.yaml: streams.docs.task_file: 'tasks/docs.md' is not committed on main; "
        "commit it there (only the base's copy is read)"
    ]


def test_the_description_is_the_task_when_nothing_else_says(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, config=DEFAULT_CONFIG.replace("  docs:\n", "  docs:\n    description: The manual\n"))
    data = brief_json(repo.root, "docs")["data"]
    assert (data["task"], data["task_source"], data["description"]) == ("The manual", "description", "The manual")


def test_inside_a_worktree_the_stream_defaults_to_it_and_elsewhere_it_is_required(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    wt = repo.worktree("api")
    data = brief_json(wt / "src" / "api")["data"]
    assert data["stream"] == "api" and data["worktree"] == str(wt)
    assert data["progress_file"] == ".streams/stream-api.md" and data["branch"] == "streams/api"
    assert data["base_sha"] == repo.git("rev-parse", "main").strip()
    assert brief_json(wt, "ui")["data"]["stream"] == "ui"  # naming another stream is fine
    before = repo.snapshot()
    r = run_cli(["brief"], repo.root)
    assert r.code == 2 and r.out == ""
    assert r.err.strip() == (
        "streams: error: which stream? run this in a stream's worktree, or name it: "
        "`streams brief STREAM` (streams: api, ui, docs)"
    )
    assert repo.snapshot() == before


def test_an_unknown_stream_exits_1_naming_the_known_ones(repo: Repo) -> None:
    r = run_cli(["brief", "nope", "--json"], repo.root)
    assert r.code == 1
    env = json.loads(r.out)
    assert env["ok"] is False and env["error"]["code"] == "unknown_stream"
    assert "'nope'" in env["error"]["message"] and "api, ui, docs" in env["error"]["message"]


def test_under_a_run_the_environment_names_run_wave_and_attempt(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_STREAM", "api")
    monkeypatch.setenv("STREAMS_RUN_ID", "r-1")
    monkeypatch.setenv("STREAMS_WAVE", "2")
    monkeypatch.setenv("STREAMS_ATTEMPT", "3")
    data = brief_json(repo.root, "api")["data"]
    assert (data["run_id"], data["wave"], data["attempt"]) == ("r-1", 2, 3)
    other = brief_json(repo.root, "ui")["data"]  # the environment is api's agent's, not ui's
    assert (other["run_id"], other["wave"], other["attempt"]) == (None, None, 1)
    assert "run r-1, wave 2, attempt 3" in run_cli(["brief", "api"], repo.root).out


def composed(repo: Repo) -> Brief:
    ws = discover(repo.root)
    return compose(
        ws,
        load_config(ws),
        "ui",
        run_id="r-7",
        wave=2,
        attempt=2,
        delivered=(
            Delivered("api", 1, 3, ("src/api/app.py", "src/api/new.py"), "v2 endpoints behind a flag"),
            Delivered("docs", 1, 1, tuple(f"docs/p{i}.md" for i in range(12))),
        ),
        previous=PreviousAttempt(2 - 1, "timeout", "no exit after 45m", "refs/streams/wip/ui/r-7/1", "log\n```\nend\n"),
        notes=("keep the old form working",),
    )


def test_delivered_previous_and_notes_are_in_the_brief(repo: Repo) -> None:
    text = render(composed(repo))
    assert "run r-7, wave 2, attempt 2" in text
    assert (
        "- wave 1, `api`: 3 commits; files: `src/api/app.py`, `src/api/new.py`. Note: v2 endpoints behind a flag"
        in text
    )
    assert "- wave 1, `docs`: 1 commit; files: `docs/p0.md`" in text and "and 2 more" in text
    assert "Attempt 1 ended as `timeout`: no exit after 45m." in text
    assert "`git show --stat refs/streams/wip/ui/r-7/1`" in text
    assert "`git checkout refs/streams/wip/ui/r-7/1 -- PATH`" in text
    assert "````text\nlog\n```\nend\n````" in text  # the log's own fence cannot close the quote
    assert "- keep the old form working" in text
    first = render(compose(discover(repo.root), load_config(discover(repo.root)), "ui"))
    assert "## The previous attempt" in text and "## What the waves before delivered" in text
    assert "## The previous attempt" not in first and "## What the waves" not in first and "## Reviewer" not in first


def test_the_rules_exit_codes_and_environment_are_in_the_brief(repo: Repo) -> None:
    text = run_cli(["brief", "api"], repo.root).out
    for needle in (
        "git stash",
        "streams.yaml",
        'streams progress --done "STEP" --completion N',
        'streams progress --status blocked --blocked "QUESTION"',
        "- `0`: I am done",
        "- `3`: blocked",
        "- `75`: temporary failure",
        "`rate limited`",
        "- `other`: failed",
        "STREAMS_BRIEF",
        "STREAMS_PROGRESS_FILE",
        "STREAMS_BASE_SHA",
    ):
        assert needle in text, needle
    # the commands the brief tells an agent to run work as written, in the stream's worktree
    assert run_cli(["start", "api"], repo.root).code == 0
    wt = repo.worktree("api")
    for argv in (
        ["progress", "--done", "STEP", "--completion", "10", "--current", "TASK", "--next", "STEP"],
        ["progress", "--status", "blocked", "--blocked", "QUESTION"],
        ["lock", "pyproject.toml", "--reason", "why", "--until-commit"],
        ["lock", "pyproject.toml", "--wait", "5m"],
        ["unlock", "pyproject.toml"],
        ["owner", "src/api/app.py"],
    ):
        assert run_cli(argv, wt).code == 0, argv
    shown = json.loads(run_cli(["progress", "--json"], wt).out)["data"]["progress"]
    assert shown["status"] == "blocked" and shown["blocked"] == ["QUESTION"]


def test_the_json_of_a_full_brief_is_its_documented_fields(repo: Repo) -> None:
    brief = composed(repo)
    data = jsonable(brief)
    check(data, SHAPES["Brief"].table(), "Brief")
    assert data == json.loads(json.dumps(brief.to_dict()))
    assert data["previous"]["wip_ref"] == "refs/streams/wip/ui/r-7/1" and len(data["delivered"]) == 2
    assert brief.task_source is TaskSource.NONE
