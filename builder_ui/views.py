"""The builder page: a Django shell around the React Flow bundle, which talks to the REST API itself."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from runs.permissions import WORKFLOWS, visible_to
from workflows.models import Workflow

ADMIN_WORKFLOWS_URL = "/admin/workflows/workflow/"


@login_required
@ensure_csrf_cookie  # the bundle falls back to the csrftoken cookie for its API writes
def builder(request: HttpRequest, workflow_id: int | None = None) -> HttpResponse:
    workflow = None
    if workflow_id is not None:
        workflow = get_object_or_404(visible_to(request.user, Workflow.objects.all(), WORKFLOWS).only("id", "name"), id=workflow_id)
    return render(request, "builder_ui/builder.html", {
        "workflow": workflow,
        "workflow_id": workflow.id if workflow else "",
        "admin_url": ADMIN_WORKFLOWS_URL,
        "runs_url": reverse("admin:runs_workflowrun_changelist"),  # a run's page is <runs_url><id>/change/
    })
