"""Credentials: vehicle keys only upload telemetry, staff tokens are not vehicle keys (nor the reverse), both
are revocable, and guessing passwords is throttled per address, across every worker process."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from fleet.telemetry.keys import vehicle_key_revoke
from tests.factories import DEFAULT_PASSWORD
from tests.fleet.test_telemetry_support import readings
from tests.hardening.conftest import bearer_headers, token_headers

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/telemetry/batch/"
TOKEN = "/api/v1/auth/token/"
LOGIN_RATE = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])


def batch(vehicle=None, count: int = 3) -> str:
    rows = readings(timezone.now() - dt.timedelta(minutes=10), count, step_s=60)
    if vehicle is not None:
        rows = [{**row, "vehicle": vehicle.pk} for row in rows]
    return json.dumps({"readings": rows})


def upload(client, body: str, headers: dict):
    return client.post(BATCH, data=body, content_type="application/json", **headers)


def test_a_vehicle_key_uploads_its_own_telemetry(world, client):
    response = upload(client, batch(), bearer_headers(world["vehicle_key"]))

    assert response.status_code == 200, response.content
    assert response.json()["counts"]["created"] == 3


def test_a_vehicle_key_cannot_upload_for_another_vehicle(world, client):
    response = upload(client, batch(vehicle=world["vehicle_b"]), bearer_headers(world["vehicle_key"]))

    assert response.status_code == 403


def test_a_staff_token_is_not_a_vehicle_key_and_a_vehicle_key_is_not_a_token(world, client):
    as_bearer = upload(client, batch(), bearer_headers(world["staff_token"]))
    key_as_token = upload(client, batch(), token_headers(world["vehicle_key"]))
    key_on_the_registry = client.get("/api/v1/vehicles/", **bearer_headers(world["vehicle_key"]))
    key_as_token_on_the_registry = client.get("/api/v1/vehicles/", **token_headers(world["vehicle_key"]))

    assert (as_bearer.status_code, key_as_token.status_code) == (401, 401)
    assert (key_on_the_registry.status_code, key_as_token_on_the_registry.status_code) == (401, 401)


def test_staff_upload_only_for_vehicles_they_name_in_their_depots(world, client):
    own = upload(client, batch(vehicle=world["vehicle_a"]), token_headers(world["staff_token"]))
    unnamed = upload(client, batch(), token_headers(world["staff_token"]))
    foreign = upload(client, batch(vehicle=world["vehicle_b"]), token_headers(world["staff_token"]))

    assert own.status_code == 200 and own.json()["counts"]["created"] == 3
    assert unnamed.status_code == 200 and unnamed.json()["counts"]["rejected"] == 3
    assert foreign.status_code in (200, 403)
    if foreign.status_code == 200:
        assert foreign.json()["counts"]["created"] == 0


def test_a_deleted_token_and_a_revoked_key_stop_working_at_once(world, client):
    assert client.get("/api/v1/vehicles/", **token_headers(world["staff_token"])).status_code == 200
    assert upload(client, batch(), bearer_headers(world["vehicle_key"])).status_code == 200

    Token.objects.filter(key=world["staff_token"]).delete()
    vehicle_key_revoke(key=world["vehicle_a"].api_keys.get(prefix=world["vehicle_key"].split("_")[1]))

    assert client.get("/api/v1/vehicles/", **token_headers(world["staff_token"])).status_code == 401
    assert upload(client, batch(), bearer_headers(world["vehicle_key"])).status_code == 401


# --- throttling -------------------------------------------------------------------------------------------


def ask_for_token(client, password: str = "wrong", address: str = "203.0.113.7", **extra):
    return client.post(
        TOKEN,
        {"username": "staff_a", "password": password},
        REMOTE_ADDR=address,
        content_type="application/json",
        **extra,
    )


def test_the_token_view_refuses_a_guesser_after_the_login_rate(world, client):
    answers = [ask_for_token(client).status_code for _ in range(LOGIN_RATE)]
    throttled = ask_for_token(client, password=DEFAULT_PASSWORD)  # even the right password: the budget is spent
    spoofed = ask_for_token(client, HTTP_X_FORWARDED_FOR="198.51.100.99")  # a forged header is not an address
    elsewhere = ask_for_token(client, password=DEFAULT_PASSWORD, address="192.0.2.50")

    assert answers == [400] * LOGIN_RATE
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert "throttled" in throttled.json()["detail"].lower()
    assert spoofed.status_code == 429
    assert elsewhere.status_code == 200 and elsewhere.json()["token"]


def test_the_admin_login_refuses_a_guesser_after_the_login_rate(world, client):
    def attempt(password="wrong"):
        return client.post("/admin/login/", {"username": "manager_a", "password": password}, REMOTE_ADDR="203.0.113.8")

    answers = [attempt().status_code for _ in range(LOGIN_RATE)]
    throttled = attempt(password=DEFAULT_PASSWORD)

    assert answers == [200] * LOGIN_RATE  # the form again, with its error
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/login/", REMOTE_ADDR="203.0.113.8").status_code == 200  # the page still shows


def test_the_token_view_and_the_admin_login_share_one_budget(world, client):
    for _ in range(LOGIN_RATE):
        client.post("/admin/login/", {"username": "manager_a", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")

    assert ask_for_token(client, address="203.0.113.9").status_code == 429


@pytest.mark.services
def test_the_login_count_is_shared_by_separate_processes_through_redis(world, client, redis_url):
    """Another process (another gunicorn worker) sees this one's attempts: the count lives in Redis."""
    for _ in range(LOGIN_RATE - 1):
        assert ask_for_token(client, address="203.0.113.10").status_code == 400
    other_worker = """
import django; django.setup()
from django.test import RequestFactory
from config.throttling import LoginRateThrottle
request = RequestFactory().post("/api/v1/auth/token/", REMOTE_ADDR="203.0.113.10")
print([LoginRateThrottle().allow_request(request, None) for _ in range(2)])
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_URL": redis_url}

    result = subprocess.run(
        [sys.executable, "-c", other_worker], env=env, capture_output=True, text=True, timeout=60, check=True
    )

    assert result.stdout.strip().splitlines()[-1] == "[True, False]"  # the last attempt left, then none
    assert ask_for_token(client, address="203.0.113.10").status_code == 429  # and this process sees theirs
