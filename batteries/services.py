"""Writes to the battery registry."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from batteries.models import BatteryPack, HealthObservation, PackInstallation
from config.services import model_create, model_update
from fleet.models import Vehicle

PACK_UPDATABLE_FIELDS = (
    "serial",
    "chemistry",
    "nominal_kwh",
    "nominal_ah",
    "cells_in_series",
    "cells_in_parallel",
    "manufactured_on",
    "as_new_capacity_kwh",
    "warranty_years",
    "warranty_km",
    "warranty_min_soh_pct",
)


@transaction.atomic
def pack_create(**fields: Any) -> BatteryPack:
    return model_create(BatteryPack, **fields)


@transaction.atomic
def pack_update(*, pack: BatteryPack, data: dict[str, Any]) -> BatteryPack:
    return model_update(instance=pack, fields=PACK_UPDATABLE_FIELDS, data=data)[0]


@transaction.atomic
def pack_install(*, pack: BatteryPack, vehicle: Vehicle, installed_at: dt.datetime | None = None) -> PackInstallation:
    """Put ``pack`` into ``vehicle``: a swap closes the vehicle's current pack and the pack's current vehicle.

    History is kept: closed installations stay with their ``removed_at``.
    """
    installed_at = installed_at or timezone.now()
    if pack.organization_id != vehicle.organization_id:
        raise ValidationError({"vehicle": _("The vehicle belongs to another organisation than the pack.")})
    # Lock both rows so two swaps at once cannot leave two active packs in one vehicle.
    Vehicle.objects.select_for_update().filter(pk=vehicle.pk).first()
    BatteryPack.objects.select_for_update().filter(pk=pack.pk).first()
    current = PackInstallation.objects.filter(removed_at__isnull=True).filter(
        vehicle=vehicle
    ) | PackInstallation.objects.filter(removed_at__isnull=True, pack=pack)
    for installation in current:
        if installation.pack_id == pack.pk and installation.vehicle_id == vehicle.pk:
            return installation  # already there: installing twice changes nothing
        if installed_at <= installation.installed_at:
            raise ValidationError({"installed_at": _("The swap must be after the current installation began.")})
        installation.removed_at = installed_at
        installation.save(update_fields=["removed_at"])
    return model_create(PackInstallation, pack=pack, vehicle=vehicle, installed_at=installed_at)


@transaction.atomic
def pack_remove(*, pack: BatteryPack, removed_at: dt.datetime | None = None) -> None:
    removed_at = removed_at or timezone.now()
    for installation in PackInstallation.objects.select_for_update().filter(pack=pack, removed_at__isnull=True):
        installation.removed_at = removed_at
        installation.full_clean()
        installation.save(update_fields=["removed_at"])


@transaction.atomic
def health_observation_record(
    *, pack: BatteryPack, observed_at: dt.datetime, source: str, soh_pct: float, **fields: Any
) -> tuple[HealthObservation, bool]:
    """Record an observation; re-sending the same (pack, time, source) updates it instead of duplicating."""
    existing = HealthObservation.objects.filter(pack=pack, observed_at=observed_at, source=source).first()
    if existing:
        return model_update(instance=existing, fields=("soh_pct", *fields), data={"soh_pct": soh_pct, **fields})[
            0
        ], False
    return model_create(
        HealthObservation, pack=pack, observed_at=observed_at, source=source, soh_pct=soh_pct, **fields
    ), True
