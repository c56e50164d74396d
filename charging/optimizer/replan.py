"""Re-plan from "now": keep what already happened, solve only the rest of the night.

Everything before ``now_slot`` is frozen as the previous plan (or the measured SoC, when given)
says; the new instance starts at ``now_slot``:

- vehicles that have left are dropped; the others keep their requirements, with the energy
  delivered so far added to ``energy_delivered_kwh`` (or their SoC replaced by the measurement);
- a vehicle plugged in at ``now`` stays on its connector (``fixed_connector_id``) from now for as
  long as it needs; one that was unplugged earlier may be given a new window if the rest of the
  night needs it; the old plan's windows are tried as an assignment too (``remaining_windows``);
- each demand charge's month peak so far includes tonight's peak in its slots up to ``now`` (it
  is already paid).

The remainder is a smaller LP than the full night (only the remaining slots and vehicles, most
of them pinned to their connector), which is what makes a re-plan fast: no model is reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from .demand import DemandCharge
from .instance import Instance
from .plan import Plan
from .solve import REPLAN_SEARCH, solve

T = TypeVar("T")


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
        changes: dict[str, Any] = {
            "arrival_slot": max(0, vehicle.arrival_slot - now_slot),
            "departure_slot": vehicle.departure_slot - now_slot,
            "fixed_connector_id": vp.connector_id if plugged_now and vp is not None else vehicle.fixed_connector_id,
        }
        if vehicle.id in soc_now_pct:
            changes.update(arrival_soc_pct=float(soc_now_pct[vehicle.id]), energy_delivered_kwh=0.0)
        else:
            changes["energy_delivered_kwh"] = vehicle.energy_delivered_kwh + float(past_kw.sum() * hours)
        vehicles.append(replace(vehicle, **changes))

    past_load_kw = np.array(instance.base_load())[:now_slot] + past_total_kw

    # The top-level charge as a charge even when it has no price: its slots still say where peak_kw is measured.
    top_level = DemandCharge(
        instance.demand_charge_name, instance.demand_charge_mxn_per_kw, instance.demand_slots, instance.month_peak_kw
    )

    def rest(series: tuple[T, ...] | None) -> tuple[T, ...] | None:
        return tuple(series[now_slot:]) if series is not None else None

    return replace(
        instance,
        horizon_start=instance.slot_start(now_slot),
        num_slots=instance.num_slots - now_slot,
        site_limit_kw=tuple(instance.site_limit_kw[now_slot:]),
        energy_price_mxn_per_kwh=tuple(instance.energy_price_mxn_per_kwh[now_slot:]),
        demand_slots=rest(instance.demand_slots),
        base_load_kw=rest(instance.base_load_kw),
        # What the night already drew before now counts as paid for the rest of it.
        month_peak_kw=top_level.paid_floor_kw(past_load_kw),
        additional_demand_charges=tuple(
            replace(c, slots=rest(c.slots), month_peak_kw=c.paid_floor_kw(past_load_kw))
            for c in instance.additional_demand_charges
        ),
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
    With ``auto``, the neighbourhood search runs with the re-plan's smaller work limits
    (``solve.REPLAN_SEARCH``): a re-plan runs while buses wait.
    """
    remainder = remaining_instance(instance, plan, now_slot, soc_now_pct=soc_now_pct)
    hint = remaining_windows(plan, now_slot)
    return Replan(remainder, solve(remainder, method, windows_hint=hint, search=REPLAN_SEARCH))


def remaining_windows(plan: Plan, now_slot: int) -> dict[str, tuple[str, int, int]]:
    """The plan's connector windows that end after ``now_slot``, in the remainder's slots.

    ``solve(windows_hint=...)`` tries them as a connector assignment: with scarce connectors the
    greedy alone can strand buses the old windows served (it sees only the remainder's relaxation).
    """
    windows = {}
    for vp in plan.vehicles:
        if vp.connector_id is None or vp.plug_in_slot is None or vp.unplug_slot is None or vp.unplug_slot <= now_slot:
            continue
        windows[vp.vehicle_id] = (vp.connector_id, max(vp.plug_in_slot - now_slot, 0), vp.unplug_slot - now_slot)
    return windows
