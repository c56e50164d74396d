"""The charging plan page of the admin: the night as charts and tables, re-plan, CSV and OCPP downloads.

The views are methods' bodies for ``ChargingPlanAdmin`` (charging/admin.py registers the URLs); they receive a
plan already narrowed to the user's depots by the admin's ``get_queryset``.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import slugify
from django.utils.translation import gettext as _

from charging import optimizer, readiness
from charging.models import Charger, ChargingPlan, Connector, PlannedCharge
from charging.plan_delivery import plan_delivery
from charging.selectors import charging_load_kw, night_costs, plan_demand_charges, site_demand_kw

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

OCPP_VERSIONS = ("1.6", "2.0.1")
logger = logging.getLogger(__name__)


def _slot_labels(plan: ChargingPlan) -> list[str]:
    # Stepped in UTC, read in the depot's zone: a daylight-saving night shows 02:00 twice (or skips it).
    start, zone = plan.horizon_start.astimezone(dt.UTC), plan.depot.zone
    step = dt.timedelta(minutes=plan.slot_minutes)
    return [(start + i * step).astimezone(zone).strftime("%H:%M") for i in range(plan.num_slots)]


def _connector_label(connector: Connector | None) -> str:
    return f"{connector.charger.name} #{connector.connector_id}" if connector else "—"


def readiness_level(charge: PlannedCharge) -> str:
    return readiness.readiness_level(
        shortfall_kwh=charge.shortfall_kwh,
        required_soc_pct=charge.required_soc_pct,
        departure_soc_pct=charge.departure_soc_pct,
    )


def plan_charges(plan: ChargingPlan) -> list[PlannedCharge]:
    return list(plan.charges.select_related("vehicle", "connector__charger").order_by("departure_at", "vehicle_id"))


VEHICLES_DRAWN_ALONE = 8  # the rest share one "other vehicles" band: a legend people can read


def plan_chart_data(plan: ChargingPlan, charges: list[PlannedCharge]) -> dict:
    """The night for Chart.js as plain lists: the base load and the charging power stacked (the vehicles that
    draw most on their own, the others as one band), the total site demand, the grid limit, the price, and a
    y-scale fitted to the demand (the grid limit stays on the chart only when it is near)."""
    instance = plan.instance or {}
    n = plan.num_slots
    base_load = [round(float(v), 1) for v in (instance.get("base_load_kw") or [0.0] * n)][:n]
    charging_limit = [float(v) for v in (instance.get("site_limit_kw") or [])][:n]
    grid_limit = [round(limit + base, 1) for limit, base in zip(charging_limit, base_load, strict=False)]
    drawing = sorted((c for c in charges if any(kw > 0 for kw in c.power_kw)), key=lambda c: -sum(c.power_kw[:n]))
    alone, others = drawing[:VEHICLES_DRAWN_ALONE], drawing[VEHICLES_DRAWN_ALONE:]
    vehicles: list[dict[str, Any]] = [
        {"label": c.vehicle.fleet_number, "power_kw": [round(kw, 1) for kw in c.power_kw[:n]]} for c in alone
    ]
    if others:
        vehicles.append(
            {
                "label": _("Other vehicles (%(n)d)") % {"n": len(others)},
                "power_kw": [round(v, 1) for v in charging_load_kw([c.power_kw for c in others], n)],
                "group": True,
            }
        )
    charging = charging_load_kw([c.power_kw for c in charges], n)
    total = [round(base + kw, 1) for base, kw in zip(base_load, charging, strict=False)]
    peak = max(total, default=0.0)
    lowest_limit = min(grid_limit, default=0.0)
    # Fit the scale to the demand; keep the grid limit in sight only when it is within half again of the peak.
    near = lowest_limit and lowest_limit <= 1.5 * max(peak, 1.0)
    y_max_kw = max(peak * 1.15, lowest_limit * 1.05 if near else 0.0, 10.0)
    return {
        "labels": _slot_labels(plan),
        "base_load_kw": base_load,
        "total_kw": total,
        "grid_limit_kw": grid_limit,
        "y_max_kw": round(y_max_kw, 0),
        "price_per_kwh": [round(float(v), 4) for v in (instance.get("energy_price_mxn_per_kwh") or [])][:n],
        "vehicles": vehicles,
    }


def _timeline(plan: ChargingPlan, charges: list[PlannedCharge]) -> list[dict]:
    """Per vehicle: connector and, per slot, a share of the strongest slot of the night (for a strip of cells)."""
    top_kw = max((kw for c in charges for kw in c.power_kw), default=0.0) or 1.0
    start = plan.horizon_start
    step = dt.timedelta(minutes=plan.slot_minutes)
    rows = []
    for charge in charges:
        cells = []
        for i in range(plan.num_slots):
            kw = charge.power_kw[i] if i < len(charge.power_kw) else 0.0
            moment = start + i * step
            plugged = (
                charge.plug_in_at is not None
                and charge.plug_in_at <= moment
                and (charge.plug_out_at is None or moment < charge.plug_out_at)
            )
            present = charge.arrival_at <= moment < charge.departure_at
            cells.append(
                {
                    "kw": kw,
                    "alpha": round(0.15 + 0.85 * kw / top_kw, 2) if kw > 0 else 0,
                    "plugged": plugged,
                    "present": present,
                }
            )
        rows.append({"charge": charge, "connector": _connector_label(charge.connector), "cells": cells})
    return rows


def demand_charge_rows(plan: ChargingPlan, load_kw: list[float]) -> list[dict]:
    """Per demand charge the plan priced: tonight's peak in its periods (from ``load_kw``, the site demand per
    slot), the month's peak before tonight, after tonight, and what the increase costs. Answers "why does
    tonight pay a demand charge?" at a glance; the figures are the plan's ``DemandCharges`` billing the night's
    load, the rule the optimizer's evaluator prices the plan by."""
    return [
        {
            "name": line.name,
            "periods": line.periods,
            "tonight_peak_kw": line.peak_kw,
            "price_per_kw": line.mxn_per_kw,
            "peak_before_kw": line.peak_before_kw,
            "peak_after_kw": line.peak_after_kw,
            "added_kw": line.added_kw,
            "cost": line.cost_mxn,
        }
        for line in _stored_demand_charges(plan).bill(load_kw)
    ]


