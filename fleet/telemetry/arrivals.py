"""Arrivals seen in telemetry: a vehicle whose readings enter its home depot's geofence has arrived.

The ingest service (HTTP, CSV and MQTT alike) calls ``depot_entries`` with the readings a batch stored, before
it moves the live state, and sends ``vehicle_entered_depot`` for each entry after its transaction commits.
Fleet is the ground floor and knows nothing of plans: charging listens to the signal and turns each entry
into a ``vehicle_arrived`` depot event with its SoC (``charging.events``), which asks for the coalesced re-plan.

An entry is a reading inside the fence (``Depot.geofence_radius_m`` around the depot's latitude/longitude)
whose vehicle's previous known position was outside it: once per arrival, not on every reading inside;
leaving and coming back is another arrival. The previous position is the live state's (the latest reading
before the batch), then each reading of the batch in time order. A vehicle with no earlier position is not
"arriving" (it may have been parked there all along), and readings older than the live state (a back-fill)
are not looked at. Cost: nothing for a batch without positions; otherwise one query per batch (the
vehicles' fences and live positions together), then numpy.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.dispatch import Signal

from fleet.models import Vehicle
from fleet.telemetry.validation import FLOAT_FIELD_NAMES, ONE_MICROSECOND, UNIX_EPOCH, ValidatedColumns

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8
_LAT, _LON, _SOC = (FLOAT_FIELD_NAMES.index(name) for name in ("latitude", "longitude", "soc_pct"))

# Sent after the ingest's transaction committed, once per entry: keyword arguments ``entry`` (a DepotEntry).
# One receiver: ``charging.arrivals.record_arrival_from_telemetry``.
vehicle_entered_depot = Signal()


@dataclass(frozen=True)
class DepotEntry:
    vehicle_id: int
    depot_id: int
    recorded_at: dt.datetime  # the first reading inside the fence
    soc_pct: float | None  # that reading's SoC, else the latest earlier SoC of the batch


def distance_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres (haversine); works on numpy arrays."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi, dlambda = phi2 - phi1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def depot_entries(columns: ValidatedColumns, vehicle_ids: np.ndarray, stored: np.ndarray) -> list[DepotEntry]:
    """The depot entries among the readings ``stored`` (indexes into the batch) now. Call it before the live
    state moves: it reads the position each vehicle had before this batch."""
    if not len(stored):
        return []
    values = columns.values[stored]
    positioned = stored[~(np.isnan(values[:, _LAT]) | np.isnan(values[:, _LON]))]
    if not len(positioned):
        return []
    fences = {
        row[0]: row[1:]
        for row in Vehicle.objects.filter(
            pk__in=np.unique(vehicle_ids[positioned]).tolist(),
            home_depot__geofence_radius_m__isnull=False,
            home_depot__latitude__isnull=False,
            home_depot__longitude__isnull=False,
        ).values_list(
            "pk",
            "home_depot_id",
            "home_depot__latitude",
            "home_depot__longitude",
            "home_depot__geofence_radius_m",
            "live_state__latitude",
            "live_state__longitude",
            "live_state__recorded_at",
        )
    }
    entries = []
    for vehicle_id, (depot_id, depot_lat, depot_lon, radius_m, last_lat, last_lon, last_at) in fences.items():
        mine = stored[vehicle_ids[stored] == vehicle_id]
        mine = mine[np.argsort(columns.recorded_at_us[mine], kind="stable")]
        if last_at is not None:
            mine = mine[columns.recorded_at_us[mine] > (last_at - UNIX_EPOCH) // ONE_MICROSECOND]
        if not len(mine):
            continue
        lat, lon = columns.values[mine, _LAT], columns.values[mine, _LON]
        has_position = ~(np.isnan(lat) | np.isnan(lon))
        inside = np.zeros(len(mine), dtype=bool)
        inside[has_position] = distance_m(depot_lat, depot_lon, lat[has_position], lon[has_position]) <= radius_m
        was_inside = None
        if last_lat is not None and last_lon is not None:
            was_inside = bool(distance_m(depot_lat, depot_lon, last_lat, last_lon) <= radius_m)
        soc_so_far = None
        for position, index in enumerate(mine.tolist()):
            soc = columns.values[index, _SOC]
            if not np.isnan(soc):
                soc_so_far = float(soc)
            if not has_position[position]:
                continue
            now_inside = bool(inside[position])
            if now_inside and was_inside is False:
                entries.append(
                    DepotEntry(
                        vehicle_id=int(vehicle_id),
                        depot_id=int(depot_id),
                        recorded_at=UNIX_EPOCH + dt.timedelta(microseconds=int(columns.recorded_at_us[index])),
                        soc_pct=soc_so_far,
                    )
                )
            was_inside = now_inside
    return entries


def announce_after_commit(entries: list[DepotEntry]) -> None:
    """Send ``vehicle_entered_depot`` for each entry once the current transaction commits. A receiver that
    fails is logged and does not undo or fail the upload (the readings are stored and acknowledged)."""
    for entry in entries:
        transaction.on_commit(functools.partial(_announce, entry), robust=True)


def _announce(entry: DepotEntry) -> None:
    for receiver, response in vehicle_entered_depot.send_robust(sender=DepotEntry, entry=entry):
        if isinstance(response, Exception):
            logger.error("%s failed on %s", receiver, entry, exc_info=response)
