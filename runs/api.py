from __future__ import annotations

import json
import re

import django_filters
from django import forms
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from automation.api import PAYLOAD_PARSERS, StrictPageSize
from workflows.limits import LimitExceeded, check_storable
from workflows.models import Workflow

from .models import TRIGGER_KIND_CHOICES, TaskRun, WorkflowRun
from .permissions import RUNS, NotReadOnlyUser, OwnerOrModelPermission, acts_on_others
from .services import RunError, RunStateConflict, run_cancel, run_rerun, run_retry
from .states import RunStatus, TaskStatus, choices

ACCEPTED = {202: {"type": "object", "properties": {"run_id": {"type": "integer"}}}}


class TaskRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskRun
        fields = ["task_id", "item_index", "status", "attempt", "inputs", "output", "error", "logs", "attempts",
                  "started_at", "finished_at", "resume_at"]


class RunSerializer(serializers.ModelSerializer):
    tasks = TaskRunSerializer(source="task_runs", many=True, read_only=True)

    class Meta:
        model = WorkflowRun
        fields = ["id", "workflow", "status", "trigger", "trigger_kind", "parent", "parent_run", "created_at",
                  "started_at", "finished_at", "tasks"]


class RunListSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowRun
        fields = ["id", "workflow", "status", "trigger_kind", "parent", "parent_run", "created_at", "started_at",
                  "finished_at"]


class TaskLogsSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    logs = serializers.CharField()


class PlainTextRenderer(BaseRenderer):
    """`Accept: text/plain` (or `?format=txt`) on the logs endpoint answers the bare log text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, dict) and isinstance(data.get("logs"), str):
            return data["logs"].encode(self.charset)
        return json.dumps(data).encode(self.charset)


class _NoBlankFilters(forms.Form):
    """`?created_before=` with no value is a client mistake: say so instead of silently not filtering."""

    def clean(self):
        cleaned = super().clean()
        for name in self.fields:
            if name in self.data and self.data[name] == "":
                self.add_error(name, "give a value or leave the parameter out")
        return cleaned


WAITING = TaskStatus.WAITING.value  # not a run status: `status=waiting` means "a task of the run is waiting"


def task_runs_in_run_order():
    """A run's task runs as the API lists them (SPEC §6): by task, each for_each item right after its task's row."""
    own_row = TaskRun.objects.filter(run_id=OuterRef("run_id"), task_id=OuterRef("task_id"),
                                     item_index__isnull=True).values("id")[:1]
    return (TaskRun.objects.annotate(position=Coalesce(Subquery(own_row), F("id")))
            .order_by("position", F("item_index").asc(nulls_first=True)))


def runs_visible_to(user) -> QuerySet:
    """The runs `user` may see (as permissions.visible_to), an owner's scoped by their workflow ids.

    The ids are read first so the planner sees the values: an owner with few runs is then served from the
    (workflow, -id) index instead of a walk down the whole history looking for their newest run.
    """
    if acts_on_others(user, RUNS.view) or acts_on_others(user, RUNS.change):
        return WorkflowRun.objects.all()
    if not user.is_authenticated:
        return WorkflowRun.objects.none()
    own = list(Workflow.objects.filter(owner=user).values_list("id", flat=True))
    return WorkflowRun.objects.filter(workflow_id__in=own)


class RunFilter(django_filters.FilterSet):
    workflow = django_filters.NumberFilter(field_name="workflow_id", help_text="Workflow id")
    status = django_filters.ChoiceFilter(
        choices=[*choices(RunStatus), (WAITING, WAITING)], method="filter_status",
        help_text="A run status; `waiting` lists the running runs that have a waiting task (flow.wait, "
                  "flow.approval, flow.run_workflow or a for_each task with items still to run)")
    trigger_kind = django_filters.ChoiceFilter(choices=TRIGGER_KIND_CHOICES)
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601 date or date-time, inclusive")
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601 date or date-time, exclusive")

    class Meta:
        model = WorkflowRun
        fields = ["workflow", "status", "trigger_kind", "created_after", "created_before"]
        form = _NoBlankFilters

    def filter_status(self, queryset, name, value):
        if value == WAITING:
            waiting = TaskRun.objects.filter(run_id=OuterRef("id"), status=WAITING)
            return queryset.filter(Exists(waiting), status=RunStatus.RUNNING)
        return queryset.filter(status=value)


class RunCursorPagination(StrictPageSize, CursorPagination):
    """Keyset pagination on the primary key: every page costs the same at any depth of history."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_ordering(self, request, queryset, view) -> tuple:
        if request.query_params.get("created_before"):
            # Still newest first, but walked down the creation-time index from that date: ids grow with time,
            # which the planner does not know, so by id it would read every newer run before the first match.
            return ("-created_at", "-id")
        return super().get_ordering(request, queryset, view)


