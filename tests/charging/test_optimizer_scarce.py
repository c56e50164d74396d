"""Scarce connectors (issue 14): honest status, the MILP never worse than the heuristic.

The nights are made by a seeded generator here: the depot night of ``generate_instance_dict``
with fewer connectors than buses, and optionally every bus back at the same time.
"""

from __future__ import annotations

import importlib
import itertools
import time
from datetime import timedelta

import pytest

from charging.optimizer import NIGHTLY_SEARCH, REPLAN_SEARCH, Instance, evaluate, generate_instance, solve
from charging.optimizer.reassign import ReassignResult
from charging.optimizer.solve import PROVEN_GAP


def scarce_night(vehicles: int, connectors: int, seed: int = 0, *, all_back_at: str | None = None) -> Instance:
    """``vehicles`` buses on ``connectors`` connectors; ``all_back_at`` ("HH:MM") brings every bus
    back at that time of the first evening."""
    return generate_instance(vehicles=vehicles, connectors=connectors, seed=seed, all_back_at=all_back_at)


SCARCE_NIGHTS = {
    "8 on 2": dict(vehicles=8, connectors=2, seed=1),
    "10 on 2": dict(vehicles=10, connectors=2, seed=2),
    "12 on 3": dict(vehicles=12, connectors=3, seed=3),
    "20 on 4 all back at 17:00": dict(vehicles=20, connectors=4, seed=4, all_back_at="17:00"),
}


def assert_honest(plan) -> None:
    solver = plan.solver
    assert solver.bound_mxn is not None and solver.gap is not None
    assert plan.totals.objective_mxn >= solver.bound_mxn - 1e-6 * max(1.0, abs(solver.bound_mxn))
    if solver.optimal:
        assert solver.status == "Optimal" and solver.gap <= PROVEN_GAP
    else:
        assert solver.gap > PROVEN_GAP
        assert solver.status.startswith("Feasible, ") and "% above the bound" in solver.status
        assert f"{solver.bound_mxn:,.2f} MXN" in solver.status


@pytest.mark.parametrize("name", SCARCE_NIGHTS)
def test_scarce_nights_say_optimal_only_when_proven(name):
    instance = scarce_night(**SCARCE_NIGHTS[name])
    plan = solve(instance, "lp")
    assert evaluate(instance, plan).ok
    assert_honest(plan)


def test_the_heuristic_on_a_scarce_night_does_not_claim_an_optimum():
    # 10 buses on 2 connectors cannot all be served: the heuristic's plan sits above the bound.
    plan = solve(scarce_night(**SCARCE_NIGHTS["10 on 2"]), "lp")
    assert not plan.solver.optimal and "Optimal" not in plan.solver.status


def test_milp_on_a_small_scarce_night_serves_what_an_assignment_can():
    instance = scarce_night(**SCARCE_NIGHTS["8 on 2"])
    heuristic = solve(instance, "lp")
    plan = solve(instance, "auto", time_limit_s=4)
    assert evaluate(instance, plan).ok
    assert_honest(plan)
    assert plan.totals.objective_mxn <= heuristic.totals.objective_mxn + 1e-6
    assert plan.totals.shortfall_kwh <= heuristic.totals.shortfall_kwh + 1e-6


def test_milp_with_a_short_time_limit_returns_at_least_the_heuristic():
    instance = scarce_night(**SCARCE_NIGHTS["20 on 4 all back at 17:00"])
    heuristic = solve(instance, "lp")
    plan = solve(instance, "milp", time_limit_s=1.0)
    assert evaluate(instance, plan).ok
    assert plan.totals.objective_mxn <= heuristic.totals.objective_mxn + 1e-6 * heuristic.totals.objective_mxn
    assert plan.totals.shortfall_kwh <= heuristic.totals.shortfall_kwh + 1e-6
    assert_honest(plan)


def test_scarce_night_generator_is_seeded():
    a = scarce_night(**SCARCE_NIGHTS["20 on 4 all back at 17:00"])
    b = scarce_night(**SCARCE_NIGHTS["20 on 4 all back at 17:00"])
    assert a == b
    assert {v.arrival_slot for v in a.vehicles} == {int(timedelta(hours=5) / timedelta(minutes=15))}


def windows_and_power(plan) -> list[tuple]:
    return [(vp.connector_id, vp.plug_in_slot, vp.unplug_slot, vp.power_kw) for vp in plan.vehicles]


def test_auto_gives_the_same_plan_however_slow_the_machine(monkeypatch):
    # Without a time limit ``auto`` stops its neighbourhood search on work limits (passes, HiGHS
    # nodes), not on the clock: seen from inside, a loaded machine is a clock that races, and it
    # must not change the plan (it left 1-33 kWh short on 8 on 2 across runs when it did).
    instance = generate_instance(vehicles=5, connectors=2, seed=7, slot_minutes=60)
    quiet = solve(instance, "auto")
    assert any(note.startswith("neighbourhood search") for note in quiet.solver.notes)  # it searched, and gained
    racing_clock = itertools.count(0.0, 30.0)  # 30 s pass between any two readings
    monkeypatch.setattr(time, "perf_counter", lambda: next(racing_clock))
    loaded = solve(instance, "auto")
    monkeypatch.undo()
    assert windows_and_power(loaded) == windows_and_power(quiet)
    assert loaded.totals.objective_mxn == quiet.totals.objective_mxn
    assert evaluate(instance, loaded).ok


