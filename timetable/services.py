"""Writes of the timetable app: GTFS feed -> fleet blocks, buses -> blocks by energy, pins.

Blocks and assignments are fleet's rows: they are written only through ``fleet.services``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from charging import planning
from charging.models import ChargingPlan
from fleet import services as fleet_services
from fleet.models import Block, Depot, Vehicle, VehicleModel
from timetable import assignment, blocking, gtfs
from timetable import selectors as timetable_selectors
from timetable.models import FeedImport, PinnedAssignment, TimetableBlock

# Assumed figures (docs/timetable.md): keep them here, in one place.
DEADHEAD_DETOUR_FACTOR = 1.3  # road km per straight-line km between the depot and a stop
DEADHEAD_SPEED_KMH = 25.0
MIN_LAYOVER_MIN = 5.0
MAX_WAIT_MIN = 180.0
DEFAULT_IMPORT_DAYS = 7
MAX_IMPORT_DAYS = 62
HEAT_FACTOR_PER_K = 0.012  # air conditioning above 20 °C monthly mean
COLD_FACTOR_PER_K = 0.015  # heating below 15 °C monthly mean
MINUTES_PER_DAY = 1440


def season_factor(depot: Depot, day: dt.date) -> float:
    """Consumption multiplier for HVAC from the depot's monthly mean temperature (1.0 when unknown)."""
    temps = depot.monthly_mean_temperature_c
    if not temps:
        return 1.0
    t = float(temps[day.month - 1])
    return 1.0 + HEAT_FACTOR_PER_K * max(0.0, t - 20.0) + COLD_FACTOR_PER_K * max(0.0, 15.0 - t)


def block_code(prefix: str, ident: str) -> str:
    code = f"{prefix}{ident}"
    if len(code) <= 40:
        return code
    return f"{code[:31]}-{hashlib.sha1(code.encode(), usedforsecurity=False).hexdigest()[:8]}"  # a short, stable name


@dataclasses.dataclass
class PlannedBlock:
    code: str
    gtfs_block_id: str
    service_date: dt.date
    departs_at: dt.time
    returns_at: dt.time
    trip_ids: list[str]
    service_km: float
    deadhead_km: float
    energy_kwh: float
    season_factor: float

    @property
    def distance_km(self) -> float:
        return round(self.service_km + self.deadhead_km, 3)


@dataclasses.dataclass
class ImportReport:
    feed_import_id: int | None
    service_from: dt.date
    service_to: dt.date
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    withdrawn: list[str]
    days: list[dict[str, Any]]
    warnings: list[str]
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["service_from"] = self.service_from.isoformat()
        data["service_to"] = self.service_to.isoformat()
        return data


class _Geometry:
    """Deadhead (minutes, km) between stops and between the depot and a stop."""

    def __init__(self, feed: gtfs.Feed, depot: Depot) -> None:
        self.stops = feed.stops
        self.depot = (depot.latitude, depot.longitude) if depot.latitude is not None else None
        self._km: dict[tuple[str, str], float] = {}  # the blocking core asks for the same pairs many times

    def km(self, a: str, b: str) -> float:
        if a == b:
            return 0.0
        km = self._km.get((a, b))
        if km is None:
            sa, sb = self.stops[a], self.stops[b]
            km = self._km[(a, b)] = gtfs.haversine_km(sa.lat, sa.lon, sb.lat, sb.lon) * DEADHEAD_DETOUR_FACTOR
        return km

    def depot_km(self, stop: str) -> float:
        if self.depot is None:
            return 0.0  # no depot location: the depot is taken to be at the block's first/last stop
        s = self.stops[stop]
        latitude, longitude = self.depot
        assert latitude is not None and longitude is not None  # set together (Depot.clean)
        return gtfs.haversine_km(latitude, longitude, s.lat, s.lon) * DEADHEAD_DETOUR_FACTOR

    @staticmethod
    def minutes(km: float) -> float:
        return km / DEADHEAD_SPEED_KMH * 60.0


