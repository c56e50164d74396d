"""Why a vehicle leaves short: the first physical limit that explains its shortfall."""

from __future__ import annotations

import numpy as np

from .instance import Charger, Instance, Vehicle
from .plan import Plan, VehiclePlan
from .quantities import effective_max_kw, max_slot_power_kw, vehicle_arrays

NO_CONNECTOR = "no compatible connector"
NOT_ENOUGH_TIME = "not enough time"  # even alone at full power for its whole stay
TAPER = "taper"  # enough time at full power, but the taper slows it too much
NO_FREE_CONNECTOR = "no free connector"  # compatible connectors were all taken
CONNECTOR_TIME = "connector time"  # plugged in, but for too short a window
CHARGER_LIMIT = "charger limit"  # shares a charger at its limit
GRID_LIMIT = "grid limit"  # the site limit binds while it charges


def best_alone_kwh(instance: Instance, v: int, *, with_taper: bool = True) -> float:
    """Battery energy (kWh) the vehicle would leave with alone on its best connector."""
    vehicle = instance.vehicles[v]
    options = [effective_max_kw(vehicle, ch, co) for ch, co in instance.compatible_connectors(vehicle)]
    energy = instance.initial_energy_kwh(vehicle)
    max_kwh = max(vehicle.max_soc_pct / 100.0 * vehicle.usable_capacity_kwh, energy)
    if not options:
        return energy
    limit_kw = max(options)
    gain = instance.efficiency(vehicle) * instance.slot_hours
    slots = max(vehicle.departure_slot - vehicle.arrival_slot, 0)
    if not with_taper:
        return min(max_kwh, energy + gain * limit_kw * slots)
    for _ in range(slots):
        energy += gain * max_slot_power_kw(
            vehicle, energy, limit_kw, max_kwh, instance.efficiency(vehicle), instance.slot_hours
        )
    return energy


def explain_shortfalls(instance: Instance, plan: Plan) -> Plan:
    """Set ``shortfall_reason`` for every vehicle of an evaluated plan that leaves short."""
    va = vehicle_arrays(instance)
    power = np.array([vp.power_kw for vp in plan.vehicles]) if plan.vehicles else np.zeros((0, 0))
    site_total = power.sum(axis=0) if power.size else np.zeros(instance.num_slots)
    site_full = site_total >= np.asarray(instance.site_limit_kw) * (1 - 1e-6) - 1e-6
    charger_of = {co.id: ch for ch, co in instance.connectors()}
    for v, vp in enumerate(plan.vehicles):
        vp.shortfall_reason = None
        if vp.shortfall_kwh <= 0:
            continue
        vehicle = instance.vehicles[v]
        tolerance = 1e-6 * max(1.0, va.target_kwh[v])
        if not instance.compatible_connectors(vehicle):
            vp.shortfall_reason = NO_CONNECTOR
        elif best_alone_kwh(instance, v, with_taper=False) < va.target_kwh[v] - tolerance:
            vp.shortfall_reason = NOT_ENOUGH_TIME
        elif best_alone_kwh(instance, v) < va.target_kwh[v] - tolerance:
            vp.shortfall_reason = TAPER
        elif vp.connector_id is None and _all_connectors_busy(instance, plan, v):
            vp.shortfall_reason = NO_FREE_CONNECTOR
        elif site_full[_window(vehicle, vp)].any():
            vp.shortfall_reason = GRID_LIMIT
        elif vp.connector_id is not None and _charger_full(instance, plan, charger_of[vp.connector_id], vp):
            vp.shortfall_reason = CHARGER_LIMIT
        else:
            vp.shortfall_reason = CONNECTOR_TIME if vp.connector_id is not None else NO_FREE_CONNECTOR
    return plan


def _charger_full(instance: Instance, plan: Plan, charger: Charger, vp: VehiclePlan) -> bool:
    on_charger = {co.id for co in charger.connectors}
    load = np.zeros(instance.num_slots)
    for other in plan.vehicles:
        if other.connector_id in on_charger:
            load += np.asarray(other.power_kw)
    window = load[vp.plug_in_slot : vp.unplug_slot]
    return bool((window >= charger.max_kw * (1 - 1e-6) - 1e-6).any())


def _window(vehicle: Vehicle, vp: VehiclePlan) -> slice:
    """The slots the vehicle could charge in: its connector window, else its whole stay."""
    if vp.connector_id is not None:
        return slice(vp.plug_in_slot, vp.unplug_slot)
    return slice(vehicle.arrival_slot, vehicle.departure_slot)


def _all_connectors_busy(instance: Instance, plan: Plan, v: int) -> bool:
    """Every compatible connector held by another vehicle during the whole stay."""
    vehicle = instance.vehicles[v]
    stay = np.zeros(instance.num_slots, dtype=bool)
    stay[vehicle.arrival_slot : vehicle.departure_slot] = True
    for _, connector in instance.compatible_connectors(vehicle):
        held = np.zeros(instance.num_slots, dtype=bool)
        for other in plan.vehicles:
            if other.connector_id == connector.id and other.plug_in_slot is not None:
                held[other.plug_in_slot : other.unplug_slot] = True
        if (stay & ~held).any():
            return False
    return True
