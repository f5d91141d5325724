"""Bad input, one table: malformed streams.yaml files and bad arguments, each run through the CLI.

Every case must exit 1 or 2, print exactly one line on stderr naming the problem (file:line and
key where there is one), never a traceback, and leave every byte on disk (``.git`` included) as it
was. A few cases run as real subprocesses (``python -m streams``) to cover the whole path.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_CONFIG, Outcome, Repo, disk_snapshot, make_repo, run_cli, run_streams

HEAD = "version: 1\nbase: main\n"

# Content-keyed caches of the parsed config (disposable, never state): a valid config may refresh them.
CACHE = ("repo/.git/streams/cache",)


def with_streams(body: str, *, shared: str = "") -> str:
    """``HEAD`` + optional shared list + a streams block (body indented by the caller)."""
    return HEAD + shared + "streams:\n" + body


@dataclass(frozen=True)
class Case:
    id: str
    config: str | bytes | None  # None: no streams.yaml at all
    words: tuple[str, ...]  # each must appear in the one stderr line
    args: tuple[str, ...] = ("start",)
    code: int = 1
    subprocess: bool = False  # run as `python -m streams` instead of in-process
    setup: Callable[[Repo, Path], Path] | None = field(default=None, compare=False)  # returns the cwd


def _plain_dir(repo: Repo, tmp: Path) -> Path:
    d = tmp / "plain"
    d.mkdir()
    return d


def _bare(repo: Repo, tmp: Path) -> Path:
    bare = tmp / "bare.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    return bare


def _inside_git_dir(repo: Repo, tmp: Path) -> Path:
    return repo.root / ".git"


def _tag_named_base(repo: Repo, tmp: Path) -> Path:
    repo.git("tag", "release")
    return repo.root


def _config_is_dir(repo: Repo, tmp: Path) -> Path:
    (repo.root / "streams.yaml").mkdir()
    (repo.root / "streams.yaml" / "x").write_text("")
    return repo.root


CASES = [
    # --- YAML itself ------------------------------------------------------------------------
    Case(
        "yaml-syntax",
        HEAD + "streams:\n  api:\n    owns: [src/**\n  ui: {}\n",
        ("streams.yaml:6", "YAML syntax error"),
        subprocess=True,
    ),
    Case("yaml-tab-indent", HEAD + "streams:\n\tapi: {}\n", ("streams.yaml:4", "YAML syntax error", "\\t")),
    Case("empty-file", "", ("streams.yaml", "empty", "streams init")),
    Case("comments-only", "# nothing here yet\n", ("streams.yaml", "empty")),
    Case("missing-file", None, ("streams.yaml not found", "streams init")),
    Case("not-utf8", b"version: 1\nbase: \xff\n", ("streams.yaml", "UTF-8")),
    Case("config-is-a-directory", None, ("streams.yaml", "cannot read"), setup=_config_is_dir),
    Case("top-level-list", "- api\n- ui\n", ("streams.yaml:1", "expected a mapping", "a list")),
    Case("duplicate-key", HEAD + "base: main\n", ("streams.yaml:3", "base", "duplicate key")),
    Case(
        "duplicate-stream",
        with_streams("  api: {}\n  api: {}\n"),
        ("streams.yaml:5", "streams.api", "duplicate key"),
    ),
    # --- keys and types ---------------------------------------------------------------------
    Case("unknown-top-key", HEAD + "colour: blue\n", ("streams.yaml:3", "colour", "unknown key", "allowed keys")),
    Case(
        "unknown-stream-key",
        with_streams("  api:\n    own: [src/api/**]\n"),
        ("streams.yaml:5", "streams.api.own", "unknown key", "did you mean 'owns'"),
    ),
    Case("version-missing", "base: main\n", ("streams.yaml:1", "version", "missing")),
    Case("version-2", "version: 2\nbase: main\n", ("streams.yaml:1", "version", "unsupported version 2")),
    Case("version-float", "version: 1.0\nbase: main\n", ("streams.yaml:1", "version", "1.0")),
    Case("version-bool", "version: true\nbase: main\n", ("streams.yaml:1", "version")),
    Case("base-missing", "version: 1\n", ("streams.yaml:1", "base", "missing")),
    Case("base-list", "version: 1\nbase: [main]\n", ("streams.yaml:2", "base", "expected a string", "a list")),
    Case("base-option-like", "version: 1\nbase: -main\n", ("streams.yaml:2", "base", "not a valid branch name")),
    Case(
        "owns-string",
        with_streams("  api:\n    owns: src/api/**\n"),
        ("streams.yaml:5", "streams.api.owns", "expected a list of strings", "a string"),
    ),
    Case(
        "owns-number",
        with_streams("  api:\n    owns: 3\n"),
        ("streams.yaml:5", "streams.api.owns", "expected a list of strings", "a number"),
    ),
    Case(
        "owns-nested-list",
        with_streams("  api:\n    owns: [[src/**]]\n"),
        ("streams.yaml:5", "streams.api.owns", "found a list in it"),
    ),
    Case(
        "parallel-string",
        with_streams("  api:\n    parallel: 'no'\n"),
        ("streams.yaml:5", "streams.api.parallel", "expected true or false"),
    ),
    Case(
        "depends-mapping",
        with_streams("  api:\n    depends: {ui: 1}\n"),
        ("streams.yaml:5", "streams.api.depends", "a mapping"),
    ),
    Case(
        "command-number",
        with_streams("  api:\n    command: 5\n"),
        ("streams.yaml:5", "streams.api.command", "expected a string"),
    ),
    Case("streams-list", HEAD + "streams: [api, ui]\n", ("streams.yaml:3", "streams", "expected a mapping")),
    Case("unowned-value", HEAD + "unowned: maybe\n", ("streams.yaml:3", "unowned", "reject or allow")),
    Case("branch-prefix", HEAD + "branch_prefix: streams\n", ("streams.yaml:3", "branch_prefix", "ending in '/'")),
    Case("worktree-root-placeholder", HEAD + "worktree_root: '{home}/x'\n", ("streams.yaml:3", "worktree_root")),
    Case("remote-with-space", HEAD + "remote: 'my origin'\n", ("streams.yaml:3", "remote", "not a valid remote")),
    # --- stream names -----------------------------------------------------------------------
    Case(
        "name-dotdot",
        with_streams("  ../x:\n    owns: [a/**]\n"),
        ("streams.yaml:4", "streams", "'../x'", "not a valid stream name"),
        subprocess=True,
    ),
    Case("name-space", with_streams("  a b: {}\n"), ("streams.yaml:4", "'a b'", "not a valid stream name")),
    Case("name-dash", with_streams("  -rf: {}\n"), ("streams.yaml:4", "'-rf'", "not a valid stream name")),
    Case("name-HEAD", with_streams("  HEAD: {}\n"), ("streams.yaml:4", "'HEAD'", "git reserves it")),
    Case("name-empty", with_streams('  "": {}\n'), ("streams.yaml:4", "streams", "cannot be empty")),
    Case("name-lock", with_streams("  x.lock: {}\n"), ("streams.yaml:4", "'x.lock'", "not a valid stream name")),
    Case("name-slash", with_streams("  a/b: {}\n"), ("streams.yaml:4", "'a/b'", "not a valid stream name")),
    Case("name-number", with_streams("  1: {}\n"), ("streams.yaml:4", "streams", "plain strings")),
    Case("name-too-long", with_streams(f"  {'a' * 101}: {{}}\n"), ("streams.yaml:4", "longer than 100")),
    # --- dependencies -----------------------------------------------------------------------
    Case(
        "depends-unknown",
        with_streams("  api:\n    depends: [nope]\n"),
        ("streams.yaml:5", "streams.api.depends", "unknown stream 'nope'", "known streams: api"),
    ),
    Case(
        "depends-self",
        with_streams("  api:\n    depends: [api]\n"),
        ("streams.yaml:5", "streams.api.depends", "itself"),
    ),
    Case(
        "depends-cycle",
        with_streams("  a:\n    depends: [b]\n  b:\n    depends: [c]\n  c:\n    depends: [a]\n"),
        ("streams.yaml:4", "streams.a.depends", "cycle", "a -> b -> c -> a"),
        subprocess=True,
    ),
    # --- ownership --------------------------------------------------------------------------
    Case(
        "owns-overlap",
        with_streams("  api:\n    owns: [src/**]\n  ui:\n    owns: [src/ui/**]\n"),
        ("streams.yaml:6", "streams.ui.owns", "'src/ui/main.ts'", "'api'", "'ui'"),
    ),
    Case(
        "shared-also-owned",
        with_streams("  api:\n    owns: ['*.toml']\n", shared="shared: [pyproject.toml]\n"),
        ("streams.yaml:3", "shared", "'pyproject.toml'", "also owned by stream 'api'"),
    ),
    Case(
        "owns-escapes-repo",
        with_streams("  api:\n    owns: ['../x/**']\n"),
        ("streams.yaml:5", "streams.api.owns", "'../x/**'", "escapes the repository"),
    ),
    Case(
        "owns-dot-git",
        with_streams("  api:\n    owns: [.git/**]\n"),
        ("streams.yaml:5", "streams.api.owns", "points into .git"),
    ),
    Case("shared-escapes-repo", HEAD + "shared: [../secrets]\n", ("streams.yaml:3", "shared", "escapes")),
    Case(
        "touches-not-shared",
        with_streams("  api:\n    owns: [src/api/**]\n    touches: [README.md]\n", shared="shared: [pyproject.toml]\n"),
        ("streams.yaml:5", "streams.api.touches", "'README.md'", "not a shared path"),
    ),
    # --- the repository ---------------------------------------------------------------------
    Case("base-branch-missing", "version: 1\nbase: develop\n", ("base branch 'develop'", "does not exist")),
    Case(
        "base-is-only-a-tag",
        "version: 1\nbase: release\n",
        ("base branch 'release'", "does not exist"),
        setup=_tag_named_base,
    ),
    Case(
        "not-a-repository",
        DEFAULT_CONFIG,
        ("plain", "not inside a git repository"),
        setup=_plain_dir,
        subprocess=True,
    ),
    Case("bare-repository", DEFAULT_CONFIG, ("bare repository",), args=("list",), setup=_bare),
    Case("inside-dot-git", DEFAULT_CONFIG, ("git dir", "worktree"), setup=_inside_git_dir),
    # --- arguments --------------------------------------------------------------------------
    Case("start-unknown", DEFAULT_CONFIG, ("unknown stream 'nope'", "api, ui, docs"), args=("start", "nope")),
    Case(
        "start-some-unknown",
        DEFAULT_CONFIG,
        ("unknown streams 'nope', 'zz'", "api, ui, docs"),
        args=("start", "api", "nope", "zz"),
    ),
    Case("start-path-like", DEFAULT_CONFIG, ("unknown stream '../x'",), args=("start", "../x")),
    Case("stop-unknown", DEFAULT_CONFIG, ("unknown stream 'nope'", "api, ui, docs"), args=("stop", "nope")),
    Case(
        "stop-force-unknown",
        DEFAULT_CONFIG,
        ("unknown stream 'nope'",),
        args=("stop", "--force", "--delete-branch", "nope"),
    ),
    Case("stop-no-name", DEFAULT_CONFIG, ("Missing argument", "streams stop --help"), args=("stop",), code=2),
    Case(
        "unknown-option",
        DEFAULT_CONFIG,
        ("No such option '--bogus'", "streams start --help"),
        args=("start", "--bogus"),
        code=2,
        subprocess=True,
    ),
    Case("unknown-command", DEFAULT_CONFIG, ("No such command 'bogus'",), args=("bogus",), code=2),
    Case("dash-C-missing-value", DEFAULT_CONFIG, ("-C", "requires an argument"), args=("-C",), code=2),
    Case(
        "dash-C-nonexistent",
        DEFAULT_CONFIG,
        ("-C", "nowhere", "no such directory"),
        args=("-C", "nowhere", "list"),
        code=2,
    ),
    Case(
        "init-exists",
        DEFAULT_CONFIG,
        ("streams.yaml already exists", "--force"),
        args=("init",),
    ),
]


def run_case(case: Case, tmp_path: Path) -> tuple[Outcome, dict[str, object], dict[str, object]]:
    repo = make_repo(tmp_path, config=None)
    if case.config is not None:
        data = case.config.encode() if isinstance(case.config, str) else case.config
        (repo.root / "streams.yaml").write_bytes(data)
        repo.commit_all("streams.yaml")
    cwd = case.setup(repo, tmp_path) if case.setup else repo.root
    before = disk_snapshot(tmp_path, ignore=CACHE)
    result = run_streams(case.args, cwd) if case.subprocess else run_cli(case.args, cwd)
    return result, before, disk_snapshot(tmp_path, ignore=CACHE)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_with_one_line_and_changes_nothing(case: Case, tmp_path: Path) -> None:
    result, before, after = run_case(case, tmp_path)
    assert result.code == case.code, result
    assert "Traceback" not in result.err + result.out
    lines = result.err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith("streams: error: "), line
    for word in case.words:
        assert word in line, f"{word!r} missing from {line!r}"
    assert result.out == "", "nothing on stdout for a failure without --json"
    assert after == before, "a failed command changed the disk"


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(c.subprocess for c in CASES) >= 4


def test_bad_input_with_json_prints_the_envelope_and_the_same_line(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "depends-cycle")
    result, before, after = run_case(Case("json", case.config, case.words, args=("start", "--json")), tmp_path)
    assert result.code == 1
    assert '"ok": false' in result.out and '"code": "config"' in result.out and "a -> b -> c -> a" in result.out
    assert len(result.err.splitlines()) == 1
    assert after == before


def test_pattern_matching_nothing_is_a_warning_not_an_error(tmp_path: Path) -> None:
    config = with_streams("  api:\n    owns: [src/api/**, nothing/here/**]\n  docs:\n    owns: [docs/**]\n")
    repo = make_repo(tmp_path, config=config)
    result = run_cli(["start", "api"], repo.root)
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert lines == [
        "streams: warning: streams.yaml:5: streams.api.owns: 'nothing/here/**' matches no tracked file",
    ]
    assert repo.worktree("api").is_dir()
    # The warning comes from a cache on the second run and is still printed.
    again = run_cli(["start", "api"], repo.root)
    assert again.code == 0 and again.err.splitlines() == lines


def test_negated_pattern_is_allowed_and_narrows_ownership(tmp_path: Path) -> None:
    config = with_streams("  api:\n    owns: [src/**, '!src/ui/**']\n  ui:\n    owns: [src/ui/**]\n")
    repo = make_repo(tmp_path, config=config)
    result = run_cli(["start"], repo.root)
    assert result.code == 0, result.err
    assert result.err == ""


def test_config_is_read_from_the_main_worktree_inside_a_stream(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    # Break the config on the base: commands run inside a stream see the same file.
    (repo.root / "streams.yaml").write_text(HEAD + "colour: blue\n")
    repo.commit_all("a broken streams.yaml")
    result = run_cli(["list"], repo.worktree("api"))
    assert result.code == 1
    assert "streams.yaml:3: colour: unknown key" in result.err


def test_every_tree_problem_is_listed_and_dead_patterns_are_one_warning_line(tmp_path: Path) -> None:
    """Two owners of two paths: both problems listed (no "(and 1 more)"); three patterns that match
    nothing: one summary line per command, each listed by `streams check`."""
    config = (
        "version: 1\nbase: main\nstreams:\n"
        "  api:\n    owns: [src/**, a/**, b/**, c/**]\n"
        "  ui:\n    owns: [src/ui/**]\n"
        "  docs:\n    owns: [src/api/**]\n"
    )
    repo = make_repo(tmp_path, config=config)
    res = run_cli(["list"], repo.root)
    assert res.code == 1, res.err
    assert "streams.yaml has 2 problems" in res.err
    assert "'src/ui/main.ts' is owned by both 'api' and 'ui'" in res.err
    assert "'src/api/app.py' is owned by both 'api' and 'docs'" in res.err
    assert "more)" not in res.err
    check = run_cli(["check"], repo.root)
    assert check.code == 1 and check.out.count("error: ") == 2 and check.out.count("warning: ") == 3, check.out

    repo.write("streams.yaml", config.replace("  ui:\n    owns: [src/ui/**]\n  docs:\n    owns: [src/api/**]\n", ""))
    repo.commit_all("one owner")
    listed = run_cli(["list"], repo.root)
    assert listed.code == 0, listed.err
    warnings = [ln for ln in listed.err.splitlines() if ln.startswith("streams: warning:")]
    assert warnings == [
        "streams: warning: 3 patterns in streams.yaml match no tracked file yet (`streams check` lists them)"
    ]
    check = run_cli(["check", "--json"], repo.root)
    assert check.code == 0 and len(json.loads(check.out)["data"]["warnings"]) == 3
