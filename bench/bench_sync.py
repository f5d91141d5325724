"""`streams sync` over 16 streams versus raw git doing the same work, side by side in one run.

Scenarios (each: the two sides alternate A B, B A, … so drift in the machine's load hits both):

- nothing to do (remote set): `streams sync` vs one `git fetch` plus 16 sequential
  `git rebase origin/main`, each in a stream worktree, each with nothing to do. Target <= 1.0x.
- rebase all 16 (no remote): main moves before every timed run; `streams sync` vs 16 sequential
  `git rebase main`. Target <= 1.3x.
- rebase all 16 with the remote (extra figure, no target): fetch + 16 rebases + pushes, vs
  `git fetch` + 16 `git rebase` + one `git push --force-with-lease` of the 16 branches.

`streams sync` runs as one process, as a user types it (interpreter start-up included). The scope
hooks `streams start` installs are in place for both sides (every stream ref update runs the
reference-transaction hook, whoever moves the ref). Each stream has two commits of its own.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    bench_tmpdir,
    filesystem_of,
    generate_repo,
    git,
    hermetic_env,
    progress,
    rounded,
    run_measured,
)

FILES = 2_000
STREAMS = 16
NAMES = [f"s{i:02d}" for i in range(STREAMS)]
TARGET_NOTHING = 1.0
TARGET_REBASE = 1.3


def streams_yaml(remote: bool) -> str:
    lines = ["version: 1", "base: main", *(["remote: origin"] if remote else []), "streams:"]
    for name in NAMES:
        lines += [f"  {name}:", f"    owns: [{name}/**]"]
    return "\n".join(lines) + "\n"


Side = Callable[..., tuple[float, float]]  # called with no argument, or with the environment to run in


def _compare(
    label: str,
    reps: int,
    ours: Side,
    raw: Side,
    before_each: Callable[[], None],
    core: Side | None = None,
    after_each: Callable[[], None] | None = None,
) -> dict[str, object]:
    c_wall: list[float] = []
    s_wall: list[float] = []
    s_cpu: list[float] = []
    g_wall: list[float] = []
    g_cpu: list[float] = []
    for rep in range(reps):
        for side in ("streams", "git") if rep % 2 == 0 else ("git", "streams"):
            before_each()
            wall, cpu = ours() if side == "streams" else raw()
            if after_each is not None:
                after_each()  # the side did the work it is timed for
            (s_wall if side == "streams" else g_wall).append(wall)
            (s_cpu if side == "streams" else g_cpu).append(cpu)
        if core is not None:
            before_each()
            c_wall.append(core()[0])
        progress(f"sync: {label} {rep + 1}/{reps}: streams {s_wall[-1]:.3f} s, git {g_wall[-1]:.3f} s")
    sm, gm = statistics.median(s_wall), statistics.median(g_wall)
    extra: dict[str, object] = {}
    if c_wall:
        cm = statistics.median(c_wall)
        extra = {
            "core_only_s": round(cm, 3),
            "core_only_ratio": round(cm / gm, 3),
            "core_only_what": "the same pass in a fresh python that imports only what sync needs (no click, no "
            "other command modules): what `streams sync` would cost with lazily loaded commands",
        }
    return {
        **extra,
        "streams_s": round(sm, 3),
        "git_s": round(gm, 3),
        "ratio": round(sm / gm, 3),
        "pair_ratios": rounded([s / g for s, g in zip(s_wall, g_wall, strict=True)]),
        "streams_cpu_s": round(statistics.median(s_cpu), 3),
        "git_cpu_s": round(statistics.median(g_cpu), 3),
        "cpu_ratio": round(statistics.median(s_cpu) / statistics.median(g_cpu), 3),
        "cpu_pair_ratios": rounded([s / g for s, g in zip(s_cpu, g_cpu, strict=True)]),
        "samples": {"streams_s": rounded(s_wall), "git_s": rounded(g_wall)},
    }


def run(quick: bool) -> dict[str, object]:
    reps = 2 if quick else 7
    with tempfile.TemporaryDirectory(prefix="streams-bench-sync-", dir=bench_tmpdir()) as tmp_name:
        tmp = Path(tmp_name)
        env = hermetic_env(tmp / "home")
        repo = tmp / "repo"
        bare = tmp / "remote.git"
        progress(f"sync: a repository of {FILES} files, {STREAMS} streams with two commits each")
        generate_repo(repo, FILES, env=env, top_dirs=NAMES, extra_files={"streams.yaml": streams_yaml(True)})
        git(tmp, "init", "-q", "--bare", "-b", "main", str(bare), env=env)
        git(repo, "remote", "add", "origin", str(bare), env=env)
        git(repo, "push", "-q", "origin", "main", env=env)
        streams = [sys.executable, "-m", "streams"]
        run_measured([*streams, "start"], repo, env)
        worktrees = [tmp / "repo.streams" / n for n in NAMES]
        for name, wt in zip(NAMES, worktrees, strict=True):
            for i in range(2):
                (wt / name / f"work{i}.txt").write_text(f"{name} {i}\n")
                git(wt, "add", ".", env=env)
                git(wt, "commit", "-q", "-m", f"{name} work {i}", env=env)
        run_measured([*streams, "sync"], repo, env)  # everything rebased and pushed once

        def streams_sync(with_env: dict[str, str] = env) -> tuple[float, float]:
            return run_measured([*streams, "sync"], repo, with_env)

        core_code = (
            "from streams.workspace import discover, load_config; from coordinator.sync import sync_pass; "
            "ws = discover('.'); sync_pass(ws, load_config(ws))"
        )

        def sync_core() -> tuple[float, float]:
            return run_measured([sys.executable, "-c", core_code], repo, env)

        def raw(onto: str, *, fetch: bool, push: bool) -> Side:
            def side(with_env: dict[str, str] = env) -> tuple[float, float]:
                wall = cpu = 0.0
                steps = [(["git", "fetch", "-q", "origin"], repo)] if fetch else []
                steps += [(["git", "rebase", "-q", onto], wt) for wt in worktrees]
                if push:
                    leases = [f"--force-with-lease=refs/heads/streams/{n}" for n in NAMES]
                    refs = [f"refs/heads/streams/{n}:refs/heads/streams/{n}" for n in NAMES]
                    steps.append((["git", "push", "-q", *leases, "origin", *refs], repo))
                for argv, cwd in steps:
                    w, c = run_measured(argv, cwd, with_env)
                    wall, cpu = wall + w, cpu + c
                return wall, cpu

            return side

        counter = [0]

        def advance_main(push: bool) -> Callable[[], None]:
            def step() -> None:
                counter[0] += 1
                (repo / "notes").mkdir(exist_ok=True)
                (repo / "notes" / f"n{counter[0]}.md").write_text(f"note {counter[0]}\n")
                git(repo, "add", "notes", env=env)
                git(repo, "commit", "-q", "-m", f"main {counter[0]}", env=env)
                if push:
                    git(repo, "push", "-q", "origin", "main", env=env)

            return step

        def nothing() -> None:
            pass

        def all_on(onto: str) -> Callable[[], None]:
            def check() -> None:
                tip = git(repo, "rev-parse", onto, env=env).strip()
                on_top = git(repo, "for-each-ref", f"--contains={tip}", "refs/heads/streams/", env=env).splitlines()
                if len(on_top) != STREAMS:
                    raise RuntimeError(f"only {len(on_top)} of {STREAMS} stream branches contain {onto}: not measured")

            return check

        def processes(ours: Side, raw_side: Side, before_each: Callable[[], None]) -> dict[str, object]:
            """Git processes each side starts for one round (hooks' own git calls included), counted
            in one extra untimed round each with GIT_TRACE2_EVENT."""
            counts: dict[str, object] = {}
            for label, side in (("streams", ours), ("git", raw_side)):
                trace = tmp / f"trace-{label}.json"
                trace.unlink(missing_ok=True)
                before_each()
                side({**env, "GIT_TRACE2_EVENT": str(trace)})
                events = [json.loads(line) for line in trace.read_text().splitlines()]
                counts[f"{label}_git_processes"] = sum(1 for e in events if e.get("event") == "start")
                counts[f"{label}_hooks_run"] = sum(
                    1 for e in events if e.get("event") == "child_start" and e.get("child_class") == "hook"
                )
            return counts

        nothing_to_do = _compare(
            "nothing to do", reps, streams_sync, raw("origin/main", fetch=True, push=False), nothing, sync_core
        )
        rebase_remote = _compare(
            "rebase all (remote)",
            reps,
            streams_sync,
            raw("origin/main", fetch=True, push=True),
            advance_main(True),
            after_each=all_on("origin/main"),
        )
        # The configuration in force is the one committed on the base branch (not the working copy's).
        (repo / "streams.yaml").write_text(streams_yaml(False))
        git(repo, "commit", "-q", "-m", "streams.yaml: no remote", "streams.yaml", env=env)
        run_measured([*streams, "sync"], repo, env)  # every stream rebased onto the local main once
        raw_local = raw("main", fetch=False, push=False)
        rebase_local = _compare(
            "rebase all", reps, streams_sync, raw_local, advance_main(False), after_each=all_on("main")
        )
        rebase_local.update(processes(streams_sync, raw_local, advance_main(False)))
        fs = filesystem_of(tmp)

    nothing_to_do.update(
        what=f"`streams sync` with nothing to do vs `git fetch` + {STREAMS} sequential `git rebase` with nothing to do",
        target_ratio=TARGET_NOTHING,
        meets_target=float(nothing_to_do["ratio"]) <= TARGET_NOTHING,  # type: ignore[arg-type]
    )
    rebase_local.update(
        what=f"`streams sync` rebasing all {STREAMS} streams (no remote) vs {STREAMS} sequential `git rebase main`",
        target_ratio=TARGET_REBASE,
        meets_target=float(rebase_local["ratio"]) <= TARGET_REBASE,  # type: ignore[arg-type]
    )
    rebase_remote.update(
        what=f"`streams sync` fetch + rebase {STREAMS} + push vs `git fetch` + {STREAMS} `git rebase` + one "
        "`git push --force-with-lease` of the branches (no target: information)",
    )
    return {
        "files": FILES,
        "streams": STREAMS,
        "runs": reps,
        "filesystem": fs,
        "nothing_to_do": nothing_to_do,
        "rebase_all": rebase_local,
        "rebase_all_with_remote": rebase_remote,
    }
