"""Celery tasks for charging: thin wrappers that load by id and run the planning service as a recorded job.

Both go through ``jobs.runs.job_run``: a ``JobRun`` per attempt, one depot planned at a time (the lock
group ``charging.plan``), and a redelivered message does not plan twice (its natural key).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from charging.models import ChargingPlan
from charging.nightly import PLAN_JOB, PLAN_LOCK_GROUP, plan_outcome
from charging.planning import plan_depot_night
from charging.selectors import night_event_inputs
from charging.unscheduled import headroom_replans_request
from fleet.models import Depot
from jobs import nightly
from jobs import runs as jobs
from jobs.outbox import outbox_task_send
from jobs.retry import IDEMPOTENT_TASK_OPTIONS

logger = logging.getLogger(__name__)

# Events arriving within this many seconds of the first one are folded into a single re-plan.
REPLAN_COALESCE_SECONDS = 5
REPLAN_JOB = "charging.replan"


def _replan_pending_key(depot_id: int) -> str:
    return f"charging:replan-pending:{depot_id}"


@shared_task(bind=True, **IDEMPOTENT_TASK_OPTIONS)
def plan_depot_night_task(self, depot_id: int, service_night: str, job_run_id: int | None = None) -> int | None:
    """Tonight's plan for one depot: the nightly job itself (same key, so planned once per night)."""
    depot = Depot.objects.filter(pk=depot_id).first()
    if depot is None:
        logger.info("depot %s is gone: nothing to plan", depot_id)
        return None
    job = nightly.job_named(PLAN_JOB)
    if job is None:  # charging registers it (charging/nightly.py): only a broken install gets here
        raise LookupError(f"The nightly job {PLAN_JOB!r} is not registered.")
    done = nightly.run_job(
        job=job,
        depot=depot,
        night=dt.date.fromisoformat(service_night),
        job_run_id=job_run_id,
        worker=self.request.hostname or "",
        celery_task_id=self.request.id or "",
    )
    return done.run.counts.get("plan_id")


def _replan(depot: Depot, night: dt.date, reason: str) -> jobs.Outcome:

    plan = plan_depot_night(
        depot=depot,
        service_night=night,
        trigger=ChargingPlan.Trigger.EVENT,
        trigger_detail=reason,
        now=timezone.now(),
        **night_event_inputs(depot, night),
    )
    return plan_outcome(plan)


@shared_task(bind=True, **IDEMPOTENT_TASK_OPTIONS)
def replan_depot_task(
    self, depot_id: int, service_night: str, reason: str = "", job_run_id: int | None = None
) -> int | None:
    # Clear the marker first: an event arriving while we plan schedules one more re-plan, so it is never lost.
    cache.delete(_replan_pending_key(depot_id))
    depot = Depot.objects.filter(pk=depot_id).first()
    if depot is None:
        return None
    night = dt.date.fromisoformat(service_night)
    # Each request is its own work (keyed by its message id): a redelivered copy of it does not re-plan again.
    request_id = self.request.id or uuid.uuid4().hex
    done = jobs.job_run(
        job=REPLAN_JOB,
        key=jobs.job_key(REPLAN_JOB, depot_id=depot.pk, night=night, extra=f"request={request_id}"),
        work=lambda: _replan(depot, night, reason),
        lock_scope=f"{PLAN_LOCK_GROUP}:depot={depot.pk}",
        job_run_id=job_run_id,
        task_name=self.name,
        arguments={"depot_id": depot.pk, "service_night": service_night, "reason": reason},
        depot_id=depot.pk,
        night=night,
        worker=self.request.hostname or "",
        celery_task_id=self.request.id or "",
    )
    return done.run.counts.get("plan_id")


def request_replan(*, depot: Depot, service_night: dt.date, reason: str, request_key: str = "") -> bool:
    """Ask for a re-plan of ``depot`` after the current transaction commits; bursts coalesce.

    The first request sets a marker in the cache (Redis in production, shared by every process) and sends
    the re-plan with a delay of ``REPLAN_COALESCE_SECONDS``; requests while the marker is set are folded into
    it. The re-plan clears the marker when it starts, so a change made while it runs gets a re-plan of its
    own: a burst gives one re-plan, or two if it straddles the start of the first.

    The re-plan goes through the task outbox (``jobs.outbox``): it is a row of the caller's transaction, sent
    after the commit, or when Redis is back if Redis is away then. ``request_key`` names the request (an
    event's id) so that recording it twice queues one re-plan; without it each call is its own request.

    Returns whether a new re-plan was scheduled (False: one is already pending and will see this change).
    """
    if not cache.add(_replan_pending_key(depot.pk), reason, timeout=REPLAN_COALESCE_SECONDS * 12):
        return False
    outbox_task_send(
        task=replan_depot_task,
        args=(depot.pk, service_night.isoformat(), reason),
        dedupe_key=f"{REPLAN_JOB}:depot={depot.pk}:{request_key or uuid.uuid4().hex}",
        countdown_seconds=REPLAN_COALESCE_SECONDS,
    )
    return True


@shared_task(**IDEMPOTENT_TASK_OPTIONS)
def headroom_replans_task() -> int:
    """Beat, every minute: re-plan the depots whose plans keep headroom for unannounced arrivals, once a slot."""
    return headroom_replans_request(now=timezone.now())


@shared_task(**IDEMPOTENT_TASK_OPTIONS)
def sessions_detect_depotless_task(day: str | None = None) -> str:
    """Charging sessions of the cars with no home depot, found in their telemetry (daily)."""
    from charging.sessions import sessions_detect_for_depotless_vehicles

    return sessions_detect_for_depotless_vehicles(day=dt.date.fromisoformat(day) if day else None)
