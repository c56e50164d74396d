"""More buses than connectors: one connector per bus for one contiguous window, one bus per connector."""

from __future__ import annotations

import pytest

from charging.optimizer import evaluate, generate_instance, solve


def windows_by_connector(plan):
    by_connector = {}
    for vp in plan.vehicles:
        if vp.connector_id is not None:
            by_connector.setdefault(vp.connector_id, []).append((vp.plug_in_slot, vp.unplug_slot, vp.vehicle_id))
    return by_connector


def assert_one_bus_per_connector(plan):
    for windows in windows_by_connector(plan).values():
        windows.sort()
        for (_, end, _), (start, _, _) in zip(windows, windows[1:], strict=False):
            assert start >= end


def assert_power_only_inside_the_window(plan):
    for vp in plan.vehicles:
        charging = [t for t, p in enumerate(vp.power_kw) if p > 1e-9]
        if charging:
            assert vp.connector_id is not None
            assert vp.plug_in_slot <= min(charging) and max(charging) < vp.unplug_slot


@pytest.mark.parametrize("method", ["lp", "auto"])
def test_twice_as_many_buses_as_connectors(method):
    instance = generate_instance(vehicles=8, connectors=4, seed=3, slot_minutes=60)
    plan = solve(instance, method)
    assert evaluate(instance, plan).ok
    assert_one_bus_per_connector(plan)
    assert_power_only_inside_the_window(plan)
    assert plan.solver.gap is not None and plan.solver.gap >= 0
    assert plan.totals.objective_mxn >= plan.solver.lp_bound_mxn - 1e-6


def test_exact_milp_on_a_tiny_depot_is_at_least_as_good_as_the_heuristic():
    instance = generate_instance(vehicles=5, connectors=2, seed=7, slot_minutes=60)
    heuristic = solve(instance, "lp")
    exact = solve(instance, "milp")
    assert evaluate(instance, exact).ok
    assert exact.solver.method == "milp"
    assert_one_bus_per_connector(exact)
    assert_power_only_inside_the_window(exact)
    assert exact.totals.objective_mxn <= heuristic.totals.objective_mxn * (1 + 1e-4) + 1e-6


def test_plenty_of_connectors_means_no_gap():
    instance = generate_instance(vehicles=20, connectors=20, seed=1)
    plan = solve(instance, "lp")
    assert evaluate(instance, plan).ok
    assert plan.totals.shortfall_kwh == 0
    assert plan.solver.gap < 1e-4


def test_connectors_are_shared_over_the_night():
    instance = generate_instance(vehicles=16, connectors=4, seed=2)
    plan = solve(instance, "lp")
    assert evaluate(instance, plan).ok
    used = windows_by_connector(plan)
    assert max(len(w) for w in used.values()) >= 2  # a connector serves several buses in turn


@pytest.mark.parametrize(("vehicles", "connectors", "seed"), [(300, 150, 1), (300, 150, 2), (60, 30, 1), (100, 40, 2)])
def test_scarce_connectors_stay_within_one_percent_of_the_bound(vehicles, connectors, seed):
    # The target (300 buses, 150 connectors: within 1 % of the LP relaxation). The
    # relaxation-driven greedy alone was 4-7 % above on these nights once the relaxation was solved
    # by sifting (its equally cheap optimum splits buses between early and late slots); the
    # windows built against the site limit (``capacity_assign``) bring them back under 1 %.
    instance = generate_instance(vehicles=vehicles, connectors=connectors, seed=seed)
    plan = solve(instance, "lp")
    assert evaluate(instance, plan).ok
    assert_one_bus_per_connector(plan)
    assert_power_only_inside_the_window(plan)
    assert plan.solver.gap is not None and plan.solver.gap <= 0.01, plan.solver.notes


def test_capacity_windows_are_one_per_bus_inside_its_stay_and_start_at_arrival_when_plugged_in():
    import dataclasses

    import numpy as np

    from charging.optimizer.assignment import capacity_assign, compatible_connectors
    from charging.optimizer.quantities import vehicle_arrays

    instance = generate_instance(vehicles=40, connectors=16, seed=7)
    first_connector = instance.connectors()[0][1].id
    vehicles = list(instance.vehicles)
    vehicles[5] = dataclasses.replace(vehicles[5], fixed_connector_id=first_connector)
    instance = dataclasses.replace(instance, vehicles=tuple(vehicles))
    va = vehicle_arrays(instance)
    assignment = capacity_assign(instance, va, compatible_connectors(instance))
    placed = assignment.connector >= 0
    assert placed.sum() == 40
    assert (assignment.start >= va.arrival_slot).all() and (assignment.end <= va.departure_slot).all()
    assert assignment.connector[5] == 0 and assignment.start[5] == va.arrival_slot[5]
    for c in np.unique(assignment.connector):
        on_c = sorted((assignment.start[v], assignment.end[v]) for v in np.flatnonzero(assignment.connector == c))
        assert all(end <= next_start for (_, end), (next_start, _) in zip(on_c, on_c[1:], strict=False))


def test_longest_free_stretch_is_the_first_longest_run_of_free_slots():
    import numpy as np

    from charging.optimizer.assignment import _longest_free_stretch

    def by_scanning(occupied):
        best = (0, 0)
        for row in occupied:
            run_start = None
            for t, busy in enumerate([*row, True]):
                if not busy and run_start is None:
                    run_start = t
                elif busy and run_start is not None:
                    if t - run_start > best[1] - best[0]:
                        best = (run_start, t)
                    run_start = None
        return best

    rng = np.random.default_rng(0)
    for _ in range(500):
        occupied = rng.random((rng.integers(0, 6), rng.integers(0, 30))) < rng.random()
        assert _longest_free_stretch(occupied) == by_scanning(occupied)


def test_capacity_windows_fall_back_to_a_slower_connector_when_the_fast_one_is_taken():
    # Two buses, both needing the whole 4-hour stay: the first takes the 150 kW connector for all of
    # it; the second must get the 50 kW one rather than no connector at all.
    from charging.optimizer.assignment import capacity_assign, compatible_connectors
    from charging.optimizer.quantities import vehicle_arrays

    from .test_optimizer_lp import bus, night

    chargers = [
        {"id": "fast", "kind": "DC", "max_kw": 150, "connectors": [{"id": "fast-1", "max_kw": 150}]},
        {"id": "slow", "kind": "DC", "max_kw": 50, "connectors": [{"id": "slow-1", "max_kw": 50}]},
    ]
    vehicles = [bus(f"bus-{i}", max_charge_kw=150, usable_capacity_kwh=400, arrival_soc_pct=0) for i in (1, 2)]
    instance = night(vehicles=vehicles, chargers=chargers)
    assignment = capacity_assign(instance, vehicle_arrays(instance), compatible_connectors(instance))
    assert sorted(assignment.connector.tolist()) == [0, 1]
    assert (assignment.start == 0).all() and (assignment.end == 4).all()
