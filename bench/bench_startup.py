"""Command start-up: `streams list`, `locks`, `status --json` and `progress` against their floors.

Issue 16's figures, each a ratio measured side by side in one run, in CPU seconds (user + system of
the command and every process it waited for, from ``getrusage(RUSAGE_CHILDREN)``: on 2 shared
cores the steadier figure; wall seconds are given too):

- in a repository of 3 started streams, one lease held: ``streams list``, ``streams locks`` and
  ``streams status --json`` (the console script, as an agent types it, in the main worktree)
  against a bare interpreter, ``python -I -S -c pass`` (target: at most 5x);
- ``streams progress --completion N`` in a stream's worktree against the bench writing the same
  file + ``git add`` + ``git commit`` (target: at most 3x; ``bench_progress`` measures it at 16
  streams);
- ``streams list`` in a repository of 1,000 streams on 20,000 files (none started) against the
  same bare interpreter (target: at most 10x).

Each round runs the floor and every command once, in an order that alternates round by round (A B
C, C B A, …) so that drift in the machine's load hits all of them; a command's ratio is taken round
by round against that round's floor, and reported as the median with its min and max (the spread
says how noisy the machine was). Python runs with its bytecode cache on (a private
PYTHONPYCACHEPREFIX), as an installed streams would. ``streams list`` and ``locks`` have a quick
path (``streams.cli.quickread``) that answers from the caches a full command leaves: the warm-up
runs leave them, as any earlier command would.

Where the time went before issue 16 (CPU, bytecode cache on, 3 started streams, load ~3; floor
7.8 ms): ``python -c pass`` in the development venv is already 22 ms (site, and the editable
install's finder importing pathlib, re, urllib.parse: 13 ms a regular install does not pay).
``streams list`` 115 ms (14.9x): 183 modules; click 8 ms, streams.config 17 ms (PyYAML 10 ms),
dataclasses with inspect 6.5 ms, the other model modules (places, state, progress, kernel.locks,
worktrees) 20 ms more; the work itself was small: 4 git processes (7 ms of children), the YAML
compose 0.45 ms (libyaml: 0.03 ms), the parse 0.5 ms, the cached tree check 2.7 ms; and Python's
teardown of all those objects 3-8 ms. ``streams locks`` 105 ms (13.5x), the same imports.
``streams status --json`` 201 ms (25.9x): 21 git processes (32-35 ms of children), pathspec
imported to compile patterns the hooks' cache already held (11-17 ms), 220 modules.
``streams --help`` 197 ms: every command module imported for one line of help each.

``status --json`` after session 6 was still 22x (147 ms at load 0.1; 200 ms on a slower day): 13
git processes (about 4x the floor alone) and 60 ms of imports (click, PyYAML, dataclasses, the
status model, concurrent.futures). Since session 7 it is answered by ``streams.cli.quickstatus``
before any of those load: 6 git processes started at once (config, for-each-ref, diff-tree, one
status per started worktree), no ``json``/``re``/``typing``/``dataclasses``/``pathlib`` import
(``kernel.leanjson`` and the other lean readers), the worktrees read from git's files.
Where its ~36 ms went then (load 0.1, floor 9.8 ms): interpreter and site 12 ms, imports 3.6 ms,
its own work 5.7 ms, the 6 git processes 14.5 ms.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from bench.bench_progress import _raw_git, _streams
from bench.common import generate_repo, git, hermetic_env, progress, rounded, run_measured

TARGET_READ = 5.0  # list, locks, status --json vs python -I -S -c pass
TARGET_PROGRESS = 3.0  # progress vs raw write-add-commit
TARGET_LIST_1000 = 10.0  # list at 1,000 streams vs python -I -S -c pass
FLOOR = [sys.executable, "-I", "-S", "-c", "pass"]

Measure = Callable[[], tuple[float, float]]  # one run: (wall, cpu)


def _small_repo(root: Path, env: Mapping[str, str]) -> tuple[Path, Path]:
    """3 streams, all started, stream a holding the lease on pyproject.toml: (main root, a's worktree)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main", env=env)
    config = ["version: 1", "base: main", "shared:", "  - /pyproject.toml", "streams:"]
    files = {"pyproject.toml": "[project]\nname = 'bench'\n", "README.md": "# bench\n"}
    for name in ("a", "b", "c"):
        config += [f"  {name}:", f"    owns: [src/{name}/**, docs/{name}.md]"]
        files[f"docs/{name}.md"] = f"# {name}\n"
        for k in range(10):
            files[f"src/{name}/mod{k:02d}.py"] = f"VALUE = {k}\n"
    files["streams.yaml"] = "\n".join(config) + "\n"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "add", "-A", env=env)
    git(root, "commit", "-q", "-m", "initial", env=env)
    run_measured([*_streams(), "start"], root, env)
    wt = root.parent / f"{root.name}.streams" / "a"
    run_measured([*_streams(), "lock", "pyproject.toml", "--reason", "bench", "--ttl", "8h"], wt, env)
    return root, wt


