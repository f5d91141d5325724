"""Lock benchmarks: in-process acquire+release, the CLI round trip, throughput under contention.

``run(quick)`` returns JSON-able figures: medians in milliseconds, the baselines measured side by
side in the same run, and the ratio to the target where there is one.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from streams.kernel import locks

TARGET_IN_PROCESS_MS = 2.0

CONFIG = """\
version: 1
base: main
shared: [pyproject.toml]
streams:
  api:
    owns: [src/api/**]
"""

ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_TERMINAL_PROMPT": "0",
}

# argv: common path cycles go
CONTEND = """\
import sys, time
from pathlib import Path
from streams.kernel import locks
common, path, cycles, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
name = f"w{__import__('os').getpid()}"
while not go.exists():
    time.sleep(0.001)
for _ in range(cycles):
    [t] = locks.acquire(common, name, [path], ttl=120, wait=600)
    locks.release_lease(common, t.lease)
"""


def _median_ms(fn: Callable[[], object], n: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(samples), 3)


def _in_process(n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-locks-") as tmp:
        common = Path(tmp)

        def cycle() -> None:
            [t] = locks.acquire(common, "api", ["pyproject.toml"], ttl=60)
            locks.release_lease(common, t.lease)

        median = _median_ms(cycle, n)
        raw_dir = common / "raw"
        raw_dir.mkdir()

        def raw() -> None:  # the bare primitive: temp file, fsync, link, unlink twice
            tmp_file = raw_dir / "t"
            fd = os.open(tmp_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b"{}\n")
            os.fsync(fd)
            os.close(fd)
            os.link(tmp_file, raw_dir / "l")
            tmp_file.unlink()
            (raw_dir / "l").unlink()

        baseline = _median_ms(raw, n)
    return {
        "acquire_release_median_ms": median,
        "raw_link_fsync_unlink_median_ms": baseline,
        "target_ms": TARGET_IN_PROCESS_MS,
        "ratio_vs_target": round(median / TARGET_IN_PROCESS_MS, 3),
        "ratio_vs_raw": round(median / baseline, 2) if baseline else None,
        "samples": n,
    }


def _git(cwd: Path, *args: str, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _round_trip(n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-locks-cli-") as tmp:
        env = {**os.environ, **ENV, "HOME": tmp}
        # Real installs have bytecode caches; without them every command recompiles the package.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        root = Path(tmp) / "repo"
        root.mkdir()
        _git(root, "init", "-q", "-b", "main", env=env)
        (root / "src/api").mkdir(parents=True)
        (root / "src/api/app.py").write_text("x\n")
        (root / "pyproject.toml").write_text("[project]\n")
        (root / "streams.yaml").write_text(CONFIG)
        _git(root, "add", "-A", env=env)
        _git(root, "commit", "-q", "-m", "initial", env=env)
        streams = [sys.executable, "-m", "streams"]
        subprocess.run([*streams, "start", "api"], cwd=root, env=env, check=True, capture_output=True)
        wt = root.parent / "repo.streams" / "api"

        def cli() -> None:
            subprocess.run([*streams, "lock", "pyproject.toml"], cwd=wt, env=env, check=True, capture_output=True)
            subprocess.run([*streams, "unlock", "pyproject.toml"], cwd=wt, env=env, check=True, capture_output=True)

        def raw_git() -> None:  # two git processes: the floor for any two-command round trip
            _git(wt, "rev-parse", "--git-common-dir", env=env)
            _git(wt, "rev-parse", "--git-common-dir", env=env)

        def python_startup() -> None:
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)

        def import_cli() -> None:  # what every `streams` command pays before doing anything
            subprocess.run([sys.executable, "-c", "import streams.cli"], env=env, check=True)
            subprocess.run([sys.executable, "-c", "import streams.cli"], env=env, check=True)

        median = _median_ms(cli, n, warmup=1)
        git_ms = _median_ms(raw_git, n, warmup=1)
        py_ms = _median_ms(python_startup, n, warmup=1)
        import_ms = _median_ms(import_cli, n, warmup=1)
    return {
        "lock_plus_unlock_median_ms": median,
        "raw_git_two_calls_median_ms": git_ms,
        "python_startup_two_calls_median_ms": py_ms,
        "import_streams_cli_two_calls_median_ms": import_ms,
        "own_work_ms": round(median - import_ms, 3),
        "ratio_vs_raw_git": round(median / git_ms, 2) if git_ms else None,
        "samples": n,
    }


def _contention(processes: int, cycles: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-locks-contend-") as tmp:
        common = Path(tmp) / "common"
        go = Path(tmp) / "go"
        procs = [
            subprocess.Popen([sys.executable, "-c", CONTEND, str(common), "pyproject.toml", str(cycles), str(go)])
            for _ in range(processes)
        ]
        time.sleep(0.5)  # let the interpreters start, so the clock measures contention, not startup
        t0 = time.perf_counter()
        go.touch()
        codes = [p.wait(timeout=600) for p in procs]
        elapsed = time.perf_counter() - t0
    total = processes * cycles
    return {
        "processes": processes,
        "cycles_each": cycles,
        "all_ok": all(c == 0 for c in codes),
        "seconds": round(elapsed, 3),
        "cycles_per_second": round(total / elapsed, 1),
        "note": "wall time from the start signal to the last exit; includes backoff and process exit",
    }


def run(quick: bool) -> dict[str, object]:
    return {
        "in_process": _in_process(100 if quick else 1000),
        "cli_round_trip": _round_trip(3 if quick else 15),
        "contention_32": _contention(32, 10 if quick else 50),
        "caveat": "2 shared cores, other engineers' jobs running: figures are noisy",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=1))
