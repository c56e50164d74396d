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
from django.db import connection, transaction
from django.dispatch import Signal

from fleet.models import Depot, Vehicle, VehicleLiveState
from fleet.telemetry.validation import FLOAT_FIELD_NAMES, ONE_MICROSECOND, UNIX_EPOCH, ValidatedColumns

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8
_LAT, _LON, _SOC = (FLOAT_FIELD_NAMES.index(name) for name in ("latitude", "longitude", "soc_pct"))
_OUTSIDE, _INSIDE, _UNKNOWN = 0, 1, 2

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
    fences = _fences_and_last_positions(np.unique(vehicle_ids[positioned]).tolist())
    entries = []
    for vehicle_id, (depot_id, depot_lat, depot_lon, radius_m, last_lat, last_lon, last_at) in fences.items():
        mine = stored[vehicle_ids[stored] == vehicle_id]
        mine = mine[np.argsort(columns.recorded_at_us[mine], kind="stable")]
        if last_at is not None:
            mine = mine[columns.recorded_at_us[mine] > (last_at - UNIX_EPOCH) // ONE_MICROSECOND]
        lat, lon = columns.values[mine, _LAT], columns.values[mine, _LON]
        has_position = ~(np.isnan(lat) | np.isnan(lon))
        if not has_position.any():
            continue
        inside = distance_m(depot_lat, depot_lon, lat[has_position], lon[has_position]) <= radius_m
        # Where each positioned reading was before it: the previous positioned reading, or the live state's.
        if last_lat is None or last_lon is None:
            before = _UNKNOWN
        else:
            before = _INSIDE if distance_m(depot_lat, depot_lon, last_lat, last_lon) <= radius_m else _OUTSIDE
        previous = np.concatenate(([before], inside[:-1].astype(np.int8)))
        entering = np.flatnonzero(inside & (previous == _OUTSIDE))
        if not len(entering):
            continue
        # Each reading's SoC, else the latest earlier SoC of the batch (forward fill).
        soc = columns.values[mine, _SOC]
        last_with_soc = np.maximum.accumulate(np.where(np.isnan(soc), -1, np.arange(len(mine))))
        for position in np.flatnonzero(has_position)[entering].tolist():
            soc_at = int(last_with_soc[position])
            entries.append(
                DepotEntry(
                    vehicle_id=int(vehicle_id),
                    depot_id=int(depot_id),
                    recorded_at=UNIX_EPOCH + dt.timedelta(microseconds=int(columns.recorded_at_us[mine[position]])),
                    soc_pct=float(soc[soc_at]) if soc_at >= 0 else None,
                )
            )
    return entries


# Raw SQL: the ORM takes several times longer to build this query than PostgreSQL to run it, and it runs for
# every upload that carries positions. Table names are the models' own; the ids travel as parameters.
_FENCES_SQL = """
SELECT v.id, v.home_depot_id, d.latitude, d.longitude, d.geofence_radius_m, s.latitude, s.longitude, s.recorded_at
FROM {vehicle} v
JOIN {depot} d ON d.id = v.home_depot_id
LEFT JOIN {live} s ON s.vehicle_id = v.id
WHERE v.id IN ({ids}) AND d.geofence_radius_m IS NOT NULL AND d.latitude IS NOT NULL AND d.longitude IS NOT NULL
"""


def _fences_and_last_positions(vehicle_ids: list[int]) -> dict[int, tuple]:
    """Per vehicle whose home depot has a geofence: (depot id, depot latitude, longitude, radius m, the live
    state's latitude, longitude, recorded_at - None when unknown)."""
    sql = _FENCES_SQL.format(
        vehicle=Vehicle._meta.db_table,
        depot=Depot._meta.db_table,
        live=VehicleLiveState._meta.db_table,
        ids=", ".join(["%s"] * len(vehicle_ids)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, vehicle_ids)  # nosec B608  (table names from the models, values as parameters)
        rows = cursor.fetchall()
    return {row[0]: (*row[1:7], _aware(row[7])) for row in rows}


def _aware(value) -> dt.datetime | None:
    # SQLite hands back raw cursor timestamps as text.
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def announce_after_commit(entries: list[DepotEntry]) -> None:
    """Send ``vehicle_entered_depot`` for each entry once the current transaction commits. A receiver that
    fails is logged and does not undo or fail the upload (the readings are stored and acknowledged)."""
    for entry in entries:
        transaction.on_commit(functools.partial(_announce, entry), robust=True)


def _announce(entry: DepotEntry) -> None:
    for receiver, response in vehicle_entered_depot.send_robust(sender=DepotEntry, entry=entry):
        if isinstance(response, Exception):
            logger.error("%s failed on %s", receiver, entry, exc_info=response)
