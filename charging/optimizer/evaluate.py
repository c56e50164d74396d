"""One evaluator for every plan (ours, the baselines', or one edited by hand).

It recomputes the battery energy from the plan's power, prices the plan with the same objective
the LP minimises, and lists every broken constraint. Power is held constant within a slot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .instance import Instance
from .plan import Plan, PlanTotals, VehiclePlan
from .quantities import VehicleArrays, compatible_connectors, curve_min_over_slot_kw, vehicle_arrays

# A limit counts as broken above limit * (1 + TOLERANCE) + TOLERANCE: solvers stop at ~1e-7.
TOLERANCE = 1e-6

VIOLATION_KINDS = (
    "unknown_vehicle",
    "negative_power",
    "presence",  # charging while the vehicle is not at the depot
    "vehicle_power",
    "taper",
    "max_soc",
    "not_plugged_in",  # power outside the vehicle's single connector window
    "incompatible_connector",
    "connector_power",
    "connector_overlap",  # two vehicles on one connector at once
    "charger_power",
    "site_limit",
)


@dataclass
class Violation:
    kind: str
    amount: float  # by how much (kW, kWh or slots), always > 0
    slot: int | None = None
    subject: str | None = None  # vehicle, connector or charger id


@dataclass
class Evaluation:
    totals: PlanTotals
    vehicles: list[VehiclePlan]  # the plan's vehicles with departure SoC/energy/shortfall recomputed
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def violation_counts(self) -> dict[str, int]:
        return dict(Counter(v.kind for v in self.violations))

    def to_dict(self, *, max_violations: int = 100) -> dict[str, Any]:
        return {
            "totals": asdict(self.totals),
            "violation_counts": self.violation_counts(),
            "violations": [asdict(v) for v in self.violations[:max_violations]],
            "vehicles": [
                {
                    "vehicle_id": v.vehicle_id,
                    "departure_soc_pct": v.departure_soc_pct,
                    "energy_delivered_kwh": v.energy_delivered_kwh,
                    "shortfall_kwh": v.shortfall_kwh,
                }
                for v in self.vehicles
            ],
        }


def evaluate(instance: Instance, plan: Plan, *, tolerance: float = TOLERANCE) -> Evaluation:
    """Score ``plan`` on ``instance``: costs, per-vehicle results and constraint violations."""
    va = vehicle_arrays(instance)
    index = {v.id: i for i, v in enumerate(instance.vehicles)}
    num_vehicles, num_slots = len(instance.vehicles), instance.num_slots
    power = np.zeros((num_vehicles, num_slots))
    violations: list[Violation] = []
    by_vehicle: list[VehiclePlan | None] = [None] * num_vehicles
    for vp in plan.vehicles:
        if vp.vehicle_id not in index or len(vp.power_kw) != num_slots:
            violations.append(Violation("unknown_vehicle", 1.0, subject=vp.vehicle_id))
            continue
        i = index[vp.vehicle_id]
        by_vehicle[i] = vp
        power[i] = np.asarray(vp.power_kw, dtype=float)

    def exceed(amount: np.ndarray, limit: np.ndarray | float) -> np.ndarray:
        return amount > np.asarray(limit) * (1 + tolerance) + tolerance

    def report(kind: str, mask: np.ndarray, excess: np.ndarray, subjects: list[str]) -> None:
        for v, t in zip(*np.nonzero(mask), strict=True):
            violations.append(Violation(kind, float(excess[v, t]), int(t), subjects[v]))

    ids = [v.id for v in instance.vehicles]
    slot = np.arange(num_slots)
    present = (slot >= va.arrival_slot[:, None]) & (slot < va.departure_slot[:, None])
    report("negative_power", power < -tolerance, -power, ids)
    report("presence", ~present & (power > tolerance), power, ids)
    report("vehicle_power", exceed(power, va.max_kw[:, None]), power - va.max_kw[:, None], ids)

    gain = va.efficiency[:, None] * instance.slot_hours
    energy_end = va.initial_kwh[:, None] + gain * np.cumsum(power * present, axis=1)
    report("max_soc", exceed(energy_end, va.max_kwh[:, None]), energy_end - va.max_kwh[:, None], ids)
    energy_start = energy_end - gain * power * present
    for v, vehicle in enumerate(instance.vehicles):
        if vehicle.taper:
            # The real curve (not the planning one), at every energy the slot passes through.
            limit = np.maximum(0.0, curve_min_over_slot_kw(vehicle, energy_start[v], energy_end[v]))
            report("taper", exceed(power[v : v + 1], limit[None]), (power[v] - limit)[None], [vehicle.id])

    _check_connectors(instance, va, by_vehicle, power, exceed, violations)
    total_kw = power.sum(axis=0)
    site = np.asarray(instance.site_limit_kw)
    for t in np.flatnonzero(exceed(total_kw, site)):
        violations.append(Violation("site_limit", float(total_kw[t] - site[t]), int(t)))

    departure_kwh = np.where(
        va.departure_slot > 0,
        energy_end[np.arange(num_vehicles), np.maximum(va.departure_slot - 1, 0)],
        va.initial_kwh,
    )
    shortfall = np.maximum(va.target_kwh - departure_kwh, 0.0)
    # Floating-point dust from the solver is not a shortfall anyone should act on.
    shortfall[shortfall < 1e-6 * np.maximum(va.target_kwh, 1.0)] = 0.0
    totals = _totals(instance, va, power, energy_end, present, shortfall)
    vehicles = []
    for v, vehicle in enumerate(instance.vehicles):
        vp = by_vehicle[v] or VehiclePlan(vehicle.id, None, None, None, [0.0] * num_slots)
        vehicles.append(
            VehiclePlan(
                vehicle_id=vehicle.id,
                connector_id=vp.connector_id,
                plug_in_slot=vp.plug_in_slot,
                unplug_slot=vp.unplug_slot,
                power_kw=vp.power_kw,
                departure_soc_pct=float(100.0 * departure_kwh[v] / va.capacity_kwh[v]),
                energy_delivered_kwh=float(power[v].sum() * instance.slot_hours),
                shortfall_kwh=float(shortfall[v]),
                shortfall_reason=vp.shortfall_reason if shortfall[v] > 0 else None,
            )
        )
    return Evaluation(totals, vehicles, violations)


def _check_connectors(
    instance: Instance,
    va: VehicleArrays,
    by_vehicle: list[VehiclePlan | None],
    power: np.ndarray,
    exceed: Callable[[np.ndarray, np.ndarray | float], np.ndarray],
    violations: list[Violation],
) -> None:
    """Single contiguous connector window per vehicle, compatibility, connector/charger power."""
    connectors = {co.id: (c, ch, co) for c, (ch, co) in enumerate(instance.connectors())}
    charger_index = {ch.id: k for k, ch in enumerate(instance.chargers)}
    charger_kw = np.zeros((len(instance.chargers), instance.num_slots))
    windows_by_connector: dict[str, list[tuple[int, int, str]]] = {}
    slot = np.arange(instance.num_slots)
    compatible = compatible_connectors(instance)
    for v, vehicle in enumerate(instance.vehicles):
        vp = by_vehicle[v]
        plugged = np.zeros(instance.num_slots, dtype=bool)
        if vp is not None and vp.connector_id is not None and vp.plug_in_slot is not None:
            start, end = vp.plug_in_slot, vp.unplug_slot if vp.unplug_slot is not None else vp.plug_in_slot
            plugged = (slot >= start) & (slot < end)
            if vp.connector_id not in connectors:
                violations.append(Violation("incompatible_connector", 1.0, subject=vehicle.id))
            else:
                c, ch, co = connectors[vp.connector_id]
                if c not in compatible[v]:
                    violations.append(Violation("incompatible_connector", 1.0, subject=vehicle.id))
                over = exceed(power[v], co.max_kw)
                for t in np.flatnonzero(over):
                    violations.append(Violation("connector_power", float(power[v, t] - co.max_kw), int(t), co.id))
                charger_kw[charger_index[ch.id]] += power[v] * plugged
                windows_by_connector.setdefault(co.id, []).append((start, end, vehicle.id))
        for t in np.flatnonzero(~plugged & (power[v] > 1e-6)):
            violations.append(Violation("not_plugged_in", float(power[v, t]), int(t), vehicle.id))
    for connector_id, windows in windows_by_connector.items():
        windows.sort()
        for (_, end_a, _), (start_b, _, _) in zip(windows, windows[1:], strict=False):
            if start_b < end_a:
                violations.append(Violation("connector_overlap", float(end_a - start_b), start_b, connector_id))
    limit = np.array([ch.max_kw for ch in instance.chargers])[:, None]
    for k, t in zip(*np.nonzero(exceed(charger_kw, limit)), strict=True):
        violations.append(
            Violation("charger_power", float(charger_kw[k, t] - limit[k, 0]), int(t), instance.chargers[k].id)
        )


def _totals(
    instance: Instance,
    va: VehicleArrays,
    power: np.ndarray,
    energy_end: np.ndarray,
    present: np.ndarray,
    shortfall: np.ndarray,
) -> PlanTotals:
    dt = instance.slot_hours
    total_kw = power.sum(axis=0)
    price = np.asarray(instance.energy_price_mxn_per_kwh)
    load_kw = np.array(instance.base_load()) + total_kw
    demand_bill = instance.demand_charges().bill(load_kw)
    wear = instance.wear
    high_soc_kwh = wear.high_soc_threshold_pct / 100.0 * va.capacity_kwh
    held_above = np.maximum(energy_end - high_soc_kwh[:, None], 0.0) * present
    fast_kw = np.maximum(power - wear.c_rate_threshold_per_h * va.capacity_kwh[:, None], 0.0)
    totals = PlanTotals(
        energy_kwh=float(power.sum() * dt),
        energy_cost_mxn=float((total_kw * price).sum() * dt),
        demand_cost_mxn=float(sum(line.cost_mxn for line in demand_bill)),
        wear_cost_mxn=float(
            wear.high_soc_mxn_per_kwh_h * dt * held_above.sum() + wear.high_c_rate_mxn_per_kwh * dt * fast_kw.sum()
        ),
        peak_kw=float(load_kw[np.array(instance.demand_mask())].max(initial=0.0)),
        demand_peaks_kw=[line.peak_kw for line in demand_bill],
        shortfall_kwh=float(shortfall.sum()),
        shortfall_penalty_mxn=float((shortfall * va.penalty_mxn_per_kwh).sum()),
    )
    totals.objective_mxn = (
        totals.energy_cost_mxn + totals.demand_cost_mxn + totals.wear_cost_mxn + totals.shortfall_penalty_mxn
    )
    return totals


def finalize(instance: Instance, plan: Plan) -> Plan:
    """Fill the plan's per-vehicle results and totals from the evaluator (one source of truth)."""
    evaluation = evaluate(instance, plan)
    plan.vehicles = evaluation.vehicles
    plan.totals = evaluation.totals
    return plan
