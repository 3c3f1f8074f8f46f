"""connectors.net.safe_request against a real HTTP server on 127.0.0.1; refused destinations never connect."""
from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import threading
import time
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ActionError
from connectors.net import (
    BlockedDestination,
    InvalidURL,
    RequestFailed,
    ResponseTooLarge,
    TooManyRedirects,
    check_address,
    redact_url,
    safe_request,
)

from .conftest import _Handler, _Server, _stop, fake_resolver

LOOPBACK_ONLY = ["127.0.0.1/32"]


def get(url, **kwargs):
    kwargs.setdefault("allow_private", False)
    kwargs.setdefault("timeout", 5)
    return safe_request("GET", url, **kwargs)


# --- the happy path -------------------------------------------------------------------------------------------


def test_fetches_from_the_local_server_when_private_addresses_are_allowed(http_server, connections):
    response = get(http_server.url("/json"), allow_private=True)

    assert response.status_code == 200
    assert response.json() == {"hello": "world", "n": 1}
    assert connections == [("127.0.0.1", http_server.port)]


def test_fetches_over_ipv6_loopback_when_allowed(http_server_v6, connections):
    response = get(http_server_v6.url("/text"), allow_private=True)

    assert response.text == "plain text ✓"
    assert http_server_v6.seen[0].headers["Host"] == f"[::1]:{http_server_v6.port}"


def test_sends_params_headers_and_body(http_server):
    response = safe_request(
        "POST", http_server.url("/echo"), allow_private=True, timeout=5,
        params={"q": "a b"}, headers={"X-Thing": "1"}, json={"k": "v"},
    )

    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["query"] == {"q": ["a b"]}
    assert echoed["headers"]["X-Thing"] == "1"
    assert echoed["body"] == '{"k": "v"}'


def test_ignores_proxies_from_the_environment(http_server, monkeypatch, connections):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")

    assert get(http_server.url("/json"), allow_private=True).status_code == 200
    assert connections == [("127.0.0.1", http_server.port)]


# --- refusals, always before connecting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown, kind",
    [
        ("http://127.0.0.1/", "127.0.0.1 is", "loopback"),
        ("http://127.0.0.2:8080/x", "127.0.0.2 is", "loopback"),
        ("http://localhost/", "localhost resolves to 127.0.0.1,", "loopback"),
        ("http://[::1]/", "::1 is", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254 is", "link-local"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is", "loopback"),
        ("http://[fe80::1]/", "fe80::1 is", "link-local"),
        ("http://2130706433/", "2130706433 resolves to 127.0.0.1,", "loopback"),
        ("http://0x7f.1/", "0x7f.1 resolves to 127.0.0.1,", "loopback"),
        ("http://017700000001/", "017700000001 resolves to 127.0.0.1,", "loopback"),
        ("http://10.0.0.1/", "10.0.0.1 is", "private"),
        ("https://192.168.1.1/", "192.168.1.1 is", "private"),
        ("http://172.16.5.4/", "172.16.5.4 is", "private"),
        ("http://[fc00::1]/", "fc00::1 is", "private"),
        ("http://100.64.0.1/", "100.64.0.1 is", "shared"),
        ("http://0.0.0.0/", "0.0.0.0 is", "unspecified"),
        ("http://[::]/", ":: is", "unspecified"),
        ("http://224.0.0.1/", "224.0.0.1 is", "multicast"),
        ("http://240.0.0.1/", "240.0.0.1 is", "reserved"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1:: is", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe is", "link-local"),  # NAT64 of 169.254.169.254
    ],
)
def test_refuses_non_public_destinations_before_connecting(url, shown, kind, connections):
    with pytest.raises(BlockedDestination) as caught:
        get(url)

    message = str(caught.value)
    assert message.startswith(f"refused: {shown}")
    assert kind in message
    assert "set AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow" in message
    assert caught.value.retryable is False
    assert isinstance(caught.value, ActionError)
    assert connections == []


def test_refusal_message_is_the_documented_one():
    with pytest.raises(BlockedDestination, match=r"^refused: 127\.0\.0\.1 is a loopback address \(set "
                                                 r"AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow\)$"):
        get("http://127.0.0.1/")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:70/_x", "ftp://example.com/", "dict://127.0.0.1:11211/"]
)
def test_refuses_schemes_other_than_http_and_https_even_when_private_is_allowed(url, connections):
    with pytest.raises(BlockedDestination, match="only http and https") as caught:
        get(url, allow_private=True)

    assert caught.value.retryable is False
    assert connections == []


