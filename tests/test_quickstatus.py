"""`streams status --json` answered before click and PyYAML load (``streams.cli.quickstatus``) must
say what the full CLI says, in every state a repository can be in; where the quick path cannot be
sure it steps aside, and the full path answers.

Each check runs the real command as a subprocess (``python -m streams``) with
``STREAMS_FULL_PATH=1``, which turns the quick path off (and refreshes the caches the quick path
reads), then as users run it. Exit code and stderr must be equal, and stdout too once what moves
with the clock between two runs is set to a constant (``time``, ``streams[].last_commit_age``,
``streams[].locks[].seconds_left``, ``run.elapsed``, ``run.remaining``): compared as ordered pairs
with those values replaced at exactly their places, and as text (so key order and formatting
count). A third run shows which path answered (whether click or yaml was imported); when it was
the quick one, what it printed is compared with the full run too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streams import runstate, state
from streams.cli import quickstatus
from streams.kernel import runview
from streams.kernel.procs import pid_alive
from tests.conftest import DEFAULT_CONFIG, DEFAULT_FILES, Outcome, Repo, disk_snapshot, make_repo, run_streams, wait_for

FULL = {"STREAMS_FULL_PATH": "1"}
STATUS = ["status", "--json"]

WHICH_PATH = (
    "import sys, json; from streams.cli import main\n"
    "code = 0\ntry:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
    "print('QUICK', json.dumps('click' not in sys.modules and 'yaml' not in sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)

# Two shared files: one a stream leases, one nobody does.
CONFIG = DEFAULT_CONFIG.replace("  - pyproject.toml\n", "  - pyproject.toml\n  - Makefile\n")  # a second shared path
FILES = {**DEFAULT_FILES, "Makefile": "all:\n"}

# --- comparing both paths ---------------------------------------------------------------------------

_MOVING_TEXT = re.compile(r'("(?:time|last_commit_age|seconds_left|elapsed|remaining)": )(-?[0-9][0-9.eE+-]*|"[^"]*")')


class _Object(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, in order."""


def _pairs(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_Object)


def _mark(value: Any) -> Any:
    """A moving value as a constant of its kind: null stays null, so a number where the other path
    says null (or the other way) still shows."""
    if value is None:
        return None
    return f"<{type(value).__name__}>"


def _steady_tree(doc: Any) -> Any:
    """``doc`` (from ``_pairs``) with the clock's values replaced, at exactly their places."""

    def replace(obj: Any, key: str, fn: Any) -> Any:
        if not isinstance(obj, _Object):
            return obj
        return _Object((k, fn(v) if k == key else v) for k, v in obj)

    def each_row(rows: Any) -> Any:
        if not isinstance(rows, list) or isinstance(rows, _Object):
            return rows
        out = []
        for row in rows:
            row = replace(row, "last_commit_age", _mark)
            row = replace(row, "locks", lambda locks: [replace(x, "seconds_left", _mark) for x in locks])
            out.append(row)
        return out

    def data(d: Any) -> Any:
        d = replace(d, "time", _mark)
        d = replace(d, "streams", each_row)
        return replace(d, "run", lambda r: replace(replace(r, "elapsed", _mark), "remaining", _mark))

    return replace(doc, "data", data)


def _steady_text(text: str) -> str:
    return _MOVING_TEXT.sub(r"\1~", text)


def _differences(quick: Any, full: Any, where: str = "") -> list[str]:
    """Where two ``_pairs`` trees differ (keys in another order included), for the failure message."""
    if isinstance(quick, _Object) and isinstance(full, _Object):
        qk, fk = [k for k, _ in quick], [k for k, _ in full]
        if qk != fk:
            return [f"{where or '.'}: keys {qk} (quick) != {fk} (full)"]
        return [d for (k, q), (_, f) in zip(quick, full, strict=True) for d in _differences(q, f, f"{where}.{k}")]
    if isinstance(quick, list) and isinstance(full, list) and not isinstance(quick, _Object):
        if len(quick) != len(full):
            return [f"{where}: {json.dumps(quick)} (quick) != {json.dumps(full)} (full)"]
        return [
            d for i, (q, f) in enumerate(zip(quick, full, strict=True)) for d in _differences(q, f, f"{where}[{i}]")
        ]
    if quick != full or type(quick) is not type(full):
        return [f"{where}: {quick!r} (quick) != {full!r} (full)"]
    return []


