"""Reads for the timetable app: blocks and buses of a depot, and the assignment optimiser's input.

Other apps are read through their selectors; the planned pull-out SoC comes from the depot's active charging
plan for the night before (``charging.models.PlannedCharge``: charging has no selector for it yet).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics

from django.db.models import QuerySet

from batteries.selectors import vehicle_capacities
from charging import planning
from charging.models import ChargingPlan, Connector, PlannedCharge
from charging.selectors import connector_queryset
from fleet.models import Block, BlockAssignment, Depot, Vehicle
from fleet.selectors import block_assignment_queryset, block_queryset, vehicle_queryset
from timetable import assignment
from timetable.models import PinnedAssignment, TimetableBlock

DC_STANDARDS = {Connector.Standard.CCS2, Connector.Standard.CCS1, Connector.Standard.PANTOGRAPH}
AC_STANDARDS = {Connector.Standard.TYPE2, Connector.Standard.J1772, Connector.Standard.OUTLET}
USABLE_CONNECTOR_STATUSES = ("available", "charging")
PLAN_SOC_ROUNDING_PCT = 0.005  # PlannedCharge.departure_soc_pct is rounded to 2 decimals


def readiness_reserve_pct() -> float:
    return planning.readiness_reserve_pct()


def depot_vehicles(depot: Depot) -> QuerySet[Vehicle]:
    return vehicle_queryset().filter(home_depot=depot, status=Vehicle.Status.IN_SERVICE).order_by("fleet_number")


def dated_blocks(depot: Depot, first: dt.date, last: dt.date) -> QuerySet[Block]:
    return block_queryset().filter(depot=depot, service_date__gte=first, service_date__lte=last)


def current_feed_blocks(depot: Depot, first: dt.date, last: dt.date) -> QuerySet[TimetableBlock]:
    return TimetableBlock.objects.select_related("block").filter(
        block__depot=depot, block__service_date__gte=first, block__service_date__lte=last, current=True
    )


def blocks_running(depot: Depot, day: dt.date) -> list[Block]:
    """The depot's blocks that run on ``day``, without those a newer feed withdrew."""
    withdrawn = set(TimetableBlock.objects.filter(block__depot=depot, current=False).values_list("block_id", flat=True))
    candidates = block_queryset().filter(depot=depot).exclude(pk__in=withdrawn)
    dated = candidates.filter(service_date=day)
    weekly = candidates.filter(service_date__isnull=True, valid_from__lte=day)
    return list(dated) + [b for b in weekly if b.runs_on(day)]


def assignments_on(depot: Depot, day: dt.date) -> list[BlockAssignment]:
    return list(block_assignment_queryset().filter(block__depot=depot, service_date=day))


def pins_on(depot: Depot, day: dt.date) -> QuerySet[PinnedAssignment]:
    return PinnedAssignment.objects.select_related("block__depot", "vehicle").filter(
        block__depot=depot, service_date=day
    )


@dataclasses.dataclass
class AssignmentInputs:
    buses: list[assignment.Bus]
    duties: list[assignment.Duty]
    pins: list[assignment.Pin]
    blocks: dict[str, Block]
    vehicles: dict[str, Vehicle]
    notes: list[str]


def _can_charge_here(vehicle: Vehicle, standards: set[str]) -> bool:
    model = vehicle.model
    return bool(
        (model.max_dc_kw > 0 and standards & DC_STANDARDS) or (model.max_ac_kw > 0 and standards & AC_STANDARDS)
    )


def planned_pull_out_soc(depot: Depot, day: dt.date) -> dict[int, float] | None:
    """Vehicle pk -> SoC % (of the pack) at departure in the depot's active plan for the night before ``day``,
    in one query; None when there is no such plan."""
    plan = ChargingPlan.objects.filter(
        depot=depot, service_night=day - dt.timedelta(days=1), status=ChargingPlan.Status.ACTIVE
    )
    rows = PlannedCharge.objects.filter(plan__in=plan).values_list("vehicle_id", "departure_soc_pct")
    planned = dict(rows)
    if not planned and not plan.exists():
        return None
    return planned


def assignment_inputs(depot: Depot, day: dt.date, *, pull_out_soc: dict[int, float] | None = None) -> AssignmentInputs:
    """Buses with usable capacity at their latest SoH and expected pull-out energy; blocks with energy.

    A fixed number of queries whatever the fleet's size: the buses with their models, their packs' capacities
    and SoH (``batteries.selectors.vehicle_capacities``), the connectors, the plan's pull-out SoC (or
    ``pull_out_soc``, vehicle pk -> SoC %, when the caller has it: the plan-and-assign loop), blocks and pins."""
    notes: list[str] = []
    vehicles = list(depot_vehicles(depot))
    standards = {
        c.standard
        for c in connector_queryset().filter(
            charger__depot=depot, status__in=USABLE_CONNECTOR_STATUSES, charger__status__in=USABLE_CONNECTOR_STATUSES
        )
    }
    planned_soc = pull_out_soc if pull_out_soc is not None else planned_pull_out_soc(depot, day)
    if planned_soc is None:
        notes.append(f"no charging plan for the night of {day - dt.timedelta(days=1)}: buses assumed fully charged")
        planned_soc = {}
    capacities = vehicle_capacities(vehicles)
    reserve_pct = readiness_reserve_pct()
    buses: list[assignment.Bus] = []
    for v in vehicles:
        model = v.model
        capacity = capacities[v.pk]
        window = model.usable_soc_max_pct - model.usable_soc_min_pct
        usable = capacity.capacity_kwh * window / 100.0
        # The plan stores SoC rounded to 0.01 % and charges a bus just to what its block needs: half a step
        # back keeps that bus able to run the block it was planned for.
        soc = planned_soc[v.pk] + PLAN_SOC_ROUNDING_PCT if v.pk in planned_soc else model.usable_soc_max_pct
        pull_out = max(0.0, (min(soc, model.usable_soc_max_pct) - model.usable_soc_min_pct) / window) * usable
        can_charge = _can_charge_here(v, standards)
        buses.append(
            assignment.Bus(
                vehicle_id=str(v.pk),
                depot=str(depot.pk),
                usable_kwh=usable,
                pull_out_kwh=pull_out if (can_charge or v.pk in planned_soc) else 0.0,
                reserve_kwh=usable * reserve_pct / 100.0,
                soh_pct=capacity.soh_pct,
                can_charge=can_charge or v.pk in planned_soc,
                note="" if can_charge else f"{v.fleet_number}: no compatible connector at {depot.code}",
            )
        )
    rates = [v.model.consumption_kwh_per_km for v in vehicles] or [1.2]
    fallback_rate = statistics.median(rates)
    blocks = blocks_running(depot, day)
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=depot.zone)
    duties = []
    for b in blocks:
        starts, ends = b.window_on(day)
        energy = b.planned_energy_kwh if b.planned_energy_kwh is not None else b.distance_km * fallback_rate
        duties.append(
            assignment.Duty(
                block_id=str(b.pk),
                depot=str(depot.pk),
                start_min=(starts - midnight).total_seconds() / 60,
                end_min=(ends - midnight).total_seconds() / 60,
                energy_kwh=energy,
            )
        )
    pins = [assignment.Pin(block_id=str(p.block_id), vehicle_id=str(p.vehicle_id)) for p in pins_on(depot, day)]
    return AssignmentInputs(
        buses=buses,
        duties=duties,
        pins=pins,
        blocks={str(b.pk): b for b in blocks},
        vehicles={str(v.pk): v for v in vehicles},
        notes=notes,
    )