@pytest.mark.parametrize("url", ["example.com/path", "http:///nohost", "http://[::1/"])
def test_rejects_malformed_urls(url, connections):
    with pytest.raises(InvalidURL) as caught:
        get(url, allow_private=True)
    assert caught.value.retryable is False
    assert connections == []


def test_refuses_a_public_looking_name_that_resolves_to_a_private_address(connections):
    resolver = fake_resolver({"internal.example.com": ["10.1.2.3"]})

    with pytest.raises(BlockedDestination, match=r"internal\.example\.com resolves to 10\.1\.2\.3, a private"):
        get("https://internal.example.com/", resolver=resolver)
    assert connections == []


def test_refuses_a_name_when_any_of_its_addresses_is_private(connections):
    resolver = fake_resolver({"mixed.example.com": ["93.184.215.14", "127.0.0.1"]})

    with pytest.raises(BlockedDestination, match="resolves to 127.0.0.1"):
        get("http://mixed.example.com/", resolver=resolver)
    assert connections == []


def test_a_name_that_does_not_resolve_is_a_retryable_failure(connections):
    with pytest.raises(RequestFailed, match="could not resolve nowhere.example") as caught:
        get("http://nowhere.example/", resolver=fake_resolver({}))
    assert caught.value.retryable is True
    assert connections == []


# --- pinning -------------------------------------------------------------------------------------------------


