"""The judge (hooks, `streams verify`, a server's pre-receive) sees what commits really change
(issue "Scope that holds against a determined agent", items 1 and 4): a merge is judged by its
difference from the automatic merge of its parents, and replace objects or grafts cannot show it
other commits than the ones a branch holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo, make_repo, run_cli
from tests.test_verify import guarded_server

NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


def git_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_EDITOR": "true"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)


def out(cwd: Path, *args: str) -> str:
    res = git_run(cwd, *args)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> tuple[Repo, Path]:
    return guarded_server(tmp_path)


def mktree(cwd: Path, listing: str) -> str:
    res = subprocess.run(["git", "mktree"], cwd=cwd, input=listing, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def push(wt: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMS": f"{sys.executable} -m streams"}
    return subprocess.run(["git", "push", *args], cwd=wt, capture_output=True, text=True, env=env)


def judged_everywhere(repo: Repo, wt: Path, bad: str, path: str) -> None:
    """``bad`` may not become streams/api: the reference-transaction hook refuses the move, and
    once forced past the hooks, verify and the server's pre-receive refuse it, naming ``path``."""
    res = git_run(wt, "update-ref", "refs/heads/streams/api", bad)
    assert res.returncode != 0 and path in res.stderr, res.stderr
    assert out(wt, *NO_HOOKS, "update-ref", "refs/heads/streams/api", bad) == ""
    verdict = run_cli(["verify", "--stream", "api"], repo.root)
    assert verdict.code == 5 and path in verdict.out, verdict.out
    pushed = push(wt, "origin", "streams/api")
    assert pushed.returncode != 0 and "pre-receive hook declined" in pushed.stderr and path in pushed.stderr


def test_a_file_deleted_while_merging_an_unrelated_in_scope_branch_is_caught(server: tuple[Repo, Path]) -> None:
    repo, _ = server
    api = repo.worktree("api")
    # An orphan branch holding only api's folder: each of its commits is in scope.
    api_tree = out(api, "rev-parse", "HEAD:src/api")
    src = mktree(api, f"040000 tree {api_tree}\tapi\n")
    orphan = out(api, "commit-tree", mktree(api, f"040000 tree {src}\tsrc\n"), "-m", "orphan: api only")
    # The evil merge: the stream's tree minus another stream's file, parents the tip and the orphan.
    head = out(api, "rev-parse", "HEAD")
    git_run(api, "rm", "-q", "--cached", "src/ui/main.ts")
    evil_tree = out(api, "write-tree")
    git_run(api, "reset", "-q")
    evil = out(api, "commit-tree", evil_tree, "-p", head, "-p", orphan, "-m", "merge orphan")
    judged_everywhere(repo, api, evil, "src/ui/main.ts")


def test_the_same_merge_made_with_git_merge_is_refused_at_commit(server: tuple[Repo, Path]) -> None:
    repo, _ = server
    api = repo.worktree("api")
    git_run(api, "checkout", "-q", "--orphan", "side")
    git_run(api, "rm", "-rq", "--cached", ".")
    for p in ("src", "tests", "docs", "README.md", "pyproject.toml", "streams.yaml", ".streams"):
        shutil.rmtree(api / p, ignore_errors=True) if (api / p).is_dir() else (api / p).unlink(missing_ok=True)
    repo.write("src/api/other.py", "side\n", cwd=api)
    git_run(api, "add", "src/api/other.py")
    assert git_run(api, *NO_HOOKS, "commit", "-q", "-m", "side").returncode == 0
    git_run(api, "checkout", "-q", "-f", "streams/api")
    git_run(api, "merge", "-q", "--no-commit", "--allow-unrelated-histories", "side")
    git_run(api, "rm", "-q", "src/ui/main.ts")
    res = git_run(api, "commit", "-q", "-m", "merge side")
    assert res.returncode != 0 and "src/ui/main.ts" in res.stderr, res.stderr
    res = git_run(api, "commit", "-q", "--no-verify", "-m", "merge side")
    assert res.returncode != 0 and "src/ui/main.ts" in res.stderr, res.stderr


