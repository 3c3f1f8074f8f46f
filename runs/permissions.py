"""Who may see and change whose workflows and runs through the API (SPEC §11), in one place for both viewsets.

A user sees and changes their own; a superuser everything; other staff act on other users' objects through
Django's model permissions, exactly as in the admin (`change` implies `view`). Objects a user may not even view
are filtered out of the queryset (404); viewable ones they may not change answer 403.
"""
from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

from django.db.models import Model, QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission

VIEWERS_GROUP = "viewers"


@dataclass(frozen=True)
class Owned:
    """A model reached through the API, the Django permissions that open other users' rows, and its owner."""

    view: str
    change: str
    delete: str
    owner_lookup: str  # ORM path to the owning user, for filtering
    owner_id_attr: str  # attribute path to the owner's id on an instance

    def owner_id(self, obj: Model) -> int | None:
        return attrgetter(self.owner_id_attr)(obj)


WORKFLOWS = Owned(view="workflows.view_workflow", change="workflows.change_workflow",
                  delete="workflows.delete_workflow", owner_lookup="owner", owner_id_attr="owner_id")
RUNS = Owned(view="runs.view_workflowrun", change="runs.change_workflowrun", delete="runs.delete_workflowrun",
             owner_lookup="workflow__owner", owner_id_attr="workflow.owner_id")


def acts_on_others(user, perm: str) -> bool:
    """Whether `user` may use `perm` on other users' objects: superusers, and staff holding it."""
    return user.is_active and (user.is_superuser or (user.is_staff and user.has_perm(perm)))


def visible_to(user, queryset: QuerySet, owned: Owned) -> QuerySet:
    """`queryset` narrowed to what `user` may see."""
    if acts_on_others(user, owned.view) or acts_on_others(user, owned.change):
        return queryset
    return queryset.filter(**{owned.owner_lookup: user})


def may_change(user, obj: Model, owned: Owned, *, delete: bool = False) -> bool:
    """Whether `user` may change (or delete) `obj`, which they can already see."""
    if owned.owner_id(obj) == user.id:
        return True
    return acts_on_others(user, owned.delete if delete else owned.change)


class OwnerOrModelPermission(BasePermission):
    """Object level: writes to another user's object need the model permission (the view sets `owned`)."""

    message = "you may see this but not change it (it belongs to another user)"

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True  # what may not be seen is not in the queryset
        return may_change(request.user, obj, view.owned, delete=request.method == "DELETE")


class NotReadOnlyUser(BasePermission):
    """Members of the `viewers` group (non-staff) may look but not change, run, retry or cancel anything."""

    message = "read-only users (group 'viewers') cannot change workflows or start, retry or cancel runs"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if request.method in SAFE_METHODS or not user or not user.is_authenticated or user.is_staff:
            return True
        return not user.groups.filter(name=VIEWERS_GROUP).exists()
