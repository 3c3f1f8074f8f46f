"""A definition's `triggers:` as typed, frozen specs, with every default said here. No Django import.

The parser (`workflows.definition`) turns each entry of `triggers:` into the spec class its `type` names and
`WorkflowSpec.triggers` holds them; the stored definition stays the JSON the user wrote. Each spec class
checks its own keys and reports problems by path (`triggers[0].respond_timeout: ...`).

Which `type`s exist is asked of a `TriggerCatalog`: the built-in spec classes below by default; the triggers
app installs its registry (`triggers.registry`, which also knows entry-point kinds) when Django starts.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from . import cron as cron_maths
from .kinds import TriggerKind
from .templating import syntax_errors
from .webhook_trigger import (
    DEFAULT_METHODS,
    DEFAULT_RESPOND_TIMEOUT,
    Respond,
    webhook_methods,
    webhook_trigger_problems,
)


class SpecChecker(Protocol):
    """What a spec class may ask of the definition checker (`workflows.definition._Checker`)."""

    def add(self, path: str, message: str) -> None: ...
    def number(self, data: Mapping, key: str, path: str, default: Any, *, minimum: float = 0,
               integer: bool = False) -> Any: ...
    def action(self, action: Any, path: str) -> bool: ...
    def inputs(self, action: str, inputs: Any, path: str) -> None: ...


@dataclass(frozen=True)
class TriggerSpec:
    """One entry of `triggers:`. A subclass names its `type` and keys and parses them in `parse`."""

    type: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = frozenset({"type"})

    @classmethod
    def parse(cls, raw: Mapping[str, Any], path: str, check: SpecChecker) -> TriggerSpec:
        """The spec for `raw` (unknown keys already reported); problems go to `check`, named by path."""
        return cls()


@dataclass(frozen=True)
class ManualTrigger(TriggerSpec):
    """Documents that the workflow is started by hand; runs start through the API, admin or CLI."""

    type: ClassVar[str] = TriggerKind.MANUAL.value


@dataclass(frozen=True)
class WebhookTrigger(TriggerSpec):
    """`/hooks/<token>` starts a run (SPEC §6, §9); the gateway reads the first webhook trigger."""

    type: ClassVar[str] = TriggerKind.WEBHOOK.value
    keys: ClassVar[frozenset[str]] = frozenset(
        {"type", "secret", "signature", "rate_limit", "methods", "respond", "respond_timeout"})

    methods: tuple[str, ...] = DEFAULT_METHODS
    secret: str | None = None  # a literal or exactly `{{ secrets.NAME }}`; None accepts unsigned deliveries
    signature: str = "generic"  # the signature preset (workflows.webhook_trigger.SIGNATURE_PRESETS)
    rate_limit: int | str | None = None  # as written: N per minute, or "N/s", "N/m", "N/h"; None: the default
    respond: Respond = Respond.IMMEDIATELY
    respond_timeout: float = DEFAULT_RESPOND_TIMEOUT  # seconds, with `respond: on_finish`

    @classmethod
    def parse(cls, raw: Mapping[str, Any], path: str, check: SpecChecker) -> WebhookTrigger:
        problems = webhook_trigger_problems(raw)
        for key, message in problems:
            check.add(f"{path}.{key}", message)
        if problems:
            return cls()
        return cls(methods=webhook_methods(raw.get("methods")), secret=raw.get("secret"),
                   signature=raw.get("signature", cls.signature), rate_limit=raw.get("rate_limit"),
                   respond=Respond(raw.get("respond", cls.respond)),
                   respond_timeout=float(raw.get("respond_timeout", cls.respond_timeout)))


@dataclass(frozen=True)
class CronTrigger(TriggerSpec):
    """Starts a run at each fire time of `cron` in `timezone` (DST policy of `workflows.cron`)."""

    type: ClassVar[str] = TriggerKind.CRON.value
    keys: ClassVar[frozenset[str]] = frozenset({"type", "cron", "timezone", "catchup", "max_catchup"})

    cron: str = ""
    timezone: str = "UTC"
    catchup: bool = False  # run the fire times missed while nothing fired (at most `max_catchup`), or only the last
    max_catchup: int = 1

    @property
    def catchup_limit(self) -> int:
        """How many due fire times one fire may run."""
        return self.max_catchup if self.catchup else 1

    @classmethod
    def parse(cls, raw: Mapping[str, Any], path: str, check: SpecChecker) -> CronTrigger:
        expression = raw.get("cron")
        if not isinstance(expression, str):
            check.add(f"{path}.cron", "required: a cron expression such as '0 9 * * 1-5'")
            expression = ""
        else:
            message = cron_maths.validate_cron(expression)
            if message:
                check.add(f"{path}.cron", message)
        zone = raw.get("timezone", cls.timezone)
        message = cron_maths.validate_timezone(zone)
        if message:
            check.add(f"{path}.timezone", message)
        max_catchup = check.number(raw, "max_catchup", path, cls.max_catchup, minimum=1, integer=True)
        return cls(cron=expression, timezone=zone if isinstance(zone, str) else cls.timezone,
                   catchup=bool(raw.get("catchup", cls.catchup)), max_catchup=max_catchup)


@dataclass(frozen=True)
class PollTrigger(TriggerSpec):
    """Runs `action` every `every` seconds and starts one run per item of `items` whose `key` is new."""

    type: ClassVar[str] = TriggerKind.POLL.value
    keys: ClassVar[frozenset[str]] = frozenset({"type", "every", "action", "inputs", "items", "key", "timeout"})
    DEFAULT_ITEMS: ClassVar[str] = "{{ output.json }}"

    action: str = ""
    inputs: dict = field(default_factory=dict)
    every: float = 300  # seconds between polls
    items: Any = None  # as written; None: DEFAULT_ITEMS (the whole JSON output)
    key: Any = None  # as written; None: a hash of the item
    timeout: float = 30.0  # seconds the poll action may take

    @property
    def items_template(self) -> Any:
        return self.DEFAULT_ITEMS if self.items is None else self.items

    @classmethod
    def parse(cls, raw: Mapping[str, Any], path: str, check: SpecChecker) -> PollTrigger:
        every = check.number(raw, "every", path, cls.every, minimum=1)
        timeout = check.number(raw, "timeout", path, cls.timeout, minimum=0.001)
        action = raw.get("action")
        inputs = raw.get("inputs", {})
        if check.action(action, f"{path}.action"):
            check.inputs(action, inputs, f"{path}.inputs")
        for key in ("items", "key"):
            if key in raw:
                for sub, message in syntax_errors(raw[key], f"{path}.{key}"):
                    check.add(sub, message)
        return cls(action=action if isinstance(action, str) else "", inputs=dict(inputs) if isinstance(
            inputs, dict) else {}, every=every, items=raw.get("items"), key=raw.get("key"), timeout=float(timeout))


BUILTIN_TRIGGER_SPECS: dict[str, type[TriggerSpec]] = {
    spec.type: spec for spec in (WebhookTrigger, CronTrigger, PollTrigger, ManualTrigger)}


class TriggerCatalog(Protocol):
    def spec_class(self, kind: str) -> type[TriggerSpec] | None: ...
    def kinds(self) -> list[str]: ...


class BuiltinTriggers:
    """The catalog of the built-in trigger types, for the parser outside Django (and before the app is ready)."""

    def spec_class(self, kind: str) -> type[TriggerSpec] | None:
        return BUILTIN_TRIGGER_SPECS.get(kind)

    def kinds(self) -> list[str]:
        return list(BUILTIN_TRIGGER_SPECS)


_catalog: TriggerCatalog = BuiltinTriggers()


def install_trigger_catalog(catalog: TriggerCatalog) -> None:
    """Called once by `TriggersConfig.ready()`: the parser then knows every registered trigger type."""
    global _catalog
    _catalog = catalog


def trigger_catalog() -> TriggerCatalog:
    return _catalog


def parse_triggers(raw: Any, check: SpecChecker, unknown_keys, catalog: TriggerCatalog | None = None
                   ) -> list[TriggerSpec]:
    """`triggers:` → specs; `unknown_keys(data, allowed, path)` reports keys a spec class does not take."""
    catalog = catalog or _catalog
    if not isinstance(raw, list):
        check.add("triggers", "must be a list of triggers")
        return []
    specs = []
    for index, trigger in enumerate(raw):
        path = f"triggers[{index}]"
        if not isinstance(trigger, dict):
            check.add(path, "must be a mapping with `type`")
            continue
        kind = trigger.get("type")
        spec_class = catalog.spec_class(kind) if isinstance(kind, str) else None
        if spec_class is None:
            check.add(f"{path}.type", f"{kind!r} is not one of " + ", ".join(catalog.kinds()))
            continue
        unknown_keys(trigger, set(spec_class.keys), path)
        specs.append(spec_class.parse(trigger, path, check))
    return specs


def triggers_of_type(triggers: Iterable[TriggerSpec], spec_class: type[TriggerSpec]) -> list[TriggerSpec]:
    return [trigger for trigger in triggers if isinstance(trigger, spec_class)]
