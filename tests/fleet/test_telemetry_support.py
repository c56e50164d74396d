"""Shared helpers of the telemetry tests (no tests here): reading builders and a URLconf.

Until config/urls.py mounts ``fleet.telemetry.urls`` under /api/v1/, the tests (and the gunicorn started by
the crash test, through ``application`` below) use this URLconf, which adds it to the project's.
"""

from __future__ import annotations

import datetime as dt

import django
from django.apps import apps

if not apps.ready:  # imported by gunicorn before Django is set up
    django.setup()

from django.urls import Resolver404, include, path, resolve

from config.urls import urlpatterns as project_urlpatterns

BATCH_URL = "/api/v1/telemetry/batch/"
LIVE_URL = "/api/v1/telemetry/live/"
DUTY_URL = "/api/v1/telemetry/duty-cycles/"

try:
    resolve(BATCH_URL, urlconf="config.urls")
    urlpatterns = project_urlpatterns
except Resolver404:
    urlpatterns = [path("api/v1/", include("fleet.telemetry.urls")), *project_urlpatterns]

URLCONF = __name__


def reading(at: dt.datetime, **overrides) -> dict:
    """A plausible bus reading at ``at`` (JSON-ready)."""
    values = {
        "recorded_at": at.isoformat(),
        "soc_pct": 72.5,
        "odometer_km": 15_234.2,
        "latitude": 29.0729,
        "longitude": -110.9559,
        "speed_kmh": 31.0,
        "pack_voltage_v": 652.0,
        "pack_current_a": 85.0,
        "pack_temp_c": 31.5,
        "energy_discharged_kwh": 41_200.5,
        "energy_charged_kwh": 40_950.1,
        "charging_state": "none",
    }
    values.update(overrides)
    return values


def readings(start: dt.datetime, count: int, *, step_s: float = 1.0, **overrides) -> list[dict]:
    return [reading(start + dt.timedelta(seconds=i * step_s), **overrides) for i in range(count)]


def application(environ, start_response):
    """WSGI entry for gunicorn in the crash test: the project's app with this URLconf."""
    global _wsgi_app
    if _wsgi_app is None:
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        _wsgi_app = get_wsgi_application()
        settings.ROOT_URLCONF = URLCONF
    return _wsgi_app(environ, start_response)


_wsgi_app = None


def fast_password_hashing(settings):
    """Use as an autouse fixture: the shared fixtures create users, and PBKDF2 costs seconds on a busy box."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
