"""The pre-commit shim's shell fast path with floating patterns in the configuration.

A floating pattern of one stream (``*.md``) must not send every other stream's commits to Python:
the shim tests each staged path against ``case`` globs that cover the other streams' patterns
(``streams.kernel.shellglob``) and decides alone when none matches. Whatever it decides, the
outcome is the Python judge's (``CompiledConfig.judge``): real ``git commit``s in a real worktree,
with the interpreter baked into the shims replaced by a wrapper that records every start.
"""

from __future__ import annotations

import fnmatch
import random
import subprocess
import sys
from pathlib import Path

import pytest

from streams import hooks_install
from streams.kernel import hookcache, shellglob
from streams.kernel.patterns import Matcher
from streams.kernel.rules import CompiledConfig
from streams.ownership import compile_patterns
from streams.workspace import discover
from tests.conftest import Repo, make_repo, run_cli

# docs owns docs/** and patterns that reach into api's src/api/** at any depth, anchored, with
# `**`, character classes, escapes, a dir-only pattern and a negation.
RIVALS = """\
'docs/**', '*.md', '!src/api/keep.md', '/src/api/*.txt', 'src/**/gen.py', 'build/', '*.[ch]',
      '[!a]pp.py', 'a\\*b', 'my file.txt', 'src/api/?.cfg', 'v[0-9].py'"""
CONFIG = f"""\
version: 1
base: main
shared:
  - pyproject.toml
streams:
  api:
    owns: [src/api/**, tests/api/**]
  ui:
    owns: [src/ui/**]
  docs:
    owns: [{RIVALS}]
"""

# path staged in api's worktree -> whether the shim must decide it alone (None: either way)
PATHS: dict[str, bool | None] = {
    "src/api/app.py": True,
    "src/api/deep/er/mod.py": True,
    "tests/api/test_new.py": True,
    "src/api/a.mdx": True,
    "src/api/builder.py": True,
    "src/api/a.py": True,
    "src/api/gen.pyc": True,
    "src/api/notes.md": False,  # *.md: two owners
    "src/api/deep/er/notes.md": False,
    "src/api/x.md/inner.py": False,  # *.md matches a directory too
    "src/api/keep.md": False,  # taken back by the negation: the full check lets it through
    "src/api/a.txt": False,  # /src/api/*.txt
    "src/api/sub/a.txt": None,  # not /src/api/*.txt (one level only): a glob's * spans /, so Python says
    "src/api/gen.py": False,  # src/**/gen.py: ** may be empty
    "src/api/x/y/gen.py": False,
    "src/api/build/out.o": False,  # build/ at any depth
    "src/api/lib.c": False,  # *.[ch]
    "src/api/lib.h": False,
    "src/api/lib.d": None,  # a class is ? in a glob: Python says
    "src/api/bpp.py": False,  # [!a]pp.py
    "src/api/app.md": False,
    "src/api/v1.py": False,  # v[0-9].py: a range is ? in a glob
    "src/api/vv.py": None,
    "src/api/a*b": False,  # a\*b: a literal star
    "src/api/axb": None,
    "src/api/my file.txt": False,
    "src/api/q.cfg": False,  # src/api/?.cfg
    "src/api/qq.cfg": None,
}


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def floating(tmp_path: Path) -> tuple[Repo, Path, Path]:
    """The repository with CONFIG, api started, the shims calling a wrapper that logs each hook."""
    repo = make_repo(tmp_path, config=CONFIG)
    res = run_cli(["start", "api"], repo.root)
    assert res.code == 0, res.err
    log = tmp_path / "python-runs"
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\necho "$5" >> {log}\nexec {sys.executable} "$@"\n')  # -I -S -c CODE HOOK
    wrapper.chmod(0o755)
    hooks_install.install(discover(repo.root), python=str(wrapper))
    return repo, repo.worktree("api"), log


def _runs(log: Path) -> list[str]:
    text = log.read_text() if log.exists() else ""
    log.unlink(missing_ok=True)
    return text.split()


