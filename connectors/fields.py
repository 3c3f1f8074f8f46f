"""Encrypted model fields that fail loudly.

django-fernet-encrypted-fields hands back the *ciphertext* when no key decrypts a stored value (it swallows
InvalidToken), which would put a Fernet token into an Authorization header without anyone noticing. These
fields raise `UndecryptableValue` when the row is read instead, so every caller gets the same clear refusal.
"""
from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from encrypted_fields.fields import EncryptedTextField


class UndecryptableValue(ValueError):
    """A stored value decrypts with neither SECRET_KEY nor any of SECRET_KEY_FALLBACKS."""


KEY_HINT = (
    "cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS "
    "(was SECRET_KEY changed without keeping the old key in SECRET_KEY_FALLBACKS?)"
)


class StrictEncryptedTextField(EncryptedTextField):
    """An EncryptedTextField whose reads raise UndecryptableValue instead of returning the ciphertext."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        try:
            return self.f.decrypt(value.encode("utf-8")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UndecryptableValue(f"a stored {self.model.__name__}.{self.name} {KEY_HINT}") from None
