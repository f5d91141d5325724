"""`streams list` and `streams locks` answered before click loads (``streams.cli.quickread``) must
say byte for byte what the full CLI says, in every state a repository can be in; where the quick
path cannot be sure it steps aside, and the full path answers.

Each check runs the real command twice as a subprocess (``python -m streams``): as users run it,
and with ``STREAMS_FULL_PATH=1``, which turns the quick path off; exit code, stdout and stderr must
be equal. A third run shows which path answered (whether click was imported).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streams import config as config_module
from streams.config import parse
from streams.kernel.errors import ConfigError
from tests.conftest import DEFAULT_CONFIG, Outcome, Repo, make_repo, run_streams

FULL = {"STREAMS_FULL_PATH": "1"}
COMMANDS = (["list"], ["list", "--json"], ["locks"], ["locks", "--json"])

WHICH_PATH = (
    "import sys, json; from streams.cli import main\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
    "print('QUICK', json.dumps('click' not in sys.modules and 'yaml' not in sys.modules), file=sys.stderr)\n"
)


def _steady(text: str) -> str:
    """``text`` without what moves while two runs happen: a lease's time left."""
    text = re.sub(r'"seconds_left": -?[0-9.e+-]+', '"seconds_left": N', text)
    return re.sub(r"\b\d+[hm] \d+[ms]\b|\b\d+s\b", "T", text)


def same(args: list[str], cwd: Path) -> Outcome:
    """Run ``streams ARGS`` the usual way and the full way: they must say the same."""
    quick = run_streams(args, cwd)
    full = run_streams(args, cwd, env=FULL)
    assert "Traceback" not in quick.err + full.err
    assert (quick.code, _steady(quick.out), quick.err) == (full.code, _steady(full.out), full.err), args
    return quick


def quick_path_taken(args: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> bool:
    argv = [sys.executable, "-c", WHICH_PATH, *args]
    env = {**os.environ, **(env or {})}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=60, env=env)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("QUICK "))
    return bool(json.loads(line[6:]))


def all_same(cwd: Path, *, quick: bool | None) -> list[Outcome]:
    """Every quick-path command line agrees with the full path in ``cwd``; with ``quick`` True/False
    the quick path answered (or stepped aside) for each."""
    outs = [same(args, cwd) for args in COMMANDS]
    if quick is not None:
        for args in COMMANDS:
            assert quick_path_taken(args, cwd) is quick, args
    return outs


def warm(cwd: Path) -> None:
    """A full-path command: refreshes the caches the quick path reads."""
    assert run_streams(["list"], cwd, env=FULL).code == 0


def test_a_fresh_repository_goes_the_full_way_then_the_quick_one(repo: Repo) -> None:
    all_same(repo.root, quick=None)  # the first run leaves the caches
    outs = all_same(repo.root, quick=True)
    assert outs[0].out.splitlines()[1:] == [
        f"{n:<4}    streams/{n:<4}  not started  -     ../repo.streams/{n}" for n in ("api", "ui", "docs")
    ]


def test_no_streams(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, config="version: 1\nbase: main\nstreams:\n")
    warm(repo.root)
    outs = all_same(repo.root, quick=True)
    assert outs[0].out == "no streams configured; add some to streams.yaml\n"


def test_started_streams_seen_from_everywhere(repo: Repo) -> None:
    assert run_streams(["start", "api", "ui"], repo.root).code == 0
    warm(repo.root)
    all_same(repo.root, quick=True)
    all_same(repo.worktree("api"), quick=True)
    sub = repo.worktree("ui") / "src" / "ui"
    outs = all_same(sub, quick=True)
    assert "../../../api" in outs[0].out  # paths relative to where the command runs
    all_same(repo.root / "src", quick=True)


def test_branch_only_dirty_worktree_and_a_detached_worktree(repo: Repo) -> None:
    assert run_streams(["start"], repo.root).code == 0
    assert run_streams(["stop", "docs"], repo.root).code == 0
    repo.write("src/api/new.py", "x = 1\n", cwd=repo.worktree("api"))  # untracked
    repo.write("src/api/app.py", "changed\n", cwd=repo.worktree("api"))  # modified
    repo.git("worktree", "add", "-q", "--detach", str(repo.root.parent / "elsewhere"), "HEAD")
    warm(repo.root)
    outs = all_same(repo.root, quick=True)
    assert "docs    streams/docs  branch only" in outs[0].out


def test_packed_refs(repo: Repo) -> None:
    assert run_streams(["start", "api"], repo.root).code == 0
    repo.git("branch", "streams/ui")  # a branch, no worktree
    repo.git("pack-refs", "--all")
    warm(repo.root)
    outs = all_same(repo.root, quick=True)
    assert "ui      streams/ui    branch only" in outs[0].out


def test_leases_held_and_expired(repo: Repo) -> None:
    assert run_streams(["start"], repo.root).code == 0
    assert run_streams(["lock", "pyproject.toml", "--reason", "bump"], repo.worktree("api")).code == 0
    warm(repo.root)
    outs = all_same(repo.root, quick=True)
    assert "pyproject.toml  api" in outs[2].out
    lease = next((repo.root / ".git" / "streams" / "locks").glob(".pyproject.toml.lock"))
    data = json.loads(lease.read_text())
    data["expires_at"] = data["acquired_at"] + 1
    lease.write_text(json.dumps(data))
    outs = all_same(repo.root, quick=True)
    assert "expired" in outs[2].out


def test_a_lease_being_written_sends_locks_the_full_way(repo: Repo) -> None:
    assert run_streams(["start"], repo.root).code == 0
    warm(repo.root)
    locks = repo.root / ".git" / "streams" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    (locks / ".pyproject.toml.lock.abc.tmp").write_text("{")  # a take in flight (or a dead one's)
    assert not quick_path_taken(["locks"], repo.root)


