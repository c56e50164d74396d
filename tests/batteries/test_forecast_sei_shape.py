"""The SEI's shape as an input (``presets.sei_shape_input``): an option, default off.

With it the EC diffusivity through the SEI is multiplied by a third factor (the calendar factor still scales the
SEI's rate constant and diffusivity together): << 1 diffusion-limited from the start (loss ~ sqrt(t)), >> 1
reaction-limited (about linear). Off, the model and its inputs are today's; on, a low factor front-loads the fade.
"""

import datetime as dt
import os

import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

import pybamm  # noqa: E402

from batteries.forecast import BlockPlan, Climate, ForecastJob, presets, simulate  # noqa: E402
from batteries.forecast.duty import N_SEGMENTS, RepresentativeDay  # noqa: E402
from batteries.forecast.forecast import horizon_end, prepare, run_members  # noqa: E402
from tests.support.packs import bus_pack

START = dt.date(2024, 1, 1)
EC_DIFFUSIVITY = "EC diffusivity [m2.s-1]"


def input_names(preset):
    symbol = presets.parameter_values(preset)[EC_DIFFUSIVITY]
    return {node.name for node in symbol.pre_order() if isinstance(node, pybamm.InputParameter)}


@pytest.fixture
def sei_shape_input():
    with simulate.presets_changed(presets.sei_shape_input):
        yield


def rest_day():
    return RepresentativeDay(((86_400.0 / N_SEGMENTS, 0.0),) * N_SEGMENTS, 0.9, 298.15, 0.0, True)


@pytest.mark.parametrize("chemistry", ["LFP", "NMC"])
def test_the_option_is_off_by_default_and_adds_no_input(chemistry):
    preset = presets.get_preset(chemistry)
    assert preset.sei_diffusivity_factor is None
    assert input_names(preset) == {presets.AGEING_FACTOR}
    assert input_names(presets.sei_shape_input(preset)) == {presets.AGEING_FACTOR, presets.SEI_DIFFUSIVITY_FACTOR}


def test_without_the_option_a_shape_is_refused_not_ignored():
    model = simulate.day_model("LFP")
    inputs = model.inputs(model.new_state(), rest_day(), 1.0)
    assert presets.SEI_DIFFUSIVITY_FACTOR not in inputs
    with pytest.raises(ValueError, match="shape"):
        model.inputs(model.new_state(), rest_day(), 1.0, None, 0.1)


def test_with_the_option_a_low_shape_front_loads_the_fade(sei_shape_input):
    """A reserve bus (40 km a day, 25 degC) with the loss of active material switched off (cycling factor 1e-3): at
    s = 0.05 the SEI is diffusion-limited from the start, at s = 20 reaction-limited. Each starts at the prior's SEI
    rate (calendar factor over ``sei_initial_rate_scale``); the low shape loses a larger share of its first year in
    the first 6 months (measured 0.61 vs 0.54; sqrt(t) would give 0.71, but the SEI starts 5 nm thick)."""
    model = simulate.day_model("LFP")
    # The forecast path passes the preset's value when a member gives none.
    assert model.inputs(model.new_state(), rest_day(), 1.0)[presets.SEI_DIFFUSIVITY_FACTOR] == 1.0
    job = ForecastJob(
        "p",
        bus_pack(),
        BlockPlan(40, 1.1),
        Climate((22.0,) * 12, diurnal_amplitude_c=0.0),
        START,
        START,
        horizon_years=1.0,
    )
    members, _ = run_members(
        prepare(job),
        START,
        horizon_end(job),
        [(1.0 / presets.sei_initial_rate_scale(s), 1e-3, s) for s in (0.05, 20.0)],
    )
    half_of_year = []
    for member in members:
        lost = {d: 100.0 - soh for d, soh in zip(member.dates, member.soh_pct, strict=True)}
        half_of_year.append(lost[dt.date(2024, 7, 1)] / lost[dt.date(2025, 1, 1)])
    low, high = half_of_year
    assert low > high + 0.04


def test_a_changed_preset_lasts_the_block_and_no_model_built_inside_outlives_it():
    before = dict(presets.PRESETS)

    with simulate.presets_changed(presets.sei_shape_input):
        changed = simulate.day_model("LFP")
        assert presets.SEI_DIFFUSIVITY_FACTOR in changed.inputs(changed.new_state(), rest_day(), 1.0)

    assert before == presets.PRESETS
    again = simulate.day_model("LFP")
    assert again is not changed
    assert presets.SEI_DIFFUSIVITY_FACTOR not in again.inputs(again.new_state(), rest_day(), 1.0)
