"""Acting over time across streams: plan, sync loop, runner, watcher, merge.

Imports ``streams`` core modules; never the CLI.
"""
