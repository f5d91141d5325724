"""Leases under real concurrency: many processes, and processes killed while they hold leases.

Workers are real ``python -c`` processes using the library (not the CLI, for speed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.kernel import events, locks

PROCESSES = 32
CYCLES = 50
SHARED = "pyproject.toml"

# argv: common path counter log name cycles go
CONTEND = """\
import os, sys, time
from pathlib import Path
from streams.kernel import locks
common, path, counter, log, name, cycles, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]), Path(sys.argv[7])
while not go.exists():
    time.sleep(0.002)
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(cycles):
    [t] = locks.acquire(common, name, [path], ttl=120, wait=600)
    os.write(fd, f"E {name} {i}\\n".encode())
    n = int(counter.read_text())       # read...
    time.sleep(0.0002)                 # ...dawdle, so an overlapping holder would lose an increment...
    counter.write_text(f"{n + 1}\\n")  # ...write (truncate + write: not atomic on purpose)
    os.write(fd, f"X {name} {i}\\n".encode())
    assert locks.release_lease(common, t.lease), "lease vanished while held"
"""


def test_32_processes_50_cycles_no_lost_increment_no_overlap(tmp_path: Path) -> None:
    common = tmp_path / "common"
    counter = tmp_path / "counter"
    counter.write_text("0\n")
    log = tmp_path / "holders.log"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONTEND, str(common), SHARED, str(counter), str(log), f"w{i}", str(CYCLES), str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    go.touch()  # start together, for maximum contention
    errors = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        if p.returncode != 0:
            errors.append(err.strip().splitlines()[-1] if err.strip() else f"exit {p.returncode}")
    assert errors == []
    assert int(counter.read_text()) == PROCESSES * CYCLES  # no lost increment

    # No overlap: in the O_APPEND log every enter is immediately followed by the same holder's exit.
    lines = log.read_text().splitlines()
    assert len(lines) == 2 * PROCESSES * CYCLES
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("E ") and leave == "X " + enter[2:], (enter, leave)

    assert locks.list_leases(common) == []
    kinds = [e["event"] for e in events.read(common)]
    assert kinds.count("lock.take") == kinds.count("lock.release") == PROCESSES * CYCLES


# argv: common ttl path...
HOLD = """\
import json, sys, time
from pathlib import Path
from streams.kernel import locks
taken = locks.acquire(Path(sys.argv[1]), "doomed", sys.argv[3:], ttl=float(sys.argv[2]))
print(json.dumps([t.lease.to_json() for t in taken]), flush=True)
time.sleep(3600)
"""

# argv: common name wait path
WAIT = """\
import json, sys
from pathlib import Path
from streams.kernel import locks
try:
    [t] = locks.acquire(Path(sys.argv[1]), sys.argv[2], [sys.argv[4]], ttl=600, wait=float(sys.argv[3]))
except locks.LockBusyError as e:
    print(json.dumps({"busy": e.lease.stream}))
else:
    print(json.dumps({"took": t.lease.to_json(), "action": t.action}))
"""


def test_kill_9_holder_lease_stays_until_expiry_then_exactly_one_waiter_gets_it(tmp_path: Path) -> None:
    common = tmp_path / "common"
    ttl = 4.0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(common), str(ttl), "a.toml", "b/c.toml"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    held = [locks.Lease.from_json(d) for d in json.loads(holder.stdout.readline())]
    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=10) == -signal.SIGKILL

    # The holder is dead, but its leases are not: nobody may take them before they expire.
    for lease in held:
        try:
            locks.acquire(common, "early", [lease.path], ttl=60)
        except locks.LockBusyError as exc:
            assert exc.lease == lease
        else:
            raise AssertionError(f"{lease.path} taken while the dead holder's lease was live")
        finally:
            checked_at = time.time()
        assert checked_at < lease.expires_at, "the machine was too slow to probe before expiry; raise ttl"
        assert locks.read_lease(common, lease.path) == lease

    # Several waiters, all started before expiry; each waits until a little after it.
    a = held[0]
    wait = a.expires_at - time.time() + 2.5
    waiters = [
        subprocess.Popen(
            [sys.executable, "-c", WAIT, str(common), f"waiter{i}", str(wait), a.path],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [json.loads(w.communicate(timeout=60)[0]) for w in waiters]
    winners = [r for r in results if "took" in r]
    assert len(winners) == 1, results
    won = locks.Lease.from_json(winners[0]["took"])
    # Usually the winner is the waiter that broke the expired lease; another waiter's plain take can
    # also land between that break and the breaker's own take. Either way: one winner, one break.
    assert winners[0]["action"] in ("break", "take")
    assert won.acquired_at >= a.expires_at  # never taken early
    assert sorted(r.get("busy", "") for r in results if "busy" in r) == [won.stream] * 3
    assert locks.read_lease(common, a.path) == won

    log = list(events.read(common))
    assert [e["lease_id"] for e in log if e["event"] == "lock.expire"] == [a.lease_id]
    assert len([e for e in log if e["event"] == "lock.break"]) == 1
    [take] = [e for e in log if e["event"] == "lock.take" and e["path"] == a.path and e["stream"] != "doomed"]
    assert take["stream"] == won.stream and take["lease_id"] == won.lease_id
    assert len([e for e in log if e["event"] == "lock.wait" and e["path"] == a.path]) == 4
    # The other dead lease is still there (expired now, taken by nobody): listed, not live.
    b = locks.read_lease(common, held[1].path)
    assert b == held[1] and locks.live_lease(common, b.path) is None
