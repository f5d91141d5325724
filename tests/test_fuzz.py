"""Fuzzing (issue 11): generated streams.yaml documents and generated argument vectors across every
command. Whatever the input: never exit 70 (the internal error), never a traceback, and a command
that fails leaves the disk as it was (the repository's files, its refs and worktrees, and the
common dir's ``streams/`` state).

Fixed seeds, so every run tries the same inputs; a failure names the input (and its index) to
replay. The commands run in-process (``run_cli``) against real repositories and real git.
"""

from __future__ import annotations

import importlib
import random
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from streams.cli.base import COMMAND_MODULES, cli
from tests.conftest import Outcome, Repo, disk_snapshot, make_repo, run_cli

SEED = 11
N_CONFIGS = 500
N_ARGVS = 500

# Runs until Ctrl-C: `watch`, and `--watch` of sync and status. They are fuzzed with --help only.
ENDLESS_COMMANDS = {("watch",)}
ENDLESS_OPTIONS = {"--watch"}

# Everything under the tmp dir is compared, the hooks' compiled cache included: a refused
# configuration writes nothing (it is checked in full before the cache is refreshed).
NOT_COMPARED: tuple[str, ...] = ()


def snapshot(root: Path) -> dict[str, Any]:
    """``disk_snapshot`` without the empty files a mutex is taken on (``*.flock``, a lease's
    ``*.guard``): taking a lock creates one once and leaves it for good, by design (unlinking one
    would let two holders in), so it is no state a failed command changed."""
    snap = disk_snapshot(root, ignore=NOT_COMPARED)
    files = snap["files"]
    assert isinstance(files, dict)
    snap["files"] = {k: v for k, v in files.items() if not (k.endswith((".flock", ".guard")) and v == b"")}
    return snap


