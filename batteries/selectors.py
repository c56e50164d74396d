"""Reads of the battery registry."""

from __future__ import annotations

from batteries.models import BatteryPack, HealthObservation, PackInstallation
from fleet.models import Vehicle


def active_pack(vehicle: Vehicle) -> BatteryPack | None:
    installation = (
        PackInstallation.objects.filter(vehicle=vehicle, removed_at__isnull=True).select_related("pack").first()
    )
    return installation.pack if installation else None


def latest_soh_pct(pack: BatteryPack) -> float | None:
    observation = HealthObservation.objects.filter(pack=pack).order_by("-observed_at").first()
    return observation.soh_pct if observation else None
