"""Benchmark: the telemetry ingest service alone (validation included) against a raw binary COPY.

    .venv/bin/python bench/bench_telemetry_ingest.py [--batches 200] [--batch-size 1000]

Uses ``DATABASE_URL`` if it names PostgreSQL, else creates and migrates its own database
``evfleet_bench_telemetry`` on 127.0.0.1. Each batch is one vehicle's readings (what a vehicle key uploads),
already parsed from JSON (the JSON parse is timed separately). The raw-COPY baseline writes the same rows
(moved to other vehicles, so the keys are fresh) with a prebuilt binary COPY payload and a commit per batch;
the two are interleaved batch by batch so they share the machine's load. Re-sent batches (all duplicates)
are timed too. Prints a table and writes bench/results/telemetry-ingest-<date>.json and .md.

Targets (issue 3): service >= 60,000 readings/s and >= 0.35 x the raw COPY rate, 1,000-reading batches.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import common  # noqa: E402  (bench/, next to this script)
from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evfleet_bench_telemetry"


def prepare_database() -> str:
    return common.prepare_database(DEFAULT_URL)


def make_fleet(count: int):
    from fleet.models import Depot, Organization, Vehicle, VehicleModel

    org, _ = Organization.objects.get_or_create(slug="bench-telemetry", defaults={"name": "Bench telemetry"})
    depot, _ = Depot.objects.get_or_create(
        organization=org, code="bench", defaults={"name": "Bench", "grid_limit_kw": 1000}
    )
    model, _ = VehicleModel.objects.get_or_create(
        manufacturer="Bench",
        name="12 m",
        defaults={"kind": "bus", "nominal_pack_kwh": 350, "consumption_kwh_per_km": 1.2, "max_dc_kw": 150},
    )
    vehicles = []
    for number in range(count):
        vin = f"BENCHTELEM{number:07d}"
        vehicle, _ = Vehicle.objects.get_or_create(
            vin=vin,
            defaults={"organization": org, "fleet_number": f"TB-{number:04d}", "model": model, "home_depot": depot},
        )
        vehicles.append(vehicle)
    return vehicles


def make_batch(start: dt.datetime, size: int, seed: int) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(seed)
    soc = 90 - np.cumsum(rng.uniform(0, 0.01, size))
    odometer = 10_000 + np.cumsum(rng.uniform(0, 0.012, size))
    rows = []
    for i in range(size):
        rows.append(
            {
                "recorded_at": (start + dt.timedelta(seconds=i)).isoformat(),
                "soc_pct": round(float(soc[i]), 3),
                "odometer_km": round(float(odometer[i]), 3),
                "latitude": 29.07 + i * 1e-5,
                "longitude": -110.95 - i * 1e-5,
                "speed_kmh": round(float(rng.uniform(0, 60)), 1),
                "pack_voltage_v": round(float(rng.uniform(620, 680)), 1),
                "pack_current_a": round(float(rng.uniform(-50, 300)), 1),
                "pack_temp_c": round(float(rng.uniform(25, 40)), 1),
                "pack_temp_min_c": 24.0,
                "pack_temp_max_c": 41.0,
                "energy_discharged_kwh": round(40_000 + i * 0.01, 3),
                "energy_charged_kwh": 39_000.0,
                "charging_state": "none",
            }
        )
    return rows


def machine(database_url: str) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(" on ")[0]
        cursor.execute("SHOW synchronous_commit")
        sync_commit = cursor.fetchone()[0]
    return machine_info(
        "psycopg",
        "numpy",
        "orjson",
        postgresql=pg_version,
        synchronous_commit=sync_commit,
        database=database_url.rsplit("@", 1)[-1],
    )


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--vehicles", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()

    database_url = prepare_database()
    import numpy as np
    import orjson
    from django.db import connection, transaction
    from django.utils import timezone

    from fleet.models import TelemetryReading, VehicleLiveState
    from fleet.telemetry import ingest
    from fleet.telemetry.validation import validate_readings

    vehicles = make_fleet(args.vehicles * 2)
    service_vehicles, copy_vehicles = vehicles[: args.vehicles], vehicles[args.vehicles :]
    ids = [v.pk for v in vehicles]
    TelemetryReading.objects.filter(vehicle_id__in=ids).delete()
    VehicleLiveState.objects.filter(vehicle_id__in=ids).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {TelemetryReading._meta.db_table}")

    info = machine(database_url)
    start = timezone.now() - dt.timedelta(days=30)
    print(f"Preparing {args.batches} batches of {args.batch_size} readings ...", flush=True)
    batches, payloads, bodies = [], [], []
    for number in range(args.batches):
        vehicle_index = number % args.vehicles
        batch_start = start + dt.timedelta(seconds=(number // args.vehicles) * args.batch_size)
        batch = make_batch(batch_start, args.batch_size, seed=number)
        batches.append((service_vehicles[vehicle_index], batch))
        bodies.append(orjson.dumps({"readings": batch}))
        columns = validate_readings(batch, now=timezone.now())
        vehicle_ids = np.full(columns.size, copy_vehicles[vehicle_index].pk, dtype=np.int64)
        payloads.append(ingest.copy_payload(columns, vehicle_ids, np.arange(columns.size)))

    parse_s = service_s = copy_s = resend_s = 0.0
    latencies_ms = []
    raw_cursor = connection.cursor()
    connection.ensure_connection()
    for number, (vehicle, batch) in enumerate(batches):
        t0 = time.perf_counter()
        orjson.loads(bodies[number])
        t1 = time.perf_counter()
        result = ingest.telemetry_ingest(readings=batch, vehicle=vehicle)
        t2 = time.perf_counter()
        assert result.counts["created"] == len(batch), result.counts
        with transaction.atomic(), raw_cursor.cursor.copy(ingest._COPY_READINGS) as copy:
            copy.write(payloads[number])
        t3 = time.perf_counter()
        parse_s += t1 - t0
        service_s += t2 - t1
        copy_s += t3 - t2
        latencies_ms.append((t2 - t1) * 1000)
    resend_count = min(len(batches), 50)
    for vehicle, batch in batches[:resend_count]:
        t0 = time.perf_counter()
        result = ingest.telemetry_ingest(readings=batch, vehicle=vehicle)
        resend_s += time.perf_counter() - t0
        assert result.counts["duplicate"] == len(batch), result.counts
    info["load_average_at_end"] = load_average()

    total = args.batches * args.batch_size
    service_rate = rate(total, service_s)
    copy_rate = rate(total, copy_s)
    results = {
        "batches": args.batches,
        "batch_size": args.batch_size,
        "readings": total,
        "service_readings_per_s": round(service_rate),
        "raw_copy_readings_per_s": round(copy_rate),
        "service_over_raw_copy": round(service_rate / copy_rate, 3),
        "service_batch_ms_median": round(statistics.median(latencies_ms), 2),
        "service_batch_ms_p95": round(float(np.percentile(latencies_ms, 95)), 2),
        "json_parse_readings_per_s": round(rate(total, parse_s)),
        "resend_readings_per_s": round(rate(resend_count * args.batch_size, resend_s)),
        "targets": {"service_readings_per_s": 60_000, "service_over_raw_copy": 0.35},
    }
    results["meets_targets"] = service_rate >= 60_000 and service_rate / copy_rate >= 0.35
    TelemetryReading.objects.filter(vehicle_id__in=ids).delete()
    VehicleLiveState.objects.filter(vehicle_id__in=ids).delete()

    rows = [
        ("ingest service (validate + COPY + live state + commit)", f"{service_rate:,.0f}"),
        ("raw binary COPY of the same rows + commit", f"{copy_rate:,.0f}"),
        ("service / raw COPY", f"{service_rate / copy_rate:.2f}"),
        ("re-sent batches (all duplicates)", f"{results['resend_readings_per_s']:,.0f}"),
        ("orjson parse alone", f"{results['json_parse_readings_per_s']:,.0f}"),
        (
            "service batch latency median / p95 (ms)",
            f"{results['service_batch_ms_median']} / {results['service_batch_ms_p95']}",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"\n{'what':<{width}}  readings/s")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    verdict = "MEETS" if results["meets_targets"] else "MISSES"
    print(
        f"\n{verdict} the targets (>= 60,000/s and >= 0.35 x raw COPY). Load average {info['load_average_at_start']}"
        f" -> {info['load_average_at_end']}."
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"telemetry-ingest-{dt.date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    load = ", ".join(f"{x:.2f}" for x in info["load_average_at_start"])
    md = [
        f"# Telemetry ingest service ({dt.date.today().isoformat()})",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['platform']}, python {info['python']}, "
        f"{info['postgresql']} (synchronous_commit={info['synchronous_commit']}), psycopg {info['psycopg']}. "
        f"Load average at start {load}, at end {', '.join(f'{x:.2f}' for x in info['load_average_at_end'])}.",
        "",
        f"{args.batches} batches x {args.batch_size} readings, one vehicle per batch, one transaction per batch.",
        "",
        "| what | readings/s |",
        "|---|---:|",
        *[f"| {label} | {value} |" for label, value in rows],
        "",
        f"Targets: >= 60,000 readings/s and >= 0.35 x raw COPY: **{verdict.lower()}**.",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(f"Wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
