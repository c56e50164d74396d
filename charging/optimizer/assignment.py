"""Which vehicle goes on which connector, and when.

Depot practice: a vehicle uses one connector for one contiguous window, and a connector holds
one vehicle at a time. That makes the exact problem a MILP (``milp.py``); at depot scale we use
the LP relaxation (connectors aggregated per compatibility group, see ``lp.add_group_limits``)
and then this greedy, which turns the relaxed charging profiles into windows:

1. each vehicle needs ``L`` slots of connector time: its relaxed energy at the power it could
   actually draw (vehicle, connector and taper limits), rounded up;
2. its preferred window is the ``L`` consecutive slots holding most of its relaxed energy;
3. vehicles are placed in order of preferred start (interval scheduling, which is optimal for
   identical connectors), higher priority and earlier departure first on ties, on the compatible
   connector that is free, fastest, least used during its stay and on the least loaded charger;
   if none is free, at the
   nearest start where one is, else on the longest free stretch;
4. windows are then stretched into the free time around them, which only gives the re-solve
   more room.

A vehicle already plugged in (``fixed_connector_id``) gets its window on that connector from its
arrival slot, as long as it needs (step 1), placed before the others.

The LP is then solved again with these windows and exact per-charger limits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .instance import Instance
from .quantities import (
    VehicleArrays,
    compatible_connectors,
    connector_max_kw,
    fastest_charge_from_every_start,
    free_site_kw,
    taper_lines,
)

__all__ = [
    "Assignment",
    "assign_connectors",
    "capacity_assign",
    "compatible_connectors",
    "greedy_assign",
    "group_limits",
]


@dataclass
class Assignment:
    """Per vehicle: connector index into ``instance.connectors()`` (-1 = none), window [start, end)."""

    connector: np.ndarray
    start: np.ndarray
    end: np.ndarray


def group_limits(instance: Instance, compatible: list[np.ndarray]) -> list[tuple[np.ndarray, int, float]]:
    """Aggregated connector limits for the relaxation: one group per distinct compatible set K,
    and one per charger that holds the whole compatible set of some vehicle.

    Members are the vehicles whose compatible set lies inside K; they cannot use more than
    ``len(K)`` connectors nor more power than K's connectors and chargers can give. The charger
    groups matter for vehicles already plugged in (re-plans): two of them on one charger share
    its limit, which the relaxation must know for its power to fit the plan as is.
    """
    connectors = instance.connectors()
    charger_index = {ch.id: k for k, ch in enumerate(instance.chargers)}
    # Vehicles share their compatible arrays per rule: compare each distinct set once.
    distinct = {id(c): frozenset(c.tolist()) for c in compatible if c.size}
    vehicles_of: dict[int, list[int]] = {}
    for v, c in enumerate(compatible):
        if c.size:
            vehicles_of.setdefault(id(c), []).append(v)
    candidates = set(distinct.values())
    connector_sets: dict[int, set[int]] = {}
    for index, (ch, _) in enumerate(connectors):
        connector_sets.setdefault(charger_index[ch.id], set()).add(index)
    for k_set in distinct.values():
        chargers = {charger_index[connectors[c][0].id] for c in k_set}
        if len(chargers) == 1:
            candidates.add(frozenset(connector_sets[next(iter(chargers))]))
    groups = []
    for k_set in candidates:
        inside = [key for key, other in distinct.items() if k_set.issuperset(other)]
        members = np.array(sorted(v for key in inside for v in vehicles_of[key]), dtype=int)
        per_charger: dict[int, float] = {}
        for c in k_set:
            ch, co = connectors[c]
            per_charger[charger_index[ch.id]] = per_charger.get(charger_index[ch.id], 0.0) + co.max_kw
        capacity = sum(min(kw, instance.chargers[k].max_kw) for k, kw in per_charger.items())
        groups.append((members, len(k_set), capacity))
    return groups


def connector_time_needed(instance: Instance, va: VehicleArrays, power: np.ndarray, v: int, max_kw: float) -> int:
    """Slots of connector time to deliver vehicle v's relaxed energy at the power it can draw."""
    if power[v].sum() <= 1e-6:
        return 0
    gain = va.efficiency[v] * instance.slot_hours
    energy_end = va.initial_kwh[v] + gain * np.cumsum(power[v])
    energy_start = energy_end - gain * power[v]
    achievable = np.full(instance.num_slots, max_kw)
    for a, b in taper_lines(instance.vehicles[v]):
        # over the slot: a rising line is lowest at its start, a falling one at its end
        achievable = np.minimum(achievable, a + b * (energy_start if b > 0 else energy_end))
    occupancy = np.where(power[v] > 1e-9, power[v] / np.maximum(achievable, 1e-9), 0.0)
    return max(1, math.ceil(float(np.minimum(occupancy, 1.0).sum()) - 1e-6))


