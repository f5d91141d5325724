"""`streams status --watch` in a real terminal: tmux runs it, capture-pane reads the screen."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.progress import Progress, render
from tests.conftest import Repo, run_cli

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed; the live view's terminal tests drive it through tmux (apt-get install tmux)",
)

STARTUP_SECONDS = 30.0  # interpreter start and the first snapshot on a busy machine
REACT_SECONDS = 2.0  # the acceptance bound: a change is on screen within 2 s


class Tmux:
    """A private tmux server (its own socket) with one 200x50 session."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.session = "t"

    def __call__(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args], capture_output=True, text=True, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout

    def start(self, command: str, cwd: Path, session: str = "t") -> None:
        self("new-session", "-d", "-s", session, "-x", "200", "-y", "50", "-c", str(cwd), command)
        self.session = session

    def screen(self, escapes: bool = False) -> str:
        return self("capture-pane", "-p", "-t", self.session, *(["-e"] if escapes else []))

    def fmt(self, what: str) -> str:
        return self("display-message", "-p", "-t", "t", what).strip()


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    # A short socket path: unix sockets are limited to ~100 bytes and pytest's tmp paths are long.
    home = Path(tempfile.mkdtemp(prefix="st-tmux-"))
    t = Tmux(home / "sock")
    try:
        yield t
    finally:
        t("kill-server", check=False)
        shutil.rmtree(home, ignore_errors=True)


def watch_command(*args: str, color: bool = False) -> str:
    """The pane's command: the dashboard, then its exit code, then a pause so the pane stays."""
    env = "env -u NO_COLOR" if color else "env NO_COLOR=1"
    argv = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "streams", "status", "--watch", *args])
    return f"{env} {argv}; echo exit=$?; sleep 120"


def wait_screen(tmux: Tmux, pred: Callable[[str], bool], within: float, what: str, escapes: bool = False) -> str:
    deadline = time.monotonic() + within
    while True:
        screen = tmux.screen(escapes)
        if pred(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"not on screen within {within:g} s: {what}\n--- screen ---\n{screen}")
        time.sleep(0.05)


def colours_in(screen: str) -> set[str]:
    """Foreground/background colour codes among the SGR sequences (not bold, dim or resets)."""
    found: set[str] = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", screen):
        for code in params.split(";"):
            if code and (
                30 <= int(code) <= 37 or 40 <= int(code) <= 47 or 90 <= int(code) <= 107 or code in ("38", "48")
            ):
                found.add(code)
    return found


def row_of(screen: str, name: str) -> str:
    return next((ln for ln in screen.splitlines() if ln.split(" ", 1)[0] == name), "")


def start(repo: Repo, *names: str) -> None:
    r = run_cli(["start", *names], repo.root)
    assert r.code == 0, r.err


def commit(repo: Repo, wt: Path, rel: str, content: str) -> None:
    repo.write(rel, content, cwd=wt)
    repo.git("add", "--", rel, cwd=wt)
    repo.git("commit", "-q", "-m", f"change {rel}", cwd=wt)


def test_live_view_shows_the_table_and_follows_commits_and_progress(repo: Repo, tmux: Tmux) -> None:
    start(repo, "api", "ui")
    tmux.start(watch_command("--interval", "1"), repo.root)
    screen = wait_screen(tmux, lambda s: "pending" in row_of(s, "api"), STARTUP_SECONDS, "the first table")
    assert "STREAM" in screen and "AHEAD/BEHIND" in screen and "not started" in row_of(screen, "docs")
    assert screen.splitlines()[0].startswith("3 streams · 0 active")
    assert "+0 -0" in row_of(screen, "api")  # start's progress commit is bookkeeping

    commit(repo, repo.worktree("api"), "src/api/app.py", "v2\n")
    wait_screen(tmux, lambda s: "+1 -0" in row_of(s, "api"), REACT_SECONDS, "the commit (+1 ahead)")

    p = Progress.new("api").with_changes(status="in_progress", completion=70, current="wiring the live view")
    commit(repo, repo.worktree("api"), ".streams/stream-api.md", render(p))
    wait_screen(
        tmux,
        lambda s: "wiring the live view" in row_of(s, "api") and "70%" in row_of(s, "api"),
        REACT_SECONDS,
        "the progress update",
    )

    tmux("send-keys", "-t", "t", "C-c")
    screen = wait_screen(tmux, lambda s: "exit=" in s, 10, "the exit code after Ctrl-C")
    assert "exit=130" in screen and "Traceback" not in screen
    assert "STREAM" not in screen  # the alternate screen is gone: the terminal is as it was
    assert tmux.fmt("#{alternate_on}") == "0"
    assert tmux.fmt("#{cursor_flag}") == "1"


