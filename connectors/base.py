"""The action plug-in contract. Plain Python: no Django import, so the engine and the CLI can use it anywhere."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable, ClassVar


class ActionError(Exception):
    """The action ran and failed.

    `retryable` says whether another attempt could succeed (a 503 could, a 404 could not); `output` keeps what the
    action produced before failing (e.g. a shell command's stdout and exit code) so the operator sees it.
    """

    def __init__(self, message: str, *, retryable: bool = True, output: dict | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.output = output or {}


class PauseReason(str, Enum):
    """What a paused (`waiting`) task waits for (SPEC §9)."""

    TIME = "time"  # flow.wait: carries on at `Pause.until`
    APPROVAL = "approval"  # flow.approval: a reply to its resume URL, or failure at `Pause.until` (the timeout)
    CHILD_RUN = "child_run"  # flow.run_workflow: the child run named in `Pause.details` to end

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Pause:
    """What an action's `execute` returns to pause its task instead of finishing it.

    The task run becomes `waiting` and holds no worker; the platform stores `until` in the database and resumes
    the task (the recovery sweep wakes anything overdue). `details` says what the platform needs to act (e.g. the
    child workflow's name and payload) and is shown as the task's output while it waits.
    """

    reason: PauseReason
    until: datetime | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ActionConfig:
    """Operator policy the actions obey; built from Django settings by the platform, or directly in tests."""

    files_root: Path = Path("files")
    allow_shell: bool = True
    http_allow_private: bool = False
    # CIDRs (strings or ipaddress networks) exempt from the private-address guard: AUTOMATION_HTTP_ALLOWED_NETWORKS.
    http_allowed_networks: tuple = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionContext:
    run_id: Any
    task_id: str
    attempt: int = 1
    timeout: float = 300.0
    config: ActionConfig = field(default_factory=ActionConfig)
    workflow: str = ""
    owner_id: Any = None
    log: Callable[[str], None] = lambda line: None
    # The same for every attempt of this task run (SPEC §10): send it where the target de-duplicates on it.
    idempotency_key: str = ""
    item_index: int | None = None  # the item's position in a for_each task, else None


class Action:
    """Subclass, set the class attributes, implement `execute`, and register the class (see registry.py)."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    input_schema: ClassVar[dict] = {"type": "object", "properties": {}, "additionalProperties": False}
    output_schema: ClassVar[dict] = {"type": "object"}
    # Inputs a shell interprets: every `{{ value }}` rendered into them is shell-quoted.
    shell_quoted_inputs: ClassVar[tuple[str, ...]] = ()

    def execute(self, inputs: dict, context: ActionContext) -> dict | Pause:
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict:
        return {
            "name": cls.name,
            "family": cls.name.split(".", 1)[0],
            "title": cls.title or cls.name,
            "description": cls.description,
            "input_schema": cls.input_schema,
            "output_schema": cls.output_schema,
        }