def test_reverting_landed_work_by_merging_an_old_base_is_caught(server: tuple[Repo, Path]) -> None:
    repo, _ = server
    old_base = repo.git("rev-parse", "main").strip()
    repo.write("src/ui/main.ts", "ui's landed work\n")
    repo.commit_all("ui: landed")
    assert run_cli(["sync"], repo.root).code == 0
    api = repo.worktree("api")
    head = out(api, "rev-parse", "HEAD")
    # "Merge" the old base, taking ui's file as it was there.
    git_run(api, "checkout", "-q", old_base, "--", "src/ui/main.ts")
    tree = out(api, "write-tree")
    git_run(api, "reset", "-q", "--hard")
    evil = out(api, "commit-tree", tree, "-p", head, "-p", old_base, "-m", "merge old main")
    judged_everywhere(repo, api, evil, "src/ui/main.ts")


def test_replace_objects_do_not_fool_the_judge(server: tuple[Repo, Path]) -> None:
    repo, bare = server
    api = repo.worktree("api")
    repo.write("src/ui/main.ts", "not api's\n", cwd=api)
    git_run(api, "add", "-A")
    assert git_run(api, *NO_HOOKS, "commit", "-q", "-m", "bad").returncode == 0
    bad = out(api, "rev-parse", "HEAD")
    # An innocent twin with the same parent, and a replace ref that shows it in place of bad.
    git_run(api, "checkout", "-q", "HEAD~1", "--", "src/ui/main.ts")
    repo.write("src/api/app.py", "innocent\n", cwd=api)
    git_run(api, "add", "-A")
    twin = out(api, "commit-tree", out(api, "write-tree"), "-p", f"{bad}~1", "-m", "bad")
    git_run(api, "reset", "-q", "--hard", bad)
    assert out(api, "replace", bad, twin) == ""
    assert "src/ui/main.ts" not in out(api, "show", "--name-only", "--format=", bad)  # git itself is fooled
    verdict = run_cli(["verify", "--stream", "api"], repo.root)
    assert verdict.code == 5 and "src/ui/main.ts" in verdict.out
    # Pushed together with the replace ref, the server is not fooled either.
    res = push(api, "origin", "streams/api", "refs/replace/*:refs/replace/*")
    assert res.returncode != 0 and "src/ui/main.ts" in res.stderr
    assert subprocess.run(["git", "rev-parse", "-q", "--verify", "refs/heads/streams/api"], cwd=bare).returncode != 0


# --- reserved paths come first (item 2) ---------------------------------------------------------------

GREEDY = """\
version: 1
base: main
streams:
  api:
    owns: [src/api/**, '*.yaml', '*.md']
  ui:
    owns: [src/ui/**]
"""


def with_guarded_remote(repo: Repo, tmp_path: Path) -> Path:
    """A bare ``origin`` for ``repo`` running the example pre-receive hook."""
    bare = tmp_path / "server.git"
    repo.git("init", "-q", "--bare", "-b", "main", str(bare))
    shutil.copy(Path(__file__).resolve().parent.parent / "hooks" / "pre-receive", bare / "hooks" / "pre-receive")
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    return bare


