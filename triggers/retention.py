"""Webhook-delivery retention, on the policy of the workflow's run history (`runs.retention.policy_for`).

A delivery goes after the workflow's retention days, or with the run it started, and refused ones (which start
no run) beyond the newest `max_runs`, so a sender flooding bad signatures cannot grow the table without bound
between two prunes. Deleted by id batches, like runs.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from runs.retention import policy_for
from workflows.models import Workflow

from .models import WebhookDelivery

log = logging.getLogger(__name__)
ACCEPTED = 202  # a webhook delivery's status code when it started a run


def expired_deliveries(workflow: Workflow, *, now: datetime | None = None) -> QuerySet[WebhookDelivery]:
    """The webhook deliveries of `workflow` that its policy no longer keeps."""
    now = now or timezone.now()
    policy = policy_for(workflow)
    accepted = Q(status_code=ACCEPTED)
    # An accepted delivery whose run was pruned goes with it (its run is what it was kept for).
    expired = Q(received_at__lt=now - timedelta(days=policy.days)) | accepted & Q(run__isnull=True)
    beyond = (WebhookDelivery.objects.filter(workflow=workflow).exclude(accepted).order_by("-id")
              .values_list("id", flat=True)[policy.max_runs:policy.max_runs + 1])
    if beyond:
        expired |= ~accepted & Q(id__lte=beyond[0])
    return WebhookDelivery.objects.filter(workflow=workflow).filter(expired)


def prune_deliveries(*, batch_size: int = 1000, now: datetime | None = None) -> dict[str, int]:
    """Delete expired webhook deliveries of every workflow, by id batches; returns how many went."""
    now = now or timezone.now()
    deleted = 0
    for workflow in Workflow.objects.only("id", "retention_days", "retention_max_runs").order_by("id"):
        queryset = expired_deliveries(workflow, now=now).order_by("id").values_list("id", flat=True)
        while ids := list(queryset[:batch_size]):
            count, _ = WebhookDelivery.objects.filter(id__in=ids).delete()
            if not count:
                break
            deleted += count
    if deleted:
        log.info("retention: deleted %d webhook deliveries", deleted)
    return {"deliveries": deleted}
