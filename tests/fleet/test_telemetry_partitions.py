"""The readings table partitioned by UTC day on PostgreSQL: partitions ahead, readings where they belong,
retention that folds and drops whole partitions."""

from __future__ import annotations

import datetime as dt
import io
import statistics

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from fleet.models import DailyDutyCycle, TelemetryMinute, TelemetryReading
from fleet.telemetry.ingest import telemetry_ingest
from fleet.telemetry.partitions import (
    DEFAULT_PARTITION,
    day_partitions,
    is_partitioned,
    partition_name,
    telemetry_partitions_ensure,
)
from tests import factories as f


def partition_of(vehicle_id: int) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT tableoid::regclass::text FROM {TelemetryReading._meta.db_table} WHERE vehicle_id = %s",
            [vehicle_id],
        )
        return {row[0] for row in cursor.fetchall()}


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def utc_day(days_ago: int) -> dt.datetime:
    return (
        (timezone.now() - dt.timedelta(days=days_ago))
        .astimezone(dt.UTC)
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )


def test_readings_go_to_their_days_partition_and_old_ones_to_the_default(postgres):
    assert is_partitioned()
    today = timezone.now().astimezone(dt.UTC).date()
    assert {today + dt.timedelta(days=n) for n in range(15)} <= set(day_partitions())
    recent_bus, old_bus = f.VehicleFactory(), f.VehicleFactory()

    telemetry_ingest(readings=[{"recorded_at": timezone.now().isoformat(), "soc_pct": 50.0}], vehicle=recent_bus)
    telemetry_ingest(readings=[{"recorded_at": utc_day(200).isoformat(), "soc_pct": 60.0}], vehicle=old_bus)
    again = telemetry_ingest(readings=[{"recorded_at": utc_day(200).isoformat(), "soc_pct": 60.0}], vehicle=old_bus)

    assert partition_of(recent_bus.pk) == {partition_name(timezone.now().astimezone(dt.UTC).date())}
    assert partition_of(old_bus.pk) == {DEFAULT_PARTITION}
    assert again.statuses == ["duplicate"]  # the primary key holds across the parent


def test_creating_a_day_moves_its_readings_out_of_the_default_partition(postgres):
    bus = f.VehicleFactory()
    day = utc_day(200)
    sent = [{"recorded_at": (day + dt.timedelta(hours=h)).isoformat(), "soc_pct": 40.0 + h} for h in range(3)]
    telemetry_ingest(readings=sent, vehicle=bus)
    assert partition_of(bus.pk) == {DEFAULT_PARTITION}

    created = telemetry_partitions_ensure(now=day + dt.timedelta(hours=12), days_back=0, days_ahead=0)

    assert created == [day.date()]
    assert partition_of(bus.pk) == {partition_name(day.date())}
    assert list(TelemetryReading.objects.filter(vehicle=bus).values_list("soc_pct", flat=True)) == [40.0, 41.0, 42.0]
    assert telemetry_partitions_ensure(now=day + dt.timedelta(hours=12), days_back=0, days_ahead=0) == []


def test_retention_folds_and_drops_whole_day_partitions(postgres):
    buses = [f.VehicleFactory(), f.VehicleFactory()]
    day = utc_day(100)
    telemetry_partitions_ensure(now=day, days_back=0, days_ahead=0)
    start = day + dt.timedelta(hours=17)  # 10:00 in Hermosillo
    sent = {
        bus.pk: [
            {
                "recorded_at": (start + dt.timedelta(seconds=20 * n)).isoformat(),
                "soc_pct": 90.0 - n - i,
                "odometer_km": 1000.0 + n,
            }
            for n in range(9)
        ]
        for i, bus in enumerate(buses)
    }
    for bus in buses:
        telemetry_ingest(readings=sent[bus.pk], vehicle=bus)
    recent = {"recorded_at": (timezone.now() - dt.timedelta(days=1)).isoformat(), "soc_pct": 50.0}
    telemetry_ingest(readings=[recent], vehicle=buses[0])

    out = io.StringIO()
    call_command("prune_telemetry", "--older-than-days", "30", "--no-progress", stdout=out)

    assert "1 day partitions (18 readings) folded and dropped" in out.getvalue()
    assert not table_exists(partition_name(day.date()))
    assert day.date() not in day_partitions()
    assert list(TelemetryReading.objects.values_list("soc_pct", flat=True)) == [50.0]
    for bus in buses:
        minutes = list(TelemetryMinute.objects.filter(vehicle=bus).order_by("minute"))
        # 9 readings 20 s apart from :00 -> minutes of 3, 3 and 3 readings
        assert [m.reading_count for m in minutes] == [3, 3, 3]
        socs = [r["soc_pct"] for r in sent[bus.pk]]
        assert [m.soc_mean_pct for m in minutes] == [statistics.mean(socs[k : k + 3]) for k in (0, 3, 6)]
        assert [m.odometer_max_km for m in minutes] == [1002.0, 1005.0, 1008.0]
        assert DailyDutyCycle.objects.get(vehicle=bus).distance_km == pytest.approx(8.0)


