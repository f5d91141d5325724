"""Leases on shared files: the library, the `lock`/`unlock`/`locks` commands, and the hooks' view.

Real repositories, real worktrees, real processes; no mocks.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.kernel import events, locks, paths
from streams.kernel.durations import DurationError, format_duration, parse_duration
from streams.kernel.errors import BusyError, PathError
from tests.conftest import Repo, make_repo, run_cli

# --- helpers ------------------------------------------------------------------------------------------


def common(repo: Repo) -> Path:
    return repo.root / ".git"


def lease_files(repo: Repo) -> dict[str, bytes]:
    """Every file under the locks dir (leases, guards, stray temp files) with its bytes."""
    root = locks.locks_root(common(repo))
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def lock_events(repo: Repo) -> list[dict[str, object]]:
    return [e for e in events.read(common(repo)) if str(e["event"]).startswith("lock.")]


def state(repo: Repo) -> tuple[dict[str, bytes], list[dict[str, object]]]:
    return lease_files(repo), list(events.read(common(repo)))


def expire_now(repo: Repo, path: str, *, ago: float = 5.0) -> locks.Lease:
    """Rewrite a lease as already expired (what the clock would do, without waiting for it)."""
    file = locks.lease_file(common(repo), path)
    data = json.loads(file.read_text())
    data["expires_at"] = time.time() - ago
    file.write_text(json.dumps(data))
    lease = locks.read_lease(common(repo), path)
    assert lease is not None and not lease.live()
    return lease


SHARED_CONFIG = """\
version: 1
base: main
shared:
  - pyproject.toml
  - config/shared.toml
  - CHANGELOG.md