class RerunSerializer(serializers.Serializer):
    from_task = serializers.CharField()
    version = serializers.ChoiceField(choices=["original", "current"], default="original")
    trigger = serializers.JSONField(required=False)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = WorkflowRun.objects.none()  # for the schema; get_queryset scopes to the user
    filter_backends = [DjangoFilterBackend]
    filterset_class = RunFilter
    pagination_class = RunCursorPagination
    lookup_value_regex = r"\d+"  # a non-numeric id is a 404, not a database error
    permission_classes = [IsAuthenticated, NotReadOnlyUser, OwnerOrModelPermission]
    owned = RUNS

    def get_queryset(self):
        queryset = runs_visible_to(self.request.user)
        if self.action == "list":
            queryset = queryset.defer("trigger", "reuse_tasks")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(Prefetch("task_runs", queryset=task_runs_in_run_order()))
        return queryset

    def get_serializer_class(self):
        return RunListSerializer if self.action == "list" else RunSerializer

    def _accepted(self, make_run):
        try:
            with transaction.atomic():
                run = make_run()
        except RunError as exc:
            code = status.HTTP_409_CONFLICT if isinstance(exc, RunStateConflict) else status.HTTP_400_BAD_REQUEST
            return Response({"errors": [{"path": "", "message": str(exc)}]}, status=code)
        return Response({"run_id": run.id}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        run = self.get_object()
        return self._accepted(lambda: run_retry(run_id=run.id))

    @extend_schema(request={"application/json": RerunSerializer}, responses=ACCEPTED)
    @action(detail=True, methods=["post"], parser_classes=PAYLOAD_PARSERS)
    def rerun(self, request, pk=None):
        run = self.get_object()
        body = RerunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            check_storable(body.validated_data.get("trigger"), "trigger")
        except LimitExceeded as exc:
            return Response({"errors": [{"path": exc.path, "message": exc.message}]},
                            status=status.HTTP_400_BAD_REQUEST)
        return self._accepted(lambda: run_rerun(run_id=run.id, **body.validated_data))

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        return self._accepted(lambda: run_cancel(run_id=run.id))

    @extend_schema(
        parameters=[OpenApiParameter("task_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={(200, "application/json"): TaskLogsSerializer, (200, "text/plain"): OpenApiTypes.STR},
    )
    @action(detail=True, methods=["get"], url_path=r"tasks/(?P<task_id>[^/]+)/logs", filter_backends=[],
            pagination_class=None, renderer_classes=[JSONRenderer, BrowsableAPIRenderer, PlainTextRenderer])
    def logs(self, request, pk=None, task_id=None):
        """One task run's logs: JSON `{"task_id", "status", "attempt", "logs"}`, or plain text. An item of a
        for_each task is named `notify[3]`."""
        run = get_object_or_404(self.get_queryset().only("id"), pk=pk)
        item = re.fullmatch(r"(.+)\[(\d+)\]", task_id)
        task_id, item_index = (item[1], int(item[2])) if item else (task_id, None)
        task_run = get_object_or_404(TaskRun.objects.only("task_id", "status", "attempt", "logs"), run=run,
                                     task_id=task_id, item_index=item_index)
        if request.accepted_renderer.format == PlainTextRenderer.format:
            # Not through Response: DRF drops the Content-Type of an empty rendering, and empty logs are common.
            return HttpResponse(task_run.logs, content_type="text/plain; charset=utf-8")
        return Response({"task_id": task_run.task_id, "status": task_run.status, "attempt": task_run.attempt,
                         "logs": task_run.logs})
