"""Celery tasks of the batteries app: thin wrappers that take ids and call a service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from jobs.retry import IDEMPOTENT_TASK_OPTIONS, RETRY_TASK_OPTIONS


@shared_task(**RETRY_TASK_OPTIONS)
def telemetry_capacity_estimates(vehicle_ids: list[int] | None = None, days: int = 14) -> int:
    """Record a telemetry capacity estimate for each vehicle with a qualifying charge in the last ``days``."""
    from batteries.telemetry_capacity import capacity_observations_record

    return capacity_observations_record(vehicle_ids=vehicle_ids, days=days)


@shared_task(**RETRY_TASK_OPTIONS)
def telemetry_capacity_estimates_depotless(days: int = 14) -> int:
    """Capacity estimates of the cars with no home depot (the per-depot nightly jobs do every other vehicle)."""
    from batteries.telemetry_capacity import capacity_observations_record
    from fleet.selectors import depotless_vehicle_ids

    vehicle_ids = depotless_vehicle_ids()
    return capacity_observations_record(vehicle_ids=vehicle_ids, days=days) if vehicle_ids else 0


@shared_task(**IDEMPOTENT_TASK_OPTIONS)
def forecast_depotless_packs_task(night: str | None = None) -> str:
    """Forecast the packs of vehicles with no home depot (daily; the depot jobs do every other pack)."""
    from batteries.nightly import forecast_depotless_packs

    day = dt.date.fromisoformat(night) if night else timezone.localdate()
    return forecast_depotless_packs(night=day).summary
