"""The nightly path's fleet learning on the independent references: a new pack's prior learnt from its battery
model's older packs (``pooled.model_prior``, two stages), against the joint fit and against the pack alone.

    cd bench && ../.venv/bin/python forecast_model_prior_check.py results/forecast-reference-3y*.json \
        --physics other diffusion --older-months 12 18 24 --tag session9-loaded

For each physics and chemistry, each duty in turn is the *new* pack: its first 180 days of monthly checks
(0.3 pp). Every *other* duty of that physics and chemistry is an *older* pack of the same cell with its first
N months of checks. As the night does it: each older pack is calibrated alone (``calibrate_pack``), which leaves
its checks' evidence; the new pack's prior is ``model_prior(preset, that evidence)``; the new pack is
calibrated against it (``calibrate_pack(..., fallback=prior)``) and forecast to 3 years. Never the new pack's
own later checks, never another physics. *alone*: the new pack against the preset's prior (the reference
table's "single"). The same references make the older packs share the new pack's calendar dates and give the
truths no cell-to-cell spread: a best case for any pooling. The NMC duties differ in pack design (a bus pack
and a car pack of the same cell): the product's battery-model key (chemistry, pack design, vehicle model)
would not pool them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
from pathlib import Path

from forecast_reference import (
    DUTIES,
    START,
    _calibrated_columns,
    job_for,
    sqrt_efc_fit,
)
from machine_info import load_average, machine_info
from results_io import load_footer, write_results

from batteries.forecast import HealthObservation, calibrate_pack, model_prior, prior_calibration

NEW_PACK_DAYS = 180
UNCERTAINTY_PCT = 0.3


def checks(ref: dict[dt.date, float], days: int) -> list[HealthObservation]:
    return [HealthObservation(m, s, UNCERTAINTY_PCT) for m, s in ref.items() if 0 < (m - START).days <= days]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="reference files (later ones win)")
    parser.add_argument("--physics", nargs="*", default=["other", "diffusion"])
    parser.add_argument("--older-months", nargs="*", type=int, default=[12, 24])
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    runs: dict = {}
    for path in args.inputs:
        runs.update(json.loads(Path(path).read_text())["runs"])
    started_load = load_average()
    cases: dict[tuple[str, str], dict[str, tuple[dict, dict, float]]] = {}
    for key, run in runs.items():
        physics, name = key.split("|", 1)
        if physics not in args.physics or name not in DUTIES:
            continue
        months = [dt.date.fromisoformat(m) for m in run["months"]]
        ref = dict(zip(months, run["soh_pct"], strict=True))
        years = min(run["years"], (months[-1] - START).days / 365.25)
        cases.setdefault((physics, DUTIES[name][0]), {})[name] = (run, ref, years)

    rows = []
    for (physics, chemistry), duties in cases.items():
        preset = prior_calibration(chemistry)
        # Each duty's evidence as an older pack, once per span (it does not depend on which pack is new).
        evidence: dict[int, dict[str, tuple | None]] = {}
        for months in args.older_months:
            evidence[months] = {}
            for name, (_run, ref, years) in duties.items():
                t = time.process_time()
                fit = calibrate_pack(job_for(name, years), checks(ref, round(months * 30.44)))
                evidence[months][name] = fit.evidence
                print(
                    f"{physics} {name}: {months} months -> evidence in {time.process_time() - t:.1f} CPU s", flush=True
                )
        for name, (run, ref, years) in duties.items():
            new_checks = checks(ref, NEW_PACK_DAYS)
            row: dict = {"physics": physics, "duty": name, "older_packs": len(duties) - 1}
            row.update(_calibrated_columns(name, years, calibrate_pack(job_for(name, years), new_checks), ref, "alone"))
            for months in args.older_months:
                others = [e for other, e in evidence[months].items() if other != name and e is not None]
                prior = model_prior(preset, others)
                fit = calibrate_pack(job_for(name, years), new_checks, fallback=prior)
                row.update(_calibrated_columns(name, years, fit, ref, f"older_{months}"))
                row[f"older_{months}_prior"] = (
                    f"{prior.rate_factor:.3f} / {prior.cycling_factor or prior.rate_factor:.3f}"
                )
            early = [(m, s) for m, s in ref.items() if 0 < (m - START).days <= NEW_PACK_DAYS]
            a = sqrt_efc_fit(
                [(m - START).days for m, _ in early], [s for _, s in early], run["energy_fraction_per_day"]
            )
            row["sqrt_efc_max_err_pp"] = round(
                max(
                    abs(100 - a * math.sqrt((m - START).days * run["energy_fraction_per_day"]) - s)
                    for m, s in ref.items()
                ),
                2,
            )
            rows.append(row)
            print(row, flush=True)

    today = dt.date.today().isoformat()
    stem = f"forecast-model-prior-check-{today}" + (f"-{args.tag}" if args.tag else "")
    out = {"machine": machine_info("pybamm", load_average=load_average()), "load_average_at_start": started_load}
    spans = args.older_months
    lines = [
        f"# A new pack's prior learnt from its battery model's older packs ({today})",
        "",
        "The nightly path's two-stage fleet learning (`pooled.model_prior`) on the independent references; see the",
        "script's docstring. Largest absolute monthly SoH error over 3 years, pp, and (signed) at 3 years. *alone*:",
        f"the new pack's first {NEW_PACK_DAYS} days against the preset's prior. *older N mo*: the same checks against",
        "the prior learnt from every other duty of the physics and chemistry with its first N months of checks",
        "(leave-one-out). *prior*: that learnt prior's calendar / cycling factors. Target (field case): 1 pp at 3 y.",
        "",
        "| physics | duty | older packs | alone (at 3 y) | "
        + " | ".join(f"older {m} mo (at 3 y), prior, in band" for m in spans)
        + " | sqrt(EFC) baseline |",
        "|---|---|---|---|" + "---|" * len(spans) + "---|",
    ]
    for r in rows:
        cells = [
            f"{r.get(f'older_{m}_max_err_pp', '-')} ({r.get(f'older_{m}_end_err_pp', '-')}), "
            f"{r.get(f'older_{m}_prior', '-')}, {r.get(f'older_{m}_in_band_at_end', '-')}"
            for m in spans
        ]
        lines.append(
            f"| {r['physics']} | {r['duty']} | {r['older_packs']} | {r.get('alone_max_err_pp', '-')} "
            f"({r.get('alone_end_err_pp', '-')}) | " + " | ".join(cells) + f" | {r['sqrt_efc_max_err_pp']} |"
        )
    write_results(stem, {**out, "rows": rows}, lines + load_footer(started_load, out["machine"]))


if __name__ == "__main__":
    main()
