"""Every command's ``--json`` data is documented beside its result type, and the documentation is true.

A result type documents its JSON fields in a table in its docstring, as ``streams/dashboard.py`` does::

    =====  ===========  =======
    field  type         meaning
    =====  ===========  =======
    base   str          ...
    leases [LeaseView]  ...
    =====  ===========  =======

A field may be documented inline below its parent (``summary.total``, ``streams[].name``), or by
naming a documented type in its type (``LeaseView``, ``[LeaseView]``, ``{path: LeaseView}``,
``Halt | null``), or as an inline list of names (``{files, onto}``). A docstring that holds several
tables names each on the line above it (````ScopeEvent````). ``null`` in a type says the field may be
null. The test runs each command with ``--json`` against a real repository and checks, level by
level, that the documented names are exactly the output's keys.
"""

from __future__ import annotations

import inspect
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import streams.dashboard
from coordinator import decide, gates, landing, report, resolve, runctl, rundry, runflow, wavereport
from coordinator import merge as merging
from coordinator import metrics as run_metrics
from coordinator import plan as planning
from streams import brief, hooks_install, progress, scope, state, worktrees
from streams.cli import check as cli_check
from streams.cli import locks as cli_locks
from streams.cli import lockview as cli_lockview
from streams.cli import metrics as cli_metrics
from streams.cli import progress as cli_progress
from streams.cli import scope as cli_scope
from streams.cli import sync as cli_sync
from streams.cli import workspace as cli_workspace
from streams.kernel import lease, locks
from streams.kernel.procs import pid_alive
from tests.conftest import Repo, make_repo, run_cli, run_streams
from tests.test_cli import COMMANDS
from tests.test_gates import lay_run, write_report
from tests.test_sync import make_conflict
from tests.test_verify import sneak

# --- reading the tables ------------------------------------------------------------------------------

Table = dict[str, str]  # documented field (``streams[].name``) -> its type as written
BORDER = re.compile(r"^\s*=+(\s+=+)+\s*$")
TITLE = re.compile(r"^``(\w+)``")


def tables(doc: str) -> dict[str | None, Table]:
    """The field tables in ``doc``, by title (None for an untitled one)."""
    lines = doc.splitlines()
    borders = [i for i, ln in enumerate(lines) if BORDER.match(ln)]
    assert len(borders) % 3 == 0, "a table is a top border, a header, a border, rows and a bottom border"
    found: dict[str | None, Table] = {}
    for top, _, bottom in zip(borders[0::3], borders[1::3], borders[2::3], strict=True):
        above = next((ln.strip() for ln in reversed(lines[:top]) if ln.strip()), "")
        title = m.group(1) if (m := TITLE.match(above)) else None
        mid = borders[borders.index(top) + 1]
        indent = len(lines[top]) - len(lines[top].lstrip())
        table: Table = {}
        for ln in lines[mid + 1 : bottom]:
            text = ln[indent:]
            if not text or text[0] == " ":  # a continuation of the row above
                continue
            parts = re.split(r"\s{2,}", text.strip())
            head = parts[0].split(" ", 1)
            table[head[0]] = head[1] if len(head) > 1 else (parts[1] if len(parts) > 1 else "")
        assert title not in found, f"two tables titled {title!r}"
        found[title] = table
    return found


@dataclass(frozen=True)
class Shape:
    """Where a JSON shape is documented: the docstring of ``owner``, the table titled ``title``, the
    fields under ``prefix`` (a type documented inside another's table)."""

    owner: object
    title: str | None = None
    prefix: str = ""

    def table(self) -> Table:
        found = tables(inspect.getdoc(self.owner) or "")
        assert self.title in found, f"no table {self.title!r} in the docstring of {self.owner!r}"
        table = found[self.title]
        if self.prefix:
            table = {k[len(self.prefix) :]: t for k, t in table.items() if k.startswith(self.prefix)}
            assert table, f"nothing documented under {self.prefix!r}"
        return table


def _documented(*modules: ModuleType) -> dict[str, Shape]:
    """Every dataclass of ``modules`` whose docstring holds a field table."""
    found = {}
    for module in modules:
        for name, obj in vars(module).items():
            mine = isinstance(obj, type) and is_dataclass(obj) and obj.__module__ == module.__name__
            if mine and None in tables(inspect.getdoc(obj) or ""):
                found[name] = Shape(obj)
    return found


