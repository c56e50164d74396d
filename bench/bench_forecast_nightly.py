"""Benchmark: the nightly battery-forecast job end to end with the database (issue 5: 1,000 packs, ~50 duty
signatures, <= 5 minutes on this 2-core machine).

    .venv/bin/python bench/bench_forecast_nightly.py                 # 1,000 packs, 20 % with capacity tests
    .venv/bin/python bench/bench_forecast_nightly.py --packs 200     # smaller
    .venv/bin/python bench/bench_forecast_nightly.py --observed-share 1.0 --rebuild   # every pack observed

Builds (once, untimed) a PostgreSQL database ``evfleet_bench_forecast`` (or uses ``DATABASE_URL``) with four
depots in the demo's four climates, 1,000 buses and vans with their packs, weekly blocks of six lengths per
depot (6 lengths x 4 depots x 2 chemistries = 48 duty signatures) and capacity tests for a share of the
packs; then times the nightly job for every depot (`fleet.nightly.run_night`, the battery stage: reading the
registry, calibrating, forecasting every pack 10 years with its band, storing forecasts and checking
alerts). Writes bench/results/forecast-nightly-<date>.json and .md with the machine and its load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
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
BLOCK_KM = (120, 150, 180, 210, 240, 270)


def prepare_database() -> str:
    return common.prepare_database(DEFAULT_URL)


def build_fleet(packs: int, observed_share: float, seed: int = 7, rebuild: bool = False) -> None:
    """The bench world; rebuilt only when its size differs or ``rebuild`` (setup is not timed)."""
    from django.db import transaction
    from django.utils import timezone

    from batteries.models import BatteryPack, HealthObservation, PackInstallation, SoHForecast
    from fleet.models import Block, BlockAssignment, Depot, Organization, Vehicle, VehicleModel
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
        vehicles, pack_rows = [], []
        for i in range(packs):
            depot = depots[i % len(depots)]
            model = bus if (i // len(depots)) % 5 else van  # one in five is an NMC van
            vehicles.append(
                Vehicle(
                    organization=org,
                    fleet_number=f"BF-{i:05d}",
                    vin=make_vin(900_000 + i),
                    model=model,
                    home_depot=depot,
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
        # One weekly block per vehicle (a block is one vehicle's duty on a day): six lengths per depot.
        blocks = Block.objects.bulk_create(
            Block(
                depot=vehicle.home_depot,
                code=f"B-{vehicle.fleet_number}",
                weekdays=[0, 1, 2, 3, 4, 5],
                valid_from=AS_OF - dt.timedelta(days=60),
                departs_at=dt.time(5),
                returns_at=dt.time(21),
                distance_km=BLOCK_KM[(i // len(depots)) % len(BLOCK_KM)] if vehicle.model_id == bus.pk else 120,
            )
            for i, vehicle in enumerate(vehicles)
        )
        assignments, observations = [], []
        for block, vehicle, pack in zip(blocks, vehicles, pack_rows, strict=True):
            block.depot = vehicle.home_depot
            for offset in range(-14, 14):
                day = AS_OF + dt.timedelta(days=offset)
                if block.runs_on(day):
                    starts, ends = block.window_on(day)
                    assignments.append(
                        BlockAssignment(block=block, vehicle=vehicle, service_date=day, starts_at=starts, ends_at=ends)
                    )
            if rng.random() < observed_share:
                age_days = (AS_OF - pack.manufactured_on).days
                for k in range(4):  # four capacity tests over the pack's life: ~2 %/yr with noise
                    day = pack.manufactured_on + dt.timedelta(days=age_days * (k + 1) // 5)
                    soh = 100 - 2.0 * (day - pack.manufactured_on).days / 365 + rng.gauss(0, 0.4)
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
        HealthObservation.objects.bulk_create(observations, batch_size=5000)
    print("built", flush=True)


def machine(database_url: str) -> dict:
    return machine_info("pybamm", database=database_url.rsplit("@", 1)[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=int, default=1000)
    parser.add_argument("--observed-share", type=float, default=0.2, help="share of packs with capacity tests")
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the world (needed when only --observed-share changed)"
    )
    args = parser.parse_args()
    url = prepare_database()
    build_fleet(args.packs, args.observed_share, rebuild=args.rebuild)

    from django.utils import timezone

    from batteries.models import ForecastRun, SoHForecast
    from batteries.nightly import forecast_depot_packs
    from fleet.models import Depot
    from jobs.runs import as_outcome

    info = machine(url)
    depots = list(Depot.objects.filter(organization__slug="bench-forecast").order_by("code"))
    bench_started_at = timezone.now()
    started = time.perf_counter()
    cpu_started = time.process_time()
    per_depot = []
    for depot in depots:
        t0 = time.perf_counter()
        summary = as_outcome(forecast_depot_packs(depot=depot, night=AS_OF)).summary
        per_depot.append({"depot": depot.code, "seconds": round(time.perf_counter() - t0, 1), "summary": summary})
        print(f"{depot.code:5s} {per_depot[-1]['seconds']:7.1f} s  {summary}", flush=True)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    runs = ForecastRun.objects.filter(as_of=AS_OF, started_at__gte=bench_started_at)
    stored = SoHForecast.objects.filter(as_of=AS_OF, pack__organization__slug="bench-forecast").count()
    groups = sum(run.duty_groups for run in runs)
    info["load_average_at_end"] = load_average()
    result = {
        "benchmark": "nightly battery forecasts through the database",
        "as_of": AS_OF.isoformat(),
        "packs": args.packs,
        "observed_share": args.observed_share,
        "forecasts_stored": stored,
        "duty_groups": groups,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "target_seconds": 300,
        "met": wall <= 300,
        "per_depot": per_depot,
        "machine": info,
    }
    name = f"forecast-nightly-{dt.date.today().isoformat()}"
    if (args.packs, args.observed_share) != (1000, 0.2):  # the case keeps the plain name
        name += f"-{args.packs}-packs-{round(100 * args.observed_share)}pct-observed"
    out = ROOT / "bench" / "results" / name
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(
        "# Nightly battery forecasts through the database\n\n"
        f"{args.packs} packs ({args.observed_share:.0%} with capacity tests), {groups} duty groups, "
        f"{stored} forecasts stored: **{wall:.0f} s wall** ({cpu:.0f} s CPU in this process), target <= 300 s "
        f"on 2 cores: {'met' if wall <= 300 else 'missed'}.\n\n"
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['platform']}, PyBaMM {info['pybamm']}; "
        f"load average {info['load_average_at_start']} at start, {info['load_average_at_end']} at end.\n\n"
        "| depot | seconds | summary |\n|---|---:|---|\n"
        + "".join(f"| {d['depot']} | {d['seconds']} | {d['summary']} |\n" for d in per_depot)
    )
    print(f"\n{args.packs} packs, {groups} groups: {wall:.0f} s wall, {cpu:.0f} s CPU (target 300 s) -> {out}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
