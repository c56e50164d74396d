"""SCIP on the scarce-night benchmark's exact MILP (issue 14): a second solver, same model.

Runs in the SCIP venv, not the project's (``make bench-scip-venv`` creates it from
``bench/peers/scip-requirements.txt``; PySCIPOpt's wheel bundles SCIP)::

    var/scip-venv/bin/python bench/peers/scip_exact.py --mps night.mps --start night.sol --time-limit 300 \
        --out night.json

``bench/exact_by_charger.py`` writes the model (HiGHS's MPS writer: columns c0, c1, ..., the objective offset
in the RHS of the objective row) and a full start (SCIP's solution format, from ``auto``'s plan); this script
reads both, solves, and writes JSON: SCIP's status, best objective, proven dual bound, nodes, wall and CPU
seconds, and the best solution's value of every column in column order (``values``) so the project side
rebuilds the plan and checks it with its own evaluator. Standard library and PySCIPOpt only.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from importlib.metadata import version

from pyscipopt import Model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mps", required=True)
    parser.add_argument("--start", help="a full start in SCIP's solution format")
    parser.add_argument("--time-limit", type=float, required=True)
    parser.add_argument("--gap", type=float, default=1e-6, help="relative gap to stop at (SCIP's limits/gap)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", help="SCIP's log file")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    started, cpu = time.perf_counter(), _cpu()
    model = Model()
    model.hideOutput(True)
    if args.log:
        model.setLogfile(args.log)
    model.readProblem(args.mps)
    model.setParam("limits/time", args.time_limit)
    model.setParam("limits/gap", args.gap)
    model.setParam("display/freq", 1000)
    start_accepted = None
    if args.start:
        solution = model.readSolFile(args.start)
        start_accepted = bool(model.addSol(solution, free=True))
    model.optimize()
    variables = model.getVars()
    order = sorted(range(len(variables)), key=lambda i: int(variables[i].name[1:]))  # c0, c1, ...
    best = model.getBestSol() if model.getNSols() else None
    result = {
        "solver": f"SCIP {model.version()} (PySCIPOpt {version('PySCIPOpt')})",
        "status": model.getStatus(),
        "optimal": model.getStatus() in ("optimal", "gaplimit"),
        "gap_limit": args.gap,
        "objective": model.getPrimalbound() if best is not None else None,
        "dual_bound": model.getDualbound(),
        "gap": model.getGap(),
        "nodes": model.getNNodes(),
        "start_accepted": start_accepted,
        "wall_s": round(time.perf_counter() - started, 2),
        "cpu_s": round(_cpu() - cpu, 2),
        "values": [model.getSolVal(best, variables[i]) for i in order] if best is not None else None,
    }
    with open(args.out, "w") as out:
        json.dump(result, out)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
