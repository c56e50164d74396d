"""Charging's overnight work: tonight's plan for each depot (the last stage), and the charging sessions found
in telemetry (with fleet's telemetry stage)."""

import datetime as dt

from charging.models import ChargingPlan
from charging.planning import plan_depot_night
from charging.selectors import night_peak_kw_by_plan
from charging.sessions import sessions_detect_for_depot_night
from fleet.nightly import TELEMETRY
from jobs.registry import DailyTask, Stage, daily_task, nightly_job
from jobs.runs import Outcome

# Last: a plan needs the day's telemetry aggregates and the packs' forecast health. At the depot's own time.
CHARGING_PLANS = Stage(key="CHARGING_PLANS", label="charging plans", order=30, at=lambda depot: depot.planning_time)

# The nightly plan and the re-plans after events share this lock group: one depot is planned by one worker
# at a time (jobs.runs.job_lock), whatever started it.
PLAN_LOCK_GROUP = "charging.plan"
PLAN_JOB = "charging.plan_depot_night"


def plan_outcome(plan: ChargingPlan) -> Outcome:
    """What a plan run reports: a line for people, counts for the job record. Two peaks, each named: the
    night's peak site demand (base load included) over every slot, and the peak inside the demand-charge
    window (what the charge pays)."""
    depot = plan.depot
    vehicles = plan.charges.count()
    ready = vehicles - plan.vehicles_short
    night_peak_kw = night_peak_kw_by_plan([plan])[plan.pk]
    summary = (
        f"plan v{plan.version}: {ready}/{vehicles} vehicles ready, {plan.energy_kwh:.0f} kWh, "
        f"{plan.total_cost:.0f} {depot.tariff.currency if depot.tariff else 'MXN'}, "
        f"night's peak {night_peak_kw:.0f} kW (grid limit {depot.grid_limit_kw:.0f} kW), "
        f"peak in the demand-charge window {plan.peak_kw:.0f} kW, {plan.solver_status}"
    )
    counts = {
        "plan_id": plan.pk,
        "plan_version": plan.version,
        "vehicles": vehicles,
        "vehicles_ready": ready,
        "energy_kwh": round(plan.energy_kwh, 1),
        "night_peak_kw": round(night_peak_kw, 1),
        "window_peak_kw": round(plan.peak_kw, 1),
    }
    return Outcome(summary, counts)


@nightly_job(stage=CHARGING_PLANS, name=PLAN_JOB, lock_group=PLAN_LOCK_GROUP)
def plan_night(*, depot, night) -> Outcome:
    return plan_outcome(plan_depot_night(depot=depot, service_night=night))


# Charges away from any depot, found in the depot's vehicles' telemetry (runs with the telemetry stage).
nightly_job(stage=TELEMETRY, name="charging.sessions_from_telemetry")(sessions_detect_for_depot_night)

daily_task(
    DailyTask(
        name="evfleet.depotless.charging_sessions",
        task="charging.tasks.sessions_detect_depotless_task",
        at=dt.time(1, 0),
        description="Yesterday's charging sessions for cars with no home depot, daily.",
    )
)
