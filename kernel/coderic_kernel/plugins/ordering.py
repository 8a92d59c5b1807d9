"""Order plugins so that each comes after the plugins it requires."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import PluginError


def dependency_order(requires: Mapping[str, Sequence[str]]) -> list[str]:
    """A stable topological order (alphabetical among peers); a cycle is an error naming it."""
    order: list[str] = []
    state: dict[str, str] = {}  # "visiting" or "done"
    path: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise PluginError(name, "resolve", "dependency cycle: " + " -> ".join(f"'{p}'" for p in cycle))
        state[name] = "visiting"
        path.append(name)
        for dependency in sorted(requires.get(name, ())):
            visit(dependency)
        path.pop()
        state[name] = "done"
        order.append(name)

    for name in sorted(requires):
        visit(name)
    return order
