"""Every name streams puts on disk or in git: DESIGN's "Where things live" as code. Standard library only.

Nothing else spells these names: the full code, the git hooks (``streams.hook``) and the shell shims
(``hooks_install.render`` substitutes them into ``streams/hook_templates/*.in``) all take them from
here. Functions return ``str`` paths built with ``os.path`` (the hooks do not import ``pathlib``);
the full code wraps them in ``Path`` where it wants one.

It also holds the one normaliser of a path a user typed (``repo_path``), which ``lock``, ``unlock``
and ``owner`` share.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# --- tracked, in the repository ----------------------------------------------------------------------

CONFIG_FILE = "streams.yaml"  # at the repository root, committed on the base branch
PROGRESS_DIR = ".streams"  # stream X commits .streams/stream-X.md on its own branch only
PROGRESS_PREFIX = "stream-"
PROGRESS_SUFFIX = ".md"


def progress_path(name: str) -> str:
    """The repository path of stream ``name``'s progress file."""
    return f"{PROGRESS_DIR}/{PROGRESS_PREFIX}{name}{PROGRESS_SUFFIX}"


def progress_stream(path: str) -> str | None:
    """``.streams/stream-X.md`` -> ``X``; None for any other path (under ``.streams/`` or not)."""
    head = f"{PROGRESS_DIR}/{PROGRESS_PREFIX}"
    if path.startswith(head) and path.endswith(PROGRESS_SUFFIX) and "/" not in path[len(head) :]:
        return path[len(head) : -len(PROGRESS_SUFFIX)] or None
    return None


# --- in a stream worktree's private git dir (``git rev-parse --git-dir``) -----------------------------

MARKER_FILE = "streams-stream"  # the stream's name: how hooks and commands know a stream worktree
TOKEN_FILE = "streams-checked"  # pre-commit's "checked" token for reference-transaction
PRIVATE_INDEX_DIR = "streams-status"  # the dashboard's private copies of the worktree's index
PRIVATE_INDEX_READERS = "readers.flock"
WORKTREE_LOCK = "streams-worktree.flock"  # a progress commit or a rebase in this worktree holds it
DEAD_LOCKS_FILE = "streams-dead-locks"  # lock files a dead sync's git left that may still have been held: sync retries
REBASE_LEASES_FILE = "streams-rebase-leases"  # leases taken during a rebase here: "ID PATH" lines, released at its end
FENCE_FILE = "streams-fence"  # a sync works here (or a halt waits for a human): the hooks refuse commits
MOVE_INDEX = "streams-move-{pid}.index"  # sync's new index, built while it holds index.lock
MOVE_LOCK_TAG = "streams-sync "  # what sync writes in the index.lock it holds, before its pid
NO_GRAFT_FILE = os.path.join(os.devnull, "no-grafts")  # GIT_GRAFT_FILE that cannot exist: no grafts, no advice
FENCE_ENV = "STREAMS_FENCE"  # the fence's token in a process's environment: the fence holder's own git


def marker_file(git_dir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(git_dir), MARKER_FILE)


def token_file(git_dir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(git_dir), TOKEN_FILE)


def fence_file(git_dir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(git_dir), FENCE_FILE)


