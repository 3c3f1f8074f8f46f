"""The one registry of actions: built-ins listed here, third-party ones from the `flowforge.actions` entry point.

A third-party package declares, in its pyproject.toml:

    [project.entry-points."flowforge.actions"]
    "acme.ping" = "acme_actions:Ping"

and the action named `acme.ping` becomes usable in definitions and listed by `GET /api/actions/`.
Classes are imported lazily, on first use.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points

from .base import Action

ENTRY_POINT_GROUP = "flowforge.actions"

BUILTIN_ACTIONS: dict[str, str] = {
    "shell.run": "connectors.shell.actions:ShellRun",
    "transform.jinja": "connectors.transform.actions:TransformJinja",
    "http.request": "connectors.http.actions:HttpRequest",
    "file.write": "connectors.files.actions:FileWrite",
    "file.read": "connectors.files.actions:FileRead",
    "email.send": "connectors.email.actions:EmailSend",
    "github.create_issue": "connectors.github.actions:CreateIssue",
    "github.add_comment": "connectors.github.actions:AddComment",
    "github.star_repo": "connectors.github.actions:StarRepo",
    "slack.post_message": "connectors.slack.actions:PostMessage",
    "sql.query": "connectors.sql.actions:SqlQuery",
    "webhook.send": "connectors.webhook.actions:WebhookSend",
    "flow.wait": "connectors.flow.actions:FlowWait",
    "flow.approval": "connectors.flow.actions:FlowApproval",
    "flow.run_workflow": "connectors.flow.actions:FlowRunWorkflow",
    "flow.respond": "connectors.flow.actions:FlowRespond",
}


class UnknownAction(LookupError):
    pass


def _import(dotted: str) -> type[Action]:
    module_name, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class ActionRegistry:
    def __init__(self, paths: dict[str, str] | None = None, *, use_entry_points: bool = True):
        self._paths = dict(BUILTIN_ACTIONS if paths is None else paths)
        if use_entry_points:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                self._paths.setdefault(ep.name, ep.value)
        self._classes: dict[str, type[Action]] = {}

    def names(self) -> list[str]:
        return sorted(self._paths)

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def get_class(self, name: str) -> type[Action]:
        if name not in self._paths:
            raise UnknownAction(name)
        if name not in self._classes:
            self._classes[name] = _import(self._paths[name])
        return self._classes[name]

    def create(self, name: str) -> Action:
        return self.get_class(name)()

    def input_schema(self, name: str) -> dict:
        return self.get_class(name).input_schema

    def describe_all(self) -> list[dict]:
        return [self.get_class(name).describe() for name in self.names()]


@lru_cache(maxsize=1)
def default_registry() -> ActionRegistry:
    return ActionRegistry()
