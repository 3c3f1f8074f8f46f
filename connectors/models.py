from django.db import models
from encrypted_fields.fields import EncryptedTextField


class Secret(models.Model):
    """A named value for `{{ secrets.NAME }}`; stored encrypted, masked as *** wherever it appears."""

    name = models.CharField(max_length=100, unique=True)
    value = EncryptedTextField()
    description = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
