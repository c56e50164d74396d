"""A vehicle whose readings enter its depot's geofence is announced once per arrival, after the upload commits,
whatever the input (the ingest service is the one behind HTTP, CSV and MQTT)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.telemetry.arrivals import distance_m, vehicle_entered_depot
from fleet.telemetry.ingest import telemetry_ingest
from tests import factories as f

pytestmark = pytest.mark.django_db

DEPOT_AT = (29.0729, -110.9559)  # Hermosillo
INSIDE = (29.0738, -110.9559)  # 100 m north
OUTSIDE = (29.0900, -110.9559)  # 1.9 km north
T0 = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def entries():
    """What fleet announces, without charging's receiver (tested in tests/charging/test_telemetry_arrivals.py)."""
    from charging.arrivals import record_arrival_from_telemetry

    seen = []

    def listen(sender, *, entry, **kwargs):
        seen.append(entry)

    vehicle_entered_depot.disconnect(dispatch_uid="charging.telemetry_arrival")
    vehicle_entered_depot.connect(listen, dispatch_uid="test.listen")
    yield seen
    vehicle_entered_depot.disconnect(dispatch_uid="test.listen")
    vehicle_entered_depot.connect(record_arrival_from_telemetry, dispatch_uid="charging.telemetry_arrival")


@pytest.fixture
def bus():
    depot = f.DepotFactory(latitude=DEPOT_AT[0], longitude=DEPOT_AT[1], geofence_radius_m=200.0)
    return f.VehicleFactory(organization=depot.organization, home_depot=depot)


def _reading(minute: int, where: tuple[float, float] | None, soc: float | None = None) -> dict:
    reading: dict = {"recorded_at": (T0 + dt.timedelta(minutes=minute)).isoformat()}
    if where is not None:
        reading.update(latitude=where[0], longitude=where[1])
    if soc is not None:
        reading["soc_pct"] = soc
    return reading


def _upload(bus, readings, capture):
    with capture(execute=True):
        return telemetry_ingest(readings=readings, vehicle=bus, now=T0 + dt.timedelta(days=1))


def test_the_reading_that_enters_the_fence_is_the_arrival_and_only_that_one(
    bus, entries, django_capture_on_commit_callbacks
):
    _upload(bus, [_reading(0, OUTSIDE, 40.0)], django_capture_on_commit_callbacks)
    readings = [_reading(1, OUTSIDE, 39.5), _reading(2, INSIDE, 39.0), *(_reading(m, INSIDE) for m in range(3, 9))]

    _upload(bus, readings, django_capture_on_commit_callbacks)
    _upload(bus, [_reading(m, INSIDE, 39.0) for m in range(10, 20)], django_capture_on_commit_callbacks)

    (entry,) = entries
    assert entry.vehicle_id == bus.pk and entry.depot_id == bus.home_depot_id
    assert entry.recorded_at == T0 + dt.timedelta(minutes=2)
    assert entry.soc_pct == 39.0


def test_leaving_and_coming_back_is_another_arrival_even_across_batches(
    bus, entries, django_capture_on_commit_callbacks
):
    _upload(
        bus, [_reading(0, OUTSIDE), _reading(1, INSIDE, 50.0), _reading(2, OUTSIDE)], django_capture_on_commit_callbacks
    )
    _upload(bus, [_reading(30, INSIDE, 45.0)], django_capture_on_commit_callbacks)  # back, in a batch of its own

    assert [(e.recorded_at, e.soc_pct) for e in entries] == [
        (T0 + dt.timedelta(minutes=1), 50.0),
        (T0 + dt.timedelta(minutes=30), 45.0),
    ]


def test_a_reading_without_soc_takes_the_batchs_latest_earlier_soc(bus, entries, django_capture_on_commit_callbacks):
    _upload(
        bus,
        [_reading(0, OUTSIDE, 61.0), _reading(1, None, 60.5), _reading(2, INSIDE)],
        django_capture_on_commit_callbacks,
    )

    assert [e.soc_pct for e in entries] == [60.5]

    _upload(bus, [_reading(3, OUTSIDE, 60.0), _reading(4, INSIDE)], django_capture_on_commit_callbacks)
    assert [e.soc_pct for e in entries] == [60.5, 60.0]


def test_re_sent_readings_back_fills_and_unknown_first_positions_announce_nothing(
    bus, entries, django_capture_on_commit_callbacks
):
    _upload(bus, [_reading(0, INSIDE, 70.0)], django_capture_on_commit_callbacks)  # first ever: parked there?
    _upload(bus, [_reading(5, OUTSIDE), _reading(6, INSIDE, 69.0)], django_capture_on_commit_callbacks)
    assert len(entries) == 1

    _upload(bus, [_reading(5, OUTSIDE), _reading(6, INSIDE, 69.0)], django_capture_on_commit_callbacks)  # re-sent
    _upload(bus, [_reading(1, OUTSIDE), _reading(2, INSIDE, 71.0)], django_capture_on_commit_callbacks)  # older
    assert len(entries) == 1


def test_a_depot_without_a_fence_announces_nothing(entries, django_capture_on_commit_callbacks):
    depot = f.DepotFactory(latitude=DEPOT_AT[0], longitude=DEPOT_AT[1])  # no radius
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)

    _upload(bus, [_reading(0, OUTSIDE), _reading(1, INSIDE)], django_capture_on_commit_callbacks)

    assert entries == []


def test_batches_without_positions_cost_no_query_and_with_positions_one(bus, django_capture_on_commit_callbacks):
    telemetry_ingest(readings=[_reading(0, OUTSIDE, 50.0)], vehicle=bus, now=T0 + dt.timedelta(days=1))
    with CaptureQueriesContext(connection) as without:
        telemetry_ingest(
            readings=[_reading(m, None, 50.0) for m in range(1, 50)], vehicle=bus, now=T0 + dt.timedelta(days=1)
        )
    with CaptureQueriesContext(connection) as positioned:
        telemetry_ingest(
            readings=[_reading(m, OUTSIDE, 50.0) for m in range(50, 99)], vehicle=bus, now=T0 + dt.timedelta(days=1)
        )

    fence_reads = [q["sql"] for q in positioned.captured_queries if "geofence_radius_m" in q["sql"]]
    assert len(fence_reads) == 1
    assert not any("geofence_radius_m" in q["sql"] for q in without.captured_queries)
    assert len(positioned.captured_queries) == len(without.captured_queries) + 1


def test_distance_is_great_circle_metres():
    assert distance_m(*DEPOT_AT, *INSIDE) == pytest.approx(100.1, abs=0.5)
    assert distance_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(111_195, rel=1e-3)
