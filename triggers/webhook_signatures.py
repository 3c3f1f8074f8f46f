"""Webhook signature schemes: the generic one, GitHub's and Stripe's. Pure functions, no Django.

Every comparison is constant-time (`hmac.compare_digest`, on bytes: a header is text decoded as Latin-1 and may
hold any byte); every failure is a `SignatureError` whose message can be shown to the sender without revealing
the secret or the expected digest.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

STRIPE_TOLERANCE_SECONDS = 300

# The header each preset reads, as it arrives lower-cased in our header mapping.
SIGNATURE_HEADERS = {
    "generic": "x-signature-256",
    "github": "x-hub-signature-256",
    "stripe": "stripe-signature",
}


class SignatureError(Exception):
    """The request is not signed with the workflow's secret (the gateway answers 401)."""


def hmac_sha256_hex(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def verify(preset: str, secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
    """Raise SignatureError unless `body` carries a valid signature under `preset`; `headers` keys lower-case."""
    header = SIGNATURE_HEADERS.get(preset)
    if header is None:
        raise SignatureError(f"unknown signature scheme {preset!r}")
    value = headers.get(header)
    if not value:
        raise SignatureError(f"missing {_title(header)} header")
    if not value.isascii():
        raise SignatureError(f"malformed signature: {_title(header)} holds characters other than ASCII")
    if preset == "stripe":
        _verify_stripe(secret, value, body, time.time() if now is None else now)
    else:
        _verify_prefixed(secret, value, body, header)


def _verify_prefixed(secret: str, value: str, body: bytes, header: str) -> None:
    """`sha256=<hex>` over the raw body (the generic scheme and GitHub's)."""
    scheme, _, digest = value.strip().partition("=")
    if scheme.lower() != "sha256" or not digest:
        raise SignatureError(f"{_title(header)} must look like sha256=<hex digest>")
    expected = hmac_sha256_hex(secret, body).encode("ascii")
    if not hmac.compare_digest(expected, digest.strip().lower().encode("ascii")):
        raise SignatureError(f"{_title(header)} does not match the body")


def _verify_stripe(secret: str, value: str, body: bytes, now: float) -> None:
    """`t=<unix time>,v1=<hex>[,v1=...]` over `<t>.<body>`, within a 5-minute tolerance.

    Reference: https://docs.stripe.com/webhooks#verify-manually
    """
    timestamp, candidates = None, []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            timestamp = item
        elif key == "v1" and item:
            candidates.append(item.lower())
    if timestamp is None or not timestamp.isdigit() or len(timestamp) > 12 or not candidates:
        raise SignatureError("Stripe-Signature must carry t=<timestamp> and at least one v1=<signature>")
    if abs(now - int(timestamp)) > STRIPE_TOLERANCE_SECONDS:
        raise SignatureError(f"Stripe-Signature timestamp is more than {STRIPE_TOLERANCE_SECONDS} s from now")
    expected = hmac_sha256_hex(secret, timestamp.encode("ascii") + b"." + body).encode("ascii")
    # Check every candidate, so the time taken does not tell which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.encode("ascii"))
    if not matched:
        raise SignatureError("Stripe-Signature does not match the body")


def stripe_header(secret: str, body: bytes, timestamp: int) -> str:
    """The header Stripe would send; for tests and for operators checking their setup."""
    return f"t={timestamp},v1={hmac_sha256_hex(secret, str(timestamp).encode() + b'.' + body)}"


def _title(header: str) -> str:
    return "-".join(part.capitalize() for part in header.split("-"))
