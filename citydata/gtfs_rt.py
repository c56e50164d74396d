"""GTFS-Realtime VehiclePositions for one organisation, built with the ``gtfs-realtime-bindings`` messages.

evfleet knows blocks, not GTFS trips: a vehicle driving a block is published with that block's code as the
trip id (``trip.trip_id``), the block's service date as ``start_date`` and its departure as ``start_time``.
Only vehicles in service are published: status "in service", on a block assignment now, seen in the last
``MAX_POSITION_AGE``. With a delay, the feed is what it would have been ``position_delay_seconds`` ago.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone
from google.transit import gtfs_realtime_pb2

from fleet.models import Vehicle
from fleet.selectors import block_assignment_queryset
from fleet.telemetry.export import recent_positions

MAX_POSITION_AGE = dt.timedelta(minutes=10)
KMH_TO_MS = 1 / 3.6


@dataclass(frozen=True)
class PublishedVehicle:
    vehicle_id: int
    fleet_number: str
    plate: str
    latitude: float
    longitude: float
    bearing_deg: float | None
    speed_kmh: float | None
    recorded_at: dt.datetime
    block_code: str
    service_date: dt.date
    departs_at: dt.time


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_lon = math.radians(lon2 - lon1)
    x = math.sin(d_lon) * math.cos(phi2)
    y = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(d_lon)
    return math.degrees(math.atan2(x, y)) % 360


def vehicles_in_service(vehicles: QuerySet[Vehicle], *, at: dt.datetime) -> list[PublishedVehicle]:
    """The vehicles of ``vehicles`` (already scoped) on a block at ``at`` with a recent position (3 queries)."""
    in_service = vehicles.filter(status=Vehicle.Status.IN_SERVICE)
    assignments = {
        a.vehicle_id: a
        for a in block_assignment_queryset()
        .filter(vehicle__in=in_service, starts_at__lte=at, ends_at__gt=at)
        .order_by("starts_at")
    }
    positions = recent_positions(list(assignments), at=at, max_age=MAX_POSITION_AGE)
    published = []
    for vehicle_id, assignment in sorted(assignments.items()):
        readings = positions.get(vehicle_id)
        if not readings:
            continue
        last = readings[0]
        if last.latitude is None or last.longitude is None:  # not so: recent_positions has only positions
            continue
        heading = None
        if len(readings) > 1:
            before = readings[1]
            if (
                before.latitude is not None
                and before.longitude is not None
                and (before.latitude, before.longitude) != (last.latitude, last.longitude)
            ):
                heading = bearing_deg(before.latitude, before.longitude, last.latitude, last.longitude)
        published.append(
            PublishedVehicle(
                vehicle_id=vehicle_id,
                fleet_number=assignment.vehicle.fleet_number,
                plate=assignment.vehicle.plate,
                latitude=last.latitude,
                longitude=last.longitude,
                bearing_deg=heading,
                speed_kmh=last.speed_kmh,
                recorded_at=last.recorded_at,
                block_code=assignment.block.code,
                service_date=assignment.service_date,
                departs_at=assignment.block.departs_at,
            )
        )
    return published


def feed_message(vehicles: list[PublishedVehicle], *, at: dt.datetime) -> gtfs_realtime_pb2.FeedMessage:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    feed.header.timestamp = int(at.timestamp())
    for v in vehicles:
        entity = feed.entity.add()
        entity.id = f"vehicle-{v.vehicle_id}"
        position = entity.vehicle
        position.vehicle.id = str(v.vehicle_id)
        position.vehicle.label = v.fleet_number
        if v.plate:
            position.vehicle.license_plate = v.plate
        position.trip.trip_id = v.block_code
        position.trip.start_date = v.service_date.strftime("%Y%m%d")
        position.trip.start_time = v.departs_at.strftime("%H:%M:%S")
        position.trip.schedule_relationship = gtfs_realtime_pb2.TripDescriptor.SCHEDULED
        position.position.latitude = v.latitude
        position.position.longitude = v.longitude
        if v.bearing_deg is not None:
            position.position.bearing = v.bearing_deg
        if v.speed_kmh is not None:
            position.position.speed = v.speed_kmh * KMH_TO_MS
        position.timestamp = int(v.recorded_at.timestamp())
    return feed


def feed_as_of(now: dt.datetime | None, delay_seconds: int) -> dt.datetime:
    return (now or timezone.now()) - dt.timedelta(seconds=delay_seconds)
