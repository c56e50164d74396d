"""Numbers shared by the LP, the baselines and the evaluator, computed in one place.

Keeping these here is what makes "the LP plan costs no more than a baseline" a fair comparison:
every plan is judged with the same taper, targets, efficiency and shortfall penalty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from typing import TypeVar

import numpy as np

from .instance import Charger, Connector, Instance, Vehicle


@dataclass(frozen=True)
class VehicleArrays:
    """Per-vehicle numbers as arrays, in ``instance.vehicles`` order. Energies are battery-side kWh."""

    arrival_slot: np.ndarray
    departure_slot: np.ndarray
    capacity_kwh: np.ndarray
    initial_kwh: np.ndarray  # arrival SoC plus energy already delivered x efficiency
    target_kwh: np.ndarray  # required departure energy
    max_kwh: np.ndarray  # max SoC as energy (never below initial_kwh)
    max_kw: np.ndarray  # the vehicle's own limit
    penalty_mxn_per_kwh: np.ndarray  # shortfall penalty
    efficiency: np.ndarray  # battery kWh gained per grid kWh


def vehicle_arrays(instance: Instance) -> VehicleArrays:
    vs = instance.vehicles
    cap = np.array([v.usable_capacity_kwh for v in vs], dtype=float)
    initial = np.array([instance.initial_energy_kwh(v) for v in vs], dtype=float)
    max_kwh = np.maximum(np.array([v.max_soc_pct / 100.0 for v in vs]) * cap, initial)
    return VehicleArrays(
        arrival_slot=np.array([v.arrival_slot for v in vs], dtype=int),
        departure_slot=np.array([v.departure_slot for v in vs], dtype=int),
        capacity_kwh=cap,
        initial_kwh=initial,
        target_kwh=np.minimum(np.array([v.required_soc_pct / 100.0 for v in vs]) * cap, max_kwh),
        max_kwh=max_kwh,
        max_kw=np.array([v.max_charge_kw for v in vs], dtype=float),
        penalty_mxn_per_kwh=shortfall_penalty_mxn_per_kwh(instance),
        efficiency=np.array([instance.efficiency(v) for v in vs], dtype=float),
    )


def shortfall_penalty_mxn_per_kwh(instance: Instance) -> np.ndarray:
    """Penalty per kWh (battery side) a vehicle leaves without, one value per vehicle.

    The base is ten times the most a delivered kWh can cost (the dearest energy price plus
    raising every demand charge's peak by one slot's worth of power, through the efficiency, plus
    the wear terms),
    so a plan never skips energy it could deliver. It is multiplied by 4 for each priority level
    above the lowest one present (capped at 8 levels, to keep the LP well scaled) and by up to 1.5
    for an early departure, so when the night cannot be fully served, higher priority wins first,
    then earlier departure.
    """
    if not instance.vehicles:
        return np.zeros(0)
    hours = instance.slot_hours
    demand_mxn_per_kw = sum(c.mxn_per_kw for c in instance.demand_charges())
    worst_kwh_mxn = (max(instance.energy_price_mxn_per_kwh, default=0.0) + demand_mxn_per_kw / hours) / min(
        instance.efficiency(v) for v in instance.vehicles
    )
    wear = instance.wear
    worst_kwh_mxn += wear.high_soc_mxn_per_kwh_h * instance.num_slots * hours + wear.high_c_rate_mxn_per_kwh
    base = 10.0 * worst_kwh_mxn + 10.0
    levels = sorted({v.priority for v in instance.vehicles})
    rank = {p: min(i, 8) for i, p in enumerate(levels)}
    priority_factor = np.array([4.0 ** rank[v.priority] for v in instance.vehicles])
    departure = np.array([v.departure_slot for v in instance.vehicles], dtype=float)
    departure_factor = 1.0 + 0.5 * (instance.num_slots - departure) / instance.num_slots
    penalty = base * priority_factor * departure_factor
    # Set in the instance: the number as given, for every level or for the levels listed.
    if instance.shortfall_penalty_all_mxn_per_kwh is not None:
        penalty = np.full(len(instance.vehicles), instance.shortfall_penalty_all_mxn_per_kwh)
    for level, mxn_per_kwh in instance.shortfall_penalty_mxn_per_kwh:
        penalty = np.where([v.priority == level for v in instance.vehicles], mxn_per_kwh, penalty)
    return penalty


def compatible_connectors(instance: Instance) -> list[np.ndarray]:
    """Per vehicle, indices of its compatible connectors (into ``instance.connectors()``).

    Computed once per distinct (fixed connector, kinds, connector ids) combination: a depot has
    a handful of those, and checking every vehicle against every connector is quadratic.
    The arrays are shared between vehicles: read them, never write to them.
    """
    index = {co.id: c for c, (_, co) in enumerate(instance.connectors())}
    by_rule: dict[tuple[object, ...], np.ndarray] = {}
    result = []
    for vehicle in instance.vehicles:
        rule = (vehicle.fixed_connector_id, vehicle.compatible_kinds, vehicle.compatible_connector_ids)
        if rule not in by_rule:
            by_rule[rule] = np.array([index[co.id] for _, co in instance.compatible_connectors(vehicle)], dtype=int)
        result.append(by_rule[rule])
    return result


def connector_max_kw(instance: Instance) -> np.ndarray:
    """Per connector (``instance.connectors()`` order), the most it can give alone on its charger."""
    return np.array([min(co.max_kw, ch.max_kw) for ch, co in instance.connectors()], dtype=float)


def best_max_kw(instance: Instance, compatible: list[np.ndarray]) -> np.ndarray:
    """Per vehicle, the most it can draw on its best compatible connector (0 without one)."""
    connector_kw = connector_max_kw(instance)
    return np.array(
        [
            min(vehicle.max_charge_kw, float(connector_kw[c].max())) if c.size else 0.0
            for vehicle, c in zip(instance.vehicles, compatible, strict=True)
        ]
    )


def effective_max_kw(vehicle: Vehicle, charger: Charger, connector: Connector) -> float:
    """The most this vehicle can draw on this connector when alone on its charger."""
    return min(vehicle.max_charge_kw, connector.max_kw, charger.max_kw)


def taper_lines(vehicle: Vehicle) -> list[tuple[float, float]]:
    """The planning taper as lines ``max_kw <= intercept_kw + slope_kw_per_kwh * energy_kwh``.

    The planned power must stay under every line at every energy the battery passes through in
    the slot: at the slot's end energy for a falling line, at its start energy for a rising one
    (a line is linear, so its two ends are where it is lowest). For a concave curve the lines are
    its segments' and their minimum is the curve itself (exact). A curve that is not concave (a
    steep drop then a flat tail, common for DC fast charging) is planned with the concave curve
    below it that ``conservative_taper`` picks: never above the real curve, so the plan is safe.
    """
    return list(_taper_lines(vehicle))


@lru_cache(maxsize=4096)
def _taper_lines(vehicle: Vehicle) -> tuple[tuple[float, float], ...]:
    cap = vehicle.usable_capacity_kwh
    lines_pct = conservative_taper(vehicle)
    # kW per % of SoC -> kW per kWh; a line through SoC 0 % passes through energy 0 kWh.
    return tuple((a, b * 100.0 / cap) for a, b in lines_pct)


def segment_lines_pct(points: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    """Each segment of a curve given as (soc %, kW) points as a line (intercept kW, slope kW per %)."""
    lines = []
    for (s1, k1), (s2, k2) in zip(points, points[1:], strict=False):
        slope = (k2 - k1) / (s2 - s1)
        lines.append((k1 - slope * s1, slope))
    return lines


def is_concave(points: tuple[tuple[float, float], ...]) -> bool:
    lines = segment_lines_pct(points)
    return all(b <= a + 1e-9 for (_, a), (_, b) in zip(lines, lines[1:], strict=False))


def curve_kw(points: tuple[tuple[float, float], ...], soc_pct: np.ndarray) -> np.ndarray:
    """The curve itself (piecewise linear through ``points``) at these SoCs."""
    return np.asarray(np.interp(soc_pct, [s for s, _ in points], [k for _, k in points]))


# Above this many segments a non-concave curve is planned with the minimum of all its lines
# (always below it) instead of searching the best subset.
CONSERVATIVE_SEARCH_MAX_SEGMENTS = 10


def conservative_taper(vehicle: Vehicle) -> list[tuple[float, float]]:
    """Lines (intercept kW, slope kW per % SoC) whose minimum is the curve the plan uses.

    Concave curve: its segments (exact). Otherwise, among the subsets of its segments' lines whose
    minimum stays at or below the real curve from the arrival SoC to 100 %, the one that would
    charge from arrival to the required SoC fastest at the vehicle's power. The minimum of all
    lines is always such a subset (at any SoC the curve equals one of them), so one exists; the
    search skips power the curve really allows (e.g. above a drop, the flat tail's line extended
    back caps the power before it), which is the price of keeping the model linear.
    """
    points = vehicle.taper
    if not points:
        return []
    lines = segment_lines_pct(points)
    if is_concave(points):
        return lines
    if len(lines) > CONSERVATIVE_SEARCH_MAX_SEGMENTS:
        return lines
    low = min(max(vehicle.arrival_soc_pct, 0.0), 100.0)
    high = min(max(vehicle.required_soc_pct, low), 100.0)
    grid = np.linspace(low, high, 401)
    kinks = np.array([s for s, _ in points if low <= s <= 100.0] + [low, 100.0])
    best: tuple[float, list[tuple[float, float]]] = (math.inf, lines)
    for size in range(1, len(lines) + 1):
        for subset in combinations(lines, size):
            check = [kinks]
            for (a1, b1), (a2, b2) in combinations(subset, 2):
                if abs(b1 - b2) > 1e-12:
                    x = (a2 - a1) / (b1 - b2)
                    if low <= x <= 100.0:
                        check.append(np.array([x]))
            at = np.concatenate(check)
            planned = np.min([a + b * at for a, b in subset], axis=0)
            if (planned > curve_kw(points, at) + 1e-9).any():
                continue
            kw = np.minimum(np.min([a + b * grid for a, b in subset], axis=0), vehicle.max_charge_kw)
            hours = math.inf if (kw[:-1] <= 1e-9).any() else float(np.trapezoid(1.0 / kw, grid)) if high > low else 0.0
            if hours < best[0] - 1e-12:
                best = (hours, list(subset))
    return best[1]


def curve_min_over_slot_kw(vehicle: Vehicle, start_kwh: np.ndarray, end_kwh: np.ndarray) -> np.ndarray:
    """The real curve's lowest value over each slot's energy range [start, end] (inf without a taper).

    The curve is piecewise linear, so the lowest value is at an end or at a breakpoint inside.
    """
    if not vehicle.taper:
        return np.full(np.shape(start_kwh), math.inf)
    cap = vehicle.usable_capacity_kwh
    lo = 100.0 * np.minimum(start_kwh, end_kwh) / cap
    hi = 100.0 * np.maximum(start_kwh, end_kwh) / cap
    lowest = np.minimum(curve_kw(vehicle.taper, lo), curve_kw(vehicle.taper, hi))
    for soc, kw in vehicle.taper:
        inside = (lo < soc) & (soc < hi)
        lowest = np.where(inside, np.minimum(lowest, kw), lowest)
    return np.asarray(lowest)


def taper_limit_kw(vehicle: Vehicle, energy_kwh: float) -> float:
    """Max power (kW) the planning taper allows at this battery energy (inf without a taper)."""
    lines = taper_lines(vehicle)
    if not lines:
        return math.inf
    return max(0.0, min(a + b * energy_kwh for a, b in lines))


_Energy = TypeVar("_Energy", float, np.ndarray)


def line_power_kw(a: float, b: float, energy_kwh: _Energy, gain: float) -> _Energy:
    """Largest constant power for one slot starting at ``energy_kwh`` (one value or an array of them)
    that stays under the line ``a + b * e`` all through the slot (``gain`` battery kWh per kW held for
    the slot)."""
    if b > 0:  # rising: lowest at the slot's start
        return a + b * energy_kwh
    # falling: lowest at the end, p <= a + b * (e + gain * p)
    return (a + b * energy_kwh) / (1.0 - b * gain)


def max_slot_power_kw(
    vehicle: Vehicle, energy_kwh: float, limit_kw: float, max_kwh: float, efficiency: float, hours: float
) -> float:
    """Largest constant power for one slot that respects the planning taper all through the slot
    (see ``taper_lines``: the same rule as the LP). Also stops at ``max_kwh``."""
    gain = efficiency * hours  # battery kWh per kW held for the slot
    power = min(limit_kw, max(0.0, (max_kwh - energy_kwh) / gain))
    for a, b in taper_lines(vehicle):
        power = min(power, max(0.0, line_power_kw(a, b, energy_kwh, gain)))
    return power


def free_site_kw(instance: Instance) -> np.ndarray:
    """Per slot, what charging can draw without exceeding the site limit or raising any demand
    charge's peak (the smallest headroom below ``max(month peak, base load peak)`` among the
    charges counting the slot). What greedy constructions treat as free capacity."""
    capacity = np.asarray(instance.site_limit_kw, dtype=float).copy()
    base = np.array(instance.base_load())
    for charge in instance.demand_charges():
        if charge.mxn_per_kw <= 0:
            continue
        demand = np.array(charge.mask(instance.num_slots))
        floor_kw = charge.paid_floor_kw(base)
        capacity[demand] = np.minimum(capacity[demand], np.maximum(floor_kw - base[demand], 0.0))
    return capacity


def fastest_charge_kw(
    limit_kw: np.ndarray, lines: list[tuple[float, float]], initial_kwh: float, target_kwh: float, gain: float
) -> np.ndarray:
    """Power in consecutive charging slots (``limit_kw`` each, in time order) charging as fast as
    the limits and the taper ``lines`` allow, up to ``target_kwh``; the taper is checked over the
    whole slot, as the LP checks it. Greedy constructions use it to place energy."""
    power = np.zeros(len(limit_kw))
    energy = initial_kwh
    for i, limit in enumerate(limit_kw):
        p = min(max(float(limit), 0.0), (target_kwh - energy) / gain)
        for a, b in lines:
            p = min(p, line_power_kw(a, b, energy, gain))
        power[i] = max(p, 0.0)
        energy += gain * power[i]
        if energy >= target_kwh - 1e-9:
            break
    return power


def fastest_charge_from_every_start(
    limit_kw: np.ndarray,
    starts: np.ndarray,
    lines: list[tuple[float, float]],
    initial_kwh: float,
    target_kwh: float,
    gain: float,
) -> np.ndarray:
    """``fastest_charge_kw`` from each of ``starts`` to the end of ``limit_kw`` at once: row k is the
    power from ``starts[k]`` on, column i the i-th slot after it (zero past the end)."""
    num = limit_kw.size
    power = np.zeros((starts.size, num))
    energy = np.full(starts.size, float(initial_kwh))
    charging = np.ones(starts.size, dtype=bool)
    for i in range(num):
        live = np.flatnonzero(charging & (starts + i < num))
        if not live.size:
            break
        e = energy[live]
        p = np.minimum(np.maximum(limit_kw[starts[live] + i], 0.0), (target_kwh - e) / gain)
        for a, b in lines:
            p = np.minimum(p, line_power_kw(a, b, e, gain))
        p = np.maximum(p, 0.0)
        power[live, i] = p
        energy[live] = e + gain * p
        charging[live] = energy[live] < target_kwh - 1e-9
    return power
