import secrets
import unicodedata

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_webhook_token() -> str:
    return secrets.token_urlsafe(24)


def workflow_name_key(name: str) -> str:
    """How workflow names compare (SPEC §11): Unicode NFKC, surrounding whitespace stripped, casefolded.

    NFKC runs again after casefolding because casefolding can leave text that is no longer normalised.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())


# Normalising can lengthen a name (NFKC of U+FDFA is 18 characters); the bound keeps the index entry small.
NAME_KEY_MAX_LENGTH = 800


class Workflow(models.Model):
    name = models.CharField(max_length=200, db_index=True)
    # workflow_name_key(name), filled on every save; unique per owner so a name clash is refused by the database
    # itself, whichever path (API, admin, command, a racing request) writes the row.
    name_key = models.CharField(max_length=NAME_KEY_MAX_LENGTH, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="workflows")
    definition = models.JSONField()
    # The YAML/JSON text the definition was parsed from, comments and layout as written; empty when the definition
    # arrived as an object (the builder, a dict): it is then shown as YAML rendered from `definition`.
    source = models.TextField(blank=True, default="", editable=False)
    version = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    webhook_token = models.CharField(max_length=64, unique=True, default=new_webhook_token, editable=False)
    # Denormalised so the webhook path reads one row to start a run on the current definition.
    current_version = models.ForeignKey("WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+", editable=False)
    # Run-history retention; empty means the AUTOMATION_RETENTION_* defaults (runs.retention).
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Delete finished runs older than this many days (failed ones are kept at "
                                         "least AUTOMATION_RETENTION_FAILED_DAYS). Empty: the global default.")
    retention_max_runs = models.PositiveIntegerField(
        null=True, blank=True, help_text="Keep at most this many finished runs. Empty: the global default.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name_key"], name="unique_workflow_name_per_owner"),
            # NULL owners are distinct to a plain unique constraint, so the ownerless get their own.
            models.UniqueConstraint(fields=["name_key"], condition=models.Q(owner__isnull=True),
                                    name="unique_workflow_name_without_owner"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.name_key = workflow_name_key(self.name)
        if kwargs.get("update_fields") is not None and "name" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key"}
        super().save(*args, **kwargs)

    @property
    def webhook_path(self) -> str:
        return f"/hooks/{self.webhook_token}"


class WorkflowVersion(models.Model):
    """Every definition a workflow has had; runs point at the one they execute."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    # As Workflow.source; a later edit that changes only comments or layout updates it in place (same definition).
    source = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["workflow", "version"], name="unique_workflow_version")]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.version}"


# --- trigger state (issue 4) ----------------------------------------------------------------------------------


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
        constraints = [
            models.UniqueConstraint(fields=["workflow", "trigger_key", "key"], name="unique_poll_seen_key"),
        ]
        indexes = [models.Index(fields=["workflow", "trigger_key", "last_seen_at"], name="poll_key_recency")]

    def __str__(self) -> str:
        return f"{self.trigger_key}:{self.key}"
