"""The one-pass tree check (``ownership.check_tree``) says exactly what the old per-stream check said.

``reference_check_tree`` below is the check as it was before issue 16: every stream's patterns
filtered over every tracked path (pathspec's regexes for long lists), each pattern once more for
the dead-pattern warnings. Randomized configurations and trees (fixed seeds) must give the same
errors and warnings, in the same order, from both. Also: the cache of a passed check is keyed on
the tracked-path set and the configuration, so a base that moved without adding or removing a
path does not re-run it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from streams.config import Config, parse
from streams.kernel import paths as kpaths
from streams.kernel.paths import CONFIG_FILE
from streams.ownership import (
    Ownership,
    PatternSet,
    TreeCheck,
    _compile_one,
    check_tree,
    compile_config,
    regex_head,
)
from streams.workspace import discover, load_config
from tests.conftest import Repo, make_repo, run_cli
from tests.test_ownership import GROUPS


def reference_check_tree(config: Config, tracked: Sequence[str], *, display: str = CONFIG_FILE) -> TreeCheck:
    """The tree check before issue 16 (streams x paths), kept verbatim as the oracle."""
    errors: list[str] = []
    warnings: list[str] = []
    own = Ownership(config)
    owners: dict[str, str] = {}
    reported: set[tuple[str, str]] = set()
    for s in config.streams:
        for path in own.streams[s.name].filter(tracked):
            other = owners.setdefault(path, s.name)
            if other != s.name and (other, s.name) not in reported:
                reported.add((other, s.name))
                errors.append(
                    f"{display}:{s.line}: streams.{s.name}.owns: {path!r} is owned by both {other!r} "
                    f"and {s.name!r}; narrow one of the patterns so each path has one owner"
                )
        for pattern, line in zip(s.owns, s.owns_lines, strict=True):
            if pattern.startswith("!"):
                continue
            if not PatternSet.compile([pattern]).filter(tracked):
                warnings.append(f"{display}:{line}: streams.{s.name}.owns: {pattern!r} matches no tracked file")
    shared_tracked = own.shared.filter(tracked)
    candidates = list(shared_tracked) + [
        p.strip("/") for p in config.shared if not any(c in p for c in "*?[") and p.strip("/") not in shared_tracked
    ]
    for path in candidates:
        if path in owners or any(m.matches(path) for m in own.streams.values()):
            holder = owners.get(path) or next(n for n, m in own.streams.items() if m.matches(path))
            line = next(
                (
                    ln
                    for p, ln in zip(config.shared, config.shared_lines, strict=True)
                    if PatternSet.compile([p]).matches(path)
                ),
                0,
            )
            errors.append(
                f"{display}:{line}: shared: {path!r} is shared but also owned by stream {holder!r}; "
                "remove it from shared or from that stream's owns"
            )
    return TreeCheck(tuple(errors), tuple(warnings))


SEGMENTS = ["a", "b", "src", "api", "docs", "x.md", "y.py", "name", "logs", "test_a.py", "b.d", "foo-bar", "ab"]
GLOBS = ["*", "*.md", "*.py", "a*", "*b", "?", "a?", "[ab]", "test_*.py", "b.d", "**"]


def random_path(rng: random.Random) -> str:
    return "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(1, 5)))


def random_pattern(rng: random.Random, tracked: Sequence[str]) -> str:
    roll = rng.random()
    if roll < 0.3 and tracked:  # a literal directory or file that exists, in one of its spellings
        parts = rng.choice(tracked).split("/")
        lit = "/".join(parts[: rng.randint(1, len(parts))])
        return rng.choice([lit, f"/{lit}", f"{lit}/", f"{lit}/**", f"{lit}/*", f"/{lit}/"])
    if roll < 0.45:  # something that matches nothing
        return rng.choice(["nothing/**", "zz", "/q/r/", "*.none", "src/zz*"])
    if roll < 0.55:
        pats = rng.choice(GROUPS)[0]
        return rng.choice(pats)
    words = [rng.choice(SEGMENTS + GLOBS) for _ in range(rng.randint(1, 4))]
    lead = rng.choice(["", "", "/", "**/"])
    tail = rng.choice(["", "", "/", "/**"])
    return lead + "/".join(words) + tail


def quote(pattern: str) -> str:
    return json.dumps(pattern)  # JSON strings are YAML flow scalars


def random_config(rng: random.Random, tracked: Sequence[str]) -> str:
    lines = ["version: 1", "base: main"]
    shared = [random_pattern(rng, tracked) for _ in range(rng.randint(0, 3))]
    if shared:
        lines.append(f"shared: [{', '.join(quote(p) for p in shared)}]")
    lines.append("streams:")
    for i in range(rng.randint(1, 12)):
        owns = [random_pattern(rng, tracked) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.25:
            owns.append("!" + random_pattern(rng, tracked))
        if rng.random() < 0.1:
            owns.append("#not a pattern")
        lines += [f"  s{i}:", f"    owns: [{', '.join(quote(p) for p in owns)}]"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(12))
def test_one_pass_check_equals_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    compared = 0
    for _ in range(60):
        # Paths that are never also a directory of another path (a git tree cannot hold both).
        tracked: list[str] = []
        candidates = sorted({random_path(rng) for _ in range(rng.choice([5, 40, 150]))})
        rng.shuffle(candidates)
        for p in candidates:
            if not any(q.startswith(p + "/") or p.startswith(q + "/") for q in tracked):
                tracked.append(p)
        if rng.random() < 0.5:
            tracked.sort()
        text = random_config(rng, tracked)
        try:
            config = parse(text, path=Path("/nowhere/streams.yaml"))
        except Exception:  # noqa: BLE001 - a generated pattern the loader refuses: not this test's subject
            continue
        assert check_tree(config, tracked) == reference_check_tree(config, tracked), text
        compared += 1
    assert compared > 30  # the generator mostly makes valid configurations


def test_reference_is_not_vacuous() -> None:
    """The randomized comparison sees overlaps, shared-and-owned paths and dead patterns."""
    rng = random.Random(99)
    kinds: set[str] = set()
    for _ in range(300):
        tracked = sorted({random_path(rng) for _ in range(40)})
        tracked = [p for p in tracked if not any(q.startswith(p + "/") for q in tracked)]
        try:
            config = parse(random_config(rng, tracked), path=Path("/nowhere/streams.yaml"))
        except Exception:  # noqa: BLE001
            continue
        result = check_tree(config, tracked)
        kinds.update("overlap" for e in result.errors if "owned by both" in e)
        kinds.update("shared" for e in result.errors if "is shared but also owned" in e)
        kinds.update("dead" for _ in result.warnings)
    assert kinds == {"overlap", "shared", "dead"}


@pytest.mark.parametrize(
    "regex", ["^a/[^/]+/c(?:/|$)", "^src(?:/.+)?/test_[^/]*\\.py(?:/|$)", "^(?:.+/)?a[^/]*(?:/|$)", "^ab?c", "^a|b"]
)
def test_regex_head_is_a_prefix_of_every_match(regex: str) -> None:
    import re

    head = regex_head(regex)
    rx = re.compile(regex)
    for path in ["a", "ab", "ac", "abc", "a/b/c", "a/bb/c", "src/test_a.py", "src/x/test_b.py", "b", "x/ab"]:
        if rx.match(path):
            assert path.startswith(head), (regex, head, path)


def test_regex_heads_of_pathspec_patterns() -> None:
    import re

    pool = [p for pats, _ in GROUPS for p in pats]
    for pattern in pool:
        for kind, arg, _, _ in _compile_one(pattern)[0]:
            if kind != "regex":
                continue
            head = regex_head(arg)
            for paths_ in (ps for pats, ps in GROUPS):
                for path in paths_:
                    if re.match(arg, path):
                        assert path.startswith(head), (pattern, arg, head, path)


# --- the cache of a passed check -----------------------------------------------------------------


def _yaml(extra: str = "") -> str:
    return f"version: 1\nbase: main\nstreams:\n  api:\n    owns: [src/api/**, gone/]\n  ui:\n    owns: [src/ui/**]\n{extra}"


def _cache(repo: Repo) -> dict[str, object]:
    ws = discover(repo.root)
    data = json.loads((ws.cache_dir / kpaths.TREE_CHECK_FILE).read_text())
    assert isinstance(data, dict)
    return data


def test_cache_survives_a_base_that_moved_without_new_paths(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"src/api/a.py": "a\n", "src/ui/u.py": "u\n"}, config=_yaml())
    assert run_cli(["check"], repo.root).code == 0
    ws = discover(repo.root)
    load_config(ws, check_tracked=True)
    first = _cache(repo)
    assert first["warnings"] == ["streams.yaml:5: streams.api.owns: 'gone/' matches no tracked file"]
    # The base moves: a changed file, no added or removed path. The check's answer cannot change.
    repo.write("src/api/a.py", "changed\n")
    repo.commit_all("edit")
    load_config(ws, check_tracked=True)
    second = _cache(repo)
    assert second["names"] == first["names"]
    assert second["tree"] != first["tree"]  # the cache names the new tree: the next look needs no git
    assert second["ran"] == first["ran"]  # not re-run: the stamp of the run that produced it is the same
    # A new path: the check runs again.
    repo.write("src/ui/v.py", "v\n")
    repo.commit_all("new file")
    load_config(ws, check_tracked=True)
    third = _cache(repo)
    assert third["names"] != first["names"]
    assert third["ran"] != first["ran"]


def test_cache_misses_when_the_config_changes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"src/api/a.py": "a\n", "src/ui/u.py": "u\n"}, config=_yaml())
    assert run_cli(["check"], repo.root).code == 0
    load_config(discover(repo.root), check_tracked=True)
    first = _cache(repo)
    repo.write("streams.yaml", _yaml("  docs:\n    owns: [src/api/a.py]\n"))
    repo.commit_all("overlap")
    r = run_cli(["list"], repo.root)
    assert r.code == 1
    assert "owned by both 'api' and 'docs'" in r.err
    assert _cache(repo) == first  # a failed check is not cached


@pytest.mark.parametrize("seed", range(4))
def test_primed_rivals_equal_the_pairwise_ones(seed: int) -> None:
    """``CompiledConfig.prime_rivals`` (an index of literal heads, for verify over every stream)
    gives each stream the rivals the pairwise comparison gives."""
    rng = random.Random(seed)
    compared = 0
    for _ in range(40):
        tracked = sorted({random_path(rng) for _ in range(30)})
        try:
            config = parse(random_config(rng, tracked), path=Path("/nowhere/streams.yaml"))
        except Exception:  # noqa: BLE001
            continue
        pairwise = compile_config(config)
        primed = compile_config(config)
        primed.prime_rivals()
        for name in config.names:
            assert primed.rivals(name) == pairwise.rivals(name), name
        compared += 1
    assert compared > 20
