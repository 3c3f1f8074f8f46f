from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .models import TaskRun, WorkflowRun
from .services import RunError, run_cancel, run_rerun, run_retry

ACCEPTED = {202: {"type": "object", "properties": {"run_id": {"type": "integer"}}}}


class TaskRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskRun
        fields = ["task_id", "status", "attempt", "inputs", "output", "error", "logs", "attempts", "started_at",
                  "finished_at"]


class RunSerializer(serializers.ModelSerializer):
    tasks = TaskRunSerializer(source="task_runs", many=True, read_only=True)

    class Meta:
        model = WorkflowRun
        fields = ["id", "workflow", "status", "trigger", "trigger_kind", "parent", "created_at", "started_at",
                  "finished_at", "tasks"]


class RunListSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowRun
        fields = ["id", "workflow", "status", "trigger_kind", "parent", "created_at", "started_at", "finished_at"]


class RerunSerializer(serializers.Serializer):
    from_task = serializers.CharField()
    version = serializers.ChoiceField(choices=["original", "current"], default="original")
    trigger = serializers.JSONField(required=False)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    def get_queryset(self):
        queryset = WorkflowRun.objects.all()
        if not self.request.user.is_staff:
            queryset = queryset.filter(workflow__owner=self.request.user)
        params = self.request.query_params
        if params.get("workflow"):
            queryset = queryset.filter(workflow_id=params["workflow"])
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("task_runs")
        return queryset

    def get_serializer_class(self):
        return RunListSerializer if self.action == "list" else RunSerializer

    def _accepted(self, make_run):
        try:
            with transaction.atomic():
                run = make_run()
        except RunError as exc:
            return Response({"errors": [{"path": "", "message": str(exc)}]}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"run_id": run.id}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        run = self.get_object()
        return self._accepted(lambda: run_retry(run_id=run.id))

    @extend_schema(request=RerunSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        run = self.get_object()
        body = RerunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._accepted(lambda: run_rerun(run_id=run.id, **body.validated_data))

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        return self._accepted(lambda: run_cancel(run_id=run.id))
