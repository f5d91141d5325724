"""The command line as a whole: help everywhere, the JSON envelope, exit codes, crashes, Ctrl-C, init."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from streams import __version__
from streams.cli import cli
from streams.config import load
from streams.ownership import Ownership
from tests.conftest import Repo, disk_snapshot, make_repo, run_cli, run_streams

# --- help --------------------------------------------------------------------------------------


def walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the public API: loads lazily registered commands
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


COMMANDS = list(walk(cli))


def test_the_walk_finds_the_foundation_commands() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"init", "start", "stop", "list"} <= names


@pytest.mark.parametrize("path", [(), *(p for p, _ in COMMANDS)], ids=lambda p: " ".join(p) or "streams")
def test_every_command_has_help(path: tuple[str, ...], tmp_path: Path) -> None:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert (command.help or "").strip(), f"`streams {' '.join(path)}` has no help text (write a docstring)"
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert (param.help or "").strip(), f"`streams {' '.join(path)}` option {param.opts[0]} has no help"
    for flag in ("--help", "-h"):
        result = run_cli([*path, flag], tmp_path)  # works outside any repository
        assert result.code == 0, result
        assert result.out.startswith(f"Usage: streams {' '.join(path)}".rstrip())
        first_line = (command.help or "").strip().splitlines()[0]
        assert first_line[:40] in " ".join(result.out.split()), "the docstring is shown"
        assert result.err == ""


def test_top_level_help_lists_every_command_and_the_exit_codes(tmp_path: Path) -> None:
    result = run_cli(["--help"], tmp_path)
    assert result.code == 0
    for name in cli.commands:
        assert re.search(rf"^  {re.escape(name)}\b", result.out, re.M), name
    assert "70 internal error" in " ".join(result.out.split())


def test_no_command_shows_the_help_on_stderr(tmp_path: Path) -> None:
    result = run_streams([], tmp_path)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("Usage: streams [OPTIONS] COMMAND") and "Commands:" in result.err


def test_version(tmp_path: Path) -> None:
    result = run_cli(["--version"], tmp_path)
    assert (result.code, result.out) == (0, f"streams, version {__version__}\n")


# --- the JSON envelope -------------------------------------------------------------------------

ENVELOPE_KEYS = {"version", "command", "ok", "data", "error"}


def test_envelope_on_success(repo: Repo) -> None:
    result = run_cli(["start", "--json", "api"], repo.root)
    assert result.code == 0, result.err
    assert result.out.count("\n") == 1, "one JSON document on one line"
    env = json.loads(result.out)
    assert set(env) == ENVELOPE_KEYS
    assert (env["version"], env["command"], env["ok"], env["error"]) == (1, "start", True, None)
    assert env["data"]["streams"][0]["name"] == "api"
    assert env["data"]["streams"][0]["path"] == str(repo.worktree("api"))


@pytest.mark.parametrize(
    ("args", "code", "error_code", "words"),
    [
        (["list", "--json"], 1, "config", "streams.yaml:3: colour: unknown key"),
        (["start", "--json", "nope"], 1, "unknown_stream", "unknown stream 'nope'"),
        (["stop", "--json"], 2, "usage", "Missing argument"),
        (["stop", "--json", "api", "--bogus"], 2, "usage", "No such option '--bogus'"),
    ],
)
def test_envelope_on_failure(repo: Repo, args: list[str], code: int, error_code: str, words: str) -> None:
    if error_code == "config":
        (repo.root / "streams.yaml").write_text("version: 1\nbase: main\ncolour: blue\n")
        repo.commit_all("a broken streams.yaml")
    result = run_cli(args, repo.root)
    assert result.code == code
    env = json.loads(result.out)
    assert set(env) == ENVELOPE_KEYS
    assert (env["version"], env["command"], env["ok"], env["data"]) == (1, args[0], False, None)
    assert set(env["error"]) == {"code", "message"}
    assert env["error"]["code"] == error_code
    assert words in env["error"]["message"]
    # The same one line goes to stderr for a human watching.
    assert result.err == f"streams: error: {env['error']['message']}\n"


def test_envelope_outside_a_repository(tmp_path: Path) -> None:
    result = run_streams(["list", "--json"], tmp_path)
    assert result.code == 1
    env = json.loads(result.out)
    assert env["error"]["code"] == "not_a_repository" and env["ok"] is False


# --- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["start", "--bogus"],
        ["stop"],
        ["list", "extra"],
        ["-C"],
        ["init", "--force=yes"],
        ["-C", "does-not-exist", "list"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2_with_one_line(repo: Repo, args: list[str]) -> None:
    before = disk_snapshot(repo.root.parent)
    result = run_cli(args, repo.root)
    assert result.code == 2, result
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("streams: error: ") and "--help" in lines[0]
    assert result.out == ""
    assert disk_snapshot(repo.root.parent) == before


def test_which_stream_has_one_answer_and_one_error(repo: Repo) -> None:
    """Outside a stream's worktree and without --stream, every command fails the same way (exit 2)."""
    assert run_cli(["start", "api"], repo.root).code == 0
    errors = set()
    for args in (["lock", "pyproject.toml"], ["unlock", "pyproject.toml"], ["progress"]):
        result = run_cli([*args, "--json"], repo.root)
        assert result.code == 2, result
        env = json.loads(result.out)
        assert env["error"]["code"] == "no_stream"
        errors.add(env["error"]["message"])
    assert errors == {"not inside a stream's worktree; run this in one, or pass --stream NAME (streams: api, ui, docs)"}
    inside = run_cli(["progress", "--json"], repo.worktree("api"))  # the worktree answers it
    assert inside.code == 0 and json.loads(inside.out)["data"]["stream"] == "api"