def test_a_moved_base_is_read_the_full_way_once(repo: Repo) -> None:
    assert run_streams(["start", "api"], repo.root).code == 0
    warm(repo.root)
    repo.write("README.md", "# moved\n")
    repo.commit_all("move the base")
    assert not quick_path_taken(["list"], repo.root)  # the compiled cache names the old commit
    all_same(repo.root, quick=None)
    all_same(repo.root, quick=True)  # the full path brought the caches up to date


def test_an_uncommitted_edit_of_streams_yaml_warns_the_same(repo: Repo) -> None:
    assert run_streams(["start", "api"], repo.root).code == 0
    warm(repo.root)
    repo.write("streams.yaml", DEFAULT_CONFIG + "  extra:\n    owns: [extra/**]\n")
    outs = all_same(repo.root, quick=False)
    assert "differs from the one committed on main" in outs[0].err
    assert "differs from the one committed on main" in outs[2].err


def test_a_warning_of_the_config_in_force_is_printed_by_both(tmp_path: Path) -> None:
    config = DEFAULT_CONFIG + "  ghost:\n    owns: [nowhere/**]\n"
    repo = make_repo(tmp_path, config=config)
    warm(repo.root)
    outs = all_same(repo.root, quick=True)
    assert "nowhere/**" in outs[0].err and outs[2].err == ""  # locks checks no tracked files


def test_unconfigured_and_missing_worktrees(repo: Repo) -> None:
    assert run_streams(["start"], repo.root).code == 0
    repo.write("streams.yaml", DEFAULT_CONFIG.replace("  docs:\n    owns: [docs/**]\n", ""))
    repo.commit_all("drop docs")
    warm(repo.root)
    outs = all_same(repo.root, quick=True)
    assert "docs    streams/docs  unconfigured" in outs[0].out
    shutil.rmtree(repo.worktree("ui"))  # deleted by hand: git calls it prunable
    all_same(repo.root, quick=None)
    assert not quick_path_taken(["list"], repo.root)  # the full path says how it is missing
    assert quick_path_taken(["locks"], repo.root)  # no worktree matters to it


def test_a_stale_or_broken_cache_goes_the_full_way(repo: Repo) -> None:
    assert run_streams(["start", "api"], repo.root).code == 0
    warm(repo.root)
    cache = repo.root / ".git" / "streams" / "cache"
    (cache / "quick-read.marshal").write_bytes(b"not marshal")
    all_same(repo.root, quick=None)  # list rewrites it, locks does not need it
    assert quick_path_taken(["list"], repo.root)
    (cache / "compiled.marshal").unlink()
    assert not quick_path_taken(["locks"], repo.root)
    assert not quick_path_taken(["list"], repo.root)  # which writes the compiled cache again
    assert quick_path_taken(["locks"], repo.root)
    all_same(repo.root, quick=None)


def test_outside_a_repository_and_other_command_lines(tmp_path: Path, repo: Repo) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    out = same(["list"], plain)
    assert out.code != 0 and "Traceback" not in out.err
    warm(repo.root)
    for args in (["list", "--help"], ["locks", "-h"], ["list", "extra"], ["list", "--json", "--json"]):
        same(args, repo.root)
        assert not quick_path_taken(args, repo.root), args
    assert not quick_path_taken(["list"], plain)
    for inside in (repo.root / ".git" / "refs", repo.root / ".git" / "hooks"):  # (in .git itself, python -m
        # would import .git/streams/, the state dir, as the package)
        same(["list"], inside)
        assert not quick_path_taken(["list"], inside)
    assert quick_path_taken(["list"], repo.root)
    assert not quick_path_taken(["list"], repo.root, env={"GIT_CEILING_DIRECTORIES": str(repo.root.parent)})


# --- the loader ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not getattr(yaml, "__with_libyaml__", False), reason="PyYAML built without libyaml")
def test_libyaml_reads_streams_yaml_and_errors_still_name_the_line(tmp_path: Path) -> None:
    assert config_module._FAST_LOADER is yaml.CSafeLoader
    good = DEFAULT_CONFIG + "  extra:\n    owns: [extra/**]\n"
    assert parse(good, path=tmp_path / "streams.yaml").names == ("api", "ui", "docs", "extra")
    bad_key = DEFAULT_CONFIG + "  extra:\n    own: [extra/**]\n"  # line 14
    with pytest.raises(ConfigError, match=r"^streams.yaml:14: streams.extra.own: unknown key"):
        parse(bad_key, path=tmp_path / "streams.yaml")
    bad_syntax = DEFAULT_CONFIG + "  extra:\n    owns: [extra/**\n"  # an unclosed list from line 14
    with pytest.raises(ConfigError, match=r"^streams.yaml:1[45]: YAML syntax error"):
        parse(bad_syntax, path=tmp_path / "streams.yaml")
    with pytest.raises(ConfigError, match="nested too deeply"):  # libyaml's own limit, said as before
        parse("version: 1\nbase: main\nx: " + "[" * 3000 + "]" * 3000 + "\n", path=tmp_path / "streams.yaml")


def test_a_bad_streams_yaml_names_the_line_end_to_end(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, config=DEFAULT_CONFIG + "  extra:\n    owns: {a: 1}\n")
    out = run_streams(["list"], repo.root)
    assert out.code == 1 and out.err.startswith("streams: error: streams.yaml:14: streams.extra.owns:"), out.err
    assert os.path.exists(repo.root / "streams.yaml")
