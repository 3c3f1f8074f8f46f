"""The Connections page: connect GitHub (a POST to social-auth's begin view), see status, disconnect."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_POST

from connectors.models import ConnectedAccount

from . import services

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Connections · Flowforge</title></head>
<body>
<h1>Connections</h1>
{% for message in messages %}<p class="message {{ message.tags }}">{{ message }}</p>{% endfor %}
<table>
  <tr><th>Provider</th><th>Account</th><th>Scopes</th><th>Status</th><th>Token expires</th><th></th></tr>
  {% for account in accounts %}
  <tr id="connection-{{ account.id }}">
    <td>{{ account.provider }}</td><td>{{ account.login }}</td><td>{{ account.scopes|join:", " }}</td>
    <td>{{ account.get_status_display }}{% if account.status_reason %}: {{ account.status_reason }}{% endif %}</td>
    <td>{{ account.expires_at|default:"never" }}</td>
    <td>
      <form method="post" action="/connections/{{ account.id }}/disconnect/">{% csrf_token %}
        <button type="submit">Disconnect</button></form>
    </td>
  </tr>
  {% empty %}<tr><td colspan="6">No connected accounts yet.</td></tr>
  {% endfor %}
</table>
<form method="post" action="/oauth/login/github/" id="connect-github">{% csrf_token %}
  <input type="hidden" name="next" value="/connections/">
  <button type="submit">{% if needs_reauth %}Reconnect{% else %}Connect{% endif %} GitHub</button>
</form>
</body></html>
"""


@login_required
def connection_list(request):
    accounts = list(ConnectedAccount.objects.filter(user=request.user).defer(*ConnectedAccount.TOKEN_FIELDS))
    template = engines["django"].from_string(PAGE)
    needs_reauth = any(a.status == ConnectedAccount.Status.NEEDS_REAUTH for a in accounts)
    return TemplateResponse(request, template, {"accounts": accounts, "needs_reauth": needs_reauth})


@login_required
@require_POST
def connection_disconnect(request, pk: int):
    accounts = ConnectedAccount.objects.defer(*ConnectedAccount.TOKEN_FIELDS)
    account = get_object_or_404(accounts, pk=pk, user=request.user)
    login = account.login
    revoked = services.account_disconnect(account=account)
    note = "" if revoked else " (GitHub did not confirm revoking access; you can also revoke it in GitHub's settings)"
    messages.success(request, f"Disconnected GitHub account {login}{note}.")
    return redirect("/connections/")


urlpatterns = [
    path("", connection_list, name="connections"),
    path("<int:pk>/disconnect/", connection_disconnect, name="connection-disconnect"),
]
