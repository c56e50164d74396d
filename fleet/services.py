"""Writes to the fleet registry. Views, admin actions, commands and tasks call these, nothing else saves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from config.services import model_create, model_update
from fleet.models import Block, BlockAssignment, Depot, DepotMembership, Organization, Vehicle, VehicleModel
from fleet.vin import normalize_vin

VEHICLE_UPDATABLE_FIELDS = ("fleet_number", "vin", "plate", "model", "home_depot", "status")
BLOCK_UPDATABLE_FIELDS = (
    "code",
    "service_date",
    "weekdays",
    "valid_from",
    "valid_until",
    "departs_at",
    "returns_at",
    "distance_km",
    "planned_energy_kwh",
)
DEPOT_UPDATABLE_FIELDS = (
    "name",
    "code",
    "time_zone",
    "latitude",
    "longitude",
    "geofence_radius_m",
    "grid_limit_kw",
    "base_load_kw",
    "tariff",
    "planning_time",
    "monthly_mean_temperature_c",
)


@transaction.atomic
def depot_create(*, organization: Organization, name: str, code: str, grid_limit_kw: float, **fields: Any) -> Depot:
    return model_create(Depot, organization=organization, name=name, code=code, grid_limit_kw=grid_limit_kw, **fields)


@transaction.atomic
def depot_update(*, depot: Depot, data: dict[str, Any]) -> Depot:
    return model_update(instance=depot, fields=DEPOT_UPDATABLE_FIELDS, data=data)[0]


@transaction.atomic
def membership_set(*, user, depot: Depot, role: str) -> DepotMembership:
    membership, _created = DepotMembership.objects.update_or_create(user=user, depot=depot, defaults={"role": role})
    return membership


@transaction.atomic
def vehicle_create(
    *,
    organization: Organization,
    fleet_number: str,
    vin: str,
    model: VehicleModel,
    home_depot: Depot | None = None,
    plate: str = "",
    status: str = Vehicle.Status.IN_SERVICE,
) -> Vehicle:
    return model_create(
        Vehicle,
        organization=organization,
        fleet_number=fleet_number,
        vin=normalize_vin(vin),
        model=model,
        home_depot=home_depot,
        plate=plate,
        status=status,
    )


@transaction.atomic
def vehicle_update(*, vehicle: Vehicle, data: dict[str, Any]) -> Vehicle:
    if "vin" in data:
        data = {**data, "vin": normalize_vin(data["vin"])}
    return model_update(instance=vehicle, fields=VEHICLE_UPDATABLE_FIELDS, data=data)[0]


@transaction.atomic
def block_create(
    *, depot: Depot, code: str, departs_at: dt.time, returns_at: dt.time, distance_km: float, **fields
) -> Block:
    return model_create(
        Block,
        depot=depot,
        code=code,
        departs_at=departs_at,
        returns_at=returns_at,
        distance_km=distance_km,
        **fields,
    )


@transaction.atomic
def block_update(*, block: Block, data: dict[str, Any]) -> Block:
    block, changed = model_update(instance=block, fields=BLOCK_UPDATABLE_FIELDS, data=data)
    if changed:
        # Existing assignments follow the block's new times (and must still not overlap) or go if it no
        # longer runs on their date.
        for assignment in list(block.assignments.select_related("vehicle")):
            if block.runs_on(assignment.service_date):
                block_assign(block=block, vehicle=assignment.vehicle, service_date=assignment.service_date)
            else:
                assignment.delete()
    return block


@transaction.atomic
def block_assign(*, block: Block, vehicle: Vehicle, service_date: dt.date) -> BlockAssignment:
    """Give ``block`` on ``service_date`` to ``vehicle``; rejects a vehicle that would be in two places."""
    if not block.runs_on(service_date):
        raise ValidationError(
            {
                "service_date": _("Block %(block)s does not run on %(date)s.")
                % {"block": block.code, "date": service_date.isoformat()}
            }
        )
    if vehicle.organization_id != block.depot.organization_id:
        raise ValidationError({"vehicle": _("The vehicle belongs to another organisation.")})
    if vehicle.status == Vehicle.Status.RETIRED:
        raise ValidationError({"vehicle": _("A retired vehicle cannot take a block.")})
    # Lock the vehicle's row: two concurrent assignments for one vehicle must see each other's result,
    # otherwise both could pass the overlap check below.
    Vehicle.objects.select_for_update().filter(pk=vehicle.pk).first()
    starts_at, ends_at = block.window_on(service_date)
    clash = (
        BlockAssignment.objects.filter(vehicle=vehicle, starts_at__lt=ends_at, ends_at__gt=starts_at)
        .exclude(block=block, service_date=service_date)
        .select_related("block__depot")
        .first()
    )
    if clash:
        zone = clash.block.depot.zone
        raise ValidationError(
            {
                "vehicle": _("%(vehicle)s already does block %(block)s from %(start)s to %(end)s.")
                % {
                    "vehicle": vehicle.fleet_number,
                    "block": clash.block.code,
                    "start": clash.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                    "end": clash.ends_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                }
            }
        )
    assignment, _created = BlockAssignment.objects.update_or_create(
        block=block,
        service_date=service_date,
        defaults={"vehicle": vehicle, "starts_at": starts_at, "ends_at": ends_at},
    )
    return assignment


@transaction.atomic
def blocks_assign(*, pairs: Sequence[tuple[Block, Vehicle]], service_date: dt.date) -> list[BlockAssignment]:
    """``block_assign`` for many blocks of one day at once, with the same checks, in a handful of queries:
    the vehicles locked together, one overlap query, one insert-or-update. The blocks' existing rows of that
    day are being replaced, so they do not count as clashes; two of the new ones on one vehicle do."""
    if not pairs:
        return []
    windows: dict[int, list[tuple[dt.datetime, dt.datetime, Block, bool]]] = {}  # (start, end, block, new?)
    rows: list[BlockAssignment] = []
    for block, vehicle in pairs:
        if not block.runs_on(service_date):
            raise ValidationError(
                {
                    "service_date": _("Block %(block)s does not run on %(date)s.")
                    % {"block": block.code, "date": service_date.isoformat()}
                }
            )
        if vehicle.organization_id != block.depot.organization_id:
            raise ValidationError({"vehicle": _("The vehicle belongs to another organisation.")})
        if vehicle.status == Vehicle.Status.RETIRED:
            raise ValidationError({"vehicle": _("A retired vehicle cannot take a block.")})
        starts_at, ends_at = block.window_on(service_date)
        windows.setdefault(vehicle.pk, []).append((starts_at, ends_at, block, True))
        rows.append(
            BlockAssignment(
                block=block, vehicle=vehicle, service_date=service_date, starts_at=starts_at, ends_at=ends_at
            )
        )
    vehicles = {vehicle.pk: vehicle for _block, vehicle in pairs}
    # Locked in one order (by pk), as block_assign locks one: concurrent callers see each other's result.
    list(Vehicle.objects.select_for_update().filter(pk__in=sorted(vehicles)).order_by("pk").values_list("pk"))
    earliest = min(w[0] for ws in windows.values() for w in ws)
    latest = max(w[1] for ws in windows.values() for w in ws)
    others = (
        BlockAssignment.objects.filter(vehicle__in=list(vehicles), starts_at__lt=latest, ends_at__gt=earliest)
        .exclude(block__in=[block.pk for block, _vehicle in pairs], service_date=service_date)
        .select_related("block__depot")
    )
    for other in others:
        windows[other.vehicle_id].append((other.starts_at, other.ends_at, other.block, False))
    for vehicle_pk, spans in windows.items():
        spans.sort(key=lambda w: w[0])
        for before, after in zip(spans, spans[1:], strict=False):
            if after[0] < before[1]:
                clash = after if not after[3] else before  # name the block the vehicle already had, if any
                zone = clash[2].depot.zone
                raise ValidationError(
                    {
                        "vehicle": _("%(vehicle)s already does block %(block)s from %(start)s to %(end)s.")
                        % {
                            "vehicle": vehicles[vehicle_pk].fleet_number,
                            "block": clash[2].code,
                            "start": clash[0].astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                            "end": clash[1].astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                        }
                    }
                )
    return BlockAssignment.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["block", "service_date"],
        update_fields=["vehicle", "starts_at", "ends_at"],
    )


@transaction.atomic
def block_unassign(*, assignment: BlockAssignment) -> None:
    assignment.delete()


@transaction.atomic
def blocks_unassign(*, assignments: Sequence[BlockAssignment]) -> None:
    """``block_unassign`` for many at once (one delete)."""
    if assignments:
        BlockAssignment.objects.filter(pk__in=[a.pk for a in assignments]).delete()
