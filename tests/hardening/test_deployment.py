"""Deployment: production settings pass Django's deploy checks, every answer carries the security headers,
and bodies over the limits are refused with JSON before anything parses them."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from tests.fleet.test_telemetry_support import readings
from tests.hardening.conftest import token_headers

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_the_deploy_checks_without_a_warning():
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "SECRET_KEY": "a-long-random-production-like-secret-key-for-the-check-" + "x" * 20,
        "ALLOWED_HOSTS": "evfleet.example",
    }
    env.pop("DEBUG", None)

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("url", ["/api/v1/vehicles/", "/api/v1/does-not-exist/", "/admin/login/"])
def test_every_answer_carries_the_security_headers(world, client, url):
    response = client.get(url, **token_headers(world["manager_token"]))

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_an_api_body_over_the_limit_is_a_413_with_json(world, client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50_000

    response = client.post(
        "/api/v1/vehicles/",
        data=json.dumps({"plate": "x" * 60_000}),
        content_type="application/json",
        **token_headers(world["manager_token"]),
    )

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == "The request body exceeds 50000 bytes."


def test_telemetry_batches_have_their_own_larger_limit(world, client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    settings.EVFLEET_TELEMETRY_MAX_BYTES = 1_000_000
    rows = readings(timezone.now() - dt.timedelta(hours=1), 200, step_s=10)
    body = json.dumps({"readings": [{**row, "vehicle": world["vehicle_a"].pk} for row in rows]})
    assert 10_000 < len(body) < 1_000_000

    accepted = client.post(
        "/api/v1/telemetry/batch/", data=body, content_type="application/json", **token_headers(world["staff_token"])
    )
    settings.EVFLEET_TELEMETRY_MAX_BYTES = 20_000
    refused = client.post(
        "/api/v1/telemetry/batch/", data=body, content_type="application/json", **token_headers(world["staff_token"])
    )

    assert accepted.status_code == 200, accepted.content[:300]
    assert accepted.json()["counts"]["created"] == 200
    assert refused.status_code == 413
    assert refused.json()["detail"]


def test_a_form_too_large_for_django_is_a_413_json_on_the_api(world, client, settings):
    """Where Django itself raises RequestDataTooBig (a view that reads request.body), the API answers JSON."""
    from django.core.exceptions import RequestDataTooBig

    from config.middleware import BodySizeLimitMiddleware

    middleware = BodySizeLimitMiddleware(lambda request: None)
    request = type("R", (), {"path": "/api/v1/blocks/", "META": {}})()

    response = middleware.process_exception(request, RequestDataTooBig("too big"))

    assert response.status_code == 413
    assert json.loads(response.content)["detail"].startswith("The request body exceeds")
