"""Celery tasks of the overnight jobs: thin, they take ids and ISO dates and go through ``jobs.runs``.

- ``nightly_job_task(job, depot_id)``: what Celery beat sends for each job and depot (``seed_schedules``);
  the night is the depot's local date when the task runs.
- ``nightly_depot_task(depot_id, night)``: all of a depot's jobs in stage order (``run_night --dispatch``).
- ``job_chunk_task(job, ids, key, ...)``: one chunk of a fanned-out job (``jobs.runs.fan_out``).
- ``outbox_send_task()``: sends the task outbox's pending rows (``jobs.outbox``); beat sends it every 30 s.

All are idempotent (each run is claimed by its natural key), hence acknowledged late and redelivered when
their worker is lost; transient database and broker errors retry with backoff (``IDEMPOTENT_TASK_OPTIONS``).
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.apps import apps
from django.utils import timezone

from jobs import nightly, outbox, registry
from jobs import runs as jobs
from jobs.retry import IDEMPOTENT_TASK_OPTIONS, TRANSIENT_ERRORS

logger = logging.getLogger(__name__)


def _depot(depot_id: int):
    # By its label, like AUTH_USER_MODEL: the job machinery sits below the apps and imports none of them.
    return apps.get_model("fleet", "Depot").objects.filter(pk=depot_id).first()


def _night(depot, night: str | None) -> dt.date:
    return dt.date.fromisoformat(night) if night else timezone.localdate(timezone=depot.zone)


@shared_task(bind=True, **IDEMPOTENT_TASK_OPTIONS)
def nightly_job_task(
    self, job: str, depot_id: int, night: str | None = None, job_run_id: int | None = None
) -> str | None:
    depot = _depot(depot_id)
    if depot is None:
        logger.info("depot %s is gone: nothing to run for %s", depot_id, job)
        return None
    nightly_job = registry.job_named(job)
    if nightly_job is None:
        # A schedule outlived its job (renamed or removed): say so, and let re-seeding remove the schedule.
        logger.error("no nightly job named %r is registered; re-run manage.py seed_schedules", job)
        return None
    done = nightly.run_job(
        job=nightly_job,
        depot=depot,
        night=_night(depot, night),
        job_run_id=job_run_id,
        worker=self.request.hostname or "",
        celery_task_id=self.request.id or "",
    )
    return done.outcome.summary


@shared_task(bind=True, **IDEMPOTENT_TASK_OPTIONS)
def nightly_depot_task(
    self, depot_id: int, night: str | None = None, forced_job_run_ids: dict[str, int] | None = None
) -> list[str]:
    """Every registered job of one depot for one night, in stage order, each recorded on its own.

    A job's failure does not stop the depot's later jobs; a transient error retries the whole task, whose
    jobs already done are then skipped. A forced run comes with one pending ``JobRun`` per job, made by the
    sender (``run_night --dispatch --force``): each runs once, so a redelivered or retried copy of this task
    finds the forced work done instead of forcing it again.
    """
    depot = _depot(depot_id)
    if depot is None:
        return []
    night_date = _night(depot, night)
    summaries = []
    for job in registry.registered_jobs():
        try:
            done = nightly.run_job(
                job=job,
                depot=depot,
                night=night_date,
                job_run_id=(forced_job_run_ids or {}).get(job.name),
                worker=self.request.hostname or "",
                celery_task_id=self.request.id or "",
            )
            summaries.append(f"{job.name}: {done.outcome.summary}")
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # recorded as a failed JobRun; the depot's other jobs still run
            logger.exception("nightly job %s failed for depot %s, night %s", job.name, depot.code, night_date)
            summaries.append(f"{job.name}: FAILED {type(exc).__name__}: {exc}")
    return summaries


@shared_task(bind=True, **IDEMPOTENT_TASK_OPTIONS)
def job_chunk_task(
    self,
    job: str,
    ids: list[int],
    key: str,
    night: str | None = None,
    depot_id: int | None = None,
    job_run_id: int | None = None,
) -> str:
    registry.discover()  # chunk functions register next to their nightly jobs
    done = jobs.run_chunk(
        job=job,
        ids=ids,
        key=key,
        night=dt.date.fromisoformat(night) if night else None,
        depot_id=depot_id,
        job_run_id=job_run_id,
        task_name=self.name,
        worker=self.request.hostname or "",
        celery_task_id=self.request.id or "",
    )
    return done.outcome.summary


@shared_task(ignore_result=True)
def outbox_send_task() -> str:
    """Send what the outbox holds (tasks asked for while Redis was away) and prune rows sent long ago."""
    done = outbox.outbox_dispatch()
    pruned = outbox.outbox_prune()
    return f"outbox: {done.sent} sent, {done.pending} pending, {pruned} pruned"
