"""Speed and quality of the depot charging optimizer, against the targets of issues 4 and 14.

    .venv/bin/python bench/bench_optimizer.py           # full: 1,000 and 3,000 buses, ~3 minutes
    .venv/bin/python bench/bench_optimizer.py --quick   # small cases, well under a minute
    .venv/bin/python bench/bench_optimizer.py --only lp-1000,lp-3000 --label quiet   # the speed targets, ~20 s quiet

Prints a table and writes bench/results/optimizer-<date>[-<label>].json and .md (with the machine).
Times are wall seconds; the CPU seconds of the process are shown next to them (on a shared machine
they are the steadier figure).

Instances come from ``charging.optimizer.generate`` (seeded): 15-minute slots over 24 h.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charging.optimizer import (  # noqa: E402
    evaluate,
    generate_instance,
    replan,
    sifting,
    solve,
)
from charging.optimizer.baselines import earliest_deadline_first, uncontrolled  # noqa: E402


@dataclass
class Case:
    name: str
    vehicles: int
    connectors: int
    kind: str  # "solve" or "replan"
    target_s: float
    target_gap: float | None = None


FULL = [
    # Issue 14's targets on the 2-core machine (issue 4's were 5 s and 30 s).
    Case("lp-1000", 1000, 1000, "solve", 3.0),
    Case("lp-3000", 3000, 3000, "solve", 15.0),
    Case("replan-300", 300, 300, "replan", 1.0),
    Case("scarce-300-on-150", 300, 150, "solve", 30.0, 0.01),
    # No target in the issue for a scarce re-plan: shown because re-plans there must not leave
    # buses short that the night's plan served (the re-plan keeps the old windows where they help).
    Case("replan-300-on-150", 300, 150, "replan", 30.0),
]
QUICK = [
    Case("lp-200", 200, 200, "solve", 5.0),
    Case("replan-100", 100, 100, "replan", 1.0),
    Case("scarce-60-on-30", 60, 30, "solve", 30.0, 0.01),
]
REPLAN_NOW_SLOT = 40  # 22:00 with the generator's 12:00 start: most buses are in


def run_case(case: Case, seed: int) -> dict:
    instance = generate_instance(vehicles=case.vehicles, connectors=case.connectors, seed=seed)
    row = {"case": case.name, "vehicles": case.vehicles, "connectors": case.connectors, "seed": seed}
    row["load_average_at_start"] = load_average()
    started, started_cpu = time.perf_counter(), time.process_time()
    plan = solve(instance, "lp")
    solve_s, cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    if case.kind == "replan":
        started, started_cpu = time.perf_counter(), time.process_time()
        result = replan(instance, plan, REPLAN_NOW_SLOT)
        row["full_solve_s"] = round(solve_s, 3)
        row["full_plan_shortfall_kwh"] = round(evaluate(instance, plan).totals.shortfall_kwh, 3)
        solve_s, cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
        instance, plan = result.instance, result.plan
        row["replan_vehicles"] = len(instance.vehicles)
    ours = evaluate(instance, plan)
    row.update(
        time_s=round(solve_s, 3),
        cpu_s=round(cpu_s, 3),
        target_s=case.target_s,
        notes=plan.solver.notes,
        status=plan.solver.status,
        variables=plan.solver.num_variables,
        constraints=plan.solver.num_constraints,
        gap=plan.solver.gap,
        target_gap=case.target_gap,
        violations=ours.violation_counts(),
        ours=_summary(ours.totals),
    )
    for name, baseline in (("uncontrolled", uncontrolled), ("edf", earliest_deadline_first)):
        evaluation = evaluate(instance, baseline(instance))
        row[name] = _summary(evaluation.totals) | {"violations": evaluation.violation_counts()}
    row["meets_time"] = solve_s <= case.target_s
    row["meets_gap"] = case.target_gap is None or (plan.solver.gap is not None and plan.solver.gap <= case.target_gap)
    return row


def _summary(totals) -> dict:
    return {
        "cost_mxn": round(totals.energy_cost_mxn + totals.demand_cost_mxn, 2),
        "energy_cost_mxn": round(totals.energy_cost_mxn, 2),
        "demand_cost_mxn": round(totals.demand_cost_mxn, 2),
        "peak_kw": round(totals.peak_kw, 1),
        "shortfall_kwh": round(totals.shortfall_kwh, 3),
        "objective_mxn": round(totals.objective_mxn, 2),
    }


def machine() -> dict:
    return machine_info("highspy", "numpy")


def saving(ours: dict, theirs: dict) -> str:
    """Cost and peak saved against a baseline, in % of the baseline's."""
    cost = 100 * (1 - ours["cost_mxn"] / theirs["cost_mxn"]) if theirs["cost_mxn"] else 0.0
    peak = 100 * (1 - ours["peak_kw"] / theirs["peak_kw"]) if theirs["peak_kw"] else 0.0
    return f"{cost:.0f} % / {peak:.0f} %"