def test_reserved_paths_are_refused_whatever_the_patterns(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"src/api/app.py": "a\n", "src/ui/main.ts": "u\n"}, config=GREEDY)
    with_guarded_remote(repo, tmp_path)
    assert run_cli(["start"], repo.root).code == 0
    api = repo.worktree("api")
    for rel, words in (
        ("streams.yaml", "streams.yaml belongs to no stream"),
        (".streams/stream-ui.md", "progress file of ui"),
    ):
        repo.write(rel, "taken over\n", cwd=api)
        git_run(api, "add", rel)
        res = git_run(api, "commit", "-q", "-m", f"rewrite {rel}")
        assert res.returncode != 0 and words in res.stderr, res.stderr
        res = git_run(api, "commit", "-q", "--no-verify", "-m", f"rewrite {rel}")
        assert res.returncode != 0 and words in res.stderr, res.stderr
        assert git_run(api, *NO_HOOKS, "commit", "-q", "-m", f"rewrite {rel}").returncode == 0
        verdict = run_cli(["verify", "--stream", "api"], repo.root)
        assert verdict.code == 5 and rel in verdict.out, verdict.out
        pushed = push(api, "origin", "streams/api")
        assert pushed.returncode != 0 and "pre-receive hook declined" in pushed.stderr and rel in pushed.stderr
        git_run(api, *NO_HOOKS, "reset", "-q", "--hard", "HEAD~1")
    repo.write("notes.md", "api's own\n", cwd=api)  # what the patterns name apart from reserved paths
    git_run(api, "add", "notes.md")
    assert git_run(api, "commit", "-q", "-m", "notes").returncode == 0


@pytest.mark.parametrize(
    "pattern", [".streams/**", "/.streams/stream-ui.md", "streams.yaml", "/streams.yaml", ".streams"]
)
def test_a_pattern_that_names_only_reserved_paths_is_a_config_error(tmp_path: Path, pattern: str) -> None:
    config = GREEDY.replace("owns: [src/ui/**]", f"owns: [src/ui/**, '{pattern}']")
    repo = make_repo(tmp_path, files={"src/api/app.py": "a\n", "src/ui/main.ts": "u\n"}, config=config)
    res = run_cli(["start"], repo.root)
    assert res.code == 1 and "names only streams' own files" in res.err, res.err


# --- a stream worktree moves its own branch only (item 4) ----------------------------------------------


def test_a_stream_worktree_cannot_move_the_base_or_another_streams_branch(server: tuple[Repo, Path]) -> None:
    repo, _ = server
    text = (repo.root / "streams.yaml").read_text()
    repo.write("streams.yaml", text.replace("base: main\n", "base: main\nremote: origin\n"))
    repo.commit_all("streams: remote origin")
    repo.git("push", "-q", "origin", "main")
    assert run_cli(["start", "ui"], repo.root).code == 0
    api = repo.worktree("api")
    repo.write("src/ui/main.ts", "not api's\n", cwd=api)
    git_run(api, "add", "-A")
    assert git_run(api, *NO_HOOKS, "commit", "-q", "-m", "bad").returncode == 0
    bad = out(api, "rev-parse", "HEAD")
    git_run(api, *NO_HOOKS, "reset", "-q", "--hard", "HEAD~1")
    main_before = repo.git("rev-parse", "main").strip()
    for ref, words in (
        ("refs/heads/main", "only a fetch or your human moves it"),
        ("refs/remotes/origin/main", "only a fetch or your human moves it"),
        ("refs/heads/streams/ui", "a stream moves only its own branch"),
    ):
        res = git_run(api, "update-ref", ref, bad)
        assert res.returncode != 0 and words in res.stderr, (ref, res.stderr)
    assert repo.git("rev-parse", "main").strip() == main_before
    stopped = run_cli(["stop", "ui"], repo.root)  # its branch stays, no longer checked out anywhere
    assert stopped.code == 0, stopped.err
    ui_before = repo.git("rev-parse", "streams/ui").strip()
    res = git_run(api, "branch", "-D", "streams/ui")
    assert res.returncode != 0 and "a stream moves only its own branch" in res.stderr, res.stderr
    res = git_run(api, "branch", "-f", "streams/ui", bad)
    assert res.returncode != 0 and "a stream moves only its own branch" in res.stderr
    # `git branch -C/-M` copies or renames a ref without a reference transaction before git 2.46 or
    # so (no hook runs): then verify, the wall before landing, catches what it brought.
    repo.write("src/api/app.py", "api's work\n", cwd=api)
    assert git_run(api, "commit", "-q", "-am", "api work").returncode == 0
    res = git_run(api, "branch", "-C", "streams/api", "streams/ui")
    if res.returncode == 0:
        verdict = run_cli(["verify", "--stream", "ui"], repo.root)
        assert verdict.code == 5 and "src/api/app.py" in verdict.out, verdict.out
    else:
        assert "a stream moves only its own branch" in res.stderr
        assert repo.git("rev-parse", "streams/ui").strip() == ui_before
    # A fetch moves the remote-tracking base; the main worktree moves anything.
    repo.write("README.md", "main moves\n")
    repo.commit_all("main moves")
    repo.git("push", "-q", "origin", "main")
    assert git_run(api, "fetch", "-q", "origin").returncode == 0
    assert out(api, "rev-parse", "refs/remotes/origin/main") == repo.git("rev-parse", "main").strip()
    assert git_run(repo.root, "update-ref", "refs/heads/scratch", bad).returncode == 0


