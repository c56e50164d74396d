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

from batteries.forecast import BlockPlan, Climate, ForecastJob  # noqa: E402
from batteries.forecast.forecast import horizon_end, prepare, run_members  # noqa: E402
from batteries.forecast.presets import PLATING_LOSS, POSITIVE_LOSS  # noqa: E402
from tests.support.packs import bus_pack

START = dt.date(2024, 1, 1)
FEW = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fade_pp(chemistry, duty, climate_c=22.0):
    """SoH lost in the first year at the prior rate, percentage points."""
    job = ForecastJob(
        "p",
        bus_pack(chemistry),
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
@given(chemistry=chemistries, km=km)
def test_more_time_at_high_soc_ages_faster(chemistry, km):
    charged_late = fade_pp(chemistry, BlockPlan(km, 1.1, charge_late=True))
    sits_full = fade_pp(chemistry, BlockPlan(km, 1.1, charge_late=False))
    assert sits_full > charged_late + 0.02


def test_more_time_at_high_soc_ages_faster_nmc_light_duty():
    """NMC at light duty parks at ~95 % instead of ~70 % overnight. Graphite sits on one plateau over that
    range, so the SEI alone told them apart by 0.0003 pp/yr; the positive electrode's calendar lithium loss
    (presets.add_positive_side_loss, sized on Schmalstieg et al. 2014) makes it ~0.04 pp/yr."""
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


def rest_day_lithium_loss(chemistry, soc, calendar=1.0, cycling=1.0):
    """Lithium [Ah] a new cell loses in one day at rest at ``soc`` and 25 degC."""
    from batteries.forecast.duty import N_SEGMENTS, RepresentativeDay
    from batteries.forecast.simulate import day_model

    model = day_model(chemistry)
    day = RepresentativeDay(((86_400.0 / N_SEGMENTS, 0.0),) * N_SEGMENTS, soc, 298.15, 0.0, True)
    (outcome,) = model.run([model.inputs(model.new_state(), day, calendar, cycling)])
    assert outcome.ok
    return -outcome.delta[0]


def test_nmc_calendar_loss_above_70_percent_follows_the_literature_voltage_law():
    """Schmalstieg et al. 2014 (NMC/graphite): calendar fade rate ~ (7.543 V - 23.75); at this cell's rest
    voltages (3.95 V at 70 %, 4.12 V at 95 %) that is 1.22x. The graphite SEI alone gives 1.05x."""
    ratio = rest_day_lithium_loss("NMC", 0.95) / rest_day_lithium_loss("NMC", 0.70)
    assert 1.12 < ratio < 1.35
    # Below ~70 % the positive side adds nothing: the SoC dependence there is the graphite's (SEI).
    assert rest_day_lithium_loss("NMC", 0.70) / rest_day_lithium_loss("NMC", 0.50) > 1.2


def test_positive_side_loss_is_calendar_ageing_and_absent_for_lfp():
    from batteries.forecast.simulate import day_model

    assert POSITIVE_LOSS in day_model("NMC").lithium_losses and not day_model("LFP").lithium_losses
    base = rest_day_lithium_loss("NMC", 0.95)
    # At rest every loss is calendar ageing: it scales with the calendar factor, not the cycling factor.
    assert rest_day_lithium_loss("NMC", 0.95, calendar=2.0) == pytest.approx(2 * base, rel=0.01)
    assert rest_day_lithium_loss("NMC", 0.95, cycling=2.0) == pytest.approx(base, rel=0.01)


# Lithium plating is modelled for NMC only (presets.add_plating_loss; LFP: see the LFP preset).
@FEW
@given(km=km)
def test_colder_fast_charging_ages_faster_nmc(km):
    """Lithium plating: charged at 1C every day, an NMC pack at 5 degC ages faster than one at 25 degC, where
    without plating the Arrhenius rates made it age ~0.35x as fast. Sized on Waldmann et al. 2014 (1C cycling
    ages ~5x faster at 5 degC than at 25 degC); over a year the model gives 2.7-3.7x."""
    duty = BlockPlan(km, 1.1, charge_c_rate=1.0)
    assert fade_pp("NMC", duty, climate_c=2.0) > 1.5 * fade_pp("NMC", duty, climate_c=22.0)


@FEW
@given(km=km)
def test_in_the_cold_fast_charging_ages_much_faster_than_slow_nmc(km):
    """At 5 degC a 0.3C charge keeps the graphite above 0 V vs Li (no plating), a 1C charge does not."""
    slow = fade_pp("NMC", BlockPlan(km, 1.1, charge_c_rate=0.3), climate_c=2.0)
    fast = fade_pp("NMC", BlockPlan(km, 1.1, charge_c_rate=1.0), climate_c=2.0)
    assert fast > 3.0 * slow


def charge_day_lithium_loss(chemistry, temperature_k=278.15, calendar=1.0, cycling=1.0):
    """Lithium [Ah] a new cell loses in a day (default 5 degC): 0.2C down from 90 % to 10 %, back at 1C, rest."""
    from batteries.forecast.duty import N_SEGMENTS, RepresentativeDay
    from batteries.forecast.simulate import day_model

    model = day_model(chemistry)
    segments = [(4 * 3600.0, 0.2), (0.8 * 3600.0, -1.0)]
    rest = (86_400.0 - sum(d for d, _ in segments)) / (N_SEGMENTS - 2)
    day = RepresentativeDay(tuple(segments) + ((rest, 0.0),) * (N_SEGMENTS - 2), 0.9, temperature_k, 0.8, True)
    (outcome,) = model.run([model.inputs(model.new_state(), day, calendar, cycling)])
    assert outcome.ok
    return -outcome.delta[0]


def test_plating_is_cycling_ageing_and_absent_for_lfp():
    """A 1C charge at 5 degC plates (NMC): the day loses 4.8x the lithium of the same day at 25 degC (without
    plating 0.33x, Arrhenius). Plating happens only while charging: it scales with the cycling factor, and it
    dominates the cold day, so doubling the calendar factor adds little."""
    from batteries.forecast.simulate import day_model

    assert PLATING_LOSS in day_model("NMC").lithium_losses and not day_model("LFP").lithium_losses
    base = charge_day_lithium_loss("NMC")
    assert base > 3.0 * charge_day_lithium_loss("NMC", temperature_k=298.15)
    assert charge_day_lithium_loss("NMC", cycling=2.0) > 1.7 * base
    assert charge_day_lithium_loss("NMC", calendar=2.0) < 1.3 * base
    # LFP without plating: its cold day still loses less than its warm day (Arrhenius only).
    assert charge_day_lithium_loss("LFP") < charge_day_lithium_loss("LFP", temperature_k=298.15)
