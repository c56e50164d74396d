"""Benchmark: the nightly battery-forecast job end to end with the database (issue 13 point 6: 1,000 packs
in 50 duty groups, with telemetry duties that include top-ups, every pack forecast every night, whole
nightly job <= 2 minutes on this 2-core machine).

    .venv/bin/python bench/bench_forecast_nightly.py                 # 1,000 packs, 20 % with capacity tests
    .venv/bin/python bench/bench_forecast_nightly.py --packs 200     # smaller
    .venv/bin/python bench/bench_forecast_nightly.py --observed-share 1.0 --rebuild   # every pack observed

Builds (once, untimed) a PostgreSQL database ``evfleet_bench_forecast`` (or uses ``DATABASE_URL``) with four
depots in the demo's four climates and 1,000 buses and vans with their packs, on 50 duties (``DUTIES``: 13
kinds in two depots, 12 in the other two). Planned duties are weekly blocks charged late at the depot; telemetry
duties are 21 days of daily duty-cycle summaries (the forecast takes their median): a bus parked full, a
bus with one midday top-up, a bus doing 2 EFC a day with two top-ups, a 95 % DoD bus, a van parked at 100 %, a
van with a DC top-up. A share of the packs has four capacity tests (ageing at a pack-specific rate). Then
times the nightly job for every depot (``batteries.nightly.forecast_depot_packs``, the battery stage: ordering
the packs by duty, reading the registry, calibrating two factors per observed pack, forecasting every pack
10 years with its band, storing forecasts and checking alerts), as production runs it: each depot's job is a
task on one Celery worker with ``--concurrency`` processes (2: the machine's cores), which fans its chunks (whole
duty groups) out to the same worker; timed from the first send to the last chunk done. Needs ``REDIS_URL`` (the
worker's broker: a Redis index of your own; the bench uses a private queue on it). Writes
bench/results/forecast-nightly-<date>[-<N>-packs-<S>pct-observed][-loaded].json and .md with the machine
and its load (``-loaded`` when the 1-minute load average at the start is 1.5 or more; an existing file is
never overwritten).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import common  # noqa: E402  (bench/, next to this script)
from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evfleet_bench_forecast"
AS_OF = dt.date(2026, 11, 21)
CLIMATES = {
    "hmo": ("Hermosillo", [17, 19, 22, 25, 29, 32, 32, 32, 31, 27, 21, 17]),
    "nog": ("Nogales", [9, 11, 14, 17, 21, 26, 26, 25, 23, 18, 13, 9]),
    "slrc": ("San Luis Rio Colorado", [13, 16, 19, 23, 27, 32, 33, 33, 30, 24, 17, 13]),
    "gym": ("Guaymas", [18, 19, 21, 23, 27, 30, 31, 31, 31, 28, 23, 19]),
}
#: The duties: (vehicle, kind, figures). "block": km per service day (6 days a week), charged late at the
#: depot. "telemetry": the median day (kWh discharged, SoC max and min %, hours above 90 % SoC, charge C-rate);
#: the forecast turns energy beyond one SoC swing into top-ups. The first 12 run in every depot, the 13th in
#: the first two: 4 x 12 + 2 = 50 duty groups.
DUTIES: tuple[tuple[str, str, tuple[float, ...]], ...] = (
    ("bus", "block", (120,)),
    ("bus", "block", (170,)),
    ("bus", "block", (220,)),
    ("bus", "block", (270,)),
    ("bus", "telemetry", (240, 95, 25, 6.0, 0.3)),  # one leg, parked full overnight
    ("bus", "telemetry", (420, 95, 25, 1.0, 0.6)),  # 1.2 EFC: one midday top-up
    ("bus", "telemetry", (700, 90, 20, 0.5, 1.0)),  # 2 EFC: two opportunity top-ups
    ("bus", "telemetry", (300, 100, 10, 3.0, 0.3)),  # 90 % DoD from 100 %
    ("van", "block", (80,)),
    ("van", "block", (160,)),
    ("van", "telemetry", (45, 100, 35, 10.0, 0.15)),  # parked at 100 % on AC
    ("van", "telemetry", (80, 90, 20, 0.5, 0.6)),  # 1.07 EFC: a DC top-up
    ("van", "telemetry", (25, 80, 45, 0.0, 0.15)),  # light use
)
DEPOTS_WITH_ALL_DUTIES = 2
TELEMETRY_DAYS = 21


def prepare_database() -> str:
    return common.prepare_database(DEFAULT_URL)


def build_fleet(packs: int, observed_share: float, seed: int = 7, rebuild: bool = False) -> None:
    """The bench world; rebuilt only when its size differs or ``rebuild`` (setup is not timed)."""
    from django.db import transaction
    from django.utils import timezone

    from batteries.models import BatteryPack, HealthObservation, PackInstallation, SoHForecast
    from fleet.models import Block, BlockAssignment, DailyDutyCycle, Depot, Organization, Vehicle, VehicleModel
    from tests.factories import make_vin

    org, _ = Organization.objects.get_or_create(slug="bench-forecast", defaults={"name": "Bench forecast"})
    if not rebuild and BatteryPack.objects.filter(organization=org).count() == packs:
        return
    rng = random.Random(seed)
    print(f"building {packs} packs (once) ...", flush=True)
    with transaction.atomic():
        SoHForecast.objects.filter(pack__organization=org).delete()
        HealthObservation.objects.filter(pack__organization=org).delete()
        BlockAssignment.objects.filter(vehicle__organization=org).delete()
        DailyDutyCycle.objects.filter(vehicle__organization=org).delete()
        PackInstallation.objects.filter(pack__organization=org).delete()
        BatteryPack.objects.filter(organization=org).delete()
        Block.objects.filter(depot__organization=org).delete()
        Vehicle.objects.filter(organization=org).delete()
        bus, _ = VehicleModel.objects.get_or_create(
            manufacturer="Bench",
            name="12 m bus LFP",
            defaults={
                "kind": "bus",
                "chemistry": "LFP",
                "nominal_pack_kwh": 350,
                "consumption_kwh_per_km": 1.2,
                "max_dc_kw": 150,
            },
        )
        van, _ = VehicleModel.objects.get_or_create(
            manufacturer="Bench",
            name="e-van NMC",
            defaults={
                "kind": "van",
                "chemistry": "NMC",
                "nominal_pack_kwh": 75,
                "consumption_kwh_per_km": 0.25,
                "max_ac_kw": 11,
                "max_dc_kw": 50,
            },
        )
        depots = []
        for code, (name, climate) in CLIMATES.items():
            depot, _ = Depot.objects.get_or_create(
                organization=org,
                code=code,
                defaults={"name": name, "grid_limit_kw": 5000, "monthly_mean_temperature_c": climate},
            )
            depots.append(depot)
        vehicles, pack_rows, duties = [], [], []
        for i in range(packs):
            d = i % len(depots)
            kinds = len(DUTIES) if d < DEPOTS_WITH_ALL_DUTIES else len(DUTIES) - 1
            duty = DUTIES[(i // len(depots)) % kinds]
            duties.append(duty)
            vehicles.append(
                Vehicle(
                    organization=org,
                    fleet_number=f"BF-{i:05d}",
                    vin=make_vin(900_000 + i),
                    model=bus if duty[0] == "bus" else van,
                    home_depot=depots[d],
                )
            )
        Vehicle.objects.bulk_create(vehicles)
        for i, vehicle in enumerate(vehicles):
            lfp = vehicle.model_id == bus.pk
            pack_rows.append(
                BatteryPack(
                    organization=org,
                    serial=f"BENCH-{i:06d}",
                    chemistry="LFP" if lfp else "NMC",
                    nominal_kwh=350 if lfp else 75,
                    nominal_ah=544 if lfp else 210,
                    cells_in_series=200 if lfp else 96,
                    cells_in_parallel=2 if lfp else 3,
                    manufactured_on=AS_OF - dt.timedelta(days=rng.randint(60, 6 * 365)),
                    warranty_years=8,
                    warranty_min_soh_pct=70,
                )
            )
        BatteryPack.objects.bulk_create(pack_rows)
        PackInstallation.objects.bulk_create(
            PackInstallation(pack=p, vehicle=v, installed_at=timezone.make_aware(dt.datetime(2020, 1, 1)))
            for p, v in zip(pack_rows, vehicles, strict=True)
        )
        # Planned duties: one weekly block per vehicle (a block is one vehicle's duty on a day).
        planned = [(v, duty) for v, duty in zip(vehicles, duties, strict=True) if duty[1] == "block"]
        blocks = Block.objects.bulk_create(
            Block(
                depot=vehicle.home_depot,
                code=f"B-{vehicle.fleet_number}",
                weekdays=[0, 1, 2, 3, 4, 5],
                valid_from=AS_OF - dt.timedelta(days=60),
                departs_at=dt.time(5),
                returns_at=dt.time(21),
                distance_km=duty[2][0],
            )
            for vehicle, duty in planned
        )
        assignments, cycles, observations = [], [], []
        for block, (vehicle, _duty) in zip(blocks, planned, strict=True):
            block.depot = vehicle.home_depot
            for offset in range(-14, 14):
                day = AS_OF + dt.timedelta(days=offset)
                if block.runs_on(day):
                    starts, ends = block.window_on(day)
                    assignments.append(
                        BlockAssignment(block=block, vehicle=vehicle, service_date=day, starts_at=starts, ends_at=ends)
                    )
        # Telemetry duties: daily summaries around the duty's figures (symmetric scatter: the median is the duty).
        for vehicle, pack, duty in zip(vehicles, pack_rows, duties, strict=True):
            if duty[1] != "telemetry":
                continue
            energy, soc_max, soc_min, hours_full, charge_c = duty[2]
            kwh_per_km = 1.2 if duty[0] == "bus" else 0.25
            air = CLIMATES[vehicle.home_depot.code][1][AS_OF.month - 1]
            for day in range(TELEMETRY_DAYS):
                scatter = 1 + 0.01 * (day % 7 - 3)
                used = energy * scatter
                cycles.append(
                    DailyDutyCycle(
                        vehicle=vehicle,
                        date=AS_OF - dt.timedelta(days=day),
                        time_zone="America/Hermosillo",
                        reading_count=1440,
                        distance_km=used / kwh_per_km,
                        energy_used_kwh=used,
                        energy_charged_kwh=used * 1.05,
                        kwh_per_km=kwh_per_km,
                        capacity_kwh=pack.nominal_kwh,
                        equivalent_full_cycles=used / pack.nominal_kwh,
                        soc_min_pct=soc_min,
                        soc_max_pct=soc_max,
                        soc_mean_pct=(soc_min + soc_max) / 2,
                        minutes_above_90_soc=60 * hours_full,
                        pack_temp_mean_c=air + 4,
                        pack_temp_max_c=air + 10,
                        max_charge_c_rate=charge_c,
                        max_discharge_c_rate=0.5,
                    )
                )
        for pack in pack_rows:
            if rng.random() < observed_share:
                age_days = (AS_OF - pack.manufactured_on).days
                rate = 2.0 * math.exp(rng.gauss(0, 0.3))  # %/yr, the pack's own
                for k in range(4):  # four capacity tests over the pack's life
                    day = pack.manufactured_on + dt.timedelta(days=age_days * (k + 1) // 5)
                    soh = 100 - rate * (day - pack.manufactured_on).days / 365 + rng.gauss(0, 0.4)
                    observations.append(
                        HealthObservation(
                            pack=pack,
                            observed_at=timezone.make_aware(dt.datetime.combine(day, dt.time(10))),
                            source="capacity_test",
                            soh_pct=round(soh, 2),
                            uncertainty_pct=0.5,
                        )
                    )
        BlockAssignment.objects.bulk_create(assignments, batch_size=5000)
        DailyDutyCycle.objects.bulk_create(cycles, batch_size=5000)
        HealthObservation.objects.bulk_create(observations, batch_size=5000)
    print("built", flush=True)


def machine(database_url: str) -> dict:
    return machine_info("pybamm", database=database_url.rsplit("@", 1)[-1])


def _start_worker(env: dict, concurrency: int, log_path: Path) -> subprocess.Popen:
    """One Celery worker with ``concurrency`` prefork processes on the bench's private queue: the 2-core
    deployment's worker, as the night runs in production (depot jobs fan their chunks out to it)."""
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork", f"--concurrency={concurrency}",
        "-Q", env["CELERY_TASK_DEFAULT_QUEUE"], "-n", "bench-forecast@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel=INFO",
    ]  # fmt: skip
    with log_path.open("w") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def night_on_worker(depots: list, *, concurrency: int, broker_url: str, timeout_s: float) -> dict:
    """Tonight's battery-forecast job of every depot, sent as tasks (forced: a pending run each) to one Celery
    worker with ``concurrency`` processes; timed from the first send to the last chunk finished. CPU seconds:
    the worker's processes (reaped at its shutdown) and this process."""
    from batteries.nightly import CHUNK_JOB, DEPOT_JOB
    from config.celery import app
    from jobs.models import JobRun
    from jobs.nightly import NIGHTLY_JOB_TASK
    from jobs.runs import job_pending_row
    from jobs.tasks import job_chunk_task, nightly_job_task

    queue = f"bench-forecast-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "REDIS_URL": broker_url, "CELERY_TASK_DEFAULT_QUEUE": queue, "PYTHONUNBUFFERED": "1"}
    log = ROOT / "var" / "bench-forecast-nightly-worker.log"
    log.parent.mkdir(exist_ok=True)
    worker = _start_worker(env, concurrency, log)
    try:
        deadline = time.monotonic() + 300
        while " ready." not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not start: " + log.read_text(errors="replace")[-2000:])
            time.sleep(0.5)
        app.conf.update(broker_url=broker_url, task_always_eager=False, task_default_queue=queue)
        # A run of an earlier bench that never finished (stopped, or its queue lost) left pending rows: a new
        # fan-out would reuse them (a pending key runs once) and this night's count would miss them.
        JobRun.objects.filter(
            job__in=[DEPOT_JOB, CHUNK_JOB], depot__in=depots, status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING]
        ).update(status=JobRun.Status.INTERRUPTED, error="left unfinished by an earlier bench run")
        cpu_before = os.times()
        started = time.perf_counter()
        sent_at = dt.datetime.now(dt.UTC)
        depot_runs = []
        for depot in depots:
            arguments = {"job": DEPOT_JOB, "depot_id": depot.pk, "night": AS_OF.isoformat()}
            row = job_pending_row(
                job=DEPOT_JOB,
                key=f"{DEPOT_JOB}:bench:{uuid.uuid4().hex[:8]}:depot={depot.pk}",
                task_name=NIGHTLY_JOB_TASK,
                arguments=arguments,
                depot_id=depot.pk,
                night=AS_OF,
            )
            depot_runs.append(row.pk)
            nightly_job_task.apply_async(kwargs={**arguments, "job_run_id": row.pk}, queue=queue)
        unfinished = [JobRun.Status.PENDING, JobRun.Status.RUNNING]
        chunks = JobRun.objects.filter(job=CHUNK_JOB, created_at__gte=sent_at)
        busy_at, resent = time.perf_counter(), 0
        while (
            JobRun.objects.filter(pk__in=depot_runs, status__in=unfinished).exists()
            or chunks.filter(status__in=unfinished).exists()
        ):
            if worker.poll() is not None:
                raise RuntimeError("the worker died: " + log.read_text(errors="replace")[-2000:])
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"the night did not finish in {timeout_s:.0f} s")
            if chunks.filter(status=JobRun.Status.RUNNING).exists():
                busy_at = time.perf_counter()
            elif time.perf_counter() - busy_at > 30 and chunks.filter(status=JobRun.Status.PENDING).exists():
                # The shared Redis of a loaded test machine was flushed under a run (its queued chunks vanished):
                # send the pending chunks again (a chunk's run row makes a second delivery a no-op).
                for row in chunks.filter(status=JobRun.Status.PENDING):
                    job_chunk_task.apply_async(kwargs={**row.arguments, "job_run_id": row.pk}, queue=queue)
                    resent += 1
                busy_at = time.perf_counter()
            time.sleep(0.5)
        wall = time.perf_counter() - started
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    cpu_after = os.times()
    cpu = sum(
        getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("user", "system", "children_user", "children_system")
    )
    runs = JobRun.objects.filter(pk__in=depot_runs).select_related("depot").order_by("depot__code")
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "depot_jobs": [
            {
                "depot": r.depot.code,
                "status": r.status,
                "seconds": round(r.duration_seconds or 0, 1),
                "summary": r.summary,
            }
            for r in runs
        ],
        "chunks": [
            {
                "key": c.key.split(":", 1)[1],
                "status": c.status,
                "seconds": round(c.duration_seconds or 0, 1),
                "summary": c.summary,
            }
            for c in chunks.order_by("started_at")
        ],
        "failed_runs": JobRun.objects.filter(pk__in=depot_runs).exclude(status=JobRun.Status.SUCCEEDED).count()
        + chunks.exclude(status=JobRun.Status.SUCCEEDED).count(),
        "sent_at": sent_at,
        "chunks_sent_again": resent,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=int, default=1000)
    parser.add_argument("--observed-share", type=float, default=0.2, help="share of packs with capacity tests")
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the world (needed when only --observed-share changed)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=2, help="the Celery worker's processes (the machine's cores)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds of night")
    parser.add_argument("--tag", default="", help="added to the result's file name (e.g. 'quiet')")
    args = parser.parse_args()
    broker_url = os.environ.get("REDIS_URL", "")
    if not broker_url:
        raise SystemExit("the night runs on a Celery worker: set REDIS_URL (its broker; a Redis index of your own)")
    url = prepare_database()
    build_fleet(args.packs, args.observed_share, rebuild=args.rebuild)

    from batteries.models import ForecastRun, SoHForecast
    from batteries.nightly import chunk_size
    from fleet.models import Depot

    info = machine(url)
    depots = list(Depot.objects.filter(organization__slug="bench-forecast").order_by("code"))
    night = night_on_worker(depots, concurrency=args.concurrency, broker_url=broker_url, timeout_s=args.timeout)
    wall, cpu = night["wall_seconds"], night["cpu_seconds"]
    for d in night["depot_jobs"]:
        print(f"{d['depot']:5s} {d['seconds']:7.1f} s  {d['summary']}", flush=True)
    for c in night["chunks"]:
        print(f"  {c['key']:60s} {c['seconds']:7.1f} s  {c['summary']}", flush=True)
    runs = ForecastRun.objects.filter(as_of=AS_OF, started_at__gte=night["sent_at"])
    stored = SoHForecast.objects.filter(as_of=AS_OF, pack__organization__slug="bench-forecast", run__in=runs).count()
    # One ForecastRun per chunk: the sum of their duty groups is the number of group simulations.
    group_runs = sum(run.duty_groups for run in runs)
    simulated_days = sum(run.simulated_days or 0 for run in runs)
    from fleet.models import Vehicle

    kinds_per_depot = [len(DUTIES) if d < DEPOTS_WITH_ALL_DUTIES else len(DUTIES) - 1 for d in range(len(depots))]
    per_depot_packs = Vehicle.objects.filter(organization__slug="bench-forecast").count() // max(len(depots), 1)
    duties = sum(min(k, per_depot_packs) for k in kinds_per_depot)
    info["load_average_at_end"] = load_average()
    target = 120
    loaded = info["load_average_at_start"][0] >= 1.5
    result = {
        "benchmark": "nightly battery forecasts through the database, on a Celery worker",
        "as_of": AS_OF.isoformat(),
        "packs": args.packs,
        "observed_share": args.observed_share,
        "forecasts_stored": stored,
        "duties": duties,
        "group_simulations": group_runs,
        "simulated_days": simulated_days,
        "chunk_size": chunk_size(),
        "worker_concurrency": args.concurrency,
        "wall_seconds": round(wall, 1),
        "cpu_seconds_process_and_children": round(cpu, 1),
        "failed_runs": night["failed_runs"],
        "chunks_sent_again": night["chunks_sent_again"],
        "target_seconds": target,
        "met": wall <= target and not night["failed_runs"],
        "loaded": loaded,
        "depot_jobs": night["depot_jobs"],
        "chunks": night["chunks"],
        "machine": info,
    }
    name = f"forecast-nightly-{dt.date.today().isoformat()}"
    if (args.packs, args.observed_share) != (1000, 0.2):  # the case keeps the plain name
        name += f"-{args.packs}-packs-{round(100 * args.observed_share)}pct-observed"
    if args.tag:
        name += f"-{args.tag}"
    if loaded:
        name += "-loaded"
    out = ROOT / "bench" / "results" / name
    k = 2
    while out.with_suffix(".json").exists() or out.with_suffix(".md").exists():  # never overwrite a result
        out = ROOT / "bench" / "results" / f"{name}-{k}"
        k += 1
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(
        "# Nightly battery forecasts through the database, on a Celery worker\n\n"
        f"{args.packs} packs ({args.observed_share:.0%} with capacity tests) on {duties} duties (duty groups), "
        f"{group_runs} group simulations ({simulated_days} simulated days) in chunks of at most {chunk_size()} "
        f"whole groups, {stored} forecasts stored, on one Celery worker with {args.concurrency} processes: "
        f"**{wall:.0f} s wall** ({cpu:.0f} CPU s, this process and the worker's), target <= {target} s on 2 "
        f"cores: {'met' if result['met'] else 'missed'}"
        f"{' (on a machine loaded by other jobs: see the load average)' if loaded else ''}"
        f"{'; ' + str(night['failed_runs']) + ' job runs failed' if night['failed_runs'] else ''}.\n\n"
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['platform']}, PyBaMM {info['pybamm']}; "
        f"load average {info['load_average_at_start']} at start, {info['load_average_at_end']} at end.\n\n"
        "| depot job | seconds | summary |\n|---|---:|---|\n"
        + "".join(f"| {d['depot']} | {d['seconds']} | {d['summary']} |\n" for d in night["depot_jobs"])
        + "\n| chunk | seconds | summary |\n|---|---:|---|\n"
        + "".join(f"| {c['key']} | {c['seconds']} | {c['summary']} |\n" for c in night["chunks"])
    )
    print(
        f"\n{args.packs} packs, {duties} duties, {group_runs} group simulations: {wall:.0f} s wall, "
        f"{cpu:.0f} CPU s (target {target} s) -> {out}.md"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