def assign_connectors(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    relaxed_power: np.ndarray,
    preplaced: dict[int, tuple[int, int, int]] | None = None,
) -> Assignment:
    """Windows and connectors from the relaxed power profiles (see the module docstring).

    Windows as short as the relaxed energy allows pack best but leave the re-solve no room to
    share the site limit over time; so the window lengths are scaled by the largest common
    factor (binary search) for which the greedy still gives every vehicle its full window.
    ``preplaced`` (vehicle -> (connector, start, end)) windows are kept as they are.
    """
    longest = max((int(s) for s in va.departure_slot - va.arrival_slot), default=1)
    result, complete = greedy_assign(instance, va, compatible, relaxed_power, 1.0, preplaced)
    if not complete:
        return result
    low, high = 1.0, float(max(longest, 1))
    full, complete = greedy_assign(instance, va, compatible, relaxed_power, high, preplaced)
    if complete:
        return full
    for _ in range(6):
        middle = (low + high) / 2
        attempt, complete = greedy_assign(instance, va, compatible, relaxed_power, middle, preplaced)
        if complete:
            low, result = middle, attempt
        else:
            high = middle
    return result


def greedy_assign(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    relaxed_power: np.ndarray,
    length_factor: float,
    preplaced: dict[int, tuple[int, int, int]] | None = None,
) -> tuple[Assignment, bool]:
    """One greedy pass with windows ``length_factor`` times the connector time needed.

    ``preplaced`` windows (vehicle -> (connector, start, end)) go in first, unchanged; they must
    not overlap on a connector. Returns the assignment and whether every other vehicle got a
    window of the length it asked for.
    """
    connectors = instance.connectors()
    charger_index = {ch.id: k for k, ch in enumerate(instance.chargers)}
    charger_of = np.array([charger_index[ch.id] for ch, _ in connectors], dtype=int)
    connector_kw = connector_max_kw(instance)
    num_vehicles, num_slots = len(instance.vehicles), instance.num_slots
    occupied = np.zeros((len(connectors), num_slots), dtype=bool)
    charger_load = np.zeros((len(instance.chargers), num_slots), dtype=int)
    # Relaxed power already placed on each charger: a vehicle whose relaxed profile fits beside
    # it lets the relaxation stand as the plan, without a re-solve.
    charger_kw = np.zeros((len(instance.chargers), num_slots))
    charger_max_kw = np.array([ch.max_kw for ch in instance.chargers])
    result = Assignment(np.full(num_vehicles, -1), np.zeros(num_vehicles, int), np.zeros(num_vehicles, int))
    complete = True

    def place(v: int, c: int, start: int, end: int) -> None:
        occupied[c, start:end] = True
        charger_load[charger_of[c], start:end] += 1
        charger_kw[charger_of[c], start:end] += relaxed_power[v, start:end]
        result.connector[v], result.start[v], result.end[v] = c, start, end

    # A vehicle already plugged in keeps its connector from its arrival (now, in a re-plan) for as
    # long as it needs, like any other window: staff unplug it then, and the connector serves the
    # next bus. Pinning it for its whole stay would block scarce connectors all night.
    wanted = []
    for v, (c, start, end) in (preplaced or {}).items():
        place(v, c, start, end)
    for v, vehicle in enumerate(instance.vehicles):
        arrival, departure = int(va.arrival_slot[v]), int(va.departure_slot[v])
        if not compatible[v].size or departure <= arrival or v in (preplaced or {}):
            continue
        speed = np.minimum(vehicle.max_charge_kw, connector_kw[compatible[v]])
        needed = connector_time_needed(instance, va, relaxed_power, v, float(speed.max()))
        length = min(math.ceil(needed * length_factor - 1e-9), departure - arrival)
        if vehicle.fixed_connector_id is not None:
            place(v, int(compatible[v][0]), arrival, arrival + max(length, 1))
            continue
        if length == 0:
            continue
        # Preferred window: the `length` consecutive slots holding most relaxed energy.
        stay = relaxed_power[v, arrival:departure]
        sums = np.convolve(stay, np.ones(length), mode="valid")
        start = arrival + int(np.argmax(sums >= sums.max() - 1e-9))
        wanted.append((start, -vehicle.priority, departure, v, length, speed))

    # Fast path for plentiful connectors: a never-used fastest connector on an idle charger is
    # the best candidate by the key below (nothing can rank ahead of it), found without scanning
    # every connector's whole stay.
    charger_idle = np.asarray(charger_load.sum(axis=1) == 0)
    connector_unused = np.asarray(~occupied.any(axis=1))
    for start, _, departure, v, length, speed in sorted(wanted, key=lambda w: w[:4]):
        arrival = int(va.arrival_slot[v])
        cands = compatible[v]
        fresh = np.flatnonzero((speed >= speed.max()) & connector_unused[cands] & charger_idle[charger_of[cands]])
        if fresh.size:
            c = int(cands[fresh[0]])
            place(v, c, start, start + length)
            connector_unused[c] = charger_idle[charger_of[c]] = False
            continue
        # The candidates' rows of `occupied`: a view when they are consecutive (e.g. "any connector").
        occ = occupied[cands[0] : cands[-1] + 1] if cands[-1] - cands[0] + 1 == cands.size else occupied[cands]
        free_rows = ~occ[:, start : start + length].any(axis=1)
        if free_rows.any():
            s, end = start, start + length  # the preferred window is free on some candidate
        else:
            busy = np.cumsum(np.pad(occ[:, arrival:departure], ((0, 0), (1, 0))), axis=1)
            starts = np.arange(arrival, departure - length + 1)
            # free[k, s]: candidate k is free for `length` slots from starts[s]
            free = busy[:, starts - arrival + length] - busy[:, starts - arrival] == 0
            if free.any():
                distance = np.where(free.any(axis=0), np.abs(starts - start), num_slots * 2)
                s = int(starts[np.argmin(distance)])
                end = s + length
            else:
                complete = False
                s, end = _longest_free_stretch(occ[:, arrival:departure])
                if end <= s:
                    continue  # no compatible connector is free at any time of its stay
                s, end = s + arrival, end + arrival
        # Fastest connector first; then one whose charger still has room for the relaxed power;
        # then the one least used during this vehicle's stay (so the window can stretch over the
        # stay when connectors are plentiful); then the least shared charger; then input order.
        # Each key is computed only for the candidates still tied on the ones before it.
        pick = np.flatnonzero(free_rows if s == start and end == start + length else ~occ[:, s:end].any(axis=1))
        pick = pick[speed[pick] >= speed[pick].max()]
        chargers = charger_of[cands[pick]]
        overflow = (charger_kw[chargers, s:end] + relaxed_power[v, s:end]).max(axis=1, initial=0.0) > charger_max_kw[
            chargers
        ] + 1e-6
        if not overflow.all():
            pick = pick[~overflow]
        busy_in_stay = occ[pick, arrival:departure].sum(axis=1)
        pick = pick[busy_in_stay == busy_in_stay.min()]
        load = charger_load[charger_of[cands[pick]], s:end].max(axis=1)
        c = int(cands[pick[np.argmin(load)]])
        place(v, c, s, end)
        connector_unused[c] = charger_idle[charger_of[c]] = False

    _stretch_into_free_time(result, va, len(connectors))
    return result, complete


