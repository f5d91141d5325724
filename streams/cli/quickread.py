"""`streams list` and `streams locks` the quick way: no click, no PyYAML, no streams.yaml parse.

Both only read, and both are run often (an agent's loop, a dashboard script), so they answer from
what the full path keeps on disk, and start no git process they can do without:

- the configuration in force, from the hooks' compiled cache (``streams.kernel.hookcache``), under
  the one trust rule of ``configured`` (the base still points at the commit it was
  compiled for, and the main worktree's ``streams.yaml`` is the committed one), plus the branch
  prefix file the hooks read;
- what the full path printed for that configuration: its warnings (a pattern that matches nothing
  tracked) and its ``worktree_root``, kept by ``remember`` in ``cache/quick-read.marshal`` for the
  blob and base commit they were computed from (the tree check depends on nothing else);
- the repository's layout read from ``.git`` (the file or the directory), the stream branches' tips
  from the ref files (``streams.kernel.reffiles``), and the worktrees from ONE ``git worktree
  list``.

``serve`` answers only a command line it fully understands, in a repository it can read plainly;
for anything else (another option, ``-C``, a stale or missing cache, an uncommitted edit of
streams.yaml, another ref backend, a worktree git would call prunable, a name that is not UTF-8,
an environment that moves git's discovery) it returns None and the full CLI runs the command as if
this module did not exist. Its output is byte for byte the full path's (``tests/test_quickread.py``
runs both over many repository states); ``STREAMS_FULL_PATH=1`` turns it off.
"""

from __future__ import annotations

import os
import sys

from streams.kernel import paths
from streams.kernel.errors import EXIT_OK
from streams.kernel.gitparse import rebase_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from streams.kernel.rules import CompiledConfig

RECORD_FILE = "quick-read.marshal"
RECORD_FORMAT = 1
FULL_PATH_ENV = "STREAMS_FULL_PATH"  # set (non-empty): always the full CLI (the tests compare both)

# What moves git's own discovery of the repository away from "walk up from the cwd" (the full path
# strips the repository-locating variables, GIT_DIR and friends, but git still honours these).
_DISCOVERY_ENV = ("GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_TEST_ASSUME_DIFFERENT_OWNER")


# --- what the full path leaves for the quick one ------------------------------------------------------


