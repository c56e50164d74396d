"""Shared nights (issue 14): re-placing buses between chargers (``reassign.py``) never makes the
plan worse, and finds a cheaper one where the first windows paired buses badly.

The nights come from the seeded generator: 12 buses on 6 connectors (3 chargers of two), about two
buses per connector like the benchmark's 100 on 50. Each plan is priced by the evaluator, not by
the search's own small re-solves; "without" is the same ``solve`` with the search switched off.
"""

from __future__ import annotations

import importlib

import pytest

from charging.optimizer import evaluate, generate_instance, solve
from charging.optimizer.reassign import ReassignResult

# The module, not the function ``charging.optimizer.solve`` the package exports under that name.
solve_module = importlib.import_module("charging.optimizer.solve")


def _without_reassignment(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_moves(instance, va, compatible, assignment, power, relaxed_power, resolve, budget_s=None):
        return ReassignResult(assignment, power, 0, 0, 0, 0.0, 0.0)

    monkeypatch.setattr(solve_module, "reassign_chargers", no_moves)


def _plans(seed: int, monkeypatch: pytest.MonkeyPatch):
    instance = generate_instance(vehicles=12, connectors=6, seed=seed)
    with_search = solve(instance, "lp")
    with monkeypatch.context() as patched:
        _without_reassignment(patched)
        without = solve(instance, "lp")
    return instance, with_search, without


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_reassignment_never_makes_a_shared_night_worse(seed, monkeypatch):
    instance, with_search, without = _plans(seed, monkeypatch)
    checked = evaluate(instance, with_search)
    assert checked.ok, checked.violations
    assert checked.totals.objective_mxn <= evaluate(instance, without).totals.objective_mxn + 1e-6
    assert with_search.solver.gap is not None and with_search.solver.gap >= 0


def test_reassignment_pairs_the_buses_of_a_badly_shared_night_better(monkeypatch):
    # Seed 1: the capacity-built windows end 0.47 % above the LP bound; re-placing the buses of
    # one or two chargers at a time brings the plan to about 0.12 %.
    instance, with_search, without = _plans(1, monkeypatch)
    checked = evaluate(instance, with_search)
    assert checked.ok, checked.violations
    before = evaluate(instance, without).totals.objective_mxn
    assert checked.totals.objective_mxn < before - 1.0
    assert with_search.solver.gap < without.solver.gap / 2
    assert any("re-placed between chargers" in note for note in with_search.solver.notes)
    moved = {
        vp.vehicle_id
        for vp, old in zip(with_search.vehicles, without.vehicles, strict=True)
        if vp.connector_id != old.connector_id
    }
    assert moved, "the cheaper plan puts some bus on another connector"


@pytest.mark.parametrize("seed", [2, 3])
def test_shared_nights_of_100_buses_on_50_connectors_come_within_the_issue_target(seed):
    # Issue 14: 100 buses on 50 connectors within 0.1 % of the LP relaxation bound. With the buses of
    # one or two chargers re-placed earliest departure first along each connector (the candidate counts
    # the high-SoC wear of waiting after the window) seeds 2 and 3 end 0.083 % and 0.090 % above it;
    # with the old candidate (earliest departure placed first, wear left out) 0.106 % and 0.114 %.
    instance = generate_instance(vehicles=100, connectors=50, seed=seed)
    plan = solve(instance, "lp")
    checked = evaluate(instance, plan)
    assert checked.ok, checked.violations
    assert checked.totals.shortfall_kwh == 0
    assert plan.solver.lp_bound_mxn is not None
    # The evaluator's objective, not the solver's, against the bound.
    assert checked.totals.objective_mxn <= plan.solver.lp_bound_mxn * 1.001, plan.solver.notes


def test_latest_departure_first_with_waiting_wear_charges_the_bus_that_leaves_last_last():
    # One connector, two buses needing two hours each; energy costs 1 MXN/kWh until slot 6 and 2 after.
    # A leaves at 5, B at 8. Placed earliest departure first (the default), A takes the cheapest
    # latest window [3, 5) and B must charge before it and then wait full until 8. Placed latest
    # departure first with the wear of waiting counted, B takes [4, 6) and A charges before it.
    from charging.optimizer.assignment import capacity_assign, compatible_connectors
    from charging.optimizer.quantities import vehicle_arrays

    from .test_optimizer_lp import bus, night

    two_hours = {"usable_capacity_kwh": 100, "arrival_soc_pct": 40, "required_soc_pct": 90, "max_charge_kw": 25}
    instance = night(
        slots=8,
        price=(1.0,) * 6 + (2.0,) * 2,
        site_kw=100.0,
        wear={"high_soc_mxn_per_kwh_h": 0.05, "high_c_rate_mxn_per_kwh": 0},
        chargers=[{"id": "c0", "kind": "DC", "max_kw": 150, "connectors": [{"id": "c0-1", "max_kw": 150}]}],
        vehicles=[bus(name, departure_slot=leaves, **two_hours) for name, leaves in (("A", 5), ("B", 8))],
    )
    va, compatible = vehicle_arrays(instance), compatible_connectors(instance)
    default = capacity_assign(instance, va, compatible)
    assert default.end[1] <= default.start[0]  # B before A: B waits full from its window's end to 8
    wear_aware = capacity_assign(instance, va, compatible, latest_departure_first=True, count_waiting_wear=True)
    assert wear_aware.end[0] <= wear_aware.start[1]  # A, then B
    assert wear_aware.start[1] == 4 and wear_aware.end[1] == 8  # [4, 6) stretched to B's departure


def test_windows_by_cost_matches_the_slot_by_slot_search():
    # ``_windows_by_cost`` charges from every start at once; the reference is the loop it replaced
    # (``fastest_charge_kw`` per start, the window lengthened one slot at a time), on random stays.
    import numpy as np

    from charging.optimizer.assignment import _windows_by_cost
    from charging.optimizer.quantities import fastest_charge_kw

    def slot_by_slot(limit_kw, price, max_kw, lines, initial_kwh, need_kwh, penalty, gain, hours, at_start, hold):
        stay = limit_kw.size
        deliverable = np.minimum(np.maximum(limit_kw, 0.0), max_kw)
        reach = np.concatenate([[0.0], np.cumsum(deliverable) * gain])
        found = []
        for start in [0] if at_start else range(stay):
            length = min(max(int(np.searchsorted(reach, reach[start] + need_kwh - 1e-6)) - start, 1), stay - start)
            while True:
                power = fastest_charge_kw(
                    deliverable[start : start + length], lines, initial_kwh, initial_kwh + need_kwh, gain
                )
                delivered = float(power.sum()) * gain
                if delivered >= need_kwh - 1e-6 or start + length >= stay:
                    break
                length += 1
            cost = float((price[start : start + length] * power).sum()) * hours
            cost += penalty * max(need_kwh - delivered, 0.0) + hold * (stay - start - length)
            found.append((round(cost, 6), length, -start, start, power))
        found.sort(key=lambda w: w[:3])
        return [(start, start + length, power) for _, length, _, start, power in found]

    rng = np.random.default_rng(14)
    for _ in range(400):
        stay = int(rng.integers(1, 50))
        limit = rng.choice([0.0, 20.0, 50.5, 150.0, 300.0], size=stay) * rng.uniform(0.5, 1.0, size=stay)
        price = rng.choice([1.10, 1.85, 2.35], size=stay)
        lines = [(150.0, 0.0), (float(rng.uniform(400, 900)), -float(rng.uniform(1, 3)))] if rng.random() < 0.8 else []
        if rng.random() < 0.2:
            lines.append((20.0, 0.5))  # a rising segment
        args = (limit, price, 150.0, lines, float(rng.uniform(0, 200)), float(rng.uniform(0, 250)), 50.0, 0.2375, 0.25)
        at_start, hold = bool(rng.random() < 0.1), float(rng.choice([0.0, 0.05]))
        got = list(_windows_by_cost(*args, at_start=at_start, hold_mxn_per_slot=hold))
        expected = slot_by_slot(*args, at_start, hold)
        assert [(s, e) for s, e, _ in got] == [(s, e) for s, e, _ in expected]
        for (_, _, power), (_, _, reference) in zip(got, expected, strict=True):
            np.testing.assert_allclose(power, reference, atol=1e-9)
