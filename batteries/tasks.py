"""Celery tasks of battery health (thin: they call the nightly functions)."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from fleet import jobs


@shared_task(**jobs.IDEMPOTENT_TASK_OPTIONS)
def forecast_depotless_packs_task(night: str | None = None) -> str:
    """Forecast the packs of vehicles with no home depot (daily; the depot jobs do every other pack)."""
    from batteries.nightly import forecast_depotless_packs

    day = dt.date.fromisoformat(night) if night else timezone.localdate()
    return forecast_depotless_packs(night=day).summary
