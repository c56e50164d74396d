"""Sifting (charging/optimizer/sifting.py) must give the full LP's optimum, proven by its duals.

The fast path solves the LP on an active subset of (vehicle, slot) pairs and prices the others
with duals extended to the full model. These tests solve the full model too and compare.
"""

from __future__ import annotations

import dataclasses

import highspy
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from charging.optimizer import DemandCharge, generate_instance, solve
from charging.optimizer.assignment import assign_connectors, compatible_connectors, group_limits
from charging.optimizer.lp import LpModel, Windows, add_charger_limits, add_group_limits, build_core
from charging.optimizer.quantities import best_max_kw, connector_max_kw, vehicle_arrays
from charging.optimizer.sifting import full_reduced_costs, initial_active, solve_sifted, window_mask

from .test_optimizer_properties import PROPERTY_SETTINGS, nights


def relaxation_parts(instance):
    """(vehicle arrays, whole-stay windows, a callback adding the connector group rows)."""
    va = vehicle_arrays(instance)
    compatible = compatible_connectors(instance)
    windows = Windows.whole_stays(va, compatible, best_max_kw(instance, compatible))
    groups = group_limits(instance, compatible)

    def limits(core, model):
        add_group_limits(instance, core, windows, groups, model)

    return va, windows, limits


def _full_objective(instance, va, windows, limits) -> float:
    model = LpModel()
    core = build_core(instance, va, windows, model)  # every pair, every row, no lazy rows
    limits(core, model)
    solution = model.solve()
    assert solution.optimal
    return solution.objective


@PROPERTY_SETTINGS
@given(nights(), st.integers(0, 2**32 - 1))
def test_sifting_from_any_start_reaches_the_full_lp_optimum(instance, seed):
    va, windows, limits = relaxation_parts(instance)
    start = np.random.default_rng(seed).random((len(instance.vehicles), instance.num_slots)) < 0.3
    result = solve_sifted(instance, va, windows, start, limits)
    assert result.solution.optimal
    expected = _full_objective(instance, va, windows, limits)
    assert abs(result.solution.objective - expected) <= 1e-6 * max(1.0, abs(expected))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("connectors", [40, 20])
def test_a_poor_start_is_repaired_by_pricing(seed, connectors):
    # Only each window's last slot active: the first round leaves buses short; pricing must find
    # every slot that helps and end at the full LP's optimum.
    instance = generate_instance(vehicles=40, connectors=connectors, seed=seed)
    va, windows, limits = relaxation_parts(instance)
    result = solve_sifted(instance, va, windows, np.zeros((40, instance.num_slots), dtype=bool), limits)
    assert result.rounds >= 2 and result.active_pairs[0] < result.active_pairs[-1]
    expected = _full_objective(instance, va, windows, limits)
    assert abs(result.solution.objective - expected) <= 1e-6 * abs(expected)


@pytest.mark.parametrize("connectors", [60, 30])
def test_the_greedy_start_needs_few_pairs_and_few_rounds(connectors):
    instance = generate_instance(vehicles=60, connectors=connectors, seed=3)
    va, windows, limits = relaxation_parts(instance)
    result = solve_sifted(instance, va, windows, initial_active(instance, va, windows), limits)
    assert result.solution.optimal and result.rounds <= 3
    assert result.active_pairs[-1] < 0.6 * window_mask(windows, instance.num_slots).sum()
    expected = _full_objective(instance, va, windows, limits)
    assert abs(result.solution.objective - expected) <= 1e-6 * abs(expected)


def test_window_lp_with_charger_limits_reaches_the_full_optimum():
    # After connector assignment: windows are the connector windows, rows are per charger.
    instance = generate_instance(vehicles=50, connectors=20, seed=4)
    va = vehicle_arrays(instance)
    compatible = compatible_connectors(instance)
    relaxed = solve(instance, "lp")
    power = np.array([vp.power_kw for vp in relaxed.vehicles])
    assignment = assign_connectors(instance, va, compatible, power)
    connectors = instance.connectors()
    charger_index = {ch.id: k for k, ch in enumerate(instance.chargers)}
    assigned = assignment.connector >= 0
    windows = Windows(
        assignment.start,
        np.where(assigned, assignment.end, assignment.start),
        np.where(assigned, np.minimum(va.max_kw, connector_max_kw(instance)[assignment.connector]), 0.0),
    )
    charger_of = np.array([charger_index[connectors[c][0].id] if c >= 0 else -1 for c in assignment.connector])

    def limits(core, model):
        add_charger_limits(instance, core, windows, charger_of, model)

    result = solve_sifted(instance, va, windows, np.zeros_like(window_mask(windows, instance.num_slots)), limits)
    expected = _full_objective(instance, va, windows, limits)
    assert result.rounds >= 2
    assert abs(result.solution.objective - expected) <= 1e-6 * abs(expected)