def test_dash_C_runs_elsewhere(repo: Repo, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli(["-C", str(repo.root), "start", "docs"], elsewhere)
    assert result.code == 0, result.err
    assert repo.worktree("docs").is_dir()
    relative = run_cli(["-C", "repo", "list"], tmp_path)
    assert relative.code == 0 and "docs" in relative.out


BOOM = "boom-for-test"


@pytest.fixture
def boom_command() -> Iterator[None]:
    """A command that exists only in this test and hits a bug (a ValueError)."""
    from streams.cli.base import json_option

    @cli.command(BOOM)
    @json_option
    def boom() -> None:
        """Raise a ValueError, as a bug would."""
        int("not a number")

    try:
        yield
    finally:
        del cli.commands[BOOM]


def crash_log_of(line: str) -> Path:
    match = re.search(r"details in (\S+\.log)", line)
    assert match, line
    return Path(match.group(1))


def test_internal_error_exits_70_with_a_crash_log(boom_command: None, tmp_path: Path) -> None:
    result = run_cli([BOOM], tmp_path)
    assert result.code == 70
    lines = result.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"streams: error: internal error (a bug in streams {__version__}): ValueError:")
    assert "Traceback" not in result.err and result.out == ""
    log = crash_log_of(lines[0])
    assert log.is_relative_to(Path(os.environ["XDG_CACHE_HOME"]))
    text = log.read_text()
    assert f"streams {__version__}\n" in text
    assert f"python {sys.version.split()[0]}" in text
    assert re.search(r"^git version \d", text, re.M)
    assert "Traceback (most recent call last):" in text
    assert "ValueError: invalid literal for int() with base 10: 'not a number'" in text
    assert "in boom" in text


