"""What a depot does without the optimizer, to measure the optimizer against.

Both baselines simulate the night slot by slot with the same physics as the LP (taper checked over
the whole slot, efficiency, max SoC) and the same depot practice: a vehicle is plugged into
a free compatible connector (the fastest one) as soon as it is present and one is free, charges
until it reaches its *required* SoC (not 100 %: the optimizer should win by timing, not by
charging less), and is then unplugged, freeing the connector for the next vehicle in the queue.

- ``uncontrolled``: queue and power by arrival order, full power; it ignores the site limit (that
  is what happens without smart charging: the evaluator reports the site-limit violations).
  Chargers still enforce their own limit.
- ``earliest_deadline_first``: queue and power by departure (then priority), within the site limit.
- ``least_laxity_first``: queue by arrival; in every slot, power to the least laxity first (hours
  left before departure minus the hours still needed at the vehicle's full power), within the site
  limit. The classic online rule for unscheduled arrivals (acnportal's ``LeastLaxityFirst``): it
  knows nothing of the future and nothing of prices.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .evaluate import finalize
from .instance import Instance, Vehicle
from .plan import Plan, PlanTotals, SolverInfo, VehiclePlan
from .quantities import compatible_connectors, connector_max_kw, effective_max_kw, max_slot_power_kw, vehicle_arrays
from .reasons import explain_shortfalls


def uncontrolled(instance: Instance) -> Plan:
    """Plug in on arrival, charge at full power to the required SoC, ignore the site limit."""
    return _simulate(instance, "uncontrolled", order=lambda v: (v.arrival_slot,), respect_site_limit=False)


def earliest_deadline_first(instance: Instance) -> Plan:
    """Earliest departure first (then higher priority), sharing the site limit in that order."""
    return _simulate(
        instance, "edf", order=lambda v: (v.departure_slot, -v.priority, v.arrival_slot), respect_site_limit=True
    )


def least_laxity_first(instance: Instance) -> Plan:
    """Least laxity first in every slot, within the site limit (see the module docstring)."""
    return _simulate(instance, "llf", order=lambda v: (v.arrival_slot,), respect_site_limit=True, by_laxity=True)


def _simulate(
    instance: Instance,
    method: str,
    *,
    order: Callable[[Vehicle], tuple[int, ...]],
    respect_site_limit: bool,
    by_laxity: bool = False,
) -> Plan:
    started = time.perf_counter()
    va = vehicle_arrays(instance)
    vehicles = instance.vehicles
    connectors = instance.connectors()
    charger_index = {ch.id: k for k, ch in enumerate(instance.chargers)}
    connector_kw = connector_max_kw(instance)
    # Fastest first (stable: input order among equals).
    compatible = [
        c[np.argsort(-np.minimum(v.max_charge_kw, connector_kw[c]), kind="stable")].tolist()
        for v, c in zip(vehicles, compatible_connectors(instance), strict=True)
    ]
    rank = sorted(range(len(vehicles)), key=lambda i: (*order(vehicles[i]), i))
    gain = va.efficiency * instance.slot_hours
    energy = va.initial_kwh.copy()
    power = np.zeros((len(vehicles), instance.num_slots))
    occupant = [-1] * len(connectors)
    connector_of = [-1] * len(vehicles)
    plug_in: list[int | None] = [None] * len(vehicles)
    unplug: list[int | None] = [None] * len(vehicles)

    def done(i: int) -> bool:
        return bool(energy[i] >= va.target_kwh[i] - 1e-9)

    for t in range(instance.num_slots):
        for c, i in enumerate(occupant):  # leave when departing or charged
            if i >= 0 and (t >= va.departure_slot[i] or done(i)):
                occupant[c], unplug[i] = -1, t
        for i in rank:  # plug in whoever is waiting, in queue order
            waiting = plug_in[i] is None and va.arrival_slot[i] <= t < va.departure_slot[i] and not done(i)
            if waiting:
                free = [c for c in compatible[i] if occupant[c] < 0]
                if free:
                    occupant[free[0]], connector_of[i], plug_in[i] = i, free[0], t
        site_left = instance.site_limit_kw[t] if respect_site_limit else np.inf
        charger_left = [ch.max_kw for ch in instance.chargers]
        sharing = rank
        if by_laxity:
            hours_left = (va.departure_slot - t) * instance.slot_hours
            hours_needed = np.maximum(va.target_kwh - energy, 0.0) / (va.efficiency * np.maximum(va.max_kw, 1e-9))
            laxity = hours_left - hours_needed
            sharing = sorted(rank, key=lambda i: (laxity[i], i))
        for i in sharing:  # share power in queue (or laxity) order
            c = connector_of[i]
            if c < 0 or occupant[c] != i:
                continue
            charger, connector = connectors[c]
            k = charger_index[charger.id]
            limit_kw = min(effective_max_kw(vehicles[i], charger, connector), charger_left[k], site_left)
            need_kw = (va.target_kwh[i] - energy[i]) / gain[i]
            p = min(
                need_kw,
                max_slot_power_kw(
                    vehicles[i], energy[i], limit_kw, va.max_kwh[i], va.efficiency[i], instance.slot_hours
                ),
            )
            p = max(p, 0.0)
            power[i, t] = p
            energy[i] += gain[i] * p
            charger_left[k] -= p
            site_left -= p
    for i in occupant:  # still plugged in at the end of the horizon
        if i >= 0:
            unplug[i] = min(int(va.departure_slot[i]), instance.num_slots)
    plan = Plan(
        vehicles=[
            VehiclePlan(
                vehicle_id=v.id,
                connector_id=connectors[connector_of[i]][1].id if connector_of[i] >= 0 else None,
                plug_in_slot=plug_in[i],
                unplug_slot=unplug[i],
                power_kw=power[i].tolist(),
            )
            for i, v in enumerate(vehicles)
        ],
        totals=PlanTotals(),
        solver=SolverInfo(method=method, status="simulated", solve_time_s=time.perf_counter() - started),
        horizon_start=instance.horizon_start.isoformat(),
        slot_minutes=instance.slot_minutes,
    )
    return explain_shortfalls(instance, finalize(instance, plan))