def _longest_free_stretch(occupied: np.ndarray) -> tuple[int, int]:
    """The longest run of slots in which some candidate connector is free, as (start, end).

    The first longest, candidate by candidate, as a scan would find it.
    """
    free = np.pad(~occupied, ((0, 0), (1, 1)), constant_values=False).astype(np.int8)
    step = np.diff(free, axis=1)
    _, starts = np.nonzero(step == 1)  # row-major: runs in candidate order, then in time
    _, ends = np.nonzero(step == -1)
    if not starts.size:
        return (0, 0)
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest])


def _stretch_into_free_time(result: Assignment, va: VehicleArrays, num_connectors: int) -> None:
    """Extend each window to the neighbouring windows on its connector or to the vehicle's stay."""
    for c in range(num_connectors):
        on_c = sorted(np.flatnonzero(result.connector == c), key=lambda v: result.start[v])
        for k, v in enumerate(on_c):
            previous_end = result.end[on_c[k - 1]] if k > 0 else 0
            next_start = result.start[on_c[k + 1]] if k + 1 < len(on_c) else np.iinfo(int).max
            result.start[v] = max(int(va.arrival_slot[v]), int(previous_end))
            result.end[v] = min(int(va.departure_slot[v]), int(next_start))


def capacity_assign(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    *,
    latest_departure_first: bool = False,
    count_waiting_wear: bool = False,
) -> Assignment:
    """Windows built against the site limit itself, without the relaxation: a second candidate.

    The relaxation-driven greedy (``assign_connectors``) follows where the relaxed power sits; with
    scarce connectors its profiles are often split between early and late cheap slots (the bulk
    early, a top-up just before departure for the high-SoC wear), which no single window can follow,
    and buses are pushed into dear evening hours. Here vehicles - those already plugged in first,
    then earliest departure, higher priority - each take the window, on a free compatible
    connector, that delivers their energy cheapest with what the vehicles before them left of the
    site limit (below every demand charge's peak) and of the charger, as short as that allows;
    windows are then stretched into free connector time. ``solve`` keeps whichever candidate's
    re-solved plan is cheaper.
    """
    connectors = instance.connectors()
    charger_index = {ch.id: k for k, ch in enumerate(instance.chargers)}
    charger_of = np.array([charger_index[ch.id] for ch, _ in connectors], dtype=int)
    connector_kw = connector_max_kw(instance)
    num_vehicles, num_slots = len(instance.vehicles), instance.num_slots
    site_left = free_site_kw(instance)
    charger_left = np.repeat(
        np.array([ch.max_kw for ch in instance.chargers], dtype=float).reshape(-1, 1), num_slots, axis=1
    )
    occupied = np.zeros((len(connectors), num_slots), dtype=bool)
    price = np.asarray(instance.energy_price_mxn_per_kwh, dtype=float)
    gain = va.efficiency * instance.slot_hours
    result = Assignment(np.full(num_vehicles, -1), np.zeros(num_vehicles, int), np.zeros(num_vehicles, int))
    order = sorted(
        range(num_vehicles),
        key=lambda v: (
            instance.vehicles[v].fixed_connector_id is None,
            -int(va.departure_slot[v]) if latest_departure_first else int(va.departure_slot[v]),
            -instance.vehicles[v].priority,
            int(va.arrival_slot[v]),
        ),
    )
    wear = instance.wear

    def waiting_wear_per_slot(v: int) -> float:
        # What the high-SoC wear costs per slot the vehicle waits, charged to its target, after its window.
        held = max(float(va.target_kwh[v]) - wear.high_soc_threshold_pct / 100.0 * float(va.capacity_kwh[v]), 0.0)
        return wear.high_soc_mxn_per_kwh_h * instance.slot_hours * held

    for v in order:
        arrival, departure = int(va.arrival_slot[v]), int(va.departure_slot[v])
        cands = compatible[v]
        need_kwh = float(max(va.target_kwh[v] - va.initial_kwh[v], 0.0))
        if not cands.size or departure <= arrival:
            continue
        lines = taper_lines(instance.vehicles[v])
        max_kw = np.minimum(float(va.max_kw[v]), connector_kw[cands])
        # The fastest compatible connectors first; slower ones only if none of those is free.
        for speed in np.unique(max_kw)[::-1]:
            placed = _place_cheapest_window(
                v,
                cands[max_kw == speed],
                _windows_by_cost(
                    site_left[arrival:departure],
                    price[arrival:departure],
                    float(speed),
                    lines,
                    float(va.initial_kwh[v]),
                    need_kwh,
                    float(va.penalty_mxn_per_kwh[v]),
                    float(gain[v]),
                    instance.slot_hours,
                    at_start=instance.vehicles[v].fixed_connector_id is not None,
                    hold_mxn_per_slot=waiting_wear_per_slot(v) if count_waiting_wear else 0.0,
                ),
                arrival,
                occupied,
                site_left,
                charger_left,
                charger_of,
                result,
            )
            if placed:
                break
    _stretch_into_free_time(result, va, len(connectors))
    return result