def test_crash_log_falls_back_to_the_temp_dir(
    boom_command: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # mkdir under a file fails
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    result = run_cli([BOOM], tmp_path)
    assert result.code == 70 and len(result.err.splitlines()) == 1
    log = crash_log_of(result.err)
    assert log.parent == tmp_path and "ValueError" in log.read_text()


def test_internal_error_with_json_gives_the_envelope(boom_command: None, tmp_path: Path) -> None:
    result = run_cli([BOOM, "--json"], tmp_path)
    assert result.code == 70
    env = json.loads(result.out)
    assert env["ok"] is False and env["error"]["code"] == "internal"
    assert crash_log_of(env["error"]["message"]).is_file()


def test_a_command_exit_code_reaches_the_caller(tmp_path: Path) -> None:
    @cli.command("exit-for-test")
    def exit_for_test() -> None:
        """Exit 4 through click, as a halted sync would."""
        click.get_current_context().exit(4)

    try:
        assert run_cli(["exit-for-test"], tmp_path).code == 4
    finally:
        del cli.commands["exit-for-test"]


def test_internal_error_in_a_real_process(tmp_path: Path) -> None:
    """The console entry point in a real interpreter: a bug in a command exits 70, one line."""
    script = textwrap.dedent(
        """
        import sys
        from streams.cli import cli, main

        @cli.command("explode")
        def explode() -> None:
            '''Fail like a bug.'''
            {}["missing"]

        main()
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "explode"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 70, proc
    assert len(proc.stderr.splitlines()) == 1 and "KeyError" in proc.stderr
    assert "KeyError: 'missing'" in crash_log_of(proc.stderr).read_text()


def test_ctrl_c_while_waiting_for_the_worktree_lock_exits_130(repo: Repo) -> None:
    from filelock import FileLock

    (repo.root / ".git" / "streams").mkdir()
    lock = FileLock(str(repo.root / ".git" / "streams" / "worktrees.lock"))
    with lock:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "start", "api"],
            cwd=repo.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        waiting = proc.stderr.readline()
        assert waiting == "streams: waiting for another streams process to finish changing worktrees…\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert err == "streams: interrupted\n" and "Traceback" not in out + err
    assert not repo.worktree("api").exists()
    assert repo.git("branch", "--list", "streams/*") == ""


# --- init --------------------------------------------------------------------------------------


@pytest.fixture
def bare_repo(tmp_path: Path) -> Repo:
    """A repository on branch ``trunk`` with three top-level folders and no streams.yaml."""
    repo = make_repo(
        tmp_path,
        files={
            "backend/app.py": "x\n",
            "frontend/app.ts": "x\n",
            "docs/index.md": "x\n",
            ".github/workflows/ci.yml": "x\n",
            "README.md": "x\n",
        },
        config=None,
    )
    repo.git("branch", "-m", "trunk")
    return repo


def test_init_writes_a_starter_that_validates_and_starts(bare_repo: Repo) -> None:
    repo = bare_repo
    result = run_cli(["init"], repo.root)
    assert result.code == 0, result.err
    assert result.out.startswith("wrote streams.yaml with 3 example streams: backend, docs, frontend")
    path = repo.root / "streams.yaml"
    text = path.read_text()
    assert text.startswith("#"), "a commented starter"
    config = load(path)
    assert config.base == "trunk"
    assert {s.name: s.owns for s in config.streams} == {
        "backend": ("backend/**",),
        "docs": ("docs/**",),
        "frontend": ("frontend/**",),
    }
    # Only the configuration committed on the base is in force: start says so, and changes nothing.
    before = disk_snapshot(repo.root.parent)
    refused = run_cli(["start"], repo.root)
    assert refused.code == 1 and "streams.yaml is not committed on trunk" in refused.err
    assert disk_snapshot(repo.root.parent) == before
    repo.commit_all("streams: configure")
    started = run_cli(["start"], repo.root)
    assert started.code == 0, started.err
    assert started.err == "", "the starter file gives no warnings"
    for name in ("backend", "docs", "frontend"):
        assert repo.worktree(name).is_dir()
    assert repo.git("rev-parse", "streams/backend~1").strip() == repo.git("rev-parse", "trunk").strip()


def test_init_refuses_to_overwrite_without_force(bare_repo: Repo) -> None:
    repo = bare_repo
    (repo.root / "streams.yaml").write_text("# mine\n")
    before = disk_snapshot(repo.root.parent)
    result = run_cli(["init"], repo.root)
    assert result.code == 1
    assert (
        result.err
        == f"streams: error: {repo.root / 'streams.yaml'} already exists; edit it, or pass --force to overwrite it\n"
    )
    assert disk_snapshot(repo.root.parent) == before


def test_init_force_overwrites(bare_repo: Repo) -> None:
    repo = bare_repo
    (repo.root / "streams.yaml").write_text("# mine\n")
    result = run_cli(["init", "--force", "--json"], repo.root)
    assert result.code == 0, result.err
    env = json.loads(result.out)
    assert env["data"] == {"path": str(repo.root / "streams.yaml"), "streams": ["backend", "docs", "frontend"]}
    assert load(repo.root / "streams.yaml").base == "trunk"
    assert not list(repo.root.glob(".streams.yaml*")), "no temp file left behind"


def test_init_from_a_subdirectory_writes_at_the_root(bare_repo: Repo) -> None:
    repo = bare_repo
    result = run_cli(["init"], repo.root / "backend")
    assert result.code == 0, result.err
    assert (repo.root / "streams.yaml").is_file() and not (repo.root / "backend" / "streams.yaml").exists()


def test_init_in_a_repository_without_commits(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "dev", str(root)], check=True)
    (root / "lib").mkdir()
    (root / "lib" / "x.py").write_text("x\n")
    result = run_cli(["init"], root)
    assert result.code == 0, result.err
    config = load(root / "streams.yaml")
    assert config.base == "dev" and config.names == ("lib",)
    # start then explains the base branch is missing, without a traceback.
    started = run_cli(["start"], root)
    assert started.code == 1 and started.err == (
        "streams: error: the base branch 'dev' does not exist yet, so no streams.yaml is in force: "
        "commit streams.yaml on dev (or fix `base:`)\n"
    )


def test_init_quotes_and_escapes_odd_folder_names(tmp_path: Path) -> None:
    folders = [
        "my folder",
        "[x]",
        "a*b",
        "#tmp",
        "!neg",
        "x: y",
        "it's",
        "b\\c",
        "tab\tdir",
        "ünï",
        "src",
        "Src",
        "true",
        "123",
        "no",
    ]
    repo = make_repo(tmp_path, files={f"{f}/file.txt": "x\n" for f in folders}, config=None)
    result = run_cli(["init"], repo.root)
    assert result.code == 0, result.err
    config = load(repo.root / "streams.yaml")
    own = Ownership(config)
    owners = {f: own.owner(f"{f}/file.txt") for f in folders}
    assert all(o.kind == "stream" for o in owners.values()), owners
    assert len({o.stream for o in owners.values()}) == len(folders), "one stream per folder"
    assert owners["ünï"].stream == "uni" and owners["true"].stream == "true"
    assert {owners["src"].stream, owners["Src"].stream} == {"Src", "src-2"}, "no two names differ only in case"
    repo.commit_all("streams: configure")
    started = run_cli(["start"], repo.root)
    assert (started.code, started.err) == (0, "")


def test_init_refuses_a_directory_named_streams_yaml(bare_repo: Repo) -> None:
    (bare_repo.root / "streams.yaml").mkdir()
    result = run_cli(["init", "--force"], bare_repo.root)
    assert result.code == 1 and "is a directory" in result.err


LAYOUTS = {
    "nested manifests": {
        "pyproject.toml": "[project]\n",
        "uv.lock": "x\n",
        "requirements-dev.txt": "x\n",
        "api/pyproject.toml": "[project]\n",
        "api/app.py": "x\n",
        "web/package.json": "{}\n",
        "web/package-lock.json": "{}\n",
        "web/src/main.ts": "x\n",
        "README.md": "x\n",
        "LICENSE": "x\n",
    },
    "monorepo": {
        "package.json": "{}\n",
        "pnpm-lock.yaml": "x\n",
        "pnpm-workspace.yaml": "x\n",
        "packages/ui/package.json": "{}\n",
        "packages/core/package.json": "{}\n",
        "apps/site/package.json": "{}\n",
        "apps/site/Makefile": "x\n",
        "Makefile": "x\n",
    },
    "docs site": {
        "mkdocs.yml": "x\n",
        "docs/index.md": "x\n",
        "docs/CHANGELOG.md": "x\n",
        "CHANGELOG.md": "x\n",
        "requirements.txt": "x\n",
        "overrides/main.html": "x\n",
    },
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_init_then_commit_then_start_works_on_real_layouts(tmp_path: Path, layout: str) -> None:
    """A manifest nested in a stream's folder stays that stream's: the starter anchors the shared
    top-level ones (`/pyproject.toml`), lists lock files as shared, and names what stays unowned."""
    repo = make_repo(tmp_path, files=LAYOUTS[layout], config=None)
    result = run_cli(["init"], repo.root)
    assert result.code == 0, result.err
    text = (repo.root / "streams.yaml").read_text()
    top = sorted(p for p in LAYOUTS[layout] if "/" not in p)
    shared = next(line for line in text.splitlines() if line.startswith("shared:"))
    for name in top:
        if name in ("pyproject.toml", "uv.lock", "requirements-dev.txt", "requirements.txt", "package.json",
                    "pnpm-lock.yaml", "pnpm-workspace.yaml", "Makefile", "CHANGELOG.md"):  # fmt: skip
            assert f"/{name}" in shared, (name, shared)
        else:
            assert name in text.split("# unowned", 1)[1].splitlines()[0], name
    repo.commit_all("streams.yaml")
    started = run_cli(["start"], repo.root)
    assert started.code == 0, started.err
