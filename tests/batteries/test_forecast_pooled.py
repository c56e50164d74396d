"""Fleet-level (hierarchical) calibration: packs of one battery model on different duties pin the
calendar/cycling split that one pack's first months cannot.

The statistical tests use analytic SoH responses (no PyBaMM): over its first months a pack fades by a
weighted sum of its calendar and cycling rates, with weights set by its duty, so its checks fix that sum
and nothing else. That is the worst case for one pack and the case pooling is for; the reference table
(bench/forecast_reference.py compare) measures it on simulated histories of another model.
"""

import datetime as dt
import math
import os

import numpy as np
import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from batteries.forecast import (  # noqa: E402
    BlockPlan,
    ForecastJob,
    HealthObservation,
    calibrate_pooled,
    fit_observed_pooled,
    model_prior,
    model_priors,
    prior_calibration,
)
from batteries.forecast.calibrate import PACK_LOG_SIGMA_FLOOR, fit_observed  # noqa: E402
from batteries.forecast.pooled import PACK_OFFSET_LOG_SIGMA, fit_pooled, split_prior  # noqa: E402
from tests.support.climates import HERMOSILLO  # noqa: E402
from tests.support.packs import bus_pack

START = dt.date(2024, 1, 1)
DAYS = np.arange(1, 7) * 30.0  # monthly checks over the first 180 days
#: A split unlike the prior's (which expects both near 1 and correlated): slow calendar, fast cycling.
TRUTH = np.log([0.6, 1.8])
PARKED, CYCLED = (1.0, 0.15), (0.15, 1.0)  # (calendar, cycling) weight of a duty in the early fade


def response(weights, days=DAYS):
    calendar, cycling = weights

    def soh(theta):
        return 100.0 - 2.0 * days / 365.0 * (calendar * math.exp(theta[0]) + cycling * math.exp(theta[1]))

    return soh


def part(weights, truth=TRUTH, uncertainty=0.1):
    soh = response(weights)
    return soh, soh(truth), np.full(len(DAYS), uncertainty)


def log_factors(calibration):
    return np.log([calibration.rate_factor, calibration.cycling_factor])


def test_packs_on_different_duties_identify_both_factors_where_one_pack_alone_cannot():
    prior = prior_calibration("LFP")
    parts = {
        f"{kind}-{k}": part(weights) for k in range(8) for kind, weights in (("parked", PARKED), ("cycled", CYCLED))
    }
    # Alone, each pack's checks fix only its weighted sum: the factor its duty hardly uses stays near the
    # prior, far from the truth.
    alone, _ = fit_observed(parts, {}, {p: prior for p in parts}, {})
    assert abs(math.log(alone["parked-0"].cycling_factor) - TRUTH[1]) > 0.5
    assert abs(math.log(alone["cycled-0"].rate_factor) - TRUTH[0]) > 0.5
    pooled = fit_pooled(parts, prior)
    for pid, calibration in pooled.packs.items():
        error = log_factors(calibration) - TRUTH
        assert np.abs(error).max() < 0.2, pid
        # The truth lies within two posterior sigmas of each factor.
        assert abs(error[0]) < 2 * calibration.log_sigma and abs(error[1]) < 2 * calibration.cycling_log_sigma
        # Each pack's own checks are still fitted: pooling does not trade them for the group.
        soh, observed, _unc = parts[pid]
        assert np.abs(soh(log_factors(calibration)) - observed).max() < 0.1
    # The group's value (for a pack of the model with no checks) is the truth, with one pack's spread.
    assert np.abs(log_factors(pooled.group) - TRUTH).max() < 0.2
    assert pooled.group.source == "cluster" and pooled.group.log_sigma >= PACK_OFFSET_LOG_SIGMA


def test_more_packs_pin_the_shared_factors_closer():
    prior = prior_calibration("LFP")
    errors = []
    for per_duty in (1, 3, 10):
        parts = {
            f"{kind}-{k}": part(w) for k in range(per_duty) for kind, w in (("parked", PARKED), ("cycled", CYCLED))
        }
        errors.append(np.abs(log_factors(fit_pooled(parts, prior).group) - TRUTH).max())
    assert errors[0] > errors[1] > errors[2]


def test_packs_on_one_duty_do_not_split_the_factors_by_pooling():
    """Pooling is not magic: packs that all see the same direction cannot tell the split either."""
    prior = prior_calibration("LFP")
    parts = {f"parked-{k}": part(PARKED) for k in range(8)}
    pooled = fit_pooled(parts, prior)
    assert abs(math.log(pooled.packs["parked-0"].cycling_factor) - TRUTH[1]) > 0.5


