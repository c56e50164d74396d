"""Benchmark: telemetry upload end to end over HTTP (gunicorn, 2 sync workers, on 127.0.0.1).

    .venv/bin/python bench/bench_telemetry_http.py [--batches 200] [--batch-size 1000] [--clients 4]

Database as in bench_telemetry_ingest.py (``DATABASE_URL`` or its own ``evfleet_bench_telemetry``). Starts
gunicorn itself, then a load generator in separate processes: ``--clients`` processes, each uploading
pre-serialised batches with its own vehicle key, one request at a time. Prints a table and writes
bench/results/telemetry-http-<date>.json and .md.

Target (issue 3): >= 20,000 readings/s with a p95 latency per 1,000-reading batch under 300 ms.

The server runs with ``EVFLEET_API_RATE_TELEMETRY_BATCH=1000000/min``: each client uploads far more often than the
production limit per vehicle (120 batches a minute by default, docs/security.md), and this measures the upload
path, not the rate limit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import load_average  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_telemetry_ingest import machine, make_batch, make_fleet, prepare_database  # noqa: E402

BATCH_PATH = "/api/v1/telemetry/batch/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wsgi_app() -> str:
    """config.wsgi once config/urls.py mounts fleet.telemetry.urls; until then the tests' URLconf wrapper."""
    from django.urls import Resolver404, resolve

    try:
        resolve(BATCH_PATH, urlconf="config.urls")
        return "config.wsgi:application"
    except Resolver404:
        return "tests.fleet.test_telemetry_support:application"


def start_gunicorn(port: int, database_url: str, app: str, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-not-a-secret-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "EVFLEET_API_RATE_TELEMETRY_BATCH": "1000000/min",  # measure the uploads, not the per-vehicle rate limit
    }
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            app,
            "--workers=2",
            f"--bind=127.0.0.1:{port}",
            "--backlog=64",
            "--timeout=60",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start; see {log_path}")


def client(port: int, key: str, bodies: list[bytes], start_at: float, results) -> None:
    """One load-generator process: upload each body, record (sent at, latency s, created count)."""
    while time.time() < start_at:
        time.sleep(0.001)
    out = []
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    for body in bodies:
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", BATCH_PATH, body, headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        latency = time.perf_counter() - t0
        created = json.loads(payload)["counts"]["created"] if response.status == 200 else -response.status
        out.append((t0, latency, created))
    results.put(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()

    database_url = prepare_database()
    import numpy as np
    import orjson
    from django.db import connections
    from django.utils import timezone

    from fleet.models import TelemetryReading, VehicleLiveState
    from fleet.telemetry.keys import vehicle_key_issue

    vehicles = make_fleet(args.clients)
    ids = [v.pk for v in vehicles]
    TelemetryReading.objects.filter(vehicle_id__in=ids).delete()
    VehicleLiveState.objects.filter(vehicle_id__in=ids).delete()
    keys = [vehicle_key_issue(vehicle=v, label="bench")[1] for v in vehicles]
    info = machine(database_url)
    app = wsgi_app()
    connections.close_all()

    start = timezone.now() - dt.timedelta(days=20)
    per_client = [[] for _ in range(args.clients)]
    for number in range(args.batches):
        owner = number % args.clients
        batch_start = start + dt.timedelta(seconds=(number // args.clients) * args.batch_size)
        per_client[owner].append(orjson.dumps({"readings": make_batch(batch_start, args.batch_size, seed=number)}))

    port = free_port()
    log_path = Path(tempfile.gettempdir()) / "evfleet-bench-telemetry-gunicorn.log"
    server = start_gunicorn(port, database_url, app, log_path)
    try:
        # Warm up each worker (imports, first connection) outside the measurement.
        warm = orjson.dumps({"readings": make_batch(start - dt.timedelta(days=1), 10, seed=0)})
        for _ in range(4):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request(
                "POST", BATCH_PATH, warm, {"Content-Type": "application/json", "Authorization": f"Bearer {keys[0]}"}
            )
            conn.getresponse().read()
            conn.close()
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        start_at = time.time() + 1.0
        processes = [
            context.Process(target=client, args=(port, keys[i], per_client[i], start_at, results))
            for i in range(args.clients)
        ]
        for process in processes:
            process.start()
        samples = [item for _ in processes for item in results.get(timeout=900)]
        for process in processes:
            process.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    info["load_average_at_end"] = load_average()

    failures = [s for s in samples if s[2] != args.batch_size]
    first_sent = min(s[0] for s in samples)
    last_done = max(s[0] + s[1] for s in samples)
    wall_s = last_done - first_sent
    latencies_ms = [s[1] * 1000 for s in samples]
    total = args.batches * args.batch_size
    results_doc = {
        "batches": args.batches,
        "batch_size": args.batch_size,
        "clients": args.clients,
        "gunicorn": "2 sync workers",
        "app": app,
        "readings_per_s": round(total / wall_s),
        "batch_latency_ms_median": round(statistics.median(latencies_ms), 1),
        "batch_latency_ms_p95": round(float(np.percentile(latencies_ms, 95)), 1),
        "batch_latency_ms_max": round(max(latencies_ms), 1),
        "failed_batches": len(failures),
        "targets": {"readings_per_s": 20_000, "batch_latency_ms_p95": 300},
    }
    results_doc["meets_targets"] = (
        results_doc["readings_per_s"] >= 20_000 and results_doc["batch_latency_ms_p95"] < 300 and not failures
    )
    TelemetryReading.objects.filter(vehicle_id__in=ids).delete()
    VehicleLiveState.objects.filter(vehicle_id__in=ids).delete()

    rows = [
        ("readings/s (wall clock, all clients)", f"{results_doc['readings_per_s']:,}"),
        ("batch latency median (ms)", f"{results_doc['batch_latency_ms_median']}"),
        ("batch latency p95 (ms)", f"{results_doc['batch_latency_ms_p95']}"),
        ("batch latency max (ms)", f"{results_doc['batch_latency_ms_max']}"),
        ("failed batches", f"{len(failures)}"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    verdict = "MEETS" if results_doc["meets_targets"] else "MISSES"
    print(
        f"\n{verdict} the target (>= 20,000 readings/s, p95 < 300 ms). Load average "
        f"{info['load_average_at_start']} -> {info['load_average_at_end']}."
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"telemetry-http-{dt.date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results_doc}, indent=2) + "\n")
    load = ", ".join(f"{x:.2f}" for x in info["load_average_at_start"])
    md = [
        f"# Telemetry upload over HTTP ({dt.date.today().isoformat()})",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['platform']}, python {info['python']}, "
        f"{info['postgresql']} (synchronous_commit={info['synchronous_commit']}). Load average at start {load}, "
        f"at end {', '.join(f'{x:.2f}' for x in info['load_average_at_end'])}.",
        "",
        f"gunicorn, 2 sync workers, 127.0.0.1; {args.clients} load-generator processes on the same machine; "
        f"{args.batches} batches x {args.batch_size} readings (vehicle keys, one vehicle per client).",
        "",
        "| what | value |",
        "|---|---:|",
        *[f"| {label} | {value} |" for label, value in rows],
        "",
        f"Target: >= 20,000 readings/s with p95 < 300 ms per batch: **{verdict.lower()}**.",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(f"Wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
