"""The scope hooks, fired by real `git commit`s in real worktrees: every rule, every bypass, installation.

Repository (tests/conftest.py): streams api [src/api/**, tests/api/**], ui [src/ui/**] and docs
[docs/**]; shared [pyproject.toml]; README.md belongs to nobody.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import hooks_install
from streams.workspace import discover
from tests.conftest import Repo, make_repo, run_cli

ZERO = "0" * 40


@pytest.fixture
def started(repo: Repo) -> Repo:
    res = run_cli(["start"], repo.root)
    assert res.code == 0, res.err
    return repo


def git_run(cwd: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, input=input, check=False)


def commit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return git_run(cwd, "commit", "-q", "-m", "change", *args)


def head(repo: Repo, cwd: Path, rev: str = "HEAD") -> str:
    return repo.git("rev-parse", rev, cwd=cwd).strip()


def stage(repo: Repo, wt: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        repo.write(rel, text, cwd=wt)
    repo.git("add", "--", *files, cwd=wt)


# --- installation --------------------------------------------------------------------------------


def test_start_installs_the_hooks_in_the_common_dir(started: Repo) -> None:
    hooks = started.root / ".git" / "hooks"
    for name in hooks_install.HOOK_NAMES:
        text = (hooks / name).read_text()
        assert hooks_install.MARKER in text
        assert os.access(hooks / name, os.X_OK)
        # The absolute interpreter that installed it, not a python3 found on PATH.
        assert f"# python: {sys.executable}" in text
        assert f"exec {sys.executable} -I -S -c" in text or f"exec '{sys.executable}' -I -S -c" in text
    assert (started.root / ".git" / "streams" / "cache" / "branch-prefix").read_text() == "streams/\n"


def test_install_is_idempotent_and_status_reports(started: Repo) -> None:
    res = run_cli(["hooks", "install", "--json"], started.root)
    assert res.code == 0, res.err
    assert '"state": "unchanged"' in res.out and '"command": "hooks install"' in res.out
    res = run_cli(["hooks", "status"], started.root)
    assert res.code == 0
    assert res.out.count("installed") == len(hooks_install.HOOK_NAMES) == 4, res.out


def test_status_sees_an_outdated_shim(started: Repo) -> None:
    hook = started.root / ".git" / "hooks" / "pre-commit"
    hook.write_text(hook.read_text() + "# edited\n")
    res = run_cli(["hooks", "status", "--json"], started.root)
    assert '"state": "outdated"' in res.out
    assert run_cli(["hooks", "install"], started.root).code == 0
    assert "# edited" not in hook.read_text()


def test_foreign_hook_is_chained_its_failure_blocks_and_uninstall_restores_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    hooks = repo.root / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    foreign = '#!/bin/sh\necho foreign-ran >&2\n[ -f "$(git rev-parse --show-toplevel)/BLOCK" ] && exit 3\nexit 0\n'
    (hooks / "pre-commit").write_text(foreign)
    (hooks / "pre-commit").chmod(0o755)
    assert run_cli(["start", "api"], repo.root).code == 0
    assert (hooks / "pre-commit.legacy").read_text() == foreign
    assert hooks_install.MARKER in (hooks / "pre-commit").read_text()
    status = run_cli(["hooks", "status"], repo.root)
    assert "pre-commit.legacy" in status.out

    api = repo.worktree("api")
    stage(repo, api, {"src/api/app.py": "v2\n"})
    res = commit(api)
    assert res.returncode == 0 and "foreign-ran" in res.stderr  # still runs
    (api / "BLOCK").write_text("")
    stage(repo, api, {"src/api/app.py": "v3\n"})
    res = commit(api)
    assert res.returncode != 0 and "foreign-ran" in res.stderr  # and its failure still fails the commit
    (api / "BLOCK").unlink()
    # Our own check still runs after a passing foreign hook.
    stage(repo, api, {"src/ui/main.ts": "x\n"})
    res = commit(api)
    assert res.returncode != 0 and "foreign-ran" in res.stderr and "owned by ui" in res.stderr

    out = run_cli(["hooks", "uninstall"], repo.root)
    assert out.code == 0, out.err
    assert (hooks / "pre-commit").read_text() == foreign
    assert not (hooks / "pre-commit.legacy").exists()
    assert not (hooks / "reference-transaction").exists() and not (hooks / "post-commit").exists()
    # Without our hooks, the foreign one alone decides.
    res = commit(api)
    assert res.returncode == 0, res.stderr


def test_foreign_reference_transaction_hook_sees_all_input_and_can_veto(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    hooks = repo.root / ".git" / "hooks"
    log = tmp_path / "reftx.log"
    (hooks / "reference-transaction").write_text(
        f'#!/bin/sh\ncat >> {log}\n[ -f {tmp_path}/VETO ] && [ "$1" = prepared ] && exit 1\nexit 0\n'
    )
    (hooks / "reference-transaction").chmod(0o755)
    assert run_cli(["start", "api"], repo.root).code == 0
    repo.git("branch", "topic")
    assert "refs/heads/topic" in log.read_text()
    (tmp_path / "VETO").write_text("")
    res = git_run(repo.root, "branch", "topic2")
    assert res.returncode != 0
    assert git_run(repo.root, "rev-parse", "--verify", "-q", "topic2").returncode != 0


def test_install_refuses_core_hookspath(repo: Repo) -> None:
    repo.git("config", "core.hooksPath", ".githooks")
    before = repo.snapshot()
    res = run_cli(["hooks", "install"], repo.root)
    assert res.code == 1
    assert "core.hooksPath" in res.err and "git config --unset core.hooksPath" in res.err
    assert repo.snapshot() == before
    assert not (repo.root / ".git" / "hooks" / "pre-commit").exists()
    # core.hooksPath pointing at the common hooks dir itself is fine.
    repo.git("config", "core.hooksPath", str(repo.root / ".git" / "hooks"))
    assert run_cli(["hooks", "install"], repo.root).code == 0


def test_install_refuses_when_foreign_hook_and_legacy_both_exist(repo: Repo) -> None:
    hooks = repo.root / ".git" / "hooks"
    for name in ("post-commit", "post-commit.legacy"):
        (hooks / name).write_text("#!/bin/sh\nexit 0\n")
    res = run_cli(["hooks", "install"], repo.root)
    assert res.code == 1 and "post-commit.legacy" in res.err
    assert not (hooks / "pre-commit").exists()  # nothing half-installed


def test_hooks_help(repo: Repo) -> None:
    for args in (["hooks", "--help"], ["hooks", "install", "--help"], ["hooks", "status", "--help"]):
        res = run_cli(args, repo.root)
        assert res.code == 0 and "Usage:" in res.out


# --- pre-commit: every rule ------------------------------------------------------------------------


def test_own_files_progress_file_and_deletions_go_through(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/api/new.py": "new\n", "tests/api/test_new.py": "t\n", ".streams/stream-api.md": "x\n"})
    started.git("rm", "-q", "src/api/app.py", cwd=api)
    res = commit(api)
    assert res.returncode == 0, res.stderr


def test_rejection_lists_every_offending_path_with_reason_and_fix(started: Repo) -> None:
    api = started.worktree("api")
    stage(
        started,
        api,
        {
            "src/api/ok.py": "fine\n",
            "src/ui/main.ts": "changed\n",  # modified, another stream's
            "README.md": "changed\n",  # unowned
            "pyproject.toml": "[project]\n",  # shared, no lease
            "streams.yaml": "version: 1\n",  # reserved
            ".streams/stream-ui.md": "forged\n",  # another stream's progress file
            "docs/new.md": "new\n",  # added, another stream's
        },
    )
    started.git("rm", "-q", "docs/index.md", cwd=api)  # deleted, another stream's
    before = head(started, api)
    res = commit(api)
    assert res.returncode == 1
    err = res.stderr
    assert "stream api may not change 7 paths" in err
    assert "M src/ui/main.ts" in err and "owned by ui" in err
    assert "A docs/new.md" in err and "D docs/index.md" in err and "owned by docs" in err
    assert "M README.md" in err and "unowned" in err
    assert "shared: run `streams lock pyproject.toml`" in err
    assert "streams.yaml belongs to no stream" in err
    assert "progress file of ui" in err
    assert "src/api/ok.py" not in err
    assert "git restore --staged" in err
    assert head(started, api) == before


def test_type_change_to_a_symlink_is_checked(started: Repo) -> None:
    api = started.worktree("api")
    (api / "src/ui/main.ts").unlink()
    (api / "src/ui/main.ts").symlink_to("../api/app.py")
    started.git("add", "src/ui/main.ts", cwd=api)
    assert "T\tsrc/ui/main.ts" in started.git("diff", "--cached", "--name-status", cwd=api)
    res = commit(api)
    assert res.returncode == 1 and "T src/ui/main.ts" in res.stderr and "owned by ui" in res.stderr


def test_both_sides_of_a_rename_are_checked(started: Repo) -> None:
    api = started.worktree("api")
    started.git("mv", "src/api/app.py", "src/ui/app.py", cwd=api)  # out of api into ui
    res = commit(api)
    assert res.returncode == 1
    assert "A src/ui/app.py" in res.stderr and "owned by ui" in res.stderr
    started.git("mv", "src/ui/app.py", "src/api/app.py", cwd=api)
    started.git("mv", "src/ui/main.ts", "src/api/main.ts", cwd=api)  # out of ui into api
    res = commit(api)
    assert res.returncode == 1
    assert "D src/ui/main.ts" in res.stderr and "src/api/main.ts" not in res.stderr
    started.git("reset", "-q", "--hard", cwd=api)
    started.git("mv", "src/api/app.py", "src/api/server.py", cwd=api)  # within api
    assert commit(api).returncode == 0


def test_unowned_allow_lets_unowned_paths_through(tmp_path: Path) -> None:
    config = "version: 1\nbase: main\nunowned: allow\nstreams:\n  api:\n    owns: [src/api/**]\n  ui:\n    owns: [src/ui/**]\n"
    repo = make_repo(tmp_path, config=config)
    assert run_cli(["start", "api"], repo.root).code == 0
    api = repo.worktree("api")
    stage(repo, api, {"README.md": "allowed\n", "tools/x.sh": "x\n"})
    assert commit(api).returncode == 0
    stage(repo, api, {"src/ui/main.ts": "still not\n"})
    assert commit(api).returncode == 1


def test_commit_only_paths_use_the_temporary_index(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/ui/main.ts": "staged but not committed\n"})
    started.write("src/api/app.py", "committed alone\n", cwd=api)
    res = commit(api, "-o", "--", "src/api/app.py")  # commits only that path: the staged ui change stays out
    assert res.returncode == 0, res.stderr
    res = commit(api, "-o", "--", "src/ui/main.ts")
    assert res.returncode == 1 and "owned by ui" in res.stderr


def test_main_worktree_lets_everything_through(started: Repo) -> None:
    started.write("src/ui/main.ts", "main may\n")
    started.write("src/api/app.py", "main may\n")
    started.write("streams.yaml", started.root.joinpath("streams.yaml").read_text() + "# comment\n")
    assert started.commit_all("integration")


def test_the_config_in_force_is_the_one_committed_on_the_base(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"README.md": "x\n"})
    assert commit(api).returncode == 1
    # An uncommitted edit of the main worktree's streams.yaml is not in force: still refused, and the
    # refusal tells the agent to ask its human, not to edit the configuration.
    cfg = started.root / "streams.yaml"
    cfg.write_text(
        cfg.read_text().replace("owns: [src/api/**, tests/api/**]", "owns: [src/api/**, tests/api/**, README.md]")
    )
    res = commit(api)
    assert res.returncode == 1 and "ask your human" in res.stderr
    assert "add it to" not in res.stderr
    # Committed on main, it is in force for the very next commit.
    started.commit_all("streams: api owns README.md")
    res = commit(api)
    assert res.returncode == 0, res.stderr


def test_a_stream_dropped_from_the_config_cannot_commit(started: Repo) -> None:
    cfg = started.root / "streams.yaml"
    cfg.write_text(cfg.read_text().replace("  docs:\n    owns: [docs/**]\n", ""))
    started.commit_all("streams: drop docs")
    docs = started.worktree("docs")
    stage(started, docs, {"docs/index.md": "x\n"})
    res = commit(docs)
    assert res.returncode == 1 and "no longer lists" in res.stderr and "ask your human" in res.stderr


# --- reference-transaction: every bypass -----------------------------------------------------------


def test_no_verify_is_caught_by_reference_transaction(started: Repo) -> None:
    api = started.worktree("api")
    before = head(started, api)
    stage(started, api, {"src/ui/main.ts": "sneaky\n", "README.md": "too\n"})
    res = commit(api, "--no-verify")
    assert res.returncode != 0
    assert "refusing to move refs/heads/streams/api" in res.stderr
    assert "owned by ui" in res.stderr and "unowned" in res.stderr
    assert head(started, api) == before
    # The legit version goes through with --no-verify too.
    started.git("reset", "-q", "--hard", cwd=api)
    stage(started, api, {"src/api/app.py": "fine\n"})
    assert commit(api, "--no-verify").returncode == 0


def _bad_commit(repo: Repo, parent: str, path: str, text: str) -> str:
    """A commit on top of ``parent`` changing ``path``, made with plumbing (no hook involved)."""
    env_index = repo.root / ".git" / "tmp-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(env_index)}
    subprocess.run(["git", "read-tree", parent], cwd=repo.root, env=env, check=True)
    oid = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=repo.root, input=text.encode(), capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    subprocess.run(
        ["git", "update-index", "--add", "--cacheinfo", f"100644,{oid},{path}"], cwd=repo.root, env=env, check=True
    )
    tree = (
        subprocess.run(["git", "write-tree"], cwd=repo.root, env=env, capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )
    env_index.unlink()
    return repo.git("commit-tree", tree, "-p", parent, "-m", f"change {path}").strip()


def test_branch_force_and_update_ref_from_the_main_worktree_are_caught(started: Repo) -> None:
    # `git branch -f` refuses a branch checked out elsewhere: use a stopped stream's branch.
    assert run_cli(["stop", "docs"], started.root).code == 0
    docs_tip = head(started, started.root, "streams/docs")
    bad_docs = _bad_commit(started, docs_tip, "src/ui/main.ts", "moved in from main\n")
    res = git_run(started.root, "branch", "-f", "streams/docs", bad_docs)
    assert res.returncode != 0 and "refusing to move refs/heads/streams/docs" in res.stderr
    assert "owned by ui" in res.stderr
    assert head(started, started.root, "streams/docs") == docs_tip
    good_docs = _bad_commit(started, docs_tip, "docs/more.md", "legit\n")
    assert git_run(started.root, "branch", "-f", "streams/docs", good_docs).returncode == 0
    # `git update-ref` moves even a branch checked out in a worktree.
    tip = head(started, started.root, "streams/api")
    bad = _bad_commit(started, tip, "src/ui/main.ts", "moved in from main\n")
    res = git_run(started.root, "update-ref", "refs/heads/streams/api", bad)
    assert res.returncode != 0 and "refusing to move refs/heads/streams/api" in res.stderr
    assert "owned by ui" in res.stderr
    res = git_run(started.root, "update-ref", "refs/heads/streams/api", bad)
    assert res.returncode != 0 and "owned by ui" in res.stderr
    res = git_run(started.root, "update-ref", "refs/heads/streams/api", bad, tip)
    assert res.returncode != 0
    assert head(started, started.root, "streams/api") == tip
    # A new stream ref made from scratch is checked too (the ref name says whose it is).
    res = git_run(started.root, "update-ref", "-d", "refs/heads/streams/api")
    assert res.returncode == 0  # deleting a stream ref is allowed
    res = git_run(started.root, "branch", "streams/api", bad)
    assert res.returncode != 0
    # The legit versions go through.
    good = _bad_commit(started, tip, "src/api/app.py", "legit\n")
    assert git_run(started.root, "branch", "streams/api", good).returncode == 0
    good2 = _bad_commit(started, good, "src/api/more.py", "legit\n")
    assert git_run(started.root, "update-ref", "refs/heads/streams/api", good2).returncode == 0
    # Other branches and tags are none of the hooks' business.
    assert git_run(started.root, "branch", "-f", "feature", bad).returncode == 0


def test_rebase_whose_conflict_resolution_edits_another_streams_file_is_refused(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/api/app.py": "api version\n"})
    assert commit(api).returncode == 0
    tip = head(started, api)
    started.write("src/api/app.py", "main version\n")
    started.commit_all("main touches api")
    res = git_run(api, "rebase", "main")
    assert res.returncode != 0  # conflict
    started.write("src/api/app.py", "resolved\n", cwd=api)
    started.write("src/ui/main.ts", "slipped into the resolution\n", cwd=api)
    started.git("add", "-A", cwd=api)
    res = subprocess.run(
        ["git", "rebase", "--continue"],
        cwd=api,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_EDITOR": "true"},
    )
    assert res.returncode != 0
    assert "refusing to move refs/heads/streams/api" in res.stderr and "src/ui/main.ts" in res.stderr
    assert head(started, started.root, "streams/api") == tip
    assert "A rebase is in progress here" in res.stderr
    # The way out the message names: put the path back, amend (the pre-commit hook accepts undoing
    # an out-of-scope change), continue; the branch then moves.
    started.git("checkout", "main", "--", "src/ui/main.ts", cwd=api)
    res = git_run(api, "commit", "--amend", "--no-edit")
    assert res.returncode == 0, res.stderr
    res = subprocess.run(
        ["git", "rebase", "--continue"],
        cwd=api,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_EDITOR": "true"},
    )
    assert res.returncode == 0, res.stderr
    assert started.git("show", "streams/api:src/ui/main.ts") == started.git("show", "main:src/ui/main.ts")
    assert started.git("merge-base", "--is-ancestor", "main", "streams/api", check=False) == ""


def test_clean_rebase_replaying_accepted_commits_goes_through(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/api/a.py": "a\n"})
    assert commit(api).returncode == 0
    started.write("docs/index.md", "main moves on\n")
    started.commit_all("docs on main")
    res = git_run(api, "rebase", "main")
    assert res.returncode == 0, res.stderr


def test_cherry_pick_of_another_streams_commit_is_refused(started: Repo) -> None:
    ui = started.worktree("ui")
    stage(started, ui, {"src/ui/main.ts": "ui work\n"})
    assert commit(ui).returncode == 0
    ui_commit = head(started, ui)
    api = started.worktree("api")
    before = head(started, api)
    res = git_run(api, "cherry-pick", ui_commit)
    assert res.returncode != 0 and "owned by ui" in res.stderr
    assert head(started, started.root, "streams/api") == before
    git_run(api, "cherry-pick", "--abort")
    git_run(api, "reset", "-q", "--hard", before)
    # Cherry-picking a commit inside the stream's scope is fine.
    stage(started, ui, {"src/api/helper.py": "x\n"})  # a ui commit touching api's file is itself refused...
    assert commit(ui).returncode == 1
    started.git("reset", "-q", "--hard", cwd=ui)
    other = _bad_commit(started, before, "src/api/picked.py", "mine\n")
    assert git_run(api, "cherry-pick", other).returncode == 0


def test_amend_adding_an_out_of_scope_path_is_refused(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/api/app.py": "v2\n"})
    assert commit(api).returncode == 0
    tip = head(started, api)
    stage(started, api, {"src/ui/main.ts": "amended in\n"})
    res = git_run(api, "commit", "--amend", "--no-edit")
    assert res.returncode == 1 and "owned by ui" in res.stderr
    res = git_run(api, "commit", "--amend", "--no-edit", "--no-verify")
    assert res.returncode != 0 and "refusing to move" in res.stderr and "owned by ui" in res.stderr
    assert head(started, api) == tip
    started.git("reset", "-q", "HEAD", "--", "src/ui/main.ts", cwd=api)
    stage(started, api, {"src/api/extra.py": "x\n"})
    assert git_run(api, "commit", "--amend", "--no-edit").returncode == 0


def test_merging_the_base_into_a_stream_is_not_blamed_on_the_stream(started: Repo) -> None:
    started.write("src/ui/main.ts", "ui work merged to main\n")
    started.commit_all("main")
    api = started.worktree("api")
    stage(started, api, {"src/api/app.py": "api\n"})
    assert commit(api).returncode == 0
    res = git_run(api, "merge", "--no-edit", "main")
    assert res.returncode == 0, res.stderr
    # ...but an evil merge (an edit of its own to another stream's file) is.
    started.write("docs/index.md", "main again\n")
    started.commit_all("main 2")
    assert git_run(api, "merge", "--no-commit", "main").returncode == 0
    started.write("src/ui/main.ts", "evil\n", cwd=api)
    started.git("add", "src/ui/main.ts", cwd=api)
    res = commit(api, "--no-verify")
    assert res.returncode != 0 and "src/ui/main.ts" in res.stderr


def test_fetch_and_non_stream_branches_start_no_python(started: Repo, tmp_path: Path) -> None:
    # Replace the interpreter baked into the shims by one that records any start: nothing may run.
    log = tmp_path / "python-started"
    fake = tmp_path / "fakepython"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 1\n')
    fake.chmod(0o755)
    ws = discover(started.root)
    hooks_install.install(ws, python=str(fake))
    bare = tmp_path / "remote.git"
    started.git("init", "-q", "--bare", str(bare))
    started.git("remote", "add", "origin", str(bare))
    started.git("push", "-q", "origin", "main")
    started.git("fetch", "-q", "origin")
    started.git("checkout", "-q", "-b", "feature")
    started.write("README.md", "feature work\n")
    started.commit_all("feature")
    started.write("README.md", "stashed\n")
    started.git("stash", "-q")
    started.git("stash", "pop", "-q")
    started.git("tag", "v1")
    assert not log.exists()
    # ...whereas a stream ref moving does start it (and a failing interpreter fails closed).
    res = git_run(started.root, "update-ref", "refs/heads/streams/api", "main")
    assert res.returncode != 0 and log.exists()


@pytest.mark.parametrize("prefixes_only", [True, False], ids=["shell-fast-path", "python-check"])
def test_a_checked_commit_costs_the_reference_transaction_hook_no_python(
    started: Repo, tmp_path: Path, prefixes_only: bool
) -> None:
    if not prefixes_only:  # a negated pattern in api's list: the shim leaves api's commits to the full check
        text = (started.root / "streams.yaml").read_text()
        text = text.replace(
            "owns: [src/api/**, tests/api/**]", "owns: [src/api/**, tests/api/**, '!src/api/vendor/**']"
        )
        started.write("streams.yaml", text)
        started.commit_all("streams: api does not own src/api/vendor")
    log = tmp_path / "python-runs"
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\necho "$5" >> {log}\nexec {sys.executable} "$@"\n')  # -I -S -c CODE HOOK
    wrapper.chmod(0o755)
    hooks_install.install(discover(started.root), python=str(wrapper))
    api = started.worktree("api")
    checked = [] if prefixes_only else ["pre-commit"]  # in-scope commits: pre-commit's check, if any

    def runs() -> list[str]:
        text = log.read_text() if log.exists() else ""
        log.unlink(missing_ok=True)
        return text.split()

    stage(started, api, {"src/api/app.py": "v2\n"})
    assert commit(api).returncode == 0
    assert runs() == checked  # the reference-transaction shim recognised the checked commit
    started.write("src/api/app.py", "v3\n", cwd=api)
    assert commit(api, "-a").returncode == 0
    assert runs() == checked
    started.write("src/api/app.py", "v4\n", cwd=api)
    assert commit(api, "-o", "--", "src/api/app.py").returncode == 0
    assert runs() == checked
    stage(started, api, {"src/api/app.py": "v5\n"})
    assert commit(api, "--no-verify").returncode == 0
    assert runs() == ["reference-transaction"]  # no pre-commit check: the reference-transaction hook does it
    stage(started, api, {"src/api/app.py": "v6\n"})
    assert git_run(api, "commit", "--amend", "--no-edit").returncode == 0
    assert runs() == [*checked, "reference-transaction"]  # an amend has another parent: checked in full
    # Out of scope: the shim hands over to the full check, which refuses and explains.
    stage(started, api, {"src/ui/main.ts": "not api's\n"})
    res = commit(api)
    assert res.returncode != 0 and "owned by ui" in res.stderr
    assert runs() == ["pre-commit"]


def test_the_shell_fast_path_follows_every_change_of_streams_yaml(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/api/app.py": "v2\n"})
    assert commit(api).returncode == 0
    # api no longer owns src/api/app.py: an uncommitted edit changes nothing; once committed on the
    # base the cached prefixes are stale and must not let it through, even when nothing has
    # reloaded the configuration since.
    text = (started.root / "streams.yaml").read_text().replace("src/api/**", "src/api/v2/**")
    started.write("streams.yaml", text)
    stage(started, api, {"src/api/app.py": "v3\n"})
    assert commit(api).returncode == 0
    started.commit_all("streams: api owns src/api/v2 only")
    stage(started, api, {"src/api/app.py": "v4\n"})
    res = commit(api)
    assert res.returncode != 0 and "src/api/app.py" in res.stderr
    stage(started, api, {"src/api/v2/new.py": "v3\n"})
    git_run(api, "reset", "-q", "--", "src/api/app.py")
    assert commit(api).returncode == 0


def test_hook_entry_point_imports_only_the_standard_library(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/api/app.py": "v2\n"})
    code = "import sys;sys.path.insert(0,sys.argv[1]);from streams.hook import main;rc=main(['pre-commit']);print(rc, *sorted(sys.modules))"
    env = {**os.environ, "GIT_DIR": started.git("rev-parse", "--absolute-git-dir", cwd=api).strip()}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(Path(__file__).resolve().parent.parent)],
        cwd=api,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rc, *modules = proc.stdout.split()
    assert rc == "0"
    ours = {m for m in modules if m.split(".")[0] in ("streams", "coordinator")}
    assert ours <= {
        "streams",
        "streams.hook",
        "streams.hookio",
        "streams.kernel",
        "streams.kernel.errors",
        "streams.kernel.gitparse",
        "streams.kernel.reffiles",
        "streams.kernel.hookcache",
        "streams.kernel.paths",
        "streams.kernel.patterns",
        "streams.kernel.rules",
    }, ours  # the kernel's locks, events, mutex: only when a shared path or a rejection needs them
    assert not {"yaml", "pathspec", "click", "subprocess", "re", "dataclasses", "typing"} & set(modules)


def test_python_m_streams_hook_is_the_documented_entry_point(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/ui/main.ts": "x\n"})
    res = subprocess.run([sys.executable, "-m", "streams.hook", "pre-commit"], cwd=api, capture_output=True, text=True)
    assert res.returncode == 1 and "owned by ui" in res.stderr
    tip = head(started, api)
    bad = _bad_commit(started, tip, "docs/x.md", "x\n")
    res = subprocess.run(
        [sys.executable, "-m", "streams.hook", "reference-transaction", "prepared"],
        cwd=started.root,
        input=f"{tip} {bad} refs/heads/streams/api\n",
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and "owned by docs" in res.stderr
    res = subprocess.run([sys.executable, "-m", "streams.hook", "nonsense"], capture_output=True, text=True)
    assert res.returncode == 2 and "usage" in res.stderr


def test_rejections_are_logged_as_events(started: Repo) -> None:
    api = started.worktree("api")
    stage(started, api, {"src/ui/main.ts": "x\n"})
    assert commit(api).returncode == 1
    from streams.kernel import events

    rejects = [e for e in events.read(started.root / ".git") if e["event"] == "scope.reject"]
    assert rejects and rejects[-1]["stream"] == "api" and rejects[-1]["paths"] == ["src/ui/main.ts"]


def test_a_vanished_interpreter_fails_closed_with_a_clear_message(started: Repo, tmp_path: Path) -> None:
    gone = tmp_path / "venv" / "bin" / "python"
    hooks_install.install(discover(started.root), python=str(gone))
    api = started.worktree("api")
    stage(started, api, {"src/api/app.py": "v2\n"})
    res = commit(api)
    assert res.returncode == 1 and "is gone" in res.stderr and "streams hooks install" in res.stderr
    assert "outdated" in run_cli(["hooks", "status"], started.root).out
    assert run_cli(["hooks", "install"], started.root).code == 0
    assert commit(api).returncode == 0


# --- scope cannot be switched off from a stream worktree; status flags the hooks -----------------------


@pytest.mark.parametrize("verb", ["uninstall", "install"])
def test_hooks_install_and_uninstall_are_refused_in_a_stream_worktree(started: Repo, verb: str) -> None:
    api = started.worktree("api")
    before = {p.name: p.read_bytes() for p in (started.root / ".git" / "hooks").iterdir()}
    res = run_cli(["hooks", verb], api)
    assert res.code == 1 and len(res.err.splitlines()) == 1, res.err
    assert f"`streams hooks {verb}` is refused in stream api's worktree" in res.err
    assert "ask your human" in res.err
    assert {p.name: p.read_bytes() for p in (started.root / ".git" / "hooks").iterdir()} == before
    stage(started, api, {"src/ui/main.ts": "x\n"})
    assert commit(api).returncode != 0  # scope still holds


def test_uninstall_is_an_event_and_status_flags_missing_hooks(started: Repo) -> None:
    from streams.kernel import events

    res = run_cli(["status", "--json"], started.root)
    summary = json.loads(res.out)["data"]["summary"]
    assert summary["hooks_ok"] is True and set(summary["hooks"].values()) == {"installed"}
    assert "hooks:" not in run_cli(["status"], started.root).out

    assert run_cli(["hooks", "uninstall"], started.root).code == 0
    [ev] = [e for e in events.read(started.root / ".git") if e["event"] == "hooks.uninstall"]
    assert ev["hooks"] == list(hooks_install.HOOK_NAMES) and "@" in ev["by"]

    summary = json.loads(run_cli(["status", "--json"], started.root).out)["data"]["summary"]
    assert summary["hooks_ok"] is False and set(summary["hooks"].values()) == {"missing"}
    line = run_cli(["status"], started.root).out.splitlines()[0]
    assert "hooks: pre-commit missing, reference-transaction missing, post-commit missing, post-rewrite missing" in line

    (started.root / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    summary = json.loads(run_cli(["status", "--json"], started.root).out)["data"]["summary"]
    assert summary["hooks"]["pre-commit"] == "foreign"


def test_status_flags_core_hookspath(started: Repo) -> None:
    started.git("config", "core.hooksPath", ".githooks")
    summary = json.loads(run_cli(["status", "--json"], started.root).out)["data"]["summary"]
    assert summary["hooks_path"] == ".githooks" and summary["hooks_ok"] is False
    assert "hooks bypassed (core.hooksPath=.githooks)" in run_cli(["status"], started.root).out.splitlines()[0]
