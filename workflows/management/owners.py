"""Whose workflows a management command reads or writes: `--owner USERNAME`, else the first superuser."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser


class OwnerNotFound(LookupError):
    pass


def command_owner(username: str | None) -> AbstractBaseUser:
    users = get_user_model()
    if username:
        owner = users.objects.filter(**{users.USERNAME_FIELD: username}).first()
        if owner is None:
            raise OwnerNotFound(f"unknown user '{username}'")
        return owner
    owner = users.objects.filter(is_superuser=True).order_by("id").first()
    if owner is None:
        raise OwnerNotFound("there is no superuser to own the workflows; pass --owner USERNAME")
    return owner
