"""Dependency graph maths: cycle detection and the levelled plan (Kahn's algorithm). No Django import."""
from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(depends_on: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a list in execution order, first node repeated at the end (`a -> b -> c -> a`), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in depends_on.get(node, ()):
            if dep not in depends_on:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                return list(reversed(cycle))
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in depends_on:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def plan_levels(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tasks grouped by the earliest round in which they can run; definition order within a level."""
    order = list(depends_on)
    remaining = {task: set(deps) for task, deps in depends_on.items()}
    levels: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        level = [task for task in order if task in remaining and remaining[task] <= done]
        if not level:
            raise ValueError("the graph has a cycle")
        levels.append(level)
        done.update(level)
        for task in level:
            del remaining[task]
    return levels


def format_plan(levels: list[list[str]]) -> str:
    return " -> ".join(level[0] if len(level) == 1 else "[" + ", ".join(level) + "]" for level in levels)


def downstream_of(depends_on: Mapping[str, Sequence[str]], roots: set[str]) -> set[str]:
    """`roots` and every task that depends on them, directly or not."""
    dependents: dict[str, set[str]] = {task: set() for task in depends_on}
    for task, deps in depends_on.items():
        for dep in deps:
            dependents.setdefault(dep, set()).add(task)
    result, stack = set(), list(roots)
    while stack:
        task = stack.pop()
        if task in result:
            continue
        result.add(task)
        stack.extend(dependents.get(task, ()))
    return result
