"""Benchmark of the battery-health forecast core (speed and accuracy of the accelerated method).

    .venv/bin/python bench/bench_forecast.py            # full: 1,000 packs / 50 signatures, 3-year accuracy
    .venv/bin/python bench/bench_forecast.py --quick    # 100 packs / 10 signatures, 1-year accuracy
    .venv/bin/python bench/bench_forecast.py --accuracy-years 10   # longer accuracy check
    .venv/bin/python bench/bench_forecast.py --single-only --repeat 3 --tag quiet   # one pack, 10 y + band

Prints a table and writes bench/results/forecast-<date>.json and .md (with the machine it ran on, and
its load average: other jobs on a shared machine inflate wall time, so CPU seconds are reported too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batteries.forecast import (  # noqa: E402
    AgeingCalibration,
    BlockPlan,
    Climate,
    ForecastJob,
    PackSpec,
    forecast_fleet,
    forecast_pack,
    prepare,
)
from batteries.forecast.simulate import day_model  # noqa: E402
from batteries.forecast.trajectory import simulate_day_by_day, simulate_members  # noqa: E402

CLIMATES = {
    "Hermosillo": Climate((17, 19, 22, 25, 29, 32, 32, 32, 31, 27, 21, 17)),
    "Nogales": Climate((9, 11, 14, 17, 21, 26, 26, 25, 23, 18, 13, 9)),
    "San Luis RC": Climate((13, 16, 19, 23, 27, 31, 33, 33, 30, 25, 18, 13)),
    "Guaymas": Climate((18, 19, 21, 23, 26, 29, 31, 31, 30, 27, 22, 18)),
}
START = dt.date(2024, 1, 1)


def machine() -> dict:
    return machine_info("pybamm")


def bus_job(
    chemistry: str,
    climate: str,
    km: float = 200.0,
    pack_id: str = "bench",
    years: float = 10.0,
    calibration: AgeingCalibration | None = None,
) -> ForecastJob:
    return ForecastJob(
        pack_id,
        PackSpec(chemistry, 350, 600, 200, 3),
        BlockPlan(km_per_day=km, kwh_per_km=1.1),
        CLIMATES[climate],
        START,
        START,
        calibration or AgeingCalibration(),
        years,
    )


def bench_build() -> dict:
    out = {}
    for chem in ("LFP", "NMC"):
        t = time.perf_counter()
        model = day_model(chem)
        built = time.perf_counter() - t
        job = bus_job(chem, "Hermosillo")
        p = prepare(job)
        from batteries.forecast.duty import representative_day

        day = representative_day(p.profile, 1.0, p.season_temps_k[0], p.usable_soc_min)
        t = time.perf_counter()
        model.run([model.inputs(model.new_state(), day, 1.0)])
        first = time.perf_counter() - t
        t = time.perf_counter()
        model.run([model.inputs(model.new_state(), day, 1.0)] * 8)
        per_day = (time.perf_counter() - t) / 8
        out[chem] = {"build_s": built, "first_solve_s": first, "ms_per_day_batched": 1000 * per_day}
    return out


def bench_single() -> dict:
    out = {}
    for chem in ("LFP", "NMC"):
        for climate in ("Hermosillo", "Nogales"):
            t, c = time.perf_counter(), time.process_time()
            r = forecast_pack(bus_job(chem, climate))
            el, cpu = time.perf_counter() - t, time.process_time() - c
            out[f"{chem}/{climate}"] = _single_row(r, el, cpu)
    # A two-factor calibration (calendar and cycling factors, posterior band): 5 members, not 3.
    two = AgeingCalibration(1.1, 0.3, "pack", 6, cycling_factor=1.3, cycling_log_sigma=0.2, log_correlation=-0.5)
    t, c = time.perf_counter(), time.process_time()
    r = forecast_pack(replace(bus_job("LFP", "Hermosillo"), calibration=two))
    out["LFP/Hermosillo, two-factor calibration"] = _single_row(r, time.perf_counter() - t, time.process_time() - c)
    # The slowest duty: forecast_reference.py's "NMC bus, Nogales, 1C charging" (its plating seasons get a cold
    # and a warm day each, and the P10 member's steps shorten in its plating years).
    cold = replace(bus_job("NMC", "Nogales"), duty=BlockPlan(km_per_day=220.0, kwh_per_km=1.1, charge_c_rate=1.0))
    t, c = time.perf_counter(), time.process_time()
    r = forecast_pack(cold)
    out["NMC/Nogales, 220 km, 1C charging"] = _single_row(r, time.perf_counter() - t, time.process_time() - c)
    t, c = time.perf_counter(), time.process_time()
    r = forecast_pack(replace(cold, calibration=two))
    out["NMC/Nogales, 220 km, 1C charging, two-factor calibration"] = _single_row(
        r, time.perf_counter() - t, time.process_time() - c
    )
    return out


def _single_row(r, el: float, cpu: float) -> dict:
    last = r.points[-1]
    return {
        "seconds": el,
        "cpu_seconds": cpu,
        "simulated_days": r.simulated_days,
        "fade_pct_per_year": r.fade_pct_per_year,
        "soh_end": last.soh_pct,
        "soh_end_p10": last.soh_p10_pct,
        "soh_end_p90": last.soh_p90_pct,
        "eol_80": str(r.eol_80.date),
        "flags": r.flags,
    }


def fleet_jobs(n_packs: int, n_signatures: int, seed: int = 7) -> list[ForecastJob]:
    rng = random.Random(seed)
    kinds = []
    for _ in range(n_signatures):
        kinds.append(
            (
                rng.choice(["LFP", "LFP", "LFP", "NMC"]),
                rng.choice(list(CLIMATES)),
                rng.choice(range(120, 260, 6)),
                rng.choice([0.2, 0.3, 0.5]),
                # One duty group in five charges during the day (opportunity top-ups, up to ~2 EFC/day).
                rng.choice([0, 0, 0, 0, 1, 2]),
            )
        )
    jobs = []
    for k in range(n_packs):
        chem, climate, km, c_rate, top_ups = kinds[k % n_signatures]
        cal = AgeingCalibration(
            rng.lognormvariate(0, 0.2), rng.choice([0.1, 0.25, 0.45]), rng.choice(["pack", "cluster", "prior"])
        )
        jobs.append(
            ForecastJob(
                f"pack-{k}",
                PackSpec(chem, 350, 600, 200, 3),
                BlockPlan(
                    km_per_day=(km + rng.uniform(-0.5, 0.5)) * (1 + top_ups),
                    kwh_per_km=1.1,
                    charge_c_rate=c_rate if not top_ups else 1.0,
                    top_ups_per_day=top_ups,
                ),
                CLIMATES[climate],
                START - dt.timedelta(days=rng.randint(0, 4 * 365)),
                START,
                cal,
                10.0,
            )
        )
    return jobs


def _max_band_difference(a, b) -> float:
    """Largest |SoH difference| over the P10/P50/P90 points both results have."""
    worst = 0.0
    for p, q in zip(a.points, b.points, strict=False):
        for x, y in ((p.soh_pct, q.soh_pct), (p.soh_p10_pct, q.soh_p10_pct), (p.soh_p90_pct, q.soh_p90_pct)):
            if x is not None and y is not None:
                worst = max(worst, abs(x - y))
    return worst


def bench_fleet(n_packs: int, n_signatures: int, workers: int = 1, check_packs: int = 0) -> dict:
    jobs = fleet_jobs(n_packs, n_signatures)
    t, c = time.perf_counter(), time.process_time()
    run = forecast_fleet(jobs, workers=workers)
    el, cpu = time.perf_counter() - t, time.process_time() - c
    flagged = sum(1 for r in run.results.values() if r.flags)
    out = {
        "refused": {pack_id: refusal.reason for pack_id, refusal in run.refused.items()},
        "packs": n_packs,
        "groups": run.n_groups,
        "workers": workers,
        "seconds": el,
        "cpu_seconds_main_process": cpu,
        "simulated_days": run.simulated_days,
        "packs_flagged": flagged,
    }
    if check_packs:
        # The fleet's shortcuts (signature quantisation, factor-grid interpolation, age/season shift)
        # against forecast_pack on the same job: largest SoH difference over the band, and the
        # difference of the end-of-duty date.
        sample = jobs[:: max(1, n_packs // check_packs)][:check_packs]
        diffs, stop_days = [], []
        for job in sample:
            if job.pack_id not in run.results:
                continue
            exact, shared = forecast_pack(job), run.results[job.pack_id]
            diffs.append(_max_band_difference(exact, shared))
            if (exact.end_of_duty_date is None) != (shared.end_of_duty_date is None):
                stop_days.append(None)
            elif exact.end_of_duty_date is not None:
                stop_days.append(abs((exact.end_of_duty_date - shared.end_of_duty_date).days))
        out["check_vs_forecast_pack"] = {
            "packs": len(sample),
            "max_abs_soh_difference_pp": max(diffs),
            "median_abs_soh_difference_pp": sorted(diffs)[len(diffs) // 2],
            "end_of_duty_difference_days": stop_days,
        }
    return out


def bench_accuracy(years: int) -> dict:
    out = {}
    end = dt.date(START.year + years, 1, 1)
    for chem in ("LFP", "NMC"):
        model = day_model(chem)
        for climate in ("Hermosillo", "Nogales"):
            p = prepare(bus_job(chem, climate))
            args = (model, p.profile, list(p.season_temps_k), p.usable_soc_min, START, end)
            t = time.perf_counter()
            (fast,), n_fast = simulate_members(*args, [1.0])
            t_fast = time.perf_counter() - t
            t = time.perf_counter()
            ref, n_ref = simulate_day_by_day(*args, 1.0)
            t_ref = time.perf_counter() - t
            n = min(len(fast.soh_pct), len(ref.soh_pct))
            err = max(abs(a - b) for a, b in zip(fast.soh_pct[:n], ref.soh_pct[:n], strict=True))
            out[f"{chem}/{climate}"] = {
                "years": years,
                "max_abs_error_pp": err,
                "soh_end_fast": fast.soh_pct[n - 1],
                "soh_end_reference": ref.soh_pct[n - 1],
                "days_fast": n_fast,
                "days_reference": n_ref,
                "seconds_fast": t_fast,
                "seconds_reference": t_ref,
            }
            print(f"  accuracy {chem}/{climate}: max |dSoH| {err:.3f} pp ({n_fast} vs {n_ref} days)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 packs / 10 signatures, 1-year accuracy")
    parser.add_argument("--accuracy-years", type=int, default=None, help="override the accuracy horizon")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the second fleet run")
    parser.add_argument(
        "--no-accuracy",
        action="store_true",
        help="skip the accelerated-vs-day-by-day check (it compares the method with itself; the independent "
        "reference is bench/forecast_reference.py)",
    )
    parser.add_argument(
        "--single-only", action="store_true", help="only the model build and the one-pack 10-year forecasts"
    )
    parser.add_argument("--tag", default="", help="suffix of the result files, e.g. quiet or loaded")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the one-pack forecasts this many times; the fastest counts"
    )
    args = parser.parse_args()
    n_packs, n_sig, years = (100, 10, 1) if args.quick else (1000, 50, 3)
    years = args.accuracy_years or years

    results: dict = {"date": dt.date.today().isoformat(), "quick": args.quick, "machine": machine()}
    print("build ...", flush=True)
    results["build"] = bench_build()
    print("single pack, 10 years with P10/P50/P90 ...", flush=True)
    runs = [bench_single() for _ in range(max(args.repeat, 1))]
    # Fastest of the repeats per case: on a shared machine the others measure the neighbours.
    results["single_pack"] = {key: min((run[key] for run in runs), key=lambda row: row["seconds"]) for key in runs[0]}
    results["single_pack_seconds_all_repeats"] = {k: [round(run[k]["seconds"], 3) for run in runs] for k in runs[0]}
    if not args.single_only:
        print(f"fleet: {n_packs} packs, {n_sig} signatures ...", flush=True)
        results["fleet"] = bench_fleet(n_packs, n_sig, check_packs=12)
    if args.workers > 1 and not args.single_only:
        print(f"fleet again with {args.workers} worker processes ...", flush=True)
        results["fleet_workers"] = bench_fleet(n_packs, n_sig, workers=args.workers)
    results["accuracy"] = {}
    if not args.no_accuracy and not args.single_only:
        print(f"accuracy vs day-by-day, {years} year(s) ...", flush=True)
        results["accuracy"] = bench_accuracy(years)
    results["machine"]["load_average_at_end"] = load_average()

    lines = [
        f"# Forecast benchmark {results['date']}{' (quick)' if args.quick else ''}",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()),
        "",
        "| measure | value |",
        "|---|---|",
    ]
    for chem, b in results["build"].items():
        lines.append(
            f"| build {chem} (model + first solve) | {b['build_s']:.2f} s + {b['first_solve_s']:.2f} s; "
            f"{b['ms_per_day_batched']:.0f} ms per simulated day |"
        )
    for key, s in results["single_pack"].items():
        lines.append(
            f"| one pack 10 y + band, {key} | {s['seconds']:.2f} s wall, {s['cpu_seconds']:.2f} s CPU "
            f"({s['simulated_days']} days), "
            f"{s['fade_pct_per_year']} %/yr, SoH@10y {s['soh_end']} [{s['soh_end_p10']}, "
            f"{s['soh_end_p90']}] |"
        )
    for key in ("fleet", "fleet_workers"):
        if key not in results:
            continue
        f = results[key]
        lines.append(
            f"| fleet {f['packs']} packs / {f['groups']} groups, {f['workers']} process(es) | {f['seconds']:.1f} s "
            f"wall, {f['cpu_seconds_main_process']:.1f} s CPU in the main process ({f['simulated_days']} days, "
            f"{f['packs_flagged']} packs flagged) |"
        )
        if "check_vs_forecast_pack" in f:
            ch = f["check_vs_forecast_pack"]
            lines.append(
                f"| fleet vs forecast_pack, {ch['packs']} packs | max {ch['max_abs_soh_difference_pp']:.3f} pp, "
                f"median {ch['median_abs_soh_difference_pp']:.3f} pp over P10/P50/P90; end-of-duty date "
                f"difference (days) {ch['end_of_duty_difference_days']} |"
            )
    for key, a in results["accuracy"].items():
        lines.append(
            f"| accuracy {key}, {a['years']} y | max {a['max_abs_error_pp']:.3f} pp "
            f"({a['days_fast']} vs {a['days_reference']} days, {a['seconds_fast']:.1f} s vs "
            f"{a['seconds_reference']:.0f} s) |"
        )
    table = "\n".join(lines)
    print(table)
    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(exist_ok=True)
    stem = f"forecast-{results['date']}{'-quick' if args.quick else ''}{'-single' if args.single_only else ''}"
    stem += f"-{args.tag}" if args.tag else ""
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / f"{stem}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
