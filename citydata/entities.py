"""The NGSI-LD entities a caller may see, read through the fleet, batteries and charging selectors."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, TypedDict, cast

from django.db.models import Q, QuerySet
from django.utils import timezone

from batteries.models import BatteryPack, PackInstallation
from batteries.selectors import pack_queryset
from charging.models import Charger
from charging.selectors import charger_queryset
from citydata import ngsi_ld
from citydata.models import EntityType
from fleet.models import Vehicle
from fleet.selectors import block_assignment_queryset, vehicle_queryset
from fleet.telemetry.selectors import vehicle_live_state, with_live_state

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class PackWithSoh(TypedDict):
    """What ``pack_queryset`` adds to each pack (a prefetch's to_attr and an annotation)."""

    active_installations: list[PackInstallation]
    latest_observed_soh_pct: float | None


def vehicles(scoped: QuerySet[Vehicle]) -> QuerySet[Vehicle]:
    return with_live_state(scoped.select_related("organization", "model")).order_by("pk")


def vehicle_entities(page: list[Vehicle], *, at: dt.datetime | None = None) -> list[dict]:
    """``Vehicle`` entities of ``page`` (a bounded list): 3 queries whatever its length."""
    at = at or timezone.now()
    ids = [v.pk for v in page]
    on_block = set(
        block_assignment_queryset()
        .filter(vehicle_id__in=ids, starts_at__lte=at, ends_at__gt=at)
        .values_list("vehicle_id", flat=True)
    )
    soh: dict[int, float] = {}
    packs = pack_queryset().filter(installations__vehicle_id__in=ids, installations__removed_at__isnull=True)
    # The plugin cannot follow the annotation through pack_queryset nor see a prefetch's to_attr.
    for pack in cast("QuerySet[WithAnnotations[BatteryPack, PackWithSoh]]", packs):
        for installation in pack.active_installations:
            if pack.latest_observed_soh_pct is not None:
                soh[installation.vehicle_id] = pack.latest_observed_soh_pct
    entities = []
    for vehicle in page:
        state = vehicle_live_state(vehicle)
        live = None
        if state is not None:
            live = {
                "recorded_at": state.recorded_at,
                "latitude": state.latitude,
                "longitude": state.longitude,
                "speed_kmh": state.speed_kmh,
                "soc_pct": state.soc_pct,
                "odometer_km": state.odometer_km,
            }
        entities.append(
            ngsi_ld.vehicle_entity(
                organization_slug=vehicle.organization.slug,
                vehicle_id=vehicle.pk,
                fleet_number=vehicle.fleet_number,
                plate=vehicle.plate,
                kind=vehicle.model.kind,
                status=vehicle.status,
                on_block=vehicle.pk in on_block,
                live=live,
                soh_pct=soh.get(vehicle.pk),
            )
        )
    return entities


def chargers(scoped: QuerySet[Charger]) -> QuerySet[Charger]:
    return charger_queryset().filter(pk__in=scoped.values("pk")).select_related("depot__organization").order_by("pk")


def station_entities(page: list[Charger]) -> list[dict]:
    return [
        ngsi_ld.charging_station_entity(
            organization_slug=charger.depot.organization.slug,
            charger_id=charger.pk,
            name=charger.name,
            depot_name=charger.depot.name,
            latitude=charger.depot.latitude,
            longitude=charger.depot.longitude,
            status=charger.status,
            kind=charger.kind,
            connectors=[(c.standard, c.status) for c in charger.connectors.all()],
        )
        for charger in page
    ]


def all_vehicles() -> QuerySet[Vehicle]:
    return vehicle_queryset()


def all_chargers() -> QuerySet[Charger]:
    return charger_queryset()


def entities_of(entity_type: str, scoped_vehicles, scoped_chargers, *, ids: list[str] | None, limit: int, offset: int):
    """A page of entities of ``entity_type`` (key-values), filtered by URN when ``ids`` is given."""
    if entity_type == EntityType.VEHICLE:
        vehicle_rows = vehicles(scoped_vehicles)
        if ids is not None:
            vehicle_rows = vehicle_rows.filter(_urn_q(ids, "Vehicle", "organization__slug"))
        return vehicle_entities(list(vehicle_rows[offset : offset + limit]))
    charger_rows = chargers(scoped_chargers)
    if ids is not None:
        charger_rows = charger_rows.filter(_urn_q(ids, "EVChargingStation", "depot__organization__slug"))
    return station_entities(list(charger_rows[offset : offset + limit]))


def _urn_q(urns: list[str], entity_type: str, slug_path: str) -> Q:
    """Rows named by ``urns`` of the form ``urn:ngsi-ld:<type>:<organisation slug>:<id>`` (others match nothing)."""
    q = Q(pk__in=[])
    for urn in urns:
        parts = urn.split(":")
        named = len(parts) == 5 and parts[:3] == ["urn", "ngsi-ld", entity_type]
        if named and parts[4].isdigit() and int(parts[4]) <= 2**63 - 1:
            q |= Q(pk=int(parts[4]), **{slug_path: parts[3]})
    return q


def entity_type_of(urn: str) -> str | None:
    parts = urn.split(":")
    if len(parts) == 5 and parts[:2] == ["urn", "ngsi-ld"] and parts[2] in EntityType.values:
        return parts[2]
    return None
