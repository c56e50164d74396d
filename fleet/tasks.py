"""Celery tasks of the fleet app: thin wrappers that take ids and ISO dates and call a service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

# A lost database connection is worth a retry; anything else is a bug and should surface.
RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(**RETRY)
def telemetry_duty_cycles(day: str | None = None, vehicle_ids: list[int] | None = None, now: str | None = None) -> int:
    """Daily duty cycles for ``day`` (ISO date), default each vehicle's local yesterday. Nightly and on demand."""
    from fleet.telemetry.duty import duty_cycles_compute

    return duty_cycles_compute(
        day=dt.date.fromisoformat(day) if day else None,
        vehicle_ids=vehicle_ids,
        now=dt.datetime.fromisoformat(now) if now else None,
    )


@shared_task(**RETRY)
def telemetry_duty_cycles_depotless(day: str | None = None) -> int:
    """Duty cycles of the cars with no home depot (the per-depot nightly jobs do every other vehicle)."""
    from fleet.models import Vehicle
    from fleet.telemetry.duty import duty_cycles_compute

    ids = list(Vehicle.objects.filter(home_depot__isnull=True).values_list("pk", flat=True))
    return duty_cycles_compute(day=dt.date.fromisoformat(day) if day else None, vehicle_ids=ids) if ids else 0


@shared_task(**RETRY)
def telemetry_capacity_estimates(vehicle_ids: list[int] | None = None, days: int = 14) -> int:
    """Record a telemetry capacity estimate for each vehicle with a qualifying charge in the last ``days``."""
    from fleet.models import Vehicle
    from fleet.telemetry.capacity import capacity_observation_record

    until = timezone.now()
    vehicles = Vehicle.objects.exclude(status=Vehicle.Status.RETIRED)
    if vehicle_ids is not None:
        vehicles = Vehicle.objects.filter(pk__in=vehicle_ids)
    recorded = 0
    for vehicle in vehicles.iterator():
        if capacity_observation_record(vehicle=vehicle, since=until - dt.timedelta(days=days), until=until):
            recorded += 1
    return recorded


@shared_task(**RETRY)
def telemetry_prune(older_than_days: int) -> dict:
    """Downsample raw readings older than ``older_than_days`` into 1-minute aggregates (see docs/telemetry.md)."""
    from fleet.telemetry.retention import telemetry_prune as prune

    return prune(older_than_days=older_than_days)
