"""The scarce-night benchmark's exact MILP (bench/exact_by_charger.py, issue 14): on a night small enough to
prove, the per-charger model proves the same optimum as the product's per-connector MILP, and SCIP (its own
venv, bench/peers/scip_exact.py) proves the same optimum as HiGHS on that model, its plan rebuilt here from
its column values and checked by the evaluator."""

from __future__ import annotations

import pytest

from bench.exact_by_charger import SCIP_PYTHON, solve_by_charger
from charging.optimizer import evaluate, generate_instance, solve
from charging.optimizer.quantities import compatible_connectors, vehicle_arrays
from charging.optimizer.solve import _milp_plan, _plan_assignment

LIMIT_S = 120.0  # each proof takes a few CPU seconds; the limit only keeps a broken run bounded


@pytest.fixture(scope="module")
def night():
    instance = generate_instance(vehicles=4, connectors=2, seed=1)
    return instance, solve(instance, "lp")


@pytest.fixture(scope="module")
def highs_proof(night):
    instance, start = night
    return solve_by_charger(instance, time_limit_s=LIMIT_S, start=start)


def test_per_charger_model_proves_the_per_connector_milps_optimum(night, highs_proof) -> None:
    instance, start = night
    plan, bound, proven, _ = highs_proof
    assert proven and plan is not None
    per_connector, per_connector_bound = _milp_plan(
        instance,
        vehicle_arrays(instance),
        compatible_connectors(instance),
        LIMIT_S,
        start=_plan_assignment(instance, start),
        mip_rel_gap=1e-6,
    )
    assert per_connector is not None and per_connector.solver.optimal
    assert plan.totals.objective_mxn == pytest.approx(per_connector.totals.objective_mxn, rel=1e-5)
    assert bound == pytest.approx(plan.totals.objective_mxn, rel=1e-5)
    assert evaluate(instance, plan).violation_counts() == {}
    # The proof is worth something here: the heuristic's plan is not optimal on this night.
    assert start.totals.objective_mxn > plan.totals.objective_mxn * (1 + 1e-4)


@pytest.mark.skipif(not SCIP_PYTHON.exists(), reason="no SCIP venv (make bench-scarce-exact creates it)")
def test_scip_proves_the_same_optimum_as_highs(night, highs_proof) -> None:
    instance, start = night
    info: dict = {}
    plan, bound, proven, status = solve_by_charger(
        instance, time_limit_s=LIMIT_S, start=start, solver="scip", solver_info=info
    )
    assert proven, status
    assert info["solver"].startswith("SCIP") and info["start_accepted"] is True
    assert plan is not None and evaluate(instance, plan).violation_counts() == {}
    # SCIP's objective is its own; the plan's is the evaluator's, from the column values SCIP returned.
    assert plan.totals.objective_mxn == pytest.approx(highs_proof[0].totals.objective_mxn, rel=1e-5)
    assert bound == pytest.approx(highs_proof[1], rel=1e-5)
