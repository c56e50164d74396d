"""Charging's overnight job: tonight's plan for each depot."""

from charging.models import ChargingPlan
from charging.planning import plan_depot_night
from charging.sessions import sessions_detect_for_depot_night
from fleet.jobs import Outcome
from fleet.nightly_registry import Stage, nightly_job

# The nightly plan and the re-plans after events share this lock group: one depot is planned by one worker
# at a time (fleet.jobs.job_lock), whatever started it.
PLAN_LOCK_GROUP = "charging.plan"
PLAN_JOB = "charging.plan_depot_night"


def plan_outcome(plan: ChargingPlan) -> Outcome:
    """What a plan run reports: a line for people, counts for the job record."""
    depot = plan.depot
    vehicles = plan.charges.count()
    ready = vehicles - plan.vehicles_short
    summary = (
        f"plan v{plan.version}: {ready}/{vehicles} vehicles ready, {plan.energy_kwh:.0f} kWh, "
        f"{plan.total_cost:.0f} {depot.tariff.currency if depot.tariff else 'MXN'}, peak {plan.peak_kw:.0f} kW "
        f"(limit {plan.site_limit_kw:.0f} kW), {plan.solver_status}"
    )
    counts = {
        "plan_id": plan.pk,
        "plan_version": plan.version,
        "vehicles": vehicles,
        "vehicles_ready": ready,
        "energy_kwh": round(plan.energy_kwh, 1),
        "peak_kw": round(plan.peak_kw, 1),
    }
    return Outcome(summary, counts)


@nightly_job(stage=Stage.CHARGING_PLANS, name=PLAN_JOB, lock_group=PLAN_LOCK_GROUP)
def plan_night(*, depot, night) -> Outcome:
    return plan_outcome(plan_depot_night(depot=depot, service_night=night))


# Charges away from any depot, found in the depot's vehicles' telemetry (runs with the telemetry stage).
nightly_job(stage=Stage.TELEMETRY, name="charging.sessions_from_telemetry")(sessions_detect_for_depot_night)
