"""The git hooks' entry point: ``python -m streams.hook <hook> [args…]``. Standard library only.

The shell shims in ``<git-common-dir>/hooks`` (see ``streams.hooks_install``) call this with the
installing interpreter, ``-I -S`` (no site-packages to scan) and the streams package put on
``sys.path``, and only when there is something to check: in the main worktree, for a ref that is not
a stream branch, or when no stream ref moves, no Python starts at all.

- ``pre-commit``: the staged changes of a stream worktree (``git diff --cached``, which honours
  the temporary index of ``git commit -o``) against the scope rules. On success it leaves
  ``<git-dir>/streams-checked`` (branch, HEAD, index tree): the reference-transaction shim then
  recognises the very commit it checked and skips Python.
- ``reference-transaction prepared [OLD NEW REF]…``: every commit a stream branch gains that is
  not on the base, each against its parent (a merge against the automatic merge of its parents),
  for any stream ref, from any worktree; from a stream's worktree, no other stream's branch and no
  base ref moves (but by a fetch).
- ``post-commit``, ``post-rewrite``: the advisory hooks (``streams.hook_after``): leases released
  or held until landed at a commit; those taken during a rebase released at its end.
- ``fence pre-commit|reference-transaction``: called by those shims only when the worktree is fenced
  (``<git-dir>/streams-fence``, see ``streams.kernel.fence``) and the process does not carry the
  fence's token: refuses the commit or the move of HEAD or a branch with one line, unless the fence
  lets it through (a halted rebase's own ``git rebase``, a sync that is gone).

Only the standard library, ``streams.kernel`` and the hooks' plumbing ``streams.hookio`` are
imported (``streams.kernel.locks`` only when a shared path is involved); a configuration in force
that the compiled cache does not hold goes to the full loader (site-packages are then added with
``site.main()``). Like ``streams.cli``, this is a face: it is the only other module that prints (to
stderr) and chooses an exit code.

Its git door is its own (``streams.hookio``: ``posix_spawn`` without ``subprocess``): importing
``subprocess`` costs a hook about 10 ms, and a hook runs on every commit. It is the one exception to
"every git call goes through ``streams.git``", and it is used for nothing else.
"""

from __future__ import annotations

import os
import sys

from streams.hookio import HookError, _collect, _spawn, common_dir, config, git, git_dir, marker, say
from streams.kernel import rules
from streams.kernel.gitparse import DIFF_ARGS, LOG_ARGS, parse_entries, parse_log, parse_name_status, rebase_dir
from streams.kernel.paths import (
    FENCE_ENV,
    FENCE_FILE,
    ZERO_OID,
    token_file,
)
from streams.kernel.reffiles import read_head
from streams.kernel.rules import CompiledConfig, Finding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def lease_lookup(common: str) -> Callable[[str], tuple[str, float] | None]:
    """``kernel.locks.lease_lookup``, imported on first use: most commits touch no shared path."""
    found: list[Callable[[str], tuple[str, float] | None]] = []

    def lease_of(path: str) -> tuple[str, float] | None:
        if not found:
            from streams.kernel.lease import lease_lookup as lookup

            found.append(lookup(common))
        return found[0](path)

    return lease_of


def log_rejection(common: str, hook: str, stream: str, findings: Sequence[Finding]) -> None:
    try:
        from pathlib import Path

        from streams.kernel import events

        events.append(
            Path(common),
            "scope.reject",
            hook=hook,
            stream=stream,
            paths=[f[0] for f in findings],
            commits=sorted({f[4] for f in findings if f[4]}),
        )
    except Exception:  # noqa: BLE001 - the log is best effort; the rejection itself stands
        pass


# --- the hooks -------------------------------------------------------------------------------------