def test_a_floating_pattern_of_another_stream_leaves_the_fast_path_on(floating: tuple[Repo, Path, Path]) -> None:
    repo, api, log = floating
    # (a) api's own file, with docs owning *.md: decided by the shim, no Python at all.
    repo.write("src/api/app.py", "v2\n", cwd=api)
    _git(api, "add", "src/api/app.py")
    res = _git(api, "commit", "-q", "-m", "own file")
    assert res.returncode == 0, res.stderr
    assert _runs(log) == []  # neither pre-commit nor reference-transaction started Python
    # The shim reads HEAD from the branch's loose ref file; a packed branch asks git, same outcome.
    repo.git("pack-refs", "--all")
    (repo.root / ".git" / "refs" / "heads" / "main").write_text(repo.git("rev-parse", "main"))  # base stays loose
    assert not (repo.root / ".git" / "refs" / "heads" / "streams" / "api").exists()
    _runs(log)  # git 2.39's pack-refs shows the reference-transaction hook its packed-refs transaction
    repo.write("src/api/app.py", "v3\n", cwd=api)
    _git(api, "add", "src/api/app.py")
    assert _git(api, "commit", "-q", "-m", "packed").returncode == 0
    assert _runs(log) == []
    # (b) a .md file docs owns: refused by the full check, with the message the full check gives.
    repo.write("README.md", "api's?\n", cwd=api)
    repo.write("src/api/notes.md", "two owners\n", cwd=api)
    _git(api, "add", "README.md", "src/api/notes.md")
    res = _git(api, "commit", "-q", "-m", "not api's")
    assert res.returncode == 1
    assert _runs(log) == ["pre-commit"]
    direct = subprocess.run(
        [sys.executable, "-m", "streams.hook", "pre-commit"], cwd=api, capture_output=True, text=True, check=False
    )
    assert direct.returncode == 1 and res.stderr == direct.stderr
    assert "README.md" in res.stderr and "owned by docs (leave it to stream docs)" in res.stderr
    assert "src/api/notes.md" in res.stderr and "owned by api and docs: two owners" in res.stderr


def test_the_shim_decides_as_the_python_judge_does(floating: tuple[Repo, Path, Path]) -> None:
    repo, api, log = floating
    cc = hookcache.load(repo.root / ".git")
    assert cc is not None
    wrong = []
    for path, fast in PATHS.items():
        repo.write(path, f"{path}\n", cwd=api)
        assert _git(api, "add", "--", path).returncode == 0
        res = _git(api, "commit", "-q", "-m", path)
        allowed = cc.judge("api", path, lambda _p: None) is None
        ran = _runs(log)
        took_fast = "pre-commit" not in ran
        if (res.returncode == 0) != allowed or (fast is not None and took_fast != fast) or (took_fast and not allowed):
            wrong.append((path, res.returncode, allowed, ran, res.stderr.strip()))
        if res.returncode != 0:
            _git(api, "rm", "-q", "--cached", "--", path)
    assert not wrong, wrong


def test_rival_globs_cover_the_compiled_patterns() -> None:
    """Every path a rule matches, one of its globs matches (``case`` semantics: fnmatchcase, whose
    ``*`` spans ``/`` as the shell's does; the globs hold no brackets and no backslashes)."""
    rng = random.Random(16)
    atoms = ["a", "b", "md", ".", "*", "?", "[ab]", "[!a]", "[a-b]", "[^b]", "\\*", "**", "x y", "-"]
    parts = ["a", "b", "ab", "a.md", "b.c", "x y", "a*b", "ba", "-", "md", ".md", "aab"]
    checked = 0
    for _ in range(400):
        segs = ["".join(rng.choice(atoms) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 3))]
        pattern = ("/" if rng.random() < 0.3 else "") + "/".join(segs) + ("/" if rng.random() < 0.2 else "")
        try:
            rules = compile_patterns([pattern])
        except ValueError:
            continue
        for kind, arg, _include, _ in rules:
            globs = shellglob.covers(kind, arg)
            assert all("\\" not in g and "\n" not in g for g in globs), (pattern, globs)
            m = Matcher([(kind, arg, True)])
            for _ in range(40):
                path = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
                if m.matches(path):
                    checked += 1
                    assert any(fnmatch.fnmatchcase(path, g) for g in globs), (pattern, kind, arg, path, globs)
                elif shellglob.exact(kind, arg):
                    assert not any(fnmatch.fnmatchcase(path, g) for g in globs), (pattern, path, globs)
    assert checked > 200


