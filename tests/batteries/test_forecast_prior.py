"""Prior sanity: uncalibrated presets age like fleets in the field (slow: multi-year forecasts)."""

import datetime as dt
import os

import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from batteries.forecast import BlockPlan, Climate, ForecastJob, forecast_pack  # noqa: E402
from tests.support.packs import bus_pack

FLAT_25C = Climate((25.0,) * 12, diurnal_amplitude_c=0.0)


@pytest.mark.slow
@pytest.mark.parametrize(("chemistry", "low", "high"), [("LFP", 1.0, 3.0), ("NMC", 1.0, 3.5)])
def test_prior_fade_at_one_cycle_a_day_and_25c_is_field_like(chemistry, low, high):
    # ~0.85 equivalent full cycles a day (the whole 10-95 % window), pack at 25 degC (no self-heating
    # margin: the flat climate is the pack temperature minus the default 3 K offset).
    climate = Climate((22.0,) * 12, diurnal_amplitude_c=0.0)
    job = ForecastJob(
        "bus",
        bus_pack(chemistry, usable_soc_min=0.05),
        BlockPlan(km_per_day=250, kwh_per_km=1.1),
        climate,
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 1),
        horizon_years=3.0,
    )
    result = forecast_pack(job)
    per_year = (100.0 - result.points[-1].soh_pct) / 3.0
    assert low <= per_year <= high, per_year
