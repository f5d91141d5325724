"""Acting over time across streams: the one loop (``loop``) and file watcher (``fswatch``) that
every long-running command runs on; the sync pass, the status dashboard over time, the scope
watcher; later plan, runner, merge.

Imports ``streams`` core modules; never the CLI.
"""
