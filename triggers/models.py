"""What triggers remember: received webhook deliveries, cron/poll trigger state, the item keys a poll has seen.

The tables were created by the workflows app and keep their names (`db_table`): moving the models here
(migration 0001) changed no row.
"""
from django.db import models
from django.utils import timezone

from workflows.models import Workflow


class WebhookDelivery(models.Model):
    """One request received at /hooks/<token>, stored as received so an operator can inspect and replay it."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="webhook_deliveries")
    received_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=8)
    headers = models.JSONField(default=dict, blank=True)
    query = models.JSONField(default=dict, blank=True)
    # Raw bytes, as signed by the sender; bodies above the 1 MiB limit are refused and never stored.
    body = models.BinaryField(blank=True, default=b"")
    # A refused delivery keeps only the first MAX_REFUSED_BODY_BYTES of its body: such a body cannot be replayed.
    body_truncated = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField()
    error = models.TextField(blank=True, default="")
    run = models.ForeignKey("runs.WorkflowRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Set only on accepted deliveries; the constraint below makes a repeat fail at INSERT, not at a read.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        db_table = "workflows_webhookdelivery"
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["workflow", "idempotency_key"],
                                    condition=models.Q(idempotency_key__isnull=False),
                                    name="unique_webhook_idempotency_key"),
        ]
        indexes = [models.Index(fields=["workflow", "-id"], name="delivery_workflow_newest")]

    def __str__(self) -> str:
        return f"{self.method} delivery {self.pk} to {self.workflow_id} ({self.status_code})"


class TriggerState(models.Model):
    """What a cron or poll trigger has done: when it was armed and the last instant it fired (or polled).

    `trigger_key` is derived from the trigger's content (`cron:<hash of expression+zone>`), so editing the
    expression arms a fresh trigger while reordering the list keeps its history.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="trigger_states")
    trigger_key = models.CharField(max_length=80)
    armed_at = models.DateTimeField(default=timezone.now)
    last_fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "workflows_triggerstate"
        constraints = [models.UniqueConstraint(fields=["workflow", "trigger_key"], name="unique_trigger_state")]

    def __str__(self) -> str:
        return f"{self.trigger_key} of {self.workflow_id}"


class PollSeenKey(models.Model):
    """An item key a poll trigger has already turned into a run (or recorded on its first poll)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="poll_seen_keys")
    trigger_key = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    first_seen_at = models.DateTimeField(default=timezone.now)
    # Refreshed whenever the item is still in the feed, so pruning drops what the source itself dropped.
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "workflows_pollseenkey"
        constraints = [
            models.UniqueConstraint(fields=["workflow", "trigger_key", "key"], name="unique_poll_seen_key"),
        ]
        indexes = [models.Index(fields=["workflow", "trigger_key", "last_seen_at"], name="poll_key_recency")]

    def __str__(self) -> str:
        return f"{self.trigger_key}:{self.key}"
