"""Charging's overnight job: tonight's plan for each depot."""

from charging.planning import plan_depot_night
from fleet.nightly import Stage, nightly_job


@nightly_job(stage=Stage.CHARGING_PLANS, name="charging.plan_depot_night")
def plan_night(*, depot, night):
    plan = plan_depot_night(depot=depot, service_night=night)
    ready = plan.charges.count() - plan.vehicles_short
    return (
        f"plan v{plan.version}: {ready}/{plan.charges.count()} vehicles ready, {plan.energy_kwh:.0f} kWh, "
        f"{plan.total_cost:.0f} {depot.tariff.currency if depot.tariff else 'MXN'}, peak {plan.peak_kw:.0f} kW "
        f"(limit {plan.site_limit_kw:.0f} kW), {plan.solver_status}"
    )
