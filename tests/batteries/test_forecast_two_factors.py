"""Two fitted ageing factors (calendar/SEI and cycling/LAM): the posterior band's construction, and the
fleet handing a two-factor pack to the single-pack forecast."""

import datetime as dt
import math
import os

import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from batteries.forecast import (  # noqa: E402
    AgeingCalibration,
    BlockPlan,
    ForecastJob,
    forecast_fleet,
    forecast_pack,
)
from batteries.forecast.calibrate import PRIOR_LOG_CORRELATION, prior_2d  # noqa: E402
from batteries.forecast.forecast import combine_band, posterior_members  # noqa: E402
from batteries.forecast.trajectory import MemberTrajectory  # noqa: E402
from tests.support.climates import HERMOSILLO  # noqa: E402
from tests.support.packs import bus_pack

START = dt.date(2024, 1, 1)


def two_factors(calendar, cycling, s1=0.3, s2=0.2, rho=-0.5):
    return AgeingCalibration(calendar, s1, "pack", 4, cycling_factor=cycling, cycling_log_sigma=s2, log_correlation=rho)


def test_posterior_members_sit_on_the_principal_axes_at_the_10_and_90_percent_quantiles():
    calibration = two_factors(1.2, 0.8)
    members = posterior_members(calibration)
    assert len(members) == 5 and members[0] == (1.2, 0.8)
    centre = (math.log(1.2), math.log(0.8))
    cov = [[0.09, -0.5 * 0.3 * 0.2], [-0.5 * 0.3 * 0.2, 0.04]]
    det = cov[0][0] * cov[1][1] - cov[0][1] ** 2
    for a, b in members[1:]:
        d = (math.log(a) - centre[0], math.log(b) - centre[1])
        # Mahalanobis distance 1.2816 (z of the 90 % quantile) from the MAP.
        m2 = (cov[1][1] * d[0] ** 2 - 2 * cov[0][1] * d[0] * d[1] + cov[0][0] * d[1] ** 2) / det
        assert math.sqrt(m2) == pytest.approx(1.2815515655446004, rel=1e-6)
    # An axis with no spread is not simulated.
    assert len(posterior_members(two_factors(1.0, 1.0, s1=0.3, s2=1e-4, rho=0.0))) == 3


def test_a_one_factor_prior_becomes_two_correlated_factors_with_its_spread():
    mean, cov = prior_2d(AgeingCalibration(1.3, 0.25, "cluster"))
    assert mean == pytest.approx([math.log(1.3)] * 2)
    assert cov[0][0] == pytest.approx(0.0625) and cov[1][1] == pytest.approx(0.0625)
    assert cov[0][1] == pytest.approx(PRIOR_LOG_CORRELATION * 0.0625)
    assert 0 < PRIOR_LOG_CORRELATION < 1


def _member(values):
    member = MemberTrajectory(1.0)
    for k, v in enumerate(values):
        member.dates.append(dt.date(2024, 1 + k, 1))
        member.soh_pct.append(v)
        member.resistance_factor.append(1.0)
    return member


def test_combined_band_is_the_root_sum_of_squares_of_each_axis_and_keeps_asymmetry():
    mid = _member([100.0, 99.0, 98.0])
    axis1 = (_member([100.0, 98.7, 97.4]), _member([100.0, 99.2, 98.5]))  # -0.6 / +0.5 at the end
    axis2 = (_member([100.0, 99.1, 98.8]), _member([100.0, 98.9, 97.2]))  # the minus member fades more
    low, high = combine_band(mid, [axis1, axis2])
    assert low.soh_pct[-1] == pytest.approx(98.0 - math.hypot(0.6, 0.8))
    assert high.soh_pct[-1] == pytest.approx(98.0 + math.hypot(0.5, 0.8))
    assert all(lo <= m <= hi for lo, m, hi in zip(low.soh_pct, mid.soh_pct, high.soh_pct, strict=True))
    # A member that stopped stops the band (the forecast is then refused, never given with a hole).
    stopped = _member([100.0, 98.0])
    stopped.stopped = dt.date(2024, 2, 1)
    low, _ = combine_band(mid, [(stopped, axis1[1])])
    assert low.stopped == dt.date(2024, 2, 1) and len(low.dates) == 2


def test_two_factor_pack_is_forecast_alone_by_the_fleet_with_the_same_answer():
    job = ForecastJob(
        "bus-2f",
        bus_pack(),
        BlockPlan(km_per_day=200, kwh_per_km=1.1),
        HERMOSILLO,
        START,
        START,
        two_factors(0.7, 1.8),
        horizon_years=1.0,
    )
    alone = forecast_pack(job)
    run = forecast_fleet([job])
    assert run.results["bus-2f"].points == alone.points
    # More cycling ageing than calendar: the cycling factor is wired to the model (not the calendar one).
    slower_cycling = forecast_pack(ForecastJob(**{**job.__dict__, "calibration": two_factors(0.7, 0.7)}))
    assert alone.points[-1].soh_pct < slower_cycling.points[-1].soh_pct - 0.5
    for p in alone.points:
        assert p.soh_p10_pct <= p.soh_pct <= p.soh_p90_pct