SHAPES: dict[str, Shape] = {
    **_documented(worktrees, scope, hooks_install, progress, state, locks, lease, brief),
    **_documented(
        cli_workspace, cli_scope, cli_locks, cli_lockview, cli_progress, cli_sync, cli_check, merging, landing, resolve
    ),
    **_documented(planning, runflow, rundry, runctl, gates, decide, wavereport),
    **_documented(run_metrics, cli_metrics),
    "Snapshot": Shape(streams.dashboard),
    # coordinator.watcher's events and coordinator.sync's results, documented where the CLI writes them
    "ScopeEvent": Shape(cli_scope, "ScopeEvent"),
    "WorktreeEvent": Shape(cli_scope, "WorktreeEvent"),
    "WatchWarning": Shape(cli_scope, "WatchWarning"),
    "SyncReport": Shape(cli_sync.Synced, prefix="report."),
    "StreamResult": Shape(cli_sync.Synced, prefix="report.streams[]."),
    "ContinueResult": Shape(cli_sync.Synced, prefix="continued."),
    "AbortResult": Shape(cli_sync.Aborted, prefix="aborted."),
}


# --- checking output against them ----------------------------------------------------------------------


def _item_table(inner: str) -> Table | None:
    """The fields of one value of type ``inner``: an inline ``{a, b}``, a documented shape, or none."""
    if m := re.fullmatch(r"\{([\w, ]+)\}", inner):
        return {name.strip(): "" for name in m.group(1).split(",")}
    named = re.findall(r"\b[A-Z]\w*", inner)
    for name in named:
        assert name in SHAPES, f"type {inner!r} names {name}, which is documented nowhere"
    return SHAPES[named[0]].table() if named else None


def _merged(table: Table | None, children: Table) -> Table | None:
    return {**(table or {}), **children} if table or children else None


def check(value: Any, table: Table, where: str) -> None:
    assert isinstance(value, dict), f"{where}: documented as an object, got {value!r}"
    top = {re.split(r"\.|\[\]", name)[0]: None for name in table}
    assert set(value) == set(top), (
        f"{where}: documented {sorted(top)}, the output has {sorted(value)} "
        f"(missing from the docs: {sorted(set(value) - set(top))}; not in the output: {sorted(set(top) - set(value))})"
    )
    for name in top:
        obj = {k[len(name) + 1 :]: t for k, t in table.items() if k.startswith(name + ".")}
        items = {k[len(name) + 3 :]: t for k, t in table.items() if k.startswith(name + "[].")}
        _check_field(value[name], table.get(name), obj, items, f"{where}.{name}")


def _check_field(value: Any, typ: str | None, obj: Table, items: Table, where: str) -> None:
    if typ is None:  # documented through its fields only
        kind, inner, nullable = ("list" if items else "object"), "", False
    else:
        nullable = re.search(r"\bnull\b", typ) is not None
        inner = re.sub(r"\s*\|\s*null\b|^null$", "", typ).strip()
        kind = "object"
        if inner.startswith("[") and inner.endswith("]"):
            kind, inner = "list", inner[1:-1].strip()
        elif inner.startswith("{") and ":" in inner:
            kind, inner = "mapping", inner[1:-1].split(":", 1)[1].strip()
    if value is None:
        assert nullable, f"{where} is null, documented as {typ!r}"
        return
    if kind == "list":
        assert isinstance(value, list), f"{where}: documented as a list, got {value!r}"
        table = _merged(_item_table(inner), items)
        for i, item in enumerate(value):
            if table is not None:
                check(item, table, f"{where}[{i}]")
    elif kind == "mapping":
        assert isinstance(value, dict), f"{where}: documented as a mapping, got {value!r}"
        table = _item_table(inner)
        for key, item in value.items():
            if table is not None:
                check(item, table, f"{where}[{key!r}]")
    else:
        table = _merged(_item_table(inner), obj)
        if table is not None:
            check(value, table, where)


# --- the commands, each against a real repository --------------------------------------------------------

Outputs = list[tuple[str, Any]]  # (the documented shape, the output's data)


def data(args: list[str], cwd: Path, code: int = 0) -> Any:
    """The ``data`` of ``streams ARGS --json`` (of its last envelope)."""
    r = run_cli([*args, "--json"], cwd)
    assert r.code == code, r
    env = json.loads(r.out.splitlines()[-1])
    assert env["ok"] is (code == 0), env
    return env["data"]


def started(tmp: Path, *names: str) -> Repo:
    repo = make_repo(tmp)
    assert run_cli(["start", *names], repo.root).code == 0
    return repo


