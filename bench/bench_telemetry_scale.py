"""Benchmark: telemetry at city scale - the readings table filled with millions of readings (issue 16).

    .venv/bin/python bench/bench_telemetry_scale.py --readings 50000000 [--vehicles 1000] [--interval-s 30]

Uses ``DATABASE_URL`` if it names PostgreSQL, else its own database ``evfleet_bench_telemetry_scale`` on
127.0.0.1; the database is dropped and recreated (``--keep`` reuses one already filled with the same figures).
1. The ingest service's rate on the **empty** table: ``--batches`` one-vehicle batches of 1,000 readings
   (what a vehicle key uploads), for vehicles apart from the fleet.
2. The fill: ``--readings`` readings of ``--vehicles`` buses of one depot, one every ``--interval-s`` seconds
   up to now (50M at 1,000 buses and 30 s: 17 days), written by PostgreSQL itself (``FILL_SQL``: INSERT ...
   SELECT over generate_series, realistic buses, in upload order) into the day partitions the nightly job's
   code creates, bulk-loaded two days at a time (~70,000 rows/s loaded). ``--fill-only``, then ``--keep``.
3. Ingest on an empty table (a second database) and on the filled one, interleaved A B B A ... over
   ``--ab-repeats`` pairs with the same batches, each phase in its own process. Target: within 10 %.
4. A vehicle's last 24 h read (every measurement, in time order) for ``--reads`` random buses through the
   selector (``vehicle_readings``: a binary fetch into numpy) cold (its partitions' pages dropped from the
   kernel's cache before each read) and warm, and through the ORM and the bare cursor, with CPU time and one
   cold and one warm ``EXPLAIN (ANALYZE, BUFFERS)``. Target: <= 50 ms.
5. The nightly duty-cycle job (``fleet.telemetry_duty_cycles``) for the depot's buses: yesterday in full and
   today provisionally. Target: <= 60 s for 1,000 vehicles.
Prints a table and writes bench/results/telemetry-scale-<date>-<readings>.json and .md, with the load average
(the figures of a shared machine are "loaded").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import common  # noqa: E402  (bench/, next to this script)
from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evfleet_bench_telemetry_scale"
FILL_CHUNK_VEHICLES = 100
BATCH_SIZE = 1000
INGEST_VEHICLES = 20


def prepare_database(*, keep: bool) -> str:
    return common.prepare_database(DEFAULT_URL, fresh=not keep)


def make_fleet(count: int, prefix: str):
    from fleet.models import Depot, Organization, Vehicle, VehicleModel

    org, _ = Organization.objects.get_or_create(slug="bench-scale", defaults={"name": "Bench scale"})
    depot, _ = Depot.objects.get_or_create(
        organization=org,
        code="scale",
        defaults={"name": "Scale", "grid_limit_kw": 100_000, "latitude": 29.0729, "longitude": -110.9559},
    )
    model, _ = VehicleModel.objects.get_or_create(
        manufacturer="Bench",
        name="12 m",
        defaults={"kind": "bus", "nominal_pack_kwh": 350, "consumption_kwh_per_km": 1.2, "max_dc_kw": 150},
    )
    existing = {v.vin: v for v in Vehicle.objects.filter(vin__startswith=prefix)}
    missing = [
        Vehicle(
            organization=org,
            vin=f"{prefix}{number:07d}",
            fleet_number=f"{prefix[-3:]}-{number:05d}",
            plate=f"{prefix[-3:]}{number:05d}",
            model=model,
            home_depot=depot,
        )
        for number in range(count)
        if f"{prefix}{number:07d}" not in existing
    ]
    Vehicle.objects.bulk_create(missing, batch_size=1000)
    return depot, list(Vehicle.objects.filter(vin__startswith=prefix).order_by("pk"))


def ingest_rate(vehicles, *, batches: int, start: dt.datetime) -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_telemetry_ingest import make_batch

    from fleet.telemetry import ingest

    prepared = []
    for n in range(batches):
        batch_start = start + dt.timedelta(seconds=(n // len(vehicles)) * BATCH_SIZE)
        prepared.append((vehicles[n % len(vehicles)], make_batch(batch_start, BATCH_SIZE, n)))
    latencies = []
    began = time.perf_counter()
    for vehicle, batch in prepared:
        t0 = time.perf_counter()
        result = ingest.telemetry_ingest(readings=batch, vehicle=vehicle)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert result.counts["created"] == len(batch), result.counts
    seconds = time.perf_counter() - began
    return {
        "readings_per_s": round(batches * BATCH_SIZE / seconds),
        "batch_ms_median": round(statistics.median(latencies), 2),
        "load_average": load_average(),
    }


# A bus's day, in closed form so that PostgreSQL writes any reading without looking at the others: local time
# (the depot's zone) decides; the "service day" starts at 04:00 local. In service 17 h from 05:00-06:30
# (the bus's own start), then it drives back to the depot and charges at 120 kW until full. Every bus has its
# own consumption (1.0-1.3 kWh/km) and mean distance (170-210 km/day); the day's distance swings +-20 km
# (a sine over days, whose sum has a closed form, so the odometer and the energy counters are cumulative and
# never jump). SoC falls with the energy used and rises with the energy charged, the current follows the speed
# (kW = kWh/km x km/h) or the charger, the pack warms in the afternoon and while charging. The duty-cycle job
# finds real distances, energies, kWh/km, SoC means and C-rates in it.
# Rows come out in upload order (every ``upload`` seconds each bus sends what it sampled since), so a bus's
# readings are spread over the day partition's pages as live uploads spread them, not clustered by bus.
# OFFSET 0 keeps each step a step: flattened, every name would be replaced by its whole expression (7x slower);
# float8 throughout (extract() gives numeric, and numeric arithmetic is slow).
FILL_SQL = """
INSERT INTO fleet_telemetryreading (vehicle_id, recorded_at, soc_pct, odometer_km, latitude, longitude, speed_kmh,
    pack_voltage_v, pack_current_a, pack_temp_c, pack_temp_min_c, pack_temp_max_c, energy_discharged_kwh,
    energy_charged_kwh, charging_state)
