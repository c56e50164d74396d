"""Depot night planning: build the optimizer's instance from the database, solve it, store the plan.

How a night is read from the registry (documented in docs/planning.md):
- The horizon is ``PLAN_HORIZON_HOURS`` from ``PLAN_HORIZON_START_HOUR`` local time on the service night,
  in ``slot_minutes`` slots.
- Vehicles: in service, home depot = this depot. A vehicle's overnight stay runs from the end of its last
  block that starts before the *night anchor* (02:00 local after the service night) to the start of its
  first block after the anchor. No block after the anchor: it stays until the horizon ends and is charged
  to the standby SoC at low priority.
- Energy for the next block: ``planned_energy_kwh`` or distance x kWh/km (the vehicle's measured kWh/km
  when telemetry has it, else its model's figure), plus the readiness reserve.
- Arrival SoC: live telemetry when it was seen after its last block returned; otherwise estimated from a
  full morning charge minus the day's blocks.
- Capacity: the active pack's as-new capacity x its latest SoH (nameplate when unknown), in the model's
  usable SoC window. The optimizer works in % of that usable capacity.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from batteries.selectors import vehicle_capacity_kwh
from charging import measured, optimizer
from charging.alert_messages import message, shortfall_reason
from charging.alerts import UNRESOLVED, alert_raise, alert_resolve
from charging.models import Alert, Charger, ChargingPlan, Connector, PlannedCharge
from charging.optimizer.replan import remaining_instance, remaining_windows
from charging.readiness import is_ready
from charging.selectors import month_peaks_paid, plan_demand_charges
from charging.tariffs import demand_charges_on, price_slots
from charging.unscheduled import solve_keeping_headroom
from config.audit import audit_attribution
from fleet.models import BlockAssignment, Depot, Vehicle
from fleet.telemetry.selectors import live_socs

logger = logging.getLogger(__name__)

PLAN_HORIZON_START_HOUR = 12
PLAN_HORIZON_HOURS = 24
NIGHT_ANCHOR_HOUR = 2
USABLE_CHARGER_STATUSES = (Charger.Status.AVAILABLE, Charger.Status.CHARGING)
KIND_TO_OPTIMIZER = {Charger.Kind.AC: "AC", Charger.Kind.DC: "DC", Charger.Kind.PANTOGRAPH: "pantograph"}
PRIORITY_WITH_BLOCK = 10
PRIORITY_STANDBY = 0


def readiness_reserve_pct() -> float:
    """Reserve on top of the next block's energy, in % of the usable capacity."""
    return settings.EVFLEET_READINESS_RESERVE_PCT


def standby_soc_pct() -> float:
    """Vehicle SoC (% of the pack) to keep a vehicle with no next block at."""
    return settings.EVFLEET_STANDBY_SOC_PCT


def default_energy_price() -> float:
    return settings.EVFLEET_DEFAULT_ENERGY_PRICE_PER_KWH