def _stored_demand_charges(plan: ChargingPlan) -> optimizer.DemandCharges:
    try:
        return plan_demand_charges(plan)
    except optimizer.InstanceError:  # a damaged stored instance: the page still shows the rest of the night
        logger.warning("plan %s: its stored instance's demand charges do not parse", plan.pk, exc_info=True)
        return optimizer.DemandCharges()


class _ChargeShown(TypedDict):
    level: str  # readiness_level
    gap_pct: float  # required minus departure SoC, %


def overview(request: HttpRequest, plan: ChargingPlan, *, admin_context: dict, may_replan: bool) -> TemplateResponse:
    charges = plan_charges(plan)
    currency = plan.depot.tariff.currency if plan.depot.tariff is not None else "MXN"
    # The template shows each charge with its readiness level and SoC gap, set on the rows here.
    shown = cast("list[WithAnnotations[PlannedCharge, _ChargeShown]]", charges)
    for charge in shown:
        charge.level = readiness_level(charge)
        charge.gap_pct = max(charge.required_soc_pct - charge.departure_soc_pct, 0.0)
    # Base load included: the demand the grid meter and the demand charges count.
    load_kw = site_demand_kw((plan.instance or {}).get("base_load_kw"), [c.power_kw for c in charges], plan.num_slots)
    chart_data = plan_chart_data(plan, charges)
    context = {
        **admin_context,
        "title": _("Charging plan: %(depot)s, night of %(night)s")
        % {"depot": plan.depot.name, "night": date_format(plan.service_night, "SHORT_DATE_FORMAT")},
        "plan": plan,
        "charges": charges,
        "timeline": _timeline(plan, charges),
        "slot_labels": _slot_labels(plan),
        "slots_per_hour": max(60 // plan.slot_minutes, 1),
        "chart_data": {
            **chart_data,
            "text": {
                "base_load": _("Base load (kW)"),
                "total": _("Total site demand (kW)"),
                "grid_limit": _("Grid limit (kW)"),
                "off_scale": _("above the chart"),
                "price": _("Energy price (%(currency)s/kWh)") % {"currency": currency},
                "power_axis": _("Power (kW)"),
                "price_axis": _("%(currency)s/kWh") % {"currency": currency},
            },
        },
        "may_replan": may_replan,
        "ocpp_versions": OCPP_VERSIONS,
        "peak_share_pct": 100.0 * plan.peak_kw / plan.site_limit_kw if plan.site_limit_kw else None,
        "demand_charges": demand_charge_rows(plan, load_kw),
        "night_peak_kw": max(load_kw, default=0.0),
        "grid_limit_kw": min(chart_data["grid_limit_kw"], default=None),
        "ready_count": sum(1 for c in shown if c.level == "green"),
        "currency": currency,
        "night_cost": night_costs([plan])[plan.pk],
        "depot_zone": plan.depot.zone,
        "plan_delivery": plan_delivery(plan),
    }
    return TemplateResponse(request, "admin/charging/chargingplan/overview.html", context)


def replan(request: HttpRequest, plan: ChargingPlan) -> HttpResponse:
    """Plan the night again now, in this request (a depot night solves in about a second)."""
    from charging.planning import plan_depot_night
    from charging.selectors import night_event_inputs

    depot = plan.depot
    try:
        new = plan_depot_night(
            depot=depot,
            service_night=plan.service_night,
            trigger=ChargingPlan.Trigger.MANUAL,
            trigger_detail=_("requested by %(user)s in the admin") % {"user": request.user.get_username()},
            now=timezone.now(),
            **night_event_inputs(depot, plan.service_night),
        )
    except Exception as exc:  # the planner's reason is what the manager needs; the log has the rest
        messages.error(request, _("Re-planning failed: %(reason)s") % {"reason": exc})
        return redirect(reverse("admin:charging_chargingplan_overview", args=[plan.pk]))
    messages.success(
        request,
        _("Re-planned: version %(version)d is now the active plan (%(ready)s).")
        % {"version": new.version, "ready": new.solver_status},
    )
    return redirect(reverse("admin:charging_chargingplan_overview", args=[new.pk]))


def plan_csv(plan: ChargingPlan) -> HttpResponse:
    """One row per vehicle: stay, SoC, energy, then the kW of every slot (depot local time)."""
    charges = plan_charges(plan)
    labels = _slot_labels(plan)
    zone = plan.depot.zone
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"plan-{slugify(plan.depot.code)}-{plan.service_night.isoformat()}-v{plan.version}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "fleet_number",
            "connector",
            "arrival_local",
            "departure_local",
            "arrival_soc_pct",
            "required_soc_pct",
            "departure_soc_pct",
            "energy_kwh",
            "shortfall_kwh",
            "shortfall_reason",
            *(f"kw_{label}" for label in labels),
        ]
    )
    for c in charges:
        writer.writerow(
            [
                c.vehicle.fleet_number,
                _connector_label(c.connector),
                c.arrival_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                c.departure_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                c.arrival_soc_pct,
                c.required_soc_pct,
                c.departure_soc_pct,
                c.energy_kwh,
                c.shortfall_kwh,
                c.shortfall_reason,
                *c.power_kw[: plan.num_slots],
            ]
        )
    return response


