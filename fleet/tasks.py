"""Celery tasks of the fleet app: thin wrappers that take ids and ISO dates and call a service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from jobs.retry import RETRY_TASK_OPTIONS as RETRY


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
    from fleet.selectors import depotless_vehicle_ids
    from fleet.telemetry.duty import duty_cycles_compute

    ids = depotless_vehicle_ids()
    return duty_cycles_compute(day=dt.date.fromisoformat(day) if day else None, vehicle_ids=ids) if ids else 0


@shared_task(**RETRY)
def telemetry_prune(older_than_days: int) -> dict:
    """Downsample raw readings older than ``older_than_days`` into 1-minute aggregates (see docs/telemetry.md)."""
    from fleet.telemetry.retention import telemetry_prune as prune

    return prune(older_than_days=older_than_days)
