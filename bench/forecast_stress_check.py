"""Cross-model field case (issue 13, point 4): does a shared LAM C-rate stress factor close the gap?

    .venv/bin/python bench/forecast_stress_check.py --tag session7-loaded                 # ~5 min CPU
    .venv/bin/python bench/forecast_stress_check.py --calibration-days 1100 --tag ...     # in-sample, ~15 min

The other-physics references (``forecast_reference.py``: reaction-limited SEI, throughput-only LAM, 1.3x
rates) are calibrated by evfleet on each history's first ``--calibration-days`` days of monthly SoH
(0.3 pp), and forecast to 3 years. Rows (LFP: the five bus duties as packs of one battery model; NMC:
one duty, so single-pack only):

* *single, stress 1*: ``calibrate_pack`` at the preset's stress (today's single-pack column);
* *pooled, one-leg duties only*: ``calibrate_pooled`` of the four one-leg duties (does pooling them
  alone find the cycling factor of ~1.6 the 36-month fit needs?);
* *pooled, stress fitted*: ``calibrate_pooled_with_stress`` (the stress factor shared by the battery
  model, MAP with its prior, then the pooled two factors at it);
* *pooled, stress 0 (given)*: the pooled fit at the other model's own LAM form (throughput only) - not a
  fit of the stress, an upper bound of what knowing it could give.

Each has its largest monthly error and its signed error at 3 years (forecast - reference), pp; the
sqrt(EFC) baseline is fitted to the same checks. Nothing is tuned on the 3-year answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from pathlib import Path

from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)
from results_io import load_footer, write_results  # noqa: E402  (bench/, next to this script)

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from forecast_reference import DUTIES, RESULTS, START, job_for, sqrt_efc_fit  # noqa: E402

from batteries.forecast import AgeingCalibration, HealthObservation, calibrate_pack, forecast_pack  # noqa: E402
from batteries.forecast.pooled import calibrate_pooled, calibrate_pooled_with_stress  # noqa: E402

REFERENCES = (
    "forecast-reference-3y.json",
    "forecast-reference-3y-b.json",
    "forecast-reference-3y-other.json",
    "forecast-reference-3y-other-2.json",
    "forecast-reference-3y-nmc.json",
)


def errors(name: str, calibration: AgeingCalibration, ref: dict) -> tuple[float, float]:
    result = forecast_pack(job_for(name, 3.0, calibration))
    e = [p.soh_pct - ref[p.date] for p in result.points if p.date in ref]
    return round(max(abs(x) for x in e), 2), round(e[-1], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration-days", type=int, default=180)
    parser.add_argument("--tag", default="session7-loaded")
    parser.add_argument(
        "--physics", default="other", choices=("other", "same"), help="same: a check with a known stress factor, 1"
    )
    args = parser.parse_args()
    started_load = load_average()
    wall, cpu = time.perf_counter(), time.process_time()
    runs: dict = {}
    for f in REFERENCES:
        runs.update(json.loads((RESULTS / f).read_text())["runs"])
    refs, observations, efc = {}, {}, {}
    for key, run in runs.items():
        physics, name = key.split("|", 1)
        if physics != args.physics:
            continue
        months = [dt.date.fromisoformat(m) for m in run["months"]]
        refs[name] = dict(zip(months, run["soh_pct"], strict=True))
        observations[name] = [
            HealthObservation(m, s, 0.3) for m, s in refs[name].items() if 0 < (m - START).days <= args.calibration_days
        ]
        efc[name] = run["energy_fraction_per_day"]
    lfp = [n for n in refs if DUTIES[n][0] == "LFP"]
    one_leg = [n for n in lfp if DUTIES[n][2].top_ups_per_day == 0]
    fits: dict[str, dict[str, AgeingCalibration]] = {n: {} for n in refs}
    timing: dict[str, float] = {}

    t = time.process_time()
    for n in refs:
        fits[n]["single, stress 1"] = calibrate_pack(job_for(n, 3.0), observations[n])
    timing["single"] = time.process_time() - t
    t = time.process_time()
    pooled = calibrate_pooled([(job_for(n, 3.0), observations[n]) for n in one_leg])
    for n in one_leg:
        fits[n]["pooled, one-leg duties only"] = pooled.packs[n]
    timing["pooled one-leg"] = time.process_time() - t
    t = time.process_time()
    with_stress, stress = calibrate_pooled_with_stress([(job_for(n, 3.0), observations[n]) for n in lfp])
    for n in lfp:
        fits[n]["pooled, stress fitted"] = with_stress.packs[n]
    timing["pooled with stress"] = time.process_time() - t
    t = time.process_time()
    given = AgeingCalibration(lam_stress_factor=0.0)
    pooled0 = calibrate_pooled([(job_for(n, 3.0, given), observations[n]) for n in lfp])
    for n in lfp:
        fits[n]["pooled, stress 0 (given)"] = pooled0.packs[n]
    timing["pooled stress 0"] = time.process_time() - t

    rows = []
    for n in refs:
        early = [(m, s) for m, s in refs[n].items() if 0 < (m - START).days <= args.calibration_days]
        a = sqrt_efc_fit([(m - START).days for m, _ in early], [s for _, s in early], efc[n])
        baseline = max(abs(100 - a * math.sqrt((m - START).days * efc[n]) - s) for m, s in refs[n].items())
        row: dict = {"duty": n, "sqrt_efc_max_err_pp": round(baseline, 2)}
        for label, c in fits[n].items():
            worst, end = errors(n, c, refs[n])
            row[label] = {
                "factors": [round(c.rate_factor, 3), round(c.cycling_factor or c.rate_factor, 3)],
                "stress": round(c.lam_stress_factor, 3),
                "max_err_pp": worst,
                "end_err_pp": end,
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    labels = ["single, stress 1", "pooled, one-leg duties only", "pooled, stress fitted", "pooled, stress 0 (given)"]
    out = {
        "physics": args.physics,
        "calibration_days": args.calibration_days,
        "stress_fit": {"value": stress.value, "sigma": stress.sigma, "profile": stress.profile},
        "rows": rows,
        "cpu_s": {k: round(v, 1) for k, v in timing.items()},
        "wall_s": round(time.perf_counter() - wall, 1),
        "total_cpu_s": round(time.process_time() - cpu, 1),
        "load_average_at_start": started_load,
        "machine": machine_info("pybamm", load_average=load_average()),
    }
    stem = f"forecast-reference-{dt.date.today().isoformat()}-stress-{args.physics}-{args.calibration_days}d-{args.tag}"
    kind = args.physics.capitalize()
    lines = [
        f"# {kind} physics: calibration with a shared LAM stress factor ({dt.date.today().isoformat()})",
        "",
        f"{kind}-physics references calibrated on their first {args.calibration_days} days (monthly SoH, 0.3 pp),",
        "forecast to 3 years (`bench/forecast_stress_check.py`). Each cell: largest monthly error / signed",
        "error at 3 y (forecast - reference), pp; then calendar / cycling factors [stress factor]. Target: <= 1 pp.",
        "",
        "| duty | " + " | ".join(labels) + " | sqrt(EFC) baseline |",
        "|---|" + "---|" * (len(labels) + 1),
    ]
    for r in rows:
        cells = []
        for label in labels:
            c = r.get(label)
            if c is None:
                cells.append("-")
                continue
            factors = f"{c['factors'][0]} / {c['factors'][1]} [{c['stress']}]"
            cells.append(f"{c['max_err_pp']} / {c['end_err_pp']:+.2f}; {factors}")
        lines.append(f"| {r['duty']} | " + " | ".join(cells) + f" | {r['sqrt_efc_max_err_pp']} |")
    profile = ", ".join(f"{k:g}: {v:.3f}" for k, v in stress.profile.items())
    lines += [
        "",
        f"Stress factor fitted across the LFP duties: {stress.value:.3f} +- {stress.sigma:.3f} (prior 1.0 +- 0.5);",
        f"profile (stress: negative log posterior incl. prior) {profile}.",
        f"CPU s by step: {out['cpu_s']}.",
        *load_footer(started_load, out["machine"], cpu_s=out["total_cpu_s"], wall_s=out["wall_s"]),
    ]
    write_results(stem, out, lines)


if __name__ == "__main__":
    main()
