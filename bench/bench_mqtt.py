"""Benchmark: telemetry over MQTT into PostgreSQL with one bridge process, side by side with HTTP.

    .venv/bin/python bench/bench_mqtt.py [--batches 200] [--batch-size 1000] [--clients 4] [--no-http]

Database as in bench_telemetry_ingest.py (``DATABASE_URL`` or its own ``evfleet_bench_telemetry``). Starts a
private Mosquitto (free port, dynamic security, as in the tests) and ONE ``manage.py mqtt_ingest`` process,
then ``--clients`` load-generator processes, each a vehicle logged in with its own key, publishing its
pre-serialised batches with QoS 1 as fast as the broker takes them and reading the bridge's answers on its
result topic. Readings/s = all readings / (first publish -> last answer), i.e. stored and committed (the
bridge answers after the commit); the stored rows are counted afterwards as an independent check. Then, unless
``--no-http``, runs bench_telemetry_http.py with the same batches and clients for the side-by-side figure.
Writes bench/results/mqtt-<date>.json and .md.

Target (issue 16): >= 20,000 readings/s through one bridge process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine_info import load_average  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_telemetry_ingest import machine, make_batch, make_fleet, prepare_database  # noqa: E402

TARGET_READINGS_PER_S = 20_000


def publisher(port: int, username: str, password: str, vehicle_id: int, bodies: list[bytes], start_at: float, out):
    """One vehicle: publish every body (QoS 1), collect one answer per body; report the timings."""
    import orjson
    import paho.mqtt.client as mqtt

    from fleet.telemetry.broker_auth import result_topic, telemetry_topic

    answers: queue.Queue[tuple[float, dict]] = queue.Queue()
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-vehicle-{vehicle_id}")
    client.username_pw_set(username, password)
    client.max_queued_messages_set(0)
    client.on_connect = lambda c, *_: c.subscribe(result_topic(vehicle_id), qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, m: answers.put((time.perf_counter(), orjson.loads(m.payload)))
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    subscribed.wait(30)
    while time.time() < start_at:
        time.sleep(0.001)
    sent_at = []
    for body in bodies:
        sent_at.append(time.perf_counter())
        client.publish(telemetry_topic(vehicle_id), body, qos=1)
    received = [answers.get(timeout=600) for _ in bodies]
    client.disconnect()
    client.loop_stop()
    # One vehicle's messages keep their order through the broker and the single bridge: answer i is body i's.
    out.put(
        {
            "first_sent": sent_at[0],
            "last_answer": received[-1][0],
            "latencies_s": [answer_at - sent for sent, (answer_at, _a) in zip(sent_at, received, strict=True)],
            "created": sum(answer.get("counts", {}).get("created", 0) for _t, answer in received),
            "errors": [answer for _t, answer in received if "error" in answer][:3],
        }
    )


def start_bridge(broker_url: str, database_url: str, password: str, log_path: Path) -> subprocess.Popen:
    from tests.fleet.test_mqtt_support import BRIDGE_USERNAME

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-not-a-secret-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "EVFLEET_MQTT_USERNAME": BRIDGE_USERNAME,
        "EVFLEET_MQTT_PASSWORD": password,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mqtt_ingest", "--broker", broker_url, "--client-id", "bench-bridge"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if "mqtt_ingest: subscribed" in log_path.read_text(errors="replace"):
            return process
        time.sleep(0.1)
    raise RuntimeError(f"mqtt_ingest did not subscribe: {log_path.read_text(errors='replace')[-3000:]}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_http(args: argparse.Namespace) -> dict | None:
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable,
            str(ROOT / "bench" / "bench_telemetry_http.py"),
            f"--batches={args.batches}",
            f"--batch-size={args.batch_size}",
            f"--clients={args.clients}",
            f"--out={out}",
        ]
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        files = list(Path(out).glob("telemetry-http-*.json"))
        return json.loads(files[0].read_text()) if files else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--no-http", action="store_true", help="Skip the HTTP run (side-by-side figure).")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()

    database_url = prepare_database()
    import numpy as np
    import orjson
    from django.conf import settings
    from django.db import connections
    from django.utils import timezone

    from fleet.models import TelemetryReading, VehicleLiveState
    from fleet.telemetry.broker_auth import admin_connection, broker_setup, key_username
    from fleet.telemetry.ingest import telemetry_ingest
    from fleet.telemetry.keys import vehicle_key_issue
    from tests.fleet.test_mqtt_support import ADMIN_USERNAME, BRIDGE_USERNAME, PrivateBroker

    info = machine(database_url)
    with tempfile.TemporaryDirectory() as broker_dir:
        broker = PrivateBroker(Path(broker_dir))
        broker.start()
        bridge = None
        try:
            settings.EVFLEET_MQTT_DYNSEC = True
            settings.EVFLEET_MQTT_BROKER_URL = broker.url
            settings.EVFLEET_MQTT_ADMIN_USERNAME = ADMIN_USERNAME
            settings.EVFLEET_MQTT_ADMIN_PASSWORD = broker.admin_password
            with admin_connection() as admin:
                broker_setup(admin, bridge_username=BRIDGE_USERNAME, bridge_password=broker.bridge_password)
            vehicles = make_fleet(args.clients)
            ids = [v.pk for v in vehicles]
            TelemetryReading.objects.filter(vehicle_id__in=ids).delete()
            VehicleLiveState.objects.filter(vehicle_id__in=ids).delete()
            keys = [vehicle_key_issue(vehicle=v, label="bench-mqtt") for v in vehicles]
            start = timezone.now() - dt.timedelta(days=20)
            per_client: list[list[bytes]] = [[] for _ in range(args.clients)]
            for number in range(args.batches):
                owner = number % args.clients
                batch_start = start + dt.timedelta(seconds=(number // args.clients) * args.batch_size)
                per_client[owner].append(orjson.dumps({"readings": make_batch(batch_start, args.batch_size, number)}))
            connections.close_all()

            log_path = Path(broker_dir) / "mqtt_ingest.log"
            bridge = start_bridge(broker.url, database_url, broker.bridge_password, log_path)
            context = multiprocessing.get_context("fork")
            results = context.Queue()
            start_at = time.time() + 2.0
            processes = [
                context.Process(
                    target=publisher,
                    args=(broker.port, key_username(keys[i][0]), keys[i][1], ids[i], per_client[i], start_at, results),
                )
                for i in range(args.clients)
            ]
            bridge_cpu_before = cpu_seconds(bridge.pid)
            for process in processes:
                process.start()
            reports = [results.get(timeout=900) for _ in processes]
            bridge_cpu_s = cpu_seconds(bridge.pid) - bridge_cpu_before
            for process in processes:
                process.join()
        finally:
            if bridge is not None:
                bridge.terminate()
                bridge.wait(timeout=30)
            broker.stop()
    info["load_average_after_mqtt"] = load_average()

    total = args.batches * args.batch_size
    stored = TelemetryReading.objects.filter(vehicle_id__in=ids).count()
    wall_s = max(r["last_answer"] for r in reports) - min(r["first_sent"] for r in reports)
    latencies_ms = [s * 1000 for r in reports for s in r["latencies_s"]]
    created = sum(r["created"] for r in reports)
    errors = [e for r in reports for e in r["errors"]]
    mqtt_doc = {
        "batches": args.batches,
        "batch_size": args.batch_size,
        "clients": args.clients,
        "bridge": "one mqtt_ingest process",
        "readings_per_s": round(total / wall_s),
        "answer_latency_ms_median": round(statistics.median(latencies_ms), 1),
        "answer_latency_ms_p95": round(float(np.percentile(latencies_ms, 95)), 1),
        "bridge_cpu_s": round(bridge_cpu_s, 2),
        # The bridge process's own CPU (not PostgreSQL's, not the broker's): what one free core would give it.
        "readings_per_bridge_cpu_s": round(total / bridge_cpu_s) if bridge_cpu_s else None,
        "created_in_answers": created,
        "stored_rows_counted": stored,
        "errors": errors,
        "target_readings_per_s": TARGET_READINGS_PER_S,
    }
    mqtt_doc["meets_target"] = mqtt_doc["readings_per_s"] >= TARGET_READINGS_PER_S and stored == created == total
    TelemetryReading.objects.filter(vehicle_id__in=ids).delete()
    VehicleLiveState.objects.filter(vehicle_id__in=ids).delete()
    # The same batches through the ingest service in this process (parse + ingest + commit, no broker): what
    # the machine gives the service right now, so the bridge's own cost shows even on a busy machine.
    t0 = time.perf_counter()
    for owner, bodies in enumerate(per_client):
        for body in bodies:
            telemetry_ingest(readings=orjson.loads(body)["readings"], vehicle=vehicles[owner])
    mqtt_doc["service_alone_readings_per_s"] = round(total / (time.perf_counter() - t0))
    mqtt_doc["mqtt_over_service_alone"] = round(
        mqtt_doc["readings_per_s"] / mqtt_doc["service_alone_readings_per_s"], 2
    )
    TelemetryReading.objects.filter(vehicle_id__in=ids).delete()
    VehicleLiveState.objects.filter(vehicle_id__in=ids).delete()
    connections.close_all()

    http_doc = None if args.no_http else run_http(args)
    info["load_average_at_end"] = load_average()

    rows = [
        ("MQTT readings/s (first publish -> last answer)", f"{mqtt_doc['readings_per_s']:,}"),
        (
            "MQTT answer latency median / p95 (ms)",
            f"{mqtt_doc['answer_latency_ms_median']} / {mqtt_doc['answer_latency_ms_p95']}",
        ),
        ("MQTT readings created (answers) / stored (counted)", f"{created:,} / {stored:,} of {total:,}"),
        ("MQTT readings per CPU-second of the bridge process", f"{mqtt_doc['readings_per_bridge_cpu_s']:,}"),
        (
            "ingest service alone, same batches, same minutes (readings/s)",
            f"{mqtt_doc['service_alone_readings_per_s']:,}",
        ),
        ("MQTT / service alone", f"{mqtt_doc['mqtt_over_service_alone']}"),
    ]
    if http_doc:
        http = http_doc["results"]
        rows += [
            ("HTTP readings/s (gunicorn, 2 workers)", f"{http['readings_per_s']:,}"),
            (
                "HTTP batch latency median / p95 (ms)",
                f"{http['batch_latency_ms_median']} / {http['batch_latency_ms_p95']}",
            ),
        ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    verdict = "MEETS" if mqtt_doc["meets_target"] else "MISSES"
    print(
        f"\n{verdict} the target (>= 20,000 readings/s, one bridge). Load {info['load_average_at_start']} -> "
        f"{info['load_average_at_end']}."
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"mqtt-{dt.date.today().isoformat()}"
    doc = {"machine": info, "mqtt": mqtt_doc, "http": http_doc["results"] if http_doc else None}
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")

    def loads(values: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in values)

    md = [
        f"# Telemetry over MQTT vs HTTP ({dt.date.today().isoformat()})",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['platform']}, python {info['python']}, "
        f"{info['postgresql']} (synchronous_commit={info['synchronous_commit']}). Shared with other work: load "
        f"average at start {loads(info['load_average_at_start'])}, after the MQTT run "
        f"{loads(info['load_average_after_mqtt'])}, at end {loads(info['load_average_at_end'])}.",
        "",
        f"{args.batches} batches x {args.batch_size} readings, {args.clients} vehicles (one load-generator process "
        "each, own key). MQTT: private Mosquitto 2 with dynamic security, QoS 1, ONE `mqtt_ingest` process "
        "(acknowledges after the commit, answers per item); each vehicle publishes all its batches at once, "
        "so the answer latency includes the queue. HTTP: bench_telemetry_http.py, gunicorn with 2 sync "
        "workers. Everything on the same 2 cores.",
        "",
        "| what | value |",
        "|---|---:|",
        *[f"| {label} | {value} |" for label, value in rows],
        "",
        f"Target: >= 20,000 readings/s through one bridge process: **{verdict.lower()}**.",
        "",
        "Readings per CPU-second of the bridge process counts only that process's own CPU time (parse, "
        "validation, COPY buffers, MQTT): it is what the bridge could do with a core to itself; PostgreSQL's "
        "and the broker's work come on top, on the other core. On a busy machine the wall-clock rate follows "
        "the CPU the scheduler gives; compare it with the service alone measured in the same minutes.",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(f"Wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