@pytest.mark.slow
def test_fleet_fits_each_observed_pack_two_factors_like_the_single_pack_fit():
    """The nightly path reads an observed pack's response off its duty group's 3 x 3 design (ln-fade
    interpolation) instead of simulating the pack on its own 5 x 5 grid (``calibrate_pack``): the two fits
    agree, and so do the forecasts they give. The truth splits calendar and cycling ageing unlike the
    prior (slow calendar, fast cycling); a second pack of the duty, in service 5 months later, shares the
    group run (re-phased)."""
    from batteries.forecast import HealthObservation, calibrate_pack

    plan = BlockPlan(km_per_day=220, kwh_per_km=1.1)
    pack = bus_pack()
    jobs, observations = [], {}
    for pack_id, offset in (("early", 0), ("late", 150)):
        truth_job = ForecastJob(
            pack_id,
            pack,
            plan,
            HERMOSILLO,
            START + dt.timedelta(days=offset),
            START,
            two_factors(0.6, 1.8, 0.01, 0.01, 0.0),
            horizon_years=2.0,
        )
        truth = forecast_pack(truth_job)
        observations[pack_id] = [HealthObservation(p.date, p.soh_pct, 0.3) for p in truth.points[2::4]]
        jobs.append(ForecastJob(**{**truth_job.__dict__, "calibration": AgeingCalibration()}))
    run = forecast_fleet(jobs, observations=observations)
    assert run.n_groups == 1
    for job in jobs:
        fleet = run.results[job.pack_id]
        single = calibrate_pack(job, observations[job.pack_id])
        assert fleet.calibration.source == "pack" and fleet.calibration.two_factors
        # Measured: within 0.04 in ln of each other (the fleet's duty is quantised, its response re-phased).
        assert math.log(fleet.calibration.rate_factor / single.rate_factor) == pytest.approx(0, abs=0.08)
        assert math.log(fleet.calibration.cycling_factor / single.cycling_factor) == pytest.approx(0, abs=0.08)
        # The data move the split the right way from the prior (calendar below cycling).
        assert fleet.calibration.rate_factor < fleet.calibration.cycling_factor
        alone = forecast_pack(ForecastJob(**{**job.__dict__, "calibration": single}))
        assert len(fleet.points) == len(alone.points)
        for a, b in zip(fleet.points, alone.points, strict=True):
            assert a.soh_pct == pytest.approx(b.soh_pct, abs=0.2)
            assert a.soh_p10_pct == pytest.approx(b.soh_p10_pct, abs=0.3)
            assert a.soh_p90_pct == pytest.approx(b.soh_p90_pct, abs=0.3)


def test_the_fleet_surface_interpolates_the_design_and_degrades_gracefully_when_members_stop():
    import numpy as np

    from batteries.forecast.fleet import design_pairs, surface_weights

    design = np.log(np.array(design_pairs()))
    assert design.shape == (6, 2)

    def f(a, b):  # any quadratic is reproduced exactly by the 6-member design
        return 1.0 + 0.3 * a - 0.2 * b + 0.1 * a * a + 0.05 * a * b - 0.07 * b * b

    values = np.array([f(a, b) for a, b in design])
    everyone = np.ones(6, dtype=bool)
    for theta in ([0.0, 0.0], [0.4, -0.9], [-1.2, 1.3], [1.6, 0.2]):
        weights = surface_weights(design, everyone, np.array(theta))
        assert weights is not None and weights @ values == pytest.approx(f(*theta), abs=1e-9)
        assert weights.sum() == pytest.approx(1.0)  # a constant stays constant
    # A 3 x 3 (the design until 2026-12-06) still gets the biquadratic through its 9 members.
    big = math.log(4.0)
    grid = np.array([(a, b) for a in (-big, 0.0, big) for b in (-big, 0.0, big)])

    def g(a, b):
        return f(a, b) + 0.02 * a * a * b * b

    weights = surface_weights(grid, np.ones(9, dtype=bool), np.array([0.4, -0.9]))
    assert weights is not None and weights @ np.array([g(a, b) for a, b in grid]) == pytest.approx(g(0.4, -0.9))
    # Members that stopped get no weight; a plane is still exact through the rest.
    running = np.array([True, True, True, False, True, False])
    weights = surface_weights(design, running, np.array([0.3, 0.1]))
    assert weights is not None and not weights[~running].any()
    plane = np.array([2.0 + 0.5 * a - 0.25 * b for a, b in design])
    assert weights @ plane == pytest.approx(2.0 + 0.15 - 0.025, abs=1e-9)
    # One or two left: the nearest goes on alone; none: no value.
    two = np.zeros(6, dtype=bool)
    two[[0, 5]] = True
    weights = surface_weights(design, two, np.array([0.2, -0.1]))
    assert weights is not None and weights[0] == 1.0 and weights.sum() == 1.0
    assert surface_weights(design, np.zeros(6, dtype=bool), np.array([0.0, 0.0])) is None
