"""Re-plans with scarce connectors must not strand buses the night's plan served.

A re-plan of a night where nothing changed is the night plan's remainder: whatever it does, it must
not leave buses shorter than carrying on would. Before plugged-in buses held their connector only as
long as they need and the old windows were tried (``replan.remaining_windows``), re-planning a 300-bus
night on 150 connectors at midnight left ~18,000 kWh short.
"""

from __future__ import annotations

import pytest

from charging.optimizer import evaluate, generate_instance, replan, solve
from charging.optimizer.replan import remaining_instance, remaining_windows


@pytest.mark.parametrize("now_slot", [40, 48, 60])
@pytest.mark.parametrize(("vehicles", "connectors", "seed"), [(60, 30, 0), (100, 40, 1), (100, 40, 2)])
def test_an_unchanged_scarce_night_re_plans_without_new_shortfall(vehicles, connectors, seed, now_slot):
    instance = generate_instance(vehicles=vehicles, connectors=connectors, seed=seed)
    night_plan = solve(instance, "lp")
    night_short = evaluate(instance, night_plan).totals.shortfall_kwh
    result = replan(instance, night_plan, now_slot)
    evaluation = evaluate(result.instance, result.plan)
    assert evaluation.ok, evaluation.violation_counts()
    assert evaluation.totals.shortfall_kwh <= night_short + 1e-3


def test_a_plugged_in_bus_holds_its_connector_only_as_long_as_it_needs():
    instance = generate_instance(vehicles=60, connectors=30, seed=0)
    night_plan = solve(instance, "lp")
    remainder = remaining_instance(instance, night_plan, 48)
    plugged = [v for v in remainder.vehicles if v.fixed_connector_id is not None]
    assert plugged
    plan = solve(remainder, "lp")
    by_id = {vp.vehicle_id: vp for vp in plan.vehicles}
    # Each starts on its connector now; some leave before departure so that the next bus can plug in.
    assert all(by_id[v.id].plug_in_slot == v.arrival_slot == 0 for v in plugged)
    assert all(by_id[v.id].connector_id == v.fixed_connector_id for v in plugged)
    assert any(by_id[v.id].unplug_slot < v.departure_slot for v in plugged)


def test_remaining_windows_are_in_the_remainders_slots():
    instance = generate_instance(vehicles=20, connectors=10, seed=3)
    night_plan = solve(instance, "lp")
    windows = remaining_windows(night_plan, 48)
    for vp in night_plan.vehicles:
        if vp.vehicle_id in windows:
            connector, start, end = windows[vp.vehicle_id]
            assert connector == vp.connector_id
            assert start == max(vp.plug_in_slot - 48, 0) and end == vp.unplug_slot - 48 > 0
        else:
            assert vp.connector_id is None or vp.unplug_slot <= 48