def _place_cheapest_window(
    v: int,
    cands: np.ndarray,
    windows: Iterator[tuple[int, int, np.ndarray]],
    arrival: int,
    occupied: np.ndarray,
    site_left: np.ndarray,
    charger_left: np.ndarray,
    charger_of: np.ndarray,
    result: Assignment,
) -> bool:
    """Take the first of ``windows`` (cheapest first, costed with the site headroom left and the
    chargers assumed to have room) with a free connector among ``cands`` whose charger does have
    the room; record it and what it uses. Returns whether one was found."""
    for start, end, power in windows:
        s, e = arrival + start, arrival + end
        usable = cands[~occupied[cands, s:e].any(axis=1)]
        if not usable.size:
            continue
        room = (charger_left[charger_of[usable], s:e] >= power - 1e-6).all(axis=1)
        if not room.any():
            continue
        c = int(usable[np.argmax(room)])
        occupied[c, s:e] = True
        site_left[s:e] -= power
        charger_left[charger_of[c], s:e] -= power
        result.connector[v], result.start[v], result.end[v] = c, s, e
        return True
    return False


def _windows_by_cost(
    limit_kw: np.ndarray,
    price: np.ndarray,
    max_kw: float,
    lines: list[tuple[float, float]],
    initial_kwh: float,
    need_kwh: float,
    penalty: float,
    gain: float,
    hours: float,
    *,
    at_start: bool,
    hold_mxn_per_slot: float = 0.0,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Windows of a stay, the shortest delivering the energy from each start, cheapest first.

    Cost = energy price of what the window delivers + the shortfall penalty on what it cannot;
    ties: shorter, then later. ``at_start``: only windows from the stay's first slot (a vehicle
    already plugged in). Yields (start, end, power per window slot), relative to the stay.
    """
    stay = limit_kw.size
    deliverable = np.minimum(np.maximum(limit_kw, 0.0), max_kw)
    reach = np.concatenate([[0.0], np.cumsum(deliverable) * gain])
    starts = np.zeros(1, dtype=int) if at_start else np.arange(stay)
    # The shortest window that could deliver the energy before the taper (the taper-exact one is
    # never shorter).
    reached = np.searchsorted(reach, reach[starts] + need_kwh - 1e-6)
    shortest = np.minimum(np.maximum(reached - starts, 1), stay - starts)
    # Charging as fast as possible from every start at once (``fastest_charge_kw``, one row per start,
    # column = slots since the start): a window's power is its first slots' (it stops at the target).
    power = fastest_charge_from_every_start(deliverable, starts, lines, initial_kwh, initial_kwh + need_kwh, gain)
    delivered = np.cumsum(power, axis=1) * gain
    enough = delivered >= need_kwh - 1e-6
    first_enough = np.where(enough.any(axis=1), np.argmax(enough, axis=1) + 1, stay - starts)
    length = np.minimum(np.maximum(shortest, first_enough), stay - starts)
    rows = np.arange(starts.size)
    delivered_in = delivered[rows, length - 1]
    offset = np.arange(stay)
    inside = offset[None, :] < length[:, None]
    slot_price = np.where(inside, price[np.minimum(starts[:, None] + offset[None, :], stay - 1)], 0.0)
    cost = (slot_price * power).sum(axis=1) * hours
    cost += penalty * np.maximum(need_kwh - delivered_in, 0.0)
    cost += hold_mxn_per_slot * (stay - starts - length)
    # Cheapest first; ties: shorter, then later.
    for k in sorted(rows.tolist(), key=lambda k: (round(float(cost[k]), 6), int(length[k]), -int(starts[k]))):
        yield int(starts[k]), int(starts[k] + length[k]), power[k, : length[k]].copy()
