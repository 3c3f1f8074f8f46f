from django.conf import settings
from django.db import models

from .fields import StrictEncryptedTextField


class Secret(models.Model):
    """A named value for `{{ secrets.NAME }}` of its owner's workflows; stored encrypted, masked as *** wherever
    it appears. Names are unique per owner: two users may both have a secret called KEY."""

    # NULL only for rows migrated from before owners existed on a database without any user: nobody reads them
    # until an operator assigns an owner in the admin.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="secrets", null=True, blank=True
    )
    name = models.CharField(max_length=100)
    value = StrictEncryptedTextField()
    description = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="secret_unique_owner_name")]

    def __str__(self) -> str:
        return self.name


class ConnectedAccount(models.Model):
    """A user's OAuth2 grant at a provider (GitHub); the tokens are encrypted at rest and never displayed.

    Refreshes replace both tokens (GitHub refresh tokens are single-use), so they happen under a row lock:
    see `connectors.github.services`.
    """

    # Lists and pages defer these, so a row whose tokens no key decrypts still shows (and can be disconnected).
    TOKEN_FIELDS = ("access_token", "refresh_token")

    class Status(models.TextChoices):
        OK = "ok", "OK"
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="connected_accounts"
    )
    provider = models.CharField(max_length=32, default="github")
    external_id = models.CharField(max_length=64, help_text="The account's id at the provider.")
    login = models.CharField(max_length=100, help_text="The account's login at the provider.")
    scopes = models.JSONField(default=list, blank=True)
    access_token = StrictEncryptedTextField()
    # NULL when the provider issues tokens that do not expire (classic OAuth apps without expiring tokens).
    refresh_token = StrictEncryptedTextField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OK)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "login"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_id"], name="connected_account_unique_external_id"),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="connected_account_expiry")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.login}"