def planned_partitions(statement: str, params: list, *, server_side: bool) -> set[str]:
    """The readings partitions PostgreSQL's plan of ``statement`` reads, after pruning at plan time (a
    partition pruned only while running still appears in the plan, as a subplan)."""
    import json

    import psycopg

    connection.ensure_connection()
    if server_side:  # as reading_arrays sends it: the values bound on the server
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", params)
            plan = cursor.fetchone()[0]
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", params)
            plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found: set[str] = set()

    def walk(node: dict) -> None:
        if node.get("Relation Name", "").startswith(TelemetryReading._meta.db_table):
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_a_buses_last_24_hours_plans_only_the_days_it_spans(postgres):
    """The admin's chart and the benchmark's read: without an upper time bound the plan also covered the two
    weeks of partitions created ahead and the DEFAULT one."""
    from fleet.telemetry.selectors import reading_arrays_query, vehicle_readings

    bus = f.VehicleFactory()
    now = timezone.now()
    since = now - dt.timedelta(hours=24)
    telemetry_ingest(readings=[{"recorded_at": now.isoformat(), "soc_pct": 61.0}], vehicle=bus)

    statement, params = reading_arrays_query([bus.pk], start=since)

    spanned = {partition_name((since + dt.timedelta(hours=h)).astimezone(dt.UTC).date()) for h in range(25)}
    assert planned_partitions(statement, params, server_side=True) == spanned
    assert list(vehicle_readings(bus, since=since)["soc_pct"]) == [61.0]


def test_ingests_check_for_stored_readings_plans_only_the_batchs_days(postgres):
    """Before each COPY, ingest looks for readings already stored in the batch's spans; the spans come from
    arrays (run time), so only the batch's constant bounds let the planner drop the other days' partitions."""
    import numpy as np

    from fleet.telemetry.ingest import _ANY_STORED_IN_SPAN, any_stored_in_span_params

    first = timezone.now().astimezone(dt.UTC).replace(hour=23, minute=50, second=0, microsecond=0)
    first -= dt.timedelta(days=1)
    micros = np.array([0, 600, 1200], dtype=np.int64) * 1_000_000 + int(first.timestamp() * 1_000_000)
    vehicles = np.array([7, 7, 8])
    params = any_stored_in_span_params(vehicles, micros, starts=np.array([0, 2]), ends=np.array([1, 2]))

    assert planned_partitions(_ANY_STORED_IN_SPAN, params, server_side=False) == {
        partition_name(first.date()),
        partition_name(first.date() + dt.timedelta(days=1)),
    }


def test_every_day_partition_has_the_covering_index_and_a_buses_day_is_read_from_it_alone(postgres):
    """Migration 0010's index (vehicle_id, recorded_at) INCLUDE the measurements, on the partitions created by
    the migrations and on the ones the nightly job creates later (attaching builds it): a bus's readings
    come from the index, not from the heap pages its day is spread over."""
    import json

    import psycopg

    from fleet.telemetry.selectors import reading_arrays_query

    day = utc_day(150)
    assert telemetry_partitions_ensure(now=day + dt.timedelta(hours=12), days_back=0, days_ahead=0) == [day.date()]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
            "JOIN pg_class t ON t.oid = x.indrelid WHERE i.inhparent = %s::regclass",
            [f"{TelemetryReading._meta.db_table}_vehicle_time_covering"],
        )
        covered = {row[0] for row in cursor.fetchall()}
    assert {partition_name(d) for d in day_partitions()} | {DEFAULT_PARTITION} <= covered
    assert partition_name(day.date()) in covered  # created after the migration

    bus = f.VehicleFactory()
    now = timezone.now()
    telemetry_ingest(readings=[{"recorded_at": now.isoformat(), "soc_pct": 61.0}], vehicle=bus)
    statement, params = reading_arrays_query([bus.pk], start=now - dt.timedelta(hours=24))
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        # A test-sized table has no statistics worth the name: leave the planner only index-only scans, which
        # it can choose only if an index holds every column the read needs.
        for method in ("seqscan", "bitmapscan", "indexscan"):
            cursor.execute(f"SET LOCAL enable_{method} = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    scans = []

    def walk(node: dict) -> None:
        if "Relation Name" in node:
            scans.append(node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    assert scans and set(scans) == {"Index Only Scan"}, scans
