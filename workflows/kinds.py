"""The closed sets a definition and a run share: what started a run, and when a task may run. No Django import.

One spelling each: the parser (`workflows.definition`), the engine (`runs.states` re-exports them), the models'
choices (`runs.models`) and the API schema (ENUM_NAME_OVERRIDES in automation/settings.py) all use these.
"""
from __future__ import annotations

from enum import Enum


class TriggerKind(str, Enum):
    """What started a run (`WorkflowRun.trigger_kind`, and `trigger.kind` in templates)."""

    MANUAL = "manual"  # the API's or the admin's "Run now"
    WEBHOOK = "webhook"  # a request to /hooks/<token>, or a replayed delivery
    CRON = "cron"  # a cron trigger's fire time
    POLL = "poll"  # a new item seen by a poll trigger
    RETRY = "retry"  # "retry": the same trigger and version again, as a new run
    RERUN = "rerun"  # "re-run from a task": earlier outputs reused, the rest executed again
    CLI = "cli"  # `manage.py runworkflow` (the only kind that may run shell.run without AUTOMATION_ALLOW_SHELL)
    CHILD = "child"  # started by a parent run's `flow.run_workflow` task (SPEC §9)
    FAILURE_HANDLER = "failure_handler"  # started by a failed run's workflow-level `on_failure` (SPEC §9)

    def __str__(self) -> str:
        return self.value


class TriggerRule(str, Enum):
    """When a task with upstream tasks may run (a task's `trigger_rule`, SPEC §3)."""

    ALL_SUCCESS = "all_success"  # every upstream task succeeded (the default); any failure or skip skips it
    ALL_DONE = "all_done"  # every upstream task is final, whatever its outcome
    ONE_FAILED = "one_failed"  # at least one upstream task failed (error handlers); skipped when none did
    ONE_SUCCESS = "one_success"  # at least one upstream task succeeded; skipped when none did

    def __str__(self) -> str:
        return self.value
