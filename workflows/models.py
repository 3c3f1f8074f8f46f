import secrets

from django.conf import settings
from django.db import models


def new_webhook_token() -> str:
    return secrets.token_urlsafe(24)


class Workflow(models.Model):
    name = models.CharField(max_length=200, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="workflows")
    definition = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    webhook_token = models.CharField(max_length=64, unique=True, default=new_webhook_token, editable=False)
    # Denormalised so the webhook path reads one row to start a run on the current definition.
    current_version = models.ForeignKey("WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def webhook_path(self) -> str:
        return f"/hooks/{self.webhook_token}"


class WorkflowVersion(models.Model):
    """Every definition a workflow has had; runs point at the one they execute."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["workflow", "version"], name="unique_workflow_version")]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.version}"