@pytest.mark.parametrize("connectors", [30, 12])
@pytest.mark.parametrize("distribution_charge", [False, True])
def test_reduced_costs_match_highs_on_the_restricted_model(connectors, distribution_charge, monkeypatch):
    # Where a pair is in the model, HiGHS's own reduced cost of its power must equal ours (less
    # the duals of taper / C-rate rows, which only active pairs have): same signs, same rows.
    instance = generate_instance(vehicles=30, connectors=connectors, seed=5)
    if distribution_charge:
        # GDMTH's second charge, on every slot with nothing paid yet: power in a punta slot is then in two
        # demand rows, and both duals come off its reduced cost.
        charge = DemandCharge("distribution", 120.0, None, 0.0)
        instance = dataclasses.replace(instance, additional_demand_charges=(charge,))
    va, windows, limits = relaxation_parts(instance)
    active = window_mask(windows, instance.num_slots) & (
        np.random.default_rng(5).random((30, instance.num_slots)) < 0.5
    )
    active[np.arange(30), windows.end - 1] = True
    model = LpModel()
    core = build_core(instance, va, windows, model, lazy=True, active=active)
    limits(core, model)
    captured = {}
    run = highspy.Highs.run

    def run_and_capture(self):
        status = run(self)
        captured["col_dual"] = np.asarray(self.getSolution().col_dual)
        return status

    monkeypatch.setattr(highspy.Highs, "run", run_and_capture)
    solution = model.solve(lazy=core.lazy)
    ours = full_reduced_costs(instance, va, windows, core, solution.row_dual, left_out_only=False)
    theirs = captured["col_dual"][core.p_col : core.p_col + core.num_pairs]
    with_extra_rows = np.zeros(core.num_pairs, dtype=bool)
    with_extra_rows[core.lazy.taper_pair[core.lazy.taper_added]] = True
    with_extra_rows[core.lazy.c_pair[core.lazy.c_added]] = True
    compared = ~with_extra_rows
    assert compared.sum() > core.num_pairs / 2
    if distribution_charge:
        # Both charges' rows bind somewhere (the distribution charge pushes load into punta), so leaving
        # either charge's duals out of the reduced costs would show.
        binding = [np.abs(solution.row_dual[rows[rows >= 0]]).max(initial=0) > 1e-6 for rows in core.demand_rows]
        assert binding == [True, True]
    np.testing.assert_allclose(ours[core.pair_vehicle, core.pair_slot][compared], theirs[compared], atol=1e-9)


def test_sifting_stopped_before_pricing_clears_claims_no_optimum(monkeypatch):
    # One round from a poor start leaves slots that would lower the cost: the plan is feasible, but its
    # objective is not the LP's optimum and must not be reported as a bound.
    import charging.optimizer.sifting as sifting

    monkeypatch.setattr(sifting, "MAX_ROUNDS", 1)
    instance = generate_instance(vehicles=20, connectors=20, seed=6)
    va, windows, limits = relaxation_parts(instance)
    result = solve_sifted(instance, va, windows, np.zeros((20, instance.num_slots), dtype=bool), limits)
    assert result.rounds == 1 and result.solution.x is not None
    assert not result.solution.optimal
    assert result.solution.objective > _full_objective(instance, va, windows, limits)


@pytest.mark.parametrize(("vehicles", "connectors", "seed"), [(60, 30, 3), (100, 50, 1), (100, 100, 1)])
def test_later_rounds_start_from_the_last_rounds_basis(vehicles, connectors, seed):
    # From the greedy start pricing adds slots. A later round's model holds the last one's columns and
    # rows (and the lazy rows it needed), so it starts from that basis: the same optimum as solving each
    # round from scratch, in a fraction of the simplex iterations.
    instance = generate_instance(vehicles=vehicles, connectors=connectors, seed=seed)
    va, windows, limits = relaxation_parts(instance)
    start = initial_active(instance, va, windows)
    warm = solve_sifted(instance, va, windows, start, limits)
    cold = solve_sifted(instance, va, windows, start, limits, carry_basis=False)
    assert warm.solution.optimal and cold.solution.optimal and warm.rounds >= 2
    assert abs(warm.solution.objective - cold.solution.objective) <= 1e-6 * abs(cold.solution.objective)
    later = sum(warm.iterations[1:]) / (warm.rounds - 1)
    later_cold = sum(cold.iterations[1:]) / (cold.rounds - 1)
    assert later < 0.5 * later_cold, (warm.iterations, cold.iterations)