def _big_repo(root: Path, n_streams: int, n_files: int, env: Mapping[str, str]) -> Path:
    """``n_streams`` streams, each owning one top directory of a generated repository; none started."""
    tops = [f"s{i:04d}" for i in range(n_streams)]
    lines = ["version: 1", "base: main", "shared: [pyproject.toml]", "streams:"]
    for top in tops:
        lines += [f"  {top}:", f"    owns: [{top}/**]"]
    extra = {"streams.yaml": "\n".join(lines) + "\n", "pyproject.toml": "[project]\nname = 'bench'\n"}
    generate_repo(root, n_files, env=env, top_dirs=tops, extra_files=extra, file_bytes=60)
    return root


def _rounds(sides: dict[str, Measure], reps: int) -> dict[str, list[tuple[float, float]]]:
    """``reps`` rounds of every side once, the order reversed every other round."""
    names = list(sides)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for i in range(reps):
        for name in names if i % 2 == 0 else reversed(names):
            samples[name].append(sides[name]())
    return samples


def _figures(samples: list[tuple[float, float]], floor: list[tuple[float, float]], target: float) -> dict[str, object]:
    cpu_ratios = [c / f for (_, c), (_, f) in zip(samples, floor, strict=True) if f > 0]
    wall_ratios = [w / f for (w, _), (f, _) in zip(samples, floor, strict=True) if f > 0]
    cpu = statistics.median(cpu_ratios)
    return {
        "cpu_s": round(statistics.median(c for _, c in samples), 4),
        "wall_s": round(statistics.median(w for w, _ in samples), 4),
        "cpu_ratio": round(cpu, 2),
        "cpu_ratio_min_max": rounded([min(cpu_ratios), max(cpu_ratios)], 2),
        "wall_ratio": round(statistics.median(wall_ratios), 2),
        "target_ratio": target,
        "meets_target": cpu <= target,
    }


def run(quick: bool) -> dict[str, object]:
    reps = 3 if quick else 21
    n_streams, n_files = (200, 2_000) if quick else (1_000, 20_000)
    with tempfile.TemporaryDirectory(prefix="streams-bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        env = hermetic_env(tmp / "home")
        progress("startup: a repository of 3 started streams, one lease held")
        root, wt = _small_repo(tmp / "small" / "repo", env)
        rel = ".streams/stream-a.md"
        streams = _streams()
        counter = iter(range(10**6))

        def command(*args: str, cwd: Path = root) -> Measure:
            return lambda: run_measured([*streams, *args], cwd, env)

        def progress_side() -> tuple[float, float]:
            return run_measured([*streams, "progress", "--completion", str(next(counter) % 100)], wt, env)

        def raw_side() -> tuple[float, float]:
            return _raw_git(wt, rel, next(counter) % 100, env)

        sides: dict[str, Measure] = {
            "floor": lambda: run_measured(FLOOR, tmp, env),
            "list": command("list"),
            "locks": command("locks"),
            "status_json": command("status", "--json"),
        }
        for side in sides.values():  # warm-up: bytecode cache, the caches a full command leaves, page cache
            side()
            side()
        samples = _rounds(sides, reps)
        progress_samples = _rounds({"progress": progress_side, "raw_git": raw_side}, reps)

        progress(f"startup: a repository of {n_streams} streams on {n_files} files")
        big = _big_repo(tmp / "big" / "repo", n_streams, n_files, env)
        run_measured([*streams, "list"], big, env)  # the first (full) command checks the tree once, leaves the caches
        big_sides: dict[str, Measure] = {
            "floor": lambda: run_measured(FLOOR, tmp, env),
            "list": command("list", cwd=big),
        }
        for side in big_sides.values():
            side()
        big_samples = _rounds(big_sides, reps)
        floor = samples["floor"]
        result: dict[str, object] = {
            "what": (
                "CPU (and wall) of each command vs its floor, round by round: list, locks, status --json "
                "(3 started streams, 1 lease) vs `python -I -S -c pass`; progress vs write + git add + git "
                f"commit; list at {n_streams} streams on {n_files} files vs `python -I -S -c pass`"
            ),
            "runs": reps,
            "floor_cpu_s": round(statistics.median(c for _, c in floor), 4),
            "floor_wall_s": round(statistics.median(w for w, _ in floor), 4),
            "list": _figures(samples["list"], floor, TARGET_READ),
            "locks": _figures(samples["locks"], floor, TARGET_READ),
            "status_json": _figures(samples["status_json"], floor, TARGET_READ),
            "progress": _figures(progress_samples["progress"], progress_samples["raw_git"], TARGET_PROGRESS),
            f"list_{n_streams}_streams": {
                **_figures(big_samples["list"], big_samples["floor"], TARGET_LIST_1000),
                "streams": n_streams,
                "files": n_files,
            },
            "python": sys.version.split()[0],
            "note": "2 shared cores, other engineers working: read the CPU ratios and their spread",
        }
    return result
