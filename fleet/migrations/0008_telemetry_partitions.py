"""Telemetry readings partitioned by time on PostgreSQL (docs/telemetry.md, "Partitions").

The table becomes ``PARTITION BY RANGE (recorded_at)`` with a DEFAULT partition and one partition per UTC day
from two days ago to 14 days ahead; the nightly job keeps creating days ahead (fleet/telemetry/partitions.py).
Existing rows are copied over (their days fall into the DEFAULT partition unless recent). The model does not
change: SQLite keeps one plain table and this migration does nothing there. Reversible.
"""

import datetime as dt

from django.db import migrations

TABLE = "fleet_telemetryreading"
OLD = f"{TABLE}_unpartitioned"
DAYS_BACK, DAYS_AHEAD = 2, 14


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    today = dt.datetime.now(dt.UTC).date()
    statements = [
        f"ALTER TABLE {TABLE} RENAME TO {OLD}",
        f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey",
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (recorded_at)",
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (vehicle_id, recorded_at)",
        f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT",
    ]
    for offset in range(-DAYS_BACK, DAYS_AHEAD + 1):
        day = today + dt.timedelta(days=offset)
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1)
        statements.append(
            f"CREATE TABLE {TABLE}_p{day:%Y%m%d} PARTITION OF {TABLE} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    statements += [f"INSERT INTO {TABLE} SELECT * FROM {OLD}", f"DROP TABLE {OLD}"]
    for statement in statements:
        schema_editor.execute(statement)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in (
        f"CREATE TABLE {OLD} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        f"INSERT INTO {OLD} SELECT * FROM {TABLE}",
        f"DROP TABLE {TABLE}",
        f"ALTER TABLE {OLD} RENAME TO {TABLE}",
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (vehicle_id, recorded_at)",
    ):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("fleet", "0007_connector_standards")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
