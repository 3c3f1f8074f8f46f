"""Actions for engine tests: deterministic outcomes with no side effects."""
import time
from collections import defaultdict
from threading import Lock

from connectors.base import Action, ActionError
from connectors.registry import BUILTIN_ACTIONS, ActionRegistry

CALLS: dict[str, int] = defaultdict(int)
_lock = Lock()


class Outcome(Action):
    name = "test.outcome"
    input_schema = {"type": "object", "properties": {
        "fail": {"type": "boolean"}, "sleep": {"type": "number"}, "fail_times": {"type": "integer"},
        "key": {"type": "string"}, "value": {}}, "additionalProperties": False}

    def execute(self, inputs, context):
        key = inputs.get("key", context.task_id)
        with _lock:
            CALLS[key] += 1
            calls = CALLS[key]
        time.sleep(inputs.get("sleep", 0))
        if inputs.get("fail") or calls <= inputs.get("fail_times", 0):
            raise ActionError(f"asked to fail (call {calls})")
        return {"calls": calls, "value": inputs.get("value")}


def registry() -> ActionRegistry:
    return ActionRegistry({**BUILTIN_ACTIONS, "test.outcome": "runs.tests.fake_actions:Outcome"},
                          use_entry_points=False)
