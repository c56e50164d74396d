"""Fixtures of the city data tests: two depots with readings, tokens for their people."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from fleet.telemetry.ingest import telemetry_ingest
from tests.fleet.test_telemetry_support import fast_password_hashing, readings

_fast_hashing = pytest.fixture(autouse=True)(fast_password_hashing)


def token_client(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api_client


@pytest.fixture
def recorded(two_depots):
    """Twenty minutes of one-minute readings for each depot's bus, ending a minute ago; B's at a distinct SoC."""
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=21)
    telemetry_ingest(readings=readings(start, 20, step_s=60, soc_pct=61.0), vehicle=two_depots["vehicle_a"])
    telemetry_ingest(readings=readings(start, 20, step_s=60, soc_pct=33.3), vehicle=two_depots["vehicle_b"])
    return start