def case_init(tmp: Path) -> Outputs:
    repo = make_repo(tmp, files={"src/app.py": "x\n", "docs/index.md": "x\n"}, config=None)
    return [("Initialised", data(["init"], repo.root))]


def case_start(tmp: Path) -> Outputs:
    repo = make_repo(tmp)
    return [("Started", data(["start", "api", "docs"], repo.root))]


def case_stop(tmp: Path) -> Outputs:
    repo = started(tmp, "api", "docs")
    repo.write("src/api/new.py", "work in progress\n", cwd=repo.worktree("api"))
    stopped = data(["stop", "--force", "api", "docs"], repo.root)
    assert stopped["streams"][0]["saved_ref"]
    return [("Stopped", stopped)]


def case_list(tmp: Path) -> Outputs:
    return [("Listing", data(["list"], started(tmp, "api").root))]


def case_owner(tmp: Path) -> Outputs:
    repo = started(tmp, "api")
    owners = data(["owner", "src/api/app.py", "pyproject.toml", "src/ui/main.ts"], repo.worktree("api"))
    assert owners["paths"][2]["allowed"] is False
    return [("Owners", owners)]


def case_hooks_install(tmp: Path) -> Outputs:
    report = data(["hooks", "install"], make_repo(tmp).root)
    assert report["installed"] is True
    return [("HooksReport", report)]


def case_hooks_uninstall(tmp: Path) -> Outputs:
    return [("HooksReport", data(["hooks", "uninstall"], started(tmp, "api").root))]


def case_hooks_status(tmp: Path) -> Outputs:
    return [("HooksReport", data(["hooks", "status"], started(tmp, "api").root))]


def case_verify(tmp: Path) -> Outputs:
    repo = started(tmp, "api", "ui")
    sneak(repo, repo.worktree("api"), {"src/ui/main.ts": "not yours\n"})
    report = data(["verify"], repo.root, code=5)  # the report is the data of the failing envelope too
    assert report["ok"] is False and any(r["violations"] for r in report["results"])
    return [("VerifyReport", report)]


def case_watch(tmp: Path) -> Outputs:
    repo = started(tmp, "api")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "watch", "--json"],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump(stream: Any, into: Callable[[str], None]) -> None:
        for line in iter(stream.readline, ""):
            into(line)

    started_up = threading.Event()

    def on_stderr(line: str) -> None:
        if "Ctrl-C stops" in line:
            started_up.set()

    threading.Thread(target=pump, args=(proc.stdout, lines.put), daemon=True).start()
    threading.Thread(target=pump, args=(proc.stderr, on_stderr), daemon=True).start()
    got: list[dict[str, Any]] = []
    try:
        assert started_up.wait(60), "streams watch did not start"
        repo.write("src/ui/main.ts", "out of scope\n", cwd=repo.worktree("api"))
        deadline = time.monotonic() + 30
        while not any(g["data"]["kind"] == "violation" for g in got) and time.monotonic() < deadline:
            try:
                got.append(json.loads(lines.get(timeout=max(0.01, deadline - time.monotonic()))))
            except queue.Empty:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    assert {g["data"]["kind"] for g in got} == {"worktree", "violation"}, got  # watching api, then the report
    kinds = {"violation": "ScopeEvent", "worktree": "WorktreeEvent", "warning": "WatchWarning"}
    return [(kinds[g["data"]["kind"]], g["data"]) for g in got]


def case_lock(tmp: Path) -> Outputs:
    wt = started(tmp, "api").worktree("api")
    first = data(["lock", "pyproject.toml", "--reason", "deps"], wt)
    again = data(["lock", "pyproject.toml", "--until-commit"], wt)  # a renew: the lease it replaced too
    assert again["previous"] and again["leases"][0]["action"] == "renew"
    return [("Locked", first), ("Locked", again)]


def case_unlock(tmp: Path) -> Outputs:
    wt = started(tmp, "api").worktree("api")
    assert run_cli(["lock", "pyproject.toml"], wt).code == 0
    released = data(["unlock", "pyproject.toml"], wt)
    assert released["released"]
    return [("Unlocked", released)]


def case_locks(tmp: Path) -> Outputs:
    repo = started(tmp, "api")
    assert run_cli(["lock", "pyproject.toml"], repo.worktree("api")).code == 0
    leases = data(["locks"], repo.root)
    assert leases["leases"]
    return [("Leases", leases)]


