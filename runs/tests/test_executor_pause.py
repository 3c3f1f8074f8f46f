"""The pause seam of SPEC §9: an action that returns a Pause leaves its attempt `waiting`, and the key of §10."""
from __future__ import annotations

from datetime import datetime, timezone

from connectors.base import Action, ActionConfig, Pause, PauseReason
from connectors.registry import BUILTIN_ACTIONS, ActionRegistry
from runs.executor import execute_attempt, template_context
from runs.states import TaskStatus, idempotency_key
from workflows.definition import TaskSpec

UNTIL = datetime(2030, 1, 1, tzinfo=timezone.utc)
SEEN: list = []


class Pauses(Action):
    name = "test.pauses"

    def execute(self, inputs, context):
        SEEN.append((context.idempotency_key, context.item_index))
        return Pause(PauseReason.TIME, until=UNTIL, details={"waiting_until": UNTIL.isoformat()})


REGISTRY = ActionRegistry({**BUILTIN_ACTIONS, "test.pauses": "runs.tests.test_executor_pause:Pauses"},
                          use_entry_points=False)


def test_an_action_that_pauses_leaves_its_attempt_waiting_with_what_it_waits_for():
    context = template_context(trigger={}, task_results={}, run={"id": 7, "workflow": "w"})
    key = idempotency_key(7, "nap", 2)
    result = execute_attempt(TaskSpec(id="nap", action="test.pauses"), template_context=context, registry=REGISTRY,
                             config=ActionConfig(), run_id=7, idempotency_key=key, item_index=2)
    assert result.status == TaskStatus.WAITING
    assert result.pause == Pause(PauseReason.TIME, until=UNTIL, details={"waiting_until": UNTIL.isoformat()})
    assert result.output == {"waiting_until": UNTIL.isoformat()}
    assert SEEN[-1] == (key, 2)


def test_the_idempotency_key_is_stable_per_task_run_and_item_and_differs_between_them():
    assert idempotency_key(1, "a") == idempotency_key(1, "a")
    keys = {idempotency_key(1, "a"), idempotency_key(2, "a"), idempotency_key(1, "b"), idempotency_key(1, "a", 0),
            idempotency_key(1, "a", 1)}
    assert len(keys) == 5