SELECT id, t0 + make_interval(secs => k * %(step)s::float8), soc, odometer, lat, lon, speed, voltage,
    CASE WHEN charging THEN -120000 / voltage WHEN speed > 0 THEN (kwh_per_km * speed * 1000 + 6000) / voltage
         ELSE 2 END,
    temp, temp - 2, temp + 3,
    20000 + kwh_per_km * (cum_km + s * km_today),
    19000 + kwh_per_km * (cum_km + q * km_today) / 0.95,
    CASE WHEN charging THEN 2 ELSE 0 END
FROM (SELECT t0, extract(epoch FROM t0)::float8 AS epoch0,
             extract(epoch FROM t0 AT TIME ZONE %(zone)s)::float8 / 3600 - 4 AS u0,
             least(%(per_upload)s,
                   ceil(extract(epoch FROM %(end)s::timestamptz - t0)::float8 / %(step)s::float8)::int) AS n
      FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - make_interval(secs => %(step)s),
                           make_interval(secs => %(upload)s)) AS slot(t0) OFFSET 0) AS slot
CROSS JOIN LATERAL (SELECT id,
    1.5 * (id * 7919 %% 1000)::float8 / 1000 AS late_h,
    1 + 0.3 * (id * 104729 %% 1000)::float8 / 1000 AS kwh_per_km,
    170 + 40 * (id * 15485863 %% 1000)::float8 / 1000 AS mean_km
    FROM unnest(CASE WHEN slot.t0 IS NOT NULL THEN %(vehicles)s::int8[] END) AS id OFFSET 0) AS bus
CROSS JOIN LATERAL generate_series(0, n - 1) AS k
CROSS JOIN LATERAL (SELECT d, x, epoch0 + k * %(step)s::float8 AS epoch,
    mean_km + 20 * sin(0.9 * d + id) AS km_today,
    d * mean_km + 20 * sin(id + 0.45 * (d - 1)) * sin(0.45 * d) / sin(0.45) AS cum_km
    FROM (SELECT floor((u0 + k * %(step)s::float8 / 3600) / 24) AS d) AS day,
    LATERAL (SELECT u0 + k * %(step)s::float8 / 3600 - 24 * d AS x) AS hour OFFSET 0) AS day
