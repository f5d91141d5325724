"""The one door to git: every git command streams runs goes through ``streams.git.door.run``
(or ``run_unpiped``), and every git question is one small named function in this package, grouped by
what it asks about:

- ``door``: ``run``/``run_unpiped``/``out``, the environment git gets, ``Result``, the typed values
  ``Oid`` and ``RefName``;
- ``refs``: repository discovery, refs and objects, history, fetch and push;
- ``replay``: a stream's commits replayed onto the upstream without a worktree, and published;
- ``attempt``: an agent's attempt: its uncommitted work saved through a temporary index (a WIP
  snapshot), put back to HEAD, and the size of what its commits changed;
- ``worktree``: the worktree list, status, the index and commits, a worktree's state files, rebases,
  stale lock files.

Callers use the flat namespace (``from streams import git``; ``git.rev_parse(...)``). The parsers of
git's output live in ``streams.kernel.gitparse`` (the hooks share them); the hooks spawn git
themselves (``streams.hook``), the one documented exception.

The flat namespace is filled on demand: a name is looked up in ``_EXPORTS`` (each submodule's
``__all__``; tests/test_git_lazy.py keeps the two equal) and its submodule imported on first use, so
`streams progress` loads ``door`` and ``worktree`` without ``refs`` or ``replay`` (and their imports).
mypy sees the names through the ``TYPE_CHECKING`` star imports, with their types; the module
``__getattr__`` is hidden from it, so a misspelt name is still an error. ``git.replay`` is the
function: load the submodule through the namespace (``git.bring_along``), not by ``import
streams.git.replay``, which binds the name to the submodule until a name of it is first looked up here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.git.attempt import *  # noqa: F403
    from streams.git.door import *  # noqa: F403
    from streams.git.refs import *  # noqa: F403
    from streams.git.replay import *  # noqa: F403
    from streams.git.worktree import *  # noqa: F403

# Each submodule's public names, as its __all__ lists them.
_EXPORTS = {
    "attempt": "added_lines diff_numstat head_or_none reset_to_head snapshot_tree tree_of tree_paths_changed wip_commit",
    "door": (
        "JUDGE_ENV LOCAL_ENV_VARS ZERO_OID Oid RefName Result branch_ref no_git_env out run run_unpiped split_z version"
    ),
    "worktree": (
        "StatusEntry Worktree add_detached_worktree add_intent_to_add add_worktree checkout_detached cherry_pick "
        "commit_only differs_from_head discard_changes fetch_lock_files forget_in_index hash_files ignored_paths "
        "is_dirty merge_squash object_ids operation_in_progress prune_worktrees read_small rebase rebase_abort "
        "rebase_continue rebase_dir remove_worktree reset_keep stale_lock_files status switch tracked_files "
        "unmerged_paths untracked_files worktree_git_dir worktree_operation worktree_tree worktrees write_tree"
    ),
    "refs": (
        "Divergence RefTip RepoPaths author_time author_times changed_paths_many commit_tree commits_from "
        "commits_not_on commits_not_on_with_subjects commits_only_in commits_with_paths create_ref_while config_get "
        "delete_ref divergence divergence_many fast_import fetch git_dir_and_head git_dirs has_path idents is_ancestor "
        "ls_remote ls_tree_names merge_base merge_tree merge_tree_conflicts missing_commits push_with_leases "
        "range_changes range_changes_per_tip read_blob ref_oids ref_tips reflog_oids repo_paths resolve_commit "
        "resolve_many rev_parse rev_parse_range subjects "
        "symbolic_head tree_changes tree_key tree_with tree_with_like update_ref update_refs "
        "committer_ident head_and_tip"
    ),
    "replay": (
        "ASIDE_PREFIX Aside bring_along bring_along_locked drop_asides held_lock index_matches move_checked_out "
        "rebase_aside replay Replayed replay_many"
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names.split()}

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        loaded = importlib.import_module(f"{__name__}.{module}")
        # All its names at once: the next look-ups are plain attributes, and ``replay`` (both a
        # submodule and its main function) names the function, as with eager star imports.
        globals().update({n: getattr(loaded, n) for n in _EXPORTS[module].split()})
        return globals()[name]

    def __dir__() -> list[str]:
        return sorted({*globals(), *_WHERE})
