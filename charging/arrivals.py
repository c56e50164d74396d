"""Arrivals seen in telemetry become depot events (fleet announces them: ``fleet.telemetry.arrivals``).

A bus entering its depot's geofence is a ``vehicle_arrived`` event with the SoC it reported, recorded as if
the depot's gateway had posted it: the same service, the same coalesced re-plan, the same idempotency (the
event id is the vehicle and the reading's time, so a redelivered signal or a re-sent batch records nothing
twice).
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError

from charging.events import EventConflict, depot_event_record
from charging.models import DepotEvent
from fleet.models import Vehicle
from fleet.telemetry.arrivals import DepotEntry

logger = logging.getLogger(__name__)


def telemetry_arrival_event_id(entry: DepotEntry) -> str:
    return f"telemetry-arrival:{entry.vehicle_id}:{entry.recorded_at.strftime('%Y%m%dT%H%M%S.%fZ')}"


def record_arrival_from_telemetry(sender, *, entry: DepotEntry, **kwargs) -> DepotEvent | None:
    """The receiver of ``fleet.telemetry.arrivals.vehicle_entered_depot``: record the arrival, which asks for
    a re-plan. Vehicles out of service or moved to another depot meanwhile are left alone."""
    vehicle = (
        Vehicle.objects.select_related("home_depot")
        .filter(pk=entry.vehicle_id, home_depot_id=entry.depot_id, status=Vehicle.Status.IN_SERVICE)
        .first()
    )
    if vehicle is None or vehicle.home_depot is None:
        return None
    try:
        event, _created = depot_event_record(
            depot=vehicle.home_depot,
            kind=DepotEvent.Kind.VEHICLE_ARRIVED,
            client_event_id=telemetry_arrival_event_id(entry),
            occurred_at=entry.recorded_at,
            vehicle=vehicle,
            soc_pct=entry.soc_pct,
            note="Entered the depot's geofence (telemetry).",
        )
    except (EventConflict, ValidationError) as exc:
        logger.info("no arrival event for %s: %s", entry, exc)
        return None
    return event
