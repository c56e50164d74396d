"""Sensitivities of the prior in the field's direction (issue 13, point 1): each a property over duties.

One-year forecasts at the prior rate (no band needed: the median member alone) from a new pack; each test
draws a duty and checks that the harsher variant fades faster per day than the milder one.
"""

import datetime as dt
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from batteries.forecast import BlockPlan, Climate, ForecastJob, PackSpec  # noqa: E402
from batteries.forecast.forecast import horizon_end, prepare, run_members  # noqa: E402

START = dt.date(2024, 1, 1)
FEW = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fade_pp(chemistry, duty, climate_c=22.0):
    """SoH lost in the first year at the prior rate, percentage points."""
    job = ForecastJob(
        "p",
        PackSpec(chemistry, 350, 600, 200, 3),
        duty,
        Climate((climate_c,) * 12, diurnal_amplitude_c=0.0),
        START,
        START,
        horizon_years=1.0,
    )
    (member,), _ = run_members(prepare(job), START, horizon_end(job), [1.0])
    return 100.0 - float(member.soh_pct[-1])


chemistries = st.sampled_from(["LFP", "NMC"])
km = st.floats(80, 230)


@FEW
@given(chemistry=chemistries, km=km, climate_c=st.floats(5, 30))
def test_hotter_ages_faster(chemistry, km, climate_c):
    duty = BlockPlan(km, 1.1)
    assert fade_pp(chemistry, duty, climate_c + 10) > 1.2 * fade_pp(chemistry, duty, climate_c)


@FEW
@given(km=km)
def test_more_time_at_high_soc_ages_faster(km):
    charged_late = fade_pp("LFP", BlockPlan(km, 1.1, charge_late=True))
    sits_full = fade_pp("LFP", BlockPlan(km, 1.1, charge_late=False))
    assert sits_full > charged_late + 0.02


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 13): NMC at light duty sits at 70 % instead of 95 % overnight and ages only 0.0003 pp/yr "
    "less; the old pass (0.52 pp) came from the solver stepping over the late charge (fixed: MAX_STEP_S)",
)
def test_more_time_at_high_soc_ages_faster_nmc_light_duty():
    charged_late = fade_pp("NMC", BlockPlan(80, 1.1, charge_late=True))
    sits_full = fade_pp("NMC", BlockPlan(80, 1.1, charge_late=False))
    assert sits_full > charged_late + 0.02


@FEW
@given(chemistry=chemistries, km=km)
def test_charging_above_one_c_ages_measurably_faster(chemistry, km):
    slow = fade_pp(chemistry, BlockPlan(km, 1.1, charge_c_rate=0.3))
    fast = fade_pp(chemistry, BlockPlan(km, 1.1, charge_c_rate=1.5))
    assert fast > 1.15 * slow


@FEW
@given(chemistry=chemistries, km=st.floats(60, 140))
def test_deeper_cycles_and_more_cycles_a_day_age_faster(chemistry, km):
    shallow = fade_pp(chemistry, BlockPlan(km, 1.1))
    deeper = fade_pp(chemistry, BlockPlan(km * 1.6, 1.1))
    twice_a_day = fade_pp(chemistry, BlockPlan(km * 2.0, 1.1, top_ups_per_day=1, charge_c_rate=0.5))
    assert deeper > shallow
    assert twice_a_day > shallow