CROSS JOIN LATERAL (SELECT *, s > 0 AND s < 1 AS driving, q > 0 AND q < 1 AS charging,
    95 - 100 * kwh_per_km * km_today * (s - q) / 350 AS soc,
    50000 + 1000 * (id %% 50) + cum_km + s * km_today AS odometer
    FROM (SELECT least(greatest((x - 1 - late_h) / 17, 0), 1) AS s,
                 least(greatest((x - 18.5 - late_h) / (kwh_per_km * km_today / 120), 0), 1) AS q) AS sq
    OFFSET 0) AS state
CROSS JOIN LATERAL (SELECT
    CASE WHEN driving THEN greatest(0, 16 + 22 * sin(epoch / 83 + id)) ELSE 0 END AS speed,
    600 + 1.2 * soc AS voltage,
    22 + 6 * sin(2 * pi() * (x - 9) / 24) + CASE WHEN charging THEN 6 WHEN driving THEN 3 ELSE 0 END AS temp,
    %(lat)s + CASE WHEN driving THEN 0.05 * sin(epoch / 1800 + id) ELSE 0.0003 * (id %% 40) END AS lat,
    %(lon)s + CASE WHEN driving THEN 0.05 * cos(epoch / 1700 + id) ELSE 0.0002 * (id %% 40) END AS lon
    OFFSET 0) AS motion
"""


def fill(
    depot, vehicles, *, readings: int, interval_s: float, upload_s: float, end: dt.datetime, workers: int = 2
) -> dict:
    """``readings`` readings of ``vehicles`` up to ``end``, every ``interval_s`` seconds, written by PostgreSQL
    (``FILL_SQL``) into day partitions that the nightly job's own code creates (``telemetry_partitions_ensure``).

    A bulk load as a DBA does one: each day partition is detached, loses its primary key while PostgreSQL
    writes the day (one statement per ``FILL_CHUNK_VEHICLES`` buses), gets the key back with one index build
    (a sort, instead of millions of btree inserts) and is attached again; ``workers`` days at a time. The table
    ends up as ingest leaves it, except that each day's btree is freshly built (denser than one grown by
    inserts). A resumed run (``--keep``) skips the days already written."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from fleet.telemetry.partitions import telemetry_partitions_ensure

    per_vehicle = readings // len(vehicles)
    start = end - dt.timedelta(seconds=per_vehicle * interval_s)
    span_days = (end - start).days + 2
    telemetry_partitions_ensure(days_back=span_days, now=end)
    ids = [v.pk for v in vehicles]
    days = []
    day = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    while day < end:
        days.append(day)
        day += dt.timedelta(days=1)
    began = time.perf_counter()
    params = {"step": interval_s, "upload": upload_s, "per_upload": max(1, round(upload_s / interval_s)),
              "zone": depot.time_zone, "lat": depot.latitude, "lon": depot.longitude}  # fmt: skip

    def fill_day(day: dt.datetime) -> int:
        try:
            chunk_start, chunk_end = max(day, start), min(day + dt.timedelta(days=1), end)
            # Every vehicle samples on the same grid: align the chunk's first sample to it.
            offset = (chunk_start - start).total_seconds() % interval_s
            if offset:
                chunk_start += dt.timedelta(seconds=interval_s - offset)
            written = _fill_partition(day.date(), ids, {**params, "start": chunk_start, "end": chunk_end})
            print(f"  {day:%Y-%m-%d}: {written:,} readings, {time.perf_counter() - began:.0f} s", flush=True)
            return written
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        written = sum(pool.map(fill_day, days))
    with connection.cursor() as cursor:
        # What autovacuum does to a day partition after its inserts: statistics, and the visibility map.
        cursor.execute("VACUUM (ANALYZE) fleet_telemetryreading")
    seconds = time.perf_counter() - began
    return {"readings": written, "seconds": round(seconds, 1), "rows_per_s": round(written / seconds), "start": start}


