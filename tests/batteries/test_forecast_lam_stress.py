"""The LAM's C-rate stress factor: a third ageing parameter, shared by the packs of one battery model.

It scales the stress term of the loss of active material (1.0 = the preset's x2 at 1C; 0 = throughput
only). One pack cannot tell it from its cycling factor (its duty has one C-rate); packs of one battery
model on duties of different C-rates can (``pooled.fit_lam_stress``). The statistical test uses analytic
responses like test_forecast_pooled.py; the rest simulate.
"""

import datetime as dt
import math
import os

import numpy as np
import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from batteries.forecast import (  # noqa: E402
    AgeingCalibration,
    BlockPlan,
    Climate,
    ForecastJob,
    HealthObservation,
    calibrate_pack,
    duty_signature,
    forecast_pack,
    prepare,
    prior_calibration,
)
from batteries.forecast.pooled import (  # noqa: E402
    LAM_STRESS_GRID,
    LAM_STRESS_PRIOR,
    calibrate_pooled_with_stress,
    fit_lam_stress,
)
from tests.support.packs import bus_pack  # noqa: E402

START = dt.date(2024, 1, 1)
FLAT = Climate((22.0,) * 12)
BUS = bus_pack()
DAYS = np.arange(1, 7) * 30.0
TRUTH = (np.log([0.8, 1.5]), 0.2)  # (ln calendar, ln cycling), stress factor
#: (calendar weight, cycling weight, stress share of the cycling part at stress factor 1) of a duty's
#: early fade: parked; cycled at bus C-rates (~0.1C: stress hardly matters); cycled with 1C top-ups.
DUTIES = {"parked": (1.0, 0.15, 0.02), "cycled": (0.15, 1.0, 0.02), "fast": (0.15, 1.0, 1.0)}


def analytic_part(weights, stress, truth=TRUTH):
    calendar, cycling, share = weights

    def response(s):
        def soh(theta):
            return 100.0 - 2.0 * DAYS / 365.0 * (
                calendar * math.exp(theta[0]) + cycling * math.exp(theta[1]) * (1.0 + share * s)
            )

        return soh

    observed = response(truth[1])(truth[0])
    return response(stress), observed, np.full(len(DAYS), 0.1)


def parts_at(duties, per_duty=4):
    return {
        s: {f"{d}-{k}": analytic_part(DUTIES[d], s) for d in duties for k in range(per_duty)} for s in LAM_STRESS_GRID
    }


def test_packs_on_duties_of_different_c_rates_identify_the_stress_factor():
    fit = fit_lam_stress(parts_at(("parked", "cycled", "fast")), prior_calibration("LFP"))
    # Drawn from the prior's 1.0 most of the way to the truth (each pack's own 0.25 ln offset absorbs
    # part of it, and the prior keeps a pull), with the truth inside two posterior sigmas.
    assert fit.value < 0.6
    assert abs(fit.value - TRUTH[1]) < 2 * fit.sigma
    assert fit.sigma < 0.6 * LAM_STRESS_PRIOR[1]  # the data, not the prior, set it
    assert min(fit.profile, key=fit.profile.get) in (0.0, 0.5)


def test_packs_of_one_c_rate_leave_the_stress_factor_to_its_prior():
    """Pooling is not magic: without a duty of another C-rate the stress trades off with the cycling
    factor and the profile is flat but for the prior."""
    fit = fit_lam_stress(parts_at(("parked", "cycled")), prior_calibration("LFP"))
    assert abs(fit.value - LAM_STRESS_PRIOR[0]) < 0.2
    assert fit.sigma > 0.8 * LAM_STRESS_PRIOR[1]


def test_one_pack_does_not_fit_the_stress_factor():
    one = {s: {"a": analytic_part(DUTIES["fast"], s)} for s in LAM_STRESS_GRID}
    fit = fit_lam_stress(one, prior_calibration("LFP"))
    assert (fit.value, fit.sigma) == (LAM_STRESS_PRIOR[0], 0.0)


def _job(plan, calibration=None, years=1.0):
    return ForecastJob("p", BUS, plan, FLAT, START, START, calibration or AgeingCalibration(), years)


def test_the_stress_factor_scales_the_c_rate_part_of_cycling_ageing_only():
    fast = BlockPlan(400, 1.1, top_ups_per_day=1, charge_c_rate=1.0)
    slow = BlockPlan(220, 1.1, charge_c_rate=0.1)

    def fade(plan, stress):
        result = forecast_pack(_job(plan, AgeingCalibration(lam_stress_factor=stress)))
        return 100.0 - result.points[-1].soh_pct

    fast_ratio = fade(fast, 0.0) / fade(fast, 1.0)
    slow_ratio = fade(slow, 0.0) / fade(slow, 1.0)
    assert fast_ratio < 0.95  # 1C top-ups: the stress term is a measurable share of the fade
    assert slow_ratio > 0.98  # 0.1C charging, bus discharge: hardly any
    assert fade(fast, 2.0) > fade(fast, 1.0)


def test_packs_of_different_stress_factors_are_never_simulated_together():
    plan = BlockPlan(220, 1.1)
    a = duty_signature(prepare(_job(plan)))
    b = duty_signature(prepare(_job(plan, AgeingCalibration(lam_stress_factor=0.4))))
    assert a != b
    assert a == duty_signature(prepare(_job(plan, AgeingCalibration(rate_factor=2.0))))


def test_calibrations_keep_the_battery_models_stress_factor_and_one_pack_is_the_single_fit():
    plan = BlockPlan(220, 1.1)
    observations = [HealthObservation(START + dt.timedelta(days=30 * k), 100 - 0.2 * k, 0.3) for k in range(1, 7)]
    job = _job(plan, AgeingCalibration(lam_stress_factor=0.4, lam_stress_sigma=0.1), years=3.0)
    single = calibrate_pack(job, observations)
    assert (single.lam_stress_factor, single.lam_stress_sigma) == (0.4, 0.1)
    pooled, stress = calibrate_pooled_with_stress([(job, observations)])
    assert (stress.value, stress.sigma) == (LAM_STRESS_PRIOR[0], 0.0)  # not fitted from one pack
    one = pooled.packs["p"]
    assert one.rate_factor == pytest.approx(single.rate_factor, rel=1e-3)
    assert one.cycling_factor == pytest.approx(single.cycling_factor, rel=1e-3)
    assert (one.lam_stress_factor, one.lam_stress_sigma) == (0.4, 0.1)
