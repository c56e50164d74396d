"""Reads of tariffs, chargers and tonight's depot events. Callers restrict the querysets to the user (the
viewsets do it)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch, QuerySet

from charging.models import Charger, ChargingPlan, Connector, DepotEvent, Tariff, TariffSeason
from fleet.models import Depot

Kind = DepotEvent.Kind
ARRIVAL_KINDS = (Kind.VEHICLE_ARRIVED, Kind.VEHICLE_PLUGGED_IN)


def tariff_choices() -> QuerySet[Tariff]:
    """Tariffs as something to point at (a depot's tariff): no structure loaded."""
    return Tariff.objects.all()


def tariff_queryset() -> QuerySet[Tariff]:
    """Tariffs with their whole structure (seasons, periods, demand charges) in four queries."""
    return Tariff.objects.select_related("organization").prefetch_related(
        Prefetch("seasons", queryset=TariffSeason.objects.prefetch_related("periods")),
        "demand_charges",
    )


def charger_queryset() -> QuerySet[Charger]:
    return Charger.objects.select_related("depot").prefetch_related(
        Prefetch("connectors", queryset=Connector.objects.order_by("connector_id"))
    )


def connector_queryset() -> QuerySet[Connector]:
    return Connector.objects.select_related("charger__depot")


def night_event_inputs(depot: Depot, service_night: dt.date) -> dict[str, dict]:
    """What tonight's events tell the planner: who arrived when, the SoC they last reported, and which
    connector each reported vehicle is plugged into now (``plugged_into``, see ``plugged_into_now``)."""
    arrivals: dict[int, dt.datetime] = {}
    soc_now_pct: dict[int, float] = {}
    events = list(
        DepotEvent.objects.filter(depot=depot, service_night=service_night, vehicle__isnull=False)
        .select_related("connector__charger")
        .order_by("occurred_at", "pk")
    )
    for event in events:
        if event.kind in ARRIVAL_KINDS:
            arrivals.setdefault(event.vehicle_id, event.occurred_at)
        if event.soc_pct is not None:
            soc_now_pct[event.vehicle_id] = event.soc_pct
    return {"arrivals": arrivals, "soc_now_pct": soc_now_pct, "plugged_into": plugged_into_now(events)}


def plugged_into_now(events: list[DepotEvent]) -> dict[int, Connector | None]:
    """Vehicle pk -> the connector it is plugged into after these events (in the order they happened), or
    None when it was reported unplugged since. Vehicles with no plug report tonight are left out.

    A vehicle's latest plug-in or plug-out decides. A plug-in onto a connector another vehicle was reported
    on means that one was unplugged first: the latest plug-in wins and the other vehicle is free again.
    """
    plugged_into: dict[int, Connector | None] = {}
    vehicle_on: dict[int, int] = {}  # connector pk -> vehicle pk reported on it
    for event in events:
        if event.kind == Kind.VEHICLE_PLUGGED_IN and event.connector_id is not None:
            _unplug(plugged_into, vehicle_on, event.vehicle_id)
            displaced = vehicle_on.get(event.connector_id)
            if displaced is not None:
                _unplug(plugged_into, vehicle_on, displaced)
            plugged_into[event.vehicle_id] = event.connector
            vehicle_on[event.connector_id] = event.vehicle_id
        elif event.kind == Kind.VEHICLE_PLUGGED_OUT:
            _unplug(plugged_into, vehicle_on, event.vehicle_id)
    return plugged_into


def _unplug(plugged_into: dict[int, Connector | None], vehicle_on: dict[int, int], vehicle_pk: int) -> None:
    connector = plugged_into.get(vehicle_pk)
    if connector is not None:
        vehicle_on.pop(connector.pk, None)
    plugged_into[vehicle_pk] = None


def active_plans() -> QuerySet[ChargingPlan]:
    """Plans in force (one per depot night): what the chargers should be following."""
    return ChargingPlan.objects.filter(status=ChargingPlan.Status.ACTIVE).select_related("depot")
