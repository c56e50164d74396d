"""``{% load plan_sources %}{% plan_value_sources plan as rows %}``: each vehicle of a plan with where its arrival
SoC and its kWh/km came from, read for people in the depot's time zone (the plan page's "Sources" table)."""

from __future__ import annotations

import datetime as dt

from django import template

from charging import measured
from charging.models import ChargingPlan

register = template.Library()


@register.simple_tag
def plan_value_sources(plan: ChargingPlan) -> list[dict]:
    zone = plan.depot.zone
    rows = []
    for charge in plan.charges.select_related("vehicle").order_by("departure_at", "vehicle__fleet_number"):
        stored = charge.sources or {}
        arrival, consumption = stored.get("arrival_soc"), stored.get("consumption")
        at = (arrival or {}).get("at")
        rows.append(
            {
                "fleet_number": charge.vehicle.fleet_number,
                "arrival_soc_pct": charge.arrival_soc_pct,
                "arrival_source": measured.arrival_source_label(arrival, zone),
                "measured_at": dt.datetime.fromisoformat(at) if at else None,
                "consumption_source": measured.consumption_source_label(consumption),
            }
        )
    return rows
