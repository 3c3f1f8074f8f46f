"""The one outbound HTTP path: every action that calls out goes through `safe_request`.

What it guarantees (the habits of healthchecks' `hc/lib/curl.py`, tightened):

* only http and https;
* the host is resolved once, every resolved address is vetted, and the TCP connection is pinned to the vetted
  address, so a DNS answer cannot change between the check and the connect (DNS rebinding). The Host header
  and TLS SNI / certificate verification still use the host name from the URL;
* private, loopback, link-local, shared (CGNAT), multicast, reserved and unspecified addresses are refused,
  including IPv4 embedded in IPv6 (`::ffff:169.254.169.254`, 6to4, NAT64) and the numeric spellings the C
  resolver accepts (`2130706433`, `0x7f.1`, `017700000001`), because the check runs on what getaddrinfo
  returned, not on the text of the URL — unless the operator set AUTOMATION_HTTP_ALLOW_PRIVATE=1, or listed the
  address's network in AUTOMATION_HTTP_ALLOWED_NETWORKS (`allowed_networks`: one internal service can be reached
  while 169.254.169.254 stays refused). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 host itself:
  it is matched against the list, and connected to, in its IPv4 form;
* redirects are followed by hand, each hop checked again, at most `max_redirects` of them;
* one deadline (`timeout` seconds) covers resolution, connecting, every hop and reading the body;
* bodies are read as a stream and refused past `max_bytes` (after decompression, so a gzip bomb stops too);
* environment proxies and ~/.netrc are ignored (a proxy would resolve the name itself and undo the pinning).

Every failure is an ActionError, so callers need no `except` of their own: BlockedDestination, InvalidURL,
TooManyRedirects and ResponseTooLarge are permanent; RequestFailed (DNS, connection, timeout) is retryable.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any, Callable, Iterable
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util import parse_url

from connectors.base import ActionError

__all__ = [
    "ALLOW_PRIVATE_HINT",
    "BlockedDestination",
    "DEFAULT_MAX_BYTES",
    "InvalidURL",
    "RequestFailed",
    "ResponseTooLarge",
    "TooManyRedirects",
    "check_address",
    "in_networks",
    "redact_url",
    "resolve_checked",
    "safe_request",
]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
ALLOW_PRIVATE_HINT = "set AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow"
ALLOWED_SCHEMES = ("http", "https")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Dropped when a redirect leaves the origin, as browsers and requests do.
CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")

Resolver = Callable[..., list]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class BlockedDestination(ActionError):
    """The URL (or a redirect) points somewhere the policy forbids; no connection to it was made."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class InvalidURL(ActionError):
    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class TooManyRedirects(ActionError):
    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class ResponseTooLarge(ActionError):
    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class RequestFailed(ActionError):
    """DNS, connection, TLS or timeout failure: another attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message, retryable=retryable)


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if any(addr in net for net in _NAT64):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def check_address(addr: IPAddress) -> str | None:
    """Why `addr` is not a public unicast address (e.g. "a loopback address"), or None when it is."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            reason = check_address(inner)
            return f"{reason} in IPv6 form ({inner})" if reason else None
    if addr.is_unspecified:
        return "an unspecified address"
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_multicast:
        return "a multicast address"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if addr.is_reserved:
        return "a reserved address"
    if addr.is_private:
        return "a private address"
    if not addr.is_global:
        return "a non-public address"
    return None


def _parse_networks(networks: Iterable[Any]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in networks]


def _unmapped(addr: IPAddress) -> IPAddress:
    """`::ffff:a.b.c.d` is the IPv4 host a.b.c.d (RFC 4291 2.5.5.2); other addresses are returned as they are."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def in_networks(addr: IPAddress, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether `addr`, or the IPv4 host it maps, lies in one of `networks`.

    Only the mapped form counts as the same host: a 6to4 or NAT64 address is another host (a gateway's), so it
    is never exempted by an IPv4 network, while check_address still refuses it for what it embeds.
    """
    plain = _unmapped(addr)
    return any(addr in net or plain in net for net in networks)