def case_progress(tmp: Path) -> Outputs:
    wt = started(tmp, "api").worktree("api")
    shown = data(["progress"], wt)
    updated = data(["progress", "--status", "in_progress", "--current", "forms", "--next", "tests"], wt)
    assert updated["changed"] is True
    return [("ProgressShown", shown), ("ProgressCommit", updated)]


def case_sync(tmp: Path) -> Outputs:
    repo = started(tmp)
    make_conflict(repo)
    halted = data(["sync"], repo.root, code=4)  # a halt: the report is the data of the failing envelope
    assert halted["report"]["halted"] is True and len(halted["report"]["new_halts"]) == 1
    aborted = data(["sync", "--abort", "api"], repo.root)
    assert aborted["aborted"]["halt"] is not None
    assert run_cli(["sync"], repo.root).code == 4  # the same conflict again
    wt = repo.worktree("api")
    repo.write("src/api/app.py", "both sides\n", cwd=wt)
    repo.git("add", "src/api/app.py", cwd=wt)
    continued = data(["sync", "--continue", "api"], repo.root)
    assert continued["continued"] is not None
    passed = data(["sync", "--watch", "--iterations", "1", "--interval", "1s"], repo.root)
    return [("Synced", halted), ("Aborted", aborted), ("Synced", continued), ("SyncPass", passed)]


