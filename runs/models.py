from django.db import models

from runs.states import RunStatus, TaskStatus
from workflows.models import Workflow, WorkflowVersion


# The engine's states (runs/states.py) as Django choices; labels equal the stored values.
RunState = models.TextChoices("RunState", [(s.name, (s.value, s.value)) for s in RunStatus])
TaskState = models.TextChoices("TaskState", [(s.name, (s.value, s.value)) for s in TaskStatus])


class TriggerKind(models.TextChoices):
    MANUAL = "manual"
    WEBHOOK = "webhook"
    CRON = "cron"
    POLL = "poll"
    RETRY = "retry"
    RERUN = "rerun"
    CLI = "cli"


class WorkflowRun(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    workflow_version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    trigger_kind = models.CharField(max_length=16, choices=TriggerKind.choices, default=TriggerKind.MANUAL)
    trigger = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns",
                               help_text="The run this one retries or re-runs")
    # Tasks whose succeeded output is copied from the parent run instead of executing again.
    reuse_tasks = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when the start message was handed to the broker; the sweeper re-sends stale ones.
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["workflow", "-id"], name="run_workflow_newest"),
            models.Index(fields=["status", "-id"], name="run_status_newest"),
            models.Index(fields=["-created_at"], name="run_created"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.workflow_id} ({self.status})"


class TaskRun(models.Model):
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="task_runs")
    task_id = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=TaskState.choices, default=TaskState.PENDING)
    attempt = models.PositiveIntegerField(default=0)
    queue = models.CharField(max_length=100, default="default")
    inputs = models.JSONField(default=dict, blank=True)
    output = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    logs = models.TextField(blank=True, default="")
    # One entry per finished attempt: {attempt, status, error, started_at, finished_at, worker}.
    attempts = models.JSONField(default=list, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "task_id"], name="unique_task_per_run")]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="taskrun_status_heartbeat")]

    def __str__(self) -> str:
        return f"{self.task_id} ({self.status})"
