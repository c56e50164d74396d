"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"`` with the endpoint's secret.

Pure (no Django). A receiver recomputes the signature from the ``X-Evfleet-Timestamp`` header and the raw
body, compares in constant time, and refuses a timestamp far from its own clock (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Evfleet-Signature"
TIMESTAMP_HEADER = "X-Evfleet-Timestamp"
SCHEME = "sha256"
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    """A fresh endpoint secret: 32 random bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body`` keyed with ``secret`` (UTF-8)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str, body: bytes, timestamp: str, received: str, *, now: float | None = None, tolerance_s: int = 300
) -> bool:
    """Whether ``received`` signs ``body`` at ``timestamp`` (seconds since the epoch, as sent) and the
    timestamp is within ``tolerance_s`` of ``now``."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, sent_at, body), received)
