from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from automation.api import errors_response
from runs.models import TriggerKind
from runs.permissions import NotReadOnlyUser
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


class ValidateSerializer(serializers.Serializer):
    definition = DefinitionField(help_text="A JSON object, or a YAML/JSON string holding one")

    def validate_definition(self, value):
        if not isinstance(value, (dict, str)):
            raise serializers.ValidationError("must be a JSON object or a YAML/JSON string")
        return value


VALID = inline_serializer("DefinitionValid", {
    "valid": serializers.BooleanField(),
    "name": serializers.CharField(),
    "plan": serializers.ListField(child=serializers.ListField(child=serializers.CharField()),
                                  help_text="Task ids grouped by the round in which they can run"),
})


class WorkflowPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class WorkflowViewSet(viewsets.ModelViewSet):
    serializer_class = WorkflowSerializer
    queryset = Workflow.objects.none()  # for the schema; get_queryset scopes to the user
    pagination_class = WorkflowPagination
    lookup_value_regex = r"\d+"  # a non-numeric id is a 404, not a database error
    permission_classes = [IsAuthenticated, NotReadOnlyUser]

    def get_queryset(self):
        queryset = Workflow.objects.select_related("owner")
        if not self.request.user.is_staff:
            queryset = queryset.filter(owner=self.request.user)
        return queryset

    @extend_schema(request=ValidateSerializer, responses={200: VALID})
    @action(detail=False, methods=["post"], permission_classes=[IsAuthenticated])
    def validate(self, request):
        """Validate a definition without saving it; answers the execution plan or the path-named errors."""
        body = ValidateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        _, spec = definition_validate(body.validated_data["definition"])  # InvalidDefinition → 400
        return Response({"valid": True, "name": spec.name, "plan": spec.levels()})

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
