"""What a sync pass works out once for all the streams it rebases, before any fence goes up.

Replaying a stream (``git.replay``) touches no worktree and moves no ref: it only writes objects.
So one ``git.replay_many`` makes the rebased commits of every stream to rebase in a handful of git
processes, instead of a dozen per stream behind each fence. Behind the fence, sync reads the branch
again; the prepared commits are used only when it is still at the tip they were made from (else,
the agent committed meanwhile, the stream is replayed there and then, as before), and the branch
moves by compare-and-swap from that tip all the same. Commits prepared for a stream that is not
rebased after all are on no ref, as a killed replay's are: ``git gc`` prunes them.

The same pass learns each stream's fork point (its merge base with the upstream) from the same
``rev-list``; the paths the upstream added since a fork point, which the check for ignored files in
the way needs, are asked once per fork point (streams mostly share one).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streams import git
from streams.kernel.errors import GitError


@dataclass
class Prepared:
    """One pass's shared answers; ``replays`` by the tip they were made from."""

    upstream_tip: str
    replays: dict[str, git.Replayed] = field(default_factory=dict)
    _added: dict[str, frozenset[str]] = field(default_factory=dict)

    def replayed(self, tip: str) -> git.Replayed | None:
        """The replay prepared from ``tip``, or None (none prepared: replay it now)."""
        return self.replays.get(tip)

    def fork(self, cwd: Path, tip: str) -> git.Oid | None:
        """The merge base of ``tip`` and the upstream (None: no shared history)."""
        known = self.replays.get(tip)
        if known is not None and known.fork is not None:
            return known.fork
        return git.merge_base(cwd, tip, self.upstream_tip)

    def added_since(self, cwd: Path, base: str) -> frozenset[str]:
        """The paths the upstream added since ``base``."""
        if base not in self._added:
            changes = git.tree_changes(cwd, base, self.upstream_tip)
            self._added[base] = frozenset(p for status, p in changes if status == "A")
        return self._added[base]


def prepare(cwd: Path, tips: Sequence[str], upstream_tip: str) -> Prepared:
    """Every tip's replay onto ``upstream_tip`` made at once; none when git refused (a lock a
    killed git left, say): then each stream is replayed behind its fence, as it would have been."""
    prepared = Prepared(upstream_tip)
    if tips:
        with contextlib.suppress(GitError):
            prepared.replays = git.replay_many(cwd, tips, upstream_tip)
    return prepared


def present(worktree: Path, paths: frozenset[str]) -> list[str]:
    """Those of ``paths`` that something occupies in ``worktree`` (a file, a directory, a link)."""
    return sorted(p for p in paths if os.path.lexists(worktree / p))