def test_connects_to_the_vetted_address_not_a_second_lookup(http_server, connections):
    """DNS rebinding: the name would answer 10.0.0.1 the second time; only one lookup happens, and the
    connection goes to the address that was checked, while the Host header keeps the name."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    calls: list[str] = []
    resolver = fake_resolver({"api.example.test": lambda: next(answers)}, calls)

    response = get(f"http://api.example.test:{http_server.port}/json", resolver=resolver,
                   allowed_networks=LOOPBACK_ONLY)

    assert response.status_code == 200
    assert calls == ["api.example.test"]
    assert connections == [("127.0.0.1", http_server.port)]
    assert http_server.seen[0].headers["Host"] == f"api.example.test:{http_server.port}"


def test_tries_the_next_vetted_address_when_the_first_refuses_the_connection(http_server, connections):
    resolver = fake_resolver({"dual.example.test": ["::1", "127.0.0.1"]})

    response = get(f"http://dual.example.test:{http_server.port}/json", resolver=resolver, allow_private=True)

    assert response.status_code == 200
    assert [host for host, _ in connections] == ["::1", "127.0.0.1"]


def test_allowed_networks_exempt_only_what_they_name(connections):
    with pytest.raises(BlockedDestination, match="169.254.169.254"):
        get("http://169.254.169.254/", allowed_networks=LOOPBACK_ONLY)
    assert connections == []


def test_an_allowed_network_reaches_its_server_while_metadata_and_other_private_addresses_stay_refused(
        http_server, connections):
    allowed = ["127.0.0.0/8"]

    assert get(http_server.url("/json"), allowed_networks=allowed).json() == {"hello": "world", "n": 1}
    for url, reason in [("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
                        ("http://10.0.0.1/", "10.0.0.1 is a private address")]:
        with pytest.raises(BlockedDestination, match=reason):
            get(url, allowed_networks=allowed)

    assert connections == [("127.0.0.1", http_server.port)]
    assert len(http_server.seen) == 1


def test_the_ipv4_mapped_form_of_an_allowed_address_is_allowed_and_connected_to_as_ipv4(http_server, connections):
    response = get(f"http://[::ffff:127.0.0.1]:{http_server.port}/json", allowed_networks=["127.0.0.0/8"])

    assert response.status_code == 200
    assert connections == [("127.0.0.1", http_server.port)]
    assert http_server.seen[0].headers["Host"] == f"[::ffff:127.0.0.1]:{http_server.port}"


def test_a_name_resolving_to_the_ipv4_mapped_form_of_an_allowed_address_is_allowed(http_server, connections):
    resolver = fake_resolver({"internal.example.test": ["::ffff:127.0.0.1"]})

    response = get(f"http://internal.example.test:{http_server.port}/json", allowed_networks=["127.0.0.0/8"],
                   resolver=resolver)

    assert response.status_code == 200
    assert connections == [("127.0.0.1", http_server.port)]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254 is a link-local address in IPv6 form"),
        ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1 is a private address in IPv6 form"),
        ("http://[::ffff:a9fe:a9fe]/", "::ffff:a9fe:a9fe is a link-local address in IPv6 form"),
        # 6to4 and NAT64 wrap the allowed 127.0.0.1 but reach a gateway, not that host: still refused.
        ("http://[2002:7f00:1::]/", "2002:7f00:1:: is a loopback address in IPv6 form"),
        ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1 is a loopback address in IPv6 form"),
    ],
)
def test_ipv6_forms_of_blocked_addresses_stay_refused_next_to_an_allowed_network(url, expected, connections):
    with pytest.raises(BlockedDestination, match=re.escape(expected)):
        get(url, allowed_networks=["127.0.0.0/8"])
    assert connections == []


def test_an_allowed_ipv4_network_does_not_open_the_ipv6_loopback(connections):
    with pytest.raises(BlockedDestination, match=r"::1 is a loopback address"):
        get("http://[::1]/", allowed_networks=["127.0.0.0/8"])
    assert connections == []


# --- redirects -----------------------------------------------------------------------------------------------


def test_follows_redirects_and_keeps_the_history(http_server):
    response = get(http_server.url("/chain/3"), allowed_networks=LOOPBACK_ONLY)

    assert response.status_code == 200
    assert response.text == "end of chain"
    assert [r.status_code for r in response.history] == [302, 302, 302]
    assert response.url == http_server.url("/chain/0")


def test_stops_after_max_redirects(http_server):
    with pytest.raises(TooManyRedirects, match="more than 2 redirects") as caught:
        get(http_server.url("/chain/5"), allowed_networks=LOOPBACK_ONLY, max_redirects=2)
    assert caught.value.retryable is False
    assert len(http_server.seen) == 3


@pytest.mark.parametrize(
    "target, expected",
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254 is a link-local address in IPv6 form"),
        ("http://[::1]/", "::1 is a loopback"),
        ("http://10.0.0.1/admin", "10.0.0.1 is a private"),
        ("http://0x7f.2/", "0x7f.2 resolves to 127.0.0.2, a loopback"),  # the allowlist holds 127.0.0.1 only
        ("http://public.example.com/", "public.example.com resolves to 10.9.9.9, a private"),
        ("file:///etc/passwd", "scheme file:// is not allowed"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "scheme gopher:// is not allowed"),
    ],
)
def test_checks_every_redirect_target_again(http_server, connections, target, expected):
    """The first hop is allowed (the local server is allowlisted); the hop it redirects to must be refused."""
    fake = fake_resolver({"public.example.com": ["10.9.9.9"]})

    def resolve(host, *args):
        # IP literals and numeric spellings go to the real getaddrinfo, which parses them without any DNS.
        return fake(host, *args) if host == "public.example.com" else socket.getaddrinfo(host, *args)

    with pytest.raises(BlockedDestination) as caught:
        get(http_server.url(f"/redirect?to={quote(target, safe='')}"), allowed_networks=LOOPBACK_ONLY,
            resolver=resolve)

    assert expected in str(caught.value)
    assert connections == [("127.0.0.1", http_server.port)]  # the first hop only
    assert len(http_server.seen) == 1


def test_a_redirect_from_a_refused_first_hop_is_never_reached(http_server, connections):
    with pytest.raises(BlockedDestination):
        get(http_server.url("/redirect?to=http://example.com/"))
    assert connections == []
    assert http_server.seen == []


def test_303_turns_a_post_into_a_get_without_body(http_server):
    response = safe_request(
        "POST", http_server.url("/redirect?code=303&to=/echo"), json={"a": 1}, allow_private=True, timeout=5,
    )
    echoed = response.json()
    assert echoed["method"] == "GET"
    assert echoed["body"] == ""
    assert "Content-Type" not in echoed["headers"]


def test_307_keeps_method_and_body(http_server):
    response = safe_request(
        "PUT", http_server.url("/redirect?code=307&to=/echo"), data=b"payload", allow_private=True, timeout=5,
    )
    echoed = response.json()
    assert (echoed["method"], echoed["body"]) == ("PUT", "payload")


def test_credentials_are_dropped_when_a_redirect_changes_origin(http_server):
    resolver = fake_resolver({"127.0.0.1": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    same = get(http_server.url("/redirect?to=/echo"), allow_private=True, resolver=resolver,
               headers={"Authorization": "Bearer s3cret", "X-Keep": "1"})
    assert same.json()["headers"]["Authorization"] == "Bearer s3cret"

    target = f"http://other.example.test:{http_server.port}/echo"
    moved = get(http_server.url(f"/redirect?to={target}"), allow_private=True, resolver=resolver,
                headers={"Authorization": "Bearer s3cret", "X-Keep": "1"})
    headers = moved.json()["headers"]
    assert "Authorization" not in headers
    assert headers["X-Keep"] == "1"
    assert headers["Host"] == f"other.example.test:{http_server.port}"


# --- limits --------------------------------------------------------------------------------------------------


def test_a_slow_server_times_out_within_the_deadline(http_server):
    started = time.monotonic()
    with pytest.raises(RequestFailed, match="timed out after 0.3s") as caught:
        get(http_server.url("/slow?seconds=3"), allow_private=True, timeout=0.3)
    assert time.monotonic() - started < 2
    assert caught.value.retryable is True


def test_timeout_is_required():
    with pytest.raises(ValueError):
        safe_request("GET", "http://example.com/", allow_private=False, timeout=0)


def test_a_body_over_the_cap_is_refused(http_server):
    assert len(get(http_server.url("/big?bytes=1000"), allow_private=True, max_bytes=1000).content) == 1000
    with pytest.raises(ResponseTooLarge, match="larger than 1000 bytes") as caught:
        get(http_server.url("/big?bytes=200000"), allow_private=True, max_bytes=1000)
    assert caught.value.retryable is False


def test_a_closed_port_is_a_retryable_failure(connections):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RequestFailed, match="Connection refused") as caught:
        get(f"http://127.0.0.1:{port}/", allow_private=True)
    assert caught.value.retryable is True


def test_credentials_in_the_url_are_redacted_from_messages():
    assert redact_url("https://user:pw@example.com/x?y=1") == "https://example.com/x?y=1"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RequestFailed) as caught:
        get(f"http://user:pw@127.0.0.1:{port}/", allow_private=True)
    assert "pw" not in str(caught.value)


# --- TLS: SNI and certificate checked against the name while connecting to the pinned address ---------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("pinned.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def https_server(certificate):
    cert_file, key_file = certificate
    server = _Server(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.sni_seen = []
    context.sni_callback = lambda sock, name, ctx: server.sni_seen.append(name)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    _stop(server, thread)


def test_https_verifies_the_certificate_against_the_name_not_the_pinned_address(https_server, certificate,
                                                                                connections):
    port = https_server.server_address[1]
    resolver = fake_resolver({"pinned.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})

    response = get(f"https://pinned.test:{port}/json", allow_private=True, resolver=resolver,
                   verify=str(certificate[0]))

    assert response.json() == {"hello": "world", "n": 1}
    assert https_server.sni_seen == ["pinned.test"]
    assert https_server.seen[0].headers["Host"] == f"pinned.test:{port}"
    assert connections == [("127.0.0.1", port)]

    with pytest.raises(RequestFailed, match="TLS error") as caught:
        get(f"https://other.test:{port}/json", allow_private=True, resolver=resolver, verify=str(certificate[0]))
    assert caught.value.retryable is False


# --- the address classifier ----------------------------------------------------------------------------------


PRIVATE_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10",
              "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"]


@given(st.sampled_from(PRIVATE_V4).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda i: ipaddress.ip_network(net)[i])))
def test_every_non_public_ipv4_address_is_refused_in_every_spelling(addr):
    assert check_address(addr) is not None
    assert check_address(ipaddress.IPv6Address(f"::ffff:{addr}")) is not None
    assert check_address(ipaddress.IPv6Address((0x2002 << 112) | (int(addr) << 80))) is not None


@pytest.mark.parametrize("text", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(text):
    assert check_address(ipaddress.ip_address(text)) is None
