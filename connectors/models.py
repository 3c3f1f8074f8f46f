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


class Provider(models.Model):
    """An OAuth2 provider as data (SPEC §12): where to send the user, where to exchange codes and refresh tokens,
    and who the connected account is. The client secret is encrypted at rest and write-only everywhere.

    `userinfo_url` answers JSON holding the account's id (`id`, or OpenID Connect's `sub`) and a display login
    (`login`, `name` or `email`); `userinfo_id_field` / `userinfo_login_field` name other members when a
    provider spells them differently (Slack's `auth.test`: `user_id` and `user`).
    """

    name = models.SlugField(max_length=32, unique=True, help_text="Used in URLs and in `connection: <name>`.")
    title = models.CharField(max_length=100, blank=True, default="", help_text="Shown on the Connections page.")
    authorize_url = models.URLField(max_length=500)
    token_url = models.URLField(max_length=500)
    userinfo_url = models.URLField(max_length=500)
    scopes = models.JSONField(default=list, blank=True)
    client_id = models.CharField(max_length=300)
    client_secret = StrictEncryptedTextField()
    pkce = models.BooleanField(default=True, help_text="Send an S256 code_challenge (RFC 7636).")
    extra_authorize_params = models.JSONField(
        default=dict, blank=True, help_text='Added to the authorize URL, e.g. {"access_type": "offline"}.'
    )
    userinfo_id_field = models.CharField(max_length=64, blank=True, default="")
    userinfo_login_field = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.title or self.name

    @property
    def display_name(self) -> str:
        return self.title or self.name


class ConnectedAccount(models.Model):
    """A user's OAuth2 grant at a provider; the tokens are encrypted at rest and never displayed.

    `provider` is the Provider's `name` (a slug, not a foreign key: accounts outlive a provider an operator
    deletes and re-creates). Refreshes replace both tokens (refresh tokens may be single-use), so they happen
    under a row lock: see `connectors.oauth2.tokens`.
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
