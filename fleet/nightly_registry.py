"""The registry of overnight jobs: what runs each night, in which stage. The runner is ``fleet.nightly``.

Apps register their jobs in a module named ``nightly.py`` (``batteries/nightly.py``, ``charging/nightly.py``),
imported the first time the registry is read (``discover``); fleet's own telemetry job sits in a sub-package,
which that discovery does not look into, so ``FleetConfig.ready`` imports it. This module imports no runner
and no task, so registering a job never imports the code that runs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from django.utils.module_loading import autodiscover_modules

from fleet.jobs import Outcome, job_key


class Stage(Enum):
    """What runs when in the night, in this order; the value is what a person reads."""

    TELEMETRY = "telemetry aggregation"
    BATTERY_FORECASTS = "battery forecasts"
    CHARGING_PLANS = "charging plans"


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


# Filled by ``nightly_job`` when the apps' ``nightly`` modules are imported; read through ``registered_jobs``.
NIGHTLY_JOBS: list[NightlyJob] = []


def nightly_job(*, stage: Stage, name: str, lock_group: str = "") -> Callable[[JobFunction], JobFunction]:
    """Register the decorated function as a nightly job. Registering a name twice keeps one entry.

    The function returns a summary line, a dict of counts or a ``fleet.jobs.Outcome``.
    """

    def register(function: JobFunction) -> JobFunction:
        NIGHTLY_JOBS[:] = [job for job in NIGHTLY_JOBS if job.name != name]
        NIGHTLY_JOBS.append(NightlyJob(name=name, stage=stage, run=function, lock_group=lock_group))
        return function

    return register


def discover() -> None:
    """Import every installed app's ``nightly`` module so its jobs register themselves.

    On demand rather than at start-up: the battery forecasts' module loads the numerical stack, which a web
    process or a ``manage.py`` command that runs no job should not pay for.
    """
    autodiscover_modules("nightly")


def registered_jobs() -> list[NightlyJob]:
    """The registered jobs in the order they run: by stage, then as registered."""
    discover()
    stage_order = list(Stage)
    return sorted(NIGHTLY_JOBS, key=lambda job: stage_order.index(job.stage))


def job_named(name: str) -> NightlyJob | None:
    return next((job for job in registered_jobs() if job.name == name), None)