def test_one_pack_pooled_is_its_single_pack_fit():
    """The preset's one-pack prior is only split between the model and the pack, so a pack alone gets
    exactly the single-pack MAP and posterior."""
    prior = prior_calibration("LFP")
    days = np.array([20.0, 45.0, 90.0, 150.0, 240.0])

    def curved(theta):  # calendar ~ sqrt(t), cycling ~ t: the shape tells them apart a little
        return 100.0 - 0.2 * np.sqrt(days) * math.exp(theta[0]) - 0.004 * days * math.exp(theta[1])

    observed = curved(np.log([1.4, 0.8])) + np.array([0.05, -0.1, 0.08, -0.04, 0.02])
    one = {"a": (curved, observed, np.full(5, 0.3))}
    single, _ = fit_observed(one, {}, {"a": prior}, {})
    pooled = fit_pooled(one, prior).packs["a"]
    assert pooled.source == single["a"].source == "pack"
    assert pooled.rate_factor == pytest.approx(single["a"].rate_factor, rel=1e-3)
    assert pooled.cycling_factor == pytest.approx(single["a"].cycling_factor, rel=1e-3)
    assert pooled.log_sigma == pytest.approx(single["a"].log_sigma, rel=1e-2)
    assert pooled.cycling_log_sigma == pytest.approx(single["a"].cycling_log_sigma, rel=1e-2)
    assert pooled.log_correlation == pytest.approx(single["a"].log_correlation, abs=1e-2)


def test_the_prior_is_split_into_a_shared_and_a_pack_part_that_add_up_to_it():
    mean, shared, own = split_prior(prior_calibration("LFP"), PACK_OFFSET_LOG_SIGMA)
    from batteries.forecast.calibrate import prior_2d

    mean0, cov0 = prior_2d(prior_calibration("LFP"))
    assert mean == pytest.approx(mean0)
    assert shared + own == pytest.approx(cov0)
    assert np.linalg.eigvalsh(shared).min() > 0
    # A prior narrower than the pack spread leaves a (tiny) shared part: still a valid fit.
    _mean, shared, own = split_prior(prior_calibration("LFP").__class__(1.0, 0.1), PACK_OFFSET_LOG_SIGMA)
    assert np.linalg.eigvalsh(shared).min() > 0


def test_fleet_contract_groups_by_key_and_fits_ungrouped_packs_alone():
    prior = prior_calibration("LFP")
    parts = {"p": part(PARKED), "c": part(CYCLED), "x": part(PARKED)}
    groups = {"p": "bus-model", "c": "bus-model"}  # "x" has no group
    aside = {"x": [("2024-03-01", "nan", "not a number")]}
    own, group_value = fit_observed_pooled(parts, groups, {p: prior for p in parts}, aside)
    alone, _ = fit_observed({"x": parts["x"]}, {}, {"x": prior}, aside)
    assert set(own) == {"p", "c", "x"} and set(group_value) == {"bus-model"}
    assert own["x"].rate_factor == pytest.approx(alone["x"].rate_factor, rel=1e-3)
    assert own["x"].set_aside == alone["x"].set_aside == (("2024-03-01", "nan", "not a number"),)
    # Grouped, the parked pack's cycling factor moves from the prior towards the truth.
    assert math.log(own["p"].cycling_factor) > math.log(alone["x"].cycling_factor) + 0.1
    assert all(c.log_sigma >= PACK_LOG_SIGMA_FLOOR for c in own.values())


def bus_job(pack_id: str, plan: BlockPlan, chemistry="LFP") -> ForecastJob:
    pack = bus_pack(chemistry)
    return ForecastJob(pack_id, pack, plan, HERMOSILLO, START, START, prior_calibration(chemistry), 1.0)


def test_bad_observations_are_set_aside_with_reasons_and_never_raise():
    plan = BlockPlan(km_per_day=200, kwh_per_km=1.1)
    good = [HealthObservation(START + dt.timedelta(days=d), 100 - d / 150, 0.5) for d in (30, 60, 90)]
    bad = [HealthObservation(START + dt.timedelta(days=45), float("nan")), HealthObservation(START, 105.0)]
    only_bad = [HealthObservation(START, float("inf")), HealthObservation(START, 20.0)]
    pooled = calibrate_pooled([(bus_job("mixed", plan), good + bad), (bus_job("hopeless", plan), only_bad)])
    mixed = pooled.packs["mixed"]
    assert mixed.n_observations == 3 and {r for _d, _s, r in mixed.set_aside} == {
        "not a number",
        "above nominal by more than 3 %",
    }
    # A pack with nothing usable gets no fit of its own; what was set aside is kept for it.
    assert "hopeless" not in pooled.packs and len(pooled.set_aside["hopeless"]) == 2
    # Nothing usable anywhere: the prior, never an exception.
    nothing = calibrate_pooled([(bus_job("hopeless", plan), only_bad)])
    assert nothing.packs == {} and nothing.group == prior_calibration("LFP")