def pre_commit() -> int:
    gd = git_dir()
    stream = marker(gd)
    if stream is None:
        return 0  # the main worktree (or any non-stream worktree): everything goes
    common = common_dir(gd)
    token = token_file(gd)
    try:  # noqa: SIM105 - contextlib costs an import
        os.unlink(token)
    except OSError:
        pass
    cc = config(common)
    if cc is None:
        raise HookError(
            "no streams.yaml is committed on the base branch, so this stream's scope cannot be checked; ask your human"
        )
    if stream not in cc.stream_rules:
        raise HookError(
            f"this worktree belongs to stream {stream!r}, which streams.yaml on {cc.base} no longer lists; "
            f"ask your human (to add it back, or to run `streams stop {stream}`)"
        )
    merge_heads = _merge_heads(gd)
    against = _automatic_merge(merge_heads) if merge_heads else None
    procs = [_spawn(["diff", "--cached", *DIFF_ARGS, *([against] if against else []), "--"]), _spawn(["write-tree"])]
    head = read_head(gd, common)
    results = [_collect(p) for p in procs]
    code, out, err = results[0]
    if code != 0:
        raise HookError(f"`git diff --cached` failed: {err.decode(errors='replace').strip()}")
    changes = parse_name_status(out)
    findings = cc.check(stream, changes, lease_lookup(common))
    if findings:
        findings = _drop_reverts(cc, findings)
    if findings:
        say(
            f"streams: commit refused: stream {stream} may not change "
            f"{_count(len(findings), 'path')}:\n"
            + "\n".join(rules.format_findings(findings))
            + "\nUnstage them (`git restore --staged -- PATH…`) and commit again. "
            "`--no-verify` will not help: the branch update is checked as well."
        )
        log_rejection(common, "pre-commit", stream, findings)
        return 1
    tree = results[1][1].decode().strip()
    if results[1][0] == 0 and head and tree:
        try:
            with open(token, "w", encoding="utf-8") as fh:
                fh.write(f"refs/heads/{cc.branch(stream)} {head} {tree}\n")
        except OSError:
            pass
    return 0


def _automatic_merge(merge_heads: list[str]) -> str | None:
    """The tree git's automatic merge of HEAD and ``merge_heads`` makes (conflicts left as markers):
    a merge's own change is where the staged tree differs from it. None (judge against HEAD, which
    over-reports) when git cannot say, e.g. an octopus merge."""
    if len(merge_heads) != 1:
        return None
    code, out, _ = git("merge-tree", "--write-tree", "--allow-unrelated-histories", "HEAD", merge_heads[0])
    tree = out.decode().split("\n", 1)[0].strip()
    return tree if code in (0, 1) and len(tree) == 40 else None


def _drop_reverts(cc: CompiledConfig, findings: list[Finding]) -> list[Finding]:
    """Findings minus the changes that put a path back as it is on the base (at the fork point).

    Staged changes are judged against HEAD, and HEAD can already hold an out-of-scope change (a
    commit being rewritten during a rebase, or older than the hooks); undoing it, e.g. while
    amending that commit, must not be refused. Only runs when something would be refused.
    """
    code, out, _ = git("merge-base", "HEAD", f"refs/heads/{cc.base}")
    base = out.decode().strip()
    if code != 0 or not base:
        return findings
    paths = [f[0] for f in findings]
    _, staged, _ = git("--literal-pathspecs", "ls-files", "-s", "-z", "--", *paths)
    _, at_base, _ = git("--literal-pathspecs", "ls-tree", "-z", base, "--", *paths)
    index, tree = parse_entries(staged, stage=True), parse_entries(at_base, stage=False)
    return [f for f in findings if index.get(f[0]) != tree.get(f[0])]


def _merge_heads(gd: str) -> list[str]:
    try:
        with open(os.path.join(gd, "MERGE_HEAD"), encoding="ascii") as fh:
            return [ln.strip() for ln in fh if ln.strip()]
    except OSError:
        return []


def _updates(args: Sequence[str]) -> list[tuple[str, str, str]]:
    if args:
        words = list(args)
    else:
        words = sys.stdin.read().split()
    return [(words[i], words[i + 1], words[i + 2]) for i in range(0, len(words) - 2, 3)]