def _fill_partition(day: dt.date, ids: list[int], params: dict) -> int:
    from django.db import connection

    from fleet.telemetry.partitions import PARENT, _bounds, partition_name

    name = partition_name(day)
    low, high = _bounds(day)
    written = 0
    # Table names are built from a date (no input); nosec B608 throughout.
    with connection.cursor() as cursor:
        # The fleet's own readings (the uploaders of the ingest phases write into today's partition too).
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE vehicle_id = ANY(%s))", [ids])
        if cursor.fetchone()[0]:
            return 0  # a resumed run: written before
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '256MB'")
        # JIT spends ~20 s compiling these expressions per statement; Memoize caches rows that never repeat.
        cursor.execute("SET jit = off")
        cursor.execute("SET enable_memoize = off")
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", [name])
        for (constraint,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {constraint}")
        statement = FILL_SQL.replace("INSERT INTO fleet_telemetryreading", f"INSERT INTO {name}")
        for first in range(0, len(ids), FILL_CHUNK_VEHICLES):
            cursor.execute(statement, {**params, "vehicles": ids[first : first + FILL_CHUNK_VEHICLES]})
            written += cursor.rowcount
        cursor.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (vehicle_id, recorded_at)")
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [low.isoformat(), high.isoformat()],
        )
    return written


def partition_files(days: list[dt.date]) -> list[str]:
    """The files of ``days``' partitions and their primary keys (every 1 GB segment, the visibility and free
    space maps) under the server's data directory: readable when the benchmark runs as root on the server."""
    from django.db import connection

    from fleet.telemetry.partitions import partition_name

    with connection.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
        data = Path(cursor.fetchone()[0])
        relations = [name for day in days for name in (partition_name(day), f"{partition_name(day)}_pkey")]
        cursor.execute("SELECT pg_relation_filepath(to_regclass(r)) FROM unnest(%s::text[]) AS r", [relations])
        bases = [data / row[0] for row in cursor.fetchall() if row[0]]
    return [str(path) for base in bases for path in base.parent.glob(base.name + "*")]


def drop_from_os_cache(paths: list[str]) -> bool:
    """Ask the kernel to forget these files' cached pages (``posix_fadvise DONTNEED``): only this benchmark's
    own partitions, not the machine's whole cache (other people work on it). False if not permitted."""
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    except OSError:
        return False
    return True


def _percentiles(walls: list[float]) -> dict:
    walls = sorted(walls)
    return {
        "ms_median": round(statistics.median(walls), 2),
        "ms_p95": round(walls[int(0.95 * (len(walls) - 1))], 2),
        "ms_max": round(walls[-1], 2),
    }


