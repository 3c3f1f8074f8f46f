"""Celery entry points of the connectors app: thin, they call services."""
from datetime import timedelta

from celery import shared_task

from connectors.github import services as github


@shared_task(name="connectors.refresh_tokens", ignore_result=True)
def refresh_tokens(within_minutes: int = 10) -> dict:
    report = github.refresh_expiring(within=timedelta(minutes=within_minutes))
    return {"refreshed": report.refreshed, "needs_reauth": report.needs_reauth, "unavailable": report.unavailable}
