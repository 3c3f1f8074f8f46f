"""API permissions shared by the workflow and run endpoints."""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

VIEWERS_GROUP = "viewers"


class NotReadOnlyUser(BasePermission):
    """Members of the `viewers` group (non-staff) may look but not change, run, retry or cancel anything."""

    message = "read-only users (group 'viewers') cannot change workflows or start, retry or cancel runs"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if request.method in SAFE_METHODS or not user or not user.is_authenticated or user.is_staff:
            return True
        return not user.groups.filter(name=VIEWERS_GROUP).exists()
