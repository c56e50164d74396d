"""Self-limiting loss of active material (``presets.lam_self_limited``): an option, default off.

With it the LAM rate falls as the negative loses active material, rate x scale / (1 + lost / L0), so the loss
grows as sqrt(throughput) once lost >> L0 instead of linearly. These tests switch it on for the test only
(the presets and the cached day models are restored after) and check that the fade really turns sublinear,
that it is off by default, and that the prior's sensitivities still go the field's way with it on.
"""

import datetime as dt
import os
from dataclasses import replace

import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from batteries.forecast import (  # noqa: E402
    BlockPlan,
    Climate,
    ForecastJob,
    forecast_pack,
    presets,
    simulate,
)
from batteries.forecast.duty import N_SEGMENTS, RepresentativeDay  # noqa: E402
from batteries.forecast.state import DegradationState  # noqa: E402
from tests.support.packs import bus_pack

from . import test_forecast_sensitivity as sensitivity  # noqa: E402

START = dt.date(2024, 1, 1)


@pytest.fixture
def self_limiting_lam():
    with simulate.presets_changed(presets.lam_self_limited):
        yield


def cycling_day_lam(chemistry, lost):
    """Active material [share of the new negative's] lost in one 25 degC day (0.5C down 80 %, 0.3C back) by a
    cell that has already lost ``lost`` of it."""
    model = simulate.day_model(chemistry)
    new = model.new_state()
    state = DegradationState(new.lithium_ah, new.sei_thickness_m, new.eps_negative * (1.0 - lost))
    segments = [(1.6 * 3600.0, 0.5), (8.0 / 3.0 * 3600.0, -0.3)]
    rest = (86_400.0 - sum(d for d, _ in segments)) / (N_SEGMENTS - 2)
    day = RepresentativeDay(tuple(segments) + ((rest, 0.0),) * (N_SEGMENTS - 2), 0.9, 298.15, 0.8, True)
    (outcome,) = model.run([model.inputs(state, day, 1.0)])
    assert outcome.ok
    return -outcome.delta[2] / new.eps_negative


@pytest.mark.parametrize("chemistry", ["LFP", "NMC"])
def test_the_option_is_off_by_default(chemistry):
    preset = presets.get_preset(chemistry)
    assert preset.lam_self_limit_loss == 0.0
    assert preset.lam_self_limit_factor(0.5 * presets.cell_constants(chemistry).eps_negative_new, 1.0) == 1.0
    # Linear law: a cell that lost 3 % of its active material loses it at the new cell's rate (within 10 %).
    assert cycling_day_lam(chemistry, 0.03) == pytest.approx(cycling_day_lam(chemistry, 0.0), rel=0.1)


@pytest.mark.parametrize("chemistry", ["LFP", "NMC"])
def test_self_limiting_lam_slows_as_active_material_is_lost(self_limiting_lam, chemistry):
    on = presets.PRESETS[chemistry]
    loss, scale = on.lam_self_limit_loss, on.lam_self_limit_rate_scale
    fresh = cycling_day_lam(chemistry, 0.0)
    # After losing 3 x L0 the rate is a quarter of the new cell's (1 / (1 + 3)), to within the day's own change.
    assert cycling_day_lam(chemistry, 3.0 * loss) == pytest.approx(fresh / 4.0, rel=0.1)
    # A new cell's rate is the scale x the linear law's: faster at first, the first year about the same.
    presets.PRESETS[chemistry] = replace(on, lam_self_limit_loss=0.0)
    simulate.day_model.cache_clear()
    linear = cycling_day_lam(chemistry, 0.0)
    presets.PRESETS[chemistry] = on
    simulate.day_model.cache_clear()
    assert fresh == pytest.approx(scale * linear, rel=0.02)


def lost_pp(months_list, duty):
    job = ForecastJob(
        "p",
        bus_pack(),
        duty,
        Climate((22.0,) * 12, diurnal_amplitude_c=0.0),
        START,
        START,
        horizon_years=3.0,
    )
    soh = {p.date: p.soh_pct for p in forecast_pack(job).points}
    return [100.0 - soh[dt.date(START.year + m // 12, 1 + m % 12, 1)] for m in months_list]


TWO_EFC = BlockPlan(560, 1.1, top_ups_per_day=2, charge_c_rate=1.0)


def test_without_the_option_a_cycling_dominated_duty_fades_about_linearly():
    """2 EFC a day (LAM dominates): loss at 3 years over loss at 6 months near 6, linear in time."""
    six, three = lost_pp([6, 36], TWO_EFC)
    assert three / six > 5.0


def test_with_the_option_fade_is_sublinear_in_throughput(self_limiting_lam):
    """The same duty with the option: the ratio falls to ~3 (sqrt of time would give 2.45); fails with the
    linear law (the test above: > 5)."""
    six, one, three = lost_pp([6, 12, 36], TWO_EFC)
    assert three / six < 4.0
    assert three - one < 2.0 * one  # two more years lose less than twice the first year


@pytest.mark.parametrize(
    "prop",
    [
        sensitivity.test_hotter_ages_faster,
        sensitivity.test_more_time_at_high_soc_ages_faster,
        sensitivity.test_more_time_at_high_soc_ages_faster_nmc_light_duty,
        sensitivity.test_charging_above_one_c_ages_measurably_faster,
        sensitivity.test_deeper_cycles_and_more_cycles_a_day_age_faster,
        sensitivity.test_colder_fast_charging_ages_faster_nmc,
        sensitivity.test_in_the_cold_fast_charging_ages_much_faster_than_slow_nmc,
    ],
    ids=lambda prop: prop.__name__,
)
def test_sensitivities_hold_with_the_option(self_limiting_lam, prop):
    prop()
