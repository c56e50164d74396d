"""The overnight jobs' runner: runs the jobs of the registry (``jobs.registry``) and schedules them.

A job is a function ``run(*, depot, night) -> str`` that does one depot's work for the night that starts on
the evening of ``night`` (a local date) and returns a one-line summary (or a dict of counts, or a
``jobs.runs.Outcome`` with both). Apps declare their stages and register their jobs in a module
named ``nightly.py`` (``fleet/nightly.py``, ``batteries/nightly.py``, ``charging/nightly.py``), which the registry
discovers:

    from jobs.registry import nightly_job

    @nightly_job(stage=CHARGING_PLANS, name="charging.plan_depot_night")
    def plan_depot_night(*, depot, night):
        plan = charging_plan_compute(depot=depot, night=night)
        return f"{plan.vehicle_count} vehicles, {plan.cost_mxn:.0f} MXN"

Stages run in order (tonight's plan needs today's telemetry aggregates and the packs' forecast health), and
within a stage in registration order. ``manage.py run_night`` runs them in-process (``make demo`` does);
in production Celery beat sends ``jobs.tasks.nightly_job_task`` for each job and depot at the times
``scheduled_time`` gives (``manage.py seed_schedules``). Either way each job runs through ``run_job``: one
``JobRun`` record per attempt, done once per depot and night (``jobs.runs``), and never run twice at once
for a depot (nor alongside other work of its ``lock_group``: re-plans share the nightly plan's).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from jobs import runs as job_runs
from jobs.registry import NightlyJob, Stage, job_named, nightly_job, registered_daily_tasks, registered_jobs

__all__ = ["NightlyJob", "Stage", "job_named", "nightly_job", "registered_jobs"]

logger = logging.getLogger(__name__)

NIGHTLY_JOB_TASK = "jobs.tasks.nightly_job_task"


@dataclass(frozen=True)
class JobResult:
    job: NightlyJob
    depot_code: str
    night: dt.date
    ok: bool
    summary: str
    seconds: float
    already_done: bool = False


def scheduled_time(job: NightlyJob, depot) -> dt.time:
    """Local time (depot's zone) at which ``job`` runs each day for ``depot``: its stage's time, unless
    ``EVFLEET_NIGHTLY_JOB_TIMES`` (e.g. ``{"TELEMETRY": "00:30"}``) sets the stage's time for every depot."""
    if job.stage.key in settings.EVFLEET_NIGHTLY_JOB_TIMES:
        return dt.time.fromisoformat(settings.EVFLEET_NIGHTLY_JOB_TIMES[job.stage.key])
    return job.stage.at(depot)


def expire_seconds(job: NightlyJob) -> int:
    return job.stage.expire_seconds


def run_job(
    *,
    job: NightlyJob,
    depot,
    night: dt.date,
    force: bool = False,
    job_run_id: int | None = None,
    worker: str = "",
    celery_task_id: str = "",
) -> job_runs.JobDone:
    """Run one job for one depot and night, recorded, at most once (``force``: run it again all the same)."""
    arguments = {"job": job.name, "depot_id": depot.pk, "night": night.isoformat()}
    key = job.key(depot.pk, night)
    task_name = NIGHTLY_JOB_TASK
    if force and job_run_id is None:
        job_run_id = job_runs.job_pending_row(
            job=job.name, key=key, task_name=task_name, arguments=arguments, depot_id=depot.pk, night=night
        ).pk
    return job_runs.job_run(
        job=job.name,
        key=key,
        work=lambda: job.run(depot=depot, night=night),
        lock_scope=job.lock_scope(depot.pk),
        job_run_id=job_run_id,
        task_name=task_name,
        arguments=arguments,
        depot_id=depot.pk,
        night=night,
        worker=worker,
        celery_task_id=celery_task_id,
    )


def run_night(
    *, depot, night: dt.date, jobs: Iterable[NightlyJob] | None = None, force: bool = False
) -> list[JobResult]:
    """Run the jobs for one depot and one night, in-process. A failing job is logged and reported; the others
    still run. A job already done for this depot and night is skipped (reported "already done") unless
    ``force``."""
    results = []
    for job in registered_jobs() if jobs is None else jobs:
        started = time.perf_counter()
        already_done = False
        try:
            done = run_job(job=job, depot=depot, night=night, force=force)
            summary, ok, already_done = done.outcome.summary, True, done.already_done
        except Exception as exc:  # one job's failure must not cost the depot its other jobs
            logger.exception("Nightly job %s failed for depot %s, night %s", job.name, depot.code, night)
            summary, ok = f"{type(exc).__name__}: {exc}", False
        results.append(JobResult(job, depot.code, night, ok, summary, time.perf_counter() - started, already_done))
    return results


@dataclass(frozen=True)
class DailyResult:
    name: str
    ok: bool
    summary: str
    seconds: float


def run_daily_tasks() -> list[DailyResult]:
    """Run the organisation-wide daily tasks in-process, in the order beat sends them: the work for vehicles with
    no home depot (their duty cycles, charges, capacity estimates and pack forecasts), which no depot's night
    covers. ``run_night --all-depots`` does this where no beat runs (``make demo``); weekly tasks (the telemetry
    prune) are left to beat. A failing task is logged and reported; the others still run."""
    from config.celery import app

    app.loader.import_default_modules()
    results = []
    for daily in sorted((d for d in registered_daily_tasks() if d.day_of_week == "*"), key=lambda d: d.at):
        started = time.perf_counter()
        try:
            returned = app.tasks[daily.task](**daily.kwargs())
            summary, ok = (f"{returned} record(s)" if isinstance(returned, int) else str(returned)), True
        except Exception as exc:  # one task's failure must not cost the others
            logger.exception("Daily task %s failed", daily.name)
            summary, ok = f"{type(exc).__name__}: {exc}", False
        results.append(DailyResult(daily.name, ok, summary, time.perf_counter() - started))
    return results


def forced_runs(*, depot_id: int, night: dt.date) -> dict[str, int]:
    """One pending run per registered job of a depot's night, made for a forced request: the forced work is
    named by this request, not by a task delivery, so a redelivered or retried task finds it done (issue 20).
    Returns the run ids by job name, for ``nightly_depot_task(forced_job_run_ids=...)``."""
    return {
        job.name: job_runs.job_pending_row(
            job=job.name,
            key=job.key(depot_id, night),
            task_name=NIGHTLY_JOB_TASK,
            arguments={"job": job.name, "depot_id": depot_id, "night": night.isoformat()},
            depot_id=depot_id,
            night=night,
        ).pk
        for job in registered_jobs()
    }


# --- schedules ------------------------------------------------------------------------------------------

NIGHTLY_SCHEDULE_PREFIX = "evfleet.nightly:"


@dataclass(frozen=True)
class WantedSchedule:
    name: str
    task: str
    kwargs: dict
    at: dt.time
    time_zone: str
    day_of_week: str
    expire_seconds: int
    description: str


@dataclass
class SeedReport:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]


