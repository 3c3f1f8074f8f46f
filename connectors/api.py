"""`/api/actions/` (the action catalogue), `/api/secrets/` (the caller's own secrets vault, SPEC §6) and
`/api/providers/` (OAuth2 providers as data, staff only, SPEC §12)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import DjangoModelPermissions, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from automation.api import BoundedJSONParser, errors_response
from runs.permissions import NotReadOnlyUser
from workflows.limits import MAX_SECRET_NAME_LENGTH, MAX_SECRET_VALUE_BYTES

from .models import Provider
from .oauth2.providers import PRESETS
from .registry import default_registry
from .secrets import NAME_PATTERN, SecretSummary, secret_check, secret_delete, secret_list, secret_set

ACTIONS = inline_serializer("Action", many=True, fields={
    "name": serializers.CharField(),
    "family": serializers.CharField(),
    "title": serializers.CharField(),
    "description": serializers.CharField(),
    "input_schema": serializers.JSONField(help_text="JSON Schema of the action's inputs"),
    "output_schema": serializers.JSONField(help_text="JSON Schema of the action's output"),
})


class ActionListView(APIView):
    """Every action with the JSON Schema of its inputs (the builder renders its forms from these)."""

    @extend_schema(responses={200: ACTIONS})
    def get(self, request):
        return Response(default_registry().describe_all())


def _secret_fields() -> dict:
    return {"name": serializers.CharField(), "created_at": serializers.DateTimeField(),
            "updated_at": serializers.DateTimeField()}


SECRET = inline_serializer("Secret", fields=_secret_fields())
SECRETS = inline_serializer("SecretList", many=True, fields=_secret_fields())
SECRET_WRITE = inline_serializer("SecretWrite", fields={
    "name": serializers.RegexField(NAME_PATTERN.pattern, max_length=MAX_SECRET_NAME_LENGTH),
    "value": serializers.CharField(write_only=True, help_text=f"at most {MAX_SECRET_VALUE_BYTES:,} bytes (UTF-8)"),
})


class NotReadOnlyVaultUser(NotReadOnlyUser):
    message = "read-only users (group 'viewers') cannot change secrets"


def _summary(secret: SecretSummary) -> dict:
    return {"name": secret.name, "created_at": secret.created_at, "updated_at": secret.updated_at}


class SecretListView(APIView):
    """The caller's own vault, for everyone (superusers included): names and dates, never values."""

    permission_classes = [IsAuthenticated, NotReadOnlyVaultUser]
    parser_classes = [BoundedJSONParser]

    @extend_schema(responses={200: SECRETS})
    def get(self, request):
        return Response([_summary(s) for s in secret_list(owner_id=request.user.id)])

    @extend_schema(request=SECRET_WRITE, responses={201: SECRET})
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            return errors_response([{"path": "", "message": 'expected a JSON object {"name": ..., "value": ...}'}])
        problems = secret_check(name=body.get("name"), value=body.get("value"))
        if problems:
            return errors_response([{"path": p.path, "message": p.message} for p in problems])
        secret = secret_set(owner_id=request.user.id, name=body["name"], value=body["value"])
        return Response(_summary(secret), status=status.HTTP_201_CREATED)


class SecretDetailView(APIView):
    permission_classes = [IsAuthenticated, NotReadOnlyVaultUser]

    @extend_schema(responses={204: None})
    def delete(self, request, name: str):
        if not secret_delete(owner_id=request.user.id, name=name):
            return errors_response([{"path": "", "message": f"you have no secret named '{name}'"}],
                                   status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProviderSerializer(serializers.ModelSerializer):
    """A provider; `client_secret` is write-only (required on create, kept when left out of an update) and
    `preset` (write-only: google, slack, microsoft, github) fills in the endpoints and scopes not given."""

    client_secret = serializers.CharField(write_only=True, required=False, trim_whitespace=False,
                                          max_length=2000, style={"input_type": "password"})
    preset = serializers.ChoiceField(choices=sorted(PRESETS), write_only=True, required=False)
    scopes = serializers.ListField(child=serializers.CharField(max_length=200), max_length=100, required=False)

    class Meta:
        model = Provider
        fields = ["id", "name", "title", "authorize_url", "token_url", "userinfo_url", "scopes", "client_id",
                  "client_secret", "pkce", "extra_authorize_params", "userinfo_id_field", "userinfo_login_field",
                  "preset", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_internal_value(self, data):
        preset = data.get("preset") if isinstance(data, dict) else None
        if preset in PRESETS and self.instance is None:
            data = {**PRESETS[preset], **data}
        return super().to_internal_value(data)

    def validate_extra_authorize_params(self, value):
        if not isinstance(value, dict) or not all(isinstance(v, (str, int, bool)) for v in value.values()):
            raise serializers.ValidationError("expected an object of parameter names to string values")
        return value

    def validate(self, attrs):
        attrs.pop("preset", None)
        if self.instance is None and not attrs.get("client_secret"):
            raise serializers.ValidationError({"client_secret": "a new provider needs its client secret"})
        return attrs


class ProviderModelPermissions(DjangoModelPermissions):
    """Staff act through the model permissions, reading included (SPEC §11); superusers have them all."""

    perms_map = {**DjangoModelPermissions.perms_map, "GET": ["%(app_label)s.view_%(model_name)s"],
                 "HEAD": ["%(app_label)s.view_%(model_name)s"]}


class ProviderViewSet(viewsets.ModelViewSet):
    """OAuth2 providers users can connect accounts at (staff only); client secrets are never returned."""

    queryset = Provider.objects.defer("client_secret")
    serializer_class = ProviderSerializer
    permission_classes = [IsAuthenticated, IsAdminUser, ProviderModelPermissions]
    parser_classes = [BoundedJSONParser]
    pagination_class = None