def test_the_shell_reads_the_globs_as_fnmatchcase_does(tmp_path: Path) -> None:
    """The globs, read from a file into an unquoted ``case`` pattern by /bin/sh, match what
    fnmatchcase says they match."""
    globs = [
        g
        for p in ("*.md", "a?.txt", "*.[ch]", "[!a]b", "v[0-9]", "src/**/gen.py", "my file.txt", "a\\*b", "build/")
        for g in _globs(p)
    ]
    paths = ["a.md", "x/y.md", "x.md/z", "ab.txt", "a/ab.txt", "x.c", "d/x.h", "x.cc", "src/gen.py", "src/a/b/gen.py",
             "my file.txt", "d/my file.txt", "a*b", "axb", "d/build/o", "build", "x y", "ab", "bb", "v1", "vv"]  # fmt: skip
    (tmp_path / "globs").write_text("".join(f"g {g}\n" for g in globs))
    script = (
        'nl="\n"; set -f; IFS=$nl\n'
        "while IFS= read -r line; do g=${line#g }\n"
        '  for p in $PATHS; do case $p in $g) echo "$g|$p" ;; esac; done\n'
        f"done < {tmp_path / 'globs'}\n"
    )
    out = subprocess.run(
        ["/bin/sh", "-c", script], env={"PATHS": "\n".join(paths)}, capture_output=True, text=True, check=True
    ).stdout
    shell = set(out.splitlines())
    python = {f"{g}|{p}" for g in globs for p in paths if fnmatch.fnmatchcase(p, g)}
    assert shell == python


def _globs(pattern: str) -> tuple[str, ...]:
    return tuple(g for k, a, _, _ in compile_patterns([pattern]) for g in shellglob.covers(k, a))


def test_shell_rules_grow_with_streams_not_their_square() -> None:
    """Each stream's file holds its own rules and the rival patterns that could reach them; the
    floating patterns are written once, for all streams."""

    def config(n: int) -> CompiledConfig:
        streams = [
            (f"s{i}", compile_patterns([f"src/s{i}/**", f"docs/s{i}.md", f"config/s{i}/*.toml"])) for i in range(n)
        ]
        streams.append(("notes", compile_patterns(["*.md", "**/notes/"])))
        return CompiledConfig(
            config_path="streams.yaml", source=b"", blob="", base_commit="", base="main", remote=None,
            branch_prefix="streams/", unowned="deny", streams=streams, shared=[],
        )  # fmt: skip

    for n in (10, 400):
        cc = config(n)
        rules = hookcache.shell_rules(cc)
        assert rules["s3"] == (("prefix", "src/s3/"), ("path", "docs/s3.md"))
        assert sum(len(v) for v in rules.values()) == 2 * n
        assert hookcache.floating_guards(cc) == (
            ("notes", "*.md"), ("notes", "*.md/*"), ("notes", "notes/*"), ("notes", "*/notes/*"),
        )  # fmt: skip


def test_an_anchored_rival_becomes_a_guard_not_a_lost_rule() -> None:
    cc = CompiledConfig(
        config_path="streams.yaml", source=b"", blob="", base_commit="", base="main", remote=None,
        branch_prefix="streams/", unowned="deny", shared=[],
        streams=[("api", compile_patterns(["src/api/**"])), ("gen", compile_patterns(["src/api/gen/*.py"]))],
    )  # fmt: skip
    assert hookcache.shell_rules(cc)["api"] == (
        ("prefix", "src/api/"),
        ("guard", "src/api/gen/*.py"),
        ("guard", "src/api/gen/*.py/*"),
    )
    crowd = CompiledConfig(
        config_path="streams.yaml", source=b"", blob="", base_commit="", base="main", remote=None,
        branch_prefix="streams/", unowned="deny", shared=[],
        streams=[("api", compile_patterns(["src/api/**", "lib/**"])),
                 *((f"s{i}", compile_patterns([f"src/api/s{i}/**"])) for i in range(hookcache.RIVALS_PER_RULE + 1))],
    )  # fmt: skip
    assert hookcache.shell_rules(crowd)["api"] == (("prefix", "lib/"),)  # src/api/ is left to the full check


