"""streams: a git-backed workspace manager for several coding agents on one repository.

This module imports nothing on purpose: the git hooks run ``python -m streams.hook`` and must start
in milliseconds.
"""

__version__ = "0.1.0"
