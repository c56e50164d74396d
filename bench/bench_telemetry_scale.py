"""Benchmark: telemetry at city scale - the readings table filled with millions of readings (issue 16).

    .venv/bin/python bench/bench_telemetry_scale.py --readings 50000000 [--vehicles 1000] [--interval-s 30]

Uses ``DATABASE_URL`` if it names PostgreSQL, else its own database ``evfleet_bench_telemetry_scale`` on
127.0.0.1; the database is dropped and recreated (``--keep`` reuses one already filled with the same figures).
1. The ingest service's rate on the **empty** table: ``--batches`` one-vehicle batches of 1,000 readings
   (what a vehicle key uploads), for vehicles apart from the fleet.
2. The fill: ``--readings`` readings of ``--vehicles`` buses of one depot, one every ``--interval-s`` seconds
   up to now (50M at 1,000 buses and 30 s: 17 days), written by PostgreSQL itself with ``INSERT ... SELECT``
   over ``generate_series``, one statement per UTC day and 100 buses, into day partitions created ahead.
3. The ingest rate again on the **filled** table, same workload on fresh keys. Target: within 10 % of (1).
4. A vehicle's last 24 h read (every measurement, in time order) for ``--reads`` random buses, through the
   selector (``vehicle_readings``: a binary fetch into numpy), the ORM and the bare cursor, with CPU time.
   Target: <= 50 ms.
5. The nightly duty-cycle job (``fleet.telemetry_duty_cycles``) for the depot's buses: yesterday in full and
   today provisionally. Target: <= 60 s for 1,000 vehicles.
Prints a table and writes bench/results/telemetry-scale-<date>-<readings>.json and .md, with the load average
(the figures of a shared machine are "loaded").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


FILL_SQL = """
INSERT INTO fleet_telemetryreading (vehicle_id, recorded_at, soc_pct, odometer_km, latitude, longitude, speed_kmh,
    pack_voltage_v, pack_current_a, pack_temp_c, energy_discharged_kwh, energy_charged_kwh, charging_state)
SELECT v.id, t,
    -- a day's shape: discharging while in service, charging at night (hours from the epoch, UTC)
    55 + 35 * cos(2 * pi() * h / 24),
    100000 + v.id + h * 18,
    29.07 + 0.02 * sin(h + v.id), -110.95 + 0.02 * cos(h + v.id),
    CASE WHEN sin(2 * pi() * h / 24) > 0 THEN 25 + (v.id %% 20) ELSE 0 END,
    650 + 10 * cos(2 * pi() * h / 24),
    CASE WHEN sin(2 * pi() * h / 24) > 0 THEN 90 ELSE -60 END,
    30 + 5 * sin(2 * pi() * h / 24),
    40000 + h * 22, 39000 + h * 21.5,
    CASE WHEN sin(2 * pi() * h / 24) > 0 THEN 0 ELSE 2 END
