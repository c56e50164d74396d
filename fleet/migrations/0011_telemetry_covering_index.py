"""A covering index for a bus's readings over time (docs/telemetry.md, "Partitions"): (vehicle_id, recorded_at)
INCLUDE every measurement, on every partition of ``fleet_telemetryreading``.

Why: live uploads interleave the buses, so a bus's day is spread over ~1,450 heap pages of its day partition
(two readings a page); read from disk, a bus's last 24 h took ~200 ms (50M readings, cold). From this index
it is an index-only scan of ~60 pages in key order: ~20 ms cold, ~12 ms warm. The price: the index is about
as large as the heap (the table's storage x ~1.8 with the primary key) and ingest writes it too (~15 % fewer
readings/s, measured at 50M, loaded). Partitions created later get it when they are attached.

Built without blocking ingest: the parent's index ``ON ONLY`` (invalid until complete), then each partition's
``CONCURRENTLY`` and attached to it. Non-atomic (CONCURRENTLY cannot run in a transaction); re-runnable.
PostgreSQL only (SQLite keeps one plain table, whose primary key serves the same reads).
"""

from django.db import migrations

TABLE = "fleet_telemetryreading"
INDEX = f"{TABLE}_vehicle_time_covering"
KEY = "(vehicle_id, recorded_at)"
MEASUREMENTS = (
    "soc_pct, odometer_km, latitude, longitude, speed_kmh, pack_voltage_v, pack_current_a, pack_temp_c, "
    "pack_temp_min_c, pack_temp_max_c, energy_discharged_kwh, energy_charged_kwh, charging_state"
)


def partitions(cursor) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    return sorted(row[0] for row in cursor.fetchall())


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE])
        if cursor.fetchone() is None:  # not partitioned (should not happen after 0008): one plain index
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} {KEY} INCLUDE ({MEASUREMENTS})")
            return
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON ONLY {TABLE} {KEY} INCLUDE ({MEASUREMENTS})")
        for partition in partitions(cursor):
            name = f"{partition}_covering"
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {partition} {KEY} INCLUDE ({MEASUREMENTS})"
            )
            cursor.execute(
                "SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass AND inhparent = %s::regclass", [name, INDEX]
            )
            if cursor.fetchone() is None:
                cursor.execute(f"ALTER INDEX {INDEX} ATTACH PARTITION {name}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("fleet", "0010_block_assignment_start_index")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
