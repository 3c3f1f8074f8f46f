"""The secrets vault: look-up for `{{ secrets.NAME }}` (decrypted here, at use) and re-encryption after rotation.

Keys come from django-fernet-encrypted-fields: one Fernet key per (secret key, salt) pair, derived with PBKDF2
from `[SECRET_KEY, *SECRET_KEY_FALLBACKS]` x `SALT_KEY`, combined in a MultiFernet, so values are encrypted
with SECRET_KEY and decrypted with any of them. Rotating is: set SECRET_KEY to the new key, move the old one to
SECRET_KEY_FALLBACKS, restart, call `secrets_reencrypt()`, and drop the fallback once it has run.

The library hands back the *ciphertext* when no key decrypts a value (it swallows InvalidToken), which would put
a token into a header without anyone noticing. `secret_value` decrypts itself and refuses instead.
"""
from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from .models import Secret


class SecretUndecryptable(ValueError):
    """The stored value does not decrypt with SECRET_KEY or any of SECRET_KEY_FALLBACKS."""


def _field():
    return Secret._meta.get_field("value")


def _decrypt(name: str, ciphertext: str) -> str:
    try:
        return _field().f.decrypt(ciphertext.encode("utf-8")).decode("utf-8")
    except InvalidToken:
        raise SecretUndecryptable(
            f"secret '{name}' cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS "
            "(was SECRET_KEY changed without keeping the old key as a fallback?)"
        ) from None


def _ciphertexts():
    # Cast to a plain text column, so the ciphertext arrives as stored instead of through the field's
    # silently-failing from_db_value.
    return Secret.objects.annotate(ciphertext=Cast("value", output_field=TextField()))


def secret_value(name: str, *, owner_id: int | None) -> str | None:
    """The plaintext of `owner_id`'s secret `name`, or None when that owner has no such secret (or no owner)."""
    if owner_id is None:
        return None
    ciphertext = _ciphertexts().filter(owner_id=owner_id, name=name).values_list("ciphertext", flat=True).first()
    if ciphertext is None:
        return None
    return _decrypt(name, ciphertext)


def secrets_reencrypt() -> int:
    """Re-encrypt every secret under the current SECRET_KEY (after a rotation); returns how many were written."""
    count = 0
    with transaction.atomic():
        for secret_id, name, ciphertext in _ciphertexts().select_for_update().values_list("id", "name", "ciphertext"):
            Secret.objects.filter(id=secret_id).update(value=_decrypt(name, ciphertext))
            count += 1
    return count
