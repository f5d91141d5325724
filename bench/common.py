"""Shared bench helpers: a hermetic environment, generated repositories, timers, machine facts.

Standard library only (plus the project). Figures are wall-clock seconds from ``time.perf_counter``.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

BENCH_IDENTITY = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "false",
    "NO_COLOR": "1",
}


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only the JSON result)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def hermetic_env(home: Path) -> dict[str, str]:
    """The process environment without git's variables, with a private HOME and a fixed identity.

    Python caches compiled bytecode, as it does for an installed streams (here in a private
    PYTHONPYCACHEPREFIX): this machine sets PYTHONDONTWRITEBYTECODE, and with it every command
    would recompile each module that changed since the tree's last cache write, so figures would
    depend on what ran before.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(BENCH_IDENTITY)
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")})
    env["PYTHONPYCACHEPREFIX"] = str(home / "pycache")
    return env


def git(cwd: Path, *args: str, env: Mapping[str, str], input: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, input=input, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode()


def generate_repo(
    root: Path,
    n_files: int,
    *,
    env: Mapping[str, str],
    top_dirs: Sequence[str],
    extra_files: Mapping[str, str] | None = None,
    file_bytes: int = 200,
) -> None:
    """A repository at ``root`` with one commit on ``main`` holding ``n_files`` files spread evenly
    over ``top_dirs`` (two directory levels below each), plus ``extra_files``, checked out.

    Built with one ``git fast-import`` (no per-file process), then one checkout.
    """
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main", env=env)
    chunks: list[bytes] = [b"commit refs/heads/main\n", b"committer Bench <bench@example.com> 1767225600 +0000\n"]
    message = f"generated: {n_files} files".encode()
    chunks.append(b"data %d\n%s\n" % (len(message), message))
    filler = ("# generated line of text for the bench\n" * (file_bytes // 40 + 1))[:file_bytes]
    for i in range(n_files):
        top = top_dirs[i % len(top_dirs)]
        k = i // len(top_dirs)
        path = f"{top}/pkg{k % 25:02d}/mod{(k // 25) % 20:02d}/file{i:06d}.py"
        data = f"# {path}\n{filler}".encode()
        chunks.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    for path, text in (extra_files or {}).items():
        data = text.encode()
        chunks.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    chunks.append(b"done\n")
    git(root, "fast-import", "--quiet", "--done", env=env, input=b"".join(chunks))
    git(root, "checkout", "-q", "-f", "main", env=env)


def copy_repo(source: Path, dest: Path) -> None:
    """An exact copy (worktree, index and .git), so both sides of a comparison start equal."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("cp"):
        subprocess.run(["cp", "-a", str(source), str(dest)], check=True)  # ~2x faster than copytree
    else:
        shutil.copytree(source, dest, symlinks=True)


def bench_tmpdir() -> str | None:
    """Where benches put their repositories: $STREAMS_BENCH_TMPDIR, else /dev/shm when usable.

    A RAM file system takes the shared disk's noise out of the figures, and it makes ratios to a
    checkout stricter, not looser: the checkout floor shrinks, so any overhead of ours weighs more.
    """
    chosen = os.environ.get("STREAMS_BENCH_TMPDIR")
    if chosen:
        return chosen
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 6 * 2**30:
        return str(shm)
    return None  # the system default


def filesystem_of(path: Path) -> str:
    """The file system type holding ``path`` (Linux: from /proc/mounts), or "unknown"."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    best = ("", "unknown")
    resolved = str(path.resolve())
    for fields in mounts:
        inside = len(fields) >= 3 and (resolved == fields[1] or resolved.startswith(fields[1].rstrip("/") + "/"))
        if inside and len(fields[1]) > len(best[0]):
            best = (fields[1], fields[2])
    return best[1]


def run_timed(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> float:
    """Seconds a command takes; it must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}"
        )
    return elapsed


def run_measured(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a command and every process it waited for; it must succeed.

    CPU time (user + system, from ``getrusage(RUSAGE_CHILDREN)``) hardly moves when other work
    shares the cores, so on a busy machine it is the steadier figure.
    """
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run_timed(argv, cwd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_of(fn: Callable[[], object], runs: int, *, warmup: int = 0) -> tuple[float, list[float]]:
    """Median seconds of ``runs`` calls of ``fn`` (after ``warmup`` untimed calls), and the samples."""
    for _ in range(warmup):
        fn()
    samples = [timed(fn) for _ in range(runs)]
    return statistics.median(samples), samples


def rounded(values: Sequence[float], digits: int = 3) -> list[float]:
    return [round(v, digits) for v in values]


def machine() -> dict[str, object]:
    """Facts that make figures comparable: cores, load, versions."""
    try:
        git_version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        git_version = "git not found"
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": load,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "git": git_version.removeprefix("git version "),
        "platform": platform.platform(),
    }