def check(r: Outcome, what: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    assert r.code != 70, f"{what}: exit 70\n{r.err}"
    assert "Traceback" not in r.err and "Traceback" not in r.out, f"{what}: traceback\n{r.err}"
    if r.code != 0:
        assert r.err.startswith("streams: "), f"{what}: failed without a message: {r}"
        assert after == before, f"{what}: exit {r.code} changed the disk: {changes(before, after)}\n{r.err}"


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two ``disk_snapshot``s, briefly."""
    fa, fb = before["files"], after["files"]
    out = [f"file {k}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    return out + [f"dir {d}" for d in sorted(set(before["dirs"]) ^ set(after["dirs"]))]


# --- values that have broken things -----------------------------------------------------------------

NASTY = [
    "",
    " ",
    "-",
    "--",
    "0",
    "-1",
    "1e400",
    "NaN",
    "inf",
    "٣",
    "３",
    "4_0",
    "9" * 60,
    "\udcff",
    "caf\udce9",
    "a\nb",
    "\t",
    "\x1b[31m",
    "../x",
    "/etc/passwd",
    ".git/config",
    ".streams/stream-ui.md",
    "streams.yaml",
    "pyproject.toml",
    "src/api/app.py",
    "docs/index.md",
    "src",
    "api",
    "ui",
    "docs",
    "nope",
    "HEAD",
    "main",
    "main..HEAD",
    "**",
    "*",
    "[z-a]",
    "30m",
    "0.5ms",
    "0s",
    "1h30m",
    "100",
    "101",
    "in_progress",
    "## Next Steps",
    "x" * 3000,
]


# --- streams.yaml documents ---------------------------------------------------------------------------

TOP_KEYS = ["version", "base", "remote", "branch_prefix", "worktree_root", "unowned", "shared", "streams"]
STREAM_KEYS = ["description", "owns", "depends", "parallel", "touches", "command"]
PATTERNS = ["src/api/**", "src/ui/**", "docs/**", "**", "*.md", "/", "[z-a]", "a\\", "!docs/**", "../x", ".git/x"]
PATTERNS += ["src/", "pyproject.toml", "tests/api/**", "", " ", "src/*/app.py", "x[", "**/*.ts", "/README.md"]


def scalar(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(NASTY + PATTERNS)
    if pick < 0.6:
        return rng.choice([None, True, False, 0, 1, -1, 1.5, 10**30, float("inf")])
    return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 12)))


def value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth > 3 or pick < 0.5:
        return scalar(rng)
    if pick < 0.75:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {str(scalar(rng)): value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def stream_entry(rng: random.Random, names: list[str]) -> Any:
    if rng.random() < 0.1:
        return value(rng)
    entry: dict[str, Any] = {}
    for key in rng.sample(STREAM_KEYS, rng.randint(0, len(STREAM_KEYS))):
        if key == "owns":
            entry[key] = rng.sample(PATTERNS, rng.randint(0, 3)) if rng.random() < 0.8 else value(rng)
        elif key in ("depends", "touches"):
            entry[key] = rng.sample([*names, "nope"], rng.randint(0, 2)) if rng.random() < 0.8 else value(rng)
        elif key == "parallel":
            entry[key] = rng.choice([True, False, "yes", None])
        else:
            entry[key] = scalar(rng)
    if rng.random() < 0.05:
        entry[rng.choice(["own", "dependz", "x"])] = scalar(rng)
    return entry


VALID: dict[str, list[Any]] = {
    "remote": [None, "origin"],
    "branch_prefix": ["streams/", "s/", "team/streams/"],
    "worktree_root": ["../{repo}.streams", "../wt", ".wt"],
    "unowned": ["reject", "allow"],
}

# Documents YAML makes tricky on purpose; {p} is a pattern, {n} a depth.
TEMPLATES = [
    "version: 1\nbase: main\nstreams:\n  api: &a {{owns: [{p}]}}\n  ui:\n    <<: *a\n",
    "version: 1\nbase: main\ndefaults: &d {{owns: [{p}]}}\nstreams:\n  api: {{<<: *d}}\n",
    "<<: {{version: 1, base: main}}\nstreams: {{}}\n",
    "version: 1\nbase: main\nstreams:\n  api:\n    owns: {open}{close}\n",
    "version: 1\nbase: main\nx: {deep}\n",
    "version: 1\nbase: main\nshared: [{p}]\nstreams:\n  api: {{owns: [{p}]}}\n",
    "version: 1\nbase: !!python/object:os.system main\n",
    "version: 1\nbase: main\nstreams:\n  api: {{parallel: !!bool maybe, owns: [{p}]}}\n",
    "version: !!int {p}\nbase: main\n",
    "version: 1\nbase: !!binary aGVsbG8=\n",
    "version: 1\nbase: main\nstreams:\n  api: {{owns: !custom [{p}]}}\n",
    "version: 1\nbase: main\nstreams:\n  ? [api]\n  : {{owns: [{p}]}}\n",
    "version: 1\nbase: main\nstreams:\n  api: {{owns: [&x {p}, *x]}}\n  ui: {{owns: [*x]}}\n",
]


def template(rng: random.Random) -> str:
    n = rng.choice([5, 50, 500, 3000])
    return rng.choice(TEMPLATES).format(
        p=yaml.safe_dump(rng.choice(PATTERNS), default_style="'").strip().removesuffix("\n..."),
        open="[" * n,
        close="]" * n,
        deep="{a: " * n + "1" + "}" * n,
    )


def document(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return template(rng)
    names = rng.sample(["api", "ui", "docs", "api", "ui", "docs", "a.b", "HEAD", "x/y", "-x", "ok_1", "", "é"], 3)
    names = list(dict.fromkeys(names))[: rng.randint(0, 3)]
    doc: dict[str, Any] = {"version": 1, "base": "main"}
    for key in rng.sample(TOP_KEYS, rng.randint(0, len(TOP_KEYS))):
        if key == "streams":
            doc[key] = {n: stream_entry(rng, names) for n in names} if rng.random() < 0.9 else value(rng)
        elif key == "shared":
            doc[key] = rng.sample(PATTERNS, rng.randint(0, 3)) if rng.random() < 0.8 else value(rng)
        elif key in VALID and rng.random() < 0.7:
            doc[key] = rng.choice(VALID[key])
        elif key not in ("version", "base") or rng.random() < 0.3:
            doc[key] = scalar(rng)
    if rng.random() < 0.05:
        doc[rng.choice(["stream", "extra", "<<"])] = value(rng)
    text = yaml.safe_dump(doc, allow_unicode=rng.random() < 0.5, default_flow_style=rng.random() < 0.3)
    return mutate(rng, text) if rng.random() < 0.25 else text


YAML_SNIPPETS = [
    "<<: *a\n",
    "&a ",
    "*a",
    "!!python/object:os.system ",
    "!!binary ",
    "!!bool ",
    "!custom ",
    "[" * 50,
    "{",
    "? ",
    "%YAML 1.1\n---\n",
    "\t",
    ": ",
    "- ",
    "'",
    '"',
    "\\",
    "#",
    "\n---\n",
    "\x00",
    "\ufeff",
]


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(text))
        op = rng.random()
        if op < 0.5:
            text = text[:at] + rng.choice(YAML_SNIPPETS) + text[at:]
        elif op < 0.8:
            text = text[:at] + text[at + rng.randint(1, 8) :]
        else:
            line = rng.choice(text.splitlines() or [""])
            text = text[:at] + "\n" + line + "\n" + text[at:]
    return text


CONFIG_COMMANDS = [
    ["list"],
    ["check"],
    ["status"],
    ["owner", "src/api/app.py"],
    ["verify"],
    ["locks"],
    ["start", "api"],
]


def test_generated_configs_never_crash(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    rng = random.Random(SEED)
    config = repo.root / "streams.yaml"
    for i in range(N_CONFIGS):
        text = document(rng)
        config.write_bytes(text.encode("utf-8", "surrogateescape"))
        args = CONFIG_COMMANDS[i % len(CONFIG_COMMANDS)]
        before = snapshot(tmp_path)
        r = run_cli(args, repo.root)
        check(r, f"config #{i} {text!r} with {args}", before, snapshot(tmp_path))


# --- argument vectors ----------------------------------------------------------------------------------


def commands() -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command `streams --help` lists, subcommands of groups included."""
    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(f"streams.cli.{module}")
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(path: tuple[str, ...], cmd: click.Command) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                walk((*path, name), sub)
        else:
            found.append((path, cmd))

    for name in sorted(COMMAND_MODULES):
        walk((name,), cli.commands[name])
    return found


# Values a command takes, so that most vectors get past parsing to the code that acts on them:
# each value is plausible, or (one time in three) nasty.
PLAUSIBLE: dict[str, list[str]] = {
    "paths": ["pyproject.toml", "src/api/app.py", "docs/index.md", "README.md", "src/ui/main.ts"],
    "names": ["api", "docs", "ui"],
    "rev_range": ["main..HEAD", "main..streams/api", "HEAD"],
    "--stream": ["api", "docs", "ui"],
    "--continue": ["api", "docs"],
    "--abort": ["api", "docs"],
    "--ttl": ["30m", "1h", "2s", "90s"],
    "--wait": ["0s", "1ms"],  # a long wait on a lease another vector left would only be slow
    "--interval": ["2", "1s"],
    "--iterations": ["1", "2"],
    "--status": ["in_progress", "blocked", "completed"],
    "--completion": ["0", "40", "100"],
    "--config-rev": ["main", "HEAD"],
}
TEXT = ["bump the version", "fix #12", "naïve café", "a; b", "x" * 200]


def plausible_or_nasty(rng: random.Random, key: str) -> str:
    if key == "--wait":
        return rng.choice(PLAUSIBLE[key] + ["x", "-1s", "٣s", ""])
    if rng.random() < 0.33:
        return rng.choice(NASTY)
    return rng.choice(PLAUSIBLE.get(key, TEXT))


def argv(rng: random.Random, path: tuple[str, ...], cmd: click.Command) -> list[str]:
    if path in ENDLESS_COMMANDS:
        return [*path, rng.choice(["--help", "--nope", "-h"])]
    out = list(path)
    for param in cmd.params:
        if isinstance(param, click.Option):
            name = param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0]
            if name in ENDLESS_OPTIONS or name in ("--help", "--version") or rng.random() < 0.6:
                continue
            for _ in range(rng.randint(1, 2) if param.multiple else 1):
                out.append(name)
                if not param.is_flag:
                    out.append(plausible_or_nasty(rng, name))
        elif isinstance(param, click.Argument) and rng.random() < 0.8:
            count = rng.randint(1, 2) if param.nargs == -1 else 1
            out += [plausible_or_nasty(rng, param.name or "") for _ in range(count)]
    if rng.random() < 0.1:
        out.insert(rng.randint(1, len(out)), rng.choice(["--nope", "-x", "--json", "--", "-C", "--stream"]))
    if rng.random() < 0.1:
        out = ["-C", rng.choice(["..", "/nonexistent", "src", "\udcff"]), *out]
    return out