def record_file(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(paths.cache_dir(common_dir), RECORD_FILE)


def remember(
    common_dir: str | os.PathLike[str],
    *,
    config_path: str,
    blob: str,
    commit: str,
    worktree_root: str,
    warnings: tuple[str, ...],
) -> None:
    """Keep what ``streams list`` printed beyond the compiled configuration: the warnings of the
    configuration in force (blob ``blob`` on base commit ``commit``, the main worktree's copy
    equal to it) after the check against the base's files, and its ``worktree_root``. Written
    only when it changed; a cache that cannot be written is not an error (the full path serves)."""
    import marshal

    from streams import __version__

    data = {
        "format": RECORD_FORMAT,
        "version": __version__,
        "config_path": config_path,
        "blob": blob,
        "commit": commit,
        "worktree_root": worktree_root,
        "warnings": list(warnings),
    }
    if _record(common_dir) == data:
        return
    from streams.kernel.atomic import replace_file

    try:
        os.makedirs(paths.cache_dir(common_dir), exist_ok=True)
        replace_file(record_file(common_dir), marshal.dumps(data))
    except OSError:
        pass


def _record(common_dir: str | os.PathLike[str]) -> dict[str, object] | None:
    import marshal

    try:
        with open(record_file(common_dir), "rb") as fh:
            data = marshal.loads(fh.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == RECORD_FORMAT else None


# --- the repository, read from its files ----------------------------------------------------------------


class Repo:
    """Where the command runs: the worktree's top, its git dir, the common dir, the main worktree."""

    __slots__ = ("common_dir", "cwd", "git_dir", "main_root", "toplevel")

    def __init__(self, cwd: str, toplevel: str, git_dir: str, common_dir: str, main_root: str) -> None:
        self.cwd = cwd
        self.toplevel = toplevel
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.main_root = main_root


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def find_repo(cwd: str) -> Repo | None:
    """The repository ``cwd`` is in, as ``git rev-parse`` would find it, when its files say so
    plainly: a main worktree with its ``.git`` directory, or a linked worktree of one; else None."""
    if any(os.environ.get(k) for k in _DISCOVERY_ENV):
        return None
    try:
        device = os.stat(cwd).st_dev
    except OSError:
        return None
    here = cwd
    while True:
        dot = os.path.join(here, ".git")
        try:
            st = os.stat(here)
        except OSError:
            return None
        if st.st_dev != device:  # git stops at a file system boundary
            return None
        if os.path.isdir(dot):
            if cwd == dot or cwd.startswith(dot + os.sep):
                return None  # inside the git dir: no worktree there, git says so
            return _main_worktree(cwd, here, dot, st.st_uid)
        if os.path.isfile(dot):
            return _linked_worktree(cwd, here, dot, st.st_uid)
        if os.path.lexists(dot):
            return None
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _plain_git_dir(common: str) -> bool:
    """A common dir whose repository git reads as plainly as this module does: files refs (no
    reftable), not bare, no ``core.worktree`` nor per-worktree config, owned by the user (no
    ``safe.directory`` question)."""
    config = _read_text(os.path.join(common, "config"))
    if config is None or not os.path.isfile(os.path.join(common, "HEAD")):
        return False
    lowered = config.lower().replace(" ", "").replace("\t", "")
    if any(word in lowered for word in ("bare=true", "worktree=", "worktreeconfig", "refstorage")):
        return False
    try:
        return os.stat(common).st_uid == os.getuid() and not os.path.exists(os.path.join(common, "reftable"))
    except OSError:
        return False


def _main_worktree(cwd: str, here: str, dot: str, owner: int) -> Repo | None:
    if owner != os.getuid() or not _plain_git_dir(dot) or os.path.realpath(here) != here:
        return None
    return Repo(cwd, here, dot, dot, here)


def _linked_worktree(cwd: str, here: str, dot: str, owner: int) -> Repo | None:
    text = _read_text(dot)
    if owner != os.getuid() or text is None or not text.startswith("gitdir: ") or text.count("\n") > 1:
        return None
    git_dir = os.path.normpath(os.path.join(here, text.strip().removeprefix("gitdir: ")))
    common_rel = _read_text(os.path.join(git_dir, "commondir"))
    if not common_rel or not common_rel.strip() or not os.path.isfile(os.path.join(git_dir, "HEAD")):
        return None
    common = os.path.normpath(os.path.join(git_dir, common_rel.strip()))
    main_root = os.path.dirname(common)
    if os.path.basename(common) != ".git" or not os.path.isdir(os.path.join(main_root, ".git")):
        return None
    if not _plain_git_dir(common) or os.path.realpath(here) != here or os.path.realpath(main_root) != main_root:
        return None
    return Repo(cwd, here, git_dir, common, main_root)


# --- the configuration in force ------------------------------------------------------------------------------


def configured(common_dir: str | os.PathLike[str]) -> CompiledConfig | None:
    """The configuration in force, as the hooks' compiled cache holds it, when that cache may be
    trusted for it; else None (the caller loads streams.yaml). The one place that decides: the
    cache holds while the base branch still points at the commit it was compiled for, and the
    main worktree's copy is the committed one (otherwise the full path says it differs)."""
    from streams.kernel import hookcache

    cc = hookcache.load(common_dir)
    if cc is None or not cc.in_force(os.fspath(common_dir)):
        return None
    try:
        with open(cc.config_path, "rb") as fh:
            return cc if fh.read() == cc.source else None
    except OSError:
        return None


class Served:
    """The configuration in force as the caches hold it, and what the full path printed for it."""

    __slots__ = ("cc", "warnings", "worktree_root")

    def __init__(self, cc: CompiledConfig, worktree_root: str, warnings: list[str]) -> None:
        self.cc = cc
        self.worktree_root = worktree_root
        self.warnings = warnings


def served(repo: Repo, *, printed: bool = True) -> Served | None:
    """The configuration in force when the caches may be trusted for it (``configured``'s
    rule, the branch prefix file the hooks read, and, with ``printed``, this module's record for the
    same blob and base commit); else None."""
    from streams import __version__
    from streams.kernel import hookcache

    config_path = os.path.join(repo.main_root, paths.CONFIG_FILE)
    cc = configured(repo.common_dir)
    if cc is None or cc.config_path != config_path or not hookcache.prefix_matches(repo.common_dir, cc.branch_prefix):
        return None
    if not printed:
        return Served(cc, "", [])
    record = _record(repo.common_dir)
    if (
        record is None
        or record.get("version") != __version__
        or record.get("config_path") != config_path
        or record.get("blob") != cc.blob
        or record.get("commit") != cc.base_commit
    ):
        return None
    worktree_root, warnings = record.get("worktree_root"), record.get("warnings")
    if not isinstance(worktree_root, str) or not isinstance(warnings, list):
        return None
    return Served(cc, worktree_root, [str(w) for w in warnings])


# --- the commands --------------------------------------------------------------------------------------------


def serve(args: list[str]) -> int | None:
    """Run ``streams ARGS`` the quick way and return its exit code, or None: run the full CLI."""
    if os.environ.get(FULL_PATH_ENV) or len(args) > 2 or (len(args) == 2 and args[1] != "--json"):
        return None
    as_json = len(args) == 2
    try:
        cwd = os.getcwd()
        repo = find_repo(cwd)
        if repo is None:
            return None
        config = served(repo, printed=args[0] == "list")
        if config is None:
            return None
        if args[0] == "list":
            out = _list(repo, config, as_json)
        elif args[0] == "locks":
            out = _locks(repo, as_json)
        else:
            return None
    except OSError:
        return None
    if out is None:
        return None
    warnings = [] if args[0] == "locks" else list(dict.fromkeys(config.warnings))
    return write_reply(warnings, out)


def write_reply(warnings: list[str], out: str) -> int | None:
    """Write the warnings (stderr) and the reply (stdout) as the full path's writer does."""
    text = "".join(f"streams: warning: {w}\n" for w in warnings)
    try:
        text.encode("utf-8")
        out.encode("utf-8")
    except UnicodeEncodeError:
        return None  # names that are not UTF-8: the full path's writer shows their bytes
    utf8 = all((f.encoding or "").lower().replace("-", "") == "utf8" for f in (sys.stdout, sys.stderr))
    if not utf8 and not (text + out).isascii():
        return None  # click's writer decides what such a stream gets
    try:
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
        sys.stdout.write(out + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return EXIT_OK


def _shown(path: str, cwd: str) -> str:
    """``streams.cli.context.shown``: relative to the cwd when that is shorter."""
    try:
        rel = os.path.relpath(path, cwd)
    except ValueError:
        return path
    return rel if len(rel) < len(path) else path


# --- list ----------------------------------------------------------------------------------------------------


def _packed_refs(common_dir: str) -> dict[str, str] | None:
    """``packed-refs`` as ``{ref: oid}`` (read once: a thousand streams would read it a thousand
    times one ref at a time), {} when there is none, None when it cannot be read."""
    found: dict[str, str] = {}
    try:
        with open(os.path.join(common_dir, "packed-refs"), encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                oid, sep, ref = line.rstrip("\n").partition(" ")
                if sep and len(oid) == 40 and not line.startswith(("#", "^")):
                    found.setdefault(ref, oid)
    except FileNotFoundError:
        return found
    except OSError:
        return None
    return found


def _resolve(common_dir: str, ref: str, packed: dict[str, str]) -> tuple[bool, str | None]:
    """(known, oid) of a branch from the ref files (``streams.kernel.reffiles.read_ref``'s rule):
    known False when only git can say (a symbolic or unreadable loose ref)."""
    try:
        with open(os.path.join(common_dir, ref), encoding="ascii") as fh:
            text = fh.read().strip()
    except FileNotFoundError:
        oid = packed.get(ref)
        return (True, oid) if oid is None or all(c in "0123456789abcdef" for c in oid) else (False, None)
    except (OSError, ValueError):
        return False, None
    if len(text) == 40 and all(c in "0123456789abcdef" for c in text):
        return True, text
    return False, None


Row = tuple[str, str, str, str, "str | None"]  # name, branch, path, state, head (``places.locate``)


def places(repo: Repo, config: Served) -> list[Row] | None:
    """Every stream's place as ``places.locate`` finds it: the configured streams in order, then
    the stream worktrees not configured (state ``unconfigured``), by name; None to go the full way
    (a missing worktree, a ref only git can read). Started streams' ``path`` is their worktree,
    ``head`` its HEAD; the others' their configured path and their branch's tip."""
    cc = config.cc
    prefix = f"refs/heads/{cc.branch_prefix}"
    packed = _packed_refs(repo.common_dir)
    listed = None if packed is None else worktrees(repo, packed)
    if packed is None or listed is None:
        return None
    found: dict[str, tuple[str, str | None, str | None]] = {}  # name -> (path, head, branch ref)
    for path, git_dir, head, branch in listed:
        ref = branch
        rebasing = rebase_dir(git_dir)
        if ref is None and rebasing is not None:
            head_name = _read_text(os.path.join(rebasing, "head-name"))
            ref = head_name.strip() or None if head_name is not None else None
        name: str | None = None
        if ref and ref.startswith(prefix):
            name = ref[len(prefix) :]
        elif not ref:
            name = paths.read_marker(git_dir)
        if name and name in found:
            return None  # two worktrees of one stream: which one git lists first, git says
        if name:
            found[name] = (path, head, branch)
    base_dir = os.path.normpath(
        os.path.join(repo.main_root, config.worktree_root.replace("{repo}", os.path.basename(repo.main_root)))
    )
    rows: list[Row] = []
    for name in cc.names:
        if name in found:
            path, head, _ = found[name]
            rows.append((name, cc.branch(name), path, "started", head))
            continue
        known, tip = _resolve(repo.common_dir, prefix + name, packed)
        if not known:
            return None
        state = "branch only" if tip is not None else "not started"
        rows.append((name, cc.branch(name), os.path.join(base_dir, name), state, tip))
    for name, (path, head, ref) in sorted(found.items()):
        if name not in cc.stream_rules:
            branch = ref.removeprefix("refs/heads/") if ref else cc.branch(name)
            rows.append((name, branch, path, "unconfigured", head))
    return rows


def _list(repo: Repo, config: Served, as_json: bool) -> str | None:
    """``streams list`` (``streams.worktrees.survey``, ``places.locate``), or None to go the full way."""
    rows = places(repo, config)
    if rows is None:
        return None
    if as_json:
        from streams.cli.output import envelope_text

        streams = [{"name": n, "branch": b, "path": p, "state": s, "head": h} for n, b, p, s, h in rows]
        return envelope_text("list", {"base": config.cc.base, "streams": streams})
    if not rows:
        return "no streams configured; add some to streams.yaml"
    from streams.cli.output import table

    shown = [[n, b, s, h[:12] if h else "-", _shown(p, repo.cwd)] for n, b, p, s, h in rows]
    return table(shown, ["STREAM", "BRANCH", "STATE", "HEAD", "PATH"])


def worktrees(repo: Repo, packed: dict[str, str]) -> list[tuple[str, str, str | None, str | None]] | None:
    """``(path, git dir, HEAD, branch ref)`` of every worktree, as ``git worktree list`` would list
    them, read from git's files (gitrepository-layout: ``worktrees/<id>/gitdir`` names the
    worktree's ``.git`` file, ``HEAD`` its branch or commit); None when only git can say (a
    relative or dangling ``gitdir``, a worktree whose ``.git`` file points elsewhere, a HEAD that
    is neither a branch with a tip nor a commit)."""
    main = _head_of(repo.common_dir, repo.common_dir, packed)
    if main is None:
        return None
    found: list[tuple[str, str, str | None, str | None]] = [(repo.main_root, repo.common_dir, *main)]
    folder = os.path.join(repo.common_dir, "worktrees")
    try:
        ids = sorted(os.listdir(folder))
    except FileNotFoundError:
        ids = []
    for wt_id in ids:
        git_dir = os.path.join(folder, wt_id)
        if not os.path.isdir(git_dir):
            continue
        target = _read_text(os.path.join(git_dir, "gitdir"))
        if target is None:
            return None
        target = target.rstrip()
        if not os.path.isabs(target) or not target.endswith("/.git") or not os.path.isfile(target):
            return None  # relative (worktree.useRelativePaths), or prunable: git says how
        path = os.path.normpath(target[: -len("/.git")])
        if not os.path.isdir(path) or worktree_git_dir(path) != git_dir:
            return None
        head = _head_of(git_dir, repo.common_dir, packed)
        if head is None:
            return None
        found.append((path, git_dir, *head))
    return found


def _head_of(git_dir: str, common_dir: str, packed: dict[str, str]) -> tuple[str, str | None] | None:
    """``(commit, branch ref or None when detached)`` of a worktree's ``HEAD``, or None."""
    text = _read_text(os.path.join(git_dir, "HEAD"))
    if text is None:
        return None
    text = text.strip()
    if text.startswith("ref: "):
        ref = text[len("ref: ") :]
        if not ref.startswith("refs/heads/"):
            return None
        known, oid = _resolve(common_dir, ref, packed)
        return (oid, ref) if known and oid is not None else None
    if len(text) == 40 and all(c in "0123456789abcdef" for c in text):
        return text, None
    return None


def worktree_git_dir(worktree: str) -> str | None:
    """``streams.git.worktree_git_dir``: the worktree's ``.git`` dir, or where its ``.git`` file points."""
    dot = os.path.join(worktree, ".git")
    if os.path.isdir(dot):
        return dot
    text = _read_text(dot)
    if text is None or not text.strip().startswith("gitdir: "):
        return None
    target = text.strip()[len("gitdir: ") :]
    return target if os.path.isabs(target) else os.path.realpath(os.path.join(worktree, target))


# --- locks ---------------------------------------------------------------------------------------------------


def _locks(repo: Repo, as_json: bool) -> str | None:
    """``streams locks``: every lease, or None to go the full way (a temp file the full path sweeps)."""
    import time

    from streams.cli.output import envelope_text, leases_table
    from streams.kernel import leasedata

    found, temps = leasedata.read_all(paths.locks_dir(repo.common_dir))
    if temps:
        return None
    now = time.time()
    views = [leasedata.view(lease, now) for lease in found]
    if as_json:
        return envelope_text("locks", {"leases": views})
    return leases_table(views)
