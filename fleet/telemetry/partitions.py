"""The readings table partitioned by time on PostgreSQL: one partition per UTC day, created ahead.

``fleet_telemetryreading`` is ``PARTITION BY RANGE (recorded_at)`` (migration 0006); each UTC day has its own
partition ``fleet_telemetryreading_pYYYYMMDD``, and a DEFAULT partition catches whatever no day partition
covers (old back-fills, or a day whose partition was not created in time). The primary key
(vehicle_id, recorded_at) holds in every partition, so ingest (COPY, ON CONFLICT) works on the parent as before.

* ``telemetry_partitions_ensure`` creates the day partitions from ``days_back`` ago to ``days_ahead`` from now
  (the nightly job and ``prune_telemetry`` call it); a day whose readings already sit in the DEFAULT partition
  gets them moved into its new partition in the same transaction.
* ``telemetry_partitions_fold`` is retention: a day partition entirely older than the cutoff is folded into
  ``TelemetryMinute`` rows with one ``INSERT ... SELECT`` (after the missing duty cycles of the local days it
  touches are computed) and then dropped whole: no row-by-row DELETE.

SQLite (embedded mode) keeps one plain table: every function here does nothing there.
"""

from __future__ import annotations

import datetime as dt
import re

from django.db import connection, transaction
from django.db.models.functions import TruncMinute
from django.utils import timezone

from fleet.models import DailyDutyCycle, TelemetryMinute, TelemetryReading, Vehicle
from fleet.telemetry.duty import duty_cycle_compute, vehicle_zone

PARENT = TelemetryReading._meta.db_table
DEFAULT_PARTITION = f"{PARENT}_default"
_DAY_PARTITION = re.compile(rf"^{PARENT}_p(\d{{8}})$")
DEFAULT_DAYS_AHEAD = 14


def partition_name(day: dt.date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [PARENT])
        return cursor.fetchone() is not None


def day_partitions() -> list[dt.date]:
    """The UTC days that have their own partition, in order."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = [dt.datetime.strptime(match.group(1), "%Y%m%d").date() for n in names if (match := _DAY_PARTITION.match(n))]
    return sorted(days)


def _bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def telemetry_partitions_ensure(
    *, days_ahead: int = DEFAULT_DAYS_AHEAD, days_back: int = 2, now: dt.datetime | None = None
) -> list[dt.date]:
    """Create the missing day partitions from ``days_back`` days ago to ``days_ahead`` days ahead (UTC).
    Returns the days created. Idempotent; safe while readings are being ingested."""
    if not is_partitioned():
        return []
    today = (now or timezone.now()).astimezone(dt.UTC).date()
    existing = set(day_partitions())
    created = []
    for offset in range(-days_back, days_ahead + 1):
        day = today + dt.timedelta(days=offset)
        if day not in existing and _create_day_partition(day):
            created.append(day)
    return created


def _create_day_partition(day: dt.date) -> bool:
    name, (start, end) = partition_name(day), _bounds(day)
    # Table names are built from a date (no user input); the bounds travel as literals because DDL takes
    # no parameters, formatted from datetimes (nosec B608).
    bounds = f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    with transaction.atomic(), connection.cursor() as cursor:
        # Every depot's nightly run calls this, possibly at the same moment: one creates, the others find it.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [PARENT])
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return False
        # Attaching takes a lock that waits for running ingests: that is fine, it is short.
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        # Readings of this day that went to the DEFAULT partition (it did not exist yet) move into it.
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE recorded_at >= %s AND recorded_at < %s "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",  # nosec B608
            [start, end],
        )
        cursor.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (vehicle_id, recorded_at)")
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES {bounds}")
    return True


def telemetry_partitions_fold(*, cutoff: dt.datetime) -> dict[str, int]:
    """Fold and drop every day partition that ends at or before ``cutoff``. One transaction per partition:
    an interrupted run leaves whole partitions either folded and gone, or intact."""
    summary = {"partitions_dropped": 0, "duty_cycles_computed": 0, "minutes_written": 0, "readings_folded": 0}
    for day in day_partitions():
        start, end = _bounds(day)
        if end > cutoff:
            break
        with transaction.atomic():
            duty_cycles, minutes, readings = _fold_partition(day, start, end)
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {partition_name(day)}")
                cursor.execute(f"DROP TABLE {partition_name(day)}")
        summary["partitions_dropped"] += 1
        summary["duty_cycles_computed"] += duty_cycles
        summary["minutes_written"] += minutes
        summary["readings_folded"] += readings
    return summary


def _fold_partition(day: dt.date, start: dt.datetime, end: dt.datetime) -> tuple[int, int, int]:
    from fleet.telemetry.retention import MINUTE_AGGREGATES  # retention calls this module

    in_day = TelemetryReading.objects.filter(recorded_at__gte=start, recorded_at__lt=end)
    vehicle_ids = list(in_day.values_list("vehicle_id", flat=True).distinct())
    duty_cycles = 0
    # Every local day this UTC day touches keeps its duty cycle, computed from all its raw readings first.
    for vehicle in Vehicle.objects.filter(pk__in=vehicle_ids).select_related("home_depot", "model"):
        zone = vehicle_zone(vehicle)
        local_days = {start.astimezone(zone).date(), (end - dt.timedelta(microseconds=1)).astimezone(zone).date()}
        have = set(DailyDutyCycle.objects.filter(vehicle=vehicle, date__in=local_days).values_list("date", flat=True))
        for local_day in sorted(local_days - have):
            if duty_cycle_compute(vehicle=vehicle, day=local_day) is not None:
                duty_cycles += 1
    aggregates = (
        in_day.annotate(minute=TruncMinute("recorded_at", tzinfo=dt.UTC))
        .values("vehicle_id", "minute")
        .annotate(**MINUTE_AGGREGATES)
        .order_by()
    )
    select_sql, params = aggregates.query.sql_with_params()
    columns = ["vehicle_id", "minute", *MINUTE_AGGREGATES]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TelemetryMinute._meta.db_table} ({', '.join(columns)}) {select_sql} ON CONFLICT DO NOTHING",  # nosec B608 - column names from the model, values bound
            params,
        )
        minutes = cursor.rowcount
        cursor.execute(f"SELECT count(*) FROM {partition_name(day)}")  # nosec B608
        readings = cursor.fetchone()[0]
    return duty_cycles, minutes, readings
