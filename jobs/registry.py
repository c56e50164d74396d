"""The registry of overnight work: stages, nightly jobs and daily tasks. The runner is ``jobs.nightly``.

It names no app. Each app declares its own stages and registers its jobs in a module named ``nightly.py``
(``fleet/nightly.py``, ``batteries/nightly.py``, ``charging/nightly.py``), imported the first time the
registry is read (``discover``):

    from jobs.registry import Stage, nightly_job

    CHARGING_PLANS = Stage(key="CHARGING_PLANS", label="charging plans", order=30, at=lambda depot: depot.planning_time)

    @nightly_job(stage=CHARGING_PLANS, name="charging.plan_depot_night")
    def plan_depot_night(*, depot, night): ...

Stages run by ``order`` (tonight's plan needs today's telemetry aggregates and the packs' forecast health,
so an app that needs another app's stage declares a larger order); jobs of one stage run as registered.
This module imports no runner and no task, so registering a job never imports the code that runs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.module_loading import autodiscover_modules

from jobs.runs import Outcome, job_key


class DepotLike(Protocol):
    """What the registry and the runner need of a depot (``fleet.models.Depot``), without importing it."""

    pk: Any
    code: str
    time_zone: str


@dataclass(frozen=True)
class Stage:
    """A step of the night. ``key`` names it in settings (``EVFLEET_NIGHTLY_JOB_TIMES``), ``label`` is what a
    person reads, ``order`` sorts the stages, ``at(depot)`` is the local time its jobs are scheduled."""

    key: str
    label: str
    order: int
    at: Callable[[Any], dt.time] = field(compare=False)
    # A scheduled run may still start this long after its time; later, beat drops it (and healthcheck says so).
    expire_seconds: int = 3 * 3600

    @property
    def value(self) -> str:  # what a person reads; the name the old enum gave it
        return self.label


JobFunction = Callable[..., Outcome | str | dict | None]


@dataclass(frozen=True)
class NightlyJob:
    name: str
    stage: Stage
    run: JobFunction
    # Jobs (and other work, e.g. re-plans) with the same lock group never run at once for one depot.
    lock_group: str = ""

    def lock_scope(self, depot_id: int) -> str:
        return f"{self.lock_group or self.name}:depot={depot_id}"

    def key(self, depot_id: int, night: dt.date) -> str:
        return job_key(self.name, depot_id=depot_id, night=night)


@dataclass(frozen=True)
class DailyTask:
    """A task beat sends once a day (or week), not per depot: e.g. the duty cycles of cars with no depot."""

    name: str  # the beat entry's name
    task: str  # the Celery task's registered name
    at: dt.time  # in EVFLEET_DEFAULT_DEPOT_TIME_ZONE
    kwargs: Callable[[], dict] = field(default=dict, compare=False)
    day_of_week: str = "*"  # crontab syntax: "0" is Sunday
    expire_seconds: int = 3 * 3600
    description: str = ""


# Filled when the apps' ``nightly`` modules are imported; read through ``registered_jobs``/``registered_daily_tasks``.
NIGHTLY_JOBS: list[NightlyJob] = []
DAILY_TASKS: list[DailyTask] = []


def nightly_job(*, stage: Stage, name: str, lock_group: str = "") -> Callable[[JobFunction], JobFunction]:
    """Register the decorated function as a nightly job. Registering a name twice keeps one entry.

    The function returns a summary line, a dict of counts or a ``jobs.runs.Outcome``.
    """

    def register(function: JobFunction) -> JobFunction:
        NIGHTLY_JOBS[:] = [job for job in NIGHTLY_JOBS if job.name != name]
        NIGHTLY_JOBS.append(NightlyJob(name=name, stage=stage, run=function, lock_group=lock_group))
        return function

    return register


def daily_task(task: DailyTask) -> DailyTask:
    """Register a task beat sends daily, organisation-wide. Registering a name twice keeps one entry."""
    DAILY_TASKS[:] = [each for each in DAILY_TASKS if each.name != task.name]
    DAILY_TASKS.append(task)
    return task


def discover() -> None:
    """Import every installed app's ``nightly`` module so its jobs register themselves.

    On demand rather than at start-up: the battery forecasts' module loads the numerical stack, which a web
    process or a ``manage.py`` command that runs no job should not pay for.
    """
    autodiscover_modules("nightly")


def registered_jobs() -> list[NightlyJob]:
    """The registered jobs in the order they run: by stage, then as registered."""
    discover()
    return sorted(NIGHTLY_JOBS, key=lambda job: job.stage.order)


def registered_stages() -> list[Stage]:
    """The stages that have at least one job, in order."""
    stages = {job.stage.key: job.stage for job in registered_jobs()}
    return sorted(stages.values(), key=lambda stage: stage.order)


def registered_daily_tasks() -> list[DailyTask]:
    discover()
    return list(DAILY_TASKS)


def job_named(name: str) -> NightlyJob | None:
    return next((job for job in registered_jobs() if job.name == name), None)
