"""Reads of tariffs, chargers and tonight's depot events. Callers restrict the querysets to the user (the
viewsets do it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from django.db.models import Count, Prefetch, Q, QuerySet

from charging.models import Alert, Charger, ChargingPlan, Connector, DepotEvent, PlannedCharge, Tariff, TariffSeason
from fleet.models import Depot, Vehicle

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

Kind = DepotEvent.Kind
ARRIVAL_KINDS = (Kind.VEHICLE_ARRIVED, Kind.VEHICLE_PLUGGED_IN)
Status = Charger.Status
# Statuses that take a charger or connector out of tonight's plan (planning uses only available / charging).
OUT_OF_ORDER = (Status.FAULTED, Status.OFFLINE, Status.MAINTENANCE)


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


class NightEventInputs(TypedDict):
    """``plan_depot_night``'s keyword arguments that tonight's events give."""

    arrivals: dict[int, dt.datetime]
    soc_now_pct: dict[int, float]
    plugged_into: dict[int, Connector | None]


def night_event_inputs(depot: Depot, service_night: dt.date) -> NightEventInputs:
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
        if event.vehicle_id is None:
            continue  # excluded by the query; tells the type checker
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
        if event.vehicle_id is None:
            continue  # a depot's own event (none are passed in: see night_event_inputs)
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


# --- Faults in sight ----------------------------------------------------------------------------------------


def charger_status_shown(charger: Charger, connectors: list[Connector]) -> StrOrPromise:
    """What a person should read as the charger's status: its own when it is out of order, else the worst of
    its connectors' (with which ones), else its own. ``connectors`` are the charger's (prefetched)."""
    if charger.status in OUT_OF_ORDER or not connectors:
        return charger.get_status_display()
    for status in OUT_OF_ORDER:
        ids = [str(c.connector_id) for c in connectors if c.status == status]
        if len(ids) == len(connectors):
            return Status(status).label
        if ids:
            return f"{Status(status).label} ({len(ids)}/{len(connectors)}: #{', #'.join(ids)})"
    return charger.get_status_display()


def faulted_chargers(depots) -> QuerySet[Charger]:
    """Chargers of ``depots`` (depots or their ids) that are out of order themselves or have a connector out
    of order: faulted, offline or in maintenance. ``status`` on each row is the charger's own."""
    broken_connectors = Connector.objects.filter(status__in=OUT_OF_ORDER).values("charger_id")
    return (
        Charger.objects.filter(depot__in=depots)
        .filter(Q(status__in=OUT_OF_ORDER) | Q(pk__in=broken_connectors))
        .select_related("depot")
        .order_by("depot", "name")
    )


def faulted_charger_counts(depots) -> dict[int, int]:
    """Depot pk -> number of its chargers ``faulted_chargers`` lists (depots with none are left out)."""
    rows = faulted_chargers(depots).order_by().values("depot_id").annotate(n=Count("pk"))
    return {row["depot_id"]: row["n"] for row in rows}


def planned_charges_in_service(plan: ChargingPlan | Iterable[ChargingPlan]) -> QuerySet[PlannedCharge]:
    """A plan's (or several plans') charges for the vehicles still in service: a bus sent to the workshop after
    the plan was made no longer counts as ready (or short) before the re-plan drops it."""
    plans = [plan] if isinstance(plan, ChargingPlan) else list(plan)
    return PlannedCharge.objects.filter(plan__in=plans, vehicle__status=Vehicle.Status.IN_SERVICE)


# --- Alerts, for the notifications app ------------------------------------------------------------------------


def alerts_raised_since(since: dt.datetime) -> QuerySet[Alert]:
    """Alerts opened at or after ``since`` (any status now), oldest first, with their depot."""
    return Alert.objects.filter(created_at__gte=since).select_related("depot", "organization").order_by("created_at")


def active_plans() -> QuerySet[ChargingPlan]:
    """Plans in force (one per depot night): what the chargers should be following."""
    return ChargingPlan.objects.filter(status=ChargingPlan.Status.ACTIVE).select_related("depot")


def charging_load_kw(power_rows: list[list[float]], num_slots: int) -> list[float]:
    """The depot's charging load per slot (kW): the sum of the planned charges' grid-side power."""
    load = [0.0] * num_slots
    for row in power_rows:
        for slot, kw in enumerate(row[:num_slots]):
            load[slot] += float(kw)
    return load


def site_demand_kw(base_load_kw: list[float] | None, power_rows: list[list[float]], num_slots: int) -> list[float]:
    """The site's demand per slot (kW): the depot's base load plus the charging load, as the grid meter and the
    demand charges count it (``charging.optimizer`` prices ``base_load_kw + charging``)."""
    base = [float(v) for v in (base_load_kw or [])]
    load = charging_load_kw(power_rows, num_slots)
    return [kw + (base[slot] if slot < len(base) else 0.0) for slot, kw in enumerate(load)]