FROM unnest(%(vehicles)s::int8[]) AS v(id)
CROSS JOIN LATERAL generate_series(%(start)s::timestamptz, %(end)s::timestamptz, make_interval(secs => %(step)s)) AS t
CROSS JOIN LATERAL (SELECT extract(epoch FROM t) / 3600.0 AS h) AS hours
WHERE t < %(end)s::timestamptz
"""


def fill(vehicles, *, readings: int, interval_s: float, end: dt.datetime) -> dict:
    from django.db import connection, transaction

    from fleet.telemetry.partitions import telemetry_partitions_ensure

    per_vehicle = readings // len(vehicles)
    start = end - dt.timedelta(seconds=per_vehicle * interval_s)
    span_days = (end - start).days + 2
    telemetry_partitions_ensure(days_back=span_days, now=end)
    ids = [v.pk for v in vehicles]
    began = time.perf_counter()
    day = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    written = 0
    while day < end:
        chunk_start, chunk_end = max(day, start), min(day + dt.timedelta(days=1), end)
        # Every vehicle samples on the same grid: align the chunk's first sample to it.
        offset = (chunk_start - start).total_seconds() % interval_s
        if offset:
            chunk_start += dt.timedelta(seconds=interval_s - offset)
        for first in range(0, len(ids), FILL_CHUNK_VEHICLES):
            chunk = ids[first : first + FILL_CHUNK_VEHICLES]
            with transaction.atomic(), connection.cursor() as cursor:
                # A chunk is one transaction: one stored reading of it means an earlier run wrote all of it.
                cursor.execute(
                    "SELECT EXISTS (SELECT 1 FROM fleet_telemetryreading WHERE vehicle_id = %s "
                    "AND recorded_at >= %s AND recorded_at < %s)",
                    [chunk[0], chunk_start, chunk_end],
                )
                if cursor.fetchone()[0]:
                    continue
                cursor.execute(
                    FILL_SQL,
                    {"vehicles": chunk, "start": chunk_start, "end": chunk_end,
                     "step": interval_s},
                )  # fmt: skip
                written += cursor.rowcount
        print(f"  filled to {chunk_end:%Y-%m-%d %H:%M} UTC: {written:,} readings", flush=True)
        day += dt.timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE fleet_telemetryreading")
    seconds = time.perf_counter() - began
    return {"readings": written, "seconds": round(seconds, 1), "rows_per_s": round(written / seconds), "start": start}


def last_24h_reads(vehicles, *, reads: int, now: dt.datetime) -> dict:
    """A bus's last 24 h three ways: the selector the admin and the duty cycles use (``vehicle_readings``:
    a binary fetch into numpy arrays), the ORM (``values_list`` of every field) and the bare cursor (the driver
    alone). Wall time and this process's CPU time: on a loaded machine the wall time is mostly waiting."""
    from django.db import connection

    from fleet.models import TelemetryReading
    from fleet.telemetry.selectors import vehicle_readings

    fields = [f.attname for f in TelemetryReading._meta.concrete_fields]
    sample = random.Random(16).sample(vehicles, min(reads, len(vehicles)))
    since = now - dt.timedelta(hours=24)

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

    figures: dict = {"vehicles": len(sample)}
    for name, read in (("selector", through_selector), ("orm", through_orm), ("cursor", through_cursor)):
        walls, cpus, rows = [], [], []
        for vehicle in sample:
            t0, c0 = time.perf_counter(), time.process_time()
            rows.append(read(vehicle))
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
        walls.sort()
        figures[name] = {
            "ms_median": round(statistics.median(walls), 2),
            "ms_p95": round(walls[int(0.95 * (len(walls) - 1))], 2),
            "cpu_ms_median": round(statistics.median(cpus), 2),
            "rows_median": int(statistics.median(rows)),
        }
    figures["load_average"] = load_average()
    return figures


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
    parser.add_argument("--batches", type=int, default=100, help="ingest batches of 1,000 readings per phase")
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="reuse a database filled by an earlier run")
    parser.add_argument("--skip-duty", action="store_true")
    parser.add_argument(
        "--duty-vehicles", type=int, default=0, help="time the duty-cycle job on the first N buses (0: all)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--tag", default="", help="suffix of the results file, e.g. 'loaded'")
    args = parser.parse_args()

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
        filled = fill(fleet, readings=args.readings, interval_s=args.interval_s, end=now)
    else:
        filled = {"readings": stored, "seconds": None, "rows_per_s": None, "reused": True}
    total = TelemetryReading.objects.count()
    print(f"3. ingest on the filled table ({total:,} readings) ...", flush=True)
    # Fresh keys after the empty-table phase's (which ends 1.6 h before ``now``); a resumed run redoes this.
    filled_start = now - dt.timedelta(hours=1, minutes=30)
    TelemetryReading.objects.filter(vehicle__in=uploaders, recorded_at__gte=filled_start).delete()
    full = ingest_rate(uploaders, batches=args.batches, start=filled_start)
    print("4. a vehicle's last 24 h ...", flush=True)
    reads = last_24h_reads(fleet, reads=args.reads, now=now)
    duty = None
    if not args.skip_duty:
        duty_fleet = fleet[: args.duty_vehicles] if args.duty_vehicles else fleet
        print(f"5. the nightly duty-cycle job for {len(duty_fleet)} buses ...", flush=True)
        duty = duty_job(depot, duty_fleet, now=now)
    info["load_average_at_end"] = load_average()

    ratio = full["readings_per_s"] / empty["readings_per_s"]
    results = {
        "readings_requested": args.readings,
        "readings_in_table": total,
        "vehicles": args.vehicles,
        "interval_s": args.interval_s,
        "fill": {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in filled.items()},
        "ingest_empty": empty,
        "ingest_filled": full,
        "ingest_filled_over_empty": round(ratio, 3),
        "last_24h_read": reads,
        "duty_job": duty,
        "targets": {"ingest_filled_over_empty": 0.9, "last_24h_read_ms": 50, "duty_job_s_for_1000": 60},
    }
    rows = [
        ("readings in the table", f"{total:,}"),
        ("fill (INSERT ... SELECT generate_series)", f"{filled['rows_per_s'] or 0:,} rows/s, {filled['seconds']} s"),
        ("ingest, empty table", f"{empty['readings_per_s']:,} readings/s (load {empty['load_average'][0]})"),
        ("ingest, filled table", f"{full['readings_per_s']:,} readings/s (load {full['load_average'][0]})"),
        ("filled / empty (target >= 0.90)", f"{ratio:.2f}"),
        *[
            (
                f"a vehicle's last 24 h ({reads[way]['rows_median']:,} rows) through {label}, median / p95 "
                "(target <= 50 ms)",
                f"{reads[way]['ms_median']} / {reads[way]['ms_p95']} ms, CPU {reads[way]['cpu_ms_median']} ms "
                f"(load {reads['load_average'][0]})",
            )
            for way, label in (
                ("selector", "vehicle_readings (binary fetch into numpy)"),
                ("orm", "the ORM, every field"),
                ("cursor", "the bare cursor, every field"),
            )
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
        "| what | figure |",
        "|---|---:|",
        *[f"| {label} | {value} |" for label, value in rows],
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(f"Wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
