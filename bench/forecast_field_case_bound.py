"""What 180 days of checks can tell at all: a lower bound on the field case's error, for any forecaster.

    .venv/bin/python bench/forecast_field_case_bound.py --tag T [reference files, compare's order]

The field case (issue 13 point 4) asks for a forecast within 1 pp at 3 years of histories made by another model,
calibrated on their first 180 days of monthly checks (0.3 pp each). Its two truths - *other* (reaction-limited
SEI, almost linear in time) and *diffusion* (solvent-diffusion-limited SEI, ~sqrt(t)) - were run on the same duties.
Where a duty's two histories agree within the checks' uncertainty over those 180 days, the checks cannot say
which truth is running, so a forecast made from them is the same for both (whatever the method: physics, a rule
of thumb, a neural network); it then misses one of the two by at least half their distance at 3 years.

Per duty: the largest difference of the two truths' monthly SoH over the first 180 days, and the chi2 of one
history against the other's checks at 0.3 pp (below ~1 per check: the checks do not tell them apart); their
difference at 3 years; and the bound, half of it. No simulation: the stored references only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math

from forecast_reference import RESULTS, START, load_cases  # noqa: E402  (bench/, next to this script)
from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)
from results_io import load_footer, write_results  # noqa: E402  (bench/, next to this script)

#: The stored field-truth references (both truths of the six issue duties), in ``compare``'s order.
FIELD_FILES = [
    "forecast-reference-3y-other.json",
    "forecast-reference-3y-other-2.json",
    "forecast-reference-3y-nmc.json",
    "forecast-reference-3y-diffusion-session8-loaded.json",
]
CHECK_PP = 0.3
CALIBRATION_DAYS = 180
TARGET_PP = 1.0


def bound_rows(paths: list[str]) -> list[dict]:
    _stored, cases = load_cases(paths, ["other", "diffusion"], CALIBRATION_DAYS)
    by_duty: dict[str, dict[str, dict[dt.date, float]]] = {}
    for physics, name, _run, ref, _years, _early, _observations in cases:
        by_duty.setdefault(name, {})[physics] = ref
    rows = []
    for duty, truths in by_duty.items():
        if set(truths) != {"other", "diffusion"}:
            continue
        linear, diffusion = truths["other"], truths["diffusion"]
        early = [m for m in linear if 0 < (m - START).days <= CALIBRATION_DAYS and m in diffusion]
        end = max(m for m in linear if m in diffusion and (m - START).days <= 3 * 365.25 + 31)
        apart_early = max(abs(linear[m] - diffusion[m]) for m in early)
        chi2 = sum(((linear[m] - diffusion[m]) / CHECK_PP) ** 2 for m in early)
        apart_end = abs(linear[end] - diffusion[end])
        rows.append(
            {
                "duty": duty,
                "checks": len(early),
                "max_apart_first_180_days_pp": round(apart_early, 3),
                "chi2_one_against_the_other": round(chi2, 3),
                # How much more likely the checks are under one truth than under the other (noise-free checks).
                "likelihood_ratio": round(math.exp(chi2 / 2), 2),
                "indistinguishable": chi2 < len(early),
                "at": end.isoformat(),
                "linear_soh_pct": round(linear[end], 2),
                "diffusion_soh_pct": round(diffusion[end], 2),
                "apart_at_end_pp": round(apart_end, 2),
                "least_worse_error_pp": round(apart_end / 2, 2),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references", nargs="*", default=[str(RESULTS / name) for name in FIELD_FILES])
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    started = load_average()
    rows = bound_rows(args.references)
    today = dt.date.today().isoformat()
    out = {"machine": machine_info(load_average=load_average()), "check_pp": CHECK_PP, "rows": rows}
    lines = [
        f"# The field case's floor: what 180 days of checks cannot tell ({today})",
        "",
        f"The two field truths on each duty, first {CALIBRATION_DAYS} days of monthly SoH (the checks a forecast is "
        f"calibrated on, {CHECK_PP} pp each) and at 3 years. *chi2*: one truth's history against the other's checks; "
        "below the number of checks the checks do not tell the two apart, so any forecaster gives both the same "
        "3-year SoH and misses one of them by at least half their distance (*least worse error*); the likelihood "
        "ratio says how much more the checks favour one truth (noise-free checks; real ones are noisier). Target: "
        f"{TARGET_PP} pp on both.",
        "",
        "| duty | checks | apart in 180 days, max pp | chi2 (likelihood ratio) | told apart? | "
        "linear / diffusion at 3 y | apart at 3 y | least worse error | 1 pp possible? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        possible = "no" if r["indistinguishable"] and r["least_worse_error_pp"] > TARGET_PP else "not excluded"
        lines.append(
            f"| {r['duty']} | {r['checks']} | {r['max_apart_first_180_days_pp']} | "
            f"{r['chi2_one_against_the_other']} ({r['likelihood_ratio']}) | "
            f"{'no' if r['indistinguishable'] else 'yes'} | {r['linear_soh_pct']} / {r['diffusion_soh_pct']} | "
            f"{r['apart_at_end_pp']} | {r['least_worse_error_pp']} | {possible} |"
        )
    stem = f"forecast-field-case-bound-{today}" + (f"-{args.tag}" if args.tag else "")
    write_results(stem, out, lines + load_footer(started, out["machine"]))


if __name__ == "__main__":
    main()
