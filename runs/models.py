from django.db import models

from runs.states import FailureKind, RunStatus, TaskStatus, TriggerKind, choices
from workflows.models import Workflow, WorkflowVersion

# The engine's states as choices, also named by the API schema (ENUM_NAME_OVERRIDES in automation/settings.py).
RUN_STATUS_CHOICES = choices(RunStatus)
TASK_STATUS_CHOICES = choices(TaskStatus)
TRIGGER_KIND_CHOICES = choices(TriggerKind)


class WorkflowRun(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    workflow_version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RUN_STATUS_CHOICES, default=RunStatus.QUEUED.value)
    trigger_kind = models.CharField(max_length=16, choices=TRIGGER_KIND_CHOICES, default=TriggerKind.MANUAL.value)
    trigger = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns",
                               help_text="The run this one retries or re-runs")
    # Tasks whose succeeded output is copied from the parent run instead of executing again.
    reuse_tasks = models.JSONField(default=list, blank=True)
    # A child run started by `flow.run_workflow` (SPEC §9): the run and task run that wait for it, and how deep
    # the chain of parents is (AUTOMATION_MAX_DEPTH bounds it).
    parent_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                                   help_text="The run whose flow.run_workflow task started this one")
    parent_task_run = models.ForeignKey("TaskRun", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="child_runs")
    depth = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Set once, by the guarded update that starts the workflow's `on_failure` handler for this failed run.
    failure_handled = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["workflow", "-id"], name="run_workflow_newest"),
            models.Index(fields=["status", "-id"], name="run_status_newest"),
            models.Index(fields=["-created_at"], name="run_created"),
            # The admin run list sorts by these columns; without an index a sort reads every run.
            models.Index(fields=["trigger_kind", "-id"], name="run_trigger_kind_newest"),
            models.Index(fields=["started_at"], name="run_started"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.workflow_id} ({self.status})"


class TaskRun(models.Model):
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="task_runs")
    task_id = models.CharField(max_length=200)
    # For the items of a `for_each` task (SPEC §9): the item's position; NULL on the task's own (parent) row.
    item_index = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=TASK_STATUS_CHOICES, default=TaskStatus.PENDING.value)
    attempt = models.PositiveIntegerField(default=0)
    queue = models.CharField(max_length=100, default="default")
    inputs = models.JSONField(default=dict, blank=True)
    output = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    # How the last attempt failed ("" unless it did): could-not-run kinds are shown apart from action failures.
    failure = models.CharField(max_length=32, blank=True, default="", db_default="", choices=choices(FailureKind))
    logs = models.TextField(blank=True, default="")
    # One entry per finished attempt: {attempt, status, error, started_at, finished_at, worker}.
    attempts = models.JSONField(default=list, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    # A waiting task carries on at this time: a flow.wait's end, an approval's timeout (the sweep wakes overdue ones).
    resume_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 of the token in this task run's resume URL (flow.approval); the token itself is never stored. Unique
    # by a partial constraint (Meta), so the rows without a token, nearly all, cost that index nothing.
    resume_token_hash = models.CharField(max_length=64, null=True, blank=True)
    # Of a top-level task run's distinct upstream tasks: how many are not final yet, succeeded, failed (the rest
    # were skipped or cancelled). Each upstream's final update changes them once, so a completion decides its
    # downstream tasks from these rows alone (runs.states.count_decision); meaningful while the row is pending.
    upstream_left = models.IntegerField(default=0, db_default=0)
    upstream_succeeded = models.IntegerField(default=0, db_default=0)
    upstream_failed = models.IntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "task_id"], condition=models.Q(item_index__isnull=True),
                                    name="unique_task_per_run"),
            models.UniqueConstraint(fields=["run", "task_id", "item_index"],
                                    condition=models.Q(item_index__isnull=False), name="unique_item_per_task"),
            models.UniqueConstraint(fields=["resume_token_hash"], condition=models.Q(resume_token_hash__isnull=False),
                                    name="unique_resume_token_hash"),
        ]
        # Every status change rewrites a row in each index that holds it, and a task run changes status three
        # times; partial indexes hold only the few rows their queries look for.
        indexes = [
            # The sweeper's and dashboard's queued and running task runs (never the final ones, nearly all).
            models.Index(fields=["status", "heartbeat_at"], name="taskrun_active_heartbeat",
                         condition=models.Q(status__in=["queued", "running"])),
            models.Index(fields=["status", "resume_at"], name="taskrun_status_resume",
                         condition=models.Q(resume_at__isnull=False)),
            # "Is any task of the run unfinished?" reads one index entry, not the run's task rows.
            models.Index(fields=["run"], name="taskrun_unfinished",
                         condition=models.Q(item_index__isnull=True,
                                            status__in=["pending", "queued", "running", "waiting"])),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} ({self.status})"


class WorkerHeartbeat(models.Model):
    """One row per live worker process, refreshed about every second (runs.workers): the recovery sweep calls a
    worker dead when its row is stale, and recovers only that worker's running task runs."""

    name = models.CharField(max_length=200, primary_key=True, help_text="host:pid, as TaskRun.worker records it")
    beat_at = models.DateTimeField()
    # Boot id and pid namespace of the worker's machine: a sweeper on the same one may check the pid itself.
    machine = models.CharField(max_length=100, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.name} (beat {self.beat_at:%H:%M:%S})"