@dataclass(frozen=True)
class Horizon:
    start: dt.datetime  # aware, depot local time
    slot_minutes: int
    num_slots: int

    # Arithmetic in UTC: Python adds and subtracts datetimes of one zone on the wall clock, which is an hour
    # off across a daylight-saving change.
    def at(self, slot: int) -> dt.datetime:
        """When ``slot`` starts (``num_slots``: the end), in the start's zone."""
        moment = self.start.astimezone(dt.UTC) + dt.timedelta(minutes=self.slot_minutes * slot)
        return moment.astimezone(self.start.tzinfo)

    @property
    def end(self) -> dt.datetime:
        return self.at(self.num_slots)

    def slot_of(self, moment: dt.datetime, *, round_up: bool) -> int:
        minutes = (moment.astimezone(dt.UTC) - self.start.astimezone(dt.UTC)).total_seconds() / 60
        slot = -(-minutes // self.slot_minutes) if round_up else minutes // self.slot_minutes
        return int(min(max(slot, 0), self.num_slots))

    def slot_starts(self) -> list[dt.datetime]:
        return [self.at(i) for i in range(self.num_slots)]


def night_horizon(depot: Depot, service_night: dt.date, slot_minutes: int = 15) -> Horizon:
    """Noon to noon, local: 24 hours, or 23/25 on the nights the clocks change (92/100 quarter-hours)."""
    start = dt.datetime.combine(service_night, dt.time(PLAN_HORIZON_START_HOUR), tzinfo=depot.zone)
    end = start + dt.timedelta(hours=PLAN_HORIZON_HOURS)  # same zone: on the wall clock, noon to noon
    minutes = (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() / 60
    return Horizon(start=start, slot_minutes=slot_minutes, num_slots=int(minutes // slot_minutes))


@dataclass
class NightInput:
    """The optimizer instance plus what maps its ids back to rows."""

    instance: optimizer.Instance
    horizon: Horizon
    vehicles: dict[str, Vehicle]
    connectors: dict[str, Connector]
    stays: dict[str, tuple[dt.datetime, dt.datetime]]
    soc_windows: dict[str, tuple[float, float]]  # vehicle id -> usable SoC window (min %, max %) of the pack
    no_connector: list[Vehicle]
    # For a re-plan from now: the active plan's connector windows (vehicle id -> (connector id, start,
    # end) in this horizon's slots), tried by the optimizer as an assignment (``optimizer.solve``).
    windows_hint: dict[str, tuple[str, int, int]] | None = None
    # vehicle id -> where its planned values came from (``charging.measured``), stored with its PlannedCharge.
    sources: dict[str, dict] = field(default_factory=dict)


def _to_usable_pct(soc_pct: float, window: tuple[float, float]) -> float:
    low, high = window
    return min(max((soc_pct - low) / (high - low) * 100.0, 0.0), 100.0)


def _to_vehicle_pct(usable_pct: float, window: tuple[float, float]) -> float:
    low, high = window
    return low + usable_pct / 100.0 * (high - low)


def _pack_capacity_kwh(vehicle: Vehicle) -> float:
    return vehicle_capacity_kwh(vehicle)


def _vehicle_taper(vehicle: Vehicle, window: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    """The model's SoC->kW taper re-expressed on the usable scale, clipped to the usable window."""
    points = [(float(s), float(kw)) for s, kw in vehicle.model.charging_taper or []]
    if not points:
        return ()
    max_kw = vehicle.model.max_charge_kw

    def kw_at(soc: float) -> float:
        if soc <= points[0][0]:
            return max_kw if points[0][0] > 0 else points[0][1]
        for (s0, k0), (s1, k1) in zip(points, points[1:], strict=False):
            if s0 <= soc <= s1:
                return k0 + (k1 - k0) * (soc - s0) / (s1 - s0)
        return points[-1][1]

    socs = sorted({window[0], window[1], *(s for s, _ in points if window[0] < s < window[1])})
    return tuple((_to_usable_pct(s, window), kw_at(s)) for s in socs)


def build_night(
    depot: Depot,
    service_night: dt.date,
    *,
    arrivals: dict[int, dt.datetime] | None = None,
    slot_minutes: int = 15,
    now: dt.datetime | None = None,
) -> NightInput:
    """The night as the registry and the vehicles' telemetry describe it at ``now`` (default: the present).
    ``arrivals`` (vehicle pk -> when it arrived) overrides the arrival its blocks imply, for vehicles that
    depot staff reported back early or late."""
    now = now or timezone.now()
    horizon = night_horizon(depot, service_night, slot_minutes)
    anchor = dt.datetime.combine(service_night + dt.timedelta(days=1), dt.time(NIGHT_ANCHOR_HOUR), tzinfo=depot.zone)
    starts = horizon.slot_starts()

    connectors = {
        connector_key(c): c
        for c in Connector.objects.filter(
            charger__depot=depot, charger__status__in=USABLE_CHARGER_STATUSES, status__in=USABLE_CHARGER_STATUSES
        ).select_related("charger")
    }
    chargers: dict[int, optimizer.Charger] = {}
    for key, c in connectors.items():
        ch = chargers.get(c.charger_id)
        connector = optimizer.Connector(id=key, max_kw=c.max_kw)
        chargers[c.charger_id] = optimizer.Charger(
            id=c.charger.ocpp_charge_point_id,
            kind=KIND_TO_OPTIMIZER[Charger.Kind(c.charger.kind)],
            max_kw=c.charger.max_kw,
            connectors=(*(ch.connectors if ch else ()), connector),
        )

    vehicles = list(
        Vehicle.objects.filter(home_depot=depot, status=Vehicle.Status.IN_SERVICE).select_related("model", "home_depot")
    )
    live = live_socs([v.pk for v in vehicles])
    assignments: dict[int, list[BlockAssignment]] = {v.pk: [] for v in vehicles}
    for a in BlockAssignment.objects.filter(
        vehicle__in=vehicles, ends_at__gt=horizon.start - dt.timedelta(hours=12), starts_at__lt=horizon.end
    ).select_related("block"):
        assignments[a.vehicle_id].append(a)

    reserve = readiness_reserve_pct()
    opt_vehicles, by_id, stays, windows, no_connector, sources = [], {}, {}, {}, [], {}
    for vehicle in vehicles:
        model = vehicle.model
        window = (model.usable_soc_min_pct, model.usable_soc_max_pct)
        capacity_kwh = _pack_capacity_kwh(vehicle)
        usable_kwh = capacity_kwh * (window[1] - window[0]) / 100.0
        mine = sorted(assignments[vehicle.pk], key=lambda a: a.starts_at)
        before = [a for a in mine if a.starts_at < anchor]
        after = [a for a in mine if a.starts_at >= anchor]
        arrives = max(before[-1].ends_at, horizon.start) if before else horizon.start
        departs = min(after[0].starts_at, horizon.end) if after else horizon.end
        if arrivals and vehicle.pk in arrivals:
            arrives = max(arrivals[vehicle.pk], horizon.start)

        consumption = measured.vehicle_consumption(vehicle, until=service_night)
        arrival_soc, arrival_source = measured.arrival_soc(
            day_blocks=before,
            live=live.get(vehicle.pk),
            back_since=before[-1].ends_at if before else horizon.start - dt.timedelta(hours=12),
            now=now,
            capacity_kwh=capacity_kwh,
            full_soc_pct=window[1],
            kwh_per_km=consumption.kwh_per_km,
        )
        if after:
            need_kwh = measured.block_energy_kwh(after[0], consumption.kwh_per_km)
            required_usable = need_kwh / usable_kwh * 100.0 + reserve
            priority = PRIORITY_WITH_BLOCK
        else:
            required_usable = _to_usable_pct(standby_soc_pct(), window)
            priority = PRIORITY_STANDBY

        # A vehicle charges only on connectors of a standard its model accepts (CCS2, pantograph, outlet, ...).
        fitting = tuple(key for key, c in connectors.items() if c.standard in (model.connector_standards or ()))
        if not fitting:
            no_connector.append(vehicle)
        vid = str(vehicle.pk)
        by_id[vid], stays[vid], windows[vid] = vehicle, (arrives, departs), window
        sources[vid] = {"arrival_soc": arrival_source, "consumption": consumption.source}
        opt_vehicles.append(
            optimizer.Vehicle(
                id=vid,
                arrival_slot=horizon.slot_of(arrives, round_up=True),
                departure_slot=max(horizon.slot_of(departs, round_up=False), horizon.slot_of(arrives, round_up=True)),
                arrival_soc_pct=_to_usable_pct(arrival_soc, window),
                required_soc_pct=min(required_usable, 100.0),
                usable_capacity_kwh=usable_kwh,
                max_charge_kw=model.max_charge_kw,
                taper=_vehicle_taper(vehicle, window),
                compatible_connector_ids=fitting,
                priority=priority,
            )
        )

    prices, tariff_charges = tariff_night(depot, horizon)
    base_load = [depot.base_load_kw_at_hour(s.hour) for s in starts]
    # The plan pays only for the demand it adds to the month's peak so far (``month_peaks_paid``): at least the
    # base load's own peak tonight, which the site's other loads reach whatever we do.
    paid = month_peaks_paid(depot, service_night, tariff_charges)
    charges = tariff_charges.with_month_peaks({c.name: max(paid[c.name], c.peak_kw(base_load)) for c in tariff_charges})
    instance = optimizer.Instance(
        horizon_start=horizon.start,
        num_slots=horizon.num_slots,
        slot_minutes=slot_minutes,
        site_limit_kw=tuple(max(depot.grid_limit_kw - b, 0.0) for b in base_load),
        energy_price_mxn_per_kwh=tuple(prices),
        chargers=tuple(chargers.values()),
        vehicles=tuple(opt_vehicles),
        base_load_kw=tuple(base_load),
        **charges.instance_fields(),
    )
    return NightInput(instance, horizon, by_id, connectors, stays, windows, no_connector, sources=sources)


def tariff_night(depot: Depot, horizon: Horizon) -> tuple[list[float], optimizer.DemandCharges]:
    """Energy price per slot, and the tariff's priced demand charges on the night's slots (month peaks not yet
    set; ``charging.tariffs.demand_charges_on``). The main one's peak is the plan's ``peak_kw``."""
    if depot.tariff is None:
        return [default_energy_price()] * horizon.num_slots, optimizer.DemandCharges()
    slots = price_slots(depot.tariff, horizon.start, horizon.slot_minutes, horizon.num_slots)
    prices = [float(s.energy_price_per_kwh) for s in slots]
    return prices, demand_charges_on(depot.tariff, slots).priced()


@transaction.atomic
def plan_depot_night(
    *,
    depot: Depot,
    service_night: dt.date,
    trigger: str = ChargingPlan.Trigger.NIGHTLY,
    trigger_detail: str = "",
    now: dt.datetime | None = None,
    soc_now_pct: dict[int, float] | None = None,
    soc_reported_at: dict[int, dt.datetime] | None = None,
    arrivals: dict[int, dt.datetime] | None = None,
    plugged_into: dict[int, Connector | None] | None = None,
    method: str = "auto",
) -> ChargingPlan:
    """Plan (or re-plan) one depot night and make the new plan the active one.

    With ``now`` inside the night and an active plan, it re-plans from now: the registry is read afresh
    (faulted connectors, changed blocks, early arrivals), the energy the active plan delivered before
    ``now`` is kept, vehicles plugged in stay on their connector if it still works, and only the rest of
    the night is solved. ``soc_now_pct`` (vehicle pk -> SoC % reported now) overrides the estimate;
    ``soc_reported_at`` (vehicle pk -> when) dates it in the plan's record of sources.
    ``plugged_into`` (vehicle pk -> the connector staff reported it plugged into, None: reported unplugged)
    overrides where the active plan believes each reported vehicle is (``_with_reported_plugs``).

    Concurrent planning of one depot is serialised on the depot row: the second caller waits and then
    supersedes the first one's plan, never producing two active plans.
    """
    Depot.objects.select_for_update().filter(pk=depot.pk).first()
    previous = ChargingPlan.objects.filter(depot=depot, service_night=service_night)
    active = previous.filter(status=ChargingPlan.Status.ACTIVE).first()
    night = build_night(depot, service_night, arrivals=arrivals, now=now)
    now_slot = night.horizon.slot_of(now, round_up=False) if now is not None else 0
    replanning = False
    if active is not None and 0 < now_slot < night.horizon.num_slots:
        replanning = True
        night = _remainder_of_night(night, active, now_slot, soc_now_pct or {})
    elif soc_now_pct:
        night = _with_measured_soc(night, soc_now_pct)
    night = _with_reported_plugs(night, plugged_into or {})
    night = _with_reported_sources(night, soc_now_pct or {}, soc_reported_at or {})
    if replanning and now is not None:
        # Vehicles nobody announced (visiting buses, cars on outlets) may still come: keep headroom for them.
        # A re-plan runs while buses wait, several times a night: the search's smaller work limits.
        plan = solve_keeping_headroom(
            depot=depot,
            instance=night.instance,
            now=now,
            method=method,
            windows_hint=night.windows_hint,
            search=optimizer.REPLAN_SEARCH,
        )
    else:
        plan = optimizer.solve(night.instance, method=method, windows_hint=night.windows_hint)
    version = (previous.aggregate(v=Max("version"))["v"] or 0) + 1
    if active is not None:
        # Before the new plan exists (one active plan per depot night), and saved as a row rather than by a
        # queryset update so the audit trail records it, with the request's user when there is one.
        active.status = ChargingPlan.Status.SUPERSEDED
        audit_attribution(active, reason=f"superseded by version {version}")
        active.save(update_fields=["status"])

    totals, solver = plan.totals, plan.solver
    record = ChargingPlan.objects.create(
        depot=depot,
        service_night=service_night,
        version=version,
        trigger=trigger,
        trigger_detail=trigger_detail[:200],
        horizon_start=night.horizon.start,
        slot_minutes=night.horizon.slot_minutes,
        num_slots=night.horizon.num_slots,
        method=solver.method[:60],
        solver_status=solver.status[:200],
        solve_seconds=solver.solve_time_s,
        energy_kwh=totals.energy_kwh,
        energy_cost=Decimal(f"{totals.energy_cost_mxn:.2f}"),
        demand_cost=Decimal(f"{totals.demand_cost_mxn:.2f}"),
        peak_kw=totals.peak_kw,
        site_limit_kw=min(night.instance.site_limit_kw, default=0.0),
        shortfall_kwh=totals.shortfall_kwh,
        vehicles_short=sum(1 for v in plan.vehicles if not is_ready(v.shortfall_kwh)),
        lp_bound=solver.lp_bound_mxn,
        bound=solver.bound_mxn,
        gap_pct=solver.gap * 100 if solver.gap is not None else None,
        optimal=solver.optimal,
        month_peaks_kw=_month_peaks_after(night, plan),
        instance=night.instance.to_dict(),
    )
    PlannedCharge.objects.bulk_create(_planned_charges(record, night, plan))
    _raise_alerts(record, night, plan)
    logger.info("planned %s night %s v%d: %s", depot, service_night, version, solver.status)
    return record


def _month_peaks_after(night: NightInput, plan: optimizer.Plan) -> dict[str, float]:
    """Per tariff demand charge, the month's peak in its periods once this plan has run: what the instance
    already counted as paid (earlier nights, this night before a re-plan's start, the base load) or the plan's
    own peak, whichever is higher."""
    return night.instance.demand_charges().month_peaks_after(plan.totals.demand_peaks_kw)


def _with_reported_sources(
    night: NightInput, soc_now_pct: dict[int, float], soc_reported_at: dict[int, dt.datetime]
) -> NightInput:
    """Vehicles whose SoC a depot event reported are planned from it: their record says so."""
    sources = {
        vid: {**source, "arrival_soc": measured.reported_source(soc_reported_at.get(int(vid)))}
        if int(vid) in soc_now_pct
        else source
        for vid, source in night.sources.items()
    }
    return dataclasses.replace(night, sources=sources)


def _with_measured_soc(night: NightInput, soc_now_pct: dict[int, float]) -> NightInput:
    vehicles = tuple(
        dataclasses.replace(v, arrival_soc_pct=_to_usable_pct(soc_now_pct[int(v.id)], night.soc_windows[v.id]))
        if int(v.id) in soc_now_pct
        else v
        for v in night.instance.vehicles
    )
    return dataclasses.replace(night, instance=dataclasses.replace(night.instance, vehicles=vehicles))


def connector_key(connector: Connector) -> str:
    """The connector's id in the optimizer instance."""
    return f"{connector.charger.ocpp_charge_point_id}#{connector.connector_id}"


def _with_reported_plugs(night: NightInput, plugged_into: dict[int, Connector | None]) -> NightInput:
    """Pin each vehicle to the connector it is plugged into, as far as the night can honour it.

    - Reported plugged into C: fixed to C, unless C is not working tonight (faulted, offline, its charger
      down) or does not suit the vehicle (then free, with a warning: someone plugged it where it cannot
      charge). Reported unplugged: free, whatever the active plan assumed.
    - Not reported: keeps the connector the active plan has it on at now, unless that connector no longer
      works or a reported vehicle is on it now (it must have been unplugged first).
    """
    working = {co.id for _ch, co in night.instance.connectors()}
    claimed = {connector_key(c) for c in plugged_into.values() if c is not None}
    vehicles = []
    for vehicle in night.instance.vehicles:
        pk = int(vehicle.id)
        if pk in plugged_into:
            reported = plugged_into[pk]
            fixed = connector_key(reported) if reported is not None else None
            if fixed is not None and fixed not in working:
                logger.info("vehicle %s is plugged into %s, which is not working: free to move", pk, reported)
                fixed = None
            elif fixed is not None and not _suits(night.instance, vehicle, fixed):
                logger.warning(
                    "vehicle %s is reported plugged into %s, which does not suit it: planned as free", pk, reported
                )
                fixed = None
        else:
            fixed = vehicle.fixed_connector_id
            if fixed is not None and (fixed not in working or fixed in claimed):
                fixed = None
        vehicles.append(dataclasses.replace(vehicle, fixed_connector_id=fixed))
    return dataclasses.replace(night, instance=dataclasses.replace(night.instance, vehicles=tuple(vehicles)))


def _suits(instance: optimizer.Instance, vehicle: optimizer.Vehicle, connector_id: str) -> bool:
    free = dataclasses.replace(vehicle, fixed_connector_id=None)
    return any(co.id == connector_id for _ch, co in instance.compatible_connectors(free))


def _remainder_of_night(night: NightInput, active: ChargingPlan, now_slot: int, soc_now_pct: dict) -> NightInput:
    """The fresh night from ``now_slot`` on, with what the active plan already delivered frozen."""
    slot = dt.timedelta(minutes=night.horizon.slot_minutes)
    offset = round((active.horizon_start - night.horizon.start) / slot)
    n = night.horizon.num_slots
    # Energy the active plan's own past versions delivered before its horizon started.
    delivered_before = {v["id"]: float(v.get("energy_delivered_kwh") or 0.0) for v in active.instance["vehicles"]}
    # The month's peaks the active plan already counted include tonight's load before its own start.
    tonight = night.instance.demand_charges()
    already_paid = {c.name: c.month_peak_kw for c in plan_demand_charges(active, tonight.names())}
    full = dataclasses.replace(
        night.instance,
        vehicles=tuple(
            dataclasses.replace(v, energy_delivered_kwh=delivered_before.get(v.id, 0.0))
            for v in night.instance.vehicles
        ),
        **tonight.with_month_peaks(already_paid).instance_fields(),
    )

    def frame_slot(moment: dt.datetime | None) -> int | None:
        return None if moment is None else round((moment - night.horizon.start) / slot)

    vehicle_plans = []
    for charge in active.charges.select_related("connector__charger"):
        power = [0.0] * n
        for i, kw in enumerate(charge.power_kw):
            if 0 <= offset + i < n:
                power[offset + i] = kw
        connector_id = connector_key(charge.connector) if charge.connector else None
        vehicle_plans.append(
            optimizer.VehiclePlan(
                vehicle_id=str(charge.vehicle_id),
                connector_id=connector_id,
                plug_in_slot=frame_slot(charge.plug_in_at),
                unplug_slot=frame_slot(charge.plug_out_at),
                power_kw=power,
            )
        )
    stored = optimizer.Plan(
        vehicles=vehicle_plans,
        totals=optimizer.PlanTotals(),
        solver=optimizer.SolverInfo(method="stored", status="stored"),
    )
    soc_now = {
        str(pk): _to_usable_pct(soc, night.soc_windows[str(pk)])
        for pk, soc in soc_now_pct.items()
        if str(pk) in night.soc_windows
    }
    # Vehicles the active plan has plugged in at now stay there; _with_reported_plugs frees those whose
    # connector has faulted since.
    remainder = remaining_instance(full, stored, now_slot, soc_now_pct=soc_now)
    horizon = Horizon(start=night.horizon.at(now_slot), slot_minutes=night.horizon.slot_minutes, num_slots=n - now_slot)
    kept = {v.id for v in remainder.vehicles}
    return dataclasses.replace(
        night,
        instance=remainder,
        horizon=horizon,
        vehicles={k: v for k, v in night.vehicles.items() if k in kept},
        stays={k: v for k, v in night.stays.items() if k in kept},
        windows_hint=remaining_windows(stored, now_slot),
    )


def _slot_time(horizon: Horizon, slot: int | None) -> dt.datetime | None:
    return None if slot is None else horizon.at(slot)


def _planned_charges(record: ChargingPlan, night: NightInput, plan: optimizer.Plan) -> list[PlannedCharge]:
    rows = []
    instance_vehicles = {v.id: v for v in night.instance.vehicles}
    for vp in plan.vehicles:
        vehicle_instance = instance_vehicles[vp.vehicle_id]
        window = night.soc_windows[vp.vehicle_id]
        arrives, departs = night.stays[vp.vehicle_id]
        rows.append(
            PlannedCharge(
                plan=record,
                vehicle=night.vehicles[vp.vehicle_id],
                connector=night.connectors.get(vp.connector_id) if vp.connector_id else None,
                arrival_at=arrives,
                departure_at=departs,
                plug_in_at=_slot_time(night.horizon, vp.plug_in_slot),
                plug_out_at=_slot_time(night.horizon, vp.unplug_slot),
                arrival_soc_pct=round(_to_vehicle_pct(vehicle_instance.arrival_soc_pct, window), 2),
                required_soc_pct=round(_to_vehicle_pct(vehicle_instance.required_soc_pct, window), 2),
                departure_soc_pct=round(_to_vehicle_pct(vp.departure_soc_pct, window), 2),
                energy_kwh=round(vp.energy_delivered_kwh, 3),
                shortfall_kwh=round(vp.shortfall_kwh, 3),
                shortfall_reason=(vp.shortfall_reason or "")[:200],
                power_kw=[round(p, 3) for p in vp.power_kw],
                sources=night.sources.get(vp.vehicle_id, {}),
            )
        )
    return rows


def _raise_alerts(record: ChargingPlan, night: NightInput, plan: optimizer.Plan) -> None:
    """Open (or refresh) alerts for this night; resolve this night's alerts the new plan no longer has."""
    depot = record.depot
    prefix = f"plan:{depot.pk}:{record.service_night.isoformat()}:"
    wanted: dict[str, dict] = {}
    for vehicle in night.no_connector:
        wanted[f"{prefix}no-connector:{vehicle.pk}"] = {
            "kind": Alert.Kind.NO_COMPATIBLE_CONNECTOR,
            "severity": Alert.Severity.CRITICAL,
            "vehicle": vehicle,
            "says": message("no_compatible_connector", vehicle=vehicle.fleet_number, depot=depot.name),
        }
    for vp in plan.vehicles:
        if not is_ready(vp.shortfall_kwh) and f"{prefix}no-connector:{vp.vehicle_id}" not in wanted:
            vehicle = night.vehicles[vp.vehicle_id]
            short = {"vehicle": vehicle.fleet_number, "shortfall_kwh": round(vp.shortfall_kwh, 1)}
            wanted[f"{prefix}not-ready:{vp.vehicle_id}"] = {
                "kind": Alert.Kind.VEHICLE_NOT_READY,
                "severity": Alert.Severity.CRITICAL,
                "vehicle": vehicle,
                "says": (
                    message("vehicle_short_because", **short, reason=shortfall_reason(vp.shortfall_reason))
                    if vp.shortfall_reason
                    else message("vehicle_short", **short)
                ),
                "details": {"shortfall_kwh": vp.shortfall_kwh, "reason": vp.shortfall_reason},
            }
    grid_short = [vp for vp in plan.vehicles if vp.shortfall_reason and "grid" in vp.shortfall_reason.lower()]
    if grid_short:
        wanted[f"{prefix}grid"] = {
            "kind": Alert.Kind.GRID_LIMIT_TOO_LOW,
            "severity": Alert.Severity.WARNING,
            "says": message(
                "grid_limit_too_low",
                depot=depot.name,
                grid_limit_kw=round(depot.grid_limit_kw, 1),
                vehicles=len(grid_short),
            ),
            "details": {"vehicles": [vp.vehicle_id for vp in grid_short]},
        }
    stale = Alert.objects.filter(key__startswith=prefix, status__in=UNRESOLVED).exclude(key__in=wanted)
    for key in list(stale.values_list("key", flat=True)):
        alert_resolve(key=key)
    for key, fields in wanted.items():
        alert_raise(key=key, plan=record, depot=depot, organization_id=depot.organization_id, **fields)


def current_service_night(depot: Depot, moment: dt.datetime | None = None) -> dt.date:
    """The night a moment belongs to: before the horizon's start hour it is still last night's."""
    local = (moment or timezone.now()).astimezone(depot.zone)
    return local.date() - dt.timedelta(days=1) if local.hour < PLAN_HORIZON_START_HOUR else local.date()
