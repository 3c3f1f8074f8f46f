"""The action plug-in contract. Plain Python: no Django import, so the engine and the CLI can use it anywhere."""
from __future__ import annotations

from dataclasses import dataclass, field
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


class Action:
    """Subclass, set the class attributes, implement `execute`, and register the class (see registry.py)."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    input_schema: ClassVar[dict] = {"type": "object", "properties": {}, "additionalProperties": False}
    output_schema: ClassVar[dict] = {"type": "object"}
    # Inputs a shell interprets: every `{{ value }}` rendered into them is shell-quoted.
    shell_quoted_inputs: ClassVar[tuple[str, ...]] = ()

    def execute(self, inputs: dict, context: ActionContext) -> dict:
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
