"""Charging curves of any piecewise-linear shape, respected over the whole slot (issue 14).

The check is brute force and independent of the optimizer's lines: for every slot the planned
power is held for, the battery energy is sampled at many points inside the slot and the power is
compared with the curve given in the instance (interpolated with numpy).
"""

from __future__ import annotations

import numpy as np
import pytest

from charging.optimizer import Instance, evaluate, solve
from charging.optimizer.quantities import conservative_taper, is_concave

SAMPLES_PER_SLOT = 101


def one_bus_night(taper, *, arrival_soc=0.0, required_soc=95.0, capacity=100.0, max_kw=150.0, slots=24, buses=1):
    return Instance.from_dict(
        {
            "horizon_start": "2025-07-15T22:00:00-07:00",
            "num_slots": slots,
            "slot_minutes": 15,
            "site_limit_kw": 1000,
            "energy_price_mxn_per_kwh": [1.0 + 0.01 * t for t in range(slots)],
            "charging_efficiency": 0.95,
            "chargers": [
                {"id": f"c{k}", "kind": "DC", "max_kw": 150, "connectors": [{"id": f"c{k}-1", "max_kw": 150}]}
                for k in range(buses)
            ],
            "vehicles": [
                {
                    "id": f"bus-{k}",
                    "arrival_slot": 0,
                    "departure_slot": slots,
                    "arrival_soc_pct": arrival_soc,
                    "required_soc_pct": required_soc,
                    "usable_capacity_kwh": capacity,
                    "max_charge_kw": max_kw,
                    "taper": taper,
                }
                for k in range(buses)
            ],
        }
    )


def worst_excess_kw(instance: Instance, plan) -> float:
    """Largest (power - curve) over every sampled energy inside every slot of every vehicle."""
    gain = instance.charging_efficiency * instance.slot_hours
    worst = -np.inf
    for vehicle, vp in zip(instance.vehicles, plan.vehicles, strict=True):
        soc_points = np.array([s for s, _ in vehicle.taper])
        kw_points = np.array([k for _, k in vehicle.taper])
        energy = instance.initial_energy_kwh(vehicle)
        for p in vp.power_kw:
            if p > 1e-9:
                inside = energy + gain * p * np.linspace(0.0, 1.0, SAMPLES_PER_SLOT)
                curve = np.interp(100.0 * inside / vehicle.usable_capacity_kwh, soc_points, kw_points)
                worst = max(worst, float((p - curve).max()))
            energy += gain * p
    return worst


RISING = [[0, 20], [50, 150], [100, 30]]  # rising, then falling (concave)
CONVEX_TAIL = [[0, 150], [80, 150], [85, 50], [100, 40]]  # steep drop, then a flat tail
STEPS_UP = [[0, 30], [20, 30], [30, 150], [90, 150], [100, 20]]  # low start, a jump, a taper


@pytest.mark.parametrize("taper", [RISING, CONVEX_TAIL, STEPS_UP], ids=["rising", "convex-tail", "steps-up"])
@pytest.mark.parametrize("method", ["lp", "edf"])
def test_power_never_exceeds_the_curve_inside_a_slot(taper, method):
    instance = one_bus_night(taper, buses=2)
    plan = solve(instance, method)
    assert worst_excess_kw(instance, plan) <= 1e-6
    assert evaluate(instance, plan).ok
    # and it still charges: most of the night's energy gets in
    assert plan.totals.energy_kwh > 50


def test_a_rising_curve_limits_the_first_slot_to_its_start():
    # 20 kW allowed at 0 % SoC: checking only the slot's end energy would allow ~26 kW.
    instance = one_bus_night(RISING, required_soc=10.0, slots=2)
    plan = solve(instance, "lp")
    assert plan.vehicles[0].power_kw[0] <= 20.0 + 1e-6
    assert worst_excess_kw(instance, plan) <= 1e-6


def test_evaluator_flags_power_above_a_rising_curve_inside_the_slot():
    instance = one_bus_night(RISING, required_soc=10.0, slots=2)
    plan = solve(instance, "lp")
    plan.vehicles[0].power_kw[0] = 25.0  # 20 kW allowed at the slot's start
    kinds = {v.kind for v in evaluate(instance, plan).violations}
    assert "taper" in kinds


def test_a_convex_tail_is_planned_below_the_curve_and_reaches_the_target():
    vehicle = one_bus_night(CONVEX_TAIL).vehicles[0]
    assert not is_concave(vehicle.taper)
    lines = conservative_taper(vehicle)
    soc = np.linspace(0.0, 100.0, 2001)
    planned = np.min([a + b * soc for a, b in lines], axis=0)
    real = np.interp(soc, [s for s, _ in vehicle.taper], [k for _, k in vehicle.taper])
    assert (planned <= real + 1e-9).all()
    # A target past the drop stays reachable (the curve used is not cut to zero there).
    instance = one_bus_night(CONVEX_TAIL, required_soc=95.0)
    plan = solve(instance, "lp")
    assert plan.totals.shortfall_kwh == pytest.approx(0.0, abs=1e-6)
