"""Vehicle API keys from the admin: issued and shown once, rotated with a grace period, revoked; the live column."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from django.utils import timezone, translation

from fleet.models import Depot, Vehicle, VehicleApiKey
from fleet.telemetry.admin import (
    VehicleApiKeyAdmin,
    issue_vehicle_api_key,
    revoke_vehicle_api_keys,
    rotate_vehicle_api_keys,
)
from fleet.telemetry.ingest import telemetry_ingest
from fleet.telemetry.keys import vehicle_key_authenticate
from fleet.telemetry.selectors import live_state_summary, with_live_state
from tests.fleet.test_telemetry_support import fast_password_hashing

pytestmark = pytest.mark.django_db
_fast_hashing = pytest.fixture(autouse=True)(fast_password_hashing)


def admin_request(user):
    request = RequestFactory().post("/admin/fleet/vehicle/")
    request.user = user
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def shown_keys(response) -> list[str]:
    html = response.content.decode()
    return [chunk.split("</code>")[0] for chunk in html.split("<code>")[1:]]


def test_a_manager_issues_keys_for_their_depot_only_and_sees_each_once(two_depots):
    request = admin_request(two_depots["manager_a"])
    vehicles = Vehicle.objects.filter(pk__in=[two_depots["vehicle_a"].pk, two_depots["vehicle_b"].pk])

    response = issue_vehicle_api_key(None, request, vehicles)

    keys = shown_keys(response)
    assert len(keys) == 1 and keys[0].startswith("evk_")
    assert response["Cache-Control"] == "no-store"
    assert vehicle_key_authenticate(keys[0]).vehicle == two_depots["vehicle_a"]
    assert not VehicleApiKey.objects.filter(vehicle=two_depots["vehicle_b"]).exists()
    assert keys[0] not in str(list(VehicleApiKey.objects.values()))  # only the hash is stored


def test_rotation_keeps_the_old_key_for_the_grace_period_then_revocation_ends_it(two_depots):
    request = admin_request(two_depots["manager_a"])
    vehicles = Vehicle.objects.filter(pk=two_depots["vehicle_a"].pk)
    old = shown_keys(issue_vehicle_api_key(None, request, vehicles))[0]

    new = shown_keys(rotate_vehicle_api_keys(None, request, vehicles))[0]

    assert vehicle_key_authenticate(old) is not None
    assert vehicle_key_authenticate(old, now=timezone.now() + dt.timedelta(hours=2)) is None
    assert vehicle_key_authenticate(new, now=timezone.now() + dt.timedelta(hours=2)) is not None

    revoke_vehicle_api_keys(None, request, VehicleApiKey.objects.all())
    assert vehicle_key_authenticate(new) is None


def test_staff_cannot_issue_keys_and_the_key_list_is_scoped(two_depots):
    request = admin_request(two_depots["staff_a"])

    response = issue_vehicle_api_key(None, request, Vehicle.objects.filter(pk=two_depots["vehicle_a"].pk))

    assert shown_keys(response) == []
    assert not VehicleApiKeyAdmin(VehicleApiKey, None).get_queryset(request).exists()


def test_the_live_state_column(two_depots):
    vehicle = two_depots["vehicle_a"]
    assert live_state_summary(vehicle) == "—"
    at = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
    telemetry_ingest(
        readings=[{"recorded_at": at.isoformat(), "soc_pct": 71.6, "odometer_km": 15234.2, "charging_state": "dc"}],
        vehicle=vehicle,
    )

    row = with_live_state(Vehicle.objects.filter(pk=vehicle.pk)).get()

    # "Last seen" in the home depot's zone, labelled: 15:00 UTC is 08:00 in Hermosillo, 16:00 in Berlin (CET).
    Depot.objects.filter(pk=vehicle.home_depot_id).update(time_zone="America/Hermosillo")
    row = with_live_state(Vehicle.objects.filter(pk=vehicle.pk).select_related("home_depot")).get()
    with translation.override("en"):
        assert live_state_summary(row) == "72 % · 15,234 km · 03/10/2026 08:00 MST (dc)"
    Depot.objects.filter(pk=vehicle.home_depot_id).update(time_zone="Europe/Berlin")
    row = with_live_state(Vehicle.objects.filter(pk=vehicle.pk).select_related("home_depot")).get()
    with translation.override("es-mx"):
        assert live_state_summary(row) == "72 % · 15,234 km · 10/03/2026 16:00 CET (dc)"
