"""The overnight jobs' runner: runs the jobs of the registry (``fleet.nightly_registry``) and schedules them.

A job is a function ``run(*, depot, night) -> str`` that does one depot's work for the night that starts on
the evening of ``night`` (a local date) and returns a one-line summary (or a dict of counts, or a
``fleet.jobs.Outcome`` with both). Apps register their jobs in a module
named ``nightly.py`` (``batteries/nightly.py``, ``charging/nightly.py``, ...), which the registry discovers:

    from fleet.nightly import Stage, nightly_job

    @nightly_job(stage=Stage.CHARGING_PLANS, name="charging.plan_depot_night")
    def plan_depot_night(*, depot, night):
        plan = charging_plan_compute(depot=depot, night=night)
        return f"{plan.vehicle_count} vehicles, {plan.cost_mxn:.0f} MXN"

Stages run in order (tonight's plan needs today's telemetry aggregates and the packs' forecast health), and
within a stage in registration order. ``manage.py run_night`` runs them in-process (``make demo`` does);
in production Celery beat sends ``fleet.job_tasks.nightly_job_task`` for each job and depot at the times
``scheduled_time`` gives (``manage.py seed_schedules``). Either way each job runs through ``run_job``: one
``JobRun`` record per attempt, done once per depot and night (``fleet.jobs``), and never run twice at once
for a depot (nor alongside other work of its ``lock_group``: re-plans share the nightly plan's).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from fleet import jobs as job_runs

# The registry's names, importable from here as they always were (``from fleet.nightly import Stage, nightly_job``).
from fleet.nightly_registry import NightlyJob, Stage, job_named, nightly_job, registered_jobs

__all__ = ["NightlyJob", "Stage", "job_named", "nightly_job", "registered_jobs"]

logger = logging.getLogger(__name__)

# When each stage runs, in the depot's local time, and how late a scheduled run may still start (beat
# entries expire after that: a night's telemetry aggregated at noon would be worse than skipped and
# reported by the healthcheck). Charging plans run at the depot's own ``planning_time``. Settings may
# override the times: EVFLEET_NIGHTLY_JOB_TIMES = {"TELEMETRY": "00:30", "BATTERY_FORECASTS": "01:30"}.
DEFAULT_STAGE_TIMES = {Stage.TELEMETRY: dt.time(0, 30), Stage.BATTERY_FORECASTS: dt.time(1, 30)}
STAGE_EXPIRE_SECONDS = {Stage.TELEMETRY: 3 * 3600, Stage.BATTERY_FORECASTS: 3 * 3600, Stage.CHARGING_PLANS: 3 * 3600}


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
    """Local time (depot's zone) at which ``job`` runs each day for ``depot``."""
    if job.stage is Stage.CHARGING_PLANS:
        return depot.planning_time
    overrides = getattr(settings, "EVFLEET_NIGHTLY_JOB_TIMES", {}) or {}
    if job.stage.name in overrides:
        return dt.time.fromisoformat(overrides[job.stage.name])
    return DEFAULT_STAGE_TIMES[job.stage]


def expire_seconds(job: NightlyJob) -> int:
    return STAGE_EXPIRE_SECONDS[job.stage]


def missing_stages(jobs: Iterable[NightlyJob]) -> list[Stage]:
    present = {job.stage for job in jobs}
    return [stage for stage in Stage if stage not in present]


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
    task_name = "fleet.job_tasks.nightly_job_task"
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


# --- schedules ------------------------------------------------------------------------------------------

NIGHTLY_SCHEDULE_PREFIX = "evfleet.nightly:"
TELEMETRY_RETENTION_SCHEDULE = "evfleet.telemetry_prune"
TELEMETRY_RETENTION_AT = dt.time(3, 0)  # Sundays, in the default depot time zone: the quietest hour of the week
TELEMETRY_RETENTION_EXPIRE_SECONDS = 6 * 3600
# Cars with no home depot have no per-depot job: their day is summarised once a day, organisation-wide.
DEPOTLESS_SCHEDULES = (
    ("evfleet.depotless.duty_cycles", "fleet.tasks.telemetry_duty_cycles_depotless", dt.time(0, 45)),
    ("evfleet.depotless.charging_sessions", "charging.tasks.sessions_detect_depotless_task", dt.time(1, 0)),
)
DEPOTLESS_EXPIRE_SECONDS = 3 * 3600


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
                    task="fleet.job_tasks.nightly_job_task",
                    kwargs={"job": job.name, "depot_id": depot.pk},
                    at=at,
                    time_zone=depot.time_zone,
                    day_of_week="*",
                    expire_seconds=expire_seconds(job),
                    description=(
                        f"{job.stage.value} for {depot.name} ({depot.code}) daily at {at:%H:%M} {depot.time_zone}. "
                        "Written by manage.py seed_schedules: change the depot (planning time) or the settings "
                        "and re-seed; enabling/disabling here is kept."
                    ),
                )
            )
    for name, task, at in DEPOTLESS_SCHEDULES:
        wanted.append(
            WantedSchedule(
                name=name,
                task=task,
                kwargs={},
                at=at,
                time_zone=settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE,
                day_of_week="*",
                expire_seconds=DEPOTLESS_EXPIRE_SECONDS,
                description=f"Yesterday's {task.rsplit('.', 1)[1]} for cars with no home depot, daily.",
            )
        )
    retention_days = int(getattr(settings, "EVFLEET_TELEMETRY_RETENTION_DAYS", 90))
    wanted.append(
        WantedSchedule(
            name=TELEMETRY_RETENTION_SCHEDULE,
            task="fleet.tasks.telemetry_prune",
            kwargs={"older_than_days": retention_days},
            at=TELEMETRY_RETENTION_AT,
            time_zone=settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE,
            day_of_week="0",  # Sunday
            expire_seconds=TELEMETRY_RETENTION_EXPIRE_SECONDS,
            description=f"Downsample raw telemetry older than {retention_days} days (docs/telemetry.md), weekly.",
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


def schedules_seed(depots: Iterable | None = None) -> SeedReport:
    """Create or update the beat schedules of every depot's nightly jobs; remove those of gone depots/jobs.

    Idempotent: a second run changes nothing. What it owns (task, arguments, time, expiry, description) is
    set from the depots and settings; whether an entry is enabled is the admin's and is left alone.
    """
    import json

    from django.db import transaction
    from django_celery_beat.models import PeriodicTask

    from fleet.models import Depot

    report = SeedReport([], [], [], [])
    with transaction.atomic():
        wanted = wanted_schedules(Depot.objects.order_by("pk") if depots is None else depots)
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
        if depots is None:
            stale = PeriodicTask.objects.filter(name__startswith=NIGHTLY_SCHEDULE_PREFIX).exclude(
                name__in=[entry.name for entry in wanted]
            )
            for task in stale:
                report.removed.append(task.name)
                task.delete()
    return report
