"""Benchmark: one OCPP central system (``manage.py run_csms``) with many simulated chargers on 127.0.0.1.

    .venv/bin/python bench/bench_csms.py [--chargers 500] [--depots 10] [--meter-seconds 60] [--interval 10]

Database: ``DATABASE_URL`` or its own ``evfleet_bench_csms``. The chargers (half OCPP 1.6J, half 2.0.1, 2 connectors
each) are spread over ``--depots`` depots; connector 1 of each charges a bus of its depot (a transaction with SoC),
connector 2 is idle. The chargers run in 2 client processes (the ``csms.simulator`` the tests use); the central
system is one process, as in production.

Measured (issue 15 targets):
- connect + boot: from starting the clients until every charger is connected, booted and reported its connectors'
  status (target <= 30 s);
- meter values: the round trip of every MeterValues (1.6) / TransactionEvent Updated (2.0.1), every connector every
  ``--interval`` s for ``--meter-seconds`` (target p95 <= 100 ms);
- plan delivered: a new plan for every depot, committed at once; from the commit until every charger's
  SetChargingProfile answers are recorded as Accepted (target <= 10 s).
Writes bench/results/csms-<date>[-label].json and .md with the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402  (bench/, next to this script)
from machine_info import load_average, machine_info  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evfleet_bench_csms"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database() -> str:
    return common.prepare_database(DEFAULT_URL)


def make_depots(chargers: int, depots: int) -> list[dict]:
    """Depots, chargers (2 x 150 kW connectors), a bus per charger with a block tomorrow and an RFID token.
    Returns the chargers as plain dicts for the client processes (identity, password, version)."""
    from charging.models import Charger, Connector
    from charging.planning import current_service_night
    from csms.models import ChargePoint, IdToken
    from csms.services import charger_password_issue
    from fleet.models import Block, Depot, Organization, Vehicle, VehicleModel
    from fleet.services import block_assign

    org, _ = Organization.objects.get_or_create(slug="bench-csms", defaults={"name": "Bench CSMS"})
    model, _ = VehicleModel.objects.get_or_create(
        manufacturer="Bench",
        name="12 m CSMS",
        defaults={"kind": "bus", "nominal_pack_kwh": 350, "consumption_kwh_per_km": 1.2, "max_dc_kw": 150},
    )
    out = []
    per_depot = -(-chargers // depots)
    for d in range(depots):
        depot, _ = Depot.objects.get_or_create(
            organization=org, code=f"bcs{d}", defaults={"name": f"Bench CSMS {d}", "grid_limit_kw": 3000}
        )
        night = current_service_night(depot)
        for i in range(per_depot):
            n = d * per_depot + i
            if n >= chargers:
                break
            identity = f"BENCH-CP-{n:04d}"
            charger, created = Charger.objects.get_or_create(
                ocpp_charge_point_id=identity,
                defaults={"depot": depot, "name": f"Bench {n}", "kind": "dc", "max_kw": 300},
            )
            if created:
                for c in (1, 2):
                    Connector.objects.create(charger=charger, connector_id=c, standard="ccs2", max_kw=150)
            bus, _ = Vehicle.objects.get_or_create(
                vin=f"BENCHCSMS{n:08d}",
                defaults={"organization": org, "fleet_number": f"BC-{n:04d}", "model": model, "home_depot": depot},
            )
            block, _ = Block.objects.get_or_create(
                depot=depot,
                code=f"BC-{n}",
                service_date=night + dt.timedelta(days=1),
                defaults={"departs_at": dt.time(6), "returns_at": dt.time(12), "distance_km": 150},
            )
            if not block.assignments.exists():
                block_assign(block=block, vehicle=bus, service_date=block.service_date)
            IdToken.objects.get_or_create(token=f"BC-{n:04d}", defaults={"vehicle": bus})
            _cp, password = charger_password_issue(charger=charger)
            out.append(
                {
                    "identity": identity,
                    "password": password,
                    "version": "1.6" if n % 2 == 0 else "2.0.1",
                    "token": f"BC-{n:04d}",
                }  # fmt: skip
            )
    ChargePoint.objects.filter(charger__ocpp_charge_point_id__startswith="BENCH-CP-").update(connected=False)
    return out


# --- Client processes (no Django) ---------------------------------------------------------------------------


def client_process(url: str, chargers: list[dict], interval: float, meter_seconds: float, queue, go, report) -> None:
    asyncio.run(_clients(url, chargers, interval, meter_seconds, queue, go, report))


async def _clients(url: str, chargers: list[dict], interval: float, meter_seconds: float, queue, go, report) -> None:
    from csms.simulator import SimulatedCharger

    sims = [
        SimulatedCharger.make(
            url, c["identity"], c["password"], c["version"], {1: 150_000.0, 2: 150_000.0}, response_timeout=60
        )  # fmt: skip
        for c in chargers
    ]
    started = time.monotonic()

    async def up(sim: SimulatedCharger) -> None:
        for attempt in range(5):  # as chargers do: try again after a refused or timed-out handshake
            try:
                await sim.connect()
                break
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(1 + attempt)
        await sim.boot()
        for number in sim.connectors:
            await sim.status(number, "Available")

    results = await asyncio.gather(*(up(sim) for sim in sims), return_exceptions=True)
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    queue.put(("booted", time.monotonic() - started, failures[:5], len(failures)))
    await asyncio.get_running_loop().run_in_executor(None, go.wait)

    tokens = {sim.identity: c["token"] for sim, c in zip(sims, chargers, strict=True)}
    sims = [sim for sim, result in zip(sims, results, strict=True) if not isinstance(result, BaseException)]
    stop = asyncio.Event()

    async def meter(sim: SimulatedCharger, offset: float) -> None:
        await asyncio.sleep(offset)  # spread evenly over the interval, as independent chargers are
        await sim.start_transaction(1, tokens[sim.identity], soc_pct=30.0)  # a bus plugs in, then reports
        sim.meter_latencies_s.clear()
        while not stop.is_set():
            for number in sim.connectors:
                sent_at = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
                latency = await sim.meter_values(number, interval_s=interval)
                timeline.append((sent_at, latency))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    timeline: list[tuple[float, float]] = []  # (sent at, round trip) of every meter value
    tasks = [asyncio.create_task(meter(sim, interval * i / len(sims))) for i, sim in enumerate(sims)]
    await asyncio.sleep(meter_seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    queue.put(("meter", timeline))
    # Stay connected for the plan: report how many profiles arrived, when asked.
    await asyncio.get_running_loop().run_in_executor(None, report.wait)
    queue.put(("profiles", sum(len(sim.received) for sim in sims)))
    await asyncio.gather(*(sim.close() for sim in sims), return_exceptions=True)


# --- The run ------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument("--depots", type=int, default=10)
    parser.add_argument("--meter-seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--label", default="")
    parser.add_argument("--profile", default="", help="Write a cProfile of the central system to this file.")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5", help="Broker for the re-plans it queues.")
    args = parser.parse_args()

    url = prepare_database()
    info = machine_info("ocpp", "websockets", "Django")
    print(f"machine load at start: {info['load_average_at_start']}", flush=True)
    chargers = make_depots(args.chargers, args.depots)
    print(f"{len(chargers)} chargers ready", flush=True)

    from django.db import connection, transaction

    from charging.models import ChargingPlan
    from charging.planning import current_service_night, plan_depot_night
    from csms.models import ProfileDelivery
    from fleet.models import Depot

    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="bench-csms-", suffix=".log", delete=False)  # noqa: SIM115
    # Re-plans after plug-in events go to Celery workers, as in production (not run inside the central system).
    redis_url = args.redis_url
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "DEBUG": "false", "LOG_LEVEL": "WARNING",
           "SECRET_KEY": "bench-only-not-a-secret-0123456789abcdef", "ALLOWED_HOSTS": "127.0.0.1",
           "EVFLEET_CSMS_MESSAGES_PER_MINUTE": "120"}  # fmt: skip
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    server = subprocess.Popen(
        [sys.executable, *profile, "manage.py", "run_csms", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        while "listening" not in Path(log.name).read_text():
            if server.poll() is not None:
                raise SystemExit(Path(log.name).read_text())
            time.sleep(0.1)
        ctx = multiprocessing.get_context("spawn")
        queue, go, report = ctx.Queue(), ctx.Event(), ctx.Event()
        shares = [chargers[i :: args.clients] for i in range(args.clients)]
        started = time.monotonic()
        procs = [
            ctx.Process(
                target=client_process,
                args=(f"ws://127.0.0.1:{port}/ocpp", share, args.interval, args.meter_seconds, queue, go, report),
            )
            for share in shares
        ]
        for p in procs:
            p.start()
        booted = [queue.get(timeout=300) for _ in procs]
        boot_s = time.monotonic() - started
        failures = sum(b[3] for b in booted)
        print(
            f"connected and booted: {boot_s:.1f} s (failures: {failures}; {[b[2] for b in booted if b[2]]})", flush=True
        )

        load_during_meter = None
        cpu_boot = cpu_seconds(server.pid)
        go.set()
        # The first interval also holds every charger's StartTransaction (plug-in events, re-plans queued); the
        # steady state, after it, is meter values only: its CPU per message is the figure that scales.
        warmup_s = min(1.5 * args.interval, args.meter_seconds / 2)
        time.sleep(warmup_s)
        cpu_steady, steady_from = cpu_seconds(server.pid), time.monotonic()
        time.sleep(max(args.meter_seconds / 2 - warmup_s, 0.0))
        load_during_meter = load_average()
        timeline = []
        for _ in procs:
            kind, values = queue.get(timeout=args.meter_seconds + 300)
            timeline.extend(values)
        cpu_end = cpu_seconds(server.pid)
        cpu_meter = cpu_end - cpu_boot
        latencies = [latency for _sent, latency in timeline]
        steady = [latency for sent, latency in timeline if sent >= steady_from]
        cpu_steady_ms = 1000 * (cpu_end - cpu_steady) / max(len(steady), 1)
        p50, p95, p99 = (percentile(latencies, q) * 1000 for q in (50, 95, 99))
        steady_p95 = percentile(steady, 95) * 1000 if steady else float("nan")
        rate = len(latencies) / args.meter_seconds
        print(
            f"meter values: {len(latencies)} ({rate:.0f}/s), p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms; "
            f"steady state (after the starts) p95 {steady_p95:.1f} ms, central system CPU {cpu_steady_ms:.2f} ms "
            f"a message ({cpu_meter:.1f} s over the whole phase)",
            flush=True,
        )

        depots = list(Depot.objects.filter(code__startswith="bcs"))
        cpu_before_plan = cpu_seconds(server.pid)
        solve_started = time.monotonic()
        with transaction.atomic():
            plans = [plan_depot_night(depot=d, service_night=current_service_night(d)) for d in depots]
        committed = time.monotonic()
        plan_ids = [p.pk for p in plans]
        expected = len(chargers)
        accepted = 0
        while time.monotonic() - committed < 120:
            accepted = ProfileDelivery.objects.filter(plan_id__in=plan_ids, status="accepted").count()
            if accepted >= expected:
                break
            time.sleep(0.1)
        delivered_s = time.monotonic() - committed
        cpu_plan = cpu_seconds(server.pid) - cpu_before_plan
        connection.close()
        print(
            f"plans for {len(depots)} depots solved in {committed - solve_started:.1f} s; "
            f"{accepted}/{expected} chargers accepted their profiles {delivered_s:.1f} s after the commit"
        )
        report.set()
        profiles = sum(queue.get(timeout=60)[1] for _ in procs)
        for p in procs:
            p.join(60)
        active = ChargingPlan.objects.filter(pk__in=plan_ids, status="active").count()
    finally:
        server.terminate()
        server.wait(20)
        import redis

        redis.Redis.from_url(redis_url).delete("celery")  # the re-plan messages no worker took

    result = {
        "machine": {
            **info,
            "load_average_during_meter_values": load_during_meter,
            "load_average_at_end": load_average(),
        },
        "chargers": len(chargers),
        "versions": {
            "1.6": sum(c["version"] == "1.6" for c in chargers),
            "2.0.1": sum(c["version"] == "2.0.1" for c in chargers),
        },
        "connectors_per_charger": 2,
        "depots": args.depots,
        "client_processes": args.clients,
        "connect_and_boot_s": round(boot_s, 2),
        "connect_failures": failures,
        "meter_values": {
            "count": len(latencies),
            "per_s": round(rate, 1),
            "interval_s": args.interval,
            "p50_ms": round(p50, 1),
            "p95_ms": round(p95, 1),
            "p99_ms": round(p99, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
            # The central system's CPU (user + system) over the meter phase, which also holds the 500 starts,
            # and per meter value in the steady state after them.
            "csms_cpu_s": round(cpu_meter, 2),
            "steady_state": {
                "count": len(steady),
                "p95_ms": round(steady_p95, 1),
                "csms_cpu_ms_per_message": round(cpu_steady_ms, 2),
            },
        },  # fmt: skip
        "plan": {
            "depots": len(plan_ids),
            "active": active,
            "chargers_accepted": accepted,
            "delivered_s_after_commit": round(delivered_s, 2),
            "profiles_received_by_clients": profiles,
            "csms_cpu_s_while_delivering": round(cpu_plan, 2),  # meter values still arriving meanwhile
        },  # fmt: skip
        "targets": {"connect_and_boot_s": 30, "meter_values_p95_ms": 100, "plan_delivered_s": 10},
    }
    stamp = dt.date.today().isoformat() + (f"-{args.label}" if args.label else "")
    out = ROOT / "bench" / "results" / f"csms-{stamp}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    md = [
        f"# OCPP central system, {len(chargers)} simulated chargers ({stamp})",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores (shared or quiet: see the load averages).",
        f"Load average at start {info['load_average_at_start']}, during meter values {load_during_meter}, "
        f"at end {result['machine']['load_average_at_end']}.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| connect + boot + status, {len(chargers)} chargers | {boot_s:.1f} s ({failures} failed) | <= 30 s |",
        f"| meter values round trip p95 ({len(latencies)} at {rate:.0f}/s) "
        f"| {p95:.1f} ms (p50 {p50:.1f}, p99 {p99:.1f}) | <= 100 ms |",
        f"| plan delivered (commit -> all Accepted recorded) | {delivered_s:.1f} s ({accepted}/{expected}) | <= 10 s |",
        "",
        f"Central system CPU (user + system): {cpu_steady_ms:.2f} ms per meter value in the steady state after "
        f"every charger's StartTransaction (there p95 {steady_p95:.1f} ms over {len(steady)} values); "
        f"{cpu_meter:.1f} s over the whole meter phase with the starts; {cpu_plan:.1f} s while delivering the plan.",
        "",
        "Re-run: `.venv/bin/python bench/bench_csms.py` (see its docstring).",
    ]  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {out}.json/.md", flush=True)


if __name__ == "__main__":
    main()
