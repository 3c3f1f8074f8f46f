"""Secret look-up for templates; decryption happens here, at use."""
from __future__ import annotations

from .models import Secret


def secret_value(name: str) -> str | None:
    return Secret.objects.filter(name=name).values_list("value", flat=True).first()