# Quality bar on scarce nights (issue 14: within 1 kWh and 1 % of the exact optimum). Checked against
# the relaxation's bound, which is below the optimum, so the bar is at least as hard as the issue's;
# 0.5 % rather than 1 % because the old heuristic (``lp``) sits at 0.98 % on "20 on 4 all back at
# 17:00" and the test must fail on it. The evaluator, not the solver, says the plan is feasible.
QUALITY_MAX_ABOVE_BOUND = 0.005
# The module, not the function ``charging.optimizer.solve`` the package exports under that name.
solve_module = importlib.import_module("charging.optimizer.solve")


def _no_moves(instance, va, compatible, assignment, power, relaxed_power, resolve, budget_s=None):
    return ReassignResult(assignment, power, 0, 0, 0, 0.0, 0.0)


QUALITY_MAX_SHORT_KWH = 1.0


def meets_quality_bar(instance: Instance, plan) -> bool:
    above = plan.totals.objective_mxn / plan.solver.lp_bound_mxn - 1
    return (
        evaluate(instance, plan).ok
        and plan.totals.shortfall_kwh <= QUALITY_MAX_SHORT_KWH
        and above <= QUALITY_MAX_ABOVE_BOUND
    )


@pytest.mark.parametrize(
    ("name", "search"),
    [
        # In CI: the re-plan's cheaper search (10 s of CPU; the nightly one takes 19 s here).
        ("10 on 2", REPLAN_SEARCH),
        pytest.param("10 on 2", NIGHTLY_SEARCH, marks=pytest.mark.slow),
        pytest.param("8 on 2", NIGHTLY_SEARCH, marks=pytest.mark.slow),
        # Fails with the old pairs-of-buses neighbourhoods (1.6 % above the bound).
        pytest.param("12 on 3", NIGHTLY_SEARCH, marks=pytest.mark.slow),
        pytest.param("20 on 4 all back at 17:00", NIGHTLY_SEARCH, marks=pytest.mark.slow),
    ],
)
def test_auto_on_a_scarce_night_is_within_the_quality_bar_where_the_heuristic_is_not(name, search, monkeypatch):
    instance = scarce_night(**SCARCE_NIGHTS[name])
    # The bar has teeth: the heuristic without the re-placing of buses between chargers fails it
    # (with it, since session 7, ``lp`` itself is 0.33 % above the bound on "20 on 4 all back at 17:00").
    with monkeypatch.context() as patched:
        patched.setattr(solve_module, "reassign_chargers", _no_moves)
        assert not meets_quality_bar(instance, solve(instance, "lp"))
    assert meets_quality_bar(instance, solve(instance, "auto", search=search))


def test_replan_gives_the_search_the_replan_limits(monkeypatch):
    from charging.optimizer import replan

    # The module, not the package's ``replan`` function of the same name.
    replan_module = importlib.import_module("charging.optimizer.replan")

    instance = generate_instance(vehicles=5, connectors=2, seed=7, slot_minutes=60)
    plan = solve(instance, "lp")
    limits = []
    real_solve = replan_module.solve

    def spy(*args, **kwargs):
        limits.append(kwargs.get("search", NIGHTLY_SEARCH))
        return real_solve(*args, **kwargs)

    monkeypatch.setattr(replan_module, "solve", spy)
    replan(instance, plan, now_slot=8, method="auto")
    assert limits == [REPLAN_SEARCH]


def test_auto_does_not_search_a_night_the_heuristic_already_plans_within_the_bar(monkeypatch):
    # 40 buses on 10 connectors: the heuristic's plan is 0.47 % above the bound, so within 0.5 % of the optimum;
    # the neighbourhood search's sub-MILPs grow with the night, and it had not finished after 7 minutes.
    solve_module = importlib.import_module("charging.optimizer.solve")

    instance = generate_instance(vehicles=40, connectors=10, seed=6)
    heuristic = solve(instance, "lp")
    assert heuristic.totals.objective_mxn / heuristic.solver.lp_bound_mxn - 1 <= solve_module.SEARCH_WORTH_GAP
    sub_milps = []
    real_milp_plan = solve_module._milp_plan
    monkeypatch.setattr(solve_module, "_milp_plan", lambda *a, **k: sub_milps.append(1) or real_milp_plan(*a, **k))
    plan = solve(instance, "auto")
    assert sub_milps == []  # no search
    assert plan.totals.objective_mxn == heuristic.totals.objective_mxn
    assert meets_quality_bar(instance, plan)
