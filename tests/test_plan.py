"""``streams plan``: waves from ``depends``, ``parallel: false`` and ``touches``, in the PARALLEL
EXECUTION PLAN format, against real repositories."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from coordinator.plan import build_plan
from streams.cli.base import jsonable
from streams.config import load, parse
from tests.conftest import Repo, make_repo, run_cli

DERIVED = ("total_steps", "total_waves", "parallel_steps", "parallelism", "digest", "task_id")

# The MAKER seed's five-step example: b and c depend on a, d on both, e on d.
MAKER = {"a": "", "b": "depends: [a]", "c": "depends: [a]", "d": "depends: [b, c]", "e": "depends: [d]"}


def streams_yaml(streams: dict[str, str], *, run: str = "") -> str:
    """A streams.yaml where stream X owns X/** and has the extra keys given for it."""
    body = "".join(f"  {n}: {{owns: [{n}/**]{', ' + extra if extra else ''}}}\n" for n, extra in streams.items())
    text = f"version: 1\nbase: main\nshared: [pyproject.toml, CHANGELOG.md]\nstreams:\n{body}"
    return text + (f"run: {run}\n" if run else "")


def repo_for(tmp: Path, streams: dict[str, str], *, run: str = "") -> Repo:
    files = {f"{n}/file.txt": f"{n}\n" for n in streams} | {"pyproject.toml": "x\n", "CHANGELOG.md": "x\n"}
    return make_repo(tmp, files=files, config=streams_yaml(streams, run=run))


def plan_data(repo: Repo, *args: str) -> dict[str, Any]:
    r = run_cli(["plan", *args, "--json"], repo.root)
    assert r.code == 0, r
    env = json.loads(r.out)
    assert env["command"] == "plan" and env["ok"] is True and env["error"] is None, env
    data: dict[str, Any] = env["data"]
    return data


def plan_text(repo: Repo, *args: str) -> str:
    r = run_cli(["plan", *args], repo.root)
    assert r.code == 0, r
    return r.out


def waves(data: dict[str, Any]) -> list[list[str]]:
    return [w["streams"] for w in data["waves"]]


def step(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in data["steps"] if s["name"] == name)
    return found


def test_the_maker_five_step_example_gives_four_waves_and_40_percent(tmp_path: Path) -> None:
    repo = repo_for(tmp_path, MAKER)
    data = plan_data(repo)
    assert waves(data) == [["a"], ["b", "c"], ["d"], ["e"]]
    assert [w["mode"] for w in data["waves"]] == ["sequential", "parallel", "sequential", "sequential"]
    assert [w["reason"] for w in data["waves"]] == [
        "no dependencies",
        "depends on a",
        "depends on b, c",
        "depends on d",
    ]
    assert (data["total_steps"], data["total_waves"], data["parallel_steps"]) == (5, 4, 2)
    assert data["parallelism"] == 40.0
    assert data["critical_path"] == ["a", "b", "d", "e"]
    assert [(e["stream"], e["dependents"]) for e in data["graph"]] == [
        ("a", ["b", "c"]),
        ("b", ["d"]),
        ("c", ["d"]),
        ("d", ["e"]),
    ]
    assert [s["wave"] for s in data["steps"]] == [1, 2, 2, 3, 4]
    text = plan_text(repo)
    for line in (
        "PARALLEL EXECUTION PLAN",
        f"TASK ID {data['task_id']}",
        "TOTAL STEPS 5",
        "TOTAL WAVES 4",
        "PARALLELISM 40% (2 of 5 steps run in parallel)",
        "WAVE 1 (sequential): a  — no dependencies",
        "WAVE 2 (parallel): b, c  — depends on a",
        "WAVE 3 (sequential): d  — depends on b, c",
        "WAVE 4 (sequential): e  — depends on d",
        "  [a] -> [b], [c]",
        "  [d] -> [e]",
        "  a -> b -> d -> e  (4 steps, up to 3h 00m)",
        "ORCHESTRATOR INSTRUCTIONS",
        "  1. For a parallel wave, start all its streams at once",
    ):
        assert line in text, f"{line!r} not in:\n{text}"
    assert "All waves are sequential" not in text
    assert text.index("WAVE 1") < text.index("WAVE 2") < text.index("DEPENDENCY GRAPH") < text.index("CRITICAL PATH")


def test_the_digest_is_the_sha256_of_the_canonical_json_and_names_the_task(tmp_path: Path) -> None:
    data = plan_data(repo_for(tmp_path, MAKER))
    content = {k: v for k, v in data.items() if k not in DERIVED}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert data["digest"] == hashlib.sha256(canonical).hexdigest()
    assert data["task_id"] == "plan-" + data["digest"][:8]


def test_a_chain_is_all_sequential_with_0_percent(tmp_path: Path) -> None:
    repo = repo_for(tmp_path, {"a": "", "b": "depends: [a]", "c": "depends: [b]"})
    data = plan_data(repo)
    assert waves(data) == [["a"], ["b"], ["c"]]
    assert {w["mode"] for w in data["waves"]} == {"sequential"}
    assert (data["parallel_steps"], data["parallelism"]) == (0, 0.0)
    text = plan_text(repo)
    assert "PARALLELISM 0% (0 of 3 steps run in parallel)" in text
    assert "All waves are sequential" in text
    assert "For a parallel wave" not in text  # no instruction for what the plan does not have


def test_parallel_false_gets_a_sequential_wave_of_its_own(tmp_path: Path) -> None:
    repo = repo_for(tmp_path, {"a": "", "b": "parallel: false", "c": "", "d": "depends: [b]"})
    data = plan_data(repo)
    assert waves(data) == [["a", "c"], ["b"], ["d"]]
    assert [w["mode"] for w in data["waves"]] == ["parallel", "sequential", "sequential"]
    assert data["waves"][1]["reason"] == "parallel: false"
    assert step(data, "b")["parallel"] is False
    assert "WAVE 2 (sequential): b  — parallel: false" in plan_text(repo)


def test_two_streams_touching_one_shared_file_are_split_and_dependents_move_along(tmp_path: Path) -> None:
    repo = repo_for(
        tmp_path,
        {
            "a": "touches: [pyproject.toml]",
            "b": "touches: [/pyproject.toml]",  # the same file, written anchored
            "c": "touches: [/CHANGELOG.md]",
            "d": "depends: [b]",
            "e": "touches: [CHANGELOG.md]",
            "f": "",
        },
    )
    data = plan_data(repo)
    assert waves(data) == [["a", "c", "f"], ["b", "e"], ["d"]]
    assert step(data, "b")["reason"] == "touches pyproject.toml like a, moved after it"
    assert step(data, "e")["reason"] == "touches CHANGELOG.md like c, moved after it"
    assert data["waves"][1]["reason"] == (
        "b: touches pyproject.toml like a, moved after it; e: touches CHANGELOG.md like c, moved after it"
    )
    assert step(data, "d")["wave"] == 3  # after b, its dependency, which moved
    text = plan_text(repo)
    assert "WAVE 2 (parallel): b, e  — b: touches pyproject.toml like a, moved after it; e: touches" in text


def test_a_moved_stream_goes_before_the_streams_that_just_became_ready(tmp_path: Path) -> None:
    streams = {"a": "touches: [pyproject.toml]", "f": "depends: [a], touches: [pyproject.toml]"}
    data = plan_data(repo_for(tmp_path, {**streams, "b": "touches: [pyproject.toml]"}))
    assert waves(data) == [["a"], ["b"], ["f"]]  # b waited a wave already: f (earlier in config) waits now
    assert step(data, "f")["reason"] == "depends on a; touches pyproject.toml like b, moved after it"


def test_within_a_wave_priority_then_longest_expected_then_config_order(tmp_path: Path) -> None:
    streams = {
        "a": "timeout: 10m",
        "b": "priority: 5",
        "c": "timeout: 3h",
        "d": "timeout: 1h",
        "e": "",
        "f": "",
        "g": "priority: -1, timeout: 5h",
    }
    repo = repo_for(tmp_path, streams, run="{timeout: 2h}")
    data = plan_data(repo)
    assert waves(data) == [["b", "c", "e", "f", "d", "a", "g"]]
    assert [step(data, n)["expected"] for n in "bcefdag"] == [7200, 10800, 7200, 7200, 3600, 600, 18000]
    assert [step(data, n)["priority"] for n in "bcefdag"] == [5, 0, 0, 0, 0, 0, -1]
    text = plan_text(repo)
    assert "WAVE 1 (parallel): b, c, e, f, d, a, g  — no dependencies" in text
    assert "    b: priority 5, expected up to 2h 00m" in text


def test_the_critical_path_is_the_chain_of_most_steps_then_most_expected_time(tmp_path: Path) -> None:
    streams = {
        "x": "timeout: 10h",
        "y": "depends: [x], timeout: 10h",
        "a": "",
        "b": "depends: [a]",
        "c": "depends: [b]",
        "p": "timeout: 1h",
        "q": "depends: [p]",
        "z": "timeout: 30h",  # the longest expected, but one step
        "r": "depends: [q, y, z]",
        "s": "depends: [q]",
    }
    data = plan_data(repo_for(tmp_path, streams))
    assert data["critical_path"] == ["x", "y", "r"]  # 3 steps like a-b-c and p-q-r, the longest expected
    (tmp_path / "sub").mkdir()
    data = plan_data(repo_for(tmp_path / "sub", {k: v for k, v in streams.items() if k in "xyabc"}))
    assert data["critical_path"] == ["a", "b", "c"]  # more steps beat more time


def test_a_selection_plans_only_the_named_streams_and_lists_outside_dependencies(tmp_path: Path) -> None:
    repo = repo_for(tmp_path, MAKER)
    data = plan_data(repo, "e", "d", "e")
    assert data["selected"] == ["e", "d"]
    assert waves(data) == [["d"], ["e"]]
    assert data["external"] == ["b", "c"]
    assert (step(data, "d")["depends"], step(data, "d")["external"]) == ([], ["b", "c"])
    assert data["waves"][0]["reason"] == "depends on b, c outside this plan (taken as done)"
    assert [(e["stream"], e["dependents"], e["external"]) for e in data["graph"]] == [
        ("b", ["d"], True),
        ("c", ["d"], True),
        ("d", ["e"], False),
    ]
    assert data["critical_path"] == ["d", "e"]
    text = plan_text(repo, "d", "e")
    assert "EXTERNAL b, c  (outside the selection: not planned, taken as done)" in text
    assert "  [b] (external) -> [d]" in text


def test_an_unknown_name_is_one_line_and_exit_1(tmp_path: Path) -> None:
    repo = repo_for(tmp_path, MAKER)
    r = run_cli(["plan", "a", "zz"], repo.root)
    assert (r.code, r.out) == (1, "")
    assert r.err.strip().splitlines() == [
        "streams: error: unknown stream 'zz' (known streams: a, b, c, d, e; see streams.yaml)"
    ]
    r = run_cli(["plan", "zz", "--json"], repo.root)
    env = json.loads(r.out)
    assert (r.code, env["ok"], env["data"], env["error"]["code"]) == (1, False, None, "unknown_stream")


def test_no_merge_starts_every_stream_from_the_base_and_says_where_the_work_waits(tmp_path: Path) -> None:
    """A branch cut from a dependency's tip would hold its commits, which the scope check judges as
    the dependent's own: without merging, every stream starts from the base and the notes say on
    which branch each dependency's work waits."""
    repo = repo_for(tmp_path, MAKER)
    merged = plan_data(repo)
    assert merged["merge"] is True and merged["notes"] == []
    assert {s["start_from"] for s in merged["steps"]} == {"base"}
    data = plan_data(repo, "--no-merge")
    assert data["merge"] is False
    assert {s["start_from"] for s in data["steps"]} == {"base"}
    assert data["notes"][0] == (
        "b starts from the base: the work of a stays on streams/a until it lands (`streams merge`); read it there"
    )
    assert any(
        n.startswith("d starts from the base: the work of b, c stays on streams/b, streams/c") for n in data["notes"]
    )
    assert waves(data) == waves(merged) and data["digest"] != merged["digest"]
    text = plan_text(repo, "--no-merge")
    assert "stays on streams/a until it lands" in text and "Do not land anything" in text


def test_run_merge_false_in_streams_yaml_plans_without_merging(tmp_path: Path) -> None:
    data = plan_data(repo_for(tmp_path, {"a": "", "b": "depends: [a]"}, run="{merge: false}"))
    assert data["merge"] is False and step(data, "b")["start_from"] == "base" and data["notes"]


def test_a_selection_without_merging_names_an_outside_dependency(tmp_path: Path) -> None:
    data = plan_data(repo_for(tmp_path, MAKER), "--no-merge", "b")
    assert step(data, "b")["start_from"] == "base" and "the work of a stays on streams/a" in data["notes"][0]


def test_the_json_envelope_holds_the_plan_the_core_builds(tmp_path: Path) -> None:
    repo = repo_for(tmp_path, MAKER)
    r = run_cli(["plan", "--json", "b", "c"], repo.root)
    env = json.loads(r.out)
    assert set(env) == {"version", "command", "ok", "data", "error"} and env["version"] == 1
    plan = build_plan(load(repo.root / "streams.yaml"), ["b", "c"])
    assert env["data"] == plan.to_json() == jsonable(plan)
    assert list(env["data"])[-len(DERIVED) :] == list(DERIVED)


def test_the_same_config_gives_the_same_plan_and_digest(tmp_path: Path) -> None:
    for sub in ("one", "two", "three"):
        (tmp_path / sub).mkdir()
    first = repo_for(tmp_path / "one", MAKER)
    second = repo_for(tmp_path / "two", MAKER)
    assert plan_data(first) == plan_data(second) == plan_data(first)
    assert plan_text(first) == plan_text(second)
    changed = repo_for(tmp_path / "three", {**MAKER, "c": "depends: [a], priority: 1"})
    assert plan_data(changed)["digest"] != plan_data(first)["digest"]


def test_no_streams_is_an_empty_plan(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"README.md": "x\n"}, config="version: 1\nbase: main\nstreams:\n")
    data = plan_data(repo)
    assert (data["steps"], data["waves"], data["critical_path"], data["parallelism"]) == ([], [], [], 0.0)
    assert "No streams to plan" in plan_text(repo)


TWELVE = {
    "core": "touches: [pyproject.toml]",
    "db": "touches: [pyproject.toml]",
    "auth": "depends: [core]",
    "api": "depends: [core, db], touches: [CHANGELOG.md]",
    "cli": "depends: [core]",
    "ui": "depends: [api], touches: [CHANGELOG.md]",
    "docs": "parallel: false",
    "search": "depends: [db, auth], touches: [CHANGELOG.md]",
    "billing": "depends: [auth, api]",
    "mobile": "depends: [api, auth], parallel: false",
    "admin": "depends: [ui, billing]",
    "release": "depends: [admin, mobile, search, cli, docs], touches: [pyproject.toml]",
}


def check_waves(data: dict[str, Any], depends: dict[str, tuple[str, ...]], touches: dict[str, set[str]]) -> None:
    """Every planned stream once; dependencies in earlier waves; no shared touch within a wave; a
    parallel: false stream alone; modes and the parallelism figure agree with the waves."""
    names = [n for w in waves(data) for n in w]
    assert sorted(names) == sorted(depends)
    wave_of = {s["name"]: s["wave"] for s in data["steps"]}
    for n, deps in depends.items():
        assert all(wave_of[d] < wave_of[n] for d in deps), (n, deps, wave_of)
    for w in data["waves"]:
        assert w["mode"] == ("parallel" if len(w["streams"]) > 1 else "sequential")
        seen: set[str] = set()
        for n in w["streams"]:
            assert not touches[n] & seen, (w, n)
            seen |= touches[n]
            assert step(data, n)["parallel"] or len(w["streams"]) == 1
    assert data["parallel_steps"] == sum(len(w) for w in waves(data) if len(w) > 1)


def test_a_twelve_stream_graph_respects_every_dependency(tmp_path: Path) -> None:
    data = plan_data(repo_for(tmp_path, TWELVE))
    config = load(tmp_path / "repo" / "streams.yaml")
    check_waves(data, {s.name: s.depends for s in config.streams}, {s.name: set(s.touches) for s in config.streams})
    assert waves(data) == [
        ["core"],
        ["docs"],  # parallel: false
        ["db", "auth", "cli"],  # db touches pyproject.toml like core
        ["api"],
        ["search", "billing"],  # search touches CHANGELOG.md like api
        ["mobile"],  # parallel: false
        ["ui"],  # touches CHANGELOG.md like search
        ["admin"],
        ["release"],
    ]
    assert (data["parallel_steps"], data["total_steps"]) == (5, 12)
    assert data["critical_path"] == ["core", "api", "ui", "admin", "release"]


def test_random_graphs_keep_every_rule() -> None:
    rng = random.Random(13)
    for _ in range(60):
        n = rng.randint(1, 16)
        streams: dict[str, str] = {}
        for i in range(n):
            deps = sorted({f"s{j}" for j in range(i) if rng.random() < 0.2})
            keys = [f"depends: [{', '.join(deps)}]"] if deps else []
            if rng.random() < 0.3:
                keys.append(f"touches: [{rng.choice(['pyproject.toml', 'CHANGELOG.md'])}]")
            if rng.random() < 0.1:
                keys.append("parallel: false")
            if rng.random() < 0.3:
                keys.append(f"priority: {rng.randint(-2, 2)}")
            streams[f"s{i}"] = ", ".join(keys)
        config = parse(streams_yaml(streams), path=Path("streams.yaml"))
        data = build_plan(config).to_json()
        check_waves(data, {s.name: s.depends for s in config.streams}, {s.name: set(s.touches) for s in config.streams})
        longest = max((len(c) for c in _chains(config.streams)), default=0)
        assert len(data["critical_path"]) == longest
        assert data["total_waves"] >= longest


def _chains(streams: Any) -> list[list[str]]:
    by_name = {s.name: s for s in streams}

    def up(name: str) -> list[list[str]]:
        deps = by_name[name].depends
        return [[*c, name] for d in deps for c in up(d)] if deps else [[name]]

    return [c for s in streams for c in up(s.name)]
