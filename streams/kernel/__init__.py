"""FLOOR 1: the standard library only. What the git hooks may import (tests/test_layers.py keeps it so)."""