def agree(quick: Outcome, full: Outcome, args: list[str]) -> None:
    """Two runs of ``streams ARGS`` said the same: exit code, stderr, stdout (clock aside)."""
    assert "Traceback" not in quick.err + full.err, (quick.err, full.err)
    assert (quick.code, quick.err) == (full.code, full.err), args
    if "--json" in args and quick.out.strip() and full.out.strip():
        q, f = _steady_tree(_pairs(quick.out)), _steady_tree(_pairs(full.out))
        assert q == f, (args, _differences(q, f))
    assert _steady_text(quick.out) == _steady_text(full.out), args  # the text too: its formatting


def same(args: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> Outcome:
    """Run ``streams ARGS`` the full way, then the usual way (after the full run has refreshed the
    caches): they must say the same."""
    full = run_streams(args, cwd, env={**(env or {}), **FULL})
    quick = run_streams(args, cwd, env=env)
    agree(quick, full, args)
    return quick


def which_path(args: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> tuple[bool, Outcome]:
    """Run ``streams ARGS`` in a process that says whether the quick path answered; and what it said."""
    argv = [sys.executable, "-c", WHICH_PATH, *args]
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=60, env={**os.environ, **(env or {})}
    )
    err, _, line = proc.stderr.rstrip("\n").rpartition("\n")
    if not line.startswith("QUICK "):
        err, line = "", proc.stderr.rstrip("\n")
    assert line.startswith("QUICK "), proc.stderr
    return bool(json.loads(line[6:])), Outcome(proc.returncode, proc.stdout, err + "\n" if err else "")


def quick_path_taken(args: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> bool:
    return which_path(args, cwd, env=env)[0]


def check(cwd: Path, *, quick: bool | None, args: list[str] = STATUS) -> dict[str, Any]:
    """`streams ARGS` agrees with the full path in ``cwd``; with ``quick`` True/False the quick path
    answered (or stepped aside), and when it answered, what it said agrees too. Returns the
    envelope's ``data`` (as plain dicts)."""
    full = run_streams(args, cwd, env=FULL)
    if quick is None:
        out = run_streams(args, cwd)
    else:  # one run that also says which path answered
        served, out = which_path(args, cwd)
        assert served is quick, (args, "quick" if quick else "full", "expected")
    agree(out, full, args)
    if "--json" in args and out.out.strip():
        data: dict[str, Any] = json.loads(out.out)["data"]
        return data
    return {}


def warm(cwd: Path) -> None:
    """A full-path command: leaves the caches the quick path reads."""
    out = run_streams(STATUS, cwd, env=FULL)
    assert out.code == 0, out.err


def row(data: dict[str, Any], name: str) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {r["name"]: r for r in data["streams"]}
    return rows[name]


def ok(out: Outcome) -> Outcome:
    assert out.code == 0, (out.out, out.err)
    return out


def new_repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path, files=FILES, config=CONFIG)


def commit(repo: Repo, wt: Path, rel: str, text: str, *, past_hooks: bool = False) -> None:
    """Commit ``rel`` in worktree ``wt``; ``past_hooks``: with no hook run at all (``--no-verify``
    alone skips only pre-commit; the reference-transaction hook would still refuse)."""
    repo.write(rel, text, cwd=wt)
    repo.git("add", "-A", cwd=wt)
    skip = ["-c", "core.hooksPath=/nonexistent"] if past_hooks else []
    repo.git(*skip, "commit", "-q", *(["--no-verify"] if past_hooks else []), "-m", f"change {rel}", cwd=wt)


def lease_file(repo: Repo, rel: str) -> Path:
    return repo.root / ".git" / "streams" / "locks" / f".{rel}.lock"


# --- where the quick path serves --------------------------------------------------------------------


def test_the_first_run_goes_the_full_way_then_the_quick_one(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    assert not quick_path_taken(STATUS, repo.root)  # no cache yet
    check(repo.root, quick=None)  # leaves the caches
    data = check(repo.root, quick=True)
    assert [(r["name"], r["state"]) for r in data["streams"]] == [
        ("api", "not started"),
        ("ui", "not started"),
        ("docs", "not started"),
    ]


def test_a_full_streams_list_warms_it_in_a_repository_whose_path_needs_quoting(tmp_path: Path) -> None:
    parent = tmp_path / 'wörk "space" 🚀'
    parent.mkdir()
    repo = new_repo(parent)
    ok(run_streams(["start", "api"], repo.root))
    ok(run_streams(["list"], repo.root, env=FULL))
    assert quick_path_taken(STATUS, repo.root)  # before any full status
    data = check(repo.root, quick=True)
    assert row(data, "api")["worktree"] == str(repo.worktree("api"))


def test_dirty_worktrees_and_every_kind_of_out_of_scope_edit(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start"], repo.root))
    ok(run_streams(["stop", "docs"], repo.root))  # branch only
    api, ui = repo.worktree("api"), repo.worktree("ui")
    ok(run_streams(["lock", "pyproject.toml", "--reason", "bump"], ui))
    # api: staged, unstaged, untracked, a staged rename, a deletion, non-ASCII names
    repo.write("src/api/staged.py", "s = 1\n", cwd=api)
    repo.git("add", "src/api/staged.py", cwd=api)
    repo.write("src/api/app.py", "print('changed')\n", cwd=api)
    repo.write("src/api/café.py", "c = 1\n", cwd=api)
    repo.git("mv", "tests/api/test_app.py", "tests/api/test_renamed.py", cwd=api)
    # and out of scope: another stream's path, an unowned path, a shared path leased by ui, a
    # shared path nobody leases
    repo.write("src/ui/main.ts", "console.log('api was here')\n", cwd=api)
    repo.write("README.md", "# mine now\n", cwd=api)
    repo.write("pyproject.toml", "[project]\nname = 'api'\n", cwd=api)
    repo.write("Makefile", "all: api\n", cwd=api)
    repo.write("docs/résumé.md", "# é\n", cwd=api)
    repo.write('src/api/new dir/with space "quoted" \\ 🚀.py', "q\n", cwd=api)  # needs quoting, a non-BMP character
    # ui: a deletion, its own leased shared path
    (ui / "src" / "ui" / "main.ts").unlink()
    repo.write("pyproject.toml", "[project]\nname = 'ui'\n", cwd=ui)
    warm(repo.root)
    data = check(repo.root, quick=True)
    a, u = row(data, "api"), row(data, "ui")
    assert row(data, "docs")["state"] == "branch only"
    assert "src/api/café.py" in a["dirty"] and "docs/résumé.md" in a["dirty"]
    assert {"tests/api/test_app.py", "tests/api/test_renamed.py", "src/api/staged.py"} <= set(a["dirty"])
    assert {x["path"] for x in a["out_of_scope"]} >= {"src/ui/main.ts", "README.md", "pyproject.toml", "Makefile"}
    assert "src/ui/main.ts" in u["dirty"] and u["out_of_scope"] == []
    check(api, quick=True)  # from a stream worktree
    check(ui / "src", quick=True)  # and from below one


def test_commits_ahead_progress_and_overlaps(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start"], repo.root))
    api, ui, docs = repo.worktree("api"), repo.worktree("ui"), repo.worktree("docs")
    commit(repo, api, "src/api/one.py", "1\n")  # one commit
    commit(repo, api, "src/ui/main.ts", "api's\n", past_hooks=True)  # out of scope, past the hook
    for i in range(3):  # several
        commit(repo, ui, f"src/ui/n{i}.ts", f"{i}\n")
    commit(repo, ui, "src/ui/gone.ts", "soon gone\n")  # added, then deleted
    repo.git("rm", "-q", "src/ui/gone.ts", cwd=ui)
    repo.git("commit", "-q", "-m", "gone", cwd=ui)
    commit(repo, ui, "src/ui/main.ts", "ui's\n")  # api changed it too: an overlap
    commit(repo, ui, "src/ui/ünï.ts", "u\n")
    task = 'the API: "quoted", back\\slash, 🚀'
    ok(run_streams(["progress", "--status", "in_progress", "--completion", "40", "--current", task], api))
    ok(run_streams(["progress", "--status", "blocked", "--blocked", "waits for api", "--blocked", "and é"], ui))
    ok(run_streams(["progress", "--status", "in_progress", "--current", "x"], docs))  # progress-only commits
    ok(run_streams(["progress", "--status", "completed", "--completion", "100", "--current", ""], docs))
    warm(repo.root)
    data = check(repo.root, quick=True)
    a, u, d = row(data, "api"), row(data, "ui"), row(data, "docs")
    assert (a["ahead"], u["ahead"], d["ahead"]) == (2, 7, 0)  # docs: progress commits only
    assert a["committed_out_of_scope"] == [{"path": "src/ui/main.ts", "reason": "owned by ui"}]
    assert a["overlaps"] == {"ui": ["src/ui/main.ts"]} and u["overlaps"] == {"api": ["src/ui/main.ts"]}
    assert "src/ui/gone.ts" not in u["changed"] and "src/ui/ünï.ts" in u["changed"]
    assert a["status"] == "in_progress" and a["completion"] == 40 and a["current_task"] == task
    assert u["status"] == "blocked" and u["blocked_items"] == ["waits for api", "and é"]
    assert d["status"] == "completed" and d["completion"] == 100
    assert a["committed_out_of_scope"] and "ui" in a["overlaps"]
    assert data["summary"]["blocked"] == 1 and data["summary"]["completed"] == 1
    repo.git("pack-refs", "--all")  # the same refs, read from packed-refs
    check(repo.root, quick=True)


def test_odd_corners_are_read_alike(tmp_path: Path) -> None:
    """States outside the contract's lists: whichever path answers, the answer is the same."""
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api", "ui"], repo.root))
    api, ui = repo.worktree("api"), repo.worktree("ui")
    repo.write("src/api/new.py", "n\n", cwd=api)
    warm(repo.root)
    (api / os.fsdecode(b"src/api/\xff-not-utf8.py")).write_text("x\n")  # a name that is not UTF-8
    same(STATUS, repo.root)
    os.unlink(api / os.fsdecode(b"src/api/\xff-not-utf8.py"))
    repo.git("config", "core.untrackedCache", "true")
    same(STATUS, repo.root)
    repo.git("update-index", "--split-index", cwd=ui)  # the private index copy cannot be taken
    same(STATUS, repo.root)
    git_dir = Path(repo.git("rev-parse", "--absolute-git-dir", cwd=api).strip())
    (git_dir / "index.lock").write_text("")  # an agent committing right now
    same(STATUS, repo.root)
    (git_dir / "index.lock").unlink()
    (api / ".streams" / "stream-api.md").unlink()  # a progress file deleted
    same(STATUS, repo.root)
    repo.git("checkout", "-q", "--detach", cwd=api)  # the stream's worktree off its branch
    same(STATUS, repo.root)
    twin = repo.root.parent / "twin"
    repo.git("worktree", "add", "-q", "--force", str(twin), "streams/ui")  # a second worktree on ui's branch
    same(STATUS, repo.root)


def test_several_leases_live_and_expired(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start"], repo.root))
    ok(run_streams(["lock", "Makefile", "--reason", "lång 🚀", "--until-commit"], repo.worktree("ui")))
    ok(run_streams(["progress", "--status", "failed"], repo.worktree("docs")))
    ok(run_streams(["lock", "pyproject.toml", "--reason", "r", "--ttl", "1s"], repo.worktree("api")))
    warm(repo.root)
    # no check while the 1 s lease runs out: it could expire between the two runs
    expires = json.loads(lease_file(repo, "pyproject.toml").read_text())["expires_at"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    data = check(repo.root, quick=True)
    assert [(x["path"], x["until_commit"]) for x in row(data, "ui")["locks"]] == [("Makefile", True)]
    assert data["summary"]["failed"] == 1
    assert row(data, "api")["locks"] == [] and data["summary"]["locks_held"] == 1
    ok(run_streams(["lock", "pyproject.toml", "--reason", "again"], repo.worktree("docs")))  # an expired one taken over
    data = check(repo.root, quick=True)
    assert data["summary"]["locks_held"] == 2
    locks = lease_file(repo, "Makefile").parent
    (locks / ".Makefile.lock.abc.tmp").write_text("{")  # a take in flight (or a dead one's)
    same(STATUS, repo.root)
    (locks / ".Makefile.lock.abc.tmp").unlink()
    lease_file(repo, "pyproject.toml").write_text("not json")  # damaged
    same(STATUS, repo.root)


def test_hooks_outdated_or_missing(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api"], repo.root))
    hooks = repo.root / ".git" / "hooks"
    warm(repo.root)
    data = check(repo.root, quick=True)
    assert data["summary"]["hooks_ok"] is True
    pre_commit = hooks / "pre-commit"
    pre_commit.write_text(pre_commit.read_text() + "# edited by hand\n")
    data = check(repo.root, quick=True)
    assert data["summary"]["hooks"]["pre-commit"] != "installed" and data["summary"]["hooks_ok"] is False
    (hooks / "post-commit").unlink()
    data = check(repo.root, quick=True)
    assert data["summary"]["hooks"]["post-commit"] == "missing"


# --- where it steps aside ---------------------------------------------------------------------------


def test_a_stream_behind_the_base_then_halted_by_sync(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api", "ui"], repo.root))
    commit(repo, repo.worktree("api"), "src/api/app.py", "stream side\n")
    warm(repo.root)
    repo.write("src/api/app.py", "base side\n")
    repo.commit_all("the base changes the same line")
    data = check(repo.root, quick=False)
    assert row(data, "api")["behind"] == 1
    sync = run_streams(["sync", "api"], repo.root)
    assert sync.code == 4, (sync.out, sync.err)
    data = check(repo.root, quick=False)
    assert row(data, "api")["halted"] is True and row(data, "api")["operation"] == "rebase"


def test_a_moved_base_steps_aside_until_the_streams_are_synced(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api", "ui"], repo.root))
    commit(repo, repo.worktree("api"), "src/api/one.py", "1\n")
    warm(repo.root)
    repo.write("README.md", "# moved\n")
    repo.commit_all("move the base")
    data = check(repo.root, quick=False)
    assert (row(data, "api")["behind"], row(data, "ui")["behind"]) == (1, 1)
    ok(run_streams(["sync"], repo.root))  # a clean rebase of both
    data = check(repo.root, quick=True)
    assert (row(data, "api")["behind"], row(data, "api")["ahead"]) == (0, 1)


def test_a_merge_or_a_rebase_in_progress_in_a_worktree(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api"], repo.root))
    api = repo.worktree("api")
    commit(repo, api, "src/api/app.py", "stream side\n")
    repo.git("branch", "side", "main")  # not the base: api stays level with main
    side = repo.root.parent / "side"
    repo.git("worktree", "add", "-q", str(side), "side")
    commit(repo, side, "src/api/app.py", "side's\n", past_hooks=True)
    repo.git("worktree", "remove", str(side))
    warm(repo.root)
    check(repo.root, quick=True)
    repo.git("merge", "-q", "side", cwd=api, check=False)  # conflicts: the merge stays in progress
    assert (repo.root / ".git" / "worktrees" / "api" / "MERGE_HEAD").exists()
    data = check(repo.root, quick=False)
    assert row(data, "api")["operation"] == "merge" and row(data, "api")["behind"] == 0
    repo.git("merge", "--abort", cwd=api)
    check(repo.root, quick=True)
    repo.git("rebase", "side", cwd=api, check=False)
    data = check(repo.root, quick=False)
    assert row(data, "api")["operation"] == "rebase"


def test_one_cause_at_a_time(tmp_path: Path) -> None:
    """Each cause alone sends it the full way, and is undone before the next; at the end the quick
    path serves again (so no cause outlived its undoing)."""
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api", "ui"], repo.root))
    warm(repo.root)

    repo.git("config", "core.hooksPath", ".githooks")
    data = check(repo.root, quick=False)
    assert data["summary"]["hooks_path"] == ".githooks"
    repo.git("config", "--unset", "core.hooksPath")

    repo.write("streams.yaml", CONFIG + "  extra:\n    owns: [extra/**]\n")  # uncommitted
    check(repo.root, quick=False)
    assert "differs from the one committed on main" in run_streams(STATUS, repo.root).err
    repo.git("checkout", "--", "streams.yaml")

    progress = repo.worktree("api") / ".streams" / "stream-api.md"
    good = progress.read_text()
    progress.write_text("---\nstatus: [unclosed\n---\n# api\n")  # damaged
    data = check(repo.root, quick=False)
    assert row(data, "api")["status"] is None
    assert "front matter is not valid YAML" in row(data, "api")["errors"][0]
    # valid, written by hand in another style: both must read it alike (whichever path answers)
    progress.write_text(good.replace("status: pending", "status: 'in_progress'  # by hand"))
    data = check(repo.root, quick=None)
    assert row(data, "api")["status"] == "in_progress"
    # edited by hand, valid or not: the same answer, whichever path gives it
    when = next(ln for ln in good.splitlines() if ln.startswith("updated: "))
    for text in (
        good.replace("completion: 0", "completion: 150"),
        good.replace("status: pending", "status: blocked\nstatus: completed"),
        good.replace(when, when.translate(str.maketrans("0123456789", "０１２３４５６７８９"))),
        good.replace("\n", "\r\n"),
    ):
        progress.write_text(text)
        same(STATUS, repo.root)
    progress.write_text(good)

    extra = repo.worktree("extra")
    repo.git("worktree", "add", "-q", "-b", "streams/extra", str(extra), "main")  # unconfigured
    data = check(repo.root, quick=False)
    assert row(data, "extra")["state"] == "unconfigured"
    repo.git("worktree", "remove", str(extra))
    repo.git("branch", "-D", "streams/extra")

    state_dir = repo.root / ".git" / "streams"
    for name, text in (  # shared state files damaged or of another shape: what the full path makes of them
        ("state.json", '{"version": 1, "halts": '),
        ("state.json", '{"version": 2}'),
        ("merge.json", "[1, 2"),
        ("merge.json", '{"landings": {"api": 1}}'),
        ("runs/latest", "20260101-000000-abcd\n"),  # a run named, its state missing
    ):
        (state_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (state_dir / name).write_text(text)
        check(repo.root, quick=False)
        (state_dir / name).unlink()
    run_dir = state_dir / "runs" / "20260101-000000-abcd"
    run_dir.mkdir()
    (state_dir / "runs" / "latest").write_text(run_dir.name + "\n")
    for text in ('{"run_id": 1', '{"run_id": "r", "plan_digest": "", "names": [], "waves": [], "status": "odd"}'):
        (run_dir / "state.json").write_text(text)
        check(repo.root, quick=False)
    shutil.rmtree(state_dir / "runs")

    shutil.rmtree(repo.worktree("ui"))  # deleted by hand
    data = check(repo.root, quick=False)
    assert row(data, "ui")["state"] == "missing"
    repo.git("worktree", "prune")

    data = check(repo.root, quick=True)
    assert row(data, "ui")["state"] == "branch only"


def test_a_remote_in_streams_yaml_counts_against_what_was_fetched(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files=FILES, config=CONFIG.replace("base: main\n", "base: main\nremote: origin\n"))
    bare = tmp_path / "remote.git"
    repo.git("init", "-q", "--bare", "-b", "main", str(bare))
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    ok(run_streams(["start", "api"], repo.root))
    warm(repo.root)
    data = check(repo.root, quick=True)  # counted against origin/main, as last fetched
    assert data["base_ref"] == "refs/remotes/origin/main"
    commit(repo, repo.worktree("api"), "src/api/one.py", "1\n")
    repo.git("update-ref", "-d", "refs/remotes/origin/main")  # as if never fetched: the local base counts
    data = check(repo.root, quick=True)
    assert data["base_ref"] == "refs/heads/main" and row(data, "api")["ahead"] == 1
    repo.git("fetch", "-q", "origin")
    data = check(repo.root, quick=True)
    assert data["base_ref"] == "refs/remotes/origin/main" and row(data, "api")["ahead"] == 1


def test_other_command_lines_go_the_full_way(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api"], repo.root))
    warm(repo.root)
    for args in (
        ["status"],
        ["status", "--json", "api"],
        ["-C", str(repo.root), "status", "--json"],
    ):
        check(repo.root, quick=False, args=args)
    # in the git dir, not in a worktree (not .git/refs: its streams/ is a package to python -m)
    same(STATUS, repo.root / ".git" / "hooks")
    assert not quick_path_taken(STATUS, repo.root, env=FULL)
    assert quick_path_taken(STATUS, repo.root)


def test_outside_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    out = same(STATUS, plain)
    assert out.code != 0 and "Traceback" not in out.err
    assert not quick_path_taken(STATUS, plain)


def test_a_live_run_then_an_interrupted_one(tmp_path: Path) -> None:
    """A recorded run of ``streams run`` (the brief had the quick path step aside for one; since
    98a070e it serves one whose records it reads): the same answer while it runs, and once ended."""
    plan = tmp_path / "scenario.json"
    plan.write_text(json.dumps({"a": [[]], "b": [["--hang"]]}))
    agent = f"{sys.executable} -m streams.demo_agent --steps 1 --sleep 0 --scenario {plan}"
    config = "version: 1\nbase: main\nstreams:\n" + "".join(
        f"  {n}:\n    owns: [src/{n}/**]\n    command: {agent}\n" for n in ("a", "b")
    )
    config += (
        "run:\n  backoff: 100ms\n  grace: 1s\n  timeout: 60s\n  stall_timeout: 60s\n  merge: false\n  gate: none\n"
    )
    repo = make_repo(
        tmp_path, files={"src/a/a.py": "# a\n", "src/b/b.py": "# b\n", "README.md": "demo\n"}, config=config
    )
    detached = run_streams(["run", "--detach", "--json"], repo.root)
    assert detached.code == 0, detached.err
    runner = json.loads(detached.out)["data"]["pid"]
    try:

        def b_running_a_verified() -> bool:
            data = json.loads(run_streams(STATUS, repo.root, env=FULL).out)["data"]
            cells = {r["name"]: r for r in data["streams"]}
            return bool(cells["b"]["agent_running"]) and (cells["a"]["run"] or {}).get("status") == "verified"

        wait_for(b_running_a_verified, "b's agent running, a verified")
        data = check(repo.root, quick=True)  # elapsed and remaining move: compared as kinds
        assert data["run"]["status"] == "running" and data["run"]["remaining"] is not None
    finally:
        os.kill(runner, signal.SIGINT)
        wait_for(lambda: not pid_alive(runner), "the runner to end")
    data = check(repo.root, quick=True)
    assert data["run"]["status"] == "interrupted" and not data["run"]["runner_alive"]


def test_a_landed_stream(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api"], repo.root))
    commit(repo, repo.worktree("api"), "src/api/one.py", "1\n")
    ok(run_streams(["progress", "--status", "completed", "--completion", "100"], repo.worktree("api")))
    ok(run_streams(["merge", "api"], repo.root))
    data = check(repo.root, quick=None)  # not in the contract either way: only the same answer
    assert row(data, "api")["state"] == "landed"


def test_the_constants_the_quick_path_copies() -> None:
    assert quickstatus.STATE_VERSION == state.STATE_VERSION
    assert runview.LATEST == runstate.LATEST


# --- what it leaves on disk -------------------------------------------------------------------------


def test_the_quick_path_leaves_nothing_the_full_path_does_not(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ok(run_streams(["start", "api", "ui"], repo.root))
    repo.write("src/api/new.py", "n\n", cwd=repo.worktree("api"))
    repo.write("src/api/app.py", "changed\n", cwd=repo.worktree("api"))
    ok(run_streams(["lock", "pyproject.toml", "--reason", "r"], repo.worktree("ui")))
    warm(repo.root)
    ignore = [
        "repo/.git/streams/cache",
        *(f"repo/.git/worktrees/{name}/streams-status" for name in ("api", "ui")),
    ]
    ok(run_streams(STATUS, repo.root, env=FULL))
    after_full = disk_snapshot(tmp_path, ignore=ignore)
    assert quick_path_taken(STATUS, repo.root)
    ok(run_streams(STATUS, repo.root))
    after_quick = disk_snapshot(tmp_path, ignore=ignore)
    assert after_quick == after_full
