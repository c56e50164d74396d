"""Reads of tariffs, chargers and tonight's depot events. Callers restrict the querysets to the user (the
viewsets do it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from charging.metered_energy import session_kwh_by_slot
from charging.models import (
    Alert,
    Charger,
    ChargingPlan,
    ChargingSession,
    Connector,
    DepotEvent,
    PlannedCharge,
    Tariff,
    TariffSeason,
)
from charging.optimizer import DemandCharges, demand_charges_from_dict
from charging.optimizer.instance import DEMAND_FIELDS
from charging.optimizer.online import PastSession
from charging.readiness import AMBER_SHORT_PCT, READY_SHORTFALL_KWH
from fleet.models import Depot, Vehicle
from fleet.scoping import Action, restrict

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


def plan_demand_charges(plan: ChargingPlan, names: Iterable[str] = ()) -> DemandCharges:
    """The demand charges a stored plan priced, each with the month's peak it counted as paid, read from its
    instance (any format it was ever stored in). Instances stored before the main charge carried its tariff
    name call it "demand": it gets its name back from ``names`` (the tariff's charges) or else from the plan's
    ``month_peaks_kw``."""
    charges = demand_charges_from_dict(plan.instance or {"num_slots": plan.num_slots})
    return charges.named(list(names) or list(plan.month_peaks_kw or {}))


def month_peaks_paid(depot: Depot, service_night: dt.date, charges: DemandCharges) -> dict[str, float]:
    """Each charge's peak so far this month, as this month's earlier active plans of the depot stored it
    (``ChargingPlan.month_peaks_kw``), 0 if none. Plans stored before ``month_peaks_kw`` existed only have
    ``peak_kw`` (the main charge's peak): it counts for the main charge (the first), and as a lower bound for a
    charge on every hour."""
    earlier = list(
        ChargingPlan.objects.filter(
            depot=depot,
            status=ChargingPlan.Status.ACTIVE,
            service_night__gte=service_night.replace(day=1),
            service_night__lt=service_night,
        ).values_list("peak_kw", "month_peaks_kw")
    )
    paid = {}
    for index, charge in enumerate(charges):
        peak_kw_counts = index == 0 or charge.slots is None
        stored = [peaks.get(charge.name, peak_kw if peak_kw_counts else 0.0) for peak_kw, peaks in earlier]
        paid[charge.name] = max([0.0, *stored])
    return paid


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
    soc_reported_at: dict[int, dt.datetime]
    plugged_into: dict[int, Connector | None]


def night_event_inputs(depot: Depot, service_night: dt.date) -> NightEventInputs:
    """What tonight's events tell the planner: who arrived when, the SoC they last reported, and which
    connector each reported vehicle is plugged into now (``plugged_into``, see ``plugged_into_now``)."""
    arrivals: dict[int, dt.datetime] = {}
    soc_now_pct: dict[int, float] = {}
    soc_reported_at: dict[int, dt.datetime] = {}
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
            soc_reported_at[event.vehicle_id] = event.occurred_at
    return {
        "arrivals": arrivals,
        "soc_now_pct": soc_now_pct,
        "soc_reported_at": soc_reported_at,
        "plugged_into": plugged_into_now(events),
    }


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


# --- Per depot, for the console's dashboard and admin pages (a fixed number of queries for any number of depots) --


def depot_charger_totals() -> dict[str, Coalesce]:
    """Annotations for a ``Depot`` queryset: ``charger_count`` and ``installed_charger_kw`` (the sum of the
    chargers' ``max_kw``), one subquery each, 0 for a depot without chargers."""
    chargers = Charger.objects.filter(depot=OuterRef("pk")).order_by().values("depot")
    return {
        "charger_count": Coalesce(
            Subquery(chargers.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), Value(0)
        ),
        "installed_charger_kw": Coalesce(
            Subquery(chargers.annotate(kw=Sum("max_kw")).values("kw"), output_field=FloatField()), Value(0.0)
        ),
    }


def next_active_plans(user, nights: dict[int, dt.date]) -> dict[int, ChargingPlan]:
    """Per depot (``nights``: depot pk -> the night in progress there), its active plan for that night, or else
    for the next night planned; without the optimizer input (``instance`` deferred). One query."""
    if not nights:
        return {}
    candidates = restrict(
        ChargingPlan.objects.filter(
            depot_id__in=nights, status=ChargingPlan.Status.ACTIVE, service_night__gte=min(nights.values())
        ),
        user,
        Action.VIEW,
    ).order_by("depot_id", "service_night")
    chosen: dict[int, ChargingPlan] = {}
    for plan in candidates.defer("instance"):
        if plan.depot_id not in chosen and plan.service_night >= nights[plan.depot_id]:
            chosen[plan.depot_id] = plan
    return chosen


class OpenAlerts(TypedDict):
    open: int
    critical: int
    latest: list[Alert]  # critical first, newest first


def open_alerts_by_depot(user, depot_ids: list[int], *, latest_per_depot: int) -> dict[int, OpenAlerts]:
    """Per depot with any, its alerts not resolved: how many, how many critical, and the first few to show.
    Two queries, the second bounded whatever the number of open alerts."""
    rows = restrict(Alert.objects.filter(depot_id__in=depot_ids), user, Action.VIEW).exclude(
        status=Alert.Status.RESOLVED
    )
    result: dict[int, OpenAlerts] = {
        row["depot_id"]: {"open": row["n"], "critical": row["critical"], "latest": []}
        for row in rows.order_by()
        .values("depot_id")
        .annotate(n=Count("pk"), critical=Count("pk", filter=Q(severity=Alert.Severity.CRITICAL)))
    }
    for alert in rows.select_related("vehicle").order_by("severity", "-created_at")[
        : latest_per_depot * len(depot_ids)
    ]:
        latest = result[alert.depot_id]["latest"]
        if len(latest) < latest_per_depot:
            latest.append(alert)
    return result


def plan_activity_by_depot(
    user, depot_ids: list[int], *, failed_since: dt.datetime
) -> tuple[dict[int, dt.datetime], set[int]]:
    """When each depot's latest plan (any status) was made, and the depots with a failed plan since
    ``failed_since``. Two queries."""
    plans = restrict(ChargingPlan.objects.filter(depot_id__in=depot_ids), user, Action.VIEW)
    latest = {
        row["depot_id"]: row["latest"] for row in plans.order_by().values("depot_id").annotate(latest=Max("created_at"))
    }
    failed = set(
        plans.filter(status=ChargingPlan.Status.FAILED, created_at__gte=failed_since).values_list("depot_id", flat=True)
    )
    return latest, failed


class PlanReadiness(TypedDict):
    ready: int
    short_small: int  # short by less than AMBER_SHORT_PCT points of SoC
    short_large: int
    planned_in_service: int
    short_vehicles: list[dict]  # the worst first: fleet number, SoC, need, gap, level ("amber" / "red")


def readiness_by_plan(plans: Iterable[ChargingPlan], *, short_shown: int) -> dict[int, PlanReadiness]:
    """Per plan, its vehicles still in service by readiness (``charging.readiness``), and the worst
    ``short_shown`` short ones. Two queries, the second bounded."""
    plans = list(plans)
    result: dict[int, PlanReadiness] = {
        plan.pk: {"ready": 0, "short_small": 0, "short_large": 0, "planned_in_service": 0, "short_vehicles": []}
        for plan in plans
    }
    if not plans:
        return result
    short = Q(shortfall_kwh__gt=READY_SHORTFALL_KWH)
    small_gap = Q(required_soc_pct__lt=F("departure_soc_pct") + AMBER_SHORT_PCT)
    in_service = planned_charges_in_service(plans)
    for row in (
        in_service.order_by()
        .values("plan_id")
        .annotate(
            ready_count=Count("pk", filter=~short),  # not `ready`: PlannedCharge.ready is a property
            short_small=Count("pk", filter=short & small_gap),
            short_large=Count("pk", filter=short & ~small_gap),
            planned_in_service=Count("pk"),
        )
    ):
        counts = result[row["plan_id"]]
        counts["ready"], counts["short_small"] = row["ready_count"], row["short_small"]
        counts["short_large"], counts["planned_in_service"] = row["short_large"], row["planned_in_service"]
    shorts = (
        in_service.filter(short)
        .annotate(gap=F("required_soc_pct") - F("departure_soc_pct"))
        .order_by("-gap")
        .values("plan_id", "vehicle__fleet_number", "departure_soc_pct", "required_soc_pct", "gap")
    )
    for short_row in shorts[: short_shown * len(plans)]:
        listed = result[short_row["plan_id"]]["short_vehicles"]
        if len(listed) < short_shown:
            listed.append({**short_row, "level": "amber" if short_row["gap"] < AMBER_SHORT_PCT else "red"})
    return result


def plans_keeping_headroom(*, now: dt.datetime, history_since: dt.datetime) -> list[ChargingPlan]:
    """Active plans running at ``now`` and made at least one of their slots before it, of depots with
    unannounced arrivals since ``history_since``: the plans that keep headroom for vehicles not yet known
    (``charging.unscheduled``), which a re-plan each slot hands back to the vehicles there when nobody came."""
    unannounced = ChargingSession.objects.filter(depot=OuterRef("depot"), started_at__gte=history_since).exclude(
        vehicle__home_depot=OuterRef("depot")
    )
    candidates = (
        active_plans()
        .filter(horizon_start__lte=now, created_at__lte=now - dt.timedelta(minutes=1))
        .filter(Exists(unannounced))
        .defer("instance", "month_peaks_kw")
    )
    return [
        plan
        for plan in candidates
        if plan.horizon_start + dt.timedelta(minutes=plan.slot_minutes * plan.num_slots) > now
        and plan.created_at <= now - dt.timedelta(minutes=plan.slot_minutes)
    ]


def unscheduled_sessions(depot: Depot, *, since: dt.datetime, until: dt.datetime) -> list[PastSession]:
    """The depot's charging sessions started in ``[since, until)`` by vehicles based elsewhere or nowhere: the
    arrivals its plans cannot know in advance (``charging.unscheduled``)."""
    rows = (
        ChargingSession.objects.filter(depot=depot, started_at__gte=since, started_at__lt=until)
        .exclude(vehicle__home_depot=depot)
        .values_list("started_at", "ended_at", "energy_kwh", "max_kw")
    )
    return [PastSession(started, ended, energy, max_kw) for started, ended, energy, max_kw in rows]


class DeliveredSource:
    """Where the delivered part of a night's cost comes from."""

    METERED = "metered"  # the charging sessions' meter data
    PLANNED = "planned"  # the superseded plans' slots (no meter data for the night)
    MIXED = "mixed"  # meter data for some vehicles, the superseded plans' slots for the others


@dataclasses.dataclass(frozen=True)
class NightCost:
    """What a depot night costs, in the tariff's currency, once a plan has been re-planned.

    A re-plan solves only the rest of the night: its ``total_cost`` is the *remaining* cost. The night's cost
    adds what was delivered before each re-plan. Where the night has meter data (the depot's charging sessions
    before the re-plan, with the charger's meter readings when it sent them), that energy is priced interval
    by interval at the night's tariff and its demand charges are the bill of the metered site demand (the one
    rule, ``DemandCharges``); vehicles without meter data fall back to the slots of the plans the re-plans
    superseded (their slots up to the next version's start, at their prices, and the demand charges those
    slots raised). ``delivered_source`` says which was used."""

    delivered: Decimal
    remaining: Decimal
    replanned_at: dt.datetime | None  # the plan's own start when it re-planned a night in progress
    delivered_kwh: float = 0.0  # energy delivered before this plan started
    remaining_kwh: float = 0.0  # this plan's own energy
    delivered_source: str = ""  # a DeliveredSource; empty when nothing was delivered before this plan
    metered_kwh: float = 0.0  # the part of ``delivered_kwh`` read from meter data

    @property
    def night_kwh(self) -> float:
        return round(self.delivered_kwh + self.remaining_kwh, 3)

    @property
    def night(self) -> Decimal:
        return self.delivered + self.remaining

    @property
    def replanned(self) -> bool:
        return self.replanned_at is not None


def night_costs(plans: Iterable[ChargingPlan]) -> dict[int, NightCost]:
    """Per plan (by pk), its night's cost: delivered before the plan started and remaining. No query when no
    night was re-planned, three when one was (versions, their charges, the nights' sessions), whatever the
    number of plans."""
    plans = list(plans)
    if not plans:
        return {}
    nights = Q()
    for plan in plans:
        if plan.version > 1:  # a first version has no earlier one to have delivered anything
            nights |= Q(depot_id=plan.depot_id, service_night=plan.service_night, version__lte=plan.version)
    versions: dict[tuple[int, dt.date], list[dict]] = {}
    # The energy prices, the base load and the instance's demand-charge fields (read back by
    # ``demand_charges_from_dict``), not the whole instance with its vehicles.
    priced = {"prices": "instance__energy_price_mxn_per_kwh", "base_load": "instance__base_load_kw"} | {
        f"demand:{key}": f"instance__{key}" for key in DEMAND_FIELDS
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
    power: dict[int, list[tuple[int, list[float]]]] = {pk: [] for pk in earlier}
    if earlier:  # only re-planned nights have delivered slots to price
        charges = PlannedCharge.objects.filter(plan_id__in=earlier).values_list("plan_id", "vehicle_id", "power_kw")
        for plan_id, vehicle_id, row in charges:
            power[plan_id].append((vehicle_id, row or []))
    sessions = _sessions_before_replans(versions)

    costs = {}
    for plan in plans:
        ran_before = [r for r in versions.get((plan.depot_id, plan.service_night), []) if r["version"] <= plan.version]
        delivered = _delivered(ran_before, power, sessions.get(plan.depot_id, [])) if len(ran_before) > 1 else None
        first_start = ran_before[0]["horizon_start"] if ran_before else plan.horizon_start
        costs[plan.pk] = NightCost(
            delivered=Decimal(f"{delivered.cost if delivered else 0.0:.2f}"),
            remaining=plan.total_cost,
            replanned_at=plan.horizon_start if plan.horizon_start > first_start else None,
            delivered_kwh=round(delivered.kwh, 3) if delivered else 0.0,
            remaining_kwh=round(plan.energy_kwh, 3),
            delivered_source=delivered.source if delivered else "",
            metered_kwh=round(delivered.metered_kwh, 3) if delivered else 0.0,
        )
    return costs


def _sessions_before_replans(versions: dict[tuple[int, dt.date], list[dict]]) -> dict[int, list[dict]]:
    """Per depot, its charging sessions that overlap a re-planned night before its latest version started
    (one query for every night)."""
    overlapping = Q()
    for rows in versions.values():
        if len(rows) > 1:
            overlapping |= Q(
                depot_id=rows[0]["depot_id"],
                started_at__lt=rows[-1]["horizon_start"],
                ended_at__gt=rows[0]["horizon_start"],
            )
    if not overlapping:
        return {}
    found: dict[int, list[dict]] = {}
    for session in ChargingSession.objects.filter(overlapping).values(
        "depot_id", "vehicle_id", "started_at", "ended_at", "energy_kwh", "meter_readings"
    ):
        found.setdefault(session["depot_id"], []).append(dict(session))
    return found


@dataclasses.dataclass(frozen=True)
class _Delivered:
    cost: float
    kwh: float
    metered_kwh: float
    source: str


def _delivered(
    ran_before: list[dict], power: dict[int, list[tuple[int, list[float]]]], sessions: list[dict]
) -> _Delivered:
    """What the night delivered before the last of ``ran_before`` (its versions, oldest first) started: from
    the sessions' meter data where a vehicle has any, from the superseded versions' slots for the others."""
    first, current = ran_before[0], ran_before[-1]
    slot_minutes, slot_h = first["slot_minutes"], first["slot_minutes"] / 60
    slot = dt.timedelta(minutes=slot_minutes)
    # The night on the first version's grid (it covers the whole night), up to the latest re-plan.
    ran_slots = max(0, min(first["num_slots"], round((current["horizon_start"] - first["horizon_start"]) / slot)))
    metered_kwh = [0.0] * ran_slots
    metered_vehicles = set()
    for session in sessions:
        by_slot = session_kwh_by_slot(
            started_at=session["started_at"],
            ended_at=session["ended_at"],
            energy_kwh=session["energy_kwh"],
            readings=session["meter_readings"],
            grid_start=first["horizon_start"],
            slot_minutes=slot_minutes,
            num_slots=ran_slots,
        )
        if any(kwh > 0 for kwh in by_slot):
            metered_vehicles.add(session["vehicle_id"])
            metered_kwh = [a + b for a, b in zip(metered_kwh, by_slot, strict=True)]
    # Vehicles with no meter data: each superseded version's slots, up to the next version's start.
    planned_kw = [0.0] * ran_slots
    planned_cost = 0.0
    for row, following in zip(ran_before, ran_before[1:], strict=False):
        ran = max(0, min(row["num_slots"], round((following["horizon_start"] - row["horizon_start"]) / slot)))
        offset = round((row["horizon_start"] - first["horizon_start"]) / slot)
        rows = [kw for vehicle_id, kw in power[row["pk"]] if vehicle_id not in metered_vehicles]
        load = charging_load_kw(rows, ran)
        planned_cost += sum(kw * price for kw, price in zip(load, row["prices"] or [], strict=False)) * slot_h
        for i, kw in enumerate(load):
            if 0 <= offset + i < ran_slots:
                planned_kw[offset + i] += kw
    prices = first["prices"] or []
    metered_cost = sum(kwh * price for kwh, price in zip(metered_kwh, prices, strict=False))
    planned_total_kwh = sum(planned_kw) * slot_h
    if not metered_vehicles:
        source, demand = DeliveredSource.PLANNED, _demand_raised_before(first=first, current=current)
    else:
        source = DeliveredSource.METERED if planned_total_kwh < 1e-6 else DeliveredSource.MIXED
        # The site's demand before the re-plan (base load + metered + planned-only charging), billed by the
        # night's demand charges against the month's peaks the first version counted as paid.
        base = [float(kw) for kw in (first["base_load"] or [])]
        site_kw = [
            (base[i] if i < len(base) else 0.0) + metered_kwh[i] / slot_h + planned_kw[i] for i in range(ran_slots)
        ]
        demand = _stored_demand_charges(first).cost_mxn(site_kw)
    return _Delivered(
        cost=metered_cost + planned_cost + demand,
        kwh=sum(metered_kwh) + planned_total_kwh,
        metered_kwh=sum(metered_kwh),
        source=source,
    )


def _demand_raised_before(*, first: dict, current: dict) -> float:
    """The demand charges the night paid before ``current`` started: how far the slots already run raised each
    charge's month peak, which ``current`` (a re-plan) counts as paid and the night's first plan did not. Each
    charge's bill line is the one rule (``DemandChargeLine.cost_mxn``)."""
    before = {charge.name: charge for charge in _stored_demand_charges(first)}
    return sum(
        before[charge.name].line(charge.month_peak_kw).cost_mxn
        for charge in _stored_demand_charges(current)
        if charge.name in before
    )


def _stored_demand_charges(row: dict) -> DemandCharges:
    """A ``night_costs`` row's demand charges, from the instance fields it read."""
    fields = {key.split(":", 1)[1]: value for key, value in row.items() if key.startswith("demand:")}
    return demand_charges_from_dict(
        {"num_slots": row["num_slots"], **{key: value for key, value in fields.items() if value is not None}}
    )
