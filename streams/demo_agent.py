"""The demo agent, and the fake agent of the tests: ``python -m streams.demo_agent [options]``.

It stands where a real coding agent stands under ``streams run`` (DESIGN "Agent contract"): it
starts in its stream's worktree with the ``STREAMS_*`` environment, knows only ``git`` and the
``streams`` command line (so it runs both as processes, through no door of this package, as an
LLM agent would), and ends with an exit code that claims something. By default it does what the
demo shows: asks ``streams brief --json`` what it may touch, makes ``--steps`` in-scope commits,
each followed by ``streams progress``, marks itself done and exits 0.

The other options make it misbehave on purpose, so the runner's every path is exercised by a real
process: ``--exit CODE``, ``--blocked QUESTION`` (exit 3), ``--tempfail`` (exit 75, "rate
limited"), ``--hang`` / ``--hang-quietly`` (with ``--chatter S``: a log line every S seconds),
``--ignore-term``, ``--spawn-child`` (a child in the same process group that outlives it),
``--crash SIGNAL``, ``--out-of-scope PATH`` (committed with ``--no-verify``), ``--leave-dirty``,
``--no-commit``, ``--claim-done`` (a progress file that says completed 100 %, and no work).
``--scenario FILE`` picks the options per stream and attempt from a JSON file::

    {"api": [["--tempfail"], []], "ui": [["--exit", "1"]], "*": [[]]}

attempt N of stream S takes S's entry N-1 (the last one repeats), ``"*"`` answers for a stream
not named; the command-line options come first, the scenario's are added after them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

FOREVER = 10**9  # seconds: "until killed"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m streams.demo_agent", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3, help="in-scope commits to make (default 3)")
    p.add_argument("--sleep", type=float, default=0.2, help="seconds between steps (default 0.2)")
    p.add_argument("--exit", type=int, default=0, dest="exit_code", help="exit with CODE after the steps")
    p.add_argument("--blocked", metavar="QUESTION", help="write QUESTION to Blocked Items and exit 3")
    p.add_argument("--tempfail", action="store_true", help="print `rate limited` and exit 75")
    p.add_argument("--hang", action="store_true", help="after the steps, sleep until killed")
    p.add_argument("--hang-quietly", action="store_true", help="print nothing at all, then sleep until killed")
    p.add_argument("--chatter", type=float, metavar="S", help="while sleeping, print a line every S seconds")
    p.add_argument("--ignore-term", action="store_true", help="ignore SIGTERM (only SIGKILL ends it)")
    p.add_argument("--spawn-child", action="store_true", help="start a child in its process group that outlives it")
    p.add_argument(
        "--crash", type=signal_of, metavar="SIGNAL", help="after the steps, kill itself by SIGNAL (TERM, KILL, SEGV...)"
    )
    p.add_argument("--out-of-scope", metavar="PATH", help="commit PATH with --no-verify (lands out of scope)")
    p.add_argument("--leave-dirty", action="store_true", help="leave an uncommitted in-scope file behind")
    p.add_argument("--no-commit", action="store_true", help="do nothing and exit 0")
    p.add_argument(
        "--claim-done", action="store_true", help="commit a progress file saying completed 100%%, do no work, exit"
    )
    p.add_argument("--scenario", metavar="FILE", help="JSON: stream -> list of per-attempt option lists")
    return p


def signal_of(text: str) -> signal.Signals:
    """``TERM``, ``SIGTERM`` or ``15`` as a signal (argparse says which values are not one)."""
    name = text.upper() if text.upper().startswith("SIG") else f"SIG{text.upper()}"
    try:
        return signal.Signals(int(text)) if text.isdigit() else signal.Signals[name]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a signal (e.g. TERM, KILL, SEGV, 9)") from None


def scenario_options(path: str, stream: str, attempt: int) -> list[str]:
    """The options ``path`` gives ``stream``'s attempt ``attempt`` (the last entry repeats)."""
    table = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = table.get(stream, table.get("*", [[]]))
    if not entries:
        return []
    return [str(o) for o in entries[min(attempt, len(entries)) - 1]]


def options(argv: Sequence[str]) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.scenario:
        stream = os.environ.get("STREAMS_STREAM", "")
        attempt = int(os.environ.get("STREAMS_ATTEMPT") or 1)
        extra = scenario_options(args.scenario, stream, attempt)
        args = parser().parse_args([*argv, *extra])
        args.scenario = None
    return args


