"""NGSI-LD entities (FIWARE Smart Data Models) of an organisation's vehicles and charging stations.

``Vehicle`` (dataModel.Transportation) per vehicle, with its last position, speed, SoC (``battery``, a fraction)
and odometer; the traction battery's state of health has no Smart Data Model that fits (dataModel.Battery's
models describe stationary storage), so it is published as evfleet's own property ``batteryStateOfHealth``
(in % of the new capacity), declared in evfleet's @context. ``EVChargingStation`` per charger, at its depot.

Entities are built as key-values dicts (what the Smart Data Models JSON Schemas describe) and turned into the
normalised NGSI-LD form (``{"type": "Property", "value": ...}``) by ``normalized``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

NGSI_LD_CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
SDM_TRANSPORTATION_CONTEXT = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"
)
EVFLEET_TERMS = {"batteryStateOfHealth": "https://evfleet.example/ngsi-ld/terms#batteryStateOfHealth"}
RELATIONSHIPS = frozenset({"refVehicleModel"})
GEO_PROPERTIES = frozenset({"location"})
TIMED_PROPERTIES = frozenset({"location", "speed", "heading", "battery", "mileageFromOdometer", "serviceStatus"})

VEHICLE_TYPES = {"bus": "bus", "car": "car", "van": "van"}
SOCKET_TYPES = {"ccs2": "CCS/SAE", "ccs1": "CCS/SAE", "type2": "Type2", "j1772": "J-1772"}  # others: "Other"
STATION_STATUS = {
    "available": "working",
    "charging": "working",
    "faulted": "withIncidence",
    "offline": "outOfService",
    "maintenance": "outOfService",
}


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def vehicle_urn(organization_slug: str, vehicle_id: int) -> str:
    return f"urn:ngsi-ld:Vehicle:{organization_slug}:{vehicle_id}"


def station_urn(organization_slug: str, charger_id: int) -> str:
    return f"urn:ngsi-ld:EVChargingStation:{organization_slug}:{charger_id}"


def vehicle_entity(
    *,
    organization_slug: str,
    vehicle_id: int,
    fleet_number: str,
    plate: str,
    kind: str,
    status: str,
    on_block: bool,
    live: dict | None,
    soh_pct: float | None,
) -> dict:
    """Key-values ``Vehicle``. ``live``: ``recorded_at``, ``latitude``, ``longitude``, ``speed_kmh``, ``soc_pct``,
    ``odometer_km`` (each may be None), or None when the vehicle was never seen; ``status`` is the registry's."""
    if status != "in_service":
        service_status = "outOfService" if status == "retired" else "broken"
    else:
        service_status = "onRoute" if on_block else "parked"
    entity: dict[str, Any] = {
        "id": vehicle_urn(organization_slug, vehicle_id),
        "type": "Vehicle",
        "vehicleType": VEHICLE_TYPES.get(kind, "other"),
        "category": ["public", "tracked"] if kind == "bus" else ["municipalServices", "tracked"],
        "name": fleet_number,
        "fleetVehicleId": fleet_number,
        "serviceStatus": service_status,
    }
    if plate:
        entity["vehiclePlateIdentifier"] = plate
    live = live or {}
    if live.get("latitude") is not None and live.get("longitude") is not None:
        entity["location"] = {"type": "Point", "coordinates": [live["longitude"], live["latitude"]]}
    if live.get("speed_kmh") is not None:
        entity["speed"] = live["speed_kmh"]
    if live.get("soc_pct") is not None:
        entity["battery"] = round(live["soc_pct"] / 100, 4)
    if live.get("odometer_km") is not None:
        entity["mileageFromOdometer"] = live["odometer_km"]
    if live.get("recorded_at") is not None:
        entity["observationDateTime"] = iso(live["recorded_at"])
    if soh_pct is not None:
        entity["batteryStateOfHealth"] = soh_pct
    return entity


def charging_station_entity(
    *,
    organization_slug: str,
    charger_id: int,
    name: str,
    depot_name: str,
    latitude: float | None,
    longitude: float | None,
    status: str,
    kind: str,
    connectors: Iterable[tuple[str, str]],
) -> dict:
    """Key-values ``EVChargingStation``; ``connectors`` as ``(standard, status)`` pairs."""
    connectors = list(connectors)
    sockets = sorted({SOCKET_TYPES.get(standard, "Other") for standard, _ in connectors}) or ["Other"]
    entity = {
        "id": station_urn(organization_slug, charger_id),
        "type": "EVChargingStation",
        "name": name,
        "operator": depot_name,
        "socketType": sockets,
        "socketNumber": len(connectors),
        "capacity": max(len(connectors), 1),
        "availableCapacity": sum(1 for _, state in connectors if state == "available") if status == "available" else 0,
        "allowedVehicleType": ["bus"] if kind in ("dc", "pantograph") else ["bus", "car"],
        "status": STATION_STATUS.get(status, "withIncidence"),
    }
    if latitude is not None and longitude is not None:
        entity["location"] = {"type": "Point", "coordinates": [longitude, latitude]}
    return entity


def normalized(entity: dict) -> dict:
    """The NGSI-LD normalised form: each attribute a Property, GeoProperty or Relationship."""
    observed = entity.get("observationDateTime")
    out: dict = {"id": entity["id"], "type": entity["type"]}
    for name, value in entity.items():
        if name in ("id", "type", "observationDateTime"):
            continue
        if name in GEO_PROPERTIES:
            attribute = {"type": "GeoProperty", "value": value}
        elif name in RELATIONSHIPS:
            attribute = {"type": "Relationship", "object": value}
        else:
            attribute = {"type": "Property", "value": value}
        if observed and name in TIMED_PROPERTIES:
            attribute["observedAt"] = observed
        out[name] = attribute
    return out


def context() -> list:
    """The @context of every entity: the NGSI-LD core, the Smart Data Models terms and evfleet's own."""
    return [SDM_TRANSPORTATION_CONTEXT, EVFLEET_TERMS, NGSI_LD_CORE_CONTEXT]
