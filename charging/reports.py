"""Reports on charging sessions: a night's plan against what happened, and monthly energy, cost and peak.

Selectors: plain dicts out, for the API (JSON or CSV) and the admin. Callers pass the sessions queryset
already narrowed to the user (``charging.sessions.sessions_visible_to``); depots and vehicles are looked up by
the caller. A depot's figures count the sessions at the depot, visiting vehicles' included (its chargers drew
the energy); a vehicle's count its sessions wherever it charged.

How the figures are made:
- a session's load is its average power (energy / duration) spread evenly over its duration; a 15-minute
  slot's load is the energy all sessions drew in it / 0.25 h;
- a site's peak is the highest slot of base load (the depot's hourly profile) + sessions' load, which is
  how the optimizer measures a plan's peak; a night's peak counts only the slots of the tariff's
  demand-charge periods (GDMTH punta), as the plan's does; the charging peak is sessions' load alone;
- a night is the plan's horizon (12:00 local on the service night to 12:00 the next day); a session
  belongs to the night or month in which it *started*, in the depot's local time (a vehicle's report: its
  home depot's zone, else the default zone).
- demand charges of a month: each of the tariff's charges x the month's peak in its periods (all hours when
  it names none). Only charging sessions and the base load are known here, so this is an estimate.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db.models import QuerySet

from charging.models import ChargingPlan, ChargingSession
from charging.planning import night_horizon, tariff_night
from charging.readiness import REACHED_SOC_TOLERANCE_PCT
from charging.sessions import session_zone
from charging.tariffs import TariffError, demand_charges_on, price_slots
from fleet.models import Depot, Vehicle

SLOT_MINUTES = 15
SLOT = dt.timedelta(minutes=SLOT_MINUTES)
SLOT_HOURS = SLOT_MINUTES / 60.0
CENT = Decimal("0.01")


# --- Slot loads ---------------------------------------------------------------------------------------------


def slot_loads_kw(sessions, start: dt.datetime, num_slots: int) -> np.ndarray:
    """Average charging power (kW) in each of ``num_slots`` 15-minute slots from ``start``.

    Each session draws its energy evenly from its start to its end; a slot's load is what all sessions drew in
    it divided by the slot's duration.
    """
    loads = np.zeros(num_slots)
    start_utc = start.astimezone(dt.UTC)
    for session in sessions:
        begins, ends = session.started_at.astimezone(dt.UTC), session.ended_at.astimezone(dt.UTC)
        kw = session.average_kw
        first = max(int((begins - start_utc) // SLOT), 0)
        last = min(int(-((start_utc - ends) // SLOT)), num_slots)  # ceiling
        for index in range(first, last):
            slot_start = start_utc + index * SLOT
            overlap = min(ends, slot_start + SLOT) - max(begins, slot_start)
            if overlap > dt.timedelta(0):
                loads[index] += kw * (overlap / SLOT)
    return loads


def slot_starts_utc(start: dt.datetime, num_slots: int) -> list[dt.datetime]:
    start_utc = start.astimezone(dt.UTC)
    return [start_utc + index * SLOT for index in range(num_slots)]


def base_loads_kw(depot: Depot, starts_utc: list[dt.datetime]) -> np.ndarray:
    zone = depot.zone
    return np.array([depot.base_load_kw_at_hour(moment.astimezone(zone).hour) for moment in starts_utc])


def _peak(loads: np.ndarray, starts_utc: list[dt.datetime], zone, mask: np.ndarray | None = None):
    """(peak kW, local start of its slot) over the slots in ``mask`` (all if None); (0, None) if no slot."""
    candidates = loads if mask is None else np.where(mask, loads, -np.inf)
    if not len(candidates) or not np.isfinite(candidates).any():
        return 0.0, None
    index = int(np.argmax(candidates))
    return round(float(candidates[index]), 3), starts_utc[index].astimezone(zone)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _cost_summary(sessions: list[ChargingSession]) -> dict:
    """Energy, priced cost, and what could not be priced (no tariff)."""
    priced = [(s.cost, s.currency) for s in sessions if s.cost is not None]
    currencies = sorted({currency for _cost, currency in priced})
    return {
        "energy_kwh": round(sum(s.energy_kwh for s in sessions), 3),
        "energy_cost": _money(sum((cost for cost, _currency in priced), Decimal(0))) if len(currencies) <= 1 else None,
        "currency": currencies[0] if len(currencies) == 1 else ("" if not currencies else "mixed"),
        "sessions": len(sessions),
        "sessions_without_cost": len(sessions) - len(priced),
        "uncosted_energy_kwh": round(sum(s.energy_kwh for s in sessions if s.cost is None), 3),
    }


# --- Plan vs actual for one depot night ---------------------------------------------------------------------


def night_sessions(sessions: QuerySet[ChargingSession], depot: Depot, service_night: dt.date) -> list:
    horizon = night_horizon(depot, service_night, SLOT_MINUTES)
    return list(
        sessions.filter(depot=depot, started_at__gte=horizon.start, started_at__lt=horizon.end)
        .select_related("vehicle")
        .order_by("started_at", "pk")
    )


def plan_vs_actual(*, depot: Depot, service_night: dt.date, sessions: QuerySet[ChargingSession]) -> dict:
    """The night's active plan against the sessions that started in its horizon, for the depot and per vehicle.

    A re-planned night's active plan covers the night from the re-plan on: its planned energy is what was
    still to come then (``plan_trigger`` and ``plan_horizon_start`` say so).
    """
    horizon = night_horizon(depot, service_night, SLOT_MINUTES)
    zone = depot.zone
    plan = (
        ChargingPlan.objects.filter(depot=depot, service_night=service_night, status=ChargingPlan.Status.ACTIVE)
        .defer("instance")
        .first()
    )
    charges = list(plan.charges.select_related("vehicle").order_by("departure_at", "vehicle_id")) if plan else []
    actual = night_sessions(sessions, depot, service_night)

    starts = slot_starts_utc(horizon.start, horizon.num_slots)
    charging = slot_loads_kw(actual, horizon.start, horizon.num_slots)
    site = charging + base_loads_kw(depot, starts)
    try:
        _prices, demand_charges = tariff_night(depot, horizon)
        # The peak is measured on the night's main demand charge, as the plan's ``peak_kw`` is.
        demand_slots = demand_charges.main.slots if demand_charges.main else None
    except TariffError:
        demand_slots = None
    demand_mask = np.array(demand_slots, dtype=bool) if demand_slots is not None else None
    actual_peak_kw, actual_peak_at = _peak(site, starts, zone, demand_mask)
    charging_peak_kw, charging_peak_at = _peak(charging, starts, zone)
    summary = _cost_summary(actual)

    by_vehicle: dict[int, list[ChargingSession]] = defaultdict(list)
    for session in actual:
        by_vehicle[session.vehicle_id].append(session)
    rows = []
    for charge in charges:
        rows.append(_vehicle_row(charge.vehicle, charge, by_vehicle.pop(charge.vehicle_id, [])))
    for vehicle_sessions in by_vehicle.values():  # charged tonight without being in the plan
        rows.append(_vehicle_row(vehicle_sessions[0].vehicle, None, vehicle_sessions))

    return {
        "depot": depot.pk,
        "depot_code": depot.code,
        "service_night": service_night,
        "time_zone": depot.time_zone,
        "window_start": horizon.start,
        "window_end": horizon.end,
        "plan": plan.pk if plan else None,
        "plan_version": plan.version if plan else None,
        "plan_trigger": plan.trigger if plan else "",
        "plan_horizon_start": plan.horizon_start.astimezone(zone) if plan else None,
        "currency": (depot.tariff.currency if depot.tariff else "") or summary["currency"],
        "planned_energy_kwh": round(plan.energy_kwh, 3) if plan else None,
        "planned_energy_cost": plan.energy_cost if plan else None,
        "planned_demand_cost": plan.demand_cost if plan else None,
        "planned_peak_kw": round(plan.peak_kw, 3) if plan else None,
        "planned_charging_peak_kw": _planned_charging_peak_kw(charges) if plan else None,
        "actual_energy_kwh": summary["energy_kwh"],
        "actual_energy_cost": summary["energy_cost"],
        "actual_peak_kw": actual_peak_kw,
        "actual_peak_at": actual_peak_at,
        "actual_charging_peak_kw": charging_peak_kw,
        "actual_charging_peak_at": charging_peak_at,
        "sessions": summary["sessions"],
        "sessions_without_cost": summary["sessions_without_cost"],
        "vehicles": rows,
    }


def _planned_charging_peak_kw(charges) -> float:
    """The highest planned charging power of the night (sum of the vehicles' planned kW in a slot)."""
    total = np.zeros(max((len(c.power_kw) for c in charges), default=0))
    for charge in charges:
        total[: len(charge.power_kw)] += np.asarray(charge.power_kw, dtype=float)
    return round(float(total.max(initial=0.0)), 3)


def _vehicle_row(vehicle: Vehicle, charge, sessions: list[ChargingSession]) -> dict:
    summary = _cost_summary(sessions)
    first, last = (sessions[0], sessions[-1]) if sessions else (None, None)
    end_soc = last.end_soc_pct if last else None
    planned_energy = round(charge.energy_kwh, 3) if charge else None
    return {
        "vehicle": vehicle.pk,
        "fleet_number": vehicle.fleet_number,
        "planned_energy_kwh": planned_energy,
        "planned_departure_soc_pct": charge.departure_soc_pct if charge else None,
        "required_soc_pct": charge.required_soc_pct if charge else None,
        "planned_ready": charge.ready if charge else None,
        "actual_energy_kwh": summary["energy_kwh"],
        "actual_energy_cost": summary["energy_cost"],
        "sessions": summary["sessions"],
        "actual_start_soc_pct": first.start_soc_pct if first else None,
        "actual_end_soc_pct": end_soc,
        "energy_difference_kwh": (
            round(summary["energy_kwh"] - planned_energy, 3) if planned_energy is not None else None
        ),
        "soc_difference_pct": (
            round(end_soc - charge.departure_soc_pct, 2) if charge and end_soc is not None else None
        ),
        "reached_required_soc": (end_soc >= charge.required_soc_pct - REACHED_SOC_TOLERANCE_PCT)
        if charge and end_soc is not None
        else None,
    }


# --- Monthly ------------------------------------------------------------------------------------------------


def month_window(month: dt.date, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime, int]:
    """Local start and end of the month ``month`` (any day in it) and its number of 15-minute slots."""
    first = month.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    start = dt.datetime.combine(first, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(following, dt.time(0), tzinfo=zone)
    return start, end, int((end.astimezone(dt.UTC) - start.astimezone(dt.UTC)) // SLOT)


def _demand_charges(depot: Depot, site: np.ndarray, start: dt.datetime, num_slots: int) -> list[dict]:
    """Each of the tariff's demand charges on the month's peak in its periods (the month starts with nothing
    paid), billed by the rule the planner and the optimizer price demand with."""
    tariff = depot.tariff
    if tariff is None:
        return []
    try:
        charges = demand_charges_on(tariff, price_slots(tariff, start, SLOT_MINUTES, num_slots))
    except TariffError:
        return []
    return [
        {
            "name": line.name,
            "periods": list(line.periods),
            "peak_kw": round(line.peak_kw, 3),
            "price_per_kw_month": Decimal(repr(line.mxn_per_kw)),
            "cost": _money(Decimal(repr(line.cost_mxn))),
        }
        for line in sorted(charges.bill(site), key=lambda line: line.name)
    ]


def monthly_depot(*, depot: Depot, month: dt.date, sessions: QuerySet[ChargingSession]) -> dict:
    """A depot's month: energy, energy cost, charging and site peaks, demand charges, and each vehicle's share."""
    zone = depot.zone
    start, end, num_slots = month_window(month, zone)
    rows = list(
        sessions.filter(depot=depot, started_at__gte=start, started_at__lt=end)
        .select_related("vehicle")
        .order_by("started_at", "pk")
    )
    starts = slot_starts_utc(start, num_slots)
    charging = slot_loads_kw(rows, start, num_slots)
    site = charging + base_loads_kw(depot, starts)
    peak_kw, peak_at = _peak(site, starts, zone)
    charging_peak_kw, charging_peak_at = _peak(charging, starts, zone)
    demand = _demand_charges(depot, site, start, num_slots)
    summary = _cost_summary(rows)
    demand_cost = _money(sum((d["cost"] for d in demand), Decimal(0)))
    by_vehicle: dict[int, list[ChargingSession]] = defaultdict(list)
    for session in rows:
        by_vehicle[session.vehicle_id].append(session)
    return {
        "scope": "depot",
        "depot": depot.pk,
        "depot_code": depot.code,
        "month": start.strftime("%Y-%m"),
        "time_zone": depot.time_zone,
        "currency": (depot.tariff.currency if depot.tariff else "") or summary["currency"],
        "energy_kwh": summary["energy_kwh"],
        "energy_cost": summary["energy_cost"],
        "demand_cost": demand_cost,
        "total_cost": summary["energy_cost"] + demand_cost if summary["energy_cost"] is not None else None,
        "sessions": summary["sessions"],
        "sessions_without_cost": summary["sessions_without_cost"],
        "uncosted_energy_kwh": summary["uncosted_energy_kwh"],
        "charging_peak_kw": charging_peak_kw,
        "charging_peak_at": charging_peak_at,
        "peak_kw": peak_kw,
        "peak_at": peak_at,
        "demand_charges": demand,
        "vehicles": [
            _vehicle_month_row(vehicle_sessions, start, num_slots)
            for vehicle_sessions in sorted(by_vehicle.values(), key=lambda s: s[0].vehicle.fleet_number)
        ],
    }


def _vehicle_month_row(sessions: list[ChargingSession], start: dt.datetime, num_slots: int) -> dict:
    vehicle = sessions[0].vehicle
    summary = _cost_summary(sessions)
    return {
        "vehicle": vehicle.pk,
        "fleet_number": vehicle.fleet_number,
        "energy_kwh": summary["energy_kwh"],
        "energy_cost": summary["energy_cost"],
        "sessions": summary["sessions"],
        "sessions_without_cost": summary["sessions_without_cost"],
        "charging_peak_kw": round(float(slot_loads_kw(sessions, start, num_slots).max(initial=0.0)), 3),
    }


def monthly_vehicle(*, vehicle: Vehicle, month: dt.date, sessions: QuerySet[ChargingSession]) -> dict:
    """A vehicle's month wherever it charged: totals, its own charging peak, and a line per place."""
    zone = session_zone(None, vehicle)
    start, end, num_slots = month_window(month, zone)
    rows = list(
        sessions.filter(vehicle=vehicle, started_at__gte=start, started_at__lt=end)
        .select_related("depot")
        .order_by("started_at", "pk")
    )
    starts = slot_starts_utc(start, num_slots)
    charging_peak_kw, charging_peak_at = _peak(slot_loads_kw(rows, start, num_slots), starts, zone)
    summary = _cost_summary(rows)
    by_place: dict[int | None, list[ChargingSession]] = defaultdict(list)
    for session in rows:
        by_place[session.depot_id].append(session)
    places = []
    for depot_id, place_sessions in sorted(by_place.items(), key=lambda item: (item[0] is None, item[0] or 0)):
        place = _cost_summary(place_sessions)
        place_depot = place_sessions[0].depot  # loaded with select_related: None away from depots
        places.append(
            {
                "depot": depot_id,
                "depot_code": place_depot.code if place_depot is not None else "away",
                "energy_kwh": place["energy_kwh"],
                "energy_cost": place["energy_cost"],
                "currency": place["currency"],
                "sessions": place["sessions"],
                "sessions_without_cost": place["sessions_without_cost"],
            }
        )
    return {
        "scope": "vehicle",
        "vehicle": vehicle.pk,
        "fleet_number": vehicle.fleet_number,
        "month": start.strftime("%Y-%m"),
        "time_zone": str(zone.key),
        "currency": summary["currency"],
        "energy_kwh": summary["energy_kwh"],
        "energy_cost": summary["energy_cost"],
        "sessions": summary["sessions"],
        "sessions_without_cost": summary["sessions_without_cost"],
        "uncosted_energy_kwh": summary["uncosted_energy_kwh"],
        "away_energy_kwh": round(sum(s.energy_kwh for s in rows if s.depot_id is None), 3),
        "charging_peak_kw": charging_peak_kw,
        "charging_peak_at": charging_peak_at,
        "places": places,
    }


# --- Flat rows for CSV --------------------------------------------------------------------------------------


def plan_vs_actual_rows(report: dict) -> list[dict]:
    """One row per vehicle, then the night's totals (``row`` says which)."""
    head = {"depot_code": report["depot_code"], "service_night": report["service_night"]}
    night = {k: v for k, v in report.items() if k not in ("vehicles", "depot_code", "service_night")}
    return [
        *({"row": "vehicle", **head, **vehicle} for vehicle in report["vehicles"]),
        {"row": "night", **head, **night},
    ]


def monthly_rows(report: dict) -> list[dict]:
    """Depot: one row per vehicle, then the depot's totals. Vehicle: one row per place, then its totals."""
    if report["scope"] == "depot":
        head = {"depot_code": report["depot_code"], "month": report["month"]}
        total = {k: v for k, v in report.items() if k not in ("vehicles", "demand_charges", "scope", *head)}
        return [
            *({"row": "vehicle", **head, **vehicle} for vehicle in report["vehicles"]),
            {"row": "depot", **head, **total},
        ]
    head = {"fleet_number": report["fleet_number"], "month": report["month"]}
    total = {k: v for k, v in report.items() if k not in ("places", "scope", *head)}
    return [
        *({"row": "place", **head, **place} for place in report["places"]),
        {"row": "vehicle", **head, **total},
    ]
