"""Battery health's overnight jobs: forecast every pack, in chunks workers share.

A depot's packs are split into chunks of at most ``EVFLEET_FORECAST_CHUNK_SIZE`` (one Celery task each,
recorded as its own JobRun and retried alone), so adding workers shortens the night. A chunk holds whole
duty groups (``duty_chunks``: packs of one duty signature, the forecast core's group, are simulated
together), so each group is simulated once a night; only a group larger than a chunk is split.

Packs in vehicles with no home depot (municipal mini EVs that charge from any outlet) have no depot job:
``forecast_depotless_packs`` forecasts them once a night, organisation-wide, in the same chunks
(``batteries.tasks.forecast_depotless_packs_task`` is its beat entry).
"""

import datetime as dt

from django.conf import settings
from django.db.models import QuerySet

from batteries.forecast_service import forecast_packs, in_duty_groups
from batteries.models import BatteryPack
from batteries.selectors import packs_in_depot
from batteries.telemetry_capacity import capacity_observations_record
from fleet.nightly import TELEMETRY
from fleet.selectors import depot_vehicle_ids
from jobs.registry import DailyTask, Stage, daily_task, nightly_job
from jobs.runs import Outcome, chunk_job, fan_out, job_key

# After the telemetry stage (duty cycles are the forecasts' duty), before the plans (which read forecast SoH).
BATTERY_FORECASTS = Stage(key="BATTERY_FORECASTS", label="battery forecasts", order=20, at=lambda depot: dt.time(1, 30))

DEPOT_JOB = "batteries.forecast_depot_packs"
DEPOTLESS_JOB = "batteries.forecast_depotless_packs"
CHUNK_JOB = "batteries.forecast_packs"


def chunk_size() -> int:
    return settings.EVFLEET_FORECAST_CHUNK_SIZE


@chunk_job(CHUNK_JOB)
def forecast_pack_chunk(*, ids: list[int], night: dt.date) -> Outcome:
    run = forecast_packs(packs=BatteryPack.objects.filter(pk__in=ids).order_by("serial"), as_of=night, trigger="chunk")
    failures = f": {run.error}" if run.packs_failed and run.error else ""
    return Outcome(
        f"{run.packs_done}/{run.packs_total} packs forecast in {run.duty_groups} duty groups "
        f"({run.packs_failed} failed, {run.duration_s:.0f} s){failures}",
        {"forecast_run": run.pk, "packs": run.packs_total, "done": run.packs_done, "failed": run.packs_failed},
    )


def duty_chunks(groups: list[list[int]], size: int) -> list[list[int]]:
    """Chunks of at most ``size`` pack ids made of whole duty groups, in order: a group joins the current
    chunk if it fits, else starts the next one; a group larger than ``size`` fills chunks of its own. Cutting
    chunks by count alone split a group at each boundary and simulated it twice (2 of ~13 groups a depot)."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    out: list[list[int]] = []
    current: list[int] = []
    for group in groups:
        if current and len(current) + len(group) > size:
            out.append(current)
            current = []
        while len(group) > size:
            out.append(group[:size])
            group = group[size:]
        current = current + group
    if current:
        out.append(current)
    return out


def _forecast_in_chunks(groups: list[list[int]], *, night: dt.date, parent_key: str, depot_id: int | None) -> Outcome:
    parts = duty_chunks(groups, chunk_size())
    if len(parts) <= 1:
        return forecast_pack_chunk(ids=parts[0] if parts else [], night=night)
    queued = fan_out(job=CHUNK_JOB, parts=parts, parent_key=parent_key, night=night, depot_id=depot_id)
    n = sum(len(part) for part in parts)
    return Outcome(f"{n} packs in {len(queued)} chunks", {"packs": n, "chunks": len(queued)})


@nightly_job(stage=BATTERY_FORECASTS, name=DEPOT_JOB)
def forecast_depot_packs(*, depot, night: dt.date) -> Outcome:
    groups = in_duty_groups(packs_in_depot(depot).order_by("serial"), night)
    return _forecast_in_chunks(
        groups, night=night, parent_key=job_key(DEPOT_JOB, depot_id=depot.pk, night=night), depot_id=depot.pk
    )


def packs_without_depot() -> QuerySet[BatteryPack]:
    """Packs now installed in vehicles that have no home depot."""
    return BatteryPack.objects.filter(
        installations__removed_at__isnull=True, installations__vehicle__home_depot__isnull=True
    ).distinct()


def forecast_depotless_packs(*, night: dt.date) -> Outcome:
    """Forecast tonight every pack whose vehicle has no home depot (no depot job would)."""
    groups = in_duty_groups(packs_without_depot().order_by("serial"), night)
    return _forecast_in_chunks(groups, night=night, parent_key=job_key(DEPOTLESS_JOB, night=night), depot_id=None)


# Capacity estimates from the day's charges, with the telemetry stage: tonight's forecasts calibrate on them.
@nightly_job(stage=TELEMETRY, name="batteries.capacity_estimates")
def capacity_estimates(*, depot, night) -> Outcome:
    vehicle_ids = depot_vehicle_ids(depot)
    recorded = capacity_observations_record(vehicle_ids=vehicle_ids, days=CAPACITY_WINDOW_DAYS)
    return Outcome(f"{recorded} capacity estimate(s) from {len(vehicle_ids)} vehicles", {"recorded": recorded})


CAPACITY_WINDOW_DAYS = 14

# Cars with no home depot get theirs once a day.
daily_task(
    DailyTask(
        name="evfleet.depotless.capacity_estimates",
        task="batteries.tasks.telemetry_capacity_estimates_depotless",
        at=dt.time(0, 50),
        description="Capacity estimates from the last 14 days' charges of cars with no home depot, daily.",
    )
)

daily_task(
    DailyTask(
        name="evfleet.depotless.battery_forecasts",
        task="batteries.tasks.forecast_depotless_packs_task",
        at=dt.time(2, 0),
        description="Tonight's forecasts of the packs in vehicles with no home depot, daily.",
    )
)
