"""Ownership: the pattern matcher against the real gitignore oracle, CODEOWNERS cases, owners, overlaps.

The table: each group is a list of patterns (one file, like a .gitignore or one stream's `owns`) and
the paths to ask about. The expected answer comes from REAL `git check-ignore --no-index` in a temp
repository where the files exist; where our semantics deliberately differ (CODEOWNERS' reading of
`dir/*`, and `!` re-including inside an excluded directory) the expected answer is written out and
the test also asserts that git answers the other way, so the deviation stays a conscious one.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from streams.kernel import hookcache
from streams.kernel.patterns import Matcher
from streams.ownership import Ownership, PatternSet, _compile_one, classify, compile_rules
from streams.workspace import discover, load_config
from tests.conftest import Repo, make_repo, run_cli

# (patterns, paths). Paths are files; no path is also a directory of another path in its group.
GROUPS: list[tuple[list[str], list[str]]] = [
    # anchored (a slash at the start or in the middle) vs floating (no slash: any depth)
    (["src/api/**"], ["src/api/app.py", "src/api/deep/er/x.py", "src/apiary.py", "lib/src/api/x.py", "src/x.py"]),
    (["/src/api"], ["src/api/app.py", "src/api/d/x.py", "x/src/api/y.py", "src/apix"]),
    (["src/api"], ["src/api/app.py", "src/api/d/x.py", "x/src/api/y.py", "src/api2/z"]),
    (["name"], ["name", "a/name", "a/b/name", "name/x", "a/name/x", "names", "xname", "a/named/x"]),
    (["/name"], ["name", "a/name", "name/x", "a/name/x"]),
    (["docs/"], ["docs/a.md", "docs/x/y.md", "a/docs/b.md", "docs.md", "mydocs/a"]),
    (["/docs/"], ["docs/a.md", "docs/x/y.md", "a/docs/b.md"]),
    (["README.md"], ["README.md", "pkg/README.md", "README.md.bak", "readme.md", "README.mdx"]),
    (["/README.md"], ["README.md", "pkg/README.md"]),
    # *
    (["*.py"], ["a.py", "src/a.py", "src/deep/b.py", "a.pyc", "py", "src/x.py.txt", ".py"]),
    (["src/*.py"], ["src/a.py", "src/b/c.py", "a.py", "x/src/a.py"]),
    (["*"], ["a", "b/c", "d/e/f"]),
    (["a*"], ["a", "abc", "x/abc", "ba", "x/ba"]),
    (["*z"], ["z", "abz", "x/yz", "zz/x", "za"]),
    (["a/*/c"], ["a/b/c", "a/bb/c", "a/b/b/c", "a/c", "x/a/b/c"]),
    (["doc/*.txt"], ["doc/a.txt", "doc/b/c.txt", "doc/.txt", "x/doc/a.txt"]),
    (["foo/b*"], ["foo/bar", "foo/baz/q", "foo/abar", "x/foo/bar"]),
    # ** at start, middle, end
    (["**/logs"], ["logs", "logs/a.log", "a/logs", "a/b/logs/c.log", "mylogs", "logs2/x"]),
    (["**/logs/debug.log"], ["logs/debug.log", "a/logs/debug.log", "a/b/logs/debug.log", "logs/x/debug.log"]),
    (["a/**/b"], ["a/b", "a/x/b", "a/x/y/b", "a/x/b/c", "a/xb", "x/a/b"]),
    (["a/**"], ["a/b", "a/b/c", "ab/c", "x/a/b"]),
    (["**/a/**"], ["a/b", "x/a/b", "x/y/a/b/c", "xa/b", "a"]),
    (["a/**/b/**"], ["a/b/c", "a/x/b/c", "a/x/y/b/c/d", "a/b"]),
    (["**"], ["a", "a/b", "x/y/z"]),
    (["/**"], ["a", "a/b"]),
    (["**/*.md"], ["a.md", "x/a.md", "x/y/a.md", "x/a.mdx"]),
    (["src/**/test_*.py"], ["src/test_a.py", "src/x/test_b.py", "src/x/y/test_c.py", "src/x/a_test.py", "test_d.py"]),
    # trailing slash: directories only
    (["build/"], ["build/out.o", "x/build/out.o"]),
    (["build/"], ["build", "x/build"]),  # files named build: a directory pattern does not match them
    (["*.d/"], ["x.d/a", "y/z.d/b", "x.d2/a", "q.d"]),
    (["a/b/"], ["a/b/c", "a/b/c/d", "x/a/b/c", "a/bc"]),
    (["foo/**/"], ["foo/a/b", "foo/a/b/c"]),
    # ?
    (["x?z"], ["xyz", "x/z", "xz", "a/xaz", "xyyz"]),
    (["file?.txt"], ["file1.txt", "fileA.txt", "file10.txt", "file.txt"]),
    # character classes
    (["[abc].txt"], ["a.txt", "b.txt", "d.txt", "x/c.txt", "ab.txt"]),
    (["file[0-9].md"], ["file0.md", "file9.md", "filea.md", "file10.md"]),
    (["[!a]x"], ["bx", "ax", "x/cx", "xx"]),
    (["[^a]x"], ["bx", "ax"]),
    (["v[0-9][0-9]/"], ["v10/a", "v1/a", "v99/b/c"]),
    (["[a-c]*/z"], ["a/z", "abc/z", "d/z", "b/y/z"]),
    # escapes
    (["\\#notes"], ["#notes", "x/#notes", "notes"]),
    (["\\!important"], ["!important", "important"]),
    (["a\\*b"], ["a*b", "axb", "x/a*b"]),
    (["q\\?"], ["q?", "qx"]),
    (["\\[x\\]"], ["[x]", "x"]),
    (["trail\\ "], ["trail ", "trail"]),
    (["with space.txt"], ["with space.txt", "d/with space.txt", "withspace.txt"]),
    # comments and blank lines are not patterns
    (["# comment", "", "real.txt"], ["real.txt", "# comment", "comment"]),
    # last match wins, negation
    (["*.log", "!keep.log"], ["a.log", "keep.log", "x/keep.log", "x/a.log"]),
    (["docs/**", "!docs/generated/**"], ["docs/a.md", "docs/b/c.md"]),
    (["!a.txt", "*.txt"], ["a.txt", "b.txt"]),
    (["src/**/*.py", "!src/vendor/**"], ["src/a.py", "src/x/b.py", "src/vendor/c.py", "src/vendor/d.txt"]),
    # non-ASCII, dots
    (["données/**"], ["données/a.csv", "donnees/a.csv"]),
    ([".github/**"], [".github/workflows/ci.yml", "github/x"]),
    (["*.tar.gz"], ["a.tar.gz", "x/b.tar.gz", "a.tar", "a.gz"]),
]

# Where we knowingly differ from git's ignore rules: (patterns, path, our answer, git's answer).
# 1. `dir/*` owns the files directly in dir (CODEOWNERS: "docs/* matches docs/getting-started.md but
#    not docs/build-app/troubleshooting.md"); git ignores the subdirectory, hence its contents.
# 2. `!pattern` takes a path back even inside a directory an earlier pattern covers (last match
#    wins, path by path); git cannot re-include a file whose parent directory is excluded.
# 3. pathspec reads a trailing `/**/` as `/**`: `foo/**/` also owns the files directly in foo/.
CODEOWNERS_SPECIFIC: list[tuple[list[str], str, bool, bool]] = [
    # (patterns, path, ours, git's)
    (["docs/*"], "docs/getting-started.md", True, True),
    (["docs/*"], "docs/build-app/troubleshooting.md", False, True),
    (["/a/b/*"], "a/b/c", True, True),
    (["/a/b/*"], "a/b/c/d", False, True),
    (["/*"], "top.txt", True, True),
    (["/*"], "dir/nested.txt", False, True),
    (["src/", "!src/a.py"], "src/a.py", False, True),
    (["src/", "!src/a.py"], "src/b.py", True, True),
    (["build/", "!build/keep/**"], "build/keep/x", False, True),
    (["docs/**", "!docs/generated/**"], "docs/generated/b.md", False, True),
    (["docs/**", "!docs/generated/**"], "docs/generated/c/d.md", False, True),
    (["foo/**/"], "foo/b", True, False),
]

# GitHub's CODEOWNERS documentation examples, with the answers it gives.
CODEOWNERS_EXAMPLES: list[tuple[str, str, bool]] = [
    ("*.js", "app.js", True),
    ("*.js", "src/deep/app.js", True),
    ("*.go", "main.js", False),
    ("/build/logs/", "build/logs/a.log", True),
    ("/build/logs/", "build/logs/sub/b.log", True),
    ("/build/logs/", "x/build/logs/a.log", False),
    ("docs/*", "docs/getting-started.md", True),
    ("docs/*", "docs/build-app/troubleshooting.md", False),
    ("apps/", "apps/a.txt", True),
    ("apps/", "nested/apps/b.txt", True),
    ("/docs/", "docs/x/y.md", True),
    ("/docs/", "lib/docs/y.md", False),
    ("/scripts/", "scripts/run.sh", True),
    ("**/logs", "logs/a", True),
    ("**/logs", "build/logs/a", True),
    ("**/logs", "deep/build/logs/a", True),
    ("/apps/github", "apps/github", True),
    ("/apps/github", "apps/github/x.rb", True),
    ("/apps/github", "apps/githubx", False),
]


def matches(patterns: list[str], path: str) -> bool:
    return Matcher(compile_rules(patterns)).matches(path)


def git_oracle(tmp: Path, patterns: list[str], paths: list[str]) -> dict[str, bool]:
    """Ask real git: which of ``paths`` do ``patterns`` (a .gitignore) ignore?"""
    tmp.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    (tmp / ".gitignore").write_text("".join(p + "\n" for p in patterns))
    for p in paths:  # files on disk, so git knows they are not directories (when none is both)
        if not any(q.startswith(p + "/") for q in paths):
            (tmp / p).parent.mkdir(parents=True, exist_ok=True)
            (tmp / p).write_text("x")
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-z"],
        cwd=tmp,
        input=b"".join(p.encode() + b"\0" for p in paths),
        capture_output=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    ignored = {p.decode() for p in proc.stdout.split(b"\0") if p}
    return {p: p in ignored for p in paths}


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[list[str], str, bool]]:
    cases = []
    for i, (patterns, paths) in enumerate(GROUPS):
        answers = git_oracle(tmp_path_factory.mktemp(f"oracle{i}") / "r", patterns, paths)
        cases += [(patterns, path, answers[path]) for path in paths]
    return cases


def test_the_table_is_big_enough(oracle: list[tuple[list[str], str, bool]]) -> None:
    assert len(oracle) + len(CODEOWNERS_SPECIFIC) + len(CODEOWNERS_EXAMPLES) >= 100
    assert len(oracle) >= 100
    assert any(a for *_, a in oracle) and not all(a for *_, a in oracle)


def test_matcher_agrees_with_git_check_ignore(oracle: list[tuple[list[str], str, bool]]) -> None:
    wrong = [(pats, path, want) for pats, path, want in oracle if matches(pats, path) != want]
    assert not wrong, "\n".join(f"{pats!r} {path!r}: git says {want}" for pats, path, want in wrong)


@pytest.mark.parametrize(("patterns", "path", "ours", "gits"), CODEOWNERS_SPECIFIC)
def test_codeowners_readings_where_git_ignore_differs(
    tmp_path: Path, patterns: list[str], path: str, ours: bool, gits: bool
) -> None:
    assert matches(patterns, path) is ours
    assert git_oracle(tmp_path / "o", patterns, [path])[path] is gits


@pytest.mark.parametrize(("pattern", "path", "want"), CODEOWNERS_EXAMPLES)
def test_codeowners_documentation_examples(pattern: str, path: str, want: bool) -> None:
    assert matches([pattern], path) is want


def test_fast_rules_are_equivalent_to_the_regexes(oracle: list[tuple[list[str], str, bool]]) -> None:
    import re

    kinds = set()
    extra = ["a", "a/b", "src/api", "src/api/", "x/src/api/y", "name/name", "logs/logs/x", "a.py/b", ".py"]
    paths = sorted(
        {path for _, path, _ in oracle}
        | {c[1] for c in CODEOWNERS_SPECIFIC}
        | {c[1] for c in CODEOWNERS_EXAMPLES}
        | set(extra)
    )
    all_patterns = [p for pats, _ in GROUPS for p in pats]
    all_patterns += [p for c in CODEOWNERS_SPECIFIC for p in c[0]] + [c[0] for c in CODEOWNERS_EXAMPLES]
    for p in all_patterns:
        rules, regexes = _compile_one(p)
        for (kind, arg, inc, _), (rx, inc2) in zip(rules, regexes, strict=True):
            kinds.add(kind)
            assert inc == inc2
            for path in paths:
                fast = Matcher([(kind, arg, True)]).matches(path)
                slow = re.match(rx, path) is not None
                assert fast == slow, (p, kind, arg, rx, path)
    assert {"prefix", "path", "seg", "dirseg", "segsuffix", "child", "regex", "all"} <= kinds


def test_classify_keeps_unknown_shapes_as_regex() -> None:
    assert classify("^src/api/") == ("prefix", "src/api/")
    assert classify("^src/api(?:/|$)") == ("path", "src/api")
    assert classify("^(?:.+/)?name(?:/|$)") == ("seg", "name")
    assert classify("^(?:.+/)?[^/]*\\.py(?:/|$)") == ("segsuffix", ".py")
    assert classify("^docs/[^/]+/?$") == ("child", "docs/")
    assert classify("^a(?:/.+)?/b(?:/|$)")[0] == "regex"
    assert classify("^\\d(?:/|$)")[0] == "regex"  # \d is a class, not a literal d


def test_patternset_filter_long_lists_agrees_with_matches() -> None:
    ps = PatternSet.compile(["src/**", "*.md", "a/*/c"])
    paths = [f"src/{i}.py" for i in range(50)] + [f"x/{i}.md" for i in range(50)] + ["a/b/c", "a/b/b/c", "zzz"]
    assert ps.filter(paths) == [p for p in paths if ps.matches(p)]


# --- owners ----------------------------------------------------------------------------------------


def test_owner_kinds(repo: Repo) -> None:
    ws = discover(repo.root)
    own = Ownership(load_config(ws))
    assert own.owner("src/api/app.py").kind == "stream" and own.owner("src/api/app.py").stream == "api"
    assert own.owner("src/api/app.py").pattern == "src/api/**"
    assert own.owner("tests/api/x.py").stream == "api"
    assert own.owner("src/ui/new/file.ts").stream == "ui"
    assert own.owner("pyproject.toml").kind == "shared"
    assert own.owner("README.md").kind == "unowned"
    assert own.owner("streams.yaml").kind == "reserved"
    assert own.owner(".streams/stream-ui.md") == own.owner(".streams/stream-ui.md")
    assert own.owner(".streams/stream-ui.md").kind == "progress" and own.owner(".streams/stream-ui.md").stream == "ui"
    assert own.owner(".streams/stream-nope.md").kind == "reserved"
    assert own.owner(".streams/other.txt").kind == "reserved"


def test_overlapping_streams_are_a_config_error_naming_path_and_both(tmp_path: Path) -> None:
    config = "version: 1\nbase: main\nstreams:\n  api:\n    owns: [src/**]\n  ui:\n    owns: ['*.ts']\n"
    repo = make_repo(tmp_path, config=config)
    before = repo.snapshot()
    res = run_cli(["start"], repo.root)
    assert res.code == 1
    assert "src/ui/main.ts" in res.err and "'api'" in res.err and "'ui'" in res.err
    assert repo.snapshot() == before


def test_shared_and_owned_is_a_config_error(tmp_path: Path) -> None:
    config = "version: 1\nbase: main\nshared: [src/api/app.py]\nstreams:\n  api:\n    owns: [src/api/**]\n"
    repo = make_repo(tmp_path, config=config)
    res = run_cli(["start"], repo.root)
    assert res.code == 1 and "shared but also owned by stream 'api'" in res.err


def test_compiled_cache_follows_the_committed_config_not_the_working_copy(repo: Repo) -> None:
    ws = discover(repo.root)
    cfg = load_config(ws)
    cc = hookcache.load(ws.common_dir)
    common = str(ws.common_dir)
    assert cc is not None and cc.in_force(common) and cc.names == ("api", "ui", "docs")
    assert cc.owner("src/ui/x") == ("stream", "ui")
    assert Path(hookcache.prefix_file(ws.common_dir)).read_text() == cfg.branch_prefix + "\n"
    ws.config_path.write_text(ws.config_path.read_text() + "# edited\n")
    assert cc.in_force(common)  # an uncommitted edit is not in force
    assert any("not in force until committed" in w for w in load_config(ws).warnings)
    repo.commit_all("edit streams.yaml")
    assert cc.in_force(common) is None  # the base moved: only git can say
    load_config(ws)
    fresh = hookcache.load(ws.common_dir)
    assert fresh is not None and fresh.in_force(common) and fresh.blob != cc.blob
    assert fresh.source == ws.config_path.read_bytes()


def test_a_corrupt_cache_is_ignored(repo: Repo) -> None:
    ws = discover(repo.root)
    load_config(ws)
    Path(hookcache.cache_file(ws.common_dir)).write_bytes(b"garbage")
    assert hookcache.load(ws.common_dir) is None
    load_config(ws)
    assert hookcache.load(ws.common_dir) is not None


# --- streams owner -----------------------------------------------------------------------------------


def test_owner_command_text_and_json(repo: Repo) -> None:
    res = run_cli(["owner", "src/api/app.py", "pyproject.toml", "README.md", "src/ui/not-yet.ts"], repo.root)
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0].split() == ["PATH", "OWNER", "PATTERN"]
    assert lines[1].split()[:3] == ["src/api/app.py", "api", "src/api/**"]
    assert "shared" in lines[2] and "unowned" in lines[3] and "ui" in lines[4]
    res = run_cli(["owner", "--json", "docs/index.md"], repo.root)
    data = json.loads(res.out)
    assert data["ok"] and data["command"] == "owner"
    assert data["data"]["paths"][0] | {} == {
        "path": "docs/index.md",
        "kind": "stream",
        "stream": "docs",
        "pattern": "docs/**",
        "current": None,
        "allowed": None,
        "reason": None,
    }


def test_owner_command_in_a_stream_worktree_says_whether_it_may_change_it(repo: Repo) -> None:
    assert run_cli(["start", "api"], repo.root).code == 0
    wt = repo.worktree("api")
    res = run_cli(["owner", "app.py", "../ui/main.ts"], wt / "src" / "api")
    assert res.code == 0, res.err
    assert "API MAY CHANGE" in res.out
    assert "src/api/app.py" in res.out and "yes" in res.out
    assert "src/ui/main.ts" in res.out and "no: owned by ui" in res.out


def test_owner_command_bad_paths(repo: Repo, tmp_path: Path) -> None:
    res = run_cli(["owner", str(tmp_path)], repo.root)
    assert res.code == 2 and "outside the repository" in res.err
    res = run_cli(["owner", ".git/config"], repo.root)
    assert res.code == 2 and "under .git" in res.err
    res = run_cli(["owner"], repo.root)
    assert res.code == 2
    res = run_cli(["owner", "--", "-leading-dash.txt"], repo.root)
    assert res.code == 0 and "-leading-dash.txt" in res.out
