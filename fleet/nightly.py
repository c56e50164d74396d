"""The overnight jobs: a small registry the apps add their jobs to, and the runner that runs them for a night.

A job is a function ``run(*, depot, night) -> str`` that does one depot's work for the night that starts on
the evening of ``night`` (a local date) and returns a one-line summary. Apps register their jobs in a module
named ``nightly.py`` (``batteries/nightly.py``, ``charging/nightly.py``, ...), which the runner imports:

    from fleet.nightly import Stage, nightly_job

    @nightly_job(stage=Stage.CHARGING_PLANS, name="charging.plan_depot_night")
    def plan_depot_night(*, depot, night):
        plan = charging_plan_compute(depot=depot, night=night)
        return f"{plan.vehicle_count} vehicles, {plan.cost_mxn:.0f} MXN"

Stages run in order (tonight's plan needs today's telemetry aggregates and the packs' forecast health), and
within a stage in registration order. ``manage.py run_night`` runs them in-process (``make demo`` does); a
Celery task can call ``run_night(depot=..., night=...)`` the same way for one depot.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger(__name__)


class Stage(Enum):
    """What runs when in the night, in this order; the value is what a person reads."""

    TELEMETRY = "telemetry aggregation"
    BATTERY_FORECASTS = "battery forecasts"
    CHARGING_PLANS = "charging plans"


JobFunction = Callable[..., str | None]


@dataclass(frozen=True)
class NightlyJob:
    name: str
    stage: Stage
    run: JobFunction


@dataclass(frozen=True)
class JobResult:
    job: NightlyJob
    depot_code: str
    night: dt.date
    ok: bool
    summary: str
    seconds: float


# Filled by ``nightly_job`` when the apps' ``nightly`` modules are imported; read through ``registered_jobs``.
NIGHTLY_JOBS: list[NightlyJob] = []


def nightly_job(*, stage: Stage, name: str) -> Callable[[JobFunction], JobFunction]:
    """Register the decorated function as a nightly job. Registering a name twice keeps one entry."""

    def register(function: JobFunction) -> JobFunction:
        NIGHTLY_JOBS[:] = [job for job in NIGHTLY_JOBS if job.name != name]
        NIGHTLY_JOBS.append(NightlyJob(name=name, stage=stage, run=function))
        return function

    return register


def discover() -> None:
    """Import every installed app's ``nightly`` module so its jobs register themselves."""
    autodiscover_modules("nightly")


def registered_jobs() -> list[NightlyJob]:
    """The registered jobs in the order they run: by stage, then as registered."""
    discover()
    stage_order = list(Stage)
    return sorted(NIGHTLY_JOBS, key=lambda job: stage_order.index(job.stage))


def missing_stages(jobs: Iterable[NightlyJob]) -> list[Stage]:
    present = {job.stage for job in jobs}
    return [stage for stage in Stage if stage not in present]


def run_night(*, depot, night: dt.date, jobs: Iterable[NightlyJob] | None = None) -> list[JobResult]:
    """Run the jobs for one depot and one night. A failing job is logged and reported; the others still run."""
    results = []
    for job in registered_jobs() if jobs is None else jobs:
        started = time.perf_counter()
        try:
            summary = job.run(depot=depot, night=night) or "done"
            ok = True
        except Exception as exc:  # one job's failure must not cost the depot its other jobs
            logger.exception("Nightly job %s failed for depot %s, night %s", job.name, depot.code, night)
            summary, ok = f"{type(exc).__name__}: {exc}", False
        results.append(JobResult(job, depot.code, night, ok, summary, time.perf_counter() - started))
    return results
