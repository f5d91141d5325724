"""The kernel's lean readers say what the modules they stand in for say.

The quick ``status --json`` (``streams.cli.quickstatus``) answers before ``json``, ``re``,
``dataclasses`` and the run's records load; these tests hold its stand-ins to the originals:
``kernel.leanjson`` to ``json`` over generated documents, ``kernel.progressfile``'s hand-written
matchers to the regular expressions they replace, and ``kernel.runview``'s field names and states
to ``runstate``'s dataclasses and ``runclass``'s enums.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams import runclass, runstate, state
from streams.cli import quickstatus
from streams.git import door
from streams.kernel import leanjson, progressfile, runview
from streams.kernel.gitproc import NO_OPTIONAL_LOCKS, run_many
from tests.conftest import make_repo

ALPHABET = ["a", "Z", "0", "9", "_", "-", ".", "/", "@", "+", " ", ":", "T", "é", "\u0660", "\u2028", '"', "\\", "\n"]


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randrange(-(10**20), 10**20)
    if kind == 2:
        return rng.choice([0.0, -0.0, 1e300, 1e-300, 0.1 + 0.2, float("inf"), rng.random() * 1e6])
    if kind in (3, 4, 5):
        return "".join(rng.choice([*ALPHABET, "\udcff", "\x00", "\U0001f600"]) for _ in range(rng.randrange(6)))
    if kind in (6, 7):
        return {str(_value(rng, depth + 1)): _value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_leanjson_writes_and_reads_as_json_does() -> None:
    rng = random.Random(16)
    for _ in range(2000):
        doc = {"k": _value(rng), "l": [_value(rng)]}
        for ascii_only in (True, False):
            text = leanjson.dumps(doc, ensure_ascii=ascii_only)
            assert text == json.dumps(doc, ensure_ascii=ascii_only)
            if "NaN" not in text:
                assert leanjson.dumps(leanjson.loads(" \n" + text + "\t")) == json.dumps(json.loads(text))


@pytest.mark.parametrize("bad", ["", "{", "[1,]", '{"a": 1} x', "\ufeff{}", "nul", "[1] [2]", '{"a" 1}'])
def test_leanjson_refuses_what_json_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        leanjson.loads(bad)


def test_leanjson_refuses_bad_json_without_json_imported() -> None:
    """The quick paths run without ``json`` imported: a damaged file must still be a ValueError."""
    code = (
        "import sys\nfrom streams.kernel import leanjson\n"
        "assert leanjson.loads('{\"a\": [1]}') == {'a': [1]} and 'json' not in sys.modules\n"
        "for bad in ('{\"a\": ', '[1, 2', '{\"a\" 1}', 'nul'):\n"
        "    try:\n        leanjson.loads(bad)\n    except ValueError:\n        pass\n"
        "    else:\n        raise SystemExit('accepted ' + bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")


# The regular expressions streams.progress used before kernel.progressfile replaced them.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./@+-]*\Z")
_WHEN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
_COMPLETION = re.compile(r"(?:0|[1-9][0-9]{0,2})\Z")
_KEY = re.compile(r"([a-z_]+): (.*)\Z")


def test_the_progress_matchers_match_what_the_regular_expressions_matched() -> None:
    rng = random.Random(7)
    pieces = [
        "2026",
        "-",
        "01",
        "T",
        "12",
        ":",
        "Z",
        "0",
        "1",
        "99",
        "100",
        "1000",
        "a",
        "é",
        "\u0660",
        "status",
        ": ",
        " ",
    ]
    samples = ["2026-01-02T03:04:05Z", "0", "100", "007", "status: x", "a_b: ", "yes", "No", "x.y/z@1+2-3"]
    samples += ["".join(rng.choice(pieces) for _ in range(rng.randrange(8))) for _ in range(20000)]
    samples += ["".join(rng.choice("0123456789-T:Z\u0660\u0966") for _ in range(20)) for _ in range(20000)]
    for text in samples:
        assert progressfile._when(text) == bool(_WHEN.match(text)), text
        assert progressfile._completion(text) == bool(_COMPLETION.match(text)), text
        assert progressfile.plain(text) == (bool(_PLAIN.match(text)) and text.lower() not in progressfile._YAML_WORDS)
        m = _KEY.match(text)
        simple = progressfile.simple_front([text])
        if m is None:
            assert simple is None, text
        elif simple is not None:
            assert list(simple) == [m.group(1)], text


def _names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def _required(cls: type) -> frozenset[str]:
    return frozenset(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )


def test_runview_knows_the_shape_runstate_reads() -> None:
    assert _names(runstate.RunRecord) == runview.RUN_FIELDS
    assert _required(runstate.RunRecord) | {"status"} == runview.RUN_REQUIRED
    assert _names(runstate.StreamRecord) == runview.STREAM_FIELDS
    assert _required(runstate.StreamRecord) | {"status"} == runview.STREAM_REQUIRED
    assert _names(runstate.Attempt) == runview.ATTEMPT_FIELDS
    assert _required(runstate.Attempt) == runview.ATTEMPT_REQUIRED
    assert _names(runstate.RunnerInfo) == runview.RUNNER_FIELDS
    assert tuple(s.value for s in runclass.RunStatus) == runview.RUN_STATES
    assert tuple(s.value for s in runclass.StreamStatus) == runview.STREAM_STATES
    assert runview.LATEST == runstate.LATEST
    assert quickstatus.STATE_VERSION == state.STATE_VERSION


def test_run_many_answers_as_door_run_does_with_big_input_and_output(tmp_path: Path) -> None:
    """Many git processes, a few at a time, one fed 100 KiB on stdin while its output fills the
    pipe: the same exit codes and bytes as one ``door.run`` each, in the order asked."""
    repo = make_repo(tmp_path)
    head = repo.git("rev-parse", "HEAD").strip()
    big = (f"{head}\n" * 2500).encode()  # diff-tree --stdin echoes every line: both pipes fill
    calls: list[tuple[tuple[str, ...], str, dict[str, str] | None, bytes | None]] = [
        (("diff-tree", "--stdin", "-r", "--root"), str(repo.root), None, big),
        (("rev-parse", "--verify", "no-such-ref"), str(repo.root), None, None),
    ]
    calls += [
        (("cat-file", "-p", f"HEAD~0:{name}"), str(repo.root), NO_OPTIONAL_LOCKS, None)
        for name in ("streams.yaml",) * 10
    ]
    got = run_many(calls, parallel=3)
    want = [
        (r.returncode, r.stdout)
        for r in (door.run(*args, cwd=cwd, check=False, input=stdin, env=extra) for args, cwd, extra, stdin in calls)
    ]
    assert got == want
    assert len(got[0][1]) > 100_000 and got[1][0] != 0
