"""`GET /api/connections/` (the caller's connected accounts, never their tokens) and disconnect."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from connectors.models import ConnectedAccount

from . import tokens


class ConnectedAccountSerializer(serializers.ModelSerializer):
    connect_url = serializers.SerializerMethodField(help_text="POST here (with the CSRF token) to reconnect")

    class Meta:
        model = ConnectedAccount
        fields = ["id", "provider", "login", "scopes", "status", "status_reason", "expires_at", "created_at",
                  "updated_at", "connect_url"]
        read_only_fields = fields

    def get_connect_url(self, obj: ConnectedAccount) -> str:
        return f"/connections/{obj.provider}/connect/"


class ConnectionListView(APIView):
    @extend_schema(responses={200: ConnectedAccountSerializer(many=True)})
    def get(self, request):
        accounts = ConnectedAccount.objects.filter(user=request.user).defer(*ConnectedAccount.TOKEN_FIELDS)
        return Response(ConnectedAccountSerializer(accounts, many=True).data)


class ConnectionDisconnectView(APIView):
    @extend_schema(request=None, responses={200: inline_serializer("Disconnected", fields={
        "disconnected": serializers.BooleanField(), "revoked": serializers.BooleanField()})})
    def post(self, request, pk: int):
        accounts = ConnectedAccount.objects.defer(*ConnectedAccount.TOKEN_FIELDS)
        account = get_object_or_404(accounts, pk=pk, user=request.user)
        revoked = tokens.account_disconnect(account=account)
        return Response({"disconnected": True, "revoked": revoked}, status=status.HTTP_200_OK)


urlpatterns = [
    path("", ConnectionListView.as_view(), name="connections-api"),
    path("<int:pk>/disconnect/", ConnectionDisconnectView.as_view(), name="connections-api-disconnect"),
]
