"""The secrets vault: each user's own named values for `{{ secrets.NAME }}` in the workflows they own.

A workflow reads its owner's vault only (`secret_value(name, owner_id=...)`), decrypted at use. Values are
encrypted at rest by `connectors.fields.StrictEncryptedTextField`: one Fernet key per (secret key, salt) pair,
derived with PBKDF2 from `[SECRET_KEY, *SECRET_KEY_FALLBACKS]` x `SALT_KEY`, combined in a MultiFernet, so values
are encrypted with SECRET_KEY and decrypted with any of them. Rotating is: set SECRET_KEY to the new key, move the
old one to SECRET_KEY_FALLBACKS, restart, call `secrets_reencrypt()`, and drop the fallback once it has run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from workflows.limits import MAX_SECRET_NAME_LENGTH, MAX_SECRET_VALUE_BYTES, LimitExceeded

from .fields import KEY_HINT, UndecryptableValue
from .models import Secret

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretUndecryptable(UndecryptableValue):
    """The stored value does not decrypt with SECRET_KEY or any of SECRET_KEY_FALLBACKS."""


@dataclass(frozen=True)
class SecretSummary:
    name: str
    created_at: datetime
    updated_at: datetime


def secret_value(name: str, *, owner_id: int | None) -> str | None:
    """The plaintext of `owner_id`'s secret `name`, or None when that owner has no such secret (or no owner)."""
    if owner_id is None:
        return None
    try:
        return Secret.objects.filter(owner_id=owner_id, name=name).values_list("value", flat=True).first()
    except UndecryptableValue:
        raise SecretUndecryptable(f"secret '{name}' {KEY_HINT}") from None


def secret_name_problem(name: object) -> str | None:
    """Why `name` cannot name a secret, or None."""
    if not isinstance(name, str):
        return "must be a string"
    if len(name) > MAX_SECRET_NAME_LENGTH:
        return f"longer than {MAX_SECRET_NAME_LENGTH} characters"
    if not NAME_PATTERN.fullmatch(name):
        return "must start with a letter or _ and contain only letters, digits and _"
    return None


def secret_value_problem(value: object) -> str | None:
    """Why `value` cannot be stored as a secret, or None."""
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "contains an unpaired surrogate character, which cannot be stored"
    if size > MAX_SECRET_VALUE_BYTES:
        return f"larger than {MAX_SECRET_VALUE_BYTES:,} bytes"
    return None


def secret_check(*, name: object, value: object) -> list[LimitExceeded]:
    """Every problem of a (name, value) pair as sent to the API; empty when it can be stored."""
    problems = {"name": secret_name_problem(name), "value": secret_value_problem(value)}
    return [LimitExceeded(path, message) for path, message in problems.items() if message]


def secret_set(*, owner_id: int, name: str, value: str) -> SecretSummary:
    """Create `owner_id`'s secret `name`, or replace its value; the caller has checked both with secret_check."""
    for _ in range(2):  # a concurrent create of the same name loses the insert race once, then updates
        try:
            with transaction.atomic():
                mine = Secret.objects.filter(owner_id=owner_id, name=name)
                if not mine.update(value=value, updated_at=timezone.now()):
                    Secret.objects.create(owner_id=owner_id, name=name, value=value)
                return SecretSummary(*mine.values_list("name", "created_at", "updated_at").get())
        except IntegrityError:
            continue
    raise RuntimeError(f"secret '{name}' could not be stored")  # pragma: no cover - needs two lost races


def secret_delete(*, owner_id: int, name: str) -> bool:
    """Delete `owner_id`'s secret `name`; False when there was none."""
    deleted, _ = Secret.objects.filter(owner_id=owner_id, name=name).delete()
    return bool(deleted)


def secret_list(*, owner_id: int) -> list[SecretSummary]:
    """`owner_id`'s secrets by name, without their values (nothing is decrypted)."""
    rows = Secret.objects.filter(owner_id=owner_id).order_by("name").values_list("name", "created_at", "updated_at")
    return [SecretSummary(name, created_at, updated_at) for name, created_at, updated_at in rows]


def secrets_reencrypt() -> int:
    """Re-encrypt every secret under the current SECRET_KEY (after a rotation); returns how many were written.

    A value no key decrypts stops the whole run (nothing is written) with SecretUndecryptable naming it.
    """
    count = 0
    with transaction.atomic():
        for secret_id, name in Secret.objects.select_for_update().values_list("id", "name"):
            row = Secret.objects.filter(id=secret_id)
            try:
                value = row.values_list("value", flat=True).get()
            except UndecryptableValue:
                raise SecretUndecryptable(f"secret '{name}' {KEY_HINT}") from None
            row.update(value=value)
            count += 1
    return count
