"""What depot staff report during the night, and what it changes: the registry, then a re-plan."""

from __future__ import annotations

import datetime as dt
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