streams:
  api:
    owns: [src/api/**]
  ui:
    owns: [src/ui/**]
"""

SHARED_FILES = {
    "src/api/app.py": "api\n",
    "src/ui/main.ts": "ui\n",
    "pyproject.toml": "[project]\nname = 'demo'\n",
    "config/shared.toml": "a = 1\n",
    "config/other.toml": "b = 1\n",
    "CHANGELOG.md": "# changes\n",
}


@pytest.fixture
def started(tmp_path: Path) -> Repo:
    """A repository with streams api and ui started (worktrees at repo.worktree(name))."""
    repo = make_repo(tmp_path, SHARED_FILES, SHARED_CONFIG)
    res = run_cli(["start", "api", "ui"], repo.root)
    assert res.code == 0, res.err
    return repo


# --- durations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("500ms", 0.5), ("1.5h", 5400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "0s", "0m0s", "-5m", "", "  ", "30", "abc", "5x", "m", "1h-30m", "30m!"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(DurationError) as exc:
        parse_duration(text, option="--ttl")
    assert "--ttl" in exc.value.message and exc.value.exit_code == 1


def test_parse_duration_zero_allowed_for_wait() -> None:
    assert parse_duration("0s", allow_zero=True) == 0
    with pytest.raises(DurationError):
        parse_duration("-1s", allow_zero=True)


def test_parse_interval_takes_bare_seconds_like_watch_n() -> None:
    from streams.kernel.durations import parse_interval

    assert parse_interval("2") == 2 and parse_interval("0.5") == 0.5 and parse_interval("1m") == 60
    for bad, needle in (("0", "is zero"), ("-1", "negative"), ("1x", "not a duration"), ("50ms", "below 0.1s")):
        with pytest.raises(DurationError, match=needle):
            parse_interval(bad, minimum=0.1)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (5, 65, 3700, 90000)] == ["5s", "1m 05s", "1h 01m", "1d 1h"]


# --- the lease file -------------------------------------------------------------------------------------


def test_lease_file_mirrors_the_repository_path(tmp_path: Path) -> None:
    assert locks.lease_file(tmp_path, "docs/CHANGELOG.md") == tmp_path / "streams/locks/docs/.CHANGELOG.md.lock"
    assert locks.lease_file(tmp_path, "pyproject.toml") == tmp_path / "streams/locks/.pyproject.toml.lock"
    for bad in ("", "../x", "a//b", "./a", "a/"):
        with pytest.raises(ValueError):
            locks.lease_file(tmp_path, bad)


def test_take_publishes_a_complete_lease_and_nothing_else(tmp_path: Path) -> None:
    [taken] = locks.acquire(tmp_path, "api", ["docs/CHANGELOG.md"], ttl=600, reason="release notes")
    assert taken.action == "take" and taken.previous is None
    file = locks.lease_file(tmp_path, "docs/CHANGELOG.md")
    data = json.loads(file.read_text())
    assert {
        "path",
        "stream",
        "holder",
        "pid",
        "acquired_at",
        "expires_at",
        "reason",
        "lease_id",
        "until_commit",
    } <= data.keys()
    assert data["path"] == "docs/CHANGELOG.md" and data["stream"] == "api" and data["pid"] == os.getpid()
    assert data["reason"] == "release notes" and "@" in data["holder"] and data["until_commit"] is False
    assert data["expires_at"] - data["acquired_at"] == pytest.approx(600)
    # Only the lease and its guard-free directory: no temp file left behind.
    assert sorted(p.name for p in file.parent.iterdir()) == [".CHANGELOG.md.lock"]
    assert locks.live_lease(tmp_path, "docs/CHANGELOG.md") == taken.lease
    assert locks.list_leases(tmp_path) == [taken.lease]


def test_listing_sweeps_temp_files_of_killed_writers(tmp_path: Path) -> None:
    """A writer killed between writing its temp file and publishing leaves the temp file; listing
    removes it once it is too old to belong to a live writer, and leaves a fresh one alone."""
    [taken] = locks.acquire(tmp_path, "api", ["docs/CHANGELOG.md"], ttl=600)
    folder = locks.lease_file(tmp_path, "docs/CHANGELOG.md").parent
    old, fresh = folder / ".CHANGELOG.md.lock.dead.tmp", folder / ".NEWS.lock.busy.tmp"
    for tmp in (old, fresh):
        tmp.write_text("{half")
    gone = time.time() - locks.STALE_TEMP_SECONDS - 1
    os.utime(old, (gone, gone))
    assert locks.list_leases(tmp_path) == [taken.lease]
    assert sorted(p.name for p in folder.iterdir()) == [".CHANGELOG.md.lock", fresh.name]


def test_renew_keeps_the_lease_id_and_moves_the_expiry(tmp_path: Path) -> None:
    [first] = locks.acquire(tmp_path, "api", ["pyproject.toml"], ttl=60, reason="bump")
    [again] = locks.acquire(tmp_path, "api", ["pyproject.toml"], ttl=3600, until_commit=True)
    assert again.action == "renew" and again.previous == first.lease
    assert again.lease.lease_id == first.lease.lease_id
    assert again.lease.acquired_at == first.lease.acquired_at
    assert again.lease.expires_at > first.lease.expires_at + 3000
    assert again.lease.reason == "bump" and again.lease.until_commit is True
    assert locks.read_lease(tmp_path, "pyproject.toml") == again.lease
    assert [e["event"] for e in events.read(tmp_path)] == ["lock.take", "lock.renew"]


def test_another_streams_live_lease_is_busy_and_untouched(tmp_path: Path) -> None:
    [held] = locks.acquire(tmp_path, "ui", ["pyproject.toml"], ttl=600, reason="deps")
    before = locks.lease_file(tmp_path, "pyproject.toml").read_bytes()
    with pytest.raises(locks.LockBusyError) as exc:
        locks.acquire(tmp_path, "api", ["pyproject.toml"], ttl=60)
    assert isinstance(exc.value, BusyError) and exc.value.exit_code == 3
    assert "stream ui" in exc.value.message and locks.clock(held.lease.expires_at) in exc.value.message
    assert exc.value.lease == held.lease
    assert locks.lease_file(tmp_path, "pyproject.toml").read_bytes() == before


def test_several_paths_are_all_or_none(tmp_path: Path) -> None:
    [mine] = locks.acquire(tmp_path, "api", ["a.toml"], ttl=60)
    locks.acquire(tmp_path, "ui", ["c.toml"], ttl=600)
    before = locks.lease_file(tmp_path, "a.toml").read_bytes()
    with pytest.raises(locks.LockBusyError):
        locks.acquire(tmp_path, "api", ["a.toml", "b.toml", "c.toml"], ttl=3600)
    # b.toml was taken then rolled back; a.toml's renewal was undone.
    assert locks.read_lease(tmp_path, "b.toml") is None
    assert locks.lease_file(tmp_path, "a.toml").read_bytes() == before
    assert locks.read_lease(tmp_path, "a.toml") == mine.lease
    assert [lease.path for lease in locks.list_leases(tmp_path)] == ["a.toml", "c.toml"]


def test_an_error_half_way_rolls_back_what_was_taken(tmp_path: Path) -> None:
    blocker = locks.locks_root(tmp_path) / "b"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory\n")  # the lease dir for b/c.toml cannot be made
    with pytest.raises(OSError):
        locks.acquire(tmp_path, "api", ["a.toml", "b/c.toml"], ttl=60)
    assert locks.list_leases(tmp_path) == []


def test_force_steals_a_live_lease_and_records_it(tmp_path: Path) -> None:
    [victim] = locks.acquire(tmp_path, "ui", ["pyproject.toml"], ttl=600)
    [stolen] = locks.acquire(tmp_path, "api", ["pyproject.toml"], ttl=60, force=True)
    assert stolen.action == "steal" and stolen.previous == victim.lease
    assert locks.live_lease(tmp_path, "pyproject.toml") == stolen.lease
    steal = [e for e in events.read(tmp_path) if e["event"] == "lock.steal"]
    assert len(steal) == 1 and steal[0]["previous_stream"] == "ui" and steal[0]["stream"] == "api"
    # The victim can no longer release it.
    assert locks.release_lease(tmp_path, victim.lease) is False
    assert locks.live_lease(tmp_path, "pyproject.toml") == stolen.lease


def test_an_expired_lease_is_free_broken_and_taken(tmp_path: Path) -> None:
    [old] = locks.acquire(tmp_path, "ui", ["pyproject.toml"], ttl=0.001)
    time.sleep(0.01)
    assert locks.live_lease(tmp_path, "pyproject.toml") is None
    assert locks.list_leases(tmp_path) == [old.lease]  # expired ones are listed
    [taken] = locks.acquire(tmp_path, "api", ["pyproject.toml"], ttl=60)
    assert taken.action == "break" and taken.previous == old.lease
    assert locks.live_lease(tmp_path, "pyproject.toml") == taken.lease
    kinds = [e["event"] for e in events.read(tmp_path)]
    assert kinds == ["lock.take", "lock.expire", "lock.break", "lock.take"]
    assert not [p for p in locks.lease_file(tmp_path, "pyproject.toml").parent.iterdir() if ".broken" in p.name]


def test_a_damaged_lease_counts_as_expired(tmp_path: Path) -> None:
    file = locks.lease_file(tmp_path, "pyproject.toml")
    file.parent.mkdir(parents=True)
    file.write_text('{"path": "pyproject.toml", "str')
    damaged = locks.read_lease(tmp_path, "pyproject.toml")
    assert damaged is not None and not damaged.live()
    [taken] = locks.acquire(tmp_path, "api", ["pyproject.toml"], ttl=60)
    assert taken.action == "break"
    assert locks.live_lease(tmp_path, "pyproject.toml") == taken.lease


def test_release_is_for_the_holder_unless_forced(tmp_path: Path) -> None:
    [held] = locks.acquire(tmp_path, "ui", ["pyproject.toml"], ttl=600)
    with pytest.raises(locks.LockBusyError) as exc:
        locks.release(tmp_path, ["pyproject.toml"], stream="api")
    assert "only ui can unlock" in exc.value.message
    with pytest.raises(locks.NotLockedError):
        locks.release(tmp_path, ["pyproject.toml", "other.toml"], stream="ui")
    assert locks.live_lease(tmp_path, "pyproject.toml") == held.lease  # checked all before releasing any
    assert locks.release(tmp_path, ["pyproject.toml"], stream="api", force=True) == [held.lease]
    assert locks.read_lease(tmp_path, "pyproject.toml") is None
    [release] = [e for e in events.read(tmp_path) if e["event"] == "lock.release"]
    assert release["cause"] == "force" and release["by"] == "api" and release["stream"] == "ui"


def test_release_by_the_holder(tmp_path: Path) -> None:
    taken = locks.acquire(tmp_path, "api", ["a.toml", "b.toml"], ttl=600)
    released = locks.release(tmp_path, ["b.toml", "a.toml"], stream="api")
    assert released == [t.lease for t in taken]
    assert locks.list_leases(tmp_path) == []
    assert [e["cause"] for e in events.read(tmp_path) if e["event"] == "lock.release"] == ["unlock", "unlock"]


def test_release_committed_only_takes_until_commit_leases_of_that_stream(tmp_path: Path) -> None:
    locks.acquire(tmp_path, "api", ["a.toml"], ttl=600, until_commit=True)
    locks.acquire(tmp_path, "api", ["b.toml"], ttl=600)
    locks.acquire(tmp_path, "ui", ["c.toml"], ttl=600, until_commit=True)
    released, held = locks.release_committed(
        tmp_path, "api", ["a.toml", "b.toml", "c.toml", "not-locked.toml", "../bad"]
    )
    assert [lease.path for lease in released] == ["a.toml"] and held == []
    assert [lease.path for lease in locks.list_leases(tmp_path)] == ["b.toml", "c.toml"]
    [ev] = [e for e in events.read(tmp_path) if e["event"] == "lock.release"]
    assert ev["cause"] == "commit" and ev["path"] == "a.toml"


def test_release_stream_takes_all_of_its_leases(tmp_path: Path) -> None:
    locks.acquire(tmp_path, "api", ["a.toml", "sub/dir/b.toml"], ttl=600)
    locks.acquire(tmp_path, "ui", ["c.toml"], ttl=600)
    assert sorted(lease.path for lease in locks.release_stream(tmp_path, "api")) == ["a.toml", "sub/dir/b.toml"]
    assert [lease.path for lease in locks.list_leases(tmp_path)] == ["c.toml"]


def test_wait_retries_until_a_real_process_releases(tmp_path: Path) -> None:
    """Another process holds the lease and releases it after a moment; --wait gets it then."""
    script = (
        "import sys, time; from pathlib import Path; from streams.kernel import locks\n"
        "[t] = locks.acquire(Path(sys.argv[1]), 'ui', ['pyproject.toml'], ttl=600)\n"
        "print('held', flush=True); time.sleep(0.5); locks.release_lease(Path(sys.argv[1]), t.lease)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        said: list[str] = []
        [taken] = locks.acquire(tmp_path, "api", ["pyproject.toml"], ttl=60, wait=60, on_wait=said.append)
        assert taken.action == "take"
        assert len(said) == 1 and "stream ui" in said[0] and "waiting up to 1m 00s" in said[0]
    finally:
        assert proc.wait(timeout=30) == 0
    kinds = [e["event"] for e in events.read(tmp_path)]
    assert kinds == ["lock.take", "lock.wait", "lock.release", "lock.take"]


def test_wait_gives_up_with_busy(tmp_path: Path) -> None:
    locks.acquire(tmp_path, "ui", ["pyproject.toml"], ttl=600)
    with pytest.raises(locks.LockBusyError) as exc:
        locks.acquire(tmp_path, "api", ["pyproject.toml"], ttl=60, wait=0.2)
    assert "gave up after waiting" in exc.value.message


# --- paths ---------------------------------------------------------------------------------------------


def test_normalize_path(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    other = tmp_path / "main"
    other.mkdir()
    norm = functools.partial(paths.repo_path, strict=True)
    assert norm("pyproject.toml", cwd=root, roots=[root]) == "pyproject.toml"
    assert norm("./docs//CHANGELOG.md", cwd=root, roots=[root]) == "docs/CHANGELOG.md"
    assert norm("CHANGELOG.md", cwd=root / "docs", roots=[root]) == "docs/CHANGELOG.md"
    assert norm(str(root / "pyproject.toml"), cwd=root / "docs", roots=[root]) == "pyproject.toml"
    assert norm(str(other / "pyproject.toml"), cwd=root, roots=[root, other]) == "pyproject.toml"
    # `..` that stays inside the repository is fine; a leading / is the repository root, as in streams.yaml
    assert norm("../pyproject.toml", cwd=root / "docs", roots=[root]) == "pyproject.toml"
    assert norm("docs/../pyproject.toml", cwd=root, roots=[root]) == "pyproject.toml"
    assert norm("/pyproject.toml", cwd=root / "docs", roots=[root]) == "pyproject.toml"
    assert norm("/docs/CHANGELOG.md", cwd=root / "docs", roots=[root, other]) == "docs/CHANGELOG.md"
    for raw, cwd, why in [
        ("", root, "empty"),
        ("../../pyproject.toml", root / "docs", "outside"),
        ("/../pyproject.toml", root, "outside"),
        ("/etc/passwd", root, "outside"),
        (".git/config", root, ".git"),
        ("sub/.git/HEAD", root, ".git"),
        ("docs", root, "directory"),
        ("missing/", root, "directory"),
        (".", root, "root"),
        (str(root), root, "root"),
    ]:
        with pytest.raises(PathError) as exc:
            norm(raw, cwd=cwd, roots=[root])
        assert why in exc.value.message, (raw, exc.value.message)


# --- the commands ---------------------------------------------------------------------------------------


def test_lock_locks_unlock_from_a_worktree(started: Repo) -> None:
    api = started.worktree("api")
    res = run_cli(["lock", "pyproject.toml", "--reason", "bump deps", "--ttl", "45m"], api)
    assert res.code == 0, res.err
    assert res.out.startswith("locked pyproject.toml for api until ") and "(45m 00s)" in res.out
    lease = locks.live_lease(common(started), "pyproject.toml")
    assert lease is not None and lease.stream == "api" and lease.reason == "bump deps"

    listing = run_cli(["locks"], started.root)
    assert listing.code == 0
    header, row = listing.out.splitlines()
    assert header.split() == ["PATH", "STREAM", "HOLDER", "UNTIL", "LEFT", "REASON"]
    assert row.split()[:2] == ["pyproject.toml", "api"] and row.endswith("bump deps")

    data = json.loads(run_cli(["locks", "--json"], started.root).out)
    assert data["ok"] and data["command"] == "locks"
    [entry] = data["data"]["leases"]
    assert entry["path"] == "pyproject.toml" and entry["live"] is True and 0 < entry["seconds_left"] <= 2700
    assert entry["lease_id"] == lease.lease_id

    res = run_cli(["unlock", "pyproject.toml"], api)
    assert res.code == 0 and res.out == "unlocked pyproject.toml\n"
    assert run_cli(["locks"], started.root).out == "no locks held\n"


def test_relock_renews_and_says_so(started: Repo) -> None:
    api = started.worktree("api")
    assert run_cli(["lock", "pyproject.toml"], api).code == 0
    first = locks.live_lease(common(started), "pyproject.toml")
    res = run_cli(["lock", "pyproject.toml", "--ttl", "2h", "--json"], api)
    assert res.code == 0
    [entry] = json.loads(res.out)["data"]["leases"]
    assert entry["action"] == "renew" and first is not None and entry["lease_id"] == first.lease_id
    assert entry["expires_at"] > first.expires_at


def test_lock_held_by_another_stream_exits_3_naming_holder_and_expiry(started: Repo) -> None:
    assert run_cli(["lock", "pyproject.toml", "--reason", "deps"], started.worktree("ui")).code == 0
    lease = locks.live_lease(common(started), "pyproject.toml")
    assert lease is not None
    before = lease_files(started)
    res = run_cli(["lock", "pyproject.toml"], started.worktree("api"))
    assert res.code == 3 and res.out == ""
    assert "stream ui" in res.err and locks.clock(lease.expires_at) in res.err and "--wait" in res.err
    assert len(res.err.splitlines()) == 1
    assert lease_files(started) == before
    res = run_cli(["lock", "pyproject.toml", "--json"], started.worktree("api"))
    assert res.code == 3 and json.loads(res.out)["error"]["code"] == "busy"


def test_lock_wait_says_it_waits_then_gives_up(started: Repo) -> None:
    assert run_cli(["lock", "pyproject.toml"], started.worktree("ui")).code == 0
    res = run_cli(["lock", "pyproject.toml", "--wait", "300ms"], started.worktree("api"))
    assert res.code == 3
    first, last = res.err.splitlines()
    assert first.startswith("streams: pyproject.toml is locked by stream ui") and "waiting up to" in first
    assert last.startswith("streams: error:") and "gave up after waiting" in last
    assert [e["event"] for e in lock_events(started)] == ["lock.take", "lock.wait"]


def test_lock_force_steals_and_unlock_force(started: Repo) -> None:
    assert run_cli(["lock", "pyproject.toml"], started.worktree("ui")).code == 0
    res = run_cli(["lock", "pyproject.toml", "--force"], started.worktree("api"))
    assert res.code == 0 and res.out.startswith("stole pyproject.toml for api") and "from ui" in res.out
    res = run_cli(["unlock", "pyproject.toml"], started.worktree("ui"))
    assert res.code == 3 and "only api can unlock it" in res.err
    res = run_cli(["unlock", "pyproject.toml", "--force"], started.root)  # main worktree: no stream needed
    assert res.code == 0 and res.out == "unlocked pyproject.toml (held by api)\n"
    assert [e["event"] for e in lock_events(started)] == ["lock.take", "lock.steal", "lock.release"]


def test_several_paths_all_or_none_from_the_cli(started: Repo) -> None:
    assert run_cli(["lock", "CHANGELOG.md"], started.worktree("ui")).code == 0
    before = lease_files(started)
    res = run_cli(["lock", "pyproject.toml", "config/shared.toml", "CHANGELOG.md"], started.worktree("api"))
    assert res.code == 3
    assert {lease.path: lease.stream for lease in locks.list_leases(common(started))} == {"CHANGELOG.md": "ui"}
    assert set(lease_files(started)) - set(before) <= {".pyproject.toml.lock.guard", "config/.shared.toml.lock.guard"}
    res = run_cli(["lock", "pyproject.toml", "config/shared.toml"], started.worktree("api"))
    assert res.code == 0 and len(res.out.splitlines()) == 2


def test_lock_from_a_subdirectory_and_by_absolute_path(started: Repo) -> None:
    api = started.worktree("api")
    assert run_cli(["lock", "shared.toml"], api / "config").code == 0
    assert run_cli(["lock", str(api / "pyproject.toml")], api / "config").code == 0
    assert [lease.path for lease in locks.list_leases(common(started))] == ["config/shared.toml", "pyproject.toml"]


def test_lock_with_stream_option_from_the_main_worktree(started: Repo) -> None:
    res = run_cli(["lock", "pyproject.toml", "--stream", "ui", "--until-commit"], started.root)
    assert res.code == 0, res.err
    assert "released by your next commit of it" in res.out
    lease = locks.live_lease(common(started), "pyproject.toml")
    assert lease is not None and lease.stream == "ui" and lease.until_commit


@pytest.mark.parametrize(
    ("args", "where", "needle"),
    [
        (["lock", "../../pyproject.toml"], "api", "outside the repository"),
        (["lock", "/etc/hosts"], "api", "outside the repository"),
        (["lock", ".git/config"], "root:api", "under .git"),
        (["lock", "config"], "api", "directory"),
        (["lock", ""], "api", "empty path"),
        (["lock", "config/other.toml"], "api", "not a shared file: config/other.toml (unowned)"),
        (["lock", "src/api/app.py"], "api", "owned by api"),
        (["lock", "pyproject.toml", "src/ui/main.ts"], "api", "owned by ui"),
        (["lock", "pyproject.toml", "--ttl", "0m"], "api", "zero"),
        (["lock", "pyproject.toml", "--ttl", "-5m"], "api", "negative"),
        (["lock", "pyproject.toml", "--ttl", "soon"], "api", "not a duration"),
        (["lock", "pyproject.toml", "--ttl", "30"], "api", "no unit"),
        (["lock", "pyproject.toml", "--wait", "-1s"], "api", "negative"),
        (["lock", "pyproject.toml"], "root", "not inside a stream's worktree"),
        (["lock", "pyproject.toml", "--stream", "nope"], "root", "unknown stream 'nope'"),
        (["unlock", "pyproject.toml"], "api", "not locked"),
        (["unlock", "../../x.toml"], "api/config", "outside the repository"),
        (["unlock", "pyproject.toml"], "root", "not inside a stream's worktree"),
    ],
)
def test_bad_input_exits_1_and_writes_nothing(started: Repo, args: list[str], where: str, needle: str) -> None:
    """Exit 1, except "not inside a stream's worktree": a usage error (exit 2) in every command."""
    if where == "root:api":
        cwd = started.root
        args = [*args, "--stream", "api"]
    elif where == "root":
        cwd = started.root
    else:
        cwd = started.worktree("api") / where[len("api/") :] if where.startswith("api/") else started.worktree("api")
    before = (started.snapshot(), state(started))
    res = run_cli(args, cwd)
    assert res.code == (2 if "not inside" in needle else 1), (res.code, res.err)
    assert needle in res.err and len(res.err.splitlines()) == 1 and res.err.startswith("streams: error: ")
    assert (started.snapshot(), state(started)) == before


def test_stop_releases_the_streams_leases(started: Repo) -> None:
    assert run_cli(["lock", "pyproject.toml", "CHANGELOG.md"], started.worktree("ui")).code == 0
    assert run_cli(["lock", "config/shared.toml"], started.worktree("api")).code == 0
    res = run_cli(["stop", "ui", "--json"], started.root)
    assert res.code == 0, res.err
    [result] = json.loads(res.out)["data"]["streams"]
    assert sorted(result["released_locks"]) == ["CHANGELOG.md", "pyproject.toml"]
    assert [lease.path for lease in locks.list_leases(common(started))] == ["config/shared.toml"]
    stops = [e for e in lock_events(started) if e["event"] == "lock.release"]
    assert {e["path"] for e in stops} == {"CHANGELOG.md", "pyproject.toml"} and {e["cause"] for e in stops} == {"stop"}


def test_locks_shows_expired_leases_as_expired(started: Repo) -> None:
    assert run_cli(["lock", "pyproject.toml"], started.worktree("ui")).code == 0
    expire_now(started, "pyproject.toml", ago=125)
    res = run_cli(["locks"], started.root)
    assert "expired 2m 05s ago" in res.out.splitlines()[1]
    [entry] = json.loads(run_cli(["locks", "--json"], started.root).out)["data"]["leases"]
    assert entry["live"] is False and entry["seconds_left"] < 0
    # ...and another stream takes it over, logged as expire + break.
    res = run_cli(["lock", "pyproject.toml"], started.worktree("api"))
    assert res.code == 0 and "took over the expired lease of ui" in res.out
    assert [e["event"] for e in lock_events(started)][-3:] == ["lock.expire", "lock.break", "lock.take"]


def test_every_command_has_help(started: Repo) -> None:
    for cmd in ("lock", "unlock", "locks"):
        res = run_cli([cmd, "--help"], started.root)
        assert res.code == 0 and "Usage: streams " + cmd in res.out


# --- enforcement by the hooks (streams/hook.py, from the scope issue) --------------------------------------


def _commit(repo: Repo, wt: Path, rel: str, text: str) -> subprocess.CompletedProcess[str]:
    repo.write(rel, text, cwd=wt)
    repo.git("add", rel, cwd=wt)
    return subprocess.run(["git", "commit", "-q", "-m", f"change {rel}"], cwd=wt, capture_output=True, text=True)


def test_commit_of_a_shared_file_needs_the_lease(started: Repo) -> None:
    api = started.worktree("api")
    res = _commit(started, api, "pyproject.toml", "[project]\nname = 'x'\n")
    assert res.returncode != 0
    assert "streams lock pyproject.toml" in res.stderr
    assert run_cli(["lock", "pyproject.toml"], api).code == 0
    res = subprocess.run(["git", "commit", "-q", "-m", "bump"], cwd=api, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert started.git("log", "-1", "--format=%s", cwd=api).strip() == "bump"
    # The lease was not --until-commit: still held after the commit.
    assert locks.live_lease(common(started), "pyproject.toml") is not None


def test_commit_names_the_holder_when_another_stream_has_the_lease(started: Repo) -> None:
    assert run_cli(["lock", "pyproject.toml"], started.worktree("ui")).code == 0
    res = _commit(started, started.worktree("api"), "pyproject.toml", "[project]\nname = 'y'\n")
    assert res.returncode != 0 and "ui" in res.stderr


def test_until_commit_lease_is_held_from_the_commit_until_it_lands(started: Repo) -> None:
    api = started.worktree("api")
    assert run_cli(["lock", "pyproject.toml", "CHANGELOG.md", "--until-commit"], api).code == 0
    res = _commit(started, api, "pyproject.toml", "[project]\nname = 'z'\n")
    assert res.returncode == 0, res.stderr
    assert "stays until this commit lands" in res.stderr
    held = locks.read_lease(common(started), "pyproject.toml")
    assert held is not None and held.landing == started.git("rev-parse", "HEAD", cwd=api).strip()
    # CHANGELOG.md was not in the commit: still an ordinary --until-commit lease.
    other = locks.read_lease(common(started), "CHANGELOG.md")
    assert other is not None and other.landing == ""
    assert run_cli(["merge", "api", "--keep"], started.root).code == 0
    assert locks.list_leases(common(started)) == []  # landed: every lease of the stream released


def test_an_expired_lease_does_not_let_a_commit_through(started: Repo) -> None:
    api = started.worktree("api")
    assert run_cli(["lock", "pyproject.toml"], api).code == 0
    expire_now(started, "pyproject.toml")
    res = _commit(started, api, "pyproject.toml", "[project]\nname = 'late'\n")
    assert res.returncode != 0 and "pyproject.toml" in res.stderr


def test_no_verify_does_not_skip_the_lease_check(started: Repo) -> None:
    """pre-commit is skipped by --no-verify; the reference-transaction hook still refuses."""
    api = started.worktree("api")
    tip = started.git("rev-parse", "HEAD", cwd=api).strip()
    started.write("pyproject.toml", "[project]\nname = 'sneaky'\n", cwd=api)
    started.git("add", "pyproject.toml", cwd=api)
    res = subprocess.run(["git", "commit", "-q", "--no-verify", "-m", "x"], cwd=api, capture_output=True, text=True)
    assert res.returncode != 0 and "pyproject.toml" in res.stderr
    assert started.git("rev-parse", "HEAD", cwd=api).strip() == tip
    assert run_cli(["lock", "pyproject.toml"], api).code == 0
    res = subprocess.run(["git", "commit", "-q", "--no-verify", "-m", "x"], cwd=api, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_lock_reads_paths_as_owner_does(started: Repo) -> None:
    """One normaliser: `..` inside the repository and a leading / (the repository root) both work;
    a path that does not exist yet is locked with a warning."""
    api = started.worktree("api")
    (api / "config").mkdir(exist_ok=True)
    res = run_cli(["lock", "../pyproject.toml", "--json"], api / "config")
    assert res.code == 0, res.err
    assert [lease["path"] for lease in json.loads(res.out)["data"]["leases"]] == ["pyproject.toml"]
    assert run_cli(["unlock", "/pyproject.toml"], api / "config").code == 0
    assert locks.live_lease(common(started), "pyproject.toml") is None
    (api / "pyproject.toml").unlink()
    (started.root / "pyproject.toml").unlink()
    res = run_cli(["lock", "/pyproject.toml"], api)
    assert res.code == 0 and "pyproject.toml does not exist (yet); locking it anyway" in res.err