def test_packs_of_different_chemistries_cannot_be_pooled():
    plan = BlockPlan(km_per_day=200, kwh_per_km=1.1)
    with pytest.raises(ValueError, match="chemistry"):
        calibrate_pooled([(bus_job("a", plan), []), (bus_job("b", plan, "NMC"), [])])


def linear_part(weights, days, truth=TRUTH, uncertainty=0.1):
    """A response linear in the ln factors (Laplace is then exact): the two-stage and the joint fit must
    agree to rounding."""
    calendar, cycling = weights

    def soh(theta):
        return 100.0 - days / 365.0 * (calendar * (1 + theta[0]) + cycling * (1 + theta[1]))

    return soh, soh(truth), np.full(len(days), uncertainty)


def test_a_battery_models_prior_from_its_other_packs_evidence_is_the_young_packs_share_of_the_joint_fit():
    prior = prior_calibration("LFP")
    two_years = np.arange(1, 25) * 30.0
    older = {f"old-{k}": linear_part(w, two_years) for k, w in enumerate((PARKED, CYCLED, PARKED, CYCLED))}
    young = linear_part((0.6, 0.4), DAYS)  # a middling duty, 180 days: alone it fixes one direction only
    # Stage 1: each older pack fitted alone (as the night does), which leaves its checks' evidence.
    alone, _ = fit_observed(older, {}, {p: prior for p in older}, {})
    assert all(c.evidence is not None for c in alone.values())
    learnt = model_prior(prior, [c.evidence for c in alone.values()])
    assert learnt.model_packs == 4 and learnt.source == "prior" and learnt.two_factors
    # Stage 2: the young pack fitted against the learnt prior.
    two_stage, _ = fit_observed({"young": young}, {}, {"young": learnt}, {})
    joint = fit_pooled({**older, "young": young}, prior)
    assert log_factors(two_stage["young"]) == pytest.approx(log_factors(joint.packs["young"]), abs=2e-3)
    assert two_stage["young"].log_sigma == pytest.approx(joint.packs["young"].log_sigma, rel=0.02)
    # And it is the point: alone against the preset's prior the young pack misses the split by far more.
    by_itself, _ = fit_observed({"young": young}, {}, {"young": prior}, {})
    assert (
        np.abs(log_factors(by_itself["young"]) - TRUTH).max()
        > 2 * np.abs(log_factors(two_stage["young"]) - TRUTH).max()
    )


def test_a_battery_model_with_no_evidence_keeps_the_presets_prior_and_one_direction_tells_one_direction():
    prior = prior_calibration("LFP")
    assert model_prior(prior, []) is prior
    assert model_prior(prior, [None, (float("nan"),) * 5]) is prior  # type: ignore[list-item]
    # Checks that tell only calendar + cycling (a rank-one information) move the prior along that sum and
    # leave the difference where the preset has it.
    information = 1e4 * np.array([[1.0, 1.0], [1.0, 1.0]])
    target = np.log([1.5, 1.5])
    evidence = (*information[np.triu_indices(2)], *(information @ target))
    learnt = model_prior(prior, [evidence] * 20)
    factors = log_factors(learnt)
    assert factors.sum() == pytest.approx(target.sum(), abs=0.05)
    assert factors[0] - factors[1] == pytest.approx(0.0, abs=0.05)  # the preset's difference, 0
    assert learnt.log_sigma >= PACK_OFFSET_LOG_SIGMA  # one more pack still differs from its model


def test_each_pack_of_a_model_learns_from_the_others_only_and_the_sums_are_taken_once():
    prior = prior_calibration("LFP")
    rng = np.random.default_rng(3)
    evidence = {}
    for k in range(6):
        information = np.diag(rng.uniform(10, 400, 2))
        evidence[k] = (*information[np.triu_indices(2)], *(information @ (TRUTH + rng.normal(0, 0.1, 2))))
    evidence[6] = None  # a pack with no fit teaches nothing
    learnt = model_priors(prior, evidence, [0, 3, 6, "new"])
    for pack in (0, 3, 6, "new"):
        others = [e for k, e in evidence.items() if k != pack and e is not None]
        alone = model_prior(prior, others)
        assert log_factors(learnt[pack]) == pytest.approx(log_factors(alone), abs=1e-9)
        assert learnt[pack].log_sigma == pytest.approx(alone.log_sigma, rel=1e-9)
        assert learnt[pack].model_packs == len(others)
    assert learnt[0].rate_factor != learnt[3].rate_factor  # each left its own evidence out
    # A model whose only fitted pack is the one asking: the preset's prior.
    assert model_priors(prior, {"only": evidence[0]}, ["only"])["only"] is prior