def read_marker(git_dir: str | os.PathLike[str]) -> str | None:
    """The stream whose worktree ``git_dir`` belongs to, or None (not a stream worktree)."""
    try:
        with open(marker_file(git_dir), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


# --- runtime state shared by all worktrees: ``<git-common-dir>/streams/`` ------------------------------

STATE_DIR = "streams"
LOCKS_DIR = "locks"  # leases: locks/<dir>/.<file>.lock
CACHE_DIR = "cache"  # the hooks' compiled config, the tree check
LOGS_DIR = "logs"
STATE_FILE = "state.json"
STATE_LOCK = "state.json.flock"
SYNC_LOCK = "sync.flock"
EVENTS_FILE = "events.jsonl"
TREE_CHECK_FILE = "tree-check.json"
MERGE_FILE = "merge.json"
INTEGRATION_DIR = "integration"
HOOKCACHE_FILE = "compiled.marshal"
PREFIX_FILE = "branch-prefix"  # the branch prefix alone, for the reference-transaction shim
BASE_REFS_FILE = "base-refs"  # the base's refs (local, remote-tracking) on one line, for the same shim
FAST_DIR = "fast"  # the pre-commit shim's shell fast path


def state_dir(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(common_dir), STATE_DIR)


def locks_dir(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(state_dir(common_dir), LOCKS_DIR)


def cache_dir(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(state_dir(common_dir), CACHE_DIR)


def state_file(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(state_dir(common_dir), STATE_FILE)


def events_file(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(state_dir(common_dir), EVENTS_FILE)


def logs_dir(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(state_dir(common_dir), LOGS_DIR)


def merge_file(common_dir: str | os.PathLike[str]) -> str:
    """The merge queue's record: every landing, from intent to done (``coordinator.merge``)."""
    return os.path.join(state_dir(common_dir), MERGE_FILE)


def integration_dir(common_dir: str | os.PathLike[str]) -> str:
    """The merge queue's worktree: detached, locked, never the user's checkout."""
    return os.path.join(state_dir(common_dir), INTEGRATION_DIR)


RUNS_DIR = "runs"  # runs/<run-id>/: one run of `streams run` (DESIGN "Where things live")


def runs_dir(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(state_dir(common_dir), RUNS_DIR)


def run_dir(common_dir: str | os.PathLike[str], run_id: str) -> str:
    """``runs/<run-id>/``: plan.json, runner.json, state.json, joblog.tsv, logs/, briefs/, reports/."""
    return os.path.join(runs_dir(common_dir), run_id)


def brief_file(run_directory: str | os.PathLike[str], name: str) -> str:
    return os.path.join(os.fspath(run_directory), "briefs", f"{name}.md")


def attempt_log(run_directory: str | os.PathLike[str], name: str, attempt: int) -> str:
    return os.path.join(os.fspath(run_directory), "logs", name, f"{attempt}.log")


# --- refs ----------------------------------------------------------------------------------------------

ZERO_OID = "0" * 40
SAVED_REFS = "refs/streams/saved"  # work saved before it was discarded: saved/<stream>/<time>
SCRATCH_REFS = "refs/streams/start-scratch"  # start's fast-import, one per process
LANDED_REFS = "refs/streams/landed"  # a landed stream's tip, its work and progress history: landed/<stream>/<time>


def saved_ref(name: str, stamp: str) -> str:
    return f"{SAVED_REFS}/{name}/{stamp}"


WIP_REFS = "refs/streams/wip"  # an attempt's uncommitted work, saved before a retry: wip/<stream>/<run>/<attempt>


def wip_ref(name: str, run_id: str, attempt: int) -> str:
    return f"{WIP_REFS}/{name}/{run_id}/{attempt}"


def landed_ref(name: str, stamp: str) -> str:
    return f"{LANDED_REFS}/{name}/{stamp}"


# --- the one normaliser of a path a user typed -----------------------------------------------------------


def repo_path(
    raw: str, *, cwd: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]], strict: bool = False
) -> str:
    """``raw`` as a path relative to the first of ``roots`` that holds it: relative to ``cwd``
    (``..`` that stays inside the repository is fine), absolute, or with a leading ``/`` meaning the
    repository root, as in streams.yaml (``/pyproject.toml``): an absolute path inside no root that
    does not exist on disk is read that way.

    Refused with ``PathError``: empty or NUL, outside every root, under ``.git``; when ``strict``
    (a path to lock) also the root itself and directories.
    """
    from streams.kernel.errors import PathError  # here, not at the top: the hooks import this module

    if not raw.strip():
        raise PathError("empty path; name a file, e.g. pyproject.toml")
    if "\0" in raw:
        raise PathError(f"{raw!r} contains a NUL byte; name a file")
    full = os.path.normpath(os.path.join(os.fspath(cwd), raw))
    if raw.startswith("/") and roots and not os.path.lexists(full) and _inside(full, roots) is None:
        full = os.path.normpath(os.path.join(os.fspath(roots[0]), raw.lstrip("/")))  # as in streams.yaml
    found = _inside(full, roots)
    rel, root = found if found is not None else (None, None)
    if rel is None or root is None:
        raise PathError(f"{raw} is outside the repository; name a file inside {roots[0] if roots else cwd}")
    if ".git" in rel.split("/"):
        raise PathError(f"{raw} is under .git; git's own files belong to no stream and cannot be locked")
    if strict:
        if rel == ".":
            raise PathError(f"{raw} is the repository root, a directory; name a file")
        if raw.endswith("/") or os.path.isdir(os.path.join(root, rel)):
            raise PathError(f"{raw} is a directory; lock the files in it one by one")
    return rel


def _inside(full: str, roots: Sequence[str | os.PathLike[str]]) -> tuple[str, str] | None:
    """``(path relative to the root, that root)`` for the first of ``roots`` holding ``full``."""
    for candidate in _candidates(full):
        for r in roots:
            for rr in dict.fromkeys((os.fspath(r), os.path.realpath(r))):
                inside = os.path.relpath(candidate, rr)
                if inside != ".." and not inside.startswith(".." + os.sep):
                    return inside.replace(os.sep, "/"), rr
    return None


def _candidates(full: str) -> list[str]:
    """``full``, then the same name in its parent's real path (a symlinked cwd or root)."""
    out = [full]
    try:
        real = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    except OSError:
        return out
    if real != full:
        out.append(real)
    return out
