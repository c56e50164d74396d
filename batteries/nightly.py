"""Battery health's overnight job: forecast every pack in the depot's vehicles, in chunks workers share.

A depot's packs are split into chunks of ``EVFLEET_FORECAST_CHUNK_SIZE`` (one Celery task each, recorded
as its own JobRun and retried alone), so adding workers shortens the night. Packs are ordered so that
similar duties fall into the same chunk: each chunk solves each of its duty signatures once.
"""

import datetime as dt

from django.conf import settings

from batteries.forecasting import forecast_packs
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
CHUNK_JOB = "batteries.forecast_packs"


def chunk_size() -> int:
    return settings.EVFLEET_FORECAST_CHUNK_SIZE


@chunk_job(CHUNK_JOB)
def forecast_pack_chunk(*, ids, night) -> Outcome:
    run = forecast_packs(packs=BatteryPack.objects.filter(pk__in=ids).order_by("serial"), as_of=night, trigger="chunk")
    return Outcome(
        f"{run.packs_done}/{run.packs_total} packs forecast in {run.duty_groups} duty groups "
        f"({run.packs_failed} failed, {run.duration_s:.0f} s)",
        {"forecast_run": run.pk, "packs": run.packs_total, "done": run.packs_done, "failed": run.packs_failed},
    )


@nightly_job(stage=BATTERY_FORECASTS, name=DEPOT_JOB)
def forecast_depot_packs(*, depot, night) -> Outcome:
    ids = list(
        packs_in_depot(depot)
        .order_by("chemistry", "installations__vehicle__model_id", "serial")
        .values_list("pk", flat=True)
    )
    if len(ids) <= chunk_size():
        return forecast_pack_chunk(ids=ids, night=night)
    queued = fan_out(
        job=CHUNK_JOB,
        ids=ids,
        chunk_size=chunk_size(),
        parent_key=job_key(DEPOT_JOB, depot_id=depot.pk, night=night),
        night=night,
        depot_id=depot.pk,
    )
    return Outcome(f"{len(ids)} packs in {len(queued)} chunks", {"packs": len(ids), "chunks": len(queued)})


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
