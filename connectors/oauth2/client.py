"""The OAuth2 protocol (RFC 6749 authorization-code and refresh grants, RFC 7636 PKCE) for any Provider row.

The RFC work (token request bodies, parsing token answers and OAuth errors, PKCE verifier and S256 challenge,
URI encoding) is oauthlib's; the bytes travel through `connectors.net.safe_request`, the one outbound path
with its private-address guard. requests-oauthlib's OAuth2Session is not used because it would open its own
connections around that guard.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2 import OAuth2Error, WebApplicationClient
from oauthlib.oauth2.rfc6749.utils import list_to_scope

from connectors.base import ActionError
from connectors.models import Provider
from connectors.net import redact_url, safe_request

TIMEOUT = 30.0
MAX_BYTES = 1024 * 1024
VERIFIER_LENGTH = 64  # RFC 7636 allows 43..128 characters


class GrantRejected(Exception):
    """The provider refused the grant (code or refresh token used, expired or revoked): only a new connect flow
    helps."""


class ProviderUnavailable(Exception):
    """The provider could not be asked, or answered 5xx: trying again later may work."""


@dataclass(frozen=True)
class Identity:
    external_id: str
    login: str


def _client(provider: Provider, **kwargs: Any) -> WebApplicationClient:
    return WebApplicationClient(provider.client_id, **kwargs)


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    client = WebApplicationClient("")
    verifier = client.create_code_verifier(VERIFIER_LENGTH)
    return verifier, client.create_code_challenge(verifier, "S256")


def authorization_url(provider: Provider, *, redirect_uri: str, state: str, code_challenge: str | None) -> str:
    """The authorize URL of RFC 6749 §4.1.1 (+ RFC 7636 §4.3). Built with oauthlib's URI helper rather than
    prepare_request_uri, which refuses http:// outright; which endpoints are acceptable is the operator's
    choice (and connectors.net's policy for the calls this process makes)."""
    params = [("response_type", "code"), ("client_id", provider.client_id), ("redirect_uri", redirect_uri)]
    if provider.scopes:
        params.append(("scope", list_to_scope(list(provider.scopes))))
    params.append(("state", state))
    if code_challenge:
        params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
    params += [(str(k), str(v)) for k, v in (provider.extra_authorize_params or {}).items()]
    return add_params_to_uri(provider.authorize_url, params)


def _post_token(provider: Provider, body: str, what: str) -> dict:
    try:
        response = _send("POST", provider.token_url, data=body, headers={
            "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"})
    except ActionError as exc:
        raise ProviderUnavailable(f"token endpoint unreachable: {exc}") from None
    if response.status_code >= 500:
        raise ProviderUnavailable(f"token endpoint answered {response.status_code}")
    try:
        # Parses JSON or form-encoded answers; raises the RFC 6749 §5.2 error (some providers send it with 200).
        return dict(_client(provider).parse_request_body_response(response.text))
    except OAuth2Error as exc:
        description = exc.description or "no access token in the answer"
        raise GrantRejected(f"{what} refused ({exc.error}: {description})") from None
    except ValueError:
        raise GrantRejected(f"{what} refused (HTTP {response.status_code}: the answer is not a token)") from None


def exchange_code(provider: Provider, *, code: str, redirect_uri: str, code_verifier: str | None) -> dict:
    """The token answer for an authorization code (client secret in the body: client_secret_post)."""
    body = _client(provider).prepare_request_body(
        code=code, redirect_uri=redirect_uri, code_verifier=code_verifier,
        client_secret=provider.client_secret,
    )
    return _post_token(provider, body, "code exchange")


def refresh_grant(provider: Provider, *, refresh_token: str) -> dict:
    """A new token answer for a refresh token; single-use refresh tokens stop working once this returns."""
    body = _client(provider).prepare_refresh_body(
        refresh_token=refresh_token, client_id=provider.client_id, client_secret=provider.client_secret,
    )
    return _post_token(provider, body, "token refresh")


def _member(payload: dict, names: tuple[str, ...]) -> str:
    for name in names:
        value = payload.get(name)
        if value not in (None, ""):
            return str(value)
    return ""


def fetch_identity(provider: Provider, *, access_token: str) -> Identity:
    """Who the token belongs to, from `userinfo_url`: an id and a login (or name, or e-mail)."""
    try:
        response = _send("GET", provider.userinfo_url,
                         headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
    except ActionError as exc:
        raise ProviderUnavailable(f"userinfo endpoint unreachable: {exc}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code >= 400 or not isinstance(payload, dict):
        raise ProviderUnavailable(f"userinfo endpoint answered {response.status_code} without a JSON object")
    id_fields = (provider.userinfo_id_field,) if provider.userinfo_id_field else ("id", "sub")
    login_fields = (provider.userinfo_login_field,) if provider.userinfo_login_field else (
        "login", "name", "email", "preferred_username")
    identity = Identity(_member(payload, id_fields)[:64], _member(payload, login_fields)[:100])
    if not identity.external_id or not identity.login:
        raise ProviderUnavailable(
            f"userinfo at {redact_url(provider.userinfo_url)} holds no {'/'.join(id_fields)} "
            f"or no {'/'.join(login_fields)}")
    return identity


def _send(method: str, url: str, **kwargs: Any):
    return safe_request(
        method, url, allow_private=settings.AUTOMATION_HTTP_ALLOW_PRIVATE, timeout=TIMEOUT, max_redirects=0,
        max_bytes=MAX_BYTES, allowed_networks=settings.AUTOMATION_HTTP_ALLOWED_NETWORKS, **kwargs,
    )
