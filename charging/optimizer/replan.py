"""Re-plan from "now": keep what already happened, solve only the rest of the night.

Everything before ``now_slot`` is frozen as the previous plan (or the measured SoC, when given)
says; the new instance starts at ``now_slot``:

- vehicles that have left are dropped; the others keep their requirements, with the energy
  delivered so far added to ``energy_delivered_kwh`` (or their SoC replaced by the measurement);
- a vehicle plugged in at ``now`` stays on its connector (``fixed_connector_id``); one that was
  unplugged earlier may be given a new window if the rest of the night needs it;
- the month's peak so far includes tonight's demand-slot peak up to ``now`` (it is already paid).

The remainder is a smaller LP than the full night (only the remaining slots and vehicles, most
of them pinned to their connector), which is what makes a re-plan fast: no model is reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from .instance import Instance
from .plan import Plan
from .solve import solve


@dataclass
class Replan:
    instance: Instance  # the remainder: slot 0 is the previous instance's `now_slot`
    plan: Plan


def remaining_instance(
    instance: Instance, plan: Plan, now_slot: int, *, soc_now_pct: Mapping[str, float] | None = None
) -> Instance:
    """The rest of the night as its own instance (see the module docstring)."""
    if not 0 <= now_slot < instance.num_slots:
        raise ValueError(f"now_slot must be within 0..{instance.num_slots - 1}, got {now_slot}")
    soc_now_pct = soc_now_pct or {}
    hours = instance.slot_hours
    by_id = {vp.vehicle_id: vp for vp in plan.vehicles}
    past_total_kw = np.zeros(now_slot)
    vehicles = []
    for vehicle in instance.vehicles:
        vp = by_id.get(vehicle.id)
        past_kw = np.asarray(vp.power_kw[:now_slot]) if vp is not None else np.zeros(now_slot)
        past_total_kw += past_kw
        if vehicle.departure_slot <= now_slot:
            continue
        plugged_now = (
            vp is not None
            and vp.connector_id is not None
            and vp.plug_in_slot is not None
            and vp.plug_in_slot <= now_slot < (vp.unplug_slot or 0)
        )
        changes = {
            "arrival_slot": max(0, vehicle.arrival_slot - now_slot),
            "departure_slot": vehicle.departure_slot - now_slot,
            "fixed_connector_id": vp.connector_id if plugged_now else vehicle.fixed_connector_id,
        }
        if vehicle.id in soc_now_pct:
            changes.update(arrival_soc_pct=float(soc_now_pct[vehicle.id]), energy_delivered_kwh=0.0)
        else:
            changes["energy_delivered_kwh"] = vehicle.energy_delivered_kwh + float(past_kw.sum() * hours)
        vehicles.append(replace(vehicle, **changes))

    demand = np.array(instance.demand_mask())[:now_slot]
    past_load_kw = np.array(instance.base_load())[:now_slot] + past_total_kw
    month_peak_kw = max(instance.month_peak_kw, float(past_load_kw[demand].max(initial=0.0)))

    def rest(series):
        return tuple(series[now_slot:]) if series is not None else None

    return replace(
        instance,
        horizon_start=instance.slot_start(now_slot),
        num_slots=instance.num_slots - now_slot,
        site_limit_kw=rest(instance.site_limit_kw),
        energy_price_mxn_per_kwh=rest(instance.energy_price_mxn_per_kwh),
        demand_slots=rest(instance.demand_slots),
        base_load_kw=rest(instance.base_load_kw),
        month_peak_kw=month_peak_kw,
        vehicles=tuple(vehicles),
    )


def replan(
    instance: Instance,
    plan: Plan,
    now_slot: int,
    *,
    soc_now_pct: Mapping[str, float] | None = None,
    method: str = "lp",
) -> Replan:
    """Freeze slots before ``now_slot`` and re-solve the rest; returns the remainder and its plan.

    ``soc_now_pct`` (vehicle id -> measured SoC %) overrides what the previous plan implies.
    """
    remainder = remaining_instance(instance, plan, now_slot, soc_now_pct=soc_now_pct)
    return Replan(remainder, solve(remainder, method))