def test_hooks_status_flags_a_worktree_that_switched_its_hooks_off(server: tuple[Repo, Path]) -> None:
    repo, _ = server
    api = repo.worktree("api")
    assert git_run(api, "config", "extensions.worktreeConfig", "true").returncode == 0
    assert git_run(api, "config", "--worktree", "core.hooksPath", "/dev/null").returncode == 0
    res = run_cli(["hooks", "status", "--json"], repo.root)
    assert '"installed": false' in res.out and "set for worktree api only" in res.out, res.out
    status = run_cli(["status"], repo.root).out.splitlines()[0]
    assert "hooks bypassed" in status and "worktree api" in status


def test_the_reference_transaction_hook_fails_closed_on_a_config_it_cannot_read(server: tuple[Repo, Path]) -> None:
    repo, _ = server
    repo.write("streams.yaml", "version: [\n")
    repo.commit_all("a broken streams.yaml")
    api = repo.worktree("api")
    repo.write("src/api/app.py", "v2\n", cwd=api)
    res = git_run(api, "commit", "-q", "--no-verify", "-am", "api work")
    assert res.returncode != 0 and "cannot check scope" in res.stderr, res.stderr


def test_the_hooks_judge_by_the_committed_config_with_no_working_copy_and_no_cache(server: tuple[Repo, Path]) -> None:
    repo, _ = server
    (repo.root / "streams.yaml").unlink()  # not committed: still in force on main
    shutil.rmtree(repo.root / ".git" / "streams" / "cache")
    api = repo.worktree("api")
    repo.write("src/ui/main.ts", "not api's\n", cwd=api)
    res = git_run(api, "commit", "-q", "--no-verify", "-am", "bad")
    assert res.returncode != 0 and "src/ui/main.ts" in res.stderr, res.stderr


def test_grafts_are_off_without_a_word(server: tuple[Repo, Path]) -> None:
    """GIT_GRAFT_FILE names a path that cannot exist: git reads no grafts and prints no advice."""
    repo, _ = server
    api = repo.worktree("api")
    repo.write("src/ui/main.ts", "not api's\n", cwd=api)
    res = git_run(api, "commit", "-q", "--no-verify", "-am", "bad")
    assert res.returncode != 0 and "graft" not in res.stderr.lower(), res.stderr
    verdict = run_cli(["verify"], repo.root)
    assert "graft" not in (verdict.out + verdict.err).lower()


def test_a_symbolic_ref_trick_cannot_commit_onto_another_streams_branch(server: tuple[Repo, Path]) -> None:
    repo, _ = server
    assert run_cli(["start", "ui"], repo.root).code == 0
    assert run_cli(["stop", "ui"], repo.root).code == 0
    ui_before = repo.git("rev-parse", "streams/ui").strip()
    api = repo.worktree("api")
    git_run(api, "symbolic-ref", "HEAD", "refs/heads/streams/ui")  # api's worktree now "on" ui's branch
    repo.write("src/ui/main.ts", "ui's file, from api's worktree\n", cwd=api)
    git_run(api, "add", "-A")
    for extra in ((), ("--no-verify",)):
        res = git_run(api, "commit", "-q", *extra, "-m", "via a symbolic ref")
        assert res.returncode != 0, res.stderr
    assert repo.git("rev-parse", "streams/ui").strip() == ui_before