def range_args(cc: CompiledConfig, new: str, old: str | None) -> list[str]:
    """``git log`` arguments for the commits a stream ref gains when it moves from ``old`` to ``new``.

    Commits already on the base (local or remote-tracking) are not the stream's. When the ref moves
    from an existing tip, commits whose patch is identical to one it already had are skipped
    (``--cherry-pick``): a rebase that replays accepted commits unchanged is not re-judged, but one
    whose conflict resolution changed a patch is.
    """
    args = [*LOG_ARGS, "--ignore-missing"]
    if old and old != ZERO_OID:
        args += ["--cherry-pick", "--right-only", f"{old}...{new}"]
    else:
        args.append(new)
    args += ["--not", f"refs/heads/{cc.base}"]
    if cc.remote:
        args.append(f"refs/remotes/{cc.remote}/{cc.base}")
    args.append("--")
    return args


def reference_transaction(args: Sequence[str]) -> int:
    if not args or args[0] != "prepared":
        return 0
    updates = _updates(args[1:])
    gd = git_dir()
    common = common_dir(gd)
    cc = config(common)
    if cc is None:
        return 0  # no streams.yaml: nothing to enforce
    trespass = _trespass(cc, gd, updates)
    if trespass:
        say(trespass)
        return 1
    todo = [(o, n, r) for o, n, r in updates if n != ZERO_OID and cc.stream_of_ref(r) is not None]
    if not todo:
        return 0
    lease_of = lease_lookup(common)
    refused: list[tuple[str, str, list[Finding]]] = []
    for old, new, ref in todo:
        stream = cc.stream_of_ref(ref)
        assert stream is not None
        if old == ZERO_OID:  # forced update or creation: git does not say what the ref held
            code, out, _ = git("rev-parse", "-q", "--verify", f"{ref}^{{commit}}")
            old = out.decode().strip() if code == 0 else ZERO_OID
        code, out, err = git(*range_args(cc, new, old))
        if code != 0:
            raise HookError(f"cannot list the commits {ref} would gain: {err.decode(errors='replace').strip()}")
        findings = [f for commit, changes in parse_log(out) for f in cc.check(stream, changes, lease_of, commit)]
        if findings and old != ZERO_OID and _rewriting(gd):
            findings = _drop_own_shared(cc, old, findings)
        if findings:
            refused.append((ref, stream, findings))
    if not refused:
        return 0
    for ref, stream, findings in refused:
        commits = {f[4] for f in findings}
        say(
            f"streams: refusing to move {ref}: {_count(len(commits), 'commit')} "
            f"{'changes' if len(commits) == 1 else 'change'} "
            f"{_count(len(findings), 'path')} outside stream {stream}'s scope:\n"
            + "\n".join(rules.format_findings(findings, with_commit=True))
        )
        log_rejection(common, "reference-transaction", stream, findings)
    if rebase_dir(gd) is not None:
        say(_rebase_advice(gd, common, refused))
    else:
        say(
            "Rewrite those commits without these changes (e.g. `git rebase -i`, or `git reset` and commit "
            "again), then retry."
        )
    say("This check runs whenever a stream branch moves; `--no-verify` does not skip it.")
    return 1


def _trespass(cc: CompiledConfig, gd: str, updates: list[tuple[str, str, str]]) -> str | None:
    """Why this transaction may not run in a stream's worktree, or None: an agent there moves its
    own branch only. Another stream's branch, or the base (which decides what counts as already
    landed), moves only by a fetch, or by the sync that holds this worktree's fence."""
    here = marker(gd)
    if here is None or not updates or _fence_holder(gd):
        return None
    for _, _, ref in updates:
        other = cc.stream_of_ref(ref)
        if other is not None and other != here:
            return (
                f"streams: refusing to move {ref} from stream {here}'s worktree: a stream moves only its own "
                f"branch ({cc.branch(here)}); stream {other}'s is its own agent's"
            )
        if ref in cc.base_refs:
            from streams.kernel.fence import from_git

            if from_git(("fetch", "pull")):
                continue
            return (
                f"streams: refusing to move {ref} from stream {here}'s worktree: the base says what has "
                "landed, and only a fetch or your human moves it (`streams sync` keeps streams current)"
            )
    return None


