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
"""

from streams.git.attempt import *  # noqa: F403
from streams.git.door import *  # noqa: F403
from streams.git.refs import *  # noqa: F403
from streams.git.replay import *  # noqa: F403
from streams.git.worktree import *  # noqa: F403
