"""Celery tasks for charging: thin wrappers that load by id and call the planning service."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.utils import timezone

from charging.models import ChargingPlan
from charging.planning import plan_depot_night
from fleet.models import Depot

logger = logging.getLogger(__name__)

# Events arriving within this many seconds of the first one are folded into a single re-plan.
REPLAN_COALESCE_SECONDS = 5
TRANSIENT_ERRORS = (OperationalError, ConnectionError)


def _replan_pending_key(depot_id: int) -> str:
    return f"charging:replan-pending:{depot_id}"


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def plan_depot_night_task(depot_id: int, service_night: str) -> int | None:
    depot = Depot.objects.filter(pk=depot_id).first()
    if depot is None:
        logger.info("depot %s is gone: nothing to plan", depot_id)
        return None
    plan = plan_depot_night(depot=depot, service_night=dt.date.fromisoformat(service_night))
    return plan.pk


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_jitter=True, max_retries=5)
def replan_depot_task(depot_id: int, service_night: str, reason: str = "") -> int | None:
    # Clear the marker first: an event arriving while we plan schedules one more re-plan, so it is never lost.
    cache.delete(_replan_pending_key(depot_id))
    depot = Depot.objects.filter(pk=depot_id).first()
    if depot is None:
        return None
    from charging.events import night_event_inputs  # events import this module: avoid the cycle

    night = dt.date.fromisoformat(service_night)
    plan = plan_depot_night(
        depot=depot,
        service_night=night,
        trigger=ChargingPlan.Trigger.EVENT,
        trigger_detail=reason,
        now=timezone.now(),
        **night_event_inputs(depot, night),
    )
    return plan.pk


def request_replan(*, depot: Depot, service_night: dt.date, reason: str) -> bool:
    """Ask for a re-plan of ``depot`` after the current transaction commits; bursts coalesce.

    Returns whether a new re-plan was scheduled (False: one is already pending and will see this change).
    """
    if not cache.add(_replan_pending_key(depot.pk), reason, timeout=REPLAN_COALESCE_SECONDS * 12):
        return False
    transaction.on_commit(
        lambda: replan_depot_task.apply_async(
            args=(depot.pk, service_night.isoformat(), reason), countdown=REPLAN_COALESCE_SECONDS
        )
    )
    return True