def _time_of(minutes: float) -> dt.time:
    m = int(round(minutes)) % MINUTES_PER_DAY
    return dt.time(m // 60, m % 60)


def _plan_block(
    *,
    code: str,
    gtfs_block_id: str,
    day: dt.date,
    trips: list[gtfs.FeedTrip],
    geo: _Geometry,
    kwh_per_km: float,
    factor: float,
) -> PlannedBlock | str:
    trips = sorted(trips, key=lambda t: t.start_min)
    pull_out_km, pull_in_km = geo.depot_km(trips[0].start_stop), geo.depot_km(trips[-1].end_stop)
    between_km = sum(geo.km(a.end_stop, b.start_stop) for a, b in zip(trips, trips[1:], strict=False))
    departs = trips[0].start_min - geo.minutes(pull_out_km)
    returns = trips[-1].end_min + geo.minutes(pull_in_km)
    if returns - departs >= MINUTES_PER_DAY:
        return f"block {code} on {day} lasts 24 hours or more; skipped"
    # A block that leaves the depot after midnight (GTFS 24:xx or later) belongs to the next calendar day.
    service_date = day + dt.timedelta(days=int(departs // MINUTES_PER_DAY))
    if round(departs) % MINUTES_PER_DAY == round(returns) % MINUTES_PER_DAY:
        returns += 1
    service_km = sum(t.distance_km for t in trips)
    deadhead_km = pull_out_km + pull_in_km + between_km
    return PlannedBlock(
        code=code,
        gtfs_block_id=gtfs_block_id,
        service_date=service_date,
        departs_at=_time_of(departs),
        returns_at=_time_of(returns),
        trip_ids=[t.trip_id for t in trips],
        service_km=round(service_km, 3),
        deadhead_km=round(deadhead_km, 3),
        energy_kwh=round((service_km + deadhead_km) * kwh_per_km * factor, 2),
        season_factor=round(factor, 4),
    )


def default_vehicle_model(depot: Depot) -> VehicleModel | None:
    counts = Counter(
        timetable_selectors.depot_vehicles(depot)
        .filter(model__kind=VehicleModel.Kind.BUS)
        .values_list("model_id", flat=True)
    )
    if not counts:
        return None
    return VehicleModel.objects.get(pk=counts.most_common(1)[0][0])


def plan_blocks(
    *, feed: gtfs.Feed, depot: Depot, date_from: dt.date, date_to: dt.date, vehicle_model: VehicleModel
) -> tuple[list[PlannedBlock], list[dict[str, Any]], list[str]]:
    """What the feed makes of ``depot``'s days: blocks, a blocking summary per day, and warnings."""
    geo = _Geometry(feed, depot)
    warnings: list[str] = []
    if geo.depot is None:
        warnings.append(
            f"depot {depot.code} has no location: no deadhead counted (the depot is taken to be at each block's "
            "first and last stop)"
        )
    usable_kwh = (
        vehicle_model.nominal_pack_kwh * (vehicle_model.usable_soc_max_pct - vehicle_model.usable_soc_min_pct) / 100
    )
    max_block_kwh = usable_kwh * (1 - timetable_selectors.readiness_reserve_pct() / 100)
    planned: list[PlannedBlock] = []
    days: list[dict[str, Any]] = []
    sources: Counter[str] = Counter()
    day = date_from
    while day <= date_to:
        factor = season_factor(depot, day)
        kwh_per_km = vehicle_model.consumption_kwh_per_km
        trips = feed.trips_on(day)
        sources.update(t.distance_source for t in trips)
        by_block: dict[str, list[gtfs.FeedTrip]] = {}
        loose: list[gtfs.FeedTrip] = []
        for trip in trips:
            (by_block.setdefault(trip.block_id, []) if trip.block_id else loose).append(trip)
        summary: dict[str, Any] = {"date": day.isoformat(), "trips": len(trips), "feed_blocks": len(by_block)}
        results: list[PlannedBlock | str] = [
            _plan_block(
                code=block_code("", bid),
                gtfs_block_id=bid,
                day=day,
                trips=ts,
                geo=geo,
                kwh_per_km=kwh_per_km,
                factor=factor,
            )
            for bid, ts in sorted(by_block.items())
        ]
        if loose:
            rate = kwh_per_km * factor
            core_trips = [
                blocking.Trip(
                    trip_id=t.trip_id,
                    start_min=t.start_min,
                    end_min=t.end_min,
                    start_stop=t.start_stop,
                    end_stop=t.end_stop,
                    energy_kwh=t.distance_km * rate,
                    pull_out_kwh=geo.depot_km(t.start_stop) * rate,
                    pull_in_kwh=geo.depot_km(t.end_stop) * rate,
                )
                for t in loose
            ]

            def deadhead(a: str, b: str, rate: float = rate) -> tuple[float, float]:
                km = geo.km(a, b)
                return geo.minutes(km), km * rate

            chained = blocking.chain_trips(
                core_trips,
                blocking.Rules(min_layover_min=MIN_LAYOVER_MIN, max_wait_min=MAX_WAIT_MIN, max_block_kwh=max_block_kwh),
                deadhead,
            )
            by_id = {t.trip_id: t for t in loose}
            results += [
                _plan_block(
                    code=block_code("~", ids[0]),
                    gtfs_block_id="",
                    day=day,
                    trips=[by_id[i] for i in ids],
                    geo=geo,
                    kwh_per_km=kwh_per_km,
                    factor=factor,
                )
                for ids in chained.blocks
            ]
            summary.update(
                chained_trips=len(loose),
                chained_blocks=chained.count,
                lower_bound=chained.lower_bound,
                optimal=chained.optimal,
                method=chained.method,
            )
            if chained.over_limit:
                warnings.append(f"{day}: trips longer than one charge allows: {', '.join(chained.over_limit[:5])}")
        for r in results:
            if isinstance(r, str):
                warnings.append(r)
            else:
                if r.energy_kwh > max_block_kwh:
                    warnings.append(
                        f"block {r.code} on {r.service_date} needs {r.energy_kwh:.0f} kWh, more than a new "
                        f"{vehicle_model} holds above reserve ({max_block_kwh:.0f} kWh)"
                    )
                planned.append(r)
        days.append(summary)
        day += dt.timedelta(days=1)
    if sources.get("stops"):
        warnings.append(f"{sources['stops']} trip-days have no shape: distance from straight lines between stops")
    return planned, days, warnings


@transaction.atomic
def gtfs_import(
    *,
    depot: Depot,
    path: Path,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    vehicle_model: VehicleModel | None = None,
    user=None,
    dry_run: bool = False,
) -> ImportReport:
    """Make ``depot``'s dated blocks for ``date_from``..``date_to`` from the GTFS feed at ``path``.

    One transaction: a bad feed (``gtfs.FeedError``) or a rejected block leaves nothing behind. Re-importing
    updates blocks in place (their assignments stay when the block still runs), and marks blocks of those days
    that the feed no longer has as withdrawn (kept, with their assignments, not deleted). ``dry_run`` computes the
    same report and rolls back: the admin's preview.
    """
    feed = gtfs.read_feed(Path(path))
    today = timezone.localdate(timezone=depot.zone)
    date_from = date_from or max(today, feed.first_date or today)
    date_to = date_to or date_from + dt.timedelta(days=DEFAULT_IMPORT_DAYS - 1)
    if feed.last_date and not (date_to and date_to <= feed.last_date):
        date_to = max(date_from, min(date_to, feed.last_date))
    if date_to < date_from:
        raise ValidationError({"date_to": "The last date is before the first."})
    if (date_to - date_from).days + 1 > MAX_IMPORT_DAYS:
        raise ValidationError({"date_to": f"Import at most {MAX_IMPORT_DAYS} days at a time."})
    vehicle_model = vehicle_model or default_vehicle_model(depot)
    if vehicle_model is None:
        raise ValidationError(
            {
                "vehicle_model": f"Depot {depot.code} has no buses: name the vehicle model whose kWh/km "
                "prices the blocks."
            }
        )
    planned, days, warnings = plan_blocks(
        feed=feed, depot=depot, date_from=date_from, date_to=date_to, vehicle_model=vehicle_model
    )
    record = FeedImport.objects.create(
        depot=depot,
        file_name=Path(path).name[:200],
        feed_sha256=feed.sha256,
        feed_version=feed.version[:100],
        service_from=date_from,
        service_to=date_to,
        imported_by=user if user is not None and user.is_authenticated else None,
    )
    existing = {
        (b.code, b.service_date): b
        for b in timetable_selectors.dated_blocks(depot, date_from, date_to + dt.timedelta(days=1))
    }
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    seen: set[int] = set()
    for p in planned:
        label = f"{p.code}@{p.service_date.isoformat()}"
        fields: dict[str, Any] = {
            "departs_at": p.departs_at,
            "returns_at": p.returns_at,
            "distance_km": p.distance_km,
            "planned_energy_kwh": p.energy_kwh,
        }
        provenance = {
            "feed_import": record,
            "gtfs_block_id": p.gtfs_block_id[:100],
            "trip_ids": p.trip_ids,
            "service_km": p.service_km,
            "deadhead_km": p.deadhead_km,
            "season_factor": p.season_factor,
            "energy_kwh": p.energy_kwh,
            "current": True,
        }
        block = existing.get((p.code, p.service_date))
        if block is None:
            block = fleet_services.block_create(depot=depot, code=p.code, service_date=p.service_date, **fields)
            TimetableBlock.objects.create(block=block, **provenance)
            created.append(label)
        else:
            link = TimetableBlock.objects.filter(block=block).first()
            if link is None:
                warnings.append(f"block {label} was typed in by hand: left as it is")
                seen.add(block.pk)
                continue
            if any(getattr(block, k) != v for k, v in fields.items()) or not link.current:
                fleet_services.block_update(block=block, data=fields)
                updated.append(label)
            else:
                unchanged.append(label)
            TimetableBlock.objects.filter(pk=link.pk).update(**provenance)
        seen.add(block.pk)
    withdrawn = []
    for link in timetable_selectors.current_feed_blocks(depot, date_from, date_to + dt.timedelta(days=1)):
        served_on = link.block.service_date  # imported blocks run on one date (weekly blocks are typed in)
        if link.block_id not in seen and served_on is not None and served_on <= date_to:
            link.current = False
            link.save(update_fields=["current"])
            withdrawn.append(f"{link.block.code}@{served_on.isoformat()}")
    record.blocks_created, record.blocks_updated = len(created), len(updated)
    record.blocks_unchanged, record.blocks_withdrawn = len(unchanged), len(withdrawn)
    report = ImportReport(
        feed_import_id=None if dry_run else record.pk,
        service_from=date_from,
        service_to=date_to,
        created=created,
        updated=updated,
        unchanged=unchanged,
        withdrawn=withdrawn,
        days=days,
        warnings=warnings,
        dry_run=dry_run,
    )
    record.report = {"days": days, "warnings": warnings, "withdrawn": withdrawn}
    record.save()
    if dry_run:
        transaction.set_rollback(True)
    return report


# --- Assignment -----------------------------------------------------------------------------------------


@transaction.atomic
def vehicles_assign(*, depot: Depot, service_date: dt.date, dry_run: bool = False) -> dict[str, Any]:
    """Give ``depot``'s blocks on ``service_date`` to its buses by energy (``timetable.assignment``) and write
    the assignments (pinned ones are kept, the others are replaced). Returns what was done and why."""
    inputs = timetable_selectors.assignment_inputs(depot, service_date)
    result = assignment.assign(inputs.buses, inputs.duties, pins=inputs.pins)
    if not dry_run:
        # Only what changes is written: assignments that stay are left alone (a re-run costs little), the others
        # are removed first so that a bus moving between blocks never clashes with its old one.
        # In bulk: one delete, one overlap check and one insert-or-update, whatever the number of blocks.
        pinned_blocks = {p.block_id for p in inputs.pins}
        kept: set[str] = set()
        removed = []
        for a in timetable_selectors.assignments_on(depot, service_date):
            block_id = str(a.block_id)
            if block_id in pinned_blocks or result.assigned.get(block_id) == str(a.vehicle_id):
                kept.add(block_id)
            else:
                removed.append(a)
        fleet_services.blocks_unassign(assignments=removed)
        fleet_services.blocks_assign(
            pairs=[
                (inputs.blocks[block_id], inputs.vehicles[vehicle_id])
                for block_id, vehicle_id in result.assigned.items()
                if block_id not in kept
            ],
            service_date=service_date,
        )
    left = result.budget_left_kwh(inputs.buses, inputs.duties)
    naive = assignment.naive_assign(inputs.buses, inputs.duties)
    naive_left = dict.fromkeys((b.vehicle_id for b in inputs.buses), 0.0)
    for b in inputs.buses:
        naive_left[b.vehicle_id] = b.pull_out_kwh - b.reserve_kwh
    energy = {d.block_id: d.energy_kwh for d in inputs.duties}
    for block_id, vehicle_id in naive.items():
        naive_left[vehicle_id] -= energy[block_id]
    return {
        "depot": depot.code,
        "service_date": service_date.isoformat(),
        "status": result.status,
        "method": result.method,
        "objective": round(result.objective, 3) if result.objective is not None else None,
        "bound": round(result.bound, 3) if result.bound is not None else None,
        "solve_seconds": round(result.solve_seconds, 3),
        "dry_run": dry_run,
        "assigned": [
            {
                "block": inputs.blocks[b].code,
                "block_id": inputs.blocks[b].pk,
                "vehicle": inputs.vehicles[v].fleet_number,
                "vehicle_id": inputs.vehicles[v].pk,
                "energy_kwh": round(energy[b], 1),
                "pinned": b in {p.block_id for p in inputs.pins},
                "vehicle_kwh_left_above_reserve": round(left[v], 1),
            }
            for b, v in sorted(result.assigned.items(), key=lambda kv: inputs.blocks[kv[0]].departs_at)
        ],
        "uncovered": [
            {"block": inputs.blocks[b].code, "block_id": inputs.blocks[b].pk, "reason": reason}
            for b, reason in result.uncovered.items()
        ],
        "buses_below_reserve": sorted(inputs.vehicles[v].fleet_number for v, kwh in left.items() if kwh < -1e-6),
        "naive_buses_below_reserve": sorted(
            inputs.vehicles[v].fleet_number for v, kwh in naive_left.items() if kwh < -1e-6
        ),
        "warnings": list(result.warnings) + inputs.notes,
    }


MAX_PLAN_ROUNDS = 4


@transaction.atomic
def vehicles_assign_with_plan(
    *, depot: Depot, service_date: dt.date, max_rounds: int = MAX_PLAN_ROUNDS, dry_run: bool = False
) -> dict[str, Any]:
    """Assign, then plan the night before with those blocks (``charging.planning.plan_depot_night``), then
    assign again with the plan's pull-out SoC, ... until the assignment no longer changes: the plan then was
    made for the very blocks the buses run. After ``max_rounds`` plans without that, the last assignment stands
    and the answer says the two did not agree.

    The assignment reads the plan's *planned* departure SoC, which the plan chose for the previous assignment
    (a bus planned for a short block is charged for that block): a re-assignment therefore moves blocks only
    off buses the plan could not charge enough, which is why the loop settles in a few rounds.
    ``dry_run`` rolls everything back (plans included)."""
    night = service_date - dt.timedelta(days=1)
    result = vehicles_assign(depot=depot, service_date=service_date)
    previous = _assigned_pairs(result)
    rounds: list[dict[str, Any]] = [{"round": 0, "plan": None, "assigned": len(previous), "changed": None}]
    agreed = False
    for round_number in range(1, max_rounds + 1):
        plan = planning.plan_depot_night(
            depot=depot,
            service_night=night,
            trigger=ChargingPlan.Trigger.MANUAL,
            trigger_detail=f"timetable: assignment and plan, round {round_number}",
        )
        result = vehicles_assign(depot=depot, service_date=service_date)
        current = _assigned_pairs(result)
        changed = sorted(block for block, vehicle in current.items() if previous.get(block) != vehicle)
        changed += sorted(block for block in previous if block not in current)
        rounds.append(
            {
                "round": round_number,
                "plan": plan.pk,
                "plan_version": plan.version,
                "vehicles_short": plan.vehicles_short,
                "assigned": len(current),
                "changed": changed,
            }
        )
        previous = current
        if not changed:
            agreed = True
            break
    if dry_run:
        transaction.set_rollback(True)
    result["dry_run"] = dry_run
    result["plan_rounds"] = rounds
    result["plan_agreed"] = agreed
    if not agreed:
        result["warnings"].append(
            f"the assignment still changed after {max_rounds} charging plans: the last assignment stands, and the "
            "active plan was made for the one before it"
        )
    return result


def _assigned_pairs(result: dict[str, Any]) -> dict[str, str]:
    return {a["block"]: a["vehicle"] for a in result["assigned"]}


@transaction.atomic
def assignment_pin(*, block: Block, vehicle: Vehicle, service_date: dt.date, user=None) -> PinnedAssignment:
    """Staff's choice: ``vehicle`` does ``block`` on ``service_date``; written now and kept by the optimiser."""
    fleet_services.block_assign(block=block, vehicle=vehicle, service_date=service_date)
    pin, _created = PinnedAssignment.objects.update_or_create(
        block=block,
        service_date=service_date,
        defaults={"vehicle": vehicle, "pinned_by": user if user is not None and user.is_authenticated else None},
    )
    return pin


@transaction.atomic
def assignment_unpin(*, pin: PinnedAssignment) -> None:
    """Forget the pin; the assignment stays until the optimiser runs again."""
    pin.delete()