def last_24h_reads(vehicles, *, reads: int, now: dt.datetime) -> dict:
    """A bus's last 24 h three ways: the selector the admin and the duty cycles use (``vehicle_readings``:
    a binary fetch into numpy arrays), the ORM (``values_list`` of every field) and the bare cursor (the driver
    alone). Wall time and this process's CPU time: on a loaded machine the wall time is mostly waiting.

    The selector is timed cold and warm. Cold: before each read the kernel drops the cached pages of the two
    partitions the read touches (PostgreSQL's 128 MB of shared buffers may still hold a few, mostly index
    pages; its ``EXPLAIN (BUFFERS)`` for one cold read is recorded). Warm: each bus read twice in a row, the
    second read timed (the ORM and the cursor: warm too)."""
    from django.db import connection

    from fleet.models import TelemetryReading
    from fleet.telemetry.selectors import reading_arrays_query, vehicle_readings

    fields = [f.attname for f in TelemetryReading._meta.concrete_fields]
    sample = random.Random(16).sample(vehicles, min(reads, len(vehicles)))
    since = now - dt.timedelta(hours=24)  # the fill's last 24 h (it ends at ``now``, on the hour)
    files = partition_files(sorted({since.date(), now.date(), (timezone_now() + dt.timedelta(minutes=5)).date()}))

    def through_selector(vehicle) -> int:
        return len(vehicle_readings(vehicle, since=since)["t_s"])

    def through_orm(vehicle) -> int:
        return len(
            TelemetryReading.objects.filter(vehicle_id=vehicle.pk, recorded_at__gte=since)
            .order_by("recorded_at")
            .values_list(*fields)
        )

    def through_cursor(vehicle) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(fields)} FROM fleet_telemetryreading "  # nosec B608  (model field names)
                "WHERE vehicle_id = %s AND recorded_at >= %s ORDER BY recorded_at",
                [vehicle.pk, since],
            )
            return len(cursor.fetchall())

    def timed(read, vehicle, *, cold: bool) -> tuple[float, float, int]:
        if cold:
            drop_from_os_cache(files)
        else:
            read(vehicle)  # warm: the same bus was just read (the cold pass dropped the pages of the others)
        t0, c0 = time.perf_counter(), time.process_time()
        rows = read(vehicle)
        return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000, rows

    figures: dict = {"vehicles": len(sample), "since": since.isoformat(), "cold_possible": drop_from_os_cache(files)}
    # One cold read's plan and buffers, before any bus of the sample is read.
    import psycopg

    statement, params = reading_arrays_query([vehicles[-1].pk], start=since)
    drop_from_os_cache(files)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)
        figures["explain_cold"] = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)
        figures["explain_warm"] = [row[0] for row in cursor.fetchall()]
    runs = [("selector_cold", through_selector, True), ("selector", through_selector, False),
            ("orm", through_orm, False), ("cursor", through_cursor, False)]  # fmt: skip
    if not figures["cold_possible"]:
        runs = runs[1:]
    for name, read, cold in runs:
        walls, cpus, rows = [], [], []
        for vehicle in sample:
            wall, cpu, count = timed(read, vehicle, cold=cold)
            walls.append(wall)
            cpus.append(cpu)
            rows.append(count)
        figures[name] = {
            **_percentiles(walls),
            "cpu_ms_median": round(statistics.median(cpus), 2),
            "rows_median": int(statistics.median(rows)),
            "load_average": load_average(),
        }
    figures["load_average"] = load_average()
    return figures


def timezone_now() -> dt.datetime:
    from django.utils import timezone

    return timezone.now()


