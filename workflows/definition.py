"""Workflow definitions: parse (YAML or JSON) → validate → normalise to one DAG (`WorkflowSpec`). No Django import.

Validation collects every problem, each naming its path (`tasks.task_B.depends_on: unknown task 'task_Z'`).
"""
from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import jsonschema
import yaml

from .graph import find_cycle, plan_levels
from .kinds import TriggerRule
from .limits import MAX_DEFINITION_BYTES, MAX_DEPTH, MAX_TASKS, LimitExceeded, check_depth, json_size
from .templating import has_template, syntax_errors, template_variables
from .trigger_specs import TriggerCatalog, TriggerSpec, parse_triggers

TASK_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TRIGGER_RULES = tuple(rule.value for rule in TriggerRule)
WORKFLOW_KEYS = {"name", "description", "steps", "tasks", "triggers", "concurrency", "enabled", "on_failure"}
TASK_KEYS = {
    "name", "description", "run", "action", "inputs", "depends_on", "retries", "retry_delay", "timeout", "when",
    "trigger_rule", "queue", "for_each", "max_parallel",
}
DEFAULT_MAX_PARALLEL = 10
ITEM_VARIABLES = ("item", "index")  # what a for_each task's templates read besides the run context


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict:
        return {"path": self.path, "message": self.message}