def schedule_name(job: NightlyJob, depot) -> str:
    # The depot's primary key, not its code: renaming a depot must not duplicate its schedules.
    return f"{NIGHTLY_SCHEDULE_PREFIX}{job.name}:depot={depot.pk}"


def wanted_schedules(depots: Iterable) -> list[WantedSchedule]:
    """One daily entry per registered job and depot, at the depot's local time, plus weekly telemetry pruning."""
    wanted = []
    for depot in depots:
        for job in registered_jobs():
            at = scheduled_time(job, depot)
            wanted.append(
                WantedSchedule(
                    name=schedule_name(job, depot),
                    task=NIGHTLY_JOB_TASK,
                    kwargs={"job": job.name, "depot_id": depot.pk},
                    at=at,
                    time_zone=depot.time_zone,
                    day_of_week="*",
                    expire_seconds=expire_seconds(job),
                    description=(
                        f"{job.stage.label} for {depot.name} ({depot.code}) daily at {at:%H:%M} {depot.time_zone}. "
                        "Written by manage.py seed_schedules: change the depot (planning time) or the settings "
                        "and re-seed; enabling/disabling here is kept."
                    ),
                )
            )
    for daily in registered_daily_tasks():
        wanted.append(
            WantedSchedule(
                name=daily.name,
                task=daily.task,
                kwargs=daily.kwargs(),
                at=daily.at,
                time_zone=settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE,
                day_of_week=daily.day_of_week,
                expire_seconds=daily.expire_seconds,
                description=daily.description,
            )
        )
    return wanted


def _crontab_for(wanted: WantedSchedule):
    import zoneinfo

    from django_celery_beat.models import CrontabSchedule

    fields = {
        "minute": str(wanted.at.minute),
        "hour": str(wanted.at.hour),
        "day_of_week": wanted.day_of_week,
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": zoneinfo.ZoneInfo(wanted.time_zone),
    }
    # No unique constraint on crontabs (the admin may have made twins): take any matching one.
    return CrontabSchedule.objects.filter(**fields).order_by("pk").first() or CrontabSchedule.objects.create(**fields)


def schedules_seed(depots: Iterable, *, remove_stale: bool) -> SeedReport:
    """Create or update the beat schedules of ``depots``' nightly jobs; with ``remove_stale`` (``depots`` is
    every depot), remove the nightly entries of depots or jobs that are gone.

    Idempotent: a second run changes nothing. What it owns (task, arguments, time, expiry, description) is
    set from the depots and settings; whether an entry is enabled is the admin's and is left alone.
    """
    import json

    from django.db import transaction
    from django_celery_beat.models import PeriodicTask

    report = SeedReport([], [], [], [])
    with transaction.atomic():
        wanted = wanted_schedules(depots)
        for entry in wanted:
            values = {
                "task": entry.task,
                "kwargs": json.dumps(entry.kwargs, sort_keys=True),
                "args": "[]",
                "crontab": _crontab_for(entry),
                "interval": None,
                "solar": None,
                "clocked": None,
                "expires": None,
                "expire_seconds": entry.expire_seconds,
                "one_off": False,
                "description": entry.description,
            }
            task = PeriodicTask.objects.filter(name=entry.name).first()
            if task is None:
                PeriodicTask.objects.create(name=entry.name, enabled=True, **values)
                report.created.append(entry.name)
                continue
            changed = [name for name, value in values.items() if getattr(task, name) != value]
            if changed:
                for name in changed:
                    setattr(task, name, values[name])
                task.save()
                report.updated.append(entry.name)
            else:
                report.unchanged.append(entry.name)
        if remove_stale:
            stale = PeriodicTask.objects.filter(name__startswith=NIGHTLY_SCHEDULE_PREFIX).exclude(
                name__in=[entry.name for entry in wanted]
            )
            for task in stale:
                report.removed.append(task.name)
                task.delete()
    return report