def vectors(rng: random.Random) -> Iterator[list[str]]:
    every = commands()
    for i in range(N_ARGVS):
        path, cmd = every[i % len(every)]  # every command, in turn
        yield argv(rng, path, cmd)


def test_every_command_lists_in_the_fuzzer() -> None:
    names = {path[0] for path, _ in commands()}
    assert names == set(COMMAND_MODULES), names
    assert ("hooks", "install") in {path for path, _ in commands()}


@pytest.fixture
def fuzz_repo(tmp_path: Path) -> Repo:
    repo = make_repo(tmp_path)
    assert run_cli(["start", "api", "docs"], repo.root).code == 0
    return repo


def test_generated_argument_vectors_never_crash(fuzz_repo: Repo) -> None:
    rng = random.Random(SEED)
    places = [fuzz_repo.root, fuzz_repo.worktree("api"), fuzz_repo.worktree("docs"), fuzz_repo.root / "src"]
    tmp = fuzz_repo.root.parent
    for i, args in enumerate(vectors(rng)):
        where = places[i % len(places)]
        if not where.is_dir():  # a vector stopped that stream: start it again
            run_cli(["start", "api", "docs"], fuzz_repo.root)
            where = where if where.is_dir() else fuzz_repo.root
        before = snapshot(tmp)
        r = run_cli(args, where)
        check(r, f"argv #{i} {args!r} in {where.name}", before, snapshot(tmp))
