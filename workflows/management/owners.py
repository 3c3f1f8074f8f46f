"""Whose workflows a management command reads or writes: `--owner USERNAME`, else the first superuser, else
nobody (a fresh database with no user yet: the workflows are ownerless until an operator assigns them)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser


class OwnerNotFound(LookupError):
    pass


def command_owner(username: str | None) -> AbstractBaseUser | None:
    users = get_user_model()
    if username:
        owner = users.objects.filter(**{users.USERNAME_FIELD: username}).first()
        if owner is None:
            raise OwnerNotFound(f"unknown user '{username}'")
        return owner
    return users.objects.filter(is_superuser=True).order_by("id").first()