class InvalidDefinition(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ActionCatalog(Protocol):
    def __contains__(self, name: object) -> bool: ...
    def input_schema(self, name: str) -> dict: ...
    def names(self) -> list[str]: ...


@dataclass(frozen=True)
class TaskSpec:
    id: str
    action: str
    inputs: dict = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float = 300.0
    when: str | None = None
    trigger_rule: str = TriggerRule.ALL_SUCCESS.value
    queue: str = "default"
    name: str | None = None
    for_each: str | None = None  # a template yielding the list whose items the task runs once each (SPEC §9)
    max_parallel: int = DEFAULT_MAX_PARALLEL  # most items of this task running at once


@dataclass(frozen=True)
class WorkflowSpec:
    name: str
    tasks: dict[str, TaskSpec]
    triggers: list[TriggerSpec] = field(default_factory=list)  # typed specs (workflows.trigger_specs)
    concurrency: int | None = None
    enabled: bool = True
    on_failure: str | None = None  # the name of the workflow started when a run of this one fails

    @property
    def depends_on(self) -> dict[str, tuple[str, ...]]:
        return {task_id: task.depends_on for task_id, task in self.tasks.items()}

    @cached_property
    def downstream(self) -> dict[str, tuple[str, ...]]:
        """Each task's direct dependents, in definition order; computed once, as a spec never changes."""
        dependents: dict[str, list[str]] = {}
        for task_id, task in self.tasks.items():
            for dep in dict.fromkeys(task.depends_on):
                dependents.setdefault(dep, []).append(task_id)
        return {task_id: tuple(tasks) for task_id, tasks in dependents.items()}

    @cached_property
    def task_ids_by_action(self) -> dict[str, tuple[str, ...]]:
        """The ids of the tasks of each action, in definition order; computed once."""
        by_action: dict[str, list[str]] = {}
        for task_id, task in self.tasks.items():
            by_action.setdefault(task.action, []).append(task_id)
        return {action: tuple(task_ids) for action, task_ids in by_action.items()}

    def levels(self) -> list[list[str]]:
        return plan_levels(self.depends_on)


# --- parsing -----------------------------------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """safe_load that refuses alias bombs (billion laughs) and deep nesting while composing, before any object
    is built. Every node adds its approximate JSON size and an alias adds the size of the node it repeats, so
    the expanded document is bounded by MAX_DEFINITION_BYTES however few aliases carry it."""

    def __init__(self, stream):
        super().__init__(stream)
        self._expanded = 0
        self._depth = 0
        self._anchored_sizes: dict[int, int] = {}  # id(anchored node) -> its expanded size, once composed

    def _grow(self, size: int, mark) -> None:
        self._expanded += size
        if self._expanded > MAX_DEFINITION_BYTES:
            raise yaml.composer.ComposerError(
                None, None, f"too many aliases: they expand the definition past {MAX_DEFINITION_BYTES:,} bytes",
                mark)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                size = self._anchored_sizes.get(id(node))
                if size is None:
                    raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it",
                                                      event.start_mark)
                self._grow(size, event.start_mark)
            return super().compose_node(parent, index)
        container = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if container:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  event.start_mark)
        before = self._expanded
        node = super().compose_node(parent, index)
        self._depth -= container
        self._grow(2 if container else len(node.value) + 3, event.start_mark)
        if event.anchor is not None:
            self._anchored_sizes[id(node)] = self._expanded - before
        return node


def _problem(exc: LimitExceeded) -> InvalidDefinition:
    return InvalidDefinition([Problem(exc.path, exc.message)])


def _too_large(size: int) -> InvalidDefinition:
    return InvalidDefinition([Problem("", f"the definition is larger than {MAX_DEFINITION_BYTES:,} bytes "
                                          f"({MAX_DEFINITION_BYTES // 1024} KiB)")])


def parse_source(source: str | bytes | Mapping) -> dict:
    """Text (YAML or JSON) or an already-parsed mapping → dict; errors carry line and column.

    Bounded before anything else: at most MAX_DEFINITION_BYTES (the text, or a mapping's JSON size, aliases
    expanded) and MAX_DEPTH levels of nesting.
    """
    if isinstance(source, Mapping):
        size = json_size(source, stop_after=MAX_DEFINITION_BYTES)
        if size > MAX_DEFINITION_BYTES:
            raise _too_large(size)
        data = dict(source)
    else:
        data = _parse_text(source)
    try:
        check_depth(data)
    except LimitExceeded as exc:
        raise _problem(exc) from None
    return data


def _parse_text(source: str | bytes) -> dict:
    if len(source) > MAX_DEFINITION_BYTES or (
            isinstance(source, str) and len(source.encode("utf-8", "surrogatepass")) > MAX_DEFINITION_BYTES):
        raise _too_large(len(source))
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidDefinition([Problem("", "the definition is not UTF-8 text")]) from None
    stripped = source.lstrip()
    try:
        if stripped.startswith("{"):
            data = json.loads(source)
        else:
            data = yaml.load(source, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except json.JSONDecodeError as exc:
        raise InvalidDefinition([Problem("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")])
    except RecursionError:
        raise InvalidDefinition([Problem("", f"nested more than {MAX_DEPTH} levels deep")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidDefinition([Problem("", f"invalid YAML{where}: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidDefinition([Problem("", f"invalid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise InvalidDefinition([Problem("", "a workflow definition must be a mapping with `name` and `tasks`")])
    return data


def slugify(name: str) -> str:
    """Step name → task id, the same way the builder does: `Say Hello!` → `say_hello`, `1st` → `_1st`."""
    slug = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "step"
    return f"_{slug}" if slug[0].isdigit() else slug


# --- validation + normalisation ------------------------------------------------------------------------------


class _Checker:
    def __init__(self, actions: ActionCatalog):
        self.actions = actions
        self.problems: list[Problem] = []
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def unknown_keys(self, data: Mapping, allowed: set[str], path: str) -> None:
        for key in data:
            if key not in allowed:
                self.add(f"{path}.{key}" if path else str(key), f"unknown key '{key}'{did_you_mean(key, allowed)}")

    def number(self, data: Mapping, key: str, path: str, default, *, minimum=0, integer=False):
        value = data.get(key, default)
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
            what = "an integer" if integer else "a number"
            self.add(f"{path}.{key}", f"must be {what} >= {minimum}, got {value!r}")
            return default
        return value

    def action(self, action: Any, path: str) -> bool:
        """Whether `action` names a known action; reports it at `path` when not."""
        if action in self.actions:
            return True
        self.add(path, f"unknown action '{action}'{did_you_mean(action, self.actions.names())}")
        return False

    def inputs(self, action: str, inputs: Any, path: str) -> None:
        if not isinstance(inputs, dict):
            self.add(path, "must be a mapping of input names to values")
            return
        for sub, message in syntax_errors(inputs, path):
            self.add(sub, message)
        if action not in self.actions:
            return
        validator = self._validators.get(action)
        if validator is None:
            validator = self._validators[action] = jsonschema.Draft202012Validator(self.actions.input_schema(action))
        for error in validator.iter_errors(inputs):
            if _is_templated(inputs, list(error.absolute_path)):
                continue
            where = ".".join([path, *(str(p) for p in error.absolute_path)])
            self.add(where, schema_error_message(error))


def did_you_mean(word: object, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest known name, or nothing when no name is close."""
    close = difflib.get_close_matches(str(word), sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _is_templated(inputs: Any, error_path: list) -> bool:
    """A schema error about a value that is (or sits inside) a template is for run time, not save time."""
    node = inputs
    for part in error_path:
        if has_template(node):
            return True
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return has_template(node)


def schema_error_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "enum":
        return f"{error.instance!r} is not one of " + ", ".join(str(v) for v in error.validator_value)
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        hints = "".join(did_you_mean(name, known) for name in error.instance if name not in known)
        return error.message.replace("Additional properties are not allowed", "unknown input") + hints
    return error.message


def compile_definition(source: str | bytes | Mapping, actions: ActionCatalog,
                       triggers: TriggerCatalog | None = None) -> WorkflowSpec:
    """Parse, validate and normalise a definition; raises InvalidDefinition listing every problem.

    `triggers` knows the trigger types (default: the installed catalog, see `workflows.trigger_specs`).
    """
    data = parse_source(source)
    check = _Checker(actions)
    check.unknown_keys(data, WORKFLOW_KEYS, "")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        check.add("name", "required: a non-empty string")
        name = ""
    raw_tasks = _collect_tasks(data, check)
    tasks = {task_id: _task(task_id, raw, path, check) for task_id, (raw, path) in raw_tasks.items()}
    paths = {task_id: path for task_id, (_, path) in raw_tasks.items()}
    for task_id, task in tasks.items():
        for dep in task.depends_on:
            if dep not in tasks:
                check.add(f"{paths[task_id]}.depends_on", f"unknown task '{dep}'")
    if not any(p.path.endswith(".depends_on") for p in check.problems):
        cycle = find_cycle({t: task.depends_on for t, task in tasks.items()})
        if cycle:
            check.add(f"{paths[cycle[0]]}.depends_on", "dependency cycle: " + " -> ".join(cycle))
    trigger_specs = parse_triggers(data.get("triggers", []), check, check.unknown_keys, triggers)
    concurrency = data.get("concurrency")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1):
        check.add("concurrency", f"must be an integer >= 1, got {concurrency!r}")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        check.add("enabled", f"must be true or false, got {enabled!r}")
    on_failure = data.get("on_failure")
    if on_failure is not None and (not isinstance(on_failure, str) or not on_failure.strip()):
        check.add("on_failure", f"must be the name of a workflow, got {on_failure!r}")
        on_failure = None
    if check.problems:
        raise InvalidDefinition(check.problems)
    return WorkflowSpec(name=name, tasks=tasks, triggers=trigger_specs, concurrency=concurrency, enabled=enabled,
                        on_failure=on_failure)


def _collect_tasks(data: Mapping, check: _Checker) -> dict[str, tuple[dict, str]]:
    """Both task shapes as {id: (raw task, source path)}; `steps` chain each step to the one before."""
    if "steps" in data and "tasks" in data:
        check.add("steps", "use either `steps` or `tasks`, not both")
    if "steps" in data:
        steps = data["steps"]
        if not isinstance(steps, list) or not steps:
            check.add("steps", "must be a non-empty list of steps")
            return {}
        if len(steps) > MAX_TASKS:
            check.add("steps", f"at most {MAX_TASKS:,} tasks per workflow, got {len(steps):,} steps")
            return {}
        collected: dict[str, tuple[dict, str]] = {}
        previous = None
        for index, step in enumerate(steps):
            path = f"steps[{index}]"
            if not isinstance(step, dict):
                check.add(path, "must be a mapping")
                continue
            if "depends_on" in step:
                check.add(f"{path}.depends_on", "steps run in order; use `tasks` for explicit dependencies")
            label = step.get("name")
            if not isinstance(label, str) or not label.strip():
                check.add(f"{path}.name", "required: every step needs a name")
                label = f"step {index + 1}"
            task_id = slugify(label)
            if task_id in collected:
                check.add(f"{path}.name", f"'{label}' gives the id '{task_id}' already used by another step")
                continue
            raw = {k: v for k, v in step.items() if k != "depends_on"}
            raw["depends_on"] = [previous] if previous else []
            collected[task_id] = (raw, path)
            previous = task_id
        return collected
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        check.add("tasks", "required: a workflow needs at least one task (`tasks:` mapping or `steps:` list)")
        return {}
    if len(tasks) > MAX_TASKS:
        check.add("tasks", f"at most {MAX_TASKS:,} tasks per workflow, got {len(tasks):,}")
        return {}
    collected = {}
    for task_id, raw in tasks.items():
        path = f"tasks.{task_id}"
        if not isinstance(task_id, str) or not TASK_ID.match(task_id):
            check.add(path, "task ids must match [A-Za-z_][A-Za-z0-9_]*")
            continue
        if not isinstance(raw, dict):
            check.add(path, "must be a mapping with `action` or `run`")
            continue
        collected[task_id] = (raw, path)
    return collected


def _task(task_id: str, raw: dict, path: str, check: _Checker) -> TaskSpec:
    check.unknown_keys(raw, TASK_KEYS, path)
    if "run" in raw:
        if "action" in raw or "inputs" in raw:
            check.add(f"{path}.run", "`run` is shorthand for shell.run: do not combine it with `action`/`inputs`")
        if not isinstance(raw["run"], str) or not raw["run"].strip():
            check.add(f"{path}.run", "must be a non-empty command string")
        action, inputs = "shell.run", {"command": raw["run"]}
        inputs_path = f"{path}.run"
    else:
        action = raw.get("action")
        inputs = raw.get("inputs", {})
        inputs_path = f"{path}.inputs"
        if not isinstance(action, str) or not action:
            check.add(f"{path}.action", "required: an action name (or `run:` for a shell command)")
            action = ""
        elif action not in check.actions:
            check.add(f"{path}.action", f"unknown action '{action}'{did_you_mean(action, check.actions.names())}")
    if action:
        if "run" in raw:
            for sub, message in syntax_errors(inputs["command"], inputs_path):
                check.add(sub, message)
        else:
            check.inputs(action, inputs, inputs_path)
    depends_on = raw.get("depends_on", [])
    if isinstance(depends_on, str):
        depends_on = [depends_on]
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        check.add(f"{path}.depends_on", "must be a list of task ids")
        depends_on = []
    if task_id in depends_on:
        check.add(f"{path}.depends_on", f"dependency cycle: {task_id} -> {task_id}")
        depends_on = [d for d in depends_on if d != task_id]
    rule = raw.get("trigger_rule", TriggerRule.ALL_SUCCESS.value)
    if rule not in TRIGGER_RULES:
        check.add(f"{path}.trigger_rule", f"{rule!r} is not one of " + ", ".join(TRIGGER_RULES))
        rule = TriggerRule.ALL_SUCCESS.value
    when = raw.get("when")
    if when is not None:
        if not isinstance(when, (str, bool)):
            check.add(f"{path}.when", "must be a template string")
        else:
            when = str(when) if isinstance(when, str) else ("true" if when else "false")
            for sub, message in syntax_errors(when, f"{path}.when"):
                check.add(sub, message)
    queue = raw.get("queue", "default")
    if not isinstance(queue, str) or not re.match(r"^[A-Za-z0-9_.:-]+$", queue):
        check.add(f"{path}.queue", "must be a queue name of letters, digits, '_', '-', '.' or ':'")
        queue = "default"
    for_each = _for_each(raw, path, check)
    _item_references(raw, path, for_each is not None, check)
    return TaskSpec(
        id=task_id,
        action=action,
        inputs=inputs if isinstance(inputs, dict) else {},
        depends_on=tuple(dict.fromkeys(depends_on)),
        retries=check.number(raw, "retries", path, 0, integer=True),
        retry_delay=check.number(raw, "retry_delay", path, 1),
        timeout=check.number(raw, "timeout", path, 300, minimum=0.001),
        when=when,
        trigger_rule=rule,
        queue=queue,
        name=raw.get("name"),
        for_each=for_each,
        max_parallel=check.number(raw, "max_parallel", path, DEFAULT_MAX_PARALLEL, minimum=1, integer=True),
    )


def _for_each(raw: dict, path: str, check: _Checker) -> str | None:
    if "for_each" not in raw:
        if "max_parallel" in raw:
            check.add(f"{path}.max_parallel", "only applies to a task with `for_each`")
        return None
    expression = raw["for_each"]
    if not isinstance(expression, str) or not has_template(expression):
        check.add(f"{path}.for_each", "must be a template string yielding a list, e.g. "
                                      "\"{{ steps.fetch.output.json.items }}\"")
        return None
    for sub, message in syntax_errors(expression, f"{path}.for_each"):
        check.add(sub, message)
    for name in ITEM_VARIABLES:
        if name in template_variables(expression):
            check.add(f"{path}.for_each", f"`{name}` is not defined yet: the list is computed before any item")
    return expression


def _mentions(value: Any, names: tuple[str, ...]) -> bool:
    """Whether a string inside `value` contains one of `names` at all."""
    if isinstance(value, str):
        return any(name in value for name in names)
    if isinstance(value, dict):
        return any(_mentions(v, names) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, names) for v in value)
    return False


def _item_references(raw: dict, path: str, has_for_each: bool, check: _Checker) -> None:
    """`item` and `index` exist only in the templates of a task with `for_each`."""
    if has_for_each or "for_each" in raw:
        return
    places = [("run", raw.get("run")), ("when", raw.get("when")), ("inputs", raw.get("inputs"))]
    for key, value in places:
        if not _mentions(value, ITEM_VARIABLES):
            continue  # parsing templates is the costliest part of compiling; most never spell these names
        if isinstance(value, dict):
            found = [(f"{path}.{key}.{k}", template_variables(v)) for k, v in value.items()]
        else:
            found = [(f"{path}.{key}", template_variables(value))]
        for where, names in found:
            for name in ITEM_VARIABLES:
                if name in names:
                    check.add(where, f"`{name}` is only available in a task with `for_each`")
