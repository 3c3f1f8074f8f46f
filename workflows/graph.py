"""Dependency graph maths: cycle detection and the levelled plan (Kahn's algorithm). No Django import.

Both are iterative and O(V + E), so a definition at the task limit cannot exhaust the stack or the CPU.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence


def find_cycle(depends_on: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a list in execution order, first node repeated at the end (`a -> b -> c -> a`), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in depends_on:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        pending = [iter(depends_on[root])]
        while pending:
            dep = next((d for d in pending[-1] if d in depends_on and state.get(d) != 2), None)
            if dep is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                return list(reversed(cycle))
            else:
                state[dep] = 1
                path.append(dep)
                pending.append(iter(depends_on[dep]))
    return None


def plan_levels(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tasks grouped by the earliest round in which they can run; definition order within a level."""
    waiting = {task: len(set(deps)) for task, deps in depends_on.items()}
    dependents: dict[str, list[str]] = {}
    for task, deps in depends_on.items():
        for dep in set(deps):
            dependents.setdefault(dep, []).append(task)
    level_of = dict.fromkeys(depends_on, 0)
    ready = deque(task for task, count in waiting.items() if count == 0)
    placed = 0
    while ready:
        task = ready.popleft()
        placed += 1
        for dependent in dependents.get(task, ()):
            level_of[dependent] = max(level_of[dependent], level_of[task] + 1)
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    if placed != len(depends_on):
        raise ValueError("the graph has a cycle")
    levels: list[list[str]] = [[] for _ in range(max(level_of.values(), default=-1) + 1)]
    for task in depends_on:
        levels[level_of[task]].append(task)
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
