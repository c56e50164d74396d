"""Does pooling identify calendar vs cycling on evfleet's own model? Same physics, a known split.

    .venv/bin/python bench/forecast_pooled_check.py --per-duty 1     # ~2 min on a quiet machine
    .venv/bin/python bench/forecast_pooled_check.py --per-duty 4     # ~6 min

Histories are forecasts of evfleet's model with a split unlike the prior's (calendar 0.6, cycling 1.6 by
default) for LFP buses in Hermosillo on two kinds of duty: mostly parked (60-120 km/day) and cycling-heavy
(350-500 km/day with a 1C top-up). Each pack is calibrated on its monthly SoH of the first 180 days
(0.1 pp), alone (``calibrate_pack``) and all together (``calibrate_pooled``), and forecast 3 years; the
table gives each fit's factors and its largest SoH error against the history. Unlike the reference
(``forecast_reference.py``), the model here *is* the truth: this checks what pooling can identify, not
how the model does in the field.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
from pathlib import Path

from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)
from results_io import load_footer, write_results  # noqa: E402  (bench/, next to this script)

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batteries.forecast import (  # noqa: E402
    AgeingCalibration,
    BlockPlan,
    Climate,
    ForecastJob,
    HealthObservation,
    PackSpec,
    calibrate_pack,
    calibrate_pooled,
    forecast_pack,
)

RESULTS = Path(__file__).resolve().parent / "results"
START = dt.date(2024, 1, 1)
HERMOSILLO = Climate((17, 19, 22, 25, 29, 32, 32, 32, 31, 27, 21, 17))
BUS = PackSpec("LFP", nominal_kwh=350, nominal_ah=600, cells_series=200, cells_parallel=3)
PARKED_KM = (80, 60, 100, 120)
CYCLED_KM = (450, 350, 400, 500)


def duties(per_duty: int) -> dict[str, BlockPlan]:
    out = {f"parked {km} km": BlockPlan(km, 1.1) for km in PARKED_KM[:per_duty]}
    out |= {
        f"cycled {km} km, 1C top-up": BlockPlan(km, 1.1, top_ups_per_day=1, charge_c_rate=1.0)
        for km in CYCLED_KM[:per_duty]
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-duty", type=int, default=1, choices=range(1, 5))
    parser.add_argument("--calendar", type=float, default=0.6)
    parser.add_argument("--cycling", type=float, default=1.6)
    args = parser.parse_args()
    started_load = load_average()
    truth = AgeingCalibration(args.calendar, 0.01, "pack", 1, cycling_factor=args.cycling, cycling_log_sigma=0.01)
    started = time.perf_counter()
    jobs, observations, histories = [], {}, {}
    for name, plan in duties(args.per_duty).items():
        history = forecast_pack(ForecastJob(name, BUS, plan, HERMOSILLO, START, START, truth, 3.0))
        histories[name] = {p.date: p.soh_pct for p in history.points}
        observations[name] = [
            HealthObservation(d, s, 0.1) for d, s in histories[name].items() if 0 < (d - START).days <= 180
        ]
        jobs.append(ForecastJob(name, BUS, plan, HERMOSILLO, START, START, AgeingCalibration(), 3.0))
    pooled = calibrate_pooled([(job, observations[job.pack_id]) for job in jobs])
    rows = []
    for job in jobs:
        row: dict = {"pack": job.pack_id}
        for kind, calibration in (
            ("single", calibrate_pack(job, observations[job.pack_id])),
            ("pooled", pooled.packs[job.pack_id]),
        ):
            forecast = forecast_pack(ForecastJob(**{**job.__dict__, "calibration": calibration}))
            history = histories[job.pack_id]
            row[f"{kind}_factors"] = f"{calibration.rate_factor:.3f} / {calibration.cycling_factor:.3f}"
            row[f"{kind}_ln_error"] = [
                round(math.log(calibration.rate_factor / args.calendar), 3),
                round(math.log((calibration.cycling_factor or 1.0) / args.cycling), 3),
            ]
            row[f"{kind}_max_err_pp"] = round(max(abs(p.soh_pct - history[p.date]) for p in forecast.points), 2)
        rows.append(row)
        print(row, flush=True)
    seconds = round(time.perf_counter() - started, 1)
    stem = f"forecast-pooled-check-{dt.date.today().isoformat()}-{2 * args.per_duty}-packs"
    out = {
        "truth": [args.calendar, args.cycling],
        "group": [pooled.group.rate_factor, pooled.group.cycling_factor],
        "rows": rows,
        "seconds": seconds,
        "load_average_at_start": started_load,
        "machine": machine_info("pybamm", load_average=load_average()),
    }
    lines = [
        f"# Pooled vs single-pack calibration on evfleet's own model ({2 * args.per_duty} packs)",
        "",
        f"Truth: calendar {args.calendar}, cycling {args.cycling}. Calibrated on the first 180 days (monthly, 0.1 pp);",
        "largest SoH error over 3 years against the history, pp; ln error = ln(fitted / truth).",
        "",
        "| pack | single: factors | ln error | max err | pooled: factors | ln error | max err |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pack']} | {r['single_factors']} | {r['single_ln_error']} | {r['single_max_err_pp']} | "
            f"{r['pooled_factors']} | {r['pooled_ln_error']} | {r['pooled_max_err_pp']} |"
        )
    lines += [
        "",
        f"Group value: {pooled.group.rate_factor:.3f} / {pooled.group.cycling_factor:.3f}. {seconds} s in all.",
        *load_footer(started_load, out["machine"]),
    ]
    write_results(stem, out, lines)


if __name__ == "__main__":
    main()
