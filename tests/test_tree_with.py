"""``git.tree_with``: a tree with one path as another commit has it, built without an index
(``cat-file --batch`` + ``mktree --batch``), equal to what a throw-away index gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams import git
from tests.conftest import Repo, make_repo


def by_index(repo: Repo, tmp_path: Path, tree: str, path: str, like: str) -> str:
    """The same edit the way git's porcelain would make it: a private index."""
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "oracle-index")}
    import subprocess

    def run(*args: str, data: bytes | None = None) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo.root, env=env, input=data, capture_output=True, check=True
        ).stdout.decode()

    run("read-tree", tree)
    entry = run("ls-tree", "-z", like, "--", path).rstrip("\0")
    if entry:
        run("update-index", "-z", "--index-info", data=entry.encode() + b"\0")
    else:
        run("update-index", "--force-remove", "--", path)
    return run("write-tree").strip()


@pytest.mark.parametrize(
    ("ours", "theirs", "path"),
    [
        ({".streams/stream-a.md": "p\n", "src/x.py": "x\n"}, {}, ".streams/stream-a.md"),  # dir left empty: gone
        ({".streams/stream-a.md": "p\n", ".streams/stream-b.md": "q\n"}, {}, ".streams/stream-a.md"),
        ({".streams/stream-a.md": "new\n"}, {".streams/stream-a.md": "old\n"}, ".streams/stream-a.md"),
        ({"src/x.py": "x\n"}, {".streams/stream-a.md": "old\n"}, ".streams/stream-a.md"),  # added back
        ({"a/b/c/d.md": "1\n", "a/b/e.md": "2\n", "a-b": "3\n", "a.b": "4\n"}, {}, "a/b/c/d.md"),
        ({"top.md": "1\n", "src/x.py": "x\n"}, {}, "top.md"),
        ({"src/x.py": "x\n"}, {}, ".streams/stream-a.md"),  # as in like already: the same tree
    ],
)
def test_tree_with_is_what_an_index_gives(
    tmp_path: Path, ours: dict[str, str], theirs: dict[str, str], path: str
) -> None:
    repo = make_repo(tmp_path, files={"README.md": "r\n", **theirs}, config=None)
    like = repo.git("rev-parse", "HEAD").strip()
    for rel, text in ours.items():
        repo.write(rel, text)
    if os.path.exists(repo.root / path) and path not in ours and path in theirs:
        (repo.root / path).unlink()
    tree = repo.commit_all("ours")
    tree = repo.git("rev-parse", f"{tree}^{{tree}}").strip()
    made = git.tree_with(repo.root, tree, path, like=like)
    assert made == by_index(repo, tmp_path, tree, path, like)
    repo.git("fsck", "--no-dangling")
    if path not in theirs:
        assert repo.git("ls-tree", "-r", "--name-only", made, "--", path).strip() == ""
