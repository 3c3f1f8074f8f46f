"""`GET /api/connections/` (the current user's connected accounts, never their tokens) and disconnect."""
from django.shortcuts import get_object_or_404
from django.urls import path
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from connectors.models import ConnectedAccount

from . import services

CONNECT_URL = "/oauth/login/github/"  # POST (with the CSRF token) starts the connect flow


class ConnectedAccountSerializer(serializers.ModelSerializer):
    connect_url = serializers.SerializerMethodField()

    class Meta:
        model = ConnectedAccount
        fields = ["id", "provider", "login", "scopes", "status", "status_reason", "expires_at", "created_at",
                  "updated_at", "connect_url"]
        read_only_fields = fields

    def get_connect_url(self, obj) -> str:
        return CONNECT_URL


class ConnectionListView(APIView):
    def get(self, request):
        accounts = ConnectedAccount.objects.filter(user=request.user).defer(*ConnectedAccount.TOKEN_FIELDS)
        return Response(ConnectedAccountSerializer(accounts, many=True).data)


class ConnectionDisconnectView(APIView):
    def post(self, request, pk: int):
        accounts = ConnectedAccount.objects.defer(*ConnectedAccount.TOKEN_FIELDS)
        account = get_object_or_404(accounts, pk=pk, user=request.user)
        revoked = services.account_disconnect(account=account)
        return Response({"disconnected": True, "revoked": revoked}, status=status.HTTP_200_OK)


urlpatterns = [
    path("", ConnectionListView.as_view(), name="connections-api"),
    path("<int:pk>/disconnect/", ConnectionDisconnectView.as_view(), name="connections-api-disconnect"),
]
