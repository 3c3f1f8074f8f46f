from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from automation.api import errors_response
from runs.models import TriggerKind
from runs.services import run_create

from .definition import InvalidDefinition
from .models import Workflow
from .services import VersionConflict, definition_validate, workflow_delete, workflow_save


class DefinitionField(serializers.JSONField):
    """A JSON object, or a YAML/JSON string holding one."""


class WorkflowSerializer(serializers.ModelSerializer):
    definition = DefinitionField()
    name = serializers.CharField(max_length=200, required=False)
    webhook_url = serializers.SerializerMethodField()
    version = serializers.IntegerField(required=False, help_text="On update: the version this edit is based on")

    class Meta:
        model = Workflow
        fields = ["id", "name", "definition", "version", "enabled", "webhook_url", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_webhook_url(self, workflow: Workflow) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(workflow.webhook_path) if request else workflow.webhook_path

    def validate_definition(self, value):
        if not isinstance(value, (dict, str)):
            raise serializers.ValidationError("must be a JSON object or a YAML/JSON string")
        return value

    def save_workflow(self, owner, instance: Workflow | None = None) -> Workflow:
        data = self.validated_data
        return workflow_save(source=data["definition"] if "definition" in data else instance.definition,
                             name=data.get("name"), owner=owner, workflow=instance,
                             expected_version=data.get("version") if instance else None,
                             enabled=data.get("enabled"))


class WorkflowViewSet(viewsets.ModelViewSet):
    serializer_class = WorkflowSerializer

    def get_queryset(self):
        queryset = Workflow.objects.all()
        if not self.request.user.is_staff:
            queryset = queryset.filter(owner=self.request.user)
        return queryset

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data.get("name")
        if name and Workflow.objects.filter(name=name).exists():
            return errors_response([{"path": "name", "message": f"a workflow named '{name}' already exists"}])
        try:
            data, spec = definition_validate(serializer.validated_data["definition"])
        except InvalidDefinition as exc:
            return errors_response([p.as_dict() for p in exc.problems])
        if not name and Workflow.objects.filter(name=spec.name).exists():
            return errors_response([{"path": "name", "message": f"a workflow named '{spec.name}' already exists"}])
        workflow = serializer.save_workflow(owner=request.user)
        return Response(self.get_serializer(workflow).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        try:
            workflow = serializer.save_workflow(owner=instance.owner or request.user, instance=instance)
        except VersionConflict as exc:
            return errors_response([{"path": "version", "message": str(exc)}], status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(workflow).data)

    def perform_destroy(self, instance: Workflow) -> None:
        workflow_delete(workflow=instance)

    @extend_schema(request=None, responses={202: {"type": "object", "properties": {"run_id": {"type": "integer"}}}})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        workflow = self.get_object()
        body = request.data if request.body else {}
        with transaction.atomic():
            run = run_create(workflow=workflow, trigger={"body": body, "kind": "manual"},
                             trigger_kind=TriggerKind.MANUAL)
        return Response({"run_id": run.id}, status=status.HTTP_202_ACCEPTED)
