"""Connected accounts in the admin: who is connected and whether it still works; tokens are never shown."""
from django.contrib import admin
from django.utils.html import format_html

from connectors.models import ConnectedAccount

from . import services


@admin.register(ConnectedAccount)
class ConnectedAccountAdmin(admin.ModelAdmin):
    list_display = ("login", "provider", "user", "status", "expires_at", "updated_at", "reconnect")
    list_filter = ("status", "provider")
    search_fields = ("login", "user__username", "user__email")
    # The encrypted token fields are left out of every form and list on purpose.
    fields = ("user", "provider", "login", "external_id", "scopes", "status", "status_reason", "expires_at",
              "refresh_expires_at", "created_at", "updated_at")
    readonly_fields = fields
    actions = ["disconnect"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*ConnectedAccount.TOKEN_FIELDS)

    def has_add_permission(self, request) -> bool:
        return False  # accounts come from the connect flow only

    @admin.display(description="Reconnect")
    def reconnect(self, obj: ConnectedAccount) -> str:
        if obj.status != ConnectedAccount.Status.NEEDS_REAUTH:
            return "—"
        return format_html('<a href="{}">reconnect</a>', "/connections/")

    @admin.action(description="Disconnect (revoke at the provider where supported, and delete)")
    def disconnect(self, request, queryset) -> None:
        for account in queryset:
            services.account_disconnect(account=account)
        self.message_user(request, f"Disconnected {len(queryset)} account(s).")

    def delete_model(self, request, obj: ConnectedAccount) -> None:
        services.account_disconnect(account=obj)

    def delete_queryset(self, request, queryset) -> None:
        for account in queryset:
            services.account_disconnect(account=account)
