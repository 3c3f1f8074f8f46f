"""The operator's run pages: a fast list (100k+ runs) and a read-only run page that follows a running run live."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from workflows.admin_graph import dag_svg
from workflows.models import Workflow
from workflows.services import spec_for_version

from .foreach import item_label
from .models import TRIGGER_KIND_CHOICES, TaskRun, WorkflowRun
from .permissions import RUNS, may_change
from .services import RunError, RunStateConflict, approval_answer, run_cancel, run_retry
from .states import FINAL_RUN, FailureKind, RunStatus, TaskStatus

FINAL = {str(s) for s in FINAL_RUN}
EXACT_COUNT_UP_TO = 1_000  # rows counted exactly (a few ms at most); above that the planner's estimate is shown
DEFERRED_JOIN_FROM = 1_000  # from this offset a page reads its ids first (index only), then those rows


def format_duration(started: datetime | None, finished: datetime | None, now: datetime | None = None) -> str:
    if started is None:
        return "—"
    end = finished or now
    if end is None:
        return "—"
    seconds = max((end - started).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def run_detail_context(run: WorkflowRun) -> dict:
    """Everything the run page shows, task runs in plan order (tasks without a row yet shown as not started)."""
    from django.utils import timezone

    now = timezone.now()
    spec = spec_for_version(run.workflow_version_id)
    rows, items = {}, defaultdict(list)  # a for_each task's items follow its own row, as `notify[3]`
    for task_run in TaskRun.objects.filter(run=run).order_by("item_index", "id"):
        if task_run.item_index is None:
            rows[task_run.task_id] = task_run
        else:
            items[task_run.task_id].append(task_run)
    order = [task_id for level in spec.levels() for task_id in level]
    order += [task_id for task_id in rows if task_id not in spec.tasks]
    tasks = []
    for task_id in order:
        task = spec.tasks.get(task_id)
        tasks.append(_task_entry(run, task_id, task, rows.get(task_id), now))
        tasks.extend(_task_entry(run, task_id, task, item, now) for item in items[task_id])
    statuses = {t["task_id"]: t["status"] for t in tasks if t["status"] != "not started" and not t["item"]}
    return {
        "run": run,
        "tasks": tasks,
        "final": run.status in FINAL,
        "run_duration": format_duration(run.started_at, run.finished_at, None if run.status in FINAL else now),
        "graph": dag_svg(spec.depends_on, subtitles={t: s.action for t, s in spec.tasks.items()}, statuses=statuses),
        "trigger_json": _pretty(run.trigger),
    }


def _task_entry(run: WorkflowRun, task_id: str, task, task_run: TaskRun | None, now: datetime) -> dict:
    """One row of the run page: a task run, a for_each item (`notify[3]`), or a task not started yet."""
    index = task_run.item_index if task_run else None
    label = item_label(task_id, index)
    return {
        "task_id": label,
        "item": index is not None,
        "action": task.action if task else "",
        "depends_on": list(task.depends_on) if task else [],
        "status": task_run.status if task_run else "not started",
        "attempt": task_run.attempt if task_run else 0,
        "queue": task_run.queue if task_run else (task.queue if task else ""),
        "started_at": task_run.started_at if task_run else None,
        "finished_at": task_run.finished_at if task_run else None,
        "duration": format_duration(task_run.started_at, task_run.finished_at,
                                    now if task_run.status == "running" else None) if task_run else "—",
        "inputs": _pretty(task_run.inputs) if task_run and task_run.inputs else "",
        "output": _pretty(task_run.output) if task_run and task_run.output not in ({}, None) else "",
        "error": task_run.error if task_run else "",
        "failure": FailureKind(task_run.failure) if task_run and task_run.failure else None,
        "logs": task_run.logs if task_run else "",
        "attempts": task_run.attempts if task_run else [],
        "logs_url": reverse("admin:runs_workflowrun_task_logs", args=[run.pk, label]) if task_run else "",
        "resume_at": task_run.resume_at if task_run and task_run.status == "waiting" else None,
    }


class WorkflowFilter(admin.SimpleListFilter):
    """By workflow, listing ids and names only (the default filter loads every workflow's definition)."""

    title, parameter_name = "workflow", "workflow__id__exact"

    def lookups(self, request, model_admin):
        return list(Workflow.objects.order_by("name").values_list("id", "name"))

    def queryset(self, request, queryset):
        return queryset.filter(workflow_id=int(self.value())) if self.value() else queryset


class TriggerKindFilter(admin.SimpleListFilter):
    title, parameter_name = "trigger", "trigger_kind"

    def lookups(self, request, model_admin):
        return TRIGGER_KIND_CHOICES

    def queryset(self, request, queryset):
        return queryset.filter(trigger_kind=self.value()) if self.value() else queryset


class EstimatedCountPaginator(Paginator):
    """The changelist's paginator at any history size.

    COUNT(*) reads every matching row (seconds at millions of runs), so on PostgreSQL rows are counted exactly
    only up to EXACT_COUNT_UP_TO; a longer list takes the planner's estimate. A deep page first reads its ids (an
    index-only walk past the offset), then only those rows with their workflow.
    """

    @cached_property
    def count(self) -> int:
        if connection.vendor != "postgresql":
            return self.object_list.count()  # the embedded SQLite holds a small history and has no cheap estimate
        bounded = self.object_list.order_by()[:EXACT_COUNT_UP_TO + 1].count()
        if bounded <= EXACT_COUNT_UP_TO:
            return bounded
        return max(planner_rows(self.object_list), bounded)

    def page(self, number) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        if bottom < DEFERRED_JOIN_FROM:
            return super().page(number)
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:bottom + self.per_page])
        return self._get_page(self.object_list.filter(pk__in=ids), number, self)


