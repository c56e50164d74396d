"""Benchmark: the telemetry history export streamed as CSV and JSON Lines, 1,000,000 readings.

    .venv/bin/python bench/bench_export.py [--readings 1000000] [--vehicles 20]

Uses ``DATABASE_URL`` if it names PostgreSQL, else its own database ``evfleet_bench_export`` on 127.0.0.1.
Fills one depot's buses with readings (``INSERT ... SELECT generate_series``: the data, not the ingest, is
the point here), then asks ``GET /api/v1/telemetry/readings/?depot=<id>&format=csv`` (and ``jsonl``) through
Django's full request stack as that depot's manager (so ``restrict()`` applies) and reads the whole stream.
Memory: the process's resident set size sampled every 100 chunks; "flat" means its growth during the
stream stays small against the size of the answer. Writes bench/results/export-<date>.json and .md.

Target (issue 17): 1,000,000 readings streamed in <= 20 s with memory flat.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import common  # noqa: E402  (bench/, next to this script)
from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evfleet_bench_export"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def prepare_database() -> None:
    common.prepare_database(DEFAULT_URL)


def fill(readings: int, vehicle_count: int):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from fleet.models import Depot, DepotMembership, Organization, TelemetryReading, Vehicle, VehicleModel

    org, _ = Organization.objects.get_or_create(slug="bench-export", defaults={"name": "Bench export"})
    depot, _ = Depot.objects.get_or_create(
        organization=org, code="bexp", defaults={"name": "Bench export", "grid_limit_kw": 1000}
    )
    model, _ = VehicleModel.objects.get_or_create(
        manufacturer="Bench",
        name="12 m",
        defaults={"kind": "bus", "nominal_pack_kwh": 350, "consumption_kwh_per_km": 1.2, "max_dc_kw": 150},
    )
    vehicles = []
    for i in range(vehicle_count):
        vin = f"3MTBE{i:012d}"[:17]
        vehicle, _ = Vehicle.objects.get_or_create(
            vin=vin, defaults={"organization": org, "fleet_number": f"BX-{i:03d}", "model": model, "home_depot": depot}
        )
        vehicles.append(vehicle)
    user, _ = get_user_model().objects.get_or_create(username="bench-export-manager")
    DepotMembership.objects.get_or_create(user=user, depot=depot, defaults={"role": "manager"})
    ids = [v.pk for v in vehicles]
    per_vehicle = readings // vehicle_count
    if TelemetryReading.objects.filter(vehicle_id__in=ids).count() != per_vehicle * vehicle_count:
        TelemetryReading.objects.filter(vehicle_id__in=ids).delete()
        start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        with connection.cursor() as cursor:
            for vehicle_id in ids:
                cursor.execute(
                    """
                    INSERT INTO fleet_telemetryreading (vehicle_id, recorded_at, soc_pct, odometer_km, latitude,
                        longitude, speed_kmh, pack_voltage_v, pack_current_a, pack_temp_c, energy_discharged_kwh,
                        energy_charged_kwh, charging_state)
                    SELECT %s, %s + n * interval '1 second', 90 - n * 0.0001, 10000 + n * 0.01,
                        29.07 + sin(n / 500.0) * 0.02, -110.95 + cos(n / 500.0) * 0.02, 30 + (n %% 20),
                        650 - n * 0.001, 80 + (n %% 50), 30 + (n %% 7) * 0.5, 40000 + n * 0.01, 39000, 0
                    FROM generate_series(0, %s - 1) AS n
                    """,
                    [vehicle_id, start, per_vehicle],
                )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE fleet_telemetryreading")
    return depot, user, per_vehicle * vehicle_count


def stream(client, depot, fmt: str) -> dict:
    rss_before = rss_mb()
    t0 = time.perf_counter()
    response = client.get("/api/v1/telemetry/readings/", {"depot": depot.pk, "format": fmt})
    assert response.status_code == 200 and response.streaming, response
    size = lines = 0
    rss_max = rss_before
    for number, chunk in enumerate(response.streaming_content):
        size += len(chunk)
        lines += chunk.count(b"\n")
        if number % 100 == 0:
            rss_max = max(rss_max, rss_mb())
    response.close()
    seconds = time.perf_counter() - t0
    rows = lines - (1 if fmt == "csv" else 0)
    return {
        "format": fmt,
        "rows": rows,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "rss_before_mb": round(rss_before, 1),
        "rss_max_mb": round(rss_max, 1),
        "rss_growth_mb": round(rss_max - rss_before, 1),
        "answer_mb": round(size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--vehicles", type=int, default=20)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    prepare_database()
    from django.conf import settings
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] = "100000/min"
    depot, user, total = fill(args.readings, args.vehicles)
    client = Client()
    client.force_login(user)
    load_before = load_average()
    results = [stream(client, depot, fmt) for fmt in ("csv", "jsonl")]
    for r in results:
        print(
            f"{r['format']:>5}: {r['rows']:,} rows in {r['seconds']} s ({r['rows_per_s']:,}/s), "
            f"{r['answer_mb']} MB out, RSS {r['rss_before_mb']} -> max {r['rss_max_mb']} MB"
        )
        assert r["rows"] == total, (r["rows"], total)
    report = {
        "benchmark": "telemetry history export, streamed",
        "target": "1,000,000 readings in <= 20 s, memory flat",
        "readings": total,
        "results": results,
        "load_average_before": load_before,
        "machine": machine_info("Django", "psycopg"),
    }
    stem = f"export-{dt.date.today().isoformat()}{('-' + args.label) if args.label else ''}"
    out = ROOT / "bench" / "results"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Telemetry export benchmark ({dt.date.today()})",
        "",
        f"{total:,} readings of one depot, streamed through Django's request stack as the depot's manager",
        "(in process, Django's test client: no socket; PostgreSQL on the same machine, COPY ... TO STDOUT).",
        (
            "The machine was shared (load average above 2 on 2 cores): figures are upper bounds of quiet times."
            if max(load_before) > 2
            else "The machine was quiet (load average below 2 on 2 cores)."
        ),
        f"Load average before: {load_before}; after: {load_average()}.",
        "",
        "| format | rows | seconds | rows/s | answer MB | RSS before MB | RSS max MB |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['format']} | {r['rows']:,} | {r['seconds']} | {r['rows_per_s']:,} | {r['answer_mb']} | "
            f"{r['rss_before_mb']} | {r['rss_max_mb']} |"
            for r in results
        ),
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
