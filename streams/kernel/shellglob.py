"""Compiled scope rules as shell ``case`` globs that cover them, for the pre-commit shim. Standard library only.

The pre-commit shim decides a commit without Python when every staged path is its stream's and
no other stream's pattern can match it (``streams.kernel.hookcache``). For "no other stream's
pattern can match it" the shim tests each path against globs of the other streams' patterns:
``covers(kind, arg)`` gives globs such that every path the rule matches (``patterns._hit``)
matches one of them. They may match more (a path they match goes to the full check, which then
decides exactly as it always did); they never match less. So ``*.md`` is ``*.md`` and ``*.md/*``
(a file, or anything under a directory, whose name ends with ``.md``, at any depth: the shell's
``*`` spans ``/``), and a regular expression pathspec wrote is read token by token: ``[^/]*`` is
``*``, ``[^/]`` ``?``, a character class the same class when it lists plain characters only
(``[ch]``, ``[!a]``) and ``?`` otherwise, ``(?:.+/)?`` two globs (with and without ``?*/``),
``(?:/.+)?`` inside a pattern ``*``. A regular expression in any other shape is ``*``: it sends
every path to the full check.

A literal character that ``case`` would read as special (``* ? [ \\``) or that cannot sit on a
line (newline) becomes ``?``, which covers it; so no glob holds a backslash, a bracket only around
such a plain class, and one read from a file into an unquoted ``case`` pattern means the same in
every POSIX shell.
"""

from __future__ import annotations

_SPECIAL = frozenset("*?[\\\n\r")
_REGEX_META = frozenset(".^$*+?{}[]\\|()")
END = "\0"  # an end anchor while globs are being built
MAX_GLOBS = 4  # per rule; a rule that would need more is covered by "*"


def literal(text: str) -> str:
    """``text`` as a glob that covers it: characters ``case`` reads as special become ``?``."""
    return "".join("?" if c in _SPECIAL else c for c in text)


def covers(kind: str, arg: str) -> tuple[str, ...]:
    """Globs that together match every path the rule ``(kind, arg)`` matches (and perhaps more)."""
    a = literal(arg)
    if kind == "all":
        return ("*",)
    if kind in ("prefix", "child"):  # arg ends with "/"; child: only direct children (covered)
        return (a + "*",)
    if kind == "path":
        return (a, a + "/*")
    if kind == "seg":
        return (a, a + "/*", "*/" + a, "*/" + a + "/*")
    if kind == "dirseg":
        return (a + "/*", "*/" + a + "/*")
    if kind == "segsuffix":
        return ("*" + a, "*" + a + "/*")
    if kind == "regex":
        return _regex(arg) or ("*",)
    return ("*",)


def exact(kind: str, arg: str) -> bool:
    """Whether ``covers(kind, arg)`` matches exactly the paths the rule matches (no more)."""
    return kind in ("all", "prefix", "path", "seg", "dirseg", "segsuffix") and literal(arg) == arg


# Tokens pathspec writes (``GitIgnoreBasicPattern``), each with the glob alternatives covering it.
_GROUPS = (
    ("(?:.+/)?", ("", "?*/")),
    ("(?:/.+)?", ("*",)),
    ("(?:/|$)", (END, "/" + END + "*")),
    ("/?$", (END, "/" + END)),
    ("[^/]*", ("*",)),
    ("[^/]+", ("?*",)),
    ("[^/]", ("?",)),
    (".+", ("?*",)),
    (".*", ("*",)),
)


def _regex(rx: str) -> tuple[str, ...] | None:
    """Globs covering ``re.match(rx, path)`` for the regex shapes pathspec writes; None otherwise."""
    alternatives: list[str] = [""]
    i, n = 0, len(rx)
    if rx.startswith("^"):
        i = 1  # re.match anchors at the start anyway
    while i < n:
        options: tuple[str, ...] | None = None
        for token, globs in _GROUPS:
            if rx.startswith(token, i):
                options, i = globs, i + len(token)
                break
        if options is None:
            c = rx[i]
            if c == "\\":
                if i + 1 >= n or rx[i + 1].isalnum():
                    return None  # \d, \b, \1...: not a shape pathspec writes
                options, i = (literal(rx[i + 1]),), i + 2
            elif c == "[":
                end = _class_end(rx, i)
                if end is None:
                    return None
                options, i = (_class(rx[i + 1 : end - 1]),), end
            elif c == "$":
                options, i = (END,), i + 1
            elif c == ".":
                options, i = ("?",), i + 1
            elif c in _REGEX_META:
                return None
            else:
                options, i = (literal(c),), i + 1
            if i < n and rx[i] in "*+?{":
                return None  # a quantified atom: not a shape pathspec writes
        alternatives = [a + o for a in alternatives for o in options]
        if len(alternatives) > MAX_GLOBS:
            return None
    out: list[str] = []
    for alt in alternatives:
        if END in alt:
            head, _, tail = alt.partition(END)
            if tail.replace(END, "") not in ("", "*"):
                return None  # text after the end anchor: not a shape pathspec writes
            glob = head + tail.replace(END, "")
        else:
            glob = alt + "*"  # re.match: the rest of the path may follow
        if glob and glob not in out:
            out.append(glob)
    return tuple(out) or None


_CLASS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._")


def _class(body: str) -> str:
    """A regex character class (its text between the brackets) as a glob: the same class when it
    lists plain characters only (``[ch]``, ``[^a]`` as ``[!a]``), which every POSIX shell reads
    alike; else ``?`` (ranges, whose order the shell may take from the locale, and the rest)."""
    negated = body.startswith("^")
    chars = body[1:] if negated else body
    if chars and all(c in _CLASS_CHARS for c in chars):
        return "[" + ("!" if negated else "") + chars + "]"
    return "?"


def _class_end(rx: str, i: int) -> int | None:
    """The index just past the character class opening at ``rx[i]`` (Python's ``re`` syntax)."""
    j = i + 1
    if j < len(rx) and rx[j] == "^":
        j += 1
    if j < len(rx) and rx[j] == "]":
        j += 1  # a "]" first is literal
    while j < len(rx):
        if rx[j] == "\\":
            j += 2
            continue
        if rx[j] == "]":
            return j + 1
        j += 1
    return None