class Agent:
    """One run of the agent in the worktree ``cwd``."""

    def __init__(self, args: argparse.Namespace, cwd: Path) -> None:
        self.args = args
        self.cwd = cwd
        self.quiet = bool(args.hang_quietly)

    def say(self, line: str) -> None:
        if not self.quiet:
            print(f"demo-agent: {line}", flush=True)

    def streams(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``streams ARGV`` as any agent runs it (the package's own interpreter, so no PATH needed)."""
        return self._run([sys.executable, "-m", "streams", *argv], check=check)

    def git(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(["git", *argv], check=check)

    def _run(self, argv: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, cwd=self.cwd, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            self.say(f"`{' '.join(argv[-3:])}` failed ({done.returncode}): {done.stderr.strip()}")
            raise SystemExit(1)
        return done

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, printing a line every ``--chatter`` seconds when asked."""
        end = time.monotonic() + seconds
        every = self.args.chatter
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, every) if every else left)
            if every and end - time.monotonic() > 0:
                self.say("still working")

    def workdir(self) -> tuple[str, str]:
        """The directory of the stream's first pattern, and the extension of its files there."""
        brief = json.loads(self.streams("brief", "--json").stdout)["data"]
        for pattern in brief["owns"]:
            if pattern.startswith("!"):
                continue
            head = re.split(r"[*?\[]", pattern.lstrip("/"), maxsplit=1)[0]
            folder = head.rstrip("/") if head.endswith("/") or head == pattern.lstrip("/") else os.path.dirname(head)
            inside = [p for p in brief["sample"] if p.startswith(f"{folder}/") or not folder]
            return folder, (os.path.splitext(inside[0])[1] if inside else "") or ".txt"
        self.say("the brief gives this stream no file pattern")
        raise SystemExit(1)

    def step(self, i: int, folder: str, ext: str) -> None:
        path = os.path.join(folder, f"demo_{i}{ext}")
        target = self.cwd / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as f:
            f.write(f"# step {i} of stream {os.environ.get('STREAMS_STREAM', '?')}\n")
        self.git("add", "--", path)
        self.git("commit", "-q", "-m", f"demo: step {i}", "--", path)
        completion = min(99, 100 * i // max(1, self.args.steps))
        self.streams("progress", "--status", "in_progress", "--done", f"step {i}", "--completion", str(completion))
        self.say(f"step {i}: committed {path}")

    def run(self) -> int:
        a = self.args
        if a.ignore_term:
            signal.signal(signal.SIGTERM, lambda *_: self.say("SIGTERM ignored"))
        if a.spawn_child:
            child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({FOREVER})"])
            self.say(f"child pid {child.pid}")
        if a.claim_done:
            self.streams("progress", "--status", "completed", "--completion", "100", "--done", "everything")
            self.say("claimed done without doing anything")
            return int(a.exit_code)
        if a.no_commit:
            return 0
        if a.tempfail:
            print("rate limited", flush=True)
            return 75
        folder, ext = self.workdir() if a.steps > 0 or a.leave_dirty else ("", "")
        for i in range(1, a.steps + 1):
            if i > 1:
                self.pause(a.sleep)
            self.step(i, folder, ext)
        return self.finish(folder, ext)

    def finish(self, folder: str, ext: str) -> int:
        a = self.args
        if a.out_of_scope:
            (self.cwd / a.out_of_scope).parent.mkdir(parents=True, exist_ok=True)
            (self.cwd / a.out_of_scope).write_text("out of scope\n", encoding="utf-8")
            self.git("add", "--", a.out_of_scope)
            # --no-verify skips pre-commit, but the reference-transaction hook still guards the branch:
            # no hooks at all for this one commit, as an agent that removed them would do
            no_hooks = f"core.hooksPath={os.devnull}"
            self.git("-c", no_hooks, "commit", "-q", "--no-verify", "-m", "demo: out of scope", "--", a.out_of_scope)
            self.say(f"committed {a.out_of_scope} out of scope")
        if a.leave_dirty:
            (self.cwd / folder / f"demo_dirty{ext}").write_text("not committed\n", encoding="utf-8")
        if a.blocked:
            self.streams("progress", "--status", "blocked", "--blocked", a.blocked)
            self.say(f"blocked: {a.blocked}")
            return 3
        if a.hang or a.hang_quietly:
            self.say("hanging")
            self.pause(FOREVER)
        if a.crash:
            signum: signal.Signals = a.crash
            self.say(f"crashing by {signum.name}")
            if signum not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught anyway
                signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            self.pause(FOREVER)  # a signal the process can catch still ends it: SIG_DFL
        if a.exit_code == 0 and a.steps > 0:
            self.streams("progress", "--status", "completed", "--completion", "100", "--done", "demo finished")
        self.say(f"exit {a.exit_code}")
        return int(a.exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    args = options(sys.argv[1:] if argv is None else argv)
    return Agent(args, Path.cwd()).run()


if __name__ == "__main__":
    sys.exit(main())
