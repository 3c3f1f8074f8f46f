import secrets
import unicodedata

from django.conf import settings
from django.db import models


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
