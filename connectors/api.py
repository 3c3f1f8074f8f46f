from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .registry import default_registry

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
