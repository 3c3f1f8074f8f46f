"""The Connections page (`/connections/`): every provider with Connect, the user's accounts with their state and
Disconnect, and the connect flow's two legs (`<provider>/connect/`, `<provider>/callback/`)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from connectors.models import ConnectedAccount, Provider

from . import client, flow, tokens
from .providers import provider_get, provider_list

SESSION_KEY = "oauth2_pending"
# Pending flows kept per session (a few browser tabs); the oldest is dropped beyond this.
MAX_PENDING = 5


def _provider_or_404(name: str) -> Provider:
    provider = provider_get(name=name)
    if provider is None:
        raise Http404(f"no provider '{name}'")
    return provider


@login_required
def connection_list(request: HttpRequest) -> HttpResponse:
    accounts = list(ConnectedAccount.objects.filter(user=request.user).defer(*ConnectedAccount.TOKEN_FIELDS))
    rows = []
    for provider in provider_list():
        mine = [a for a in accounts if a.provider == provider.name]
        rows.append({"provider": provider, "accounts": mine,
                     "needs_reauth": any(a.status == ConnectedAccount.Status.NEEDS_REAUTH for a in mine)})
    return TemplateResponse(request, "connections/index.html", {"providers": rows, "accounts": accounts})


@login_required
@require_POST
def connection_connect(request: HttpRequest, provider: str) -> HttpResponse:
    chosen = _provider_or_404(provider)
    redirect_uri = request.build_absolute_uri(f"/connections/{chosen.name}/callback/")
    url, state, pending = flow.connect_begin(provider=chosen, redirect_uri=redirect_uri)
    states = dict(request.session.get(SESSION_KEY) or {})
    states[state] = pending.as_dict()
    request.session[SESSION_KEY] = dict(list(states.items())[-MAX_PENDING:])
    return redirect(url)


def _spend_state(request: HttpRequest, state: str, provider: str) -> flow.Pending | None:
    """The pending flow for `state` (removed from the session whatever the answer: a state is single-use)."""
    states = dict(request.session.get(SESSION_KEY) or {})
    pending = states.pop(state, None) if state else None
    request.session[SESSION_KEY] = states
    if pending is None or pending.get("provider") != provider:
        return None
    return flow.Pending(**pending)


@login_required
@require_GET
def connection_callback(request: HttpRequest, provider: str) -> HttpResponse:
    chosen = _provider_or_404(provider)
    pending = _spend_state(request, request.GET.get("state", ""), chosen.name)
    if pending is None:
        return HttpResponseForbidden("This connect attempt is unknown, expired or already used (state mismatch). "
                                     "Start again from /connections/.")
    if "error" in request.GET or not request.GET.get("code"):
        reason = request.GET.get("error_description") or request.GET.get("error") or "no code in the answer"
        messages.error(request, f"{chosen.display_name} did not authorise the connection: {reason}")
        return redirect("/connections/")
    try:
        account = flow.connect_finish(user=request.user, provider=chosen, code=request.GET["code"], pending=pending)
    except tokens.AccountTaken as exc:
        messages.error(request, f"Not connected: {exc}.")
        return redirect("/connections/")
    except (client.GrantRejected, client.ProviderUnavailable) as exc:
        messages.error(request, f"Connecting {chosen.display_name} failed: {exc}")
        return redirect("/connections/")
    messages.success(request, f"Connected {chosen.display_name} account {account.login} "
                              f"(use it as connection '{account.provider}:{account.login}').")
    return redirect("/connections/")


@login_required
@require_POST
def connection_disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    accounts = ConnectedAccount.objects.defer(*ConnectedAccount.TOKEN_FIELDS)
    account = get_object_or_404(accounts, pk=pk, user=request.user)
    provider = provider_get(name=account.provider)
    title = provider.display_name if provider is not None else account.provider
    login = account.login
    revoked = tokens.account_disconnect(account=account)
    note = ""
    if account.provider in tokens.REVOKERS and not revoked:
        note = f" ({title} did not confirm revoking access; you can also revoke it in {title}'s settings)"
    messages.success(request, f"Disconnected {title} account {login}{note}.")
    return redirect("/connections/")


urlpatterns = [
    path("", connection_list, name="connections"),
    path("<int:pk>/disconnect/", connection_disconnect, name="connection-disconnect"),
    path("<slug:provider>/connect/", connection_connect, name="connection-connect"),
    path("<slug:provider>/callback/", connection_callback, name="connection-callback"),
]
