"""What depot staff report during the night, and what it changes: the registry, then a re-plan."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from charging.alerts import equipment_status_alert
from charging.models import Charger, ChargingPlan, Connector, DepotEvent, PlannedCharge
from charging.planning import current_service_night, night_horizon
from charging.tasks import request_replan
from config.audit import audit_attribution
from fleet.models import Block, BlockAssignment, Depot, Vehicle

logger = logging.getLogger(__name__)

Kind = DepotEvent.Kind
NEEDS_VEHICLE = {Kind.VEHICLE_ARRIVED, Kind.VEHICLE_PLUGGED_IN, Kind.VEHICLE_PLUGGED_OUT}
NEEDS_CONNECTOR = {Kind.VEHICLE_PLUGGED_IN, Kind.CONNECTOR_FAULTED, Kind.CONNECTOR_RESTORED}
NEEDS_BLOCK = {Kind.BLOCK_CHANGED, Kind.BLOCK_CANCELLED}


class EventConflict(Exception):
    """The client re-used an event id for a different event."""


def _check_references(
    depot: Depot, kind: str, vehicle: Vehicle | None, connector: Connector | None, block: Block | None
) -> None:
    errors: dict[str, str] = {}
    if kind in NEEDS_VEHICLE and vehicle is None:
        errors["vehicle"] = _("This event needs the vehicle.")
    if kind in NEEDS_CONNECTOR and connector is None:
        errors["connector"] = _("This event needs the connector.")
    if kind in NEEDS_BLOCK and block is None:
        errors["block"] = _("This event needs the block.")
    if vehicle is not None and vehicle.home_depot_id != depot.pk:
        errors["vehicle"] = _("The vehicle's home depot is not this depot.")
    if connector is not None and connector.charger.depot_id != depot.pk:
        errors["connector"] = _("The connector is not at this depot.")
    if block is not None and block.depot_id != depot.pk:
        errors["block"] = _("The block does not belong to this depot.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def depot_event_record(
    *,
    depot: Depot,
    kind: str,
    client_event_id: str,
    occurred_at: dt.datetime | None = None,
    reported_by=None,
    vehicle: Vehicle | None = None,
    connector: Connector | None = None,
    block: Block | None = None,
    soc_pct: float | None = None,
    note: str = "",
) -> tuple[DepotEvent, bool]:
    """Record an event, apply it to the registry and ask for a re-plan. Returns (event, created).

    Re-sending the same ``client_event_id`` returns the stored event and changes nothing; re-using it for
    a different event raises ``EventConflict``.
    """
    occurred_at = occurred_at or timezone.now()
    fields: dict[str, Any] = {
        "kind": kind,
        "vehicle": vehicle,
        "connector": connector,
        "block": block,
        "soc_pct": soc_pct,
    }
    existing = DepotEvent.objects.filter(depot=depot, client_event_id=client_event_id).first()
    if existing is not None:
        if any(getattr(existing, name) != value for name, value in fields.items()):
            raise EventConflict(client_event_id)
        return existing, False
    _check_references(depot, kind, vehicle, connector, block)
    night = current_service_night(depot, occurred_at)
    event = DepotEvent(
        depot=depot,
        service_night=night,
        occurred_at=occurred_at,
        client_event_id=client_event_id,
        reported_by=reported_by,
        note=note,
        **fields,
    )
    event.full_clean()
    event.save()
    _apply(event)
    request_replan(
        depot=depot, service_night=night, reason=f"{kind} ({client_event_id})", request_key=f"event={event.pk}"
    )
    return event, True


@dataclass(frozen=True)
class EventReport:
    """One event of a batch for ``depot_events_record_many`` (the arguments of ``depot_event_record``)."""

    depot: Depot
    kind: str
    client_event_id: str
    occurred_at: dt.datetime
    vehicle: Vehicle | None = None
    connector: Connector | None = None
    block: Block | None = None
    soc_pct: float | None = None
    note: str = ""


@transaction.atomic
def depot_events_record_many(*, reports: list[EventReport]) -> int:
    """Record a burst of events (e.g. a charger gateway's plug-ins) as ``depot_event_record`` records one: the
    same checks and effects on the registry, but one query to find the known ids, one insert, and one re-plan
    request per depot night instead of one per event. An id already recorded is skipped (not compared: the
    senders here derive their ids from the message, so a known id is a re-send). An event that fails its checks
    is left out (logged), not the batch. Returns how many events were new."""
    if not reports:
        return 0
    known = set(
        DepotEvent.objects.filter(
            client_event_id__in={r.client_event_id for r in reports},
            depot_id__in={r.depot.pk for r in reports},
        ).values_list("depot_id", "client_event_id")
    )
    new: list[DepotEvent] = []
    nights: dict[tuple[int, dt.date], tuple[Depot, str]] = {}
    for report in reports:
        if (report.depot.pk, report.client_event_id) in known:
            continue
        known.add((report.depot.pk, report.client_event_id))
        try:
            _check_references(report.depot, report.kind, report.vehicle, report.connector, report.block)
            night = current_service_night(report.depot, report.occurred_at)
            event = DepotEvent(
                depot=report.depot,
                service_night=night,
                kind=report.kind,
                occurred_at=report.occurred_at,
                client_event_id=report.client_event_id,
                vehicle=report.vehicle,
                connector=report.connector,
                block=report.block,
                soc_pct=report.soc_pct,
                note=report.note,
            )
            # Not full_clean: it costs a query per foreign key and one for the (depot, id) uniqueness. The
            # references are the objects checked above, and a twin id is the insert's ON CONFLICT below.
            event.clean_fields(exclude=["depot", "vehicle", "connector", "block", "reported_by"])
        except ValidationError as exc:
            logger.info("event %s not recorded: %s", report.client_event_id, exc)
            continue
        new.append(event)
        nights.setdefault((report.depot.pk, night), (report.depot, f"{report.kind} ({report.client_event_id})"))
    DepotEvent.objects.bulk_create(new, ignore_conflicts=True)  # a concurrent twin already in: nothing new
    for event in new:
        _apply(event)
    for (_depot_id, night), (depot, reason) in nights.items():
        more = sum(1 for e in new if e.depot_id == depot.pk and e.service_night == night) - 1
        request_replan(
            depot=depot,
            service_night=night,
            reason=reason + (f" and {more} more" if more else ""),
            request_key="events=" + _digest(e.client_event_id for e in new if e.depot_id == depot.pk),
        )
    return len(new)


def _digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("|".join(sorted(ids)).encode()).hexdigest()[:32]


CONNECTOR_STATUS_AFTER = {
    Kind.CONNECTOR_FAULTED: Charger.Status.FAULTED,
    Kind.CONNECTOR_RESTORED: Charger.Status.AVAILABLE,
}


def _apply(event: DepotEvent) -> None:
    if event.kind in CONNECTOR_STATUS_AFTER:
        # Saved one row at a time (not a queryset update) so the audit trail records the change and its reporter.
        assert event.connector_id is not None  # DepotEvent.clean: a connector event names its connector
        connector = Connector.objects.select_for_update().get(pk=event.connector_id)
        status = CONNECTOR_STATUS_AFTER[Kind(event.kind)]
        if connector.status != status:
            connector.status = status
            audit_attribution(connector, reason=f"{event.kind} ({event.client_event_id})", user=event.reported_by)
            connector.save(update_fields=["status"])
            equipment_status_alert(connector, reported=event.note)
    elif event.kind == Kind.BLOCK_CANCELLED:
        horizon = night_horizon(event.depot, event.service_night)
        BlockAssignment.objects.filter(
            block=event.block, starts_at__gte=horizon.start, starts_at__lt=horizon.end
        ).delete()


def vehicle_left_service(vehicle: Vehicle) -> bool:
    """A vehicle no longer in service (workshop, retired) that tonight's active plan still charges: ask for a
    re-plan, which builds the night from in-service vehicles only. Returns whether a re-plan was requested."""
    if vehicle.status == Vehicle.Status.IN_SERVICE or vehicle.home_depot_id is None:
        return False
    depot = vehicle.home_depot
    assert depot is not None  # home_depot_id checked above
    night = current_service_night(depot)
    in_plan = PlannedCharge.objects.filter(
        vehicle=vehicle, plan__depot=depot, plan__service_night=night, plan__status=ChargingPlan.Status.ACTIVE
    ).exists()
    if not in_plan:
        return False
    request_replan(depot=depot, service_night=night, reason=f"vehicle {vehicle.fleet_number} {vehicle.status}")
    return True
