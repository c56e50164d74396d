"""Fleet's overnight work: the telemetry aggregation stage, and the daily tasks of cars with no depot and of
retention. Discovered by the job registry (``jobs.registry.discover`` imports every app's ``nightly``)."""

import datetime as dt

from django.conf import settings

from fleet.telemetry.duty import duty_cycles_for_depot_night
from fleet.telemetry.partitions import telemetry_partitions_ensure
from jobs.registry import DailyTask, Stage, daily_task, nightly_job

# The first stage of the night: later stages (forecasts, plans) read the day's aggregates.
TELEMETRY = Stage(key="TELEMETRY", label="telemetry aggregation", order=10, at=lambda depot: dt.time(0, 30))

nightly_job(stage=TELEMETRY, name="fleet.telemetry_duty_cycles")(duty_cycles_for_depot_night)


@nightly_job(stage=TELEMETRY, name="fleet.telemetry_partitions")
def telemetry_partitions_for_night(*, depot, night) -> str:
    """Day partitions of the readings table two weeks ahead (PostgreSQL). The table is shared by all depots:
    the first depot's run creates what is missing, the others find nothing to do."""
    created = telemetry_partitions_ensure()
    return f"{len(created)} day partitions created" if created else "partitions in place"


# Cars with no home depot have no per-depot job: their day is summarised once a day, organisation-wide.
daily_task(
    DailyTask(
        name="evfleet.depotless.duty_cycles",
        task="fleet.tasks.telemetry_duty_cycles_depotless",
        at=dt.time(0, 45),
        description="Yesterday's duty cycles for cars with no home depot, daily.",
    )
)
# Sundays at 03:00 in the default depot time zone: the quietest hour of the week.
daily_task(
    DailyTask(
        name="evfleet.telemetry_prune",
        task="fleet.tasks.telemetry_prune",
        at=dt.time(3, 0),
        day_of_week="0",
        expire_seconds=6 * 3600,
        kwargs=lambda: {"older_than_days": settings.EVFLEET_TELEMETRY_RETENTION_DAYS},
        description="Downsample raw telemetry older than EVFLEET_TELEMETRY_RETENTION_DAYS (docs/telemetry.md), weekly.",
    )
)
