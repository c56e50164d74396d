"""The exact MILP's time-to-charge rows (issue 14): valid for every plan, so they never cut off the optimum.

A vehicle plugged in for h hours cannot have gained more than its charging curve allows in h hours; the
MILP states it as ``hours plugged in >= slope * departure energy + rhs``. Checked against a brute-force
time to charge (the curve followed in 1-second steps) for a falling, a rising-then-falling and a
steep-drop curve, and against the windows of plans the optimizer makes on a scarce night.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from charging.optimizer import generate_instance, solve
from charging.optimizer.milp import time_to_charge_cuts
from charging.optimizer.quantities import taper_limit_kw, vehicle_arrays

CURVES = {
    "falling": [[0, 150.0], [80, 150.0], [100, 30.0]],
    "rising then falling": [[0, 20.0], [30, 120.0], [85, 120.0], [100, 10.0]],
    "steep drop, flat tail": [[0, 150.0], [80, 150.0], [85, 50.0], [100, 40.0]],
}


@pytest.mark.parametrize("curve", CURVES)
def test_rows_never_ask_for_more_hours_than_the_curve_needs(curve):
    night = generate_instance(vehicles=2, connectors=2, seed=0)
    vehicle = replace(night.vehicles[0], taper=tuple((soc, kw) for soc, kw in CURVES[curve]))
    instance = replace(night, vehicles=(vehicle,))
    va = vehicle_arrays(instance)
    cuts = time_to_charge_cuts(instance, va, 0, vehicle.max_charge_kw)
    assert cuts
    # Brute force: charge at the curve's limit in 1-s steps, note the hours needed to reach each energy.
    energy, hours, step_h = float(va.initial_kwh[0]), 0.0, 1 / 3600
    reached = []
    while energy < va.max_kwh[0] - 1e-6 and hours < 48:
        kw = min(vehicle.max_charge_kw, taper_limit_kw(vehicle, energy))
        if kw <= 1e-9:  # the planning curve allows no more
            break
        energy = min(energy + va.efficiency[0] * kw * step_h, float(va.max_kwh[0]))
        hours += step_h
        reached.append((energy, hours))
    for energy, hours in reached[:: max(1, len(reached) // 500)]:
        needed = max(slope * energy + rhs for slope, rhs in cuts)
        assert needed <= hours + 1e-6
    # ... and close to the truth (not trivially valid): within 10 % of the time to 90 % of the reachable energy
    # (a rising segment makes T concave there, and the rows follow its convex hull).
    target = va.initial_kwh[0] + 0.9 * (reached[-1][0] - va.initial_kwh[0])
    energy, hours = next((e, h) for e, h in reached if e >= target)
    assert max(slope * energy + rhs for slope, rhs in cuts) >= 0.9 * hours


def test_plans_the_optimizer_makes_satisfy_the_rows():
    instance = generate_instance(vehicles=8, connectors=2, seed=1)
    va = vehicle_arrays(instance)
    plan = solve(instance, "lp")
    for v, vp in enumerate(plan.vehicles):
        if vp.plug_in_slot is None:
            continue
        hours = (vp.unplug_slot - vp.plug_in_slot) * instance.slot_hours
        energy = float(va.initial_kwh[v]) + float(va.efficiency[v]) * float(np.sum(vp.power_kw)) * instance.slot_hours
        for slope, rhs in time_to_charge_cuts(instance, va, v, instance.vehicles[v].max_charge_kw):
            assert hours >= slope * energy + rhs - 1e-6