def table(rows: list[dict]) -> str:
    header = (
        "| case | time s (target) | CPU s | gap (target) | ours cost MXN / peak kW / short kWh "
        "| uncontrolled cost / peak / short | EDF cost / peak / short | saved vs uncontrolled (cost / peak) "
        "| saved vs EDF | violations |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        gap = "-" if r["gap"] is None else f"{100 * r['gap']:.3f} %"
        target_gap = "" if r["target_gap"] is None else f" ({100 * r['target_gap']:.0f} %)"

        def cell(s):
            return f"{s['cost_mxn']:,.0f} / {s['peak_kw']:,.0f} / {s['shortfall_kwh']:,.1f}"

        lines.append(
            f"| {r['case']} | {r['time_s']:.2f} ({r['target_s']:.0f}) {'ok' if r['meets_time'] else 'MISSED'} "
            f"| {r.get('cpu_s', float('nan')):.2f} | {gap}{target_gap} | {cell(r['ours'])} "
            f"| {cell(r['uncontrolled'])} | {cell(r['edf'])} "
            f"| {saving(r['ours'], r['uncontrolled'])} | {saving(r['ours'], r['edf'])} | {r['violations'] or 'none'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small cases only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", help="comma-separated case names to run (from either set)")
    parser.add_argument("--label", default="", help="appended to the result files' names (e.g. loaded, quiet)")
    parser.add_argument(
        "--cold-sifting",
        action="store_true",
        help="every sifting round from scratch (as before 2026-12-06), to compare with the carried basis",
    )
    args = parser.parse_args()
    if args.cold_sifting:
        sifting.CARRY_MIN_SHARE = float("inf")
    cases = QUICK if args.quick else FULL
    if args.only:
        cases = [c for c in FULL + QUICK if c.name in args.only.split(",")]
    load_at_start = load_average()
    rows = []
    for case in cases:
        print(f"running {case.name} ...", flush=True)
        rows.append(run_case(case, args.seed))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    info = machine()
    info["load_average_at_start"] = load_at_start
    info["load_average_at_end"] = load_average()
    info["sifting"] = "every round from scratch" if args.cold_sifting else "later rounds from the last basis"
    print()
    print(table(rows))
    stamp = date.today().isoformat() + ("-quick" if args.quick else "") + (f"-{args.label}" if args.label else "")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"optimizer-{stamp}.json").write_text(json.dumps({"machine": info, "cases": rows}, indent=1) + "\n")
    load = tuple(round(x, 2) for x in info["load_average_at_start"])
    load_end = tuple(round(x, 2) for x in info["load_average_at_end"])
    md = [
        f"# Optimizer benchmark {stamp}",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['platform']}, python {info['python']}, "
        f"highspy {info['highspy']}, load average (1, 5, 15 min) at start {load}, at end {load_end}. "
        f"Sifting: {info['sifting']}. "
        "Times vary by up to 2x when other jobs share the 2 cores: compare the load averages.",
        "",
        "Cost = energy + demand charge (MXN) over the night; short = shortfall kWh. Uncontrolled ignores the "
        "site limit (its violations are listed in the JSON). Peak is the highest punta-slot load incl. base "
        "load (0 when nobody charges in punta). Time is `solve(method='lp')` (relaxation bound + "
        "connector assignment + re-solve) or, for replan cases, `replan()` on the remainder of an unchanged night "
        "at 22:00 (the JSON has the night plan's own shortfall, `full_plan_shortfall_kwh`). "
        "Load average (1 min) when each case started: "
        + ", ".join(f"{r['case']} {r['load_average_at_start'][0]:.2f}" for r in rows)
        + ".",
        "",
        table(rows),
        "",
    ]
    (out / f"optimizer-{stamp}.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
