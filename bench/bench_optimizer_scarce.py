"""Scarce and shared connectors (issue 14): our plans against an exact MILP and the LP bound.

    .venv/bin/python bench/bench_optimizer_scarce.py --only-scarce --exact-limit 300   # quiet: ~45 min
    make bench-scarce-exact   # the exact MILP by HiGHS and SCIP at once (SCIP in var/scip-venv), 480 s a night
    .venv/bin/python bench/bench_optimizer_scarce.py --only-scarce --nights "12 on 3" --exact-limit 60
    .venv/bin/python bench/bench_optimizer_scarce.py --only-shared --label shared   # 100 on 50, 300 on 150
    .venv/bin/python bench/bench_optimizer_scarce.py --only-shared --shared-seeds 1 2 3 --label quiet  # ~40 s

Measured side by side in one run, on seeded ``generate_instance`` nights:

- scarce nights (2-5 buses per connector, <= 40 buses): ``solve(method="auto")`` (the heuristic,
  then the large-neighbourhood search with the nightly work limits), wall and CPU seconds; the same
  with the re-plan's limits (``REPLAN_SEARCH``, skip with ``--no-replan-search``); against the exact
  MILP (default: ``exact_by_charger``, per charger with symmetry breaking, mip_rel_gap 1e-6, started
  from ``auto``'s plan) given ``--exact-limit`` seconds: its best plan, its proven lower bound,
  whether it proved optimality and its own gap (``--highs-log DIR`` keeps HiGHS's log per night);
  ``--exact-solver both`` (the default when ``var/scip-venv`` exists) runs HiGHS here and SCIP in its own venv
  on the same model at once, each given the limit: the best plan and the larger proven bound count;
  money apart from wear: ``auto``'s energy + demand + penalty against the relaxation with the wear weights at 0;
  with ``--repeat-auto N`` ``auto`` solves each night N more times and the table says whether the
  plans were the same (``auto`` stops on work limits, so they must be, whatever the load);
- shared nights (2 buses per connector, 100 on 50 and 300 on 150; generator seed 1, or each of
  ``--shared-seeds``): ``solve(method="lp")`` against the LP relaxation bound, wall and CPU seconds.

Every plan is checked by the evaluator (violations listed). Writes
bench/results/optimizer-scarce-<date>[-label].json and .md with the machine and its load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exact_by_charger import SCIP_PYTHON, solve_by_charger  # noqa: E402

from charging.optimizer import REPLAN_SEARCH, evaluate, generate_instance, solve  # noqa: E402
from charging.optimizer.instance import WearWeights  # noqa: E402
from charging.optimizer.quantities import compatible_connectors, vehicle_arrays  # noqa: E402
from charging.optimizer.solve import _milp_plan, _plan_assignment  # noqa: E402

SCARCE = [
    # (name, vehicles, connectors, seed, all_back_at)
    ("4 on 2", 4, 2, 1, None),  # small enough to prove (HiGHS and SCIP alike)
    ("6 on 2", 6, 2, 1, None),
    ("8 on 2", 8, 2, 1, None),
    ("10 on 2", 10, 2, 2, None),
    ("12 on 3", 12, 3, 3, None),
    ("20 on 4", 20, 4, 5, None),
    ("20 on 4, all back 17:00", 20, 4, 4, "17:00"),
    ("40 on 10", 40, 10, 6, None),
]
SHARED = [("100 on 50", 100, 50, 1), ("300 on 150", 300, 150, 1)]


def plan_digest(plan) -> str:
    """A short hash of a plan's windows and power profile (rounded to 1e-6 kW), to compare runs."""
    text = json.dumps(
        [[vp.connector_id, vp.plug_in_slot, vp.unplug_slot, [round(p, 6) for p in vp.power_kw]] for vp in plan.vehicles]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scarce_row(
    name,
    vehicles,
    connectors,
    seed,
    all_back_at,
    exact_limit_s: float,
    formulation: str = "connector",
    repeat_auto: int = 0,
    replan_search: bool = True,
    log_dir: Path | None = None,
    exact_solvers: tuple[str, ...] = ("highs",),
    scip_python: Path | None = None,
) -> dict:
    instance = generate_instance(vehicles=vehicles, connectors=connectors, seed=seed, all_back_at=all_back_at)
    row: dict = {"night": name, "vehicles": vehicles, "connectors": connectors, "seed": seed}
    row["load_average_at_start"] = load_average()
    started = time.perf_counter()
    heuristic = solve(instance, "lp")
    row["heuristic_s"] = round(time.perf_counter() - started, 2)
    started, cpu = time.perf_counter(), time.process_time()
    ours = solve(instance, "auto")
    row["ours_s"] = round(time.perf_counter() - started, 2)
    row["ours_cpu_s"] = round(time.process_time() - cpu, 2)
    row["ours_plan_digest"] = plan_digest(ours)
    # Money (energy + demand + shortfall penalty) apart from the wear tie-breakers: the relaxation of the
    # same night with the wear weights at 0 bounds every plan's money from below.
    row["ours_wear_mxn"] = round(ours.totals.wear_cost_mxn, 4)
    row["ours_money_mxn"] = round(ours.totals.objective_mxn - ours.totals.wear_cost_mxn, 4)
    started, cpu = time.perf_counter(), time.process_time()
    no_wear = replace(instance, wear=WearWeights(high_soc_mxn_per_kwh_h=0.0, high_c_rate_mxn_per_kwh=0.0))
    _, money_bound, _, _ = solve_by_charger(no_wear, time_limit_s=exact_limit_s, relax_only=True)
    row["money_bound_s"] = round(time.perf_counter() - started, 2)
    row["money_bound_cpu_s"] = round(time.process_time() - cpu, 2)
    row["money_bound_mxn"] = round(money_bound, 4) if money_bound is not None else None
    row["ours_money_proven"] = money_bound is not None and row["ours_money_mxn"] <= money_bound + 1e-6 * abs(
        money_bound
    )
    if replan_search:
        # The re-plan's smaller work limits (``solve.REPLAN_SEARCH``) on the same night: a re-plan at the
        # start of the night is this solve, so its quality cost shows here.
        started, cpu = time.perf_counter(), time.process_time()
        quick = solve(instance, "auto", search=REPLAN_SEARCH)
        row["replan_search_s"] = round(time.perf_counter() - started, 2)
        row["replan_search_cpu_s"] = round(time.process_time() - cpu, 2)
        row["replan_search_objective_mxn"] = round(quick.totals.objective_mxn, 2)
        row["replan_search_shortfall_kwh"] = round(quick.totals.shortfall_kwh, 2)
        row["replan_search_violations"] = evaluate(instance, quick).violation_counts()
    for _ in range(repeat_auto):
        # ``auto`` stops on work limits, not the clock: a second solve (under another load) must
        # give the same plan.
        again = solve(instance, "auto")
        row.setdefault("ours_repeat_digests", []).append(plan_digest(again))
        row.setdefault("ours_repeat_s", []).append(round(again.solver.solve_time_s or 0.0, 2))
        row.setdefault("ours_repeat_load", []).append(load_average())
    va, compatible = vehicle_arrays(instance), compatible_connectors(instance)
    started = time.perf_counter()
    row["formulation"] = formulation
    if formulation == "charger":
        # Started from our best plan (auto's), so the exact solve only has to prove or improve it.
        exact, exact_bound, proven, runs = exact_portfolio(
            instance, ours, exact_limit_s, exact_solvers, log_dir, name, scip_python
        )
        row["exact_runs"] = runs
        start_plan = ours
    else:
        exact, exact_bound = _milp_plan(
            instance, va, compatible, exact_limit_s, start=_plan_assignment(instance, heuristic), mip_rel_gap=1e-6
        )
        proven = exact is not None and exact.solver.optimal
        start_plan = heuristic
    row["exact_s"] = round(time.perf_counter() - started, 2)
    if exact is None or exact.totals.objective_mxn > start_plan.totals.objective_mxn:
        exact, proven = start_plan, proven and exact is not None  # what the exact MILP was started from
    bound = max(b for b in (exact_bound, ours.solver.lp_bound_mxn) if b is not None)
    for label, plan in (("heuristic", heuristic), ("ours", ours), ("exact", exact)):
        row[f"{label}_objective_mxn"] = round(plan.totals.objective_mxn, 2)
        row[f"{label}_shortfall_kwh"] = round(plan.totals.shortfall_kwh, 2)
        row[f"{label}_violations"] = evaluate(instance, plan).violation_counts()
    row["exact_wear_mxn"] = round(exact.totals.wear_cost_mxn, 4)
    row["exact_proven"] = bool(proven)
    row["exact_bound_mxn"] = round(bound, 2)
    row["ours_status"] = ours.solver.status
    row["ours_vs_exact_pct"] = round(100 * (ours.totals.objective_mxn / exact.totals.objective_mxn - 1), 3)
    row["ours_shortfall_minus_exact_kwh"] = round(ours.totals.shortfall_kwh - exact.totals.shortfall_kwh, 2)
    row["ours_vs_bound_pct"] = round(100 * (ours.totals.objective_mxn / bound - 1), 3)
    row["exact_gap_pct"] = round(100 * (exact.totals.objective_mxn / bound - 1), 3)
    if "replan_search_objective_mxn" in row:
        row["replan_search_vs_bound_pct"] = round(100 * (row["replan_search_objective_mxn"] / bound - 1), 3)
        row["replan_search_vs_ours_pct"] = round(
            100 * (row["replan_search_objective_mxn"] / row["ours_objective_mxn"] - 1), 3
        )
    # The target is against the exact optimum. Proven: against it. Unproven: the optimum lies between the
    # bound and the exact MILP's best plan, so ours within 1 % of the bound (and within 1 kWh of no shortfall)
    # shows the target without the proof.
    row["target_met"] = (
        row["exact_proven"] and row["ours_shortfall_minus_exact_kwh"] <= 1.0 and row["ours_vs_exact_pct"] <= 1.0
    )
    row["target_met_vs_bound"] = row["ours_vs_bound_pct"] <= 1.0 and row["ours_shortfall_kwh"] <= 1.0
    return row


def exact_portfolio(
    instance,
    start,
    limit_s: float,
    solvers: tuple[str, ...],
    log_dir: Path | None,
    name: str,
    scip_python: Path | None = None,
):
    """The per-charger exact MILP by each solver at once (HiGHS here, SCIP in its venv), each given ``limit_s``:
    (best plan or None, best proven bound, proven, per-solver figures).

    Each solver's bound is a proof of its own, so the largest holds; the best plan is the cheapest (checked
    by the evaluator by the caller). Proven: a solver proved its plan optimal (gap <= 1e-6), or the best
    plan is within 1e-6 of the best bound.
    """
    runs: dict[str, dict] = {}
    results: dict[str, tuple] = {}

    launched = threading.Event()

    def run(solver: str) -> None:
        info: dict = {}
        options, log = None, None
        if log_dir is not None:
            log = log_dir / f"{name.replace(' ', '').replace(',', '')}-{solver}.log"
            if solver == "highs":
                options, log = {"output_flag": True, "log_to_console": False, "log_file": str(log)}, None
        try:
            plan, bound, proven, status = solve_by_charger(
                instance,
                time_limit_s=limit_s,
                start=start,
                highs_options=options,
                solver=solver,
                scip_log=log,
                scip_python=scip_python,
                solver_info=info,
                on_launch=launched.set,
            )
        except Exception as error:  # noqa: BLE001 (one solver failing leaves the other's result)
            runs[solver] = {"status": f"failed: {error!r}", "proven": False}
            return
        finally:
            launched.set()  # HiGHS's own run, or SCIP failed before it started
        results[solver] = (plan, bound, proven)
        runs[solver] = {
            **info,
            "status": status,
            "proven": bool(proven),
            "objective_mxn": round(plan.totals.objective_mxn, 4) if plan is not None else None,
            "bound_mxn": round(bound, 4) if bound is not None else None,
        }

    # SCIP (a subprocess) first: HiGHS starts here once SCIP's model is written (``on_launch``), so the two
    # solve at once without both building models in this process together.
    others = [solver for solver in solvers if solver != "highs"]
    threads = [threading.Thread(target=run, args=(solver,)) for solver in others]
    for thread in threads:
        thread.start()
        launched.wait()
        launched.clear()
    if "highs" in solvers:
        run("highs")
    for thread in threads:
        thread.join()
    plans = [r[0] for r in results.values() if r[0] is not None]
    best = min(plans, key=lambda plan: plan.totals.objective_mxn) if plans else None
    bounds = [r[1] for r in results.values() if r[1] is not None]
    bound = max(bounds) if bounds else None
    proven = any(r[2] for r in results.values()) or (
        best is not None
        and bound is not None
        and best.totals.objective_mxn - bound <= 1e-6 * abs(best.totals.objective_mxn)
    )
    return best, bound, proven, runs


def shared_row(name, vehicles, connectors, seed) -> dict:
    instance = generate_instance(vehicles=vehicles, connectors=connectors, seed=seed)
    row: dict = {"night": name, "vehicles": vehicles, "connectors": connectors, "seed": seed}
    row["load_average_at_start"] = load_average()
    started, started_cpu = time.perf_counter(), time.process_time()
    plan = solve(instance, "lp")
    row["time_s"] = round(time.perf_counter() - started, 2)
    row["cpu_s"] = round(time.process_time() - started_cpu, 2)
    row["objective_mxn"] = round(plan.totals.objective_mxn, 2)
    row["lp_bound_mxn"] = round(plan.solver.lp_bound_mxn or 0.0, 2)
    row["gap_pct"] = round(100 * (plan.solver.gap or 0.0), 3)
    row["shortfall_kwh"] = round(plan.totals.shortfall_kwh, 2)
    row["wear_cost_mxn"] = round(plan.totals.wear_cost_mxn, 2)
    row["plan_digest"] = plan_digest(plan)
    row["re_placing"] = next((n for n in plan.solver.notes if "re-placed between chargers" in n), None)
    row["status"] = plan.solver.status
    row["violations"] = evaluate(instance, plan).violation_counts()
    row["target_met"] = row["gap_pct"] <= 0.1 and (vehicles < 300 or row["time_s"] <= 5.0)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exact-limit", type=float, default=60.0, help="seconds for the exact MILP per night")
    parser.add_argument("--only-scarce", action="store_true")
    parser.add_argument("--only-shared", action="store_true", help="the shared nights only (~1 minute quiet)")
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--formulation",
        choices=["connector", "charger"],
        default="charger",
        help="exact MILP: milp.py's per connector, or exact_by_charger's per charger with symmetry breaking",
    )
    parser.add_argument("--nights", nargs="*", help="only these scarce nights (names as in the table)")
    parser.add_argument(
        "--repeat-auto", type=int, default=0, help="solve each scarce night with auto this many times more"
    )
    parser.add_argument(
        "--no-replan-search", action="store_true", help="skip auto with the re-plan's work limits (REPLAN_SEARCH)"
    )
    parser.add_argument("--shared-seeds", type=int, nargs="*", help="generator seeds of the shared nights (default: 1)")
    parser.add_argument(
        "--highs-log", type=Path, help="directory for the exact MILP's HiGHS (and SCIP) logs (one per night)"
    )
    parser.add_argument("--scip-python", type=Path, default=SCIP_PYTHON, help="the SCIP venv's python")
    parser.add_argument(
        "--exact-solver",
        choices=["highs", "scip", "both"],
        default="both" if SCIP_PYTHON.exists() else "highs",
        help="per-charger exact MILP by HiGHS, by SCIP (its venv: var/scip-venv, made by make bench-scarce-exact) "
        "or both at once (best plan, largest bound); default both when the SCIP venv exists",
    )
    args = parser.parse_args()
    scarce = []
    for spec in SCARCE:
        if args.only_shared or (args.nights and spec[0] not in args.nights):
            continue
        row = scarce_row(
            *spec,
            exact_limit_s=args.exact_limit,
            formulation=args.formulation,
            repeat_auto=args.repeat_auto,
            replan_search=not args.no_replan_search,
            log_dir=args.highs_log,
            exact_solvers=("highs", "scip") if args.exact_solver == "both" else (args.exact_solver,),
            scip_python=args.scip_python,
        )
        print(json.dumps(row), flush=True)
        scarce.append(row)
    shared = []
    if not args.only_scarce:
        for name, vehicles, connectors, seed in SHARED:
            for each in args.shared_seeds or [seed]:
                row = shared_row(name, vehicles, connectors, each)
                print(json.dumps(row), flush=True)
                shared.append(row)
    result = {
        "machine": machine_info(),
        "load_average_at_end": load_average(),
        "exact_limit_s": args.exact_limit,
        "formulation": args.formulation,
        "exact_solver": args.exact_solver,
        "scarce": scarce,
        "shared": shared,
    }
    stem = f"optimizer-scarce-{date.today().isoformat()}{'-' + args.label if args.label else ''}"
    out = ROOT / "bench" / "results"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        "# Optimizer on scarce and shared connectors (issue 14)",
        "",
        f"Machine: {json.dumps(result['machine'])}; load average at end {result['load_average_at_end']} "
        "(shared 2-core machine: times are inflated, re-run quietly for speed figures).",
        "",
        f"## Scarce nights: ours (auto) vs the exact MILP ({result['exact_limit_s']:.0f} s, "
        + (
            f"per charger with symmetry breaking, started from ours, {result.get('exact_solver', 'highs')}"
            if result.get("formulation") == "charger"
            else "per connector, started from the heuristic"
        )
        + ") vs the heuristic (lp)",
        "",
        "| night | heuristic MXN / kWh short | ours MXN / kWh short (wall s, CPU s) | exact MXN / kWh short (s) |"
        " exact proven | bound MXN | exact vs bound | ours vs exact | ours vs bound | target (<= 1 kWh, <= 1 %) |"
        " re-plan search MXN / kWh short (wall s, CPU s) | re-plan vs ours | load | same plan again |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["scarce"]:
        lines.append(
            f"| {r['night']} | {r['heuristic_objective_mxn']:,.2f} / {r['heuristic_shortfall_kwh']:.2f} "
            f"| {r['ours_objective_mxn']:,.2f} / {r['ours_shortfall_kwh']:.2f} ({r['ours_s']}, {r.get('ours_cpu_s')}) "
            f"| {r['exact_objective_mxn']:,.2f} / {r['exact_shortfall_kwh']:.2f} ({r['exact_s']}) "
            f"| {'yes' if r['exact_proven'] else 'no'} | {r['exact_bound_mxn']:,.2f} "
            f"| {r.get('exact_gap_pct', float('nan')):+.3f} % "
            f"| {r['ours_vs_exact_pct']:+.3f} % | {r['ours_vs_bound_pct']:+.3f} % "
            f"| {_verdict(r)} | {_replan(r)} | {r['load_average_at_start']} | {_repeat(r)} |"
        )
    if any("money_bound_mxn" in r for r in result["scarce"]):
        lines += [
            "",
            "## Money apart from wear: ours' energy + demand + shortfall penalty against the relaxation of the same "
            "night with the wear weights at 0 (a bound on every plan's money)",
            "",
            "| night | ours money MXN | ours wear MXN | money bound MXN | ours money vs bound | money proven minimal "
            "| bound wall s (CPU s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in result["scarce"]:
            if r.get("money_bound_mxn") is None:
                continue
            lines.append(
                f"| {r['night']} | {r['ours_money_mxn']:,.4f} | {r['ours_wear_mxn']:,.4f} "
                f"| {r['money_bound_mxn']:,.4f} | {100 * (r['ours_money_mxn'] / r['money_bound_mxn'] - 1):+.5f} % "
                f"| {'yes' if r['ours_money_proven'] else 'no'} | {r['money_bound_s']} ({r['money_bound_cpu_s']}) |"
            )
    runs = [(r["night"], solver, run) for r in result["scarce"] for solver, run in r.get("exact_runs", {}).items()]
    if runs:
        lines += [
            "",
            f"## The exact MILP by solver (each given {result['exact_limit_s']:.0f} s, at once, started from ours; "
            "CPU s: HiGHS's solve in this process, SCIP's own process)",
            "",
            "| night | solver | status | best MXN | proven bound MXN | best vs bound | proven | nodes | wall s "
            "| CPU s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for night, solver, run in runs:
            gap = (
                f"{100 * (run['objective_mxn'] / run['bound_mxn'] - 1):+.4f} %"
                if run.get("objective_mxn") is not None and run.get("bound_mxn")
                else "-"
            )
            lines.append(
                f"| {night} | {run.get('solver', solver)} | {run['status']} | {_num(run.get('objective_mxn'))} "
                f"| {_num(run.get('bound_mxn'))} | {gap} | {'yes' if run['proven'] else 'no'} | {run.get('nodes')} "
                f"| {run.get('wall_s')} | {run.get('solver_cpu_s', run.get('cpu_s'))} |"
            )
    if result["shared"]:
        lines += [
            "",
            "## Shared nights: ours (lp) vs the LP relaxation bound",
            "",
            "| night | seed | objective MXN | LP bound MXN | gap | kWh short | time s | CPU s | status | target "
            "| load |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in result["shared"]:
            lines.append(
                f"| {r['night']} | {r.get('seed', 1)} | {r['objective_mxn']:,.2f} | {r['lp_bound_mxn']:,.2f} "
                f"| {r['gap_pct']:.3f} % "
                f"| {r['shortfall_kwh']:.2f} | {r['time_s']} | {r.get('cpu_s', '-')} | {r['status']} "
                f"| {'met' if r['target_met'] else 'NOT met'} | {r['load_average_at_start']} |"
            )
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _replan(row: dict) -> str:
    if "replan_search_objective_mxn" not in row:
        return "not run | -"
    return (
        f"{row['replan_search_objective_mxn']:,.2f} / {row['replan_search_shortfall_kwh']:.2f} "
        f"({row['replan_search_s']}, {row['replan_search_cpu_s']}) | {row['replan_search_vs_ours_pct']:+.3f} %"
    )


def _repeat(row: dict) -> str:
    again = row.get("ours_repeat_digests")
    if not again:
        return "not run"
    same = sum(d == row["ours_plan_digest"] for d in again)
    return f"{same} of {len(again)} ({', '.join(str(s) for s in row['ours_repeat_s'])} s)"


def _verdict(row: dict) -> str:
    if row["target_met"]:
        return "met"
    if row.get("target_met_vs_bound"):
        return "met (within 1 % of the bound, so of the optimum)"
    if not row["exact_proven"]:
        return "unknown: exact not proven in time"
    return "NOT met"


if __name__ == "__main__":
    main()
