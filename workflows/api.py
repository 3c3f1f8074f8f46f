from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from automation.api import PAYLOAD_PARSERS, StrictPageSize, errors_response
from runs.models import TriggerKind
from runs.permissions import WORKFLOWS, NotReadOnlyUser, OwnerOrModelPermission, visible_to
from runs.services import RunError, run_create

from .limits import LimitExceeded, check_storable
from .models import Workflow
from .services import VersionConflict, WorkflowBusy, definition_validate, workflow_delete, workflow_save


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

    def get_webhook_url(self, workflow: Workflow) -> str | None:
        """Null unless the definition has a `webhook` trigger (/hooks/<token> answers 404 otherwise)."""
        if not any(isinstance(trigger, dict) and trigger.get("type") == "webhook"
                   for trigger in workflow.definition.get("triggers") or ()):
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(workflow.webhook_path) if request else workflow.webhook_path

    def validate_definition(self, value):
        if not isinstance(value, (dict, str)):
            raise serializers.ValidationError("must be a JSON object or a YAML/JSON string")
        return value

    def save_workflow(self, *, author, instance: Workflow | None = None) -> Workflow:
        """Create (owned by `author`) or update `instance` (its owner kept); InvalidDefinition on a name clash.

        A YAML/JSON string is kept as written beside the parsed definition (workflow_save); an update without a
        definition keeps the stored one and its text.
        """
        data = self.validated_data
        return workflow_save(source=data["definition"] if "definition" in data else instance.definition,
                             name=data.get("name"), owner=None if instance else author, author=author,
                             workflow=instance, expected_version=data.get("version") if instance else None,
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


class WorkflowPagination(StrictPageSize, PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class WorkflowViewSet(viewsets.ModelViewSet):
    serializer_class = WorkflowSerializer
    queryset = Workflow.objects.none()  # for the schema; get_queryset scopes to the user
    pagination_class = WorkflowPagination
    lookup_value_regex = r"\d+"  # a non-numeric id is a 404, not a database error
    permission_classes = [IsAuthenticated, NotReadOnlyUser, OwnerOrModelPermission]
    owned = WORKFLOWS

    def get_queryset(self):
        return visible_to(self.request.user, Workflow.objects.select_related("owner"), self.owned)

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
        workflow = serializer.save_workflow(author=request.user)  # InvalidDefinition (also a name clash) → 400
        return Response(self.get_serializer(workflow).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        try:
            workflow = serializer.save_workflow(author=request.user, instance=instance)
        except VersionConflict as exc:
            return errors_response([{"path": "version", "message": str(exc)}], status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(workflow).data)

    def destroy(self, request, *args, **kwargs):
        """Delete the workflow with its versions and finished runs; 409 while runs are queued or running."""
        try:
            workflow_delete(workflow=self.get_object())
        except WorkflowBusy as exc:
            return errors_response([{"path": "", "message": str(exc)}], status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request={"application/json": {"description": "Any JSON value; becomes trigger.body"}},
                   responses={202: {"type": "object", "properties": {"run_id": {"type": "integer"}}}})
    @action(detail=True, methods=["post"], parser_classes=PAYLOAD_PARSERS)
    def run(self, request, pk=None):
        workflow = self.get_object()
        body = request.data
        try:
            check_storable(body, "body")
        except LimitExceeded as exc:
            return errors_response([{"path": exc.path, "message": exc.message}])
        try:
            with transaction.atomic():
                run = run_create(workflow=workflow, trigger={"body": body, "kind": TriggerKind.MANUAL.value},
                                 trigger_kind=TriggerKind.MANUAL)
        except RunError as exc:
            return errors_response([{"path": "workflow", "message": str(exc)}], status.HTTP_409_CONFLICT)
        return Response({"run_id": run.id}, status=status.HTTP_202_ACCEPTED)