def test_file_events_refresh_long_before_the_timer(repo: Repo, tmux: Tmux) -> None:
    """With a 60 s timer only file events can bring a change on screen within 2 s — also for a
    worktree that appears while the view runs, and for one that disappears."""
    start(repo, "api")
    tmux.start(watch_command("--interval", "60s"), repo.root)
    wait_screen(tmux, lambda s: "pending" in row_of(s, "api"), STARTUP_SECONDS, "the first table")

    commit(repo, repo.worktree("api"), "src/api/app.py", "v2\n")
    wait_screen(tmux, lambda s: "+1 -0" in row_of(s, "api"), REACT_SECONDS, "the commit")

    repo.write("src/api/app.py", "uncommitted\n", cwd=repo.worktree("api"))
    wait_screen(tmux, lambda s: " 1 " in row_of(s, "api"), REACT_SECONDS, "one dirty file")
    # Committing touches no file of the worktree, only its index and branch: still seen at once.
    repo.git("commit", "-q", "-am", "commit the edit", cwd=repo.worktree("api"))
    wait_screen(tmux, lambda s: "+2 -0" in row_of(s, "api") and " 0 " in row_of(s, "api"), REACT_SECONDS, "clean")

    start(repo, "docs")  # a worktree appears
    wait_screen(tmux, lambda s: "pending" in row_of(s, "docs"), REACT_SECONDS, "the new worktree")
    repo.write("docs/new.md", "x\n", cwd=repo.worktree("docs"))  # an edit in it: the new worktree is watched
    wait_screen(tmux, lambda s: " 1 " in row_of(s, "docs"), REACT_SECONDS, "a dirty file in the new worktree")

    shutil.rmtree(repo.worktree("docs"))  # a worktree disappears
    wait_screen(tmux, lambda s: "ERROR: worktree" in row_of(s, "docs"), REACT_SECONDS, "the vanished worktree")
    assert "+2 -0" in row_of(tmux.screen(), "api")  # the rest still renders

    repo.git("worktree", "prune")
    start(repo, "docs")  # back at the same path: watched again
    wait_screen(tmux, lambda s: "pending" in row_of(s, "docs"), REACT_SECONDS, "the restarted worktree")
    repo.write("docs/again.md", "x\n", cwd=repo.worktree("docs"))
    wait_screen(tmux, lambda s: " 1 " in row_of(s, "docs"), REACT_SECONDS, "a dirty file in the restarted worktree")
    tmux("send-keys", "-t", "t", "C-c")
    assert "exit=130" in wait_screen(tmux, lambda s: "exit=" in s, 10, "the exit code")


def test_live_view_survives_a_resize(repo: Repo, tmux: Tmux) -> None:
    start(repo, "api")
    tmux.start(watch_command("--interval", "60s"), repo.root)
    wait_screen(tmux, lambda s: "AGENT" in s and "pending" in row_of(s, "api"), STARTUP_SECONDS, "the table")
    tmux("resize-window", "-t", "t", "-x", "110", "-y", "30")
    # Repainted for the narrower terminal: the least important columns are left out and named.
    screen = wait_screen(tmux, lambda s: "hidden for width" in s, REACT_SECONDS, "the narrow repaint")
    assert all(len(ln.rstrip()) <= 110 for ln in screen.splitlines())
    assert "STREAM" in screen and "pending" in row_of(screen, "api") and "Ctrl-C" in screen
    tmux("resize-window", "-t", "t", "-x", "200", "-y", "50")
    wait_screen(
        tmux, lambda s: "AGENT" in s and "LAST COMMIT" in s and "hidden" not in s, REACT_SECONDS, "the wide repaint"
    )
    tmux("send-keys", "-t", "t", "C-c")
    assert "exit=130" in wait_screen(tmux, lambda s: "exit=" in s, 10, "the exit code")


def test_colour_on_a_terminal_and_none_with_no_color(repo: Repo, tmux: Tmux) -> None:
    start(repo, "api")
    repo.write("README.md", "the base moves\n")
    repo.commit_all("base moves")  # api is behind: shown in yellow
    tmux.start(watch_command("--interval", "60s", color=True), repo.root)
    screen = wait_screen(
        tmux, lambda s: "pending" in s and "\x1b[" in s, STARTUP_SECONDS, "a coloured table", escapes=True
    )
    assert colours_in(screen)
    tmux.start(watch_command("--interval", "60s", color=False), repo.root, session="plain")
    screen = wait_screen(tmux, lambda s: "pending" in s, STARTUP_SECONDS, "the table", escapes=True)
    assert not colours_in(screen), screen
