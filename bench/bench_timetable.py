"""Benchmark: GTFS import + blocking and energy-aware assignment (issue 18).

    .venv/bin/python bench/bench_timetable.py                  # 1,000-trip feed; 300 blocks on 320 buses
    .venv/bin/python bench/bench_timetable.py --real-feed       # also gtfs-kit's Cairns feed (pip download)

Targets: a 1,000-trip feed imported and blocked <= 30 s; 300 blocks on 320 buses assigned <= 5 s.

1. Import: a generated one-day feed of 1,000 trips over 40 stops around Hermosillo, no block_id (so every trip
   goes through the blocking core), half the trips with shapes; timed end to end through
   ``timetable.services.gtfs_import`` (read and check the zip with gtfs-kit, distances, blocking, writing the
   blocks and their provenance in one transaction) into PostgreSQL ``evfleet_bench_timetable``. The blocking
   count is reported with its lower bound.
2. Assignment: 320 buses (SoH 78-100 %, pull-out SoC 75-95 %) and 300 blocks (200 long all-day blocks,
   100 short peak blocks), timed on the core (``timetable.assignment.assign``: Hungarian plan, column
   generation bound, MIP) with the services' time limit and with 30 s (to see the bound it converges to), and
   end to end through ``timetable.services.vehicles_assign`` (reading the registry in a fixed number of
   queries, solving, writing the assignments in bulk). Wall and CPU seconds and the load average beside each:
   the machine is shared, so wall seconds are "loaded".
Writes bench/results/timetable-<date>.json and .md with the machine and its load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import common  # noqa: E402  (bench/, next to this script)
from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evfleet_bench_timetable"
DAY = dt.date(2026, 3, 2)  # a Monday
CENTRE = (29.0892, -110.9613)


def prepare_database() -> None:
    # evfleet_gtfs is the GTFS import tool's own database, never filled by this benchmark.
    common.prepare_database(DEFAULT_URL, refuse=("evfleet_gtfs",))


def generated_feed(path: Path, trips: int, seed: int = 18) -> Path:
    rng = random.Random(seed)
    stops = [
        (f"S{k:02d}", CENTRE[0] + rng.uniform(-0.08, 0.08), CENTRE[1] + rng.uniform(-0.08, 0.08)) for k in range(40)
    ]
    lines = {
        "agency.txt": [
            "agency_id,agency_name,agency_url,agency_timezone",
            "A,Bench,http://example.org,America/Hermosillo",
        ],
        "routes.txt": ["route_id,agency_id,route_short_name,route_type"] + [f"R{k},A,{k},3" for k in range(20)],
        "stops.txt": ["stop_id,stop_name,stop_lat,stop_lon"]
        + [f"{s},{s},{lat:.6f},{lon:.6f}" for s, lat, lon in stops],
        "calendar.txt": [
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
            "WK,1,1,1,1,1,0,0,20260101,20261231",
        ],
        "trips.txt": ["route_id,service_id,trip_id,shape_id"],
        "stop_times.txt": ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"],
        "shapes.txt": ["shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence"],
    }
    for k in range(trips):
        route = k % 20
        a, b = stops[(route * 2) % 40], stops[(route * 2 + 1 + k % 3) % 40]
        if k % 2:
            a, b = b, a
        start = rng.randrange(5 * 60, 23 * 60)
        length = rng.randrange(25, 75)
        shape = f"SH{k}" if k % 2 == 0 else ""
        lines["trips.txt"].append(f"R{route},WK,T{k},{shape}")
        for seq, (stop, minute) in enumerate(((a, start), (b, start + length)), start=1):
            clock = f"{minute // 60:02d}:{minute % 60:02d}:00"
            lines["stop_times.txt"].append(f"T{k},{clock},{clock},{stop[0]},{seq}")
        if shape:
            mid = ((a[1] + b[1]) / 2 + 0.01, (a[2] + b[2]) / 2 - 0.01)
            for seq, (lat, lon) in enumerate(((a[1], a[2]), mid, (b[1], b[2])), start=1):
                lines["shapes.txt"].append(f"{shape},{lat:.6f},{lon:.6f},{seq}")
    with zipfile.ZipFile(path, "w") as archive:
        for name, rows in lines.items():
            archive.writestr(name, "\n".join(rows) + "\n")
    return path


def world(buses: int):
    from batteries.models import BatteryPack, HealthObservation, PackInstallation
    from charging.models import Charger, Connector
    from fleet.models import Block, BlockAssignment, Depot, Organization, Vehicle, VehicleModel
    from tests.factories import make_vin
    from timetable.models import FeedImport, PinnedAssignment, TimetableBlock

    org, _ = Organization.objects.get_or_create(slug="bench-timetable", defaults={"name": "Bench timetable"})
    PinnedAssignment.objects.filter(block__depot__organization=org).delete()
    BlockAssignment.objects.filter(block__depot__organization=org).delete()
    TimetableBlock.objects.filter(block__depot__organization=org).delete()
    FeedImport.objects.filter(depot__organization=org).delete()
    Block.objects.filter(depot__organization=org).delete()
    HealthObservation.objects.filter(pack__organization=org).delete()
    PackInstallation.objects.filter(pack__organization=org).delete()
    BatteryPack.objects.filter(organization=org).delete()
    Vehicle.objects.filter(organization=org).delete()
    Connector.objects.filter(charger__depot__organization=org).delete()
    Charger.objects.filter(depot__organization=org).delete()
    Depot.objects.filter(organization=org).delete()  # (also the Cairns depot of a --real-feed run)
    depot = Depot.objects.create(
        organization=org,
        name="Bench Hermosillo",
        code="bench-hmo",
        grid_limit_kw=20000,
        latitude=CENTRE[0],
        longitude=CENTRE[1],
        monthly_mean_temperature_c=[17, 19, 22, 25, 29, 32, 32, 32, 31, 27, 21, 17],
    )
    model, _ = VehicleModel.objects.get_or_create(
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
    charger = Charger.objects.create(depot=depot, ocpp_charge_point_id="BENCH-TT-1", name="DC 1", kind="dc", max_kw=150)
    Connector.objects.create(charger=charger, connector_id=1, standard="ccs2", max_kw=150)
    rng = random.Random(320)
    vehicles = Vehicle.objects.bulk_create(
        Vehicle(organization=org, fleet_number=f"TT-{k:04d}", vin=make_vin(900000 + k), model=model, home_depot=depot)
        for k in range(buses)
    )
    packs = BatteryPack.objects.bulk_create(
        BatteryPack(
            organization=org,
            serial=f"TT-PACK-{k:05d}",
            chemistry="LFP",
            nominal_kwh=350,
            nominal_ah=544,
            cells_in_series=200,
            cells_in_parallel=2,
            manufactured_on=dt.date(2022, 1, 1),
            warranty_years=8,
            warranty_km=500000,
            warranty_min_soh_pct=70,
        )
        for k in range(buses)
    )
    from django.utils import timezone

    now = timezone.now()
    PackInstallation.objects.bulk_create(
        PackInstallation(pack=p, vehicle=v, installed_at=now - dt.timedelta(days=400))
        for p, v in zip(packs, vehicles, strict=True)
    )
    HealthObservation.objects.bulk_create(
        HealthObservation(
            pack=p,
            observed_at=now - dt.timedelta(days=3),
            source="capacity_test",
            soh_pct=rng.uniform(78, 100),
            uncertainty_pct=1.0,
        )
        for p in packs
    )
    return depot, model


def assignment_instance(buses: int, blocks: int, seed: int = 300):
    from timetable.assignment import Bus, Duty

    rng = random.Random(seed)
    bus_list = []
    for k in range(buses):
        soh = rng.uniform(78, 100)
        usable = 350 * soh / 100 * 0.85
        bus_list.append(Bus(f"B{k}", "H", usable, usable * (rng.uniform(75, 95) - 10) / 85, 0.1 * usable, soh))
    duties = []
    for k in range(blocks):
        if k < blocks * 2 // 3:
            start = rng.randrange(300, 420)
            km = rng.uniform(130, 220)
            duties.append(Duty(f"L{k}", "H", start, start + rng.randrange(780, 960), km * 1.2))
        else:
            start = rng.choice((rng.randrange(330, 420), rng.randrange(930, 1020)))
            km = rng.uniform(40, 90)
            duties.append(Duty(f"P{k}", "H", start, start + rng.randrange(150, 240), km * 1.2))
    return bus_list, duties


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trips", type=int, default=1000)
    parser.add_argument("--buses", type=int, default=320)
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--real-feed", action="store_true", help="also import gtfs-kit's Cairns feed (pip download)")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    prepare_database()
    info = machine_info("gtfs-kit", "highspy", "scipy", "Django")
    results: dict = {"machine": info, "date": dt.date.today().isoformat()}

    from timetable import assignment, services

    depot, model = world(args.buses)
    with tempfile.TemporaryDirectory() as tmp:
        feed = generated_feed(Path(tmp) / "bench.zip", args.trips)
        t0 = time.perf_counter()
        report = services.gtfs_import(depot=depot, path=feed, date_from=DAY, date_to=DAY, vehicle_model=model)
        seconds = time.perf_counter() - t0
    day = report.days[0]
    results["import"] = {
        "trips": day["trips"],
        "seconds_end_to_end": round(seconds, 2),
        "blocks": day["chained_blocks"],
        "lower_bound": day["lower_bound"],
        "optimal": day["optimal"],
        "method": day["method"],
        "target_seconds": 30,
    }
    print("import", results["import"], flush=True)

    if args.real_feed:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--no-binary",
                    "gtfs-kit",
                    "gtfs-kit==13.0.1",
                    "-d",
                    tmp,
                ],
                check=True,
            )
            sdist = next(Path(tmp).glob("gtfs_kit-*.tar.gz"))
            subprocess.run(["tar", "xzf", str(sdist), "-C", tmp, "--wildcards", "*/data/cairns_gtfs.zip"], check=True)
            cairns = next(Path(tmp).glob("*/data/cairns_gtfs.zip"))
            cairns_day = dt.date(2014, 5, 26)
            from timetable.gtfs import read_feed

            trips = len(read_feed(cairns).trips_on(cairns_day))
            t0 = time.perf_counter()
            from fleet.models import Depot

            far_depot, _ = Depot.objects.get_or_create(
                organization=depot.organization,
                code="bench-cns",
                defaults={"name": "Bench Cairns", "grid_limit_kw": 5000},
            )
            real = services.gtfs_import(
                depot=far_depot,
                path=cairns,
                date_from=cairns_day,
                date_to=cairns_day,
                vehicle_model=model,
                dry_run=True,
            )
            seconds = time.perf_counter() - t0
        d = real.days[0]
        results["import_cairns"] = {
            "feed": "gtfs-kit 13.0.1 data/cairns_gtfs.zip (Cairns, Australia, 2014; no block_id)",
            "date": cairns_day.isoformat(),
            "trips": trips,
            "seconds_end_to_end_dry_run": round(seconds, 2),
            "blocks": d.get("chained_blocks"),
            "lower_bound": d.get("lower_bound"),
            "optimal": d.get("optimal"),
            "method": d.get("method"),
            "note": "a depot with no location: deadhead not counted",
        }
        print("cairns", results["import_cairns"], flush=True)

    buses, duties = assignment_instance(args.buses, args.blocks)
    naive = assignment.naive_assign(buses, duties)
    left = {b.vehicle_id: b.pull_out_kwh - b.reserve_kwh for b in buses}
    energy = {d.block_id: d.energy_kwh for d in duties}
    for b, v in naive.items():
        left[v] -= energy[b]
    runs = {}
    for label, limit in (("default_limit", assignment.DEFAULT_TIME_LIMIT_S), ("30s_limit", 30.0)):
        load_before = load_average()
        t0, cpu0 = time.perf_counter(), time.process_time()
        core = assignment.assign(buses, duties, time_limit_s=limit)
        runs[label] = {
            "time_limit_s": limit,
            "seconds": round(time.perf_counter() - t0, 2),
            "cpu_seconds": round(time.process_time() - cpu0, 2),
            "load_average_before": load_before,
            "status": core.status,
            "method": core.method,
            "objective": round(core.objective, 2) if core.objective is not None else None,
            "bound": round(core.bound, 2) if core.bound is not None else None,
            "covered": len(core.assigned),
            "stranded": sum(1 for v in core.budget_left_kwh(buses, duties).values() if v < -1e-6),
        }
        print("assignment core", label, runs[label], flush=True)
    results["assignment_core"] = {
        "buses": args.buses,
        "blocks": args.blocks,
        **runs,
        "naive_covered": len(naive),
        "naive_stranded": sum(1 for v in left.values() if v < -1e-6),
        "target_seconds": 5,
    }

    # End to end on the database: the imported day's blocks replaced by the instance's 300.
    from fleet import services as fleet_services

    for d in duties:
        start = dt.time(int(d.start_min // 60) % 24, int(d.start_min % 60))
        end = dt.time(int(d.end_min // 60) % 24, int(d.end_min % 60))
        fleet_services.block_create(
            depot=depot,
            code=f"A-{d.block_id}",
            service_date=DAY + dt.timedelta(days=1),
            departs_at=start,
            returns_at=end,
            distance_km=d.energy_kwh / 1.2,
            planned_energy_kwh=d.energy_kwh,
        )
    load_before = load_average()
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = services.vehicles_assign(depot=depot, service_date=DAY + dt.timedelta(days=1))
    results["assignment_end_to_end"] = {
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds_python_process": round(time.process_time() - cpu0, 2),
        "load_average_before": load_before,
        "solve_seconds": result["solve_seconds"],
        "status": result["status"],
        "covered": len(result["assigned"]),
        "uncovered": len(result["uncovered"]),
        "below_reserve": len(result["buses_below_reserve"]),
        "naive_below_reserve": len(result["naive_buses_below_reserve"]),
    }
    print("assignment end to end", results["assignment_end_to_end"], flush=True)
    results["machine"]["load_average_at_end"] = load_average()

    out = ROOT / "bench" / "results" / f"timetable-{results['date']}{('-' + args.label) if args.label else ''}"
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    md = [
        f"# Timetable benchmark {results['date']}",
        "",
        "Machine: " + json.dumps(info),
        "",
        "```json",
        json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2),
        "```",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md))
    print("wrote", out.with_suffix(".json"))


if __name__ == "__main__":
    main()
