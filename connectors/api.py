from rest_framework.response import Response
from rest_framework.views import APIView

from .registry import default_registry


class ActionListView(APIView):
    """Every action with the JSON Schema of its inputs (the builder renders its forms from these)."""

    def get(self, request):
        return Response(default_registry().describe_all())