def ingest_phase(*, batches: int, start: dt.datetime, truncate: bool) -> dict:
    """One ingest measurement in this process's database (``--ingest-phase``): ``batches`` one-vehicle batches
    of 1,000 readings from ``start`` on, for the uploaders (vehicles apart from the fleet). ``truncate``: empty
    the readings table first (the empty-table side)."""
    from django.db import connection

    from fleet.models import TelemetryReading

    _, uploaders = make_fleet(INGEST_VEHICLES, "SCALEUPL")
    type(uploaders[0]).objects.filter(pk__in=[v.pk for v in uploaders]).update(home_depot=None)
    if truncate:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE fleet_telemetryreading")
    else:
        # Deleting an earlier run's readings would leave dead index entries on the very keys about to be
        # inserted (each then costs a heap visit): the filled side needs a window never written.
        window_end = start + dt.timedelta(seconds=-(-batches // INGEST_VEHICLES) * BATCH_SIZE)
        used = TelemetryReading.objects.filter(
            vehicle__in=uploaders, recorded_at__gte=start, recorded_at__lt=window_end
        )
        if used.exists():
            raise SystemExit(f"ingest window from {start} already written: choose another --ab-offset-hours")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM fleet_telemetryreading WHERE recorded_at >= %s", [start.date()])
        stored_that_day_on = cursor.fetchone()[0]
    figures = ingest_rate(uploaders, batches=batches, start=start)
    figures["readings_in_table_from_that_day"] = stored_that_day_on
    return figures


def ingest_interleaved(
    *, filled_url: str, repeats: int, batches: int, end: dt.datetime, offset_hours: float = 3.0
) -> dict:
    """Ingest on an empty table (A: a second database, migrated, truncated before each phase) and on the filled
    one (B), interleaved A B B A A B ... with the same batches (same vehicles, same times) on both sides, so that
    a change of the machine's load hits both. Each phase is its own process (a fresh connection each)."""
    import subprocess  # nosec B404  (this script, with its own arguments)

    import psycopg

    empty_url = filled_url + "_empty"
    admin_url = filled_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{empty_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{empty_url.rsplit("/", 1)[1]}"')
    env = {**os.environ, "DATABASE_URL": empty_url}
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True, cwd=ROOT)  # nosec B603
    phases: dict[str, list] = {"empty": [], "filled": []}
    for repeat in range(repeats):
        # Fresh keys per repeat on the filled side: windows of 1.5 h going back from ``offset_hours`` + 1.5 h
        # before the fill's end (the first run's own empty-table phase wrote 3 h to 1.6 h before it; a later
        # run on the same table passes a larger offset).
        start = end - dt.timedelta(hours=offset_hours) - dt.timedelta(hours=1.5) * (repeat + 1)
        sides = [("empty", empty_url), ("filled", filled_url)]
        for side, url in sides if repeat % 2 == 0 else sides[::-1]:  # A B B A ...: neither side always first
            out = subprocess.run(  # nosec B603
                [sys.executable, __file__, "--ingest-phase", start.isoformat(), "--batches", str(batches)]
                + (["--truncate"] if side == "empty" else []),
                env={**os.environ, "DATABASE_URL": url}, check=True, capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            phases[side].append(figures)
            print(f"  {side:>6} #{repeat + 1}: {figures['readings_per_s']:,} readings/s "
                  f"(load {figures['load_average'][0]})", flush=True)  # fmt: skip
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{empty_url.rsplit("/", 1)[1]}" WITH (FORCE)')
    empty = statistics.median(p["readings_per_s"] for p in phases["empty"])
    filled = statistics.median(p["readings_per_s"] for p in phases["filled"])
    pairs = [b["readings_per_s"] / a["readings_per_s"] for a, b in zip(phases["empty"], phases["filled"], strict=True)]
    return {
        "repeats": repeats,
        "empty_readings_per_s_median": round(empty),
        "filled_readings_per_s_median": round(filled),
        "filled_over_empty": round(filled / empty, 3),
        "filled_over_empty_per_pair": [round(x, 3) for x in pairs],
        "phases": phases,
    }


def duty_job(depot, vehicles, *, now: dt.datetime) -> dict:
    """The nightly job's work (``duty_cycles_for_depot_night``: yesterday in full, today provisionally) for
    ``vehicles``: all the depot's buses, or the first N of them on a machine too loaded to wait for 1,000."""
    from fleet.models import DailyDutyCycle
    from fleet.telemetry.duty import duty_cycles_compute, duty_cycles_for_depot_night

    night = now.astimezone(depot.zone).date()
    ids = [v.pk for v in vehicles]
    DailyDutyCycle.objects.filter(vehicle_id__in=ids).delete()
    began, cpu_began = time.perf_counter(), time.process_time()
    if len(ids) == depot.vehicles.count():
        summary = duty_cycles_for_depot_night(depot=depot, night=night)
    else:
        final = duty_cycles_compute(day=night - dt.timedelta(days=1), vehicle_ids=ids)
        provisional = duty_cycles_compute(day=night, vehicle_ids=ids)
        summary = f"{final} vehicle-days on {night - dt.timedelta(days=1)}, {provisional} provisional on {night}"
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    return {
        "vehicles": len(ids),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "seconds_per_1000_vehicles": round(seconds * 1000 / len(ids), 1),
        "summary": summary,
        "load_average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=50_000_000)
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--interval-s", type=float, default=30.0)
    parser.add_argument(
        "--upload-s", type=float, default=60.0, help="each bus uploads what it sampled every this many seconds"
    )
    parser.add_argument("--fill-workers", type=int, default=2, help="days written at a time")
    parser.add_argument("--fill-only", action="store_true", help="stop after the fill (measure later with --keep)")
    parser.add_argument("--ab-repeats", type=int, default=4, help="empty/filled ingest pairs, interleaved")
    parser.add_argument(
        "--ab-offset-hours", type=float, default=3.0, help="the interleaved ingest's windows end this long before now"
    )
    parser.add_argument("--ingest-phase", metavar="START", help=argparse.SUPPRESS)
    parser.add_argument("--truncate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=100, help="ingest batches of 1,000 readings per phase")
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="reuse a database filled by an earlier run")
    parser.add_argument("--skip-duty", action="store_true")
    parser.add_argument(
        "--duty-vehicles", type=int, default=0, help="time the duty-cycle job on the first N buses (0: all)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument(
        "--reuse", help="results .json of an earlier run on the same table: its ingest and duty-job figures are kept"
    )
    parser.add_argument("--tag", default="", help="suffix of the results file, e.g. 'loaded'")
    args = parser.parse_args()

    if args.ingest_phase:  # one side of ingest_interleaved, in its own process
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        figures = ingest_phase(
            batches=args.batches, start=dt.datetime.fromisoformat(args.ingest_phase), truncate=args.truncate
        )
        print(json.dumps(figures))
        return
    url = prepare_database(keep=args.keep)
    info = machine_info("psycopg", "numpy", database=url.rsplit("@", 1)[-1])
    from django.db import connection
    from django.utils import timezone

    from fleet.models import TelemetryReading

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        info["postgresql"] = cursor.fetchone()[0].split(" on ")[0]
    depot, fleet = make_fleet(args.vehicles, "SCALEBUS")
    _, uploaders = make_fleet(INGEST_VEHICLES, "SCALEUPL")
    for vehicle in uploaders:  # the uploaders are not the depot's buses: the duty job covers the fleet alone
        vehicle.home_depot = None
    type(uploaders[0]).objects.filter(pk__in=[v.pk for v in uploaders]).update(home_depot=None)
    # The fill ends on the hour, so that a run cut short (a shared machine, a time limit) is resumed with
    # --keep within the same hour on the same sampling grid; the empty-table figure is kept from the first run.
    state_path = Path(args.out) / f".scale-state-{url.rsplit('/', 1)[1]}.json"
    state = json.loads(state_path.read_text()) if args.keep and state_path.exists() else {}
    now = (
        dt.datetime.fromisoformat(state["end"])
        if "end" in state
        else timezone.now().replace(minute=0, second=0, microsecond=0)
    )
    stored = TelemetryReading.objects.filter(vehicle__in=fleet).count() if args.keep else 0

    if "ingest_empty" in state:
        empty = state["ingest_empty"]
    else:
        print(f"1. ingest on the empty table: {args.batches} batches of {BATCH_SIZE} ...", flush=True)
        empty = ingest_rate(uploaders, batches=args.batches, start=now - dt.timedelta(hours=3))
        Path(args.out).mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps({"end": now.isoformat(), "ingest_empty": empty}))
    if stored < args.readings * 0.99:
        print(f"2. filling {args.readings:,} readings of {args.vehicles} buses ...", flush=True)
        filled = fill(
            depot,
            fleet,
            readings=args.readings,
            interval_s=args.interval_s,
            upload_s=args.upload_s,
            end=now,
            workers=args.fill_workers,
        )
        state = {**json.loads(state_path.read_text()), "fill": {**filled, "start": filled["start"].isoformat()}}
        state_path.write_text(json.dumps(state))
        if args.fill_only:
            print(filled)
            return
    else:
        # The figures of the run that filled it (--fill-only, then measured with --keep).
        filled = {**state.get("fill", {"readings": stored, "seconds": None, "rows_per_s": None}), "reused": True}
    total = TelemetryReading.objects.count()
    reused = json.loads(Path(args.reuse).read_text())["results"] if args.reuse else None
    if reused:
        print(f"3. ingest figures reused from {args.reuse}", flush=True)
        interleaved = reused["ingest_interleaved"]
    else:
        print(f"3. ingest, empty and filled ({total:,} readings), interleaved x {args.ab_repeats} ...", flush=True)
        connection.close()  # the phases run in their own processes
        interleaved = ingest_interleaved(
            filled_url=url, repeats=args.ab_repeats, batches=args.batches, end=now, offset_hours=args.ab_offset_hours
        )
    print("4. a vehicle's last 24 h ...", flush=True)
    reads = last_24h_reads(fleet, reads=args.reads, now=now)
    duty = reused["duty_job"] if reused else None
    if not args.skip_duty and not reused:
        duty_fleet = fleet[: args.duty_vehicles] if args.duty_vehicles else fleet
        print(f"5. the nightly duty-cycle job for {len(duty_fleet)} buses ...", flush=True)
        duty = duty_job(depot, duty_fleet, now=now)
    info["load_average_at_end"] = load_average()

    ratio = interleaved["filled_over_empty"]
    results = {
        "readings_requested": args.readings,
        "readings_in_table": total,
        "vehicles": args.vehicles,
        "interval_s": args.interval_s,
        "upload_s": args.upload_s,
        "fill": {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in filled.items()},
        "ingest_same_database_before_the_fill": empty,
        "ingest_interleaved": interleaved,
        "ingest_filled_over_empty": ratio,
        "last_24h_read": reads,
        "duty_job": duty,
        "targets": {"ingest_filled_over_empty": 0.9, "last_24h_read_ms": 50, "duty_job_s_for_1000": 60},
    }
    rows = [
        ("readings in the table", f"{total:,}"),
        ("fill (INSERT ... SELECT generate_series)", f"{filled['rows_per_s'] or 0:,} rows/s, {filled['seconds']} s"),
        (
            "ingest before the fill (same database, one phase)",
            f"{empty['readings_per_s']:,} readings/s (load {empty['load_average'][0]})",
        ),
        (
            f"ingest, empty table, median of {interleaved['repeats']} (interleaved with the filled)",
            f"{interleaved['empty_readings_per_s_median']:,} readings/s (loads "
            f"{', '.join(str(p['load_average'][0]) for p in interleaved['phases']['empty'])})",
        ),
        (
            f"ingest, filled table, median of {interleaved['repeats']}",
            f"{interleaved['filled_readings_per_s_median']:,} readings/s (loads "
            f"{', '.join(str(p['load_average'][0]) for p in interleaved['phases']['filled'])})",
        ),
        (
            "filled / empty (target >= 0.90)",
            f"{ratio:.2f} (pairs: {', '.join(f'{x:.2f}' for x in interleaved['filled_over_empty_per_pair'])})",
        ),
        *[
            (
                f"a vehicle's last 24 h ({reads[way]['rows_median']:,} rows) through {label}, median / p95 "
                "(target <= 50 ms)",
                f"{reads[way]['ms_median']} / {reads[way]['ms_p95']} ms (max {reads[way]['ms_max']}), CPU "
                f"{reads[way]['cpu_ms_median']} ms (load {reads[way]['load_average'][0]})",
            )
            for way, label in (
                ("selector_cold", "vehicle_readings, cold (its partitions' pages dropped from the OS cache)"),
                ("selector", "vehicle_readings (binary fetch into numpy), warm"),
                ("orm", "the ORM, every field, warm"),
                ("cursor", "the bare cursor, every field, warm"),
            )
            if way in reads
        ],
    ]
    if duty:
        rows.append(
            (
                f"nightly duty-cycle job, {duty['vehicles']} buses (target <= 60 s for 1,000)",
                f"{duty['seconds']} s (CPU {duty['cpu_seconds']} s of this process, load "
                f"{duty['load_average'][0]}) = {duty['seconds_per_1000_vehicles']} s per 1,000 ({duty['summary']})",
            )
        )
    width = max(len(label) for label, _ in rows)
    print()
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"Load average {info['load_average_at_start']} -> {info['load_average_at_end']}.")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"-{args.tag}" if args.tag else ""
    stem = out / f"telemetry-scale-{dt.date.today().isoformat()}-{args.readings // 1_000_000}M{tag}"
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    md = [
        f"# Telemetry at scale: {args.readings:,} readings ({dt.date.today().isoformat()})",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['platform']}, python {info['python']}, "
        f"{info['postgresql']}. Load average at start {info['load_average_at_start']}, at end "
        f"{info['load_average_at_end']} (a shared machine: the figures are loaded).",
        "",
        f"{args.vehicles} buses of one depot, one reading every {args.interval_s:g} s up to now; ingest: "
        f"{args.batches} batches x {BATCH_SIZE} readings per phase, one vehicle per batch.",
        "",
        "One cold read of a bus's last 24 h (`EXPLAIN (ANALYZE, BUFFERS)`):",
        "",
        "```",
        *reads["explain_cold"],
        "```",
        "",
        "The same, warm:",
        "",
        "```",
        *reads["explain_warm"],
        "```",
        "",
        "| what | figure |",
        "|---|---:|",
        *[f"| {label} | {value} |" for label, value in rows],
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(f"Wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
