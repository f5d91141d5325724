"""The house's floors (DESIGN "Layout and layers"): every import points down.

- ``streams.kernel.*`` imports only the standard library and ``streams.kernel``;
- a core module (``streams.*`` outside ``kernel``, ``cli`` and the hook face) never imports
  ``coordinator`` or ``streams.cli``;
- ``coordinator`` never imports ``streams.cli``;
- no import cycle among the project's modules.

Imports are read from the source with ``ast``, function-level ones and ``TYPE_CHECKING`` ones
included. Also: every error ``code`` in the tree is in the registry, and every hook template is
rendered with no placeholder left.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from streams import hooks_install
from streams.kernel.errors import CODES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("streams", "coordinator")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(path: Path, name: str) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every import in ``path``, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            # `from streams import git` imports the module streams.git
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names if f"{mod}.{a.name}" in modules()]
    return found


def ours(mod: str) -> bool:
    return mod.split(".")[0] in PACKAGES


# The one exception, documented in its module: where fcntl does not exist (not POSIX), the short
# kernel lock falls back to filelock. On POSIX (and so in every hook) it is never imported.
KERNEL_OFF_POSIX = {("streams.kernel.mutex", "filelock")}


def floor_problems(name: str, imported: str) -> str | None:
    """Why ``name`` may not import ``imported``, or None."""
    top = imported.split(".")[0]
    if (name, imported) in KERNEL_OFF_POSIX:
        return None
    if name.startswith("streams.kernel"):
        if ours(imported) and not (imported == "streams.kernel" or imported.startswith("streams.kernel.")):
            return "streams.kernel imports only the standard library and streams.kernel"
        if not ours(imported) and top not in sys.stdlib_module_names and top != "__future__":
            return "streams.kernel imports only the standard library"
        return None
    if name.startswith("coordinator"):
        if imported.startswith("streams.cli"):
            return "coordinator never imports streams.cli"
        return None
    if name.startswith("streams.cli") or name in ("streams.__main__",):
        return None
    if name == "streams.hook":  # a face, but one the git hooks start: the kernel only at module level
        return None
    if imported.startswith(("coordinator", "streams.cli")):
        return "a core module never imports coordinator or streams.cli"
    return None


def test_every_import_points_down_a_floor() -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {name} imports {imported}: {why}"
        for name, path in modules().items()
        for line, imported in imports_of(path, name)
        if (why := floor_problems(name, imported)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_the_hook_face_imports_only_the_kernel_at_module_level() -> None:
    path = ROOT / "streams" / "hook.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    mods = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    mods += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    bad = [m for m in mods if ours(m) and not m.startswith(("streams.kernel", "streams.hookio"))]
    assert not bad, bad
    io = ast.parse((ROOT / "streams" / "hookio.py").read_text(encoding="utf-8"))
    io_mods = [n.module or "" for n in io.body if isinstance(n, ast.ImportFrom)]
    assert not [m for m in io_mods if ours(m) and not m.startswith("streams.kernel")]


def test_no_import_cycle() -> None:
    mods = modules()
    graph = {name: {m for _, m in imports_of(path, name) if m in mods and m != name} for name, path in mods.items()}
    # a package's __init__ importing its own submodules is not a cycle between floors
    graph = {
        n: {m for m in deps if not n.startswith(m + ".") and not m.startswith(n + ".")} for n, deps in graph.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                cycles.append([*stack[stack.index(d) :], d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_floor_rules_catch_an_upward_import() -> None:
    # the checker itself must be able to fail
    assert floor_problems("streams.kernel.paths", "streams.config") is not None
    assert floor_problems("streams.kernel.paths", "yaml") is not None
    assert floor_problems("streams.kernel.paths", "filelock") is not None
    assert floor_problems("streams.status", "coordinator.sync") is not None
    assert floor_problems("streams.status", "streams.cli.base") is not None
    assert floor_problems("coordinator.sync", "streams.cli.base") is not None
    assert floor_problems("streams.kernel.paths", "os") is None
    assert floor_problems("coordinator.sync", "streams.git") is None


CODE_RE = re.compile(r"""\bcode\s*=\s*["']([a-z_]+)["']""")


def test_every_error_code_is_in_the_registry() -> None:
    used: dict[str, str] = {}
    for path in modules().values():
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for code in CODE_RE.findall(line):
                used.setdefault(code, f"{path.relative_to(ROOT)}:{i}")
    assert used, "the scan found no code= at all"
    missing = {c: where for c, where in used.items() if c not in CODES}
    assert not missing, missing


@pytest.mark.parametrize("hook", hooks_install.HOOK_NAMES)
def test_hook_templates_have_every_name_substituted(hook: str) -> None:
    text = hooks_install.render(hook, "/usr/bin/python3")
    assert not re.findall(r"@[A-Z_]+@", text)