def night_peak_kw_by_plan(plans: list[ChargingPlan]) -> dict[int, float]:
    """Per plan, the night's peak site demand (kW, base load included) over every slot, whatever the
    demand-charge windows: ``ChargingPlan.peak_kw`` is the peak inside the main demand charge's window only.
    Two queries whatever the number of plans (the instance's base load is read alone, not the whole instance)."""
    rows: dict[int, list[list[float]]] = {plan.pk: [] for plan in plans}
    for plan_id, power in PlannedCharge.objects.filter(plan__in=plans).values_list("plan_id", "power_kw"):
        rows[plan_id].append(power or [])
    base = dict(ChargingPlan.objects.filter(pk__in=rows).values_list("pk", "instance__base_load_kw"))
    return {
        plan.pk: max(site_demand_kw(base.get(plan.pk), rows[plan.pk], plan.num_slots), default=0.0) for plan in plans
    }


@dataclasses.dataclass(frozen=True)
class NightCost:
    """What a depot night costs, in the tariff's currency, once a plan has been re-planned.

    A re-plan solves only the rest of the night: its ``total_cost`` is the *remaining* cost. The night's cost
    adds what the plans it superseded delivered before each re-plan (their slots up to the next version's
    start, at their prices) and the demand charges those slots raised (the month's peaks a re-plan counts as
    already paid, against those before the night)."""

    delivered: Decimal
    remaining: Decimal
    replanned_at: dt.datetime | None  # the plan's own start when it re-planned a night in progress
    delivered_kwh: float = 0.0  # energy the superseded versions delivered before this plan started
    remaining_kwh: float = 0.0  # this plan's own energy

    @property
    def night_kwh(self) -> float:
        return self.delivered_kwh + self.remaining_kwh

    @property
    def night(self) -> Decimal:
        return self.delivered + self.remaining

    @property
    def replanned(self) -> bool:
        return self.replanned_at is not None


def night_costs(plans: Iterable[ChargingPlan]) -> dict[int, NightCost]:
    """Per plan (by pk), its night's cost: delivered before the plan started and remaining. No query when no
    night was re-planned, two when one was, whatever the number of plans."""
    plans = list(plans)
    if not plans:
        return {}
    nights = Q()
    for plan in plans:
        if plan.version > 1:  # a first version has no earlier one to have delivered anything
            nights |= Q(depot_id=plan.depot_id, service_night=plan.service_night, version__lte=plan.version)
    versions: dict[tuple[int, dt.date], list[dict]] = {}
    priced = {
        "prices": "instance__energy_price_mxn_per_kwh",
        "demand_price": "instance__demand_charge_mxn_per_kw",
        "month_peak": "instance__month_peak_kw",
        "other_charges": "instance__additional_demand_charges",
    }
    rows = (
        ChargingPlan.objects.filter(nights)
        .order_by("version")
        .values(
            "pk", "depot_id", "service_night", "version", "horizon_start", "slot_minutes", "num_slots", *priced.values()
        )
        if nights
        else []
    )
    for row in rows:
        row.update({name: row.pop(path) for name, path in priced.items()})
        versions.setdefault((row["depot_id"], row["service_night"]), []).append(row)
    earlier = [row["pk"] for rows in versions.values() for row in rows[:-1]]
    power: dict[int, list[list[float]]] = {pk: [] for pk in earlier}
    if earlier:  # only re-planned nights have delivered slots to price
        for plan_id, row in PlannedCharge.objects.filter(plan_id__in=earlier).values_list("plan_id", "power_kw"):
            power[plan_id].append(row or [])

    costs = {}
    for plan in plans:
        ran_before = [r for r in versions.get((plan.depot_id, plan.service_night), []) if r["version"] <= plan.version]
        delivered, delivered_kwh = 0.0, 0.0
        for row, following in zip(ran_before, ran_before[1:], strict=False):
            slot = dt.timedelta(minutes=row["slot_minutes"])
            ran = max(0, min(row["num_slots"], round((following["horizon_start"] - row["horizon_start"]) / slot)))
            load = charging_load_kw(power[row["pk"]], ran)
            delivered_kwh += sum(load) * row["slot_minutes"] / 60
            delivered += sum(kw * price for kw, price in zip(load, row["prices"] or [], strict=False)) * (
                row["slot_minutes"] / 60
            )
        if len(ran_before) > 1:
            delivered += _demand_raised_before(first=ran_before[0], current=ran_before[-1])
        first_start = ran_before[0]["horizon_start"] if ran_before else plan.horizon_start
        costs[plan.pk] = NightCost(
            delivered=Decimal(f"{delivered:.2f}"),
            remaining=plan.total_cost,
            replanned_at=plan.horizon_start if plan.horizon_start > first_start else None,
            delivered_kwh=delivered_kwh,
            remaining_kwh=plan.energy_kwh,
        )
    return costs


def _demand_raised_before(*, first: dict, current: dict) -> float:
    """The demand charges the night paid before ``current`` started: how far the slots already run raised each
    charge's month peak, which ``current`` (a re-plan) counts as paid and the night's first plan did not."""
    raised = float(current["demand_price"] or 0.0) * max(
        0.0, float(current["month_peak"] or 0.0) - float(first["month_peak"] or 0.0)
    )
    before = {c["name"]: float(c.get("month_peak_kw") or 0.0) for c in first["other_charges"] or []}
    for charge in current["other_charges"] or []:
        peak = float(charge.get("month_peak_kw") or 0.0)
        raised += float(charge.get("mxn_per_kw") or 0.0) * max(0.0, peak - before.get(charge["name"], peak))
    return raised
