"""Battery health's overnight job: forecast every pack in the depot's vehicles."""

from batteries.forecasting import forecast_packs
from batteries.selectors import packs_in_depot
from fleet.nightly import Stage, nightly_job


@nightly_job(stage=Stage.BATTERY_FORECASTS, name="batteries.forecast_depot_packs")
def forecast_depot_packs(*, depot, night):
    run = forecast_packs(packs=packs_in_depot(depot), as_of=night, trigger=f"nightly {depot.code}")
    return (
        f"{run.packs_done}/{run.packs_total} packs forecast in {run.duty_groups} duty groups "
        f"({run.packs_failed} failed, {run.duration_s:.0f} s)"
    )