def test_a_cache_from_before_the_guards_is_rewritten_and_old_rule_files_removed(
    floating: tuple[Repo, Path, Path],
) -> None:
    """A cache of the previous format (its fast path in ``s-<stream>`` files, which shims from
    before the guards read without any guard) is recompiled by the first hook that reads it:
    ``s-`` files gone, ``r-`` and ``floating`` written, and the fast path on again."""
    import marshal

    repo, api, log = floating
    cache = repo.root / ".git" / "streams" / "cache"
    fast = cache / "fast"
    data = marshal.loads((cache / "compiled.marshal").read_bytes())
    (cache / "compiled.marshal").write_bytes(marshal.dumps({**data, "format": 4}))
    for entry in fast.iterdir():
        if entry.name.startswith("r-") or entry.name == "floating":
            entry.unlink()
    (fast / "s-api").write_text("prefix src/api/\n")
    # Without the new files the shim asks Python, whose full loader rewrites the cache...
    repo.write("src/api/app.py", "v2\n", cwd=api)
    _git(api, "add", "src/api/app.py")
    assert _git(api, "commit", "-q", "-m", "slow").returncode == 0
    assert _runs(log)[:1] == ["pre-commit"]
    assert not (fast / "s-api").exists()
    assert (fast / "r-api").exists() and (fast / "floating").exists()
    # ...and the next commit takes the fast path.
    repo.write("src/api/app.py", "v3\n", cwd=api)
    _git(api, "add", "src/api/app.py")
    assert _git(api, "commit", "-q", "-m", "fast").returncode == 0
    assert _runs(log) == []


def _shim_allows(
    rules: tuple[tuple[str, str], ...], floating: tuple[tuple[str, str], ...], stream: str, p: str
) -> bool:
    """The pre-commit shim's decision for one path, as the template writes it (fnmatchcase for
    ``case``, which ``test_the_shell_reads_the_globs_as_fnmatchcase_does`` checks)."""
    if p.startswith(('"', ".streams/")) or p == "streams.yaml":
        return False
    hit = False
    for kind, arg in rules:
        if kind == "prefix":
            hit = hit or p.startswith(arg)
        elif kind == "path":
            hit = hit or p == arg or p.startswith(arg + "/")
        elif kind == "child":
            hit = hit or (p.startswith(arg) and "/" not in p[len(arg) :])
    guards = [a for k, a in rules if k == "guard"] + [g for name, g in floating if name != stream]
    return hit and not any(fnmatch.fnmatchcase(p, g) for g in guards)


def test_generated_configs_the_shim_never_allows_what_the_judge_refuses() -> None:
    rng = random.Random(1616)
    words = ["src", "api", "ui", "docs", "a", "b", "gen", "x.md", "build"]
    shapes = [
        "{w}/**", "{w}/{v}/**", "/{w}", "{w}/*", "*.md", "{w}/", "**/{w}", "{w}/**/{v}", "/{w}/*.md",
        "*.[ch]", "[!a]{v}", "!{w}/{v}", "{w}?", "{w}/{v}/", "**", "{w}*",
    ]  # fmt: skip
    paths = ["/".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(300)]
    paths += [p + ext for p in paths[:100] for ext in (".md", ".c", ".py")]
    decided = 0
    for _ in range(60):
        streams = []
        for i in range(rng.randint(2, 5)):
            owns = [
                rng.choice(shapes).format(w=rng.choice(words), v=rng.choice(words)) for _ in range(rng.randint(1, 4))
            ]
            streams.append((f"s{i}", compile_patterns(owns)))
        cc = CompiledConfig(
            config_path="streams.yaml", source=b"", blob="", base_commit="", base="main", remote=None,
            branch_prefix="streams/", unowned="deny", streams=streams, shared=[],
        )  # fmt: skip
        rules, floating = hookcache.shell_rules(cc), hookcache.floating_guards(cc)
        for name, own in rules.items():
            for p in paths:
                if _shim_allows(own, floating, name, p):
                    decided += 1
                    assert cc.judge(name, p, lambda _p: None) is None, (streams, name, p, own)
    assert decided > 1000
