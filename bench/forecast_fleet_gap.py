"""The nightly path (``forecast_fleet``) against the single-pack path (``forecast_pack``/``calibrate_pack``)
that every accuracy figure is measured on: per pack, P10/P50/P90 at 1, 3, 5, 10 years and the end-of-duty
date, split into its sources (issue 13, "what it tells people must be true"; docs/forecast.md, "Fleet").

    .venv/bin/python bench/forecast_fleet_gap.py --tag session7-h13gap-loaded
    .venv/bin/python bench/forecast_fleet_gap.py --part observed --tag x-loaded   # one part (~half the time)

Prior-only packs: the 12 packs ``bench_forecast.py --quick`` checks (its 100-pack world, seed 7), with their
whole duty groups (49 packs, 5 one-factor groups). Per pack:

* ``P``  forecast_pack (lockstep, the default step control, tol 0.3 pp)
* ``Pf`` forecast_pack at tol 0.05 pp (a finer step: which path is closer to the converged answer)
* ``Q``  forecast_pack's members on the group's quantised duty (quantisation alone)
* ``Qm`` the same with each member its own step (the group runs' step control)
* ``G1`` forecast_fleet on the pack alone (offset 0: grid interpolation in the factor, the fleet's guard)
* ``F``  forecast_fleet in its group (adds the age/season shift and the group's shared grid)

Observed packs: two duties (an LFP bus block, a 1-top-up bus at ~2.3 EFC/day), three packs each in service
150/400 days apart, ageing at known two-factor truths; four noise-free capacity tests (0.5 pp) each. ``F``
the nightly answer (fit on the 6-member design, band from the surface), ``A`` calibrate_pack +
forecast_pack, ``B`` forecast_pack at the nightly fit (so F-B is the surface, B-A the fit), ``T`` the truth.
The observed packs are tabled together and per duty (the top-up duty's members are cut within the horizon: the
nightly path reads those packs from anchor members, docs/forecast.md "Fleet").
Writes bench/results/forecast-fleet-gap-<date>[-tag].json and .md (never overwrites).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_forecast import CLIMATES, fleet_jobs  # noqa: E402

from batteries.forecast import (  # noqa: E402
    AgeingCalibration,
    BlockPlan,
    ForecastJob,
    HealthObservation,
    PackSpec,
    calibrate_pack,
    forecast_fleet,
    forecast_pack,
    prepare,
)
from batteries.forecast.fleet import GROUP_SETTINGS, _quantised, duty_signature  # noqa: E402
from batteries.forecast.forecast import assemble, band_factors, horizon_end, run_members  # noqa: E402
from batteries.forecast.trajectory import TrajectorySettings, add_months  # noqa: E402

YEARS = (1, 3, 5, 10)
#: Days the nightly runs (F) simulated, per part.
SIMULATED_DAYS: dict[str, int] = {}
EDGES = (("P50", 1), ("P10", 0), ("P90", 2))


def _at(result, years: int):
    d = add_months(result.as_of, 12 * years)
    return next(((p.soh_p10_pct, p.soh_pct, p.soh_p90_pct) for p in result.points if p.date >= d), None)


def _row(result) -> dict:
    out: dict = {str(y): _at(result, y) for y in YEARS}
    out["end"] = None if result.end_of_duty_date is None else result.end_of_duty_date.isoformat()
    return out


def _quantised_pack(job: ForecastJob, settings: TrajectorySettings | None):
    own = prepare(job)
    shared = _quantised(own)
    members, n = run_members(
        shared, job.in_service_date, horizon_end(job), list(band_factors(job.calibration)), settings
    )
    return assemble(
        job, replace(shared, profile=replace(shared.profile, km_per_day=own.profile.km_per_day)), *members, n
    )


def prior_packs() -> list[dict]:
    jobs = fleet_jobs(100, 10)
    sample = jobs[::8][:12]
    signatures = {duty_signature(prepare(j)) for j in sample}
    group_jobs = [j for j in jobs if duty_signature(prepare(j)) in signatures]
    run = forecast_fleet(group_jobs)
    SIMULATED_DAYS["prior groups"] = run.simulated_days
    rows = []
    for job in sample:
        sig = duty_signature(prepare(job))
        start = min(j.in_service_date for j in group_jobs if duty_signature(prepare(j)) == sig)
        variants = {
            "P": forecast_pack(job),
            "Pf": forecast_pack(job, TrajectorySettings(tol_pp=0.05)),
            "Q": _quantised_pack(job, None),
            "Qm": _quantised_pack(job, GROUP_SETTINGS),
            "G1": forecast_fleet([job]).results[job.pack_id],
            "F": run.results[job.pack_id],
        }
        row = {
            "pack": job.pack_id,
            "energy_fraction": round(prepare(job).profile.energy_fraction, 4),
            "top_ups": prepare(job).profile.top_ups,
            "offset_days": (job.in_service_date - start).days,
            **{k: _row(r) for k, r in variants.items()},
        }
        rows.append(row)
        print(job.pack_id, {k: row[k]["end"] for k in variants}, flush=True)
    return rows


def observed_packs() -> list[dict]:
    start = dt.date(2024, 1, 1)
    pack = PackSpec("LFP", 350, 600, 200, 3)
    duties = {
        "bus": BlockPlan(km_per_day=192.0, kwh_per_km=1.1, charge_c_rate=0.5),
        "topup": BlockPlan(km_per_day=369.0, kwh_per_km=1.1, charge_c_rate=1.0, top_ups_per_day=1),
    }
    truths, offsets = [(0.7, 1.6), (1.0, 1.0), (1.5, 0.7)], [0, 150, 400]
    jobs, observations, truth = [], {}, {}
    for name, plan in duties.items():
        for k, ((calendar, cycling), offset) in enumerate(zip(truths, offsets, strict=True)):
            in_service = start - dt.timedelta(days=900 - offset)
            true = AgeingCalibration(calendar, 0.01, "pack", 0, cycling_factor=cycling, cycling_log_sigma=0.01)
            job = ForecastJob(
                f"{name}-{k}",
                pack,
                replace(plan, km_per_day=plan.km_per_day + 0.2 * k),
                CLIMATES["Hermosillo"],
                in_service,
                start,
                true,
                10.0,
            )
            truth[job.pack_id] = forecast_pack(job)
            life = forecast_pack(replace(job, as_of=in_service, horizon_years=3.0))
            observations[job.pack_id] = [
                HealthObservation(p.date, p.soh_pct, 0.5)
                for d in (120, 330, 560, 800 - offset)
                for p in [min(life.points, key=lambda p, d=d: abs((p.date - in_service).days - d))]
            ]
            jobs.append(replace(job, calibration=AgeingCalibration()))
    run = forecast_fleet(jobs, observations=observations)
    SIMULATED_DAYS["observed groups"] = run.simulated_days
    rows = []
    for job in jobs:
        nightly = run.results[job.pack_id]
        single = calibrate_pack(job, observations[job.pack_id])
        assert nightly.calibration.cycling_factor is not None and single.cycling_factor is not None
        variants = {
            "F": nightly,
            "A": forecast_pack(replace(job, calibration=single)),
            "B": forecast_pack(replace(job, calibration=nightly.calibration)),
            "T": truth[job.pack_id],
        }
        rows.append(
            {
                "pack": job.pack_id,
                "fit_nightly": [
                    round(nightly.calibration.rate_factor, 3),
                    round(nightly.calibration.cycling_factor, 3),
                ],
                "fit_single": [round(single.rate_factor, 3), round(single.cycling_factor, 3)],
                **{k: _row(r) for k, r in variants.items()},
            }
        )
        print(job.pack_id, rows[-1]["fit_nightly"], rows[-1]["fit_single"], flush=True)
    return rows


def _cells(rows: list[dict], a: str, b: str, edge: int) -> list[str]:
    cells = []
    for y in YEARS:
        v = [abs(r[a][str(y)][edge] - r[b][str(y)][edge]) for r in rows if r[a][str(y)] and r[b][str(y)]]
        cells.append(f"{max(v):.2f} / {statistics.median(v):.2f}" if v else "-")
    return cells


def _days(rows: list[dict], a: str, b: str) -> list:
    out = []
    for r in rows:
        x, y = r[a]["end"], r[b]["end"]
        if x is None and y is None:
            continue
        out.append(None if None in (x, y) else abs((dt.date.fromisoformat(x) - dt.date.fromisoformat(y)).days))
    return out


def table(rows: list[dict], comparisons: list[tuple[str, str, str]]) -> list[str]:
    lines = [
        "| comparison | edge | 1 y max / median | 3 y | 5 y | 10 y | end-of-duty days apart |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, a, b in comparisons:
        for edge_name, edge in EDGES:
            days = _days(rows, a, b) if edge_name == "P50" else ""
            lines.append(f"| {name} | {edge_name} | " + " | ".join(_cells(rows, a, b, edge)) + f" | {days} |")
    return lines


PRIOR_COMPARISONS = [
    ("nightly F vs forecast_pack P", "F", "P"),
    ("forecast_pack P vs finer step Pf", "P", "Pf"),
    ("nightly F vs finer step Pf", "F", "Pf"),
    ("quantised duty Q vs P", "Q", "P"),
    ("own steps Qm vs Q", "Qm", "Q"),
    ("grid + guard G1 vs Qm", "G1", "Qm"),
    ("age/season + shared grid F vs G1", "F", "G1"),
]
OBSERVED_COMPARISONS = [
    ("nightly F vs calibrate_pack + forecast_pack A", "F", "A"),
    ("surface F vs forecast_pack at the nightly fit B", "F", "B"),
    ("fit B vs A", "B", "A"),
    ("nightly F vs truth T", "F", "T"),
    ("single path A vs truth T", "A", "T"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default="")
    parser.add_argument(
        "--part", choices=("both", "prior", "observed"), default="both", help="one part alone (~half the time)"
    )
    args = parser.parse_args()
    info = machine_info("pybamm")
    t, c = time.perf_counter(), time.process_time()
    prior = prior_packs() if args.part != "observed" else []
    t1, c1 = time.perf_counter(), time.process_time()
    observed = observed_packs() if args.part != "prior" else []
    t2, c2 = time.perf_counter(), time.process_time()
    info["load_average_at_end"] = load_average()
    cut = [r for r in prior if r["P"]["end"] is not None]
    whole = [r for r in prior if r["P"]["end"] is None]
    md = [f"# Nightly path vs forecast_pack {dt.date.today()} {args.tag}", ""]
    md += [f"Machine: {', '.join(f'{k} {v}' for k, v in info.items())}", ""]
    md += [
        f"Prior part {t1 - t:.0f} s wall / {c1 - c:.0f} s CPU; "
        f"observed part {t2 - t1:.0f} s wall / {c2 - c1:.0f} s CPU.",
        "",
        "Days the nightly runs (F) simulated: "
        + ", ".join(f"{k} {v:,}" for k, v in SIMULATED_DAYS.items())
        + (f" (part: {args.part})" if args.part != "both" else "")
        + ".",
        "",
    ]
    md += ["Cells: |difference| in SoH pp, max / median over the packs, at 1/3/5/10 years after as_of.", ""]
    md += [f"## Prior-only packs whose duty stays whole over the horizon ({len(whole)})", ""]
    md += table(whole, PRIOR_COMPARISONS) + [""]
    md += [f"## Prior-only packs whose duty is cut within the horizon ({len(cut)})", ""]
    md += table(cut, PRIOR_COMPARISONS) + [""]
    md += ["## Observed packs (6; fits: nightly / single)", ""]
    md += [", ".join(f"{r['pack']} {r['fit_nightly']} / {r['fit_single']}" for r in observed), ""]
    md += table(observed, OBSERVED_COMPARISONS) + [""]
    for duty in ("bus", "topup"):
        rows = [r for r in observed if r["pack"].startswith(f"{duty}-")]
        md += [f"### Observed packs, {duty} duty only ({len(rows)})", ""]
        md += table(rows, OBSERVED_COMPARISONS) + [""]
    out = Path(__file__).parent / "results"
    stem = f"forecast-fleet-gap-{dt.date.today()}" + (f"-{args.tag}" if args.tag else "")
    for ext, text in (
        (
            "json",
            json.dumps(
                {"machine": info, "simulated_days": SIMULATED_DAYS, "prior": prior, "observed": observed}, indent=1
            ),
        ),
        ("md", "\n".join(md) + "\n"),
    ):
        path = out / f"{stem}.{ext}"
        if path.exists():
            sys.exit(f"{path} exists: pick another --tag")
        path.write_text(text)
    print("\n".join(md))


if __name__ == "__main__":
    main()
