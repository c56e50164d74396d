"""Step control of one pack's forecast against a 10-year day-by-day reference (issue 13, session 9).

    .venv/bin/python bench/forecast_step_check.py --tag T        # the cold 1C NMC bus, ~1.5 min CPU
    .venv/bin/python bench/forecast_step_check.py --duty "LFP bus, Hermosillo" \
        --reference bench/results/forecast-reference-10y-lfp-bus-hermosillo-session9-loaded.json --tag T

One duty of ``forecast_reference.py``, forecast at the prior to ``--years`` with several step controls
(``TrajectorySettings``). For each: simulated days, CPU seconds (the fastest of ``--repeat``), and the P50's
error month by month against two answers:

* the **independent reference** (``forecast_reference.py simulate --physics same``: every day, at that day's
  temperature, with the duty's real current profile - the arbiter of accuracy);
* the method's **own every-day run** (``trajectory.simulate_day_by_day``: the same representative days as the
  forecast, every day, no extrapolation): its difference is the step control's own error, and the every-day
  run's difference from the reference is what the representation (representative days) costs, whatever
  the steps.

Writes bench/results/forecast-steps-<date>-<tag>.json/.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)
from results_io import load_footer, write_results  # noqa: E402  (bench/, next to this script)

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from forecast_reference import RESULTS, START, job_for  # noqa: E402

from batteries.forecast import forecast_pack  # noqa: E402
from batteries.forecast.forecast import PACK_SETTINGS, horizon_end, prepare  # noqa: E402
from batteries.forecast.simulate import day_model  # noqa: E402
from batteries.forecast.trajectory import TrajectorySettings, simulate_day_by_day  # noqa: E402

DEFAULT_DUTY = "NMC bus, Nogales, 1C charging"
DEFAULT_REFERENCE = RESULTS / "forecast-reference-10y-nmc-bus-1c-session9-loaded.json"
#: name -> step control; "now" is forecast_pack's default.
VARIANTS = {
    "lockstep (before session 9)": TrajectorySettings(),
    "own steps, P50 uncapped": TrajectorySettings(per_member_steps=True, median_max_jump_months=48),
    "own steps, P50 <= 12 months": TrajectorySettings(per_member_steps=True, median_max_jump_months=12),
    "own steps, P50 <= 8 months (now)": PACK_SETTINGS,
    "own steps, P50 <= 6 months": TrajectorySettings(per_member_steps=True, median_max_jump_months=6),
    "own steps, every member <= 8 months": TrajectorySettings(per_member_steps=True, max_jump_months=8),
    "own steps, tol 0.15 pp": TrajectorySettings(per_member_steps=True, tol_pp=0.15, median_max_jump_months=48),
    "finer: tol 0.03 pp, 1-6 months": TrajectorySettings(
        per_member_steps=True, tol_pp=0.03, first_jump_months=1, max_jump_months=6
    ),
}


def _errors(points: dict[dt.date, float], truth: dict[dt.date, float], years: float) -> dict:
    common = sorted(d for d in points if d in truth)
    signed = {d: points[d] - truth[d] for d in common}
    worst = max(common, key=lambda d: abs(signed[d]))
    at = {}
    for y in range(3, int(years), 3):
        d = dt.date(START.year + y, START.month, START.day)
        if d in signed:
            at[f"{y}y"] = round(signed[d], 3)
    return {"max_abs_pp": round(abs(signed[worst]), 3), "worst_month": worst.isoformat(), "signed_at": at}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duty", default=DEFAULT_DUTY)
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE), help="a forecast_reference.py simulate file")
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tag", default="loaded")
    args = parser.parse_args()

    run = json.loads(Path(args.reference).read_text())["runs"][f"same|{args.duty}"]
    reference = {dt.date.fromisoformat(m): s for m, s in zip(run["months"], run["soh_pct"], strict=True)}
    job = job_for(args.duty, args.years)
    started_load = load_average()

    prepared = prepare(job)
    cpu = time.process_time()
    every, every_days = simulate_day_by_day(
        day_model(prepared.chemistry).with_lam_stress(prepared.lam_stress),
        prepared.profile,
        list(prepared.season_temps_k),
        prepared.usable_soc_min,
        job.in_service_date,
        horizon_end(job),
        job.calibration.rate_factor,
    )
    every_cpu = time.process_time() - cpu
    own = dict(zip(every.dates, every.soh_pct, strict=True))
    rows = [
        {
            "control": "every day (the forecast's representative days, no steps)",
            "simulated_days": every_days,
            "cpu_s": round(every_cpu, 2),
            "vs_reference": _errors(own, reference, args.years),
        }
    ]
    for name, settings in VARIANTS.items():
        forecast_pack(job, settings)  # warm the model and its caches
        cpus = []
        for _ in range(max(args.repeat, 1)):
            cpu = time.process_time()
            result = forecast_pack(job, settings)
            cpus.append(time.process_time() - cpu)
        p50 = {p.date: p.soh_pct for p in result.points}
        rows.append(
            {
                "control": name,
                "simulated_days": result.simulated_days,
                "cpu_s": round(min(cpus), 2),
                "cpu_s_all": [round(c, 3) for c in cpus],
                "vs_reference": _errors(p50, reference, args.years),
                "vs_own_every_day": _errors(p50, own, args.years),
                "soh_end": [result.points[-1].soh_p10_pct, result.points[-1].soh_pct, result.points[-1].soh_p90_pct],
                "eol_80": str(result.eol_80.date),
                "end_of_duty": str(result.end_of_duty_date),
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    today = dt.date.today().isoformat()
    stem = f"forecast-steps-{today}-{args.tag}"
    out = {
        "duty": args.duty,
        "years": args.years,
        "reference_file": Path(args.reference).name,
        "machine": machine_info("pybamm", load_average=load_average()),
        "load_average_at_start": started_load,
        "rows": rows,
    }
    lines = [
        f"# One pack's step control vs a day-by-day reference ({today}): {args.duty}, {args.years:g} years, prior",
        "",
        "P50 error, pp (forecast - reference): largest |error| over every month, and signed at 3 / 6 / 9 years.",
        "*reference*: `forecast_reference.py` same physics (every day, daily temperature, real current profile);",
        "*own every-day run*: the forecast's own representative days simulated every day (the step control's",
        "error). CPU: fastest of the repeats, one process, shared machine (load in the footer).",
        "",
        "| step control | simulated days | CPU s | vs reference: max (month) | at 3 / 6 / 9 y "
        "| vs own every-day run: max | at 3 / 6 / 9 y | SoH at the end P10 / P50 / P90 | EOL 80 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref, mine = r["vs_reference"], r.get("vs_own_every_day")
        lines.append(
            f"| {r['control']} | {r['simulated_days']} | {r['cpu_s']} | {ref['max_abs_pp']} ({ref['worst_month'][:7]}) "
            f"| {' / '.join(str(v) for v in ref['signed_at'].values())} | "
            f"{mine['max_abs_pp'] if mine else '-'} | "
            f"{' / '.join(str(v) for v in mine['signed_at'].values()) if mine else '-'} | "
            f"{' / '.join(str(v) for v in r.get('soh_end', [])) or '-'} | {r.get('eol_80', '-')} |"
        )
    write_results(stem, out, lines + load_footer(started_load, out["machine"]))


if __name__ == "__main__":
    main()