def plans_csv(plans: QuerySet[ChargingPlan]) -> HttpResponse:
    """The plans' summaries (the list page's export); the caller passes the admin's scoped queryset."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="charging-plans.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "depot",
            "service_night",
            "version",
            "status",
            "trigger",
            "created_at_utc",
            "energy_kwh",
            "energy_cost",
            "demand_cost",
            "peak_kw",
            "site_limit_kw",
            "shortfall_kwh",
            "vehicles_short",
            "solver_status",
        ]
    )
    for p in plans.select_related("depot").defer("instance").order_by("depot__name", "service_night", "version"):
        writer.writerow(
            [
                p.depot.code,
                p.service_night.isoformat(),
                p.version,
                p.status,
                p.trigger,
                p.created_at.astimezone(dt.UTC).isoformat(),
                round(p.energy_kwh, 3),
                p.energy_cost,
                p.demand_cost,
                round(p.peak_kw, 3),
                round(p.site_limit_kw, 3),
                round(p.shortfall_kwh, 3),
                p.vehicles_short,
                p.solver_status,
            ]
        )
    return response


def plan_profiles(plan: ChargingPlan, ocpp_version: str) -> JsonResponse:
    """Every charger of the depot with a connector in the plan: its validated SetChargingProfile requests."""
    from charging.ocpp import charger_profiles

    if ocpp_version not in OCPP_VERSIONS:
        return JsonResponse({"detail": f"ocpp must be one of {', '.join(OCPP_VERSIONS)}"}, status=400)
    used = plan.charges.filter(connector__isnull=False).values("connector__charger_id")
    chargers = Charger.objects.filter(pk__in=used).prefetch_related("connectors").order_by("name")
    body = {
        "plan": {
            "id": plan.pk,
            "depot": plan.depot.code,
            "service_night": plan.service_night.isoformat(),
            "version": plan.version,
            "ocpp_version": ocpp_version,
        },
        "chargers": [
            {
                "charge_point_id": charger.ocpp_charge_point_id,
                "name": charger.name,
                "requests": charger_profiles(plan, charger, ocpp_version=ocpp_version),
            }
            for charger in chargers
        ],
    }
    response = JsonResponse(body, json_dumps_params={"indent": 2})
    name = f"ocpp-{ocpp_version}-{slugify(plan.depot.code)}-{plan.service_night.isoformat()}-v{plan.version}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