def planner_rows(queryset) -> int:
    """How many rows PostgreSQL expects `queryset` to return."""
    plan = json.loads(queryset.order_by().values("pk").explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def indexed_ordering(ordering: list) -> list:
    """A changelist ordering that an index serves: a workflow is sorted by id (not by its name, which would sort
    every run), and the primary-key tie-break runs against the sorted column, as in the (column, -id) indexes."""
    ordering = ["-workflow_id" if part == "-workflow" else "workflow_id" if part == "workflow" else part
                for part in ordering]
    if len(ordering) == 2 and all(isinstance(part, str) for part in ordering) and ordering[1] in ("-id", "-pk"):
        first = ordering[0]
        if first.lstrip("-") not in ("id", "pk"):
            ordering[1] = "id" if first.startswith("-") else "-id"
    return ordering


class RunChangeList(ChangeList):
    def get_ordering(self, request, queryset):
        return indexed_ordering(super().get_ordering(request, queryset))


def approval_context(request: HttpRequest, run: WorkflowRun) -> dict:
    """The waiting approvals of the run with their Approve/Reject form, for an operator who may change it."""
    if run.status in FINAL or not may_change(request.user, run, RUNS):
        return {"approvals": []}
    waiting = (TaskRun.objects.filter(run=run, status=TaskStatus.WAITING, resume_token_hash__isnull=False)
               .only("id", "task_id", "output", "resume_at"))
    return {"approvals": [
        {"task_id": row.task_id, "message": (row.output or {}).get("message", ""), "resume_at": row.resume_at,
         "url": reverse("admin:runs_workflowrun_approval", args=[run.pk, row.id])}
        for row in waiting
    ]}


@admin.register(WorkflowRun)
class WorkflowRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status_badge", "workflow", "trigger_kind", "created_at", "started_at", "duration"]
    list_display_links = ["id", "status_badge"]
    list_filter = ["status", WorkflowFilter, TriggerKindFilter, ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["workflow"]
    list_per_page = 50
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-id"]
    search_fields = ["=id"]
    actions = ["retry_failed", "cancel_runs"]

    def get_changelist(self, request, **kwargs):
        return RunChangeList

    def get_search_results(self, request, queryset, search_term):
        # A run id, looked up by the primary key (Django's "=id" would compare UPPER(id::text) on every run).
        term = search_term.strip().lstrip("#")
        if not term:
            return queryset, False
        return (queryset.filter(pk=int(term)) if term.isdigit() and len(term) < 19 else queryset.none()), False

    def get_queryset(self, request):
        # The list never shows the trigger payloads; leaving them in the database keeps pages small.
        return super().get_queryset(request).defer("trigger", "reuse_tasks")

    def has_add_permission(self, request):
        return False

    @admin.display(description="Status", ordering="status")
    def status_badge(self, run: WorkflowRun) -> str:
        return format_html('<span class="ff-badge ff-status-{0}">{0}</span>', run.status)

    @admin.display(description="Duration")
    def duration(self, run: WorkflowRun) -> str:
        return format_duration(run.started_at, run.finished_at)

    # --- actions --------------------------------------------------------------------------------------------

    @admin.action(description="Retry failed tasks", permissions=["change"])
    def retry_failed(self, request, queryset):
        created, refused = [], []
        for run_id in queryset.values_list("id", flat=True):
            try:
                with transaction.atomic():
                    created.append(run_retry(run_id=run_id).pk)
            except RunError as exc:
                refused.append(str(exc))
        if created:
            self.message_user(request, f"Queued retry run(s): {', '.join(map(str, created))}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)

    @admin.action(description="Cancel", permissions=["change"])
    def cancel_runs(self, request, queryset):
        ids = list(queryset.exclude(status__in=FINAL).values_list("id", flat=True))
        for run_id in ids:
            run_cancel(run_id=run_id)
        self.message_user(request, f"Cancelled {len(ids)} run(s).", messages.SUCCESS)

    # --- the run page ---------------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:run_id>/live/", wrap(self.live_view), name="runs_workflowrun_live"),
            path("<int:run_id>/retry/", wrap(require_POST(self.retry_view)), name="runs_workflowrun_retry"),
            path("<int:run_id>/cancel/", wrap(require_POST(self.cancel_view)), name="runs_workflowrun_cancel"),
            path("<int:run_id>/tasks/<str:task_id>/logs/", wrap(self.logs_view), name="runs_workflowrun_task_logs"),
            path("<int:run_id>/approvals/<int:task_run_id>/", wrap(require_POST(self.approval_view)),
                 name="runs_workflowrun_approval"),
        ] + super().get_urls()

    def _get_run(self, request: HttpRequest, run_id, *, change: bool = False) -> WorkflowRun:
        run = get_object_or_404(WorkflowRun.objects.select_related("workflow", "workflow_version"), pk=run_id)
        allowed = self.has_change_permission(request, run) if change else self.has_view_permission(request, run)
        if not allowed:
            raise PermissionDenied
        return run

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self._get_run(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "original": run, "title": f"Run {run.pk} of {run.workflow.name}",
            "has_change_permission": self.has_change_permission(request, run),
            "can_retry": run.status in (RunStatus.FAILED, RunStatus.CANCELLED),
            "can_cancel": run.status not in FINAL,
            "live_url": reverse("admin:runs_workflowrun_live", args=[run.pk]),
            **run_detail_context(run),
            **approval_context(request, run),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/runs/workflowrun/detail.html", context)

    def live_view(self, request: HttpRequest, run_id: int) -> JsonResponse:
        run = self._get_run(request, run_id)
        context = {**run_detail_context(run), **approval_context(request, run)}
        html = render_to_string("admin/runs/workflowrun/_run_body.html", context, request=request)
        return JsonResponse({"id": run.pk, "status": run.status, "final": context["final"],
                             "duration": context["run_duration"], "html": html})

    def retry_view(self, request: HttpRequest, run_id: int):
        run = self._get_run(request, run_id, change=True)
        try:
            with transaction.atomic():
                new_run = run_retry(run_id=run.pk)
        except RunError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:runs_workflowrun_change", args=[run.pk]))
        self.message_user(request, f"Run {new_run.pk} retries the failed tasks of run {run.pk}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:runs_workflowrun_change", args=[new_run.pk]))

    def cancel_view(self, request: HttpRequest, run_id: int):
        run = self._get_run(request, run_id, change=True)
        run_cancel(run_id=run.pk)
        self.message_user(request, f"Run {run.pk} cancelled.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:runs_workflowrun_change", args=[run.pk]))

    def approval_view(self, request: HttpRequest, run_id: int, task_run_id: int):
        """Approve or Reject a waiting flow.approval task: `by` is the operator's user name."""
        run = self._get_run(request, run_id)
        if not may_change(request.user, run, RUNS):
            raise PermissionDenied
        task_run = get_object_or_404(TaskRun.objects.only("id", "task_id"), id=task_run_id, run=run)
        decision = request.POST.get("decision")
        if decision not in ("approve", "reject"):
            self.message_user(request, "Choose Approve or Reject.", messages.ERROR)
        else:
            try:
                approval_answer(task_run_id=task_run.id, reply={"approved": decision == "approve"},
                                by=request.user.get_username())
                verb = "approved" if decision == "approve" else "rejected"
                self.message_user(request, f"Task {task_run.task_id} {verb}.", messages.SUCCESS)
            except RunStateConflict as exc:
                self.message_user(request, str(exc), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:runs_workflowrun_change", args=[run.pk]))

    def logs_view(self, request: HttpRequest, run_id: int, task_id: str) -> HttpResponse:
        run = self._get_run(request, run_id)
        item = re.fullmatch(r"(.+)\[(\d+)\]", task_id)  # an item of a for_each task: `notify[3]`
        task_id, item_index = (item[1], int(item[2])) if item else (task_id, None)
        task_run = get_object_or_404(TaskRun, run=run, task_id=task_id, item_index=item_index)
        return HttpResponse(task_run.logs, content_type="text/plain; charset=utf-8")