def _fence_holder(gd: str) -> bool:
    """Whether this process carries the token of the fence raised in this worktree (a sync)."""
    token = os.environ.get(FENCE_ENV)
    if not token:
        return False
    from streams.kernel.fence import read as read_fence

    held = read_fence(gd)
    return held is not None and held.token == token


def _rebase_advice(gd: str, common: str, refused: list[tuple[str, str, list[Finding]]]) -> str:
    """How to get out of a rebase whose result is refused: amending works only when the offending
    commit is the one checked out (the last one made) and nothing fences the worktree; otherwise
    the rebase must be undone and done again without those paths."""
    commits = {f[4] for _, _, findings in refused for f in findings}
    fenced = os.path.exists(os.path.join(gd, FENCE_FILE))
    if commits == {read_head(gd, common)} and not fenced:
        return (
            "A rebase is in progress here and the offending commit is the last one: put those paths back "
            "(`git checkout HEAD~1 -- PATH`, or `git rm --cached PATH` for a new file), "
            "`git commit --amend --no-edit`, then `git rebase --continue`; or `git rebase --abort`."
        )
    stream = refused[0][1]
    undo = f"`streams sync --abort {stream}`" if fenced else "`git rebase --abort`"
    return (
        f"A rebase is in progress here and {'these commits were' if len(commits) > 1 else 'this commit was'} "
        f"made during it: {undo} puts the branch back as it was; then rebase again "
        "(`streams sync`) and resolve without changing those paths."
    )


def _rewriting(gd: str) -> bool:
    """Whether the ref moves because history is being replayed here: a rebase in this worktree
    (a human's, or sync's fallback), or the sync that holds this worktree's fence (its replay)."""
    return rebase_dir(gd) is not None or _fence_holder(gd)


def _drop_own_shared(cc: CompiledConfig, old: str, findings: list[Finding]) -> list[Finding]:
    """Findings minus the shared paths the stream's history at ``old`` already changes.

    Replaying a stream's commit that changed a shared file under a lease valid then (a rebase,
    the conflict resolution of a sync halt) changes that file again: no new lease is needed. Any
    other path, or a shared path the stream never changed, is judged as usual.
    """
    shared = {f[0] for f in findings if cc.owner(f[0])[0] == "shared"}
    if not shared:
        return findings
    code, out, _ = git(*range_args(cc, old, None))
    if code != 0:
        return findings
    touched = {path for _, changes in parse_log(out) for _, path in changes}
    return [f for f in findings if f[0] not in (shared & touched)]


def fence() -> int:
    from streams.kernel.fence import verdict

    refused = verdict(git_dir(), os.getcwd())
    if refused is None:
        return 0
    say(refused)
    return 1


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


HOOKS = {"pre-commit", "reference-transaction", "post-commit", "post-rewrite", "fence"}
ADVISORY = ("post-commit", "post-rewrite")  # run after the fact: they cannot refuse anything


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in HOOKS:
        say(f"usage: python -m streams.hook {{{','.join(sorted(HOOKS))}}} [ARGS…]")
        return 2
    hook, rest = args[0], args[1:]
    try:
        if hook == "pre-commit":
            return pre_commit()
        if hook == "reference-transaction":
            return reference_transaction(rest)
        if hook == "fence":
            return fence()
        from streams import hook_after  # the advisory hooks, after the fact

        if hook == "post-rewrite":
            return hook_after.post_rewrite(rest)
        return hook_after.post_commit()
    except HookError as exc:
        say(f"streams: {exc}")
        return 0 if hook in ADVISORY else 1
    except Exception:  # noqa: BLE001 - fail closed, and say it is a bug
        import traceback

        say(f"streams: internal error in the {hook} hook (a bug in streams); the change is refused:")
        say(traceback.format_exc())
        return 0 if hook in ADVISORY else 1


if __name__ == "__main__":
    sys.exit(main())
