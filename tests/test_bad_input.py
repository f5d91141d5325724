"""Bad input and a bad environment are never a crash (issue 11, item 8): one clear line on stderr,
the documented exit code, no traceback, nothing on disk changed.

Real repositories, real worktrees, real git; the full disk and the read-only ``.git`` are made for
real (a private mount namespace when the machine allows one, else a file-size limit or chmod).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.kernel import locks
from tests.conftest import Outcome, Repo, disk_snapshot, git, make_repo, run_cli, write


def assert_clean_failure(r: Outcome, code: int, needle: str) -> None:
    """One line on stderr, naming ``needle``, exit ``code``; never the internal error."""
    assert r.code == code, r
    assert "Traceback" not in r.err and "internal error" not in r.err, r
    assert r.err.count("\n") == 1 and r.err.startswith("streams: error: "), r
    assert needle in r.err, r


@pytest.fixture
def started(repo: Repo) -> Repo:
    r = run_cli(["start", "api", "docs"], repo.root)
    assert r.code == 0, r
    return repo


def lease_path(repo: Repo, path: str) -> Path:
    return locks.lease_file(repo.root / ".git", path)


def write_lease(repo: Repo, path: str, **fields: object) -> Path:
    """A lease file as a hand (or a broken writer) could leave it: raw JSON text, values as given."""
    now = time.time()
    data: dict[str, object] = {
        "version": 1,
        "path": path,
        "stream": "docs",
        "holder": "someone@host",
        "pid": 1,
        "acquired_at": now,
        "expires_at": now + 3600,
        "lease_id": "feedfeedfeedfeed",
        "reason": "",
        "until_commit": False,
    }
    data.update(fields)
    text = json.dumps(data)
    for key, value in fields.items():  # NaN, Infinity, 1e400 as JSON text, not as Python floats
        if isinstance(value, str) and key.endswith("_at"):
            text = text.replace(f'"{key}": "{value}"', f'"{key}": {value}')
    file = lease_path(repo, path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    return file


# --- leases with times that are no moment -----------------------------------------------------------


@pytest.mark.parametrize("moment", ["NaN", "Infinity", "-Infinity", "1e400", "1e300"])
def test_lease_file_with_a_time_that_is_no_moment_reads_as_damaged(started: Repo, moment: str) -> None:
    wt = started.worktree("api")
    write_lease(started, "pyproject.toml", acquired_at=moment, expires_at=moment)
    for args in (["locks"], ["status"], ["locks", "--json"]):
        r = run_cli(args, wt)
        assert r.code == 0 and "Traceback" not in r.err, (args, r)
    listed = json.loads(run_cli(["locks", "--json"], wt).out)["data"]["leases"]
    assert [(x["path"], x["reason"], x["live"]) for x in listed] == [("pyproject.toml", "damaged lease file", False)]
    r = run_cli(["lock", "--force", "pyproject.toml"], wt)  # stole, then crashed formatting the victim's expiry
    assert r.code == 0, r
    assert "took over the expired lease of nobody (damaged file)" in r.out
    lease = locks.read_lease(started.root / ".git", "pyproject.toml")
    assert lease is not None and lease.stream == "api" and lease.live()


def test_lease_with_an_empty_holder_names_an_unknown_holder(started: Repo) -> None:
    write_lease(started, "pyproject.toml", holder="")
    r = run_cli(["lock", "pyproject.toml"], started.worktree("api"))
    assert_clean_failure(r, 3, "locked by stream docs (unknown holder)")
    assert "unknown holder" in run_cli(["locks"], started.root).out


# --- text that is not UTF-8 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ([b"lock", b"pyproject.toml", b"--reason", b"\xff\xfe"], "'--reason'"),
        ([b"progress", b"--done", b"caf\xe9"], "'--done'"),
        ([b"progress", b"--current", b"x\xff"], "'--current'"),
        ([b"progress", b"--agent", b"\xc3"], "'--agent'"),
    ],
)
def test_text_option_that_is_not_utf8_is_a_usage_error(started: Repo, args: list[bytes], option: str) -> None:
    wt = started.worktree("api")
    before = disk_snapshot(started.root.parent)
    proc = subprocess.run([sys.executable, "-m", "streams", *args], cwd=wt, capture_output=True, check=False)
    r = Outcome(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert_clean_failure(r, 2, f"Invalid value for {option}: is not valid UTF-8 text")
    assert disk_snapshot(started.root.parent) == before


def test_file_name_that_is_not_utf8_is_shown_escaped(repo: Repo) -> None:
    """Its bytes stay as they are (a file name need not be UTF-8); a strict UTF-8 stdout gets them
    as \\xNN, the JSON envelope as \\udcNN escapes."""
    r = run_cli(["owner", "caf\udce9", "README.md"], repo.root)
    assert r.code == 0 and "caf\\xe9" in r.out, r
    r = run_cli(["owner", "--json", "caf\udce9"], repo.root)
    assert r.code == 0, r
    assert json.loads(r.out)["data"]["paths"][0]["path"] == "caf\udce9"


# --- durations and intervals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "needle"),
    [
        ("1000000000000000d", "is longer than 366d"),
        ("9" * 400 + "s", "is longer than 366d"),
        ("0.5ms", "is shorter than 1s"),
        ("٣m", "is not a duration"),
    ],
)
def test_lock_ttl_out_of_range_is_refused(started: Repo, ttl: str, needle: str) -> None:
    before = disk_snapshot(started.root.parent)
    r = run_cli(["lock", "pyproject.toml", "--ttl", ttl], started.worktree("api"))
    assert_clean_failure(r, 1, needle)
    assert disk_snapshot(started.root.parent) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sync", "--watch", "--interval", "0.0001"], "is below 0.1s"),
        (["sync", "--watch", "--interval", "9" * 400], "is longer than 1d"),
        (["sync", "--watch", "--interval", "2d"], "is longer than 1d"),
        (["status", "--watch", "--interval", "9" * 400], "is longer than 1d"),
    ],
)
def test_interval_out_of_range_is_refused(started: Repo, args: list[str], needle: str) -> None:
    before = disk_snapshot(started.root.parent)
    r = run_cli(args, started.root)
    assert r.code == 2, r
    assert "Traceback" not in r.err and needle in r.err and r.err.count("\n") == 1, r
    assert disk_snapshot(started.root.parent) == before


# --- progress text ------------------------------------------------------------------------------------


def test_60kb_progress_texts_are_committed(started: Repo) -> None:
    """The commit message holds every text: past 128 KB one argv string is E2BIG, so it goes by file."""
    wt = started.worktree("api")
    text = "x" * 60_000
    r = run_cli(["progress", "--done", "d" + text, "--current", "c" + text, "--next", "n" + text], wt)
    assert r.code == 0, r.err[-500:]
    body = started.git("log", "-1", "--format=%B", cwd=wt)
    assert len(body) > 180_000 and f"current: c{text}" in body
    assert f"c{text}" in (wt / ".streams/stream-api.md").read_text()


@pytest.mark.parametrize("value", ["٣", "３", "4_0"])
def test_completion_takes_ascii_digits_only(started: Repo, value: str) -> None:
    wt = started.worktree("api")
    before = disk_snapshot(started.root.parent)
    r = run_cli(["progress", "--completion", value], wt)
    assert_clean_failure(r, 2, "is not a number")
    assert disk_snapshot(started.root.parent) == before


def test_current_task_that_reads_as_a_heading_is_refused(started: Repo) -> None:
    wt = started.worktree("api")
    before = disk_snapshot(started.root.parent)
    r = run_cli(["progress", "--current", "## Next Steps"], wt)
    assert_clean_failure(r, 2, "would be read back as a section heading")
    assert disk_snapshot(started.root.parent) == before
    r = run_cli(["progress", "--next", "## still a step"], wt)  # a list item keeps its "- ": fine
    assert r.code == 0 and "## still a step" in run_cli(["progress"], wt).out


# --- streams.yaml that YAML itself makes hard ---------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("version: 1\nbase: main\nstreams:\n  api:\n    owns: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ("version: 1\nbase: main\nx: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
        (
            "version: 1\nbase: main\nstreams:\n  api: &a {owns: [src/api/**]}\n  ui:\n    <<: *a\n",
            "streams.yaml:6: merge keys (`<<:`) are not supported",
        ),
        ("<<: {version: 1}\nbase: main\n", "streams.yaml:1: merge keys"),
        ("version: 1\nbase: main\nstreams:\n  api: {owns: ['src/[z-a]']}\n", "not a valid gitignore pattern"),
        ("version: 1\nbase: main\nshared: ['[z-a]']\n", "streams.yaml:3: shared: pattern '[z-a]'"),
        ("version: 1\nbase: !!python/object:os.system main\n", "YAML tag"),
        ("version: 1\nbase: !custom main\n", "YAML tag '!custom'"),
        ("version: 1\nbase: main\nstreams:\n  api: {parallel: !!bool maybe}\n", "'maybe' cannot be read as"),
        ("version: !!int one\nbase: main\n", "'one' cannot be read as a number"),
        ("version: !!int ''\nbase: main\n", "'' cannot be read as a number"),
        ("version: 1\nbase: !!timestamp x\n", "'x' cannot be read as a date"),
        ('version: 1\nbase: "\\uDCFF"\n', "lone surrogate"),
        ('version: 1\nbase: main\nstreams:\n  "a\\uD800": {}\n', "lone surrogate"),
    ],
)
def test_yaml_that_cannot_be_a_config_is_a_config_error(tmp_path: Path, config: str, needle: str) -> None:
    repo = make_repo(tmp_path, config=config)
    before = disk_snapshot(tmp_path)
    for args in (["list"], ["start", "api"], ["verify"]):
        r = run_cli(args, repo.root)
        assert_clean_failure(r, 1, needle)
    assert disk_snapshot(tmp_path) == before


# --- a bad environment: read-only .git, a full disk ---------------------------------------------------


def _can_unshare_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    flags = [] if os.geteuid() == 0 else ["-r"]
    probe = subprocess.run(
        ["unshare", *flags, "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || exit 9"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _in_namespace(setup: str, cwd: Path, *args: str) -> Outcome:
    """``python -m streams ARGS`` after ``setup`` (mounts), in a private mount namespace that dies
    with it: the host sees none of the mounts."""
    flags = [] if os.geteuid() == 0 else ["-r"]
    script = f'{setup} && exec "$0" -m streams "$@"'
    proc = subprocess.run(
        ["unshare", *flags, "-m", "sh", "-c", script, sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def test_read_only_git_dir_says_so_and_exits_1(started: Repo) -> None:
    wt = started.worktree("api")
    common = started.root / ".git"
    if _can_unshare_mount():  # root ignores chmod: a read-only bind mount of the common dir
        r = _in_namespace(
            f"mount --bind {common} {common} && mount -o remount,bind,ro {common}", wt, "lock", "pyproject.toml"
        )
        said = "Read-only file system"
    elif os.geteuid() != 0:
        for d in [common, *(p for p in common.rglob("*") if p.is_dir())]:
            d.chmod(0o555)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "streams", "lock", "pyproject.toml"],
                cwd=wt,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            for d in [common, *(p for p in common.rglob("*") if p.is_dir())]:
                d.chmod(0o755)
        r = Outcome(proc.returncode, proc.stdout, proc.stderr)
        said = "Permission denied"
    else:
        pytest.skip("root without mount namespaces: no way to make .git read-only")
    assert_clean_failure(r, 1, said)
    assert "the file system refused" in r.err
    assert locks.read_lease(common, "pyproject.toml") is None


def test_full_disk_says_so_and_exits_1(started: Repo) -> None:
    """A tiny full tmpfs over the common dir's streams/ when mounts are possible (ENOSPC); else a
    file-size limit in the child (EFBIG): the lease cannot be written either way."""
    wt = started.worktree("api")
    state = started.root / ".git" / "streams"
    if _can_unshare_mount():
        fill = f"dd if=/dev/zero of={state}/fill bs=4096 count=64 2>/dev/null; true"
        r = _in_namespace(f"mount -t tmpfs -o size=16k tmpfs {state} && {fill}", wt, "lock", "pyproject.toml")
        said = "No space left on device"
    else:
        import resource

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))

        proc = subprocess.run(
            [sys.executable, "-m", "streams", "lock", "pyproject.toml"],
            cwd=wt,
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=limit,
        )
        r = Outcome(proc.returncode, proc.stdout, proc.stderr)
        said = "File too large"
    assert_clean_failure(r, 1, said)
    assert locks.read_lease(started.root / ".git", "pyproject.toml") is None


# --- where the repository is ----------------------------------------------------------------------------


def test_repository_inside_a_submodule_finds_its_streams_yaml(tmp_path: Path) -> None:
    inner = make_repo(tmp_path)
    outer = tmp_path / "outer"
    outer.mkdir()
    git(outer, "init", "-q", "-b", "main")
    write(outer, "f.txt")
    git(outer, "add", "f.txt")
    git(outer, "commit", "-q", "-m", "outer")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner.root), "sub")
    sub = outer / "sub"
    r = run_cli(["list"], sub)
    assert r.code == 0 and "api" in r.out, r
    r = run_cli(["start", "api"], sub)
    assert r.code == 0, r
    wt = outer / "sub.streams" / "api"
    assert (wt / "src/api/app.py").is_file()
    r = run_cli(["lock", "pyproject.toml"], wt)  # from the stream's worktree, a linked one of the submodule
    assert r.code == 0, r
    r = run_cli(["list"], wt)
    assert r.code == 0 and "started" in r.out, r


# --- messages that stay one line, stops that lose nothing ----------------------------------------------


def test_path_with_a_newline_keeps_every_message_on_one_line(tmp_path: Path) -> None:
    config = "version: 1\nbase: main\nshared: ['/a*']\nstreams:\n  api: {owns: [src/**]}\n  docs: {owns: [docs/**]}\n"
    repo = make_repo(tmp_path, files={"src/x": "x\n", "docs/x": "x\n", "a\nb": "x\n"}, config=config)
    assert run_cli(["start", "api", "docs"], repo.root).code == 0
    r = run_cli(["lock", "a\nb", "--reason", "one\ntwo"], repo.worktree("docs"))
    assert r.code == 0 and r.out.count("\n") == 1 and r.out.startswith('locked "a\\nb" for docs'), r
    r = run_cli(["lock", "a\nb"], repo.worktree("api"))
    assert_clean_failure(r, 3, '"a\\nb" is locked by stream docs')
    assert "one\\ntwo" in r.err
    out = run_cli(["locks"], repo.root).out
    assert out.count("\n") == 2 and '"a\\nb"' in out and '"one\\ntwo"' in out, out


def test_stop_force_keeps_ignored_files(started: Repo) -> None:
    wt = started.worktree("api")
    write(started.root / ".git", "info/exclude", ".env\nbuild/\n")  # ignored in every worktree
    write(wt, ".env", "SECRET=1\n")
    write(wt, "build/out.bin", "x\n")
    write(wt, "src/api/wip.py", "wip\n")  # uncommitted: saved to a ref, as before
    r = run_cli(["stop", "--force", "api"], started.root)
    assert r.code == 0, r
    assert not wt.exists()
    kept = sorted((started.root / ".git/streams/kept/api").glob("*/.env"))
    assert len(kept) == 1 and kept[0].read_text() == "SECRET=1\n"
    assert "ignored files kept in" in r.out and ".env" in r.out
    assert "ignored directories removed with the worktree: build/" in r.out
    data = json.loads(run_cli(["stop", "--json", "--force", "docs"], started.root).out)["data"]
    assert data["streams"][0]["kept_ignored"] == [] and data["streams"][0]["kept_in"] is None
