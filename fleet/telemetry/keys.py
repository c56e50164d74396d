"""Per-vehicle API keys: issue (shown once), rotate, revoke; and the DRF authentication that accepts them.

A key looks like ``evk_<12 hex prefix>_<43 url-safe chars>`` and travels as ``Authorization: Bearer <key>``.
The database keeps the prefix (to find the row) and a SHA-256 of the whole key. A plain fast hash is
right here: the secret is 256 random bits, not a password, so there is nothing to brute-force, and the
check runs on every upload.

A vehicle key authenticates only the telemetry batch endpoint (``VehicleKeyAuthentication`` is listed on
that view alone, never in ``DEFAULT_AUTHENTICATION_CLASSES``). Its principal has no user, no depot role
and no permissions: ``fleet.scoping.restrict`` gives it nothing anywhere else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from functools import partial

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from fleet.models import Vehicle, VehicleApiKey
from fleet.telemetry import broker_auth

KEY_PREFIX = "evk_"
_PREFIX_HEX_CHARS = 12
_LAST_USED_RESOLUTION = dt.timedelta(minutes=5)


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def vehicle_key_issue(*, vehicle: Vehicle, created_by=None, label: str = "") -> tuple[VehicleApiKey, str]:
    """A new key for ``vehicle``. Returns the row and the full key, which is never retrievable again."""
    prefix = secrets.token_hex(_PREFIX_HEX_CHARS // 2)
    raw_key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = VehicleApiKey(vehicle=vehicle, prefix=prefix, key_hash=_hash(raw_key), label=label, created_by=created_by)
    key.full_clean()
    key.save()
    # The broker learns the key after the commit (a rolled-back key must not log in anywhere).
    transaction.on_commit(partial(broker_auth.on_key_issued, key, raw_key))
    return key, raw_key


@transaction.atomic
def vehicle_key_revoke(*, key: VehicleApiKey, at: dt.datetime | None = None) -> VehicleApiKey:
    """Stop ``key`` at ``at`` (now by default). Revoking twice keeps the earlier time."""
    at = at or timezone.now()
    if key.revoked_at is None or key.revoked_at > at:
        key.revoked_at = at
        key.save(update_fields=["revoked_at"])
        transaction.on_commit(partial(broker_auth.on_key_revoked, key))
    return key


@transaction.atomic
def vehicle_key_rotate(
    *, vehicle: Vehicle, created_by=None, grace: dt.timedelta = dt.timedelta(0), label: str = ""
) -> tuple[VehicleApiKey, str]:
    """Issue a new key and retire the vehicle's other keys after ``grace`` (the time for the bus to switch)."""
    Vehicle.objects.select_for_update().filter(pk=vehicle.pk).first()
    retire_at = timezone.now() + grace
    for old in VehicleApiKey.objects.filter(vehicle=vehicle).filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=retire_at)
    ):
        vehicle_key_revoke(key=old, at=retire_at)
    return vehicle_key_issue(vehicle=vehicle, created_by=created_by, label=label)


def vehicle_key_authenticate(raw_key: str, *, now: dt.datetime | None = None) -> VehicleApiKey | None:
    """The active key matching ``raw_key`` (with its vehicle loaded), or None."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    prefix, _sep, secret = raw_key[len(KEY_PREFIX) :].partition("_")
    if len(prefix) != _PREFIX_HEX_CHARS or not secret:
        return None
    key = VehicleApiKey.objects.select_related("vehicle").filter(prefix=prefix).first()
    now = now or timezone.now()
    if key is None or not hmac.compare_digest(key.key_hash, _hash(raw_key)) or not key.is_active_at(now):
        return None
    if key.last_used_at is None or key.last_used_at < now - _LAST_USED_RESOLUTION:
        # A conditional UPDATE at most every few minutes: the hot path stays read-only.
        VehicleApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - _LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    return key


class VehiclePrincipal(AnonymousUser):
    """``request.user`` for a vehicle key: authenticated, but no user, no role, no permission."""

    is_authenticated = True  # type: ignore[assignment]
    is_vehicle = True  # what the rate limits (config/rate_limits.py) tell vehicles from users by

    def __init__(self, vehicle: Vehicle):
        super().__init__()
        self.vehicle = vehicle

    def __str__(self) -> str:
        return f"vehicle {self.vehicle.fleet_number}"


class VehicleKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer evk_...``. Other Bearer tokens are left to the next authentication class."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer":
            return None
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            return None
        if not raw_key.startswith(KEY_PREFIX):
            return None
        key = vehicle_key_authenticate(raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked vehicle key.")
        return VehiclePrincipal(key.vehicle), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="vehicle"'


class VehicleKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = VehicleKeyAuthentication
    name = "vehicleKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A per-vehicle API key (evk_...), issued from the admin. Uploads that vehicle's "
            "telemetry and nothing else.",
        }