def case_status(tmp: Path) -> Outputs:
    repo = started(tmp)
    make_conflict(repo)
    assert run_cli(["sync"], repo.root).code == 4
    assert run_cli(["lock", "pyproject.toml", "--stream", "api"], repo.root).code == 0
    snap = data(["status"], repo.root)
    api = next(s for s in snap["streams"] if s["name"] == "api")
    assert api["halt"] is not None and api["locks"]
    # --watch --json: NDJSON, each line the same envelope and Snapshot (streams/dashboard.py says so)
    watching = subprocess.Popen(
        [sys.executable, "-m", "streams", "status", "--watch", "--json", "--interval", "0.2"],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watching.stdout is not None
    first = watching.stdout.readline()
    watching.send_signal(signal.SIGTERM)
    _, err = watching.communicate(timeout=60)
    assert watching.returncode == 130, err  # the documented exit of a watch stopped by SIGTERM
    envelope = json.loads(first)
    assert envelope["command"] == "status" and envelope["ok"], envelope
    return [("Snapshot", snap), ("Snapshot", envelope["data"])]


def case_check(tmp: Path) -> Outputs:
    repo = make_repo(tmp)
    text = (repo.root / "streams.yaml").read_text().replace("[docs/**]", "[docs/**, manual/**, wiki/**]")
    repo.write("streams.yaml", text)
    repo.commit_all("two patterns that match nothing yet")
    report = data(["check"], repo.root)
    assert report["ok"] is True and len(report["warnings"]) == 2
    return [("ConfigCheck", report)]


def case_merge(tmp: Path) -> Outputs:
    repo = started(tmp)
    wt = repo.worktree("api")
    repo.write("src/api/app.py", "landed\n", cwd=wt)
    repo.git("commit", "-qam", "api work", cwd=wt)
    dry = data(["merge", "api", "--dry-run", "--check", "true"], repo.root)
    landed = data(["merge", "api"], repo.root)
    assert landed["results"][0]["outcome"] == "landed"
    undone = data(["merge", "--undo"], repo.root)
    docs = repo.worktree("docs")
    repo.write("docs/index.md", "the stream's\n", cwd=docs)
    repo.git("commit", "-qam", "docs work", cwd=docs)
    repo.write("docs/index.md", "main's\n")
    repo.commit_all("main: docs")
    ejected = data(["merge", "docs"], repo.root, code=4)
    dropped = data(["merge", "--abort"], repo.root)
    return [
        ("MergeReport", dry),
        ("MergeReport", landed),
        ("Undone", undone),
        ("MergeReport", ejected),
        ("Dropped", dropped),
    ]


def case_brief(tmp: Path) -> Outputs:
    repo = started(tmp, "api")
    here = data(["brief"], repo.worktree("api"))
    named = data(["brief", "ui"], repo.root)
    assert here["stream"] == "api" and here["sample"] and named["depends"] == ["api"]
    return [("Brief", here), ("Brief", named)]


def case_plan(tmp: Path) -> Outputs:
    repo = make_repo(tmp, config=PLAN_CONFIG)
    planned = data(["plan"], repo.root)
    assert planned["waves"][1]["mode"] == "parallel" and planned["graph"]
    selected = data(["plan", "--no-merge", "d"], repo.root)
    assert selected["external"] == ["b", "c"] and selected["notes"]
    return [("Plan", planned), ("Plan", selected)]


PLAN_CONFIG = """\
version: 1
base: main
streams:
  a: {owns: [src/api/**]}
  b: {owns: [src/ui/**], depends: [a]}
  c: {owns: [docs/**], depends: [a]}
  d: {owns: [tests/**], depends: [b, c]}
"""


def case_run(tmp: Path) -> Outputs:
    agent = f"{sys.executable} -m streams.demo_agent --steps 1 --sleep 0"
    config = PLAN_CONFIG.replace("{owns: [src/api/**]}", f"{{owns: [src/api/**], command: '{agent}'}}")
    config = config.replace(
        "{owns: [src/ui/**], depends: [a]}", f"{{owns: [src/ui/**], depends: [a], command: '{agent} --exit 1'}}"
    )
    config += "run: {merge: false, backoff: 100ms, gate: none}\n"
    repo = make_repo(tmp, config=config)
    ran = json.loads(run_streams(["run", "--json", "a", "b"], repo.root, timeout=120).out)["data"]
    assert ran["status"] == "completed_with_failures" and ran["streams"][1]["failure"] == "failed"
    dry = data(["run", "--dry-run", "--why", "a", "b"], repo.root)
    assert dry["waves"][0]["streams"][0]["why"]
    detached = data(["run", "--detach", "a"], repo.root)
    deadline = time.time() + 60
    while time.time() < deadline and pid_alive(detached["pid"]):
        time.sleep(0.1)
    status = data(["status"], repo.root)
    assert status["run"]["status"] in ("completed", "completed_with_failures")
    return [("RunResult", ran), ("DryRun", dry), ("Detached", detached), ("Snapshot", status)]


def case_control(tmp: Path) -> Outputs:
    """pause, resume, abort of a real run (the fake agent hangs on its first attempt)."""
    scenario = tmp / "scenario.json"
    scenario.write_text(json.dumps({"a": [["--hang", "--chatter", "0.2"], []]}))
    agent = f"{sys.executable} -m streams.demo_agent --steps 1 --sleep 0 --scenario {scenario}"
    config = PLAN_CONFIG.replace("{owns: [src/api/**]}", f"{{owns: [src/api/**], command: '{agent}'}}")
    config = config.replace("{owns: [src/ui/**], depends: [a]}", f"{{owns: [src/ui/**], command: '{agent}'}}")
    repo = make_repo(tmp, config=config + "run: {merge: false, grace: 1s, gate: none}\n")

    def runner_started(name: str) -> int:
        pid = data(["run", "--detach", name], repo.root)["pid"]
        deadline = time.time() + 60
        while time.time() < deadline:
            rows = {r["name"]: r for r in data(["status"], repo.root)["streams"]}
            if rows[name]["agent_running"]:
                return int(pid)
            time.sleep(0.1)
        raise AssertionError("the agent never ran")

    def gone(pid: int) -> None:
        deadline = time.time() + 60
        while time.time() < deadline and pid_alive(pid):
            time.sleep(0.1)

    pid = runner_started("a")
    paused = data(["pause", "--now"], repo.root)
    gone(pid)
    resumed = json.loads(run_streams(["resume", "--json"], repo.root, timeout=120).out)["data"]
    assert paused["runner_alive"] and resumed["status"] == "completed"
    scenario.write_text(json.dumps({"b": [["--hang", "--chatter", "0.2"]]}))
    pid = runner_started("b")
    aborted = data(["abort"], repo.root)
    gone(pid)
    return [("Controlled", paused), ("RunResult", resumed), ("Controlled", aborted)]


def case_approve(tmp: Path) -> Outputs:
    repo = make_repo(tmp)
    rd = lay_run(repo, reports=(1, 2))  # a run waiting at wave 1's gate, as the runner leaves it
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("STREAMS_AGENT", raising=False)
        first = data(["approve", "--note", "ok"], repo.root)
        write_report(rd, 1, "f" * 64)  # the report changed: the approval is stale, the gate open again
        again = data(["approve", "1"], repo.root)
    assert first["stale"] is None and again["stale"] and again["stale_why"]
    return [("Decided", first), ("Decided", again)]


def case_reject(tmp: Path) -> Outputs:
    repo = make_repo(tmp)
    lay_run(repo)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("STREAMS_AGENT", raising=False)
        rejected = data(["reject", "1", "--note", "the API breaks the UI"], repo.root)
    assert rejected["decision"]["verdict"] == "rejected"
    return [("Decided", rejected)]


def case_request_changes(tmp: Path) -> Outputs:
    repo = make_repo(tmp)
    lay_run(repo)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("STREAMS_AGENT", raising=False)
        requested = data(["request-changes", "api", "--note", "return 404"], repo.root)
    assert requested["request"]["n"] == 1
    return [("Requested", requested)]


def case_report(tmp: Path) -> Outputs:
    from streams.runstate import RunDir
    from streams.workspace import discover, load_config

    agent = f"{sys.executable} -m streams.demo_agent --steps 1 --sleep 0"
    config = PLAN_CONFIG.replace("{owns: [src/api/**]}", f"{{owns: [src/api/**], command: '{agent} --leave-dirty'}}")
    config = config.replace(
        "{owns: [src/ui/**], depends: [a]}", f"{{owns: [src/ui/**], depends: [a], command: '{agent} --exit 1'}}"
    )
    config += "run: {merge: false, backoff: 100ms, gate: none, check: 'echo 2 passed'}\n"
    repo = make_repo(tmp, config=config)
    ran = json.loads(run_streams(["run", "--json", "a", "b"], repo.root, timeout=120).out)["data"]
    ws = discover(repo.root)
    rd = RunDir(ws, ran["run_id"])
    for wave in (1, 2):
        report.write_wave_report(ws, load_config(ws, check_tracked=False), rd, rd.load(), wave)
    first = data(["report", "--wave", "1"], repo.root)
    assert first["streams"][0]["files"] and first["streams"][0]["attempts"] and first["streams"][0]["flags"]
    second = data(["report"], repo.root)
    assert second["gaps"] and second["streams"][0]["log_tail"]
    return [("WaveReport", first), ("WaveReport", second)]


def case_metrics(tmp: Path) -> Outputs:
    agent = f"{sys.executable} -m streams.demo_agent --steps 1 --sleep 0"
    config = PLAN_CONFIG.replace("{owns: [src/api/**]}", f"{{owns: [src/api/**], command: '{agent}'}}")
    config = config.replace(
        "{owns: [src/ui/**], depends: [a]}", f"{{owns: [src/ui/**], depends: [a], command: '{agent}'}}"
    )
    repo = make_repo(tmp, config=config + "run: {merge: true, backoff: 100ms, gate: none}\n")
    assert run_streams(["run", "a", "b"], repo.root, timeout=120).code == 0
    one = data(["metrics", "--trace", str(tmp / "trace.json")], repo.root)
    assert one["trace"] and one["runs"][0]["waves"] and one["runs"][0]["attempts"] and one["runs"][0]["pools"]
    assert any(m["kind"] == "land" for m in one["runs"][0]["marks"])
    assert one["runs"][0]["attempts"][0]["merge_latency"] is not None
    return [("Metrics", one), ("Metrics", data(["metrics", "--all"], repo.root))]


CASES: dict[str, Callable[[Path], Outputs]] = {
    "metrics": case_metrics,
    "pause": case_control,
    "resume": case_control,
    "abort": case_control,
    "approve": case_approve,
    "reject": case_reject,
    "request-changes": case_request_changes,
    "report": case_report,
    "run": case_run,
    "plan": case_plan,
    "brief": case_brief,
    "merge": case_merge,
    "check": case_check,
    "init": case_init,
    "start": case_start,
    "stop": case_stop,
    "list": case_list,
    "owner": case_owner,
    "hooks install": case_hooks_install,
    "hooks uninstall": case_hooks_uninstall,
    "hooks status": case_hooks_status,
    "verify": case_verify,
    "watch": case_watch,
    "lock": case_lock,
    "unlock": case_unlock,
    "locks": case_locks,
    "progress": case_progress,
    "sync": case_sync,
    "status": case_status,
}


def test_every_command_with_json_has_a_case() -> None:
    with_json = {" ".join(path) for path, command in COMMANDS if any(p.name == "json_output" for p in command.params)}
    assert with_json == set(CASES)


@pytest.mark.parametrize("command", sorted(CASES))
def test_documented_fields_are_the_output_keys(command: str, tmp_path: Path) -> None:
    for shape, output in CASES[command](tmp_path):
        check(output, SHAPES[shape].table(), f"`streams {command} --json` data ({shape})")