def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        infos = resolver(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RequestFailed(f"could not resolve {host}: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        raw = info[4][0]
        # getaddrinfo may append a zone to link-local IPv6 ("fe80::1%eth0").
        addr = ipaddress.ip_address(raw.split("%", 1)[0])
        if addr not in addresses:
            addresses.append(addr)
    if not addresses:
        raise RequestFailed(f"could not resolve {host}: no addresses")
    return addresses


def _vet(
    host: str,
    port: int,
    *,
    allow_private: bool,
    allowed_networks: list,
    resolver: Resolver,
) -> list[IPAddress]:
    """Resolve `host` and return the addresses it may be connected to, or raise BlockedDestination.

    Every address of the answer must pass, not just the first, so any of them is safe to pin to.
    """
    addresses = _resolve(host, port, resolver)
    if allow_private:
        return _pinnable(addresses)
    for addr in addresses:
        if in_networks(addr, allowed_networks):
            continue
        reason = check_address(addr)
        if reason is None:
            continue
        try:
            literal = ipaddress.ip_address(host.strip("[]")) == addr
        except ValueError:
            literal = False
        subject = f"{host} is" if literal else f"{host} resolves to {addr},"
        raise BlockedDestination(f"refused: {subject} {reason} ({ALLOW_PRIVATE_HINT})")
    return _pinnable(addresses)


def _pinnable(addresses: list[IPAddress]) -> list[IPAddress]:
    # Connect to the IPv4 form of a mapped address: what was vetted, and reachable where IPv6 sockets are v6-only.
    unique: list[IPAddress] = []
    for addr in map(_unmapped, addresses):
        if addr not in unique:
            unique.append(addr)
    return unique


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address vetted for the current hop instead of resolving the URL's host again."""

    pinned: IPAddress | None = None

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if self.pinned is None:  # never happens through safe_request; refuse rather than resolve freely
            raise BlockedDestination("refused: connection was not vetted")
        hostname = host_params["host"]
        host_params["host"] = str(self.pinned)
        if host_params["scheme"] == "https":
            # SNI and certificate verification against the name, not the address (ssl's check_hostname).
            pool_kwargs["server_hostname"] = hostname
        return host_params, pool_kwargs


def _host_header(scheme: str, host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port in (None, default) else f"{name}:{port}"


def _origin(parsed) -> tuple:
    scheme = (parsed.scheme or "").lower()
    return scheme, (parsed.host or "").lower(), parsed.port or (443 if scheme == "https" else 80)


def _redirect_method(status: int, method: str) -> str:
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def _read_capped(response: requests.Response, max_bytes: int, deadline: float, url: str) -> None:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            response.close()
            raise ResponseTooLarge(f"response from {url} is larger than {max_bytes} bytes")
        if time.monotonic() > deadline:
            response.close()
            raise RequestFailed(f"timed out reading the response from {url}")
        chunks.append(chunk)
    # What Response.content would have done, with the cap applied.
    response._content = b"".join(chunks)
    response._content_consumed = True
    response.close()


def _connect_failed(exc: requests.exceptions.RequestException) -> bool:
    """True when the error happened before anything was sent, so another address may be tried."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is a subclass


def _describe(exc: requests.exceptions.RequestException) -> str:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NewConnectionError):
        return str(reason).split("): ", 1)[-1]
    return str(reason or exc)


def _send_pinned(session, adapter, prepared, addresses, deadline, timeout, max_bytes, send_kwargs):
    url = redact_url(prepared.url)
    for index, address in enumerate(addresses):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RequestFailed(f"timed out after {timeout:g}s requesting {url}")
        adapter.pinned = address
        try:
            response = session.send(prepared, allow_redirects=False, stream=True, timeout=remaining, **send_kwargs)
            _read_capped(response, max_bytes, deadline, url)
            return response
        except requests.exceptions.SSLError as exc:
            raise RequestFailed(f"TLS error talking to {url}: {_describe(exc)}", retryable=False) from None
        except requests.exceptions.RequestException as exc:
            if _connect_failed(exc) and index + 1 < len(addresses):
                continue  # e.g. "localhost" answered ::1 first but the server listens on 127.0.0.1 only
            if isinstance(exc, requests.exceptions.Timeout) or (exc.args and isinstance(exc.args[0], ReadTimeoutError)):
                raise RequestFailed(f"timed out after {timeout:g}s requesting {url}") from None
            raise RequestFailed(f"request to {url} failed: {_describe(exc)}") from None
    raise AssertionError("unreachable: _vet returns at least one address")


def resolve_checked(
    host: str,
    port: int,
    *,
    allow_private: bool,
    allowed_networks: Iterable[Any] = (),
    resolver: Resolver = socket.getaddrinfo,
) -> list[IPAddress]:
    """Resolve `host` once under safe_request's policy; the addresses a client that is not HTTP may connect to.

    For database drivers and the like: connect to one of these addresses, never to the name again, so the DNS
    answer cannot change between the check and the connect. Raises BlockedDestination or RequestFailed.
    """
    return _vet(host.strip("[]"), port, allow_private=allow_private,
                allowed_networks=_parse_networks(allowed_networks), resolver=resolver)


def redact_url(url: str) -> str:
    """The URL without its user:password part, for logs and messages."""
    try:
        parsed = parse_url(url)
    except ValueError:  # LocationParseError; the URL is then refused elsewhere with a better message
        return url
    return parsed._replace(auth=None).url if parsed.auth else url


def safe_request(
    method: str,
    url: str,
    *,
    allow_private: bool,
    timeout: float,
    max_redirects: int = 5,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_networks: Iterable[Any] = (),
    resolver: Resolver = socket.getaddrinfo,
    **requests_kwargs: Any,
) -> requests.Response:
    """Send one HTTP request (following redirects) under the outbound policy; return the read response.

    `timeout` is one deadline in seconds for the whole exchange. `allowed_networks` (CIDRs or addresses) are
    exempt from the private-address check — an operator's known internal service, or a test server.
    `resolver` has socket.getaddrinfo's signature; tests swap it to make a name resolve where they want.
    `requests_kwargs` go to `requests.Request` (headers, params, json, data, auth, ...) except `verify` and
    `cert`, which go to sending; `allow_redirects`, `stream`, `proxies` and `timeout` are decided here.
    The returned response has its body read (`.content`, `.text`, `.json()` work); `response.history` lists
    the redirects followed, and `response.url` is the final URL.
    """
    if timeout is None or timeout <= 0:
        raise ValueError("safe_request needs a positive timeout")
    for forbidden in ("allow_redirects", "stream", "proxies", "timeout"):
        if forbidden in requests_kwargs:
            raise TypeError(f"safe_request decides {forbidden!r} itself")
    send_kwargs = {key: requests_kwargs.pop(key) for key in ("verify", "cert") if key in requests_kwargs}
    networks = _parse_networks(allowed_networks)
    deadline = time.monotonic() + timeout
    history: list[requests.Response] = []

    with requests.Session() as session:
        session.trust_env = False  # no proxies from the environment, no ~/.netrc credentials
        adapter = _PinnedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        request = requests.Request(method.upper(), url, **requests_kwargs)
        request.headers = CaseInsensitiveDict(request.headers or {})

        while True:
            try:
                prepared = session.prepare_request(request)
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as exc:
                raise InvalidURL(str(exc)) from None
            except (requests.exceptions.RequestException, ValueError) as exc:  # e.g. a newline in a header
                raise ActionError(f"invalid request: {exc}", retryable=False) from None
            current = prepared.url
            parsed = parse_url(current)
            scheme = (parsed.scheme or "").lower()
            if scheme not in ALLOWED_SCHEMES:
                raise BlockedDestination(f"refused: scheme {scheme or '(none)'}:// is not allowed, only http and https")
            if not parsed.host:
                raise InvalidURL(f"invalid URL {current!r}: no host")
            host = parsed.host.strip("[]")
            port = parsed.port or (443 if scheme == "https" else 80)

            addresses = _vet(host, port, allow_private=allow_private, allowed_networks=networks,
                             resolver=resolver)
            prepared.headers["Host"] = _host_header(scheme, host, parsed.port)
            response = _send_pinned(session, adapter, prepared, addresses, deadline, timeout, max_bytes,
                                    send_kwargs)

            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                response.history = history
                return response
            if len(history) >= max_redirects:
                raise TooManyRedirects(f"more than {max_redirects} redirects, last to {redact_url(location)}")
            history.append(response)

            target = urljoin(current, location)
            new_method = _redirect_method(response.status_code, request.method)
            if new_method != request.method:
                request.method = new_method
                request.data, request.json, request.files = [], None, []
                for name in ("Content-Type", "Content-Length", "Transfer-Encoding"):
                    request.headers.pop(name, None)
            try:
                target_parsed = parse_url(target)
            except ValueError:
                raise InvalidURL(f"{redact_url(current)} redirected to an invalid URL {location!r}") from None
            if _origin(target_parsed) != _origin(parsed):
                for name in CREDENTIAL_HEADERS:
                    request.headers.pop(name, None)
                request.auth = None
            request.url = target
            request.params = {}  # already part of the first URL; the Location is taken as given
