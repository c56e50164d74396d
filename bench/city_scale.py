"""City scale: a generated fleet of 100 depots, 5,000 vehicles and 90 days of history, and every admin changelist
and API list timed on it, with its query count.

    .venv/bin/python bench/city_scale.py [--scale 1.0] [--readings-per-day 4] [--skip-generate]

``--scale`` shrinks everything but the days (0.1: 10 depots, 500 vehicles). Uses ``DATABASE_URL`` if it names
PostgreSQL, else its own database ``evfleet_bench_city`` on 127.0.0.1; the generator empties the tables it fills
first. Writes bench/results/city-scale-<date>[-<label>].json and .md.

What is generated (``generate``, also used by tests/hardening/test_city_scale_queries.py at tiny sizes): one
organisation per 10 depots, each depot with 50 buses (their packs installed), 10 DC chargers of two connectors, a
manager per organisation and a staff member per depot; per vehicle and day a duty cycle and
``readings_per_day`` telemetry readings; per pack a weekly health observation and a weekly forecast (with its
points); per depot and night an active charging plan charging every bus, a depot event, an alert and a job run.
Bulk: ``bulk_create`` in batches and, for the big tables (readings, duty cycles, planned charges),
``INSERT ... SELECT`` over ``generate_series``/``unnest`` made by the database.

Target (issue 20): every admin changelist and API list answers in <= 300 ms, with a query count that does not
grow with the rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import zoneinfo
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evfleet_bench_city"
TARGET_MS = 300
BATCH = 5000


@dataclass(frozen=True)
class CitySize:
    depots: int = 100
    vehicles_per_depot: int = 50
    chargers_per_depot: int = 10
    days: int = 90
    readings_per_day: int = 4

    @classmethod
    def scaled(cls, scale: float, *, days: int = 90, readings_per_day: int = 4) -> CitySize:
        return cls(depots=max(1, round(100 * scale)), days=days, readings_per_day=readings_per_day)

    @property
    def vehicles(self) -> int:
        return self.depots * self.vehicles_per_depot


def _bulk(model, rows: list) -> list:
    return model.objects.bulk_create(rows, batch_size=BATCH)


def generate(size: CitySize, *, tag: str = "city") -> dict:
    """Fill the database with a city of ``size``; returns ids of the people to sign in as and row counts."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from batteries.models import BatteryPack, HealthObservation, PackInstallation, SoHForecast
    from charging.models import Alert, Charger, ChargingPlan, Connector, DepotEvent
    from fleet.models import Depot, DepotMembership, Organization, Vehicle, VehicleModel
    from jobs.models import JobRun

    User = get_user_model()
    counts: dict[str, int] = {}
    phases: dict[str, float] = {}
    lap_started = time.perf_counter()

    def lap(phase: str) -> None:
        """Record how long the phase since the previous lap took (the fill's time, by table)."""
        nonlocal lap_started
        now = time.perf_counter()
        phases[phase] = round(now - lap_started, 1)
        lap_started = now
        print(f"  {phase}: {phases[phase]} s", flush=True)

    # The history ends tonight (the depots' local date), so that "tonight's plan" exists.
    first_night = timezone.localdate(timezone=zoneinfo.ZoneInfo("America/Hermosillo")) - dt.timedelta(
        days=size.days - 1
    )
    nights = [first_night + dt.timedelta(days=d) for d in range(size.days)]
    with transaction.atomic():
        organizations = _bulk(
            Organization,
            [Organization(name=f"{tag} city {n}", slug=f"{tag}-city-{n}") for n in range((size.depots + 9) // 10)],
        )
        depots = _bulk(
            Depot,
            [
                Depot(
                    organization=organizations[n // 10],
                    name=f"{tag} depot {n:03d}",
                    code=f"{tag}{n:03d}",
                    time_zone="America/Hermosillo",
                    grid_limit_kw=2000.0,
                )
                for n in range(size.depots)
            ],
        )
        model, _ = VehicleModel.objects.get_or_create(
            manufacturer="Bench",
            name="City 12 m",
            defaults={"kind": "bus", "nominal_pack_kwh": 350, "consumption_kwh_per_km": 1.2, "max_dc_kw": 150},
        )
        vehicles = _bulk(
            Vehicle,
            [
                Vehicle(
                    organization=depot.organization,
                    fleet_number=f"{depot.code}-{i:03d}",
                    vin=f"{tag[:3].upper()}{depot.pk:06d}{i:08d}"[:17].replace("I", "1").replace("O", "0"),
                    model=model,
                    home_depot=depot,
                )
                for depot in depots
                for i in range(size.vehicles_per_depot)
            ],
        )
        packs = _bulk(
            BatteryPack,
            [
                BatteryPack(
                    organization=vehicle.organization,
                    serial=f"{tag.upper()}-{vehicle.pk:08d}",
                    nominal_kwh=350.0,
                    nominal_ah=544.0,
                    cells_in_series=200,
                    cells_in_parallel=2,
                    manufactured_on=dt.date(2023, 1, 1) + dt.timedelta(days=vehicle.pk % 700),
                    warranty_years=8,
                    warranty_min_soh_pct=70.0,
                )
                for vehicle in vehicles
            ],
        )
        installed = timezone.make_aware(dt.datetime(2024, 1, 1))
        _bulk(
            PackInstallation,
            [PackInstallation(pack=p, vehicle=v, installed_at=installed) for p, v in zip(packs, vehicles, strict=True)],
        )
        chargers = _bulk(
            Charger,
            [
                Charger(
                    depot=depot,
                    ocpp_charge_point_id=f"{tag.upper()}-{depot.pk}-{c:02d}",
                    name=f"DC {c}",
                    kind="dc",
                    max_kw=150.0,
                )
                for depot in depots
                for c in range(size.chargers_per_depot)
            ],
        )
        connectors = _bulk(
            Connector,
            [
                Connector(charger=charger, connector_id=k, standard="ccs2", max_kw=150.0)
                for charger in chargers
                for k in (1, 2)
            ],
        )
        managers = []
        for organization in organizations:
            manager = User.objects.create_user(f"{tag}-manager-{organization.pk}", password="bench", is_staff=True)
            managers.append(manager)
            _bulk(
                DepotMembership,
                [
                    DepotMembership(user=manager, depot=d, role="manager")
                    for d in depots
                    if d.organization_id == organization.pk
                ],
            )
        staff = [User(username=f"{tag}-staff-{depot.pk}", is_staff=True) for depot in depots]
        staff = _bulk(User, staff)
        _bulk(
            DepotMembership,
            [DepotMembership(user=u, depot=d, role="staff") for u, d in zip(staff, depots, strict=True)],
        )
        superuser = User.objects.create_superuser(f"{tag}-admin", password="bench")

        lap("depots, vehicles, packs, chargers, people")
        by_depot: dict[int, list] = {}
        for vehicle in vehicles:
            by_depot.setdefault(vehicle.home_depot_id, []).append(vehicle)
        connectors_by_depot: dict[int, list] = {}
        charger_depot = {c.pk: c.depot_id for c in chargers}
        for connector in connectors:
            connectors_by_depot.setdefault(charger_depot[connector.charger_id], []).append(connector)

        # One duty cycle per vehicle and day, made by the database (Python objects cost ~80 s at full size).
        with connection.cursor() as cursor:
            for first in range(0, len(vehicles), 500):
                cursor.execute(
                    """
                    INSERT INTO fleet_dailydutycycle (vehicle_id, date, time_zone, reading_count, distance_km,
                        energy_used_kwh, energy_charged_kwh, kwh_per_km, capacity_kwh, equivalent_full_cycles,
                        soc_min_pct, soc_max_pct, soc_mean_pct, minutes_above_90_soc, pack_temp_mean_c,
                        pack_temp_max_c, computed_at)
                    SELECT v, %s::date + d, 'America/Hermosillo', %s, 180.0 + v %% 40, 220.0, 215.0, 1.2, 340.0,
                        0.32, 25.0, 95.0, 60.0, 40.0, 31.0, 38.0, now()
                    FROM unnest(%s::bigint[]) AS v, generate_series(0, %s - 1) AS d
                    """,
                    [first_night, size.readings_per_day, [v.pk for v in vehicles[first : first + 500]], size.days],
                )
        counts["duty_cycles"] = size.vehicles * size.days
        lap("duty cycles")

        weeks = list(range(0, size.days, 7))
        observations, forecasts = [], []
        points = [
            {
                "date": (first_night + dt.timedelta(days=365 * y)).isoformat(),
                "soh_pct": 95.0 - 2 * y,
                "soh_p10_pct": 93.0 - 2.5 * y,
                "soh_p90_pct": 97.0 - 1.5 * y,
            }
            for y in range(10)
        ]
        for pack in packs:
            for week in weeks:
                day = first_night + dt.timedelta(days=week)
                soh = 96.0 - (pack.pk % 50) * 0.2 - week * 0.005
                observations.append(
                    HealthObservation(
                        pack=pack,
                        observed_at=timezone.make_aware(dt.datetime.combine(day, dt.time(3))),
                        source="telemetry",
                        soh_pct=soh,
                        uncertainty_pct=1.5,
                    )
                )
                forecasts.append(
                    SoHForecast(
                        pack=pack,
                        as_of=day,
                        method="bench",
                        calibration_source="prior",
                        rate_factor=1.0,
                        rate_log_sigma=0.45,
                        soh_now_pct=soh,
                        fade_pct_per_year=2.0,
                        rul_days=2000 + pack.pk % 1000,
                        rul_efc=2500.0,
                        points=points,
                    )
                )
            if len(forecasts) >= BATCH:
                _bulk(HealthObservation, observations)
                _bulk(SoHForecast, forecasts)
                observations, forecasts = [], []
        _bulk(HealthObservation, observations)
        _bulk(SoHForecast, forecasts)
        counts["health_observations"] = counts["forecasts"] = len(packs) * len(weeks)
        lap("health observations, forecasts")

        horizon_hour = dt.time(18)
        for depot in depots:
            plans = _bulk(
                ChargingPlan,
                [
                    ChargingPlan(
                        depot=depot,
                        service_night=night,
                        version=1,
                        horizon_start=timezone.make_aware(dt.datetime.combine(night, horizon_hour)),
                        slot_minutes=15,
                        num_slots=56,
                        method="bench",
                        energy_kwh=5000.0,
                        site_limit_kw=2000.0,
                        instance={},
                    )
                    for night in nights
                ],
            )
            fleet, plugs = by_depot[depot.pk], connectors_by_depot[depot.pk]
            # Every bus in every plan of the depot, on the depot's connectors in turn: made by the database.
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO charging_plannedcharge (plan_id, vehicle_id, connector_id, arrival_at, departure_at,
                        arrival_soc_pct, required_soc_pct, departure_soc_pct, energy_kwh, shortfall_kwh,
                        shortfall_reason, power_kw, sources)
                    SELECT p, v.id, (%s::bigint[])[1 + (v.i - 1) %% %s], h + interval '2 hours',
                        h + interval '11 hours', 35.0, 90.0, 92.0, 190.0, 0.0, '', '[0.0, 75.0, 75.0, 60.0]', '{}'
                    FROM unnest(%s::bigint[], %s::timestamptz[]) AS plan(p, h),
                        unnest(%s::bigint[]) WITH ORDINALITY AS v(id, i)
                    """,
                    [
                        [c.pk for c in plugs],
                        len(plugs),
                        [plan.pk for plan in plans],
                        [plan.horizon_start for plan in plans],
                        [v.pk for v in fleet],
                    ],
                )
            _bulk(
                DepotEvent,
                [
                    DepotEvent(
                        depot=depot,
                        service_night=night,
                        kind="vehicle_arrived",
                        occurred_at=timezone.make_aware(dt.datetime.combine(night, dt.time(21))),
                        client_event_id=f"{tag}-{night:%Y%m%d}",
                        vehicle=fleet[n % len(fleet)],
                        soc_pct=40.0,
                    )
                    for n, night in enumerate(nights)
                ],
            )
            _bulk(
                Alert,
                [
                    Alert(
                        organization_id=depot.organization_id,
                        depot=depot,
                        kind="vehicle_not_ready",
                        status="resolved" if n < len(nights) - 1 else "open",
                        key=f"{tag}:{depot.pk}:{night}",
                        message=f"Bus {fleet[0].fleet_number} will leave 20 kWh short.",
                        vehicle=fleet[n % len(fleet)],
                        plan=plans[n],
                    )
                    for n, night in enumerate(nights)
                ],
            )
            _bulk(
                JobRun,
                [
                    JobRun(
                        job="charging.plan_depot_night",
                        key=f"charging.plan_depot_night:depot={depot.pk}:night={night}",
                        depot=depot,
                        night=night,
                        status="succeeded",
                        summary="plan v1",
                    )
                    for night in nights
                ],
            )
        counts["plans"] = size.depots * size.days
        counts["planned_charges"] = size.vehicles * size.days
        lap("plans, planned charges, events, alerts, job runs")

    start = dt.datetime.combine(first_night, dt.time(0), tzinfo=dt.UTC)
    step_s = 86400 // max(size.readings_per_day, 1)
    ids = [vehicle.pk for vehicle in vehicles]
    with connection.cursor() as cursor:
        for first in range(0, len(ids), 200):
            cursor.execute(
                """
                INSERT INTO fleet_telemetryreading (vehicle_id, recorded_at, soc_pct, odometer_km, speed_kmh,
                    pack_temp_c, energy_discharged_kwh, energy_charged_kwh, charging_state)
                SELECT v, %s + n * make_interval(secs => %s), 20 + (n %% 70), 10000 + n * 45.0, (n %% 50),
                    30 + (n %% 7) * 0.5, 40000 + n * 55.0, 39000 + n * 54.0, 0
                FROM unnest(%s::bigint[]) AS v, generate_series(0, %s - 1) AS n
                """,
                [start, step_s, ids[first : first + 200], size.days * size.readings_per_day],
            )
        lap("commit, readings (generate_series)")
        # VACUUM as well as ANALYZE: a production table of 90 nights has been vacuumed by autovacuum, whose
        # visibility map lets counts be index-only scans; a table just bulk-filled has none and every count
        # reads the heap (measured: a manager's forecast count 59 ms before, 32 ms after). Not inside a transaction
        # (the tests' generated cities), where PostgreSQL refuses VACUUM.
        cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE")
    lap("VACUUM ANALYZE")
    counts["readings"] = size.vehicles * size.days * size.readings_per_day
    counts.update(depots=size.depots, vehicles=size.vehicles, packs=len(packs), chargers=len(chargers))
    return {
        "superuser": superuser.pk,
        "manager": managers[0].pk,
        "staff": staff[0].pk,
        "depot": depots[0].pk,
        "organization": organizations[0].slug,
        "counts": counts,
        "fill_phases_s": phases,
    }


# --- measuring -------------------------------------------------------------------------------------------------


def admin_changelist_urls() -> list[str]:
    """The changelist of every model registered in the admin, and the admin's own pages."""
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        try:
            urls.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
        except NoReverseMatch:
            continue
    return sorted(set(urls))


def api_list_urls(client) -> list[str]:
    """Every GET of the API schema without a path parameter: the lists."""
    schema = client.get("/api/schema/?format=json").json()
    return sorted(
        path
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/") and "get" in operations and "{" not in path
    )


def measure(client, url: str, *, repeat: int = 3) -> dict:
    """Best of ``repeat`` (the first warms caches), with the query count and the answer's size."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    best = None
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            elapsed_ms = (time.perf_counter() - started) * 1000
        if best is None or elapsed_ms < best["ms"]:
            sql_ms = 1000 * sum(float(query["time"]) for query in queries.captured_queries)
            best = {
                "url": url,
                "status": response.status_code,
                "ms": round(elapsed_ms, 1),
                "sql_ms": round(sql_ms, 1),
                "queries": len(queries),
            }
            best["kib"] = round(len(body) / 1024, 1)
    assert best is not None
    best["ok"] = best["status"] == 200 and best["ms"] <= TARGET_MS
    return best


def list_parameters(world: dict) -> list[str]:
    return [f"depot={world['depot']}", f"organization={world['organization']}"]


def measure_all(world: dict, *, repeat: int = 3) -> list[dict]:
    """Every admin changelist (as the superuser, who sees every depot, and as an organisation's manager) and every
    API list (as the superuser). A list that needs a depot or an organisation (400 without) gets the first one."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    User = get_user_model()
    results = []
    for who, user_id in (("superuser", world["superuser"]), ("manager", world["manager"])):
        admin_client = Client()
        admin_client.force_login(User.objects.get(pk=user_id))
        for url in admin_changelist_urls():
            result = measure(admin_client, url, repeat=repeat)
            if result["status"] != 403:  # beat's schedules are the superuser's
                results.append({"as": f"{who} (admin)", **result})
    token, _ = Token.objects.get_or_create(user=User.objects.get(pk=world["superuser"]))
    api_client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    for url in api_list_urls(api_client):
        result = measure(api_client, url, repeat=repeat)
        for parameter in list_parameters(world):  # a list that needs its depot or organisation (400 without)
            if result["status"] != 400:
                break
            result = measure(api_client, f"{url}?{parameter}", repeat=repeat)
        results.append({"as": "superuser (API)", **result})
    return results


# --- the night: in-process and on Celery worker processes ------------------------------------------------------

NIGHT_ZONE = "America/Hermosillo"


def _night_depots(depot_count: int) -> list:
    from fleet.models import Depot

    return list(Depot.objects.order_by("pk")[:depot_count])


def night_in_process(depots: list, night: dt.date) -> dict:
    """Every registered job of each depot, forced, one depot after the other in this process (``run_night``)."""
    from jobs import nightly

    started = time.perf_counter()
    results = [result for depot in depots for result in nightly.run_night(depot=depot, night=night, force=True)]
    return {
        "wall_s": round(time.perf_counter() - started, 1),
        "jobs": len(results),
        "failed": sum(not result.ok for result in results),
        "seconds_by_job": {
            name: round(sum(r.seconds for r in results if r.job.name == name), 1)
            for name in dict.fromkeys(r.job.name for r in results)
        },
    }


def _start_worker(name: str, env: dict, log_path: Path):
    import subprocess

    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork", "--concurrency=1",
        "-Q", env["CELERY_TASK_DEFAULT_QUEUE"], "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel=INFO",
    ]  # fmt: skip
    with log_path.open("w") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def night_on_workers(depots: list, night: dt.date, *, workers: int, redis_url: str) -> dict:
    """The same forced night sent as one ``nightly_depot_task`` per depot to ``workers`` Celery worker processes
    (subprocesses on ``redis_url``, a private queue), timed from the first send to the last job run finished."""
    import signal
    import uuid

    from config.celery import app
    from jobs import nightly
    from jobs.models import JobRun
    from jobs.tasks import nightly_depot_task

    queue = f"city-scale-night-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
    }
    logs = [ROOT / "var" / f"city-scale-worker-{n}.log" for n in range(workers)]
    processes = [_start_worker(f"city{n}", env, log) for n, log in enumerate(logs)]
    try:
        deadline = time.monotonic() + 180
        while not all(" ready." in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("a worker did not start: " + logs[0].read_text(errors="replace")[-2000:])
            time.sleep(0.5)
        # This process runs eagerly (no REDIS_URL in its settings): send through the workers' broker instead.
        app.conf.update(broker_url=redis_url, task_always_eager=False, task_default_queue=queue)
        run_ids: list[int] = []
        started = time.perf_counter()
        for depot in depots:
            forced = nightly.forced_runs(depot_id=depot.pk, night=night)
            run_ids += forced.values()
            nightly_depot_task.apply_async(
                kwargs={"depot_id": depot.pk, "night": night.isoformat(), "forced_job_run_ids": forced}, queue=queue
            )
        unfinished = [JobRun.Status.PENDING, JobRun.Status.RUNNING]
        while JobRun.objects.filter(pk__in=run_ids, status__in=unfinished).exists():
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("a worker died: " + logs[0].read_text(errors="replace")[-2000:])
            time.sleep(0.5)
        wall_s = time.perf_counter() - started
        finished = JobRun.objects.filter(pk__in=run_ids)
        return {
            "wall_s": round(wall_s, 1),
            "workers": workers,
            "jobs": finished.count(),
            "failed": finished.exclude(status=JobRun.Status.SUCCEEDED).count(),
            "by_worker": dict(Counter(finished.values_list("worker", flat=True))),
        }
    finally:
        app.conf.update(task_always_eager=True)
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except Exception:
                os.killpg(process.pid, signal.SIGKILL)


def measure_night(depot_count: int, *, workers: int = 2) -> dict:
    """Tonight (the history's last night) for the first ``depot_count`` depots: on ``workers`` Celery worker
    processes, then in-process, both forced so that each does the whole work."""
    from django.utils import timezone

    redis_url = os.environ.get("CITY_SCALE_REDIS_URL", "")
    if not redis_url:
        raise SystemExit("--night needs the workers' broker: set CITY_SCALE_REDIS_URL (e.g. your REDIS_URL).")
    depots = _night_depots(depot_count)
    night = timezone.localdate(timezone=zoneinfo.ZoneInfo(NIGHT_ZONE))
    vehicles = sum(depot.vehicles.count() for depot in depots)
    on_workers = night_on_workers(depots, night, workers=workers, redis_url=redis_url)
    print(f"night on {workers} workers: {on_workers}", flush=True)
    in_process = night_in_process(depots, night)
    print(f"night in-process: {in_process}", flush=True)
    return {
        "depots": len(depots),
        "vehicles": vehicles,
        "night": night.isoformat(),
        "in_process": in_process,
        "on_workers": on_workers,
        "speed_up": round(in_process["wall_s"] / on_workers["wall_s"], 2) if on_workers["wall_s"] else None,
    }


def prepare_database() -> None:
    os.environ.pop("REDIS_URL", None)  # in-process: the cache and tasks are not what is measured
    sys.path.insert(0, str(ROOT))
    from bench import common

    common.prepare_database(DEFAULT_URL)


def empty_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        tables = [t for t in connection.introspection.table_names(cursor) if not t.startswith("django_migrations")]
        cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 100 depots, 5,000 vehicles")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--readings-per-day", type=int, default=4)
    parser.add_argument("--skip-generate", action="store_true", help="Measure the city already in the database.")
    parser.add_argument("--generate-only", action="store_true", help="Generate, measure later (--skip-generate).")
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--night-depots",
        type=int,
        default=0,
        help="Also run tonight's jobs for this many depots, in-process and on Celery workers (needs "
        "CITY_SCALE_REDIS_URL, the workers' broker).",
    )
    parser.add_argument("--night-workers", type=int, default=2, help="Celery worker processes for the night.")
    parser.add_argument("--no-pages", action="store_true", help="Do not time the pages (the night only).")
    args = parser.parse_args()
    prepare_database()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from django.conf import settings
    from machine_info import load_average, machine_info

    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    size = CitySize.scaled(args.scale, days=args.days, readings_per_day=args.readings_per_day)
    generated_s = None
    world_path = ROOT / "var" / "city-scale-world.json"
    if args.skip_generate:
        world = json.loads(world_path.read_text())
        generated_s = world.get("generated_s")
    else:
        empty_database()
        started = time.perf_counter()
        world = generate(size)
        generated_s = round(time.perf_counter() - started, 1)
        world_path.parent.mkdir(exist_ok=True)
        world_path.write_text(json.dumps(world))
        print(f"generated in {generated_s} s: {world['counts']}")
        world["generated_s"] = generated_s
        world["size"] = asdict(size)
        world_path.write_text(json.dumps(world))
        if args.generate_only:
            return
    from django.db import connection

    with connection.cursor() as cursor:  # the pages' connection: JIT per EVFLEET_PROCESS_ROLE / EVFLEET_DB_JIT
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    load_before = load_average()
    results = [] if args.no_pages else measure_all(world)
    load_after_pages = load_average()
    night = measure_night(args.night_depots, workers=args.night_workers) if args.night_depots else None
    report = {
        "date": dt.date.today().isoformat(),
        "size": world.get("size", asdict(size)),
        "counts": world["counts"],
        "generated_s": generated_s,
        "fill_phases_s": world.get("fill_phases_s"),
        "target_ms": TARGET_MS,
        "jit": jit,
        "machine": machine_info(
            "django", "celery", load_before=load_before, load_after_pages=load_after_pages, load_after=load_average()
        ),
        "results": results,
        "night": night,
        "over_target": [r["url"] for r in results if not r["ok"]],
    }
    label = f"-{args.label}" if args.label else ""
    stem = ROOT / "bench" / "results" / f"city-scale-{report['date']}{label}"
    stem.parent.joinpath(stem.name + ".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# City scale, {report['date']}{label}",
        "",
        f"Size: {world['counts']}. Generated in {generated_s} s ({world.get('fill_phases_s')}). Load average "
        f"before / after the pages / at the end: {load_before} / {load_after_pages} / {report['machine']['load_after']}"
        f" (shared, loaded machine: times are 'loaded'). PostgreSQL `jit` on the pages' connection: {jit}.",
    ]
    if night:
        lines += [
            "",
            f"Night of {night['night']} for {night['depots']} depots ({night['vehicles']} vehicles), every job "
            f"forced: in-process {night['in_process']['wall_s']} s ({night['in_process']['failed']} of "
            f"{night['in_process']['jobs']} job runs failed), on {night['on_workers']['workers']} Celery worker "
            f"processes {night['on_workers']['wall_s']} s ({night['on_workers']['failed']} of "
            f"{night['on_workers']['jobs']} failed; runs by worker {night['on_workers']['by_worker']}): "
            f"x{night['speed_up']}. In-process seconds by job: {night['in_process']['seconds_by_job']}.",
        ]
    if results:
        lines += [
            "",
            "| as | page | status | ms (best of 3) | of which SQL ms | queries | KiB |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {r['as']} | `{r['url']}` | {r['status']} | {r['ms']}{'' if r['ok'] else ' **over**'} | "
                f"{r['sql_ms']} | {r['queries']} | {r['kib']} |"
                for r in results
            ),
        ]
    stem.parent.joinpath(stem.name + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
