"""The ingest service: re-sends and gaps (any database); on PostgreSQL the optimistic COPY's fallbacks and two
uploads racing each other."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from fleet.models import TelemetryReading, VehicleLiveState
from fleet.telemetry import ingest
from fleet.telemetry.ingest import telemetry_ingest
from tests import factories as f
from tests.fleet.test_telemetry_support import reading, readings

# Fixed when the module loads: two calls in one test must give the same instant on however slow a machine.
_START = timezone.now().replace(microsecond=0) - dt.timedelta(hours=3)


def start() -> dt.datetime:
    return _START


def test_a_batch_overlapping_stored_readings_takes_the_careful_path(db):
    bus = f.VehicleFactory()
    first = readings(start(), 10)
    telemetry_ingest(readings=first, vehicle=bus)
    # Half re-sent, one of them changed, half new: the range probe sees stored readings -> staging path.
    second = first[5:] + readings(start() + dt.timedelta(seconds=10), 5)
    second[0] = {**second[0], "soc_pct": 1.0}

    result = telemetry_ingest(readings=second, vehicle=bus)

    assert result.statuses == ["conflict"] + ["duplicate"] * 4 + ["created"] * 5
    assert TelemetryReading.objects.filter(vehicle=bus).count() == 15


def test_readings_with_missing_values_travel_as_nulls(db):
    bus = f.VehicleFactory()
    sparse = reading(start(), charging_state=None, latitude=None, longitude=None)
    del sparse["pack_temp_c"]

    telemetry_ingest(readings=[sparse], vehicle=bus)

    stored = TelemetryReading.objects.get(vehicle=bus)
    assert (stored.latitude, stored.pack_temp_c, stored.charging_state) == (None, None, None)
    assert stored.soc_pct == 72.5


def test_a_lost_race_inside_a_callers_transaction_rolls_back_to_a_savepoint(postgres, monkeypatch):
    bus = f.VehicleFactory()
    batch = readings(start(), 20)
    telemetry_ingest(readings=batch, vehicle=bus)
    # Pretend the range probe missed the stored rows, as when a concurrent upload commits right after it.
    monkeypatch.setattr(ingest, "_any_stored_in_span", lambda *args: False)

    result = telemetry_ingest(readings=batch, vehicle=bus)

    assert result.counts["duplicate"] == 20
    assert TelemetryReading.objects.filter(vehicle=bus).count() == 20


@pytest.mark.django_db(transaction=True)
def test_a_lost_race_in_its_own_transaction_is_redone(postgres, monkeypatch):
    bus = f.VehicleFactory()
    first = start()
    batch = readings(first, 20)
    telemetry_ingest(readings=batch[:10], vehicle=bus)
    monkeypatch.setattr(ingest, "_any_stored_in_span", lambda *args: False)

    result = telemetry_ingest(readings=batch, vehicle=bus)

    assert result.statuses == ["duplicate"] * 10 + ["created"] * 10
    assert VehicleLiveState.objects.get(vehicle=bus).recorded_at == first + dt.timedelta(seconds=19)


@pytest.mark.django_db(transaction=True)
def test_two_uploads_of_the_same_batch_at_once_store_it_once(postgres):
    """A retry racing its original: both answer, neither deadlocks, each reading is created exactly once."""
    bus = f.VehicleFactory()
    batch = readings(start(), 2000)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def upload():
        try:
            barrier.wait()
            results.append(telemetry_ingest(readings=batch, vehicle=bus))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    created = [r.counts["created"] for r in results]
    duplicate = [r.counts["duplicate"] for r in results]
    assert sum(created) == 2000 and sum(duplicate) == 2000
    assert TelemetryReading.objects.filter(vehicle=bus).count() == 2000
