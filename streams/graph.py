"""The dependency graph of the streams: cycles and dependency order. Plain values in, plain values out.

``streams.config`` uses ``find_cycle`` to refuse a cyclic configuration; sync (and later plan, run
and merge) use ``dependency_order``, and sync ``waits_for`` (a halted stream stops its dependents).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence


def find_cycle(depends: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A dependency cycle as a list of names ending where it starts, or None.

    ``depends`` maps each name to the names it depends on; names it does not map are ignored.
    """
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in depends[n]:
            if d not in depends:
                continue
            if state.get(d) == 1:
                return [*stack[stack.index(d) :], d]
            if d not in state and (found := visit(d)) is not None:
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in depends:
        if n not in state and (found := visit(n)) is not None:
            return found
    return None


def dependency_order(names: Sequence[str], depends: Mapping[str, Iterable[str]]) -> list[str]:
    """``names`` with each one after the names among them it depends on (given order otherwise)."""
    selected = set(names)
    order: list[str] = []
    seen: set[str] = set()

    def visit(n: str) -> None:
        if n in seen:
            return
        seen.add(n)
        for dep in depends.get(n, ()):
            if dep in selected:
                visit(dep)
        order.append(n)

    for n in names:
        visit(n)
    return order


def waits_for(name: str, depends: Mapping[str, Iterable[str]], stopped: Collection[str]) -> str | None:
    """The first of ``stopped`` that ``name`` depends on, directly or through other names (any name
    ``depends`` maps, selected or not), or None. ``name`` itself does not count."""
    seen = {name}
    todo = list(depends.get(name, ()))
    while todo:
        n = todo.pop(0)
        if n in seen:
            continue
        seen.add(n)
        if n in stopped:
            return n
        todo.extend(depends.get(n, ()))
    return None


def levels(depends: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Each name's level: 0 with no dependency among ``depends``' names, else one more than the
    highest level it depends on (the longest dependency chain below it). Names of one level can
    run side by side: the waves ``streams plan`` starts from. ``depends`` must have no cycle."""
    level: dict[str, int] = {}

    def visit(n: str) -> int:
        if n not in level:
            level[n] = 1 + max((visit(d) for d in depends[n] if d in depends), default=-1)
        return level[n]

    for n in depends:
        visit(n)
    return level
