"""Statuses of readings repeated inside one batch are judged against what is stored for their key.

Found by the operator trial (issue 20): an exact re-send of a stored reading, placed after a conflicting copy in
the same batch, was answered ``conflict`` (compared with the conflicting copy) instead of ``duplicate``. Runs on
the test database (SQLite: the ORM path; PostgreSQL in CI: the COPY/staging path).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from fleet.models import TelemetryReading
from fleet.telemetry.ingest import telemetry_ingest
from tests import factories as f
from tests.fleet.test_telemetry_support import reading

pytestmark = pytest.mark.django_db


@pytest.fixture
def at() -> dt.datetime:
    return timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)


def test_an_exact_resend_after_a_conflicting_copy_is_a_duplicate(at):
    bus = f.VehicleFactory()
    stored = reading(at, soc_pct=60.0)
    telemetry_ingest(readings=[stored], vehicle=bus)
    conflicting = reading(at, soc_pct=10.0)

    result = telemetry_ingest(readings=[conflicting, stored, conflicting, stored], vehicle=bus)

    assert result.statuses == ["conflict", "duplicate", "conflict", "duplicate"]
    assert list(TelemetryReading.objects.filter(vehicle=bus).values_list("soc_pct", flat=True)) == [60.0]


def test_two_different_copies_of_a_stored_key_are_both_conflicts_and_new_keys_keep_the_first_copy(at):
    bus = f.VehicleFactory()
    telemetry_ingest(readings=[reading(at, soc_pct=60.0)], vehicle=bus)
    later = at + dt.timedelta(minutes=1)

    result = telemetry_ingest(
        readings=[
            reading(at, soc_pct=10.0),
            reading(at, soc_pct=20.0),
            reading(later, soc_pct=50.0),  # new: the first copy is stored...
            reading(later, soc_pct=51.0),  # ...and a different one conflicts with it
            reading(later, soc_pct=50.0),  # ...and the first again is a duplicate of what is now stored
        ],
        vehicle=bus,
    )

    assert result.statuses == ["conflict", "conflict", "created", "conflict", "duplicate"]
    assert dict(TelemetryReading.objects.filter(vehicle=bus).values_list("recorded_at", "soc_pct")) == {
        at: 60.0,
        later: 50.0,
    }
