"""Fleet-level (hierarchical) calibration: packs of one battery model share their cell's ageing.

Why: one pack's first months of capacity checks say how much it has faded, hardly why. Its calendar
(SEI) and cycling (loss of active material) factors trade off along one direction of the fit, and the
split that the first months allow can be far from the one that fits the later years (the cross-model
reference: docs/forecast.md, "Independent reference"). Packs of the same cell on different duties - a
cycling-heavy one with top-ups, a mostly parked one - fade along different directions, so together they
pin both factors, which the cell shares.

Model, theta = (ln calendar factor, ln cycling factor) as in ``calibrate.py``::

    mu      ~ N(m0, S0 - Omega)     the battery model's factors (what all its packs share)
    theta_i ~ N(mu, Omega)          pack i's own factors; Omega = PACK_OFFSET_LOG_SIGMA^2 R
    y_ij    ~ N(SoH_i(theta_i, t_ij), u_ij^2)

(m0, S0) is the usual one-pack prior (``prior_2d``: the chemistry preset's), R its correlation. So every
pack's prior is unchanged, N(m0, S0); it is only split into the share the packs of a model have in
common (how far the cell is from the preset) and the share each has of its own (cell-to-cell spread,
use, events). One pack alone therefore gets exactly ``calibrate_pack``'s fit; packs that observe
different directions inform each other through mu.

MAP jointly over mu and every theta_i (``scipy.optimize.least_squares``, with the Jacobian's sparsity:
a pack's residuals depend on its own theta only), on the same interpolated responses as the single-pack
fit (no PyBaMM call in the optimiser). Posterior: Laplace, from the block-arrow information matrix
(O(packs), no dense inverse over the fleet); the chi-squared inflation is the single fit's, over all
observations with two parameters per pack.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix

from .calibrate import (
    CLUSTER_LOG_SIGMA_FLOOR,
    FACTOR_GRID_2D,
    PACK_LOG_SIGMA_FLOOR,
    Aside,
    Evidence,
    Response2D,
    data_evidence,
    pack_part,
    prior_2d,
    prior_calibration,
    same_lam_stress,
    screen_observations,
    two_factor_calibration,
)
from .types import AgeingCalibration, ForecastJob, HealthObservation

#: Spread (ln units) of one pack's factors around its battery model's: the value the code already gives
#: a pack taking its cluster's (``CLUSTER_LOG_SIGMA_FLOOR``), one home for the figure. It is wider than
#: production spread alone (cells of one batch age within ~10 % of each other, Baumhoefer et al. 2014,
#: J. Power Sources 247, 332) because packs also differ in use and events the duty does not describe.
PACK_OFFSET_LOG_SIGMA = CLUSTER_LOG_SIGMA_FLOOR
#: The model-level share of the prior is never narrower than this (ln units): a preset prior narrower
#: than the pack spread leaves no room for a shared part, and the fit stays per pack.
MIN_SHARED_LOG_SIGMA = 1e-3

Part = tuple[Response2D, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PooledCalibration:
    """``packs``: pack id -> its own two factors (source "pack"), informed by the group; packs without a
    usable observation are absent. ``group``: the battery model's factors with one pack's spread added
    (source "cluster"), for a pack of the model with no usable observation. ``set_aside``: pack id ->
    observations left out (also on its calibration)."""

    packs: dict[str, AgeingCalibration]
    group: AgeingCalibration
    set_aside: dict[str, tuple[Aside, ...]]
    #: Half the sum of squared residuals (data and priors) at the MAP: the negative log posterior up to a
    #: constant (0 with no parts). Compared across LAM stress factors by ``fit_lam_stress``.
    cost: float = 0.0


def split_prior(prior: AgeingCalibration, offset_log_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m0, covariance of the shared part, covariance of a pack's own part) of the one-pack prior
    ``prior_2d(prior)``: S0 = shared + own, own = offset_log_sigma^2 x S0's correlation matrix. The shared
    part's eigenvalues are floored at ``MIN_SHARED_LOG_SIGMA``^2 (positive definite)."""
    mean, cov = prior_2d(prior)
    scale = np.sqrt(np.diag(cov))
    correlation = cov / np.outer(scale, scale)
    own = offset_log_sigma**2 * correlation
    values, vectors = np.linalg.eigh(cov - own)
    shared = vectors @ np.diag(np.maximum(values, MIN_SHARED_LOG_SIGMA**2)) @ vectors.T
    return mean, shared, own


def _jacobian(response: Response2D, theta: np.ndarray, step: float = 1e-4) -> np.ndarray:
    columns = []
    for k in range(2):
        d = np.zeros(2)
        d[k] = step
        columns.append((response(theta + d) - response(theta - d)) / (2 * step))
    return np.stack(columns, axis=1)


def fit_pooled(
    parts: Mapping[str, Part],
    prior: AgeingCalibration,
    set_aside: Mapping[str, Sequence[Aside]] | None = None,
    offset_log_sigma: float = PACK_OFFSET_LOG_SIGMA,
) -> PooledCalibration:
    """Hierarchical MAP of packs of one battery model whose SoH responses are known.

    ``parts``: pack id -> (response at its observation dates, observed SoH %, uncertainty %), as
    ``calibrate.fit_observed`` takes them; ``prior``: the one-pack prior (the chemistry's); ``set_aside``:
    pack id -> observations left out (recorded on its calibration). Packs' sigmas are floored at
    ``PACK_LOG_SIGMA_FLOOR``, as a single fit's. With no parts, every pack is absent and the group value
    is the prior.
    """
    set_aside = set_aside or {}
    asides = {pid: tuple(sorted(set_aside.get(pid, ()))) for pid in {*parts, *set_aside}}
    ids = list(parts)
    if not ids:
        return PooledCalibration({}, prior, asides)
    m0, shared, own = split_prior(prior, offset_log_sigma)
    own_root_inv = np.linalg.inv(np.linalg.cholesky(own))
    shared_root_inv = np.linalg.inv(np.linalg.cholesky(shared))
    k = len(ids)
    sizes = [len(parts[p][1]) for p in ids]
    n = sum(sizes)
    mu_at = 2 * k  # x = (theta_1, ..., theta_k, mu)

    def residuals(x: np.ndarray) -> np.ndarray:
        mu = x[mu_at:]
        out = []
        for i, pid in enumerate(ids):
            response, observed, uncertainty = parts[pid]
            out.append((response(x[2 * i : 2 * i + 2]) - observed) / uncertainty)
        for i in range(k):
            out.append(own_root_inv @ (x[2 * i : 2 * i + 2] - mu))
        out.append(shared_root_inv @ (mu - m0))
        return np.concatenate(out)

    sparsity = lil_matrix((n + 2 * k + 2, 2 * k + 2), dtype=int)
    row = 0
    for i, size in enumerate(sizes):
        sparsity[row : row + size, 2 * i : 2 * i + 2] = 1
        row += size
    for i in range(k):
        sparsity[row : row + 2, 2 * i : 2 * i + 2] = 1
        sparsity[row : row + 2, mu_at:] = 1
        row += 2
    sparsity[row:, mu_at:] = 1

    low, high = math.log(FACTOR_GRID_2D[0]), math.log(FACTOR_GRID_2D[-1])
    start = np.tile(np.clip(m0, low + 1e-6, high - 1e-6), k + 1)
    fit = least_squares(
        residuals, x0=start, bounds=(low, high), x_scale=0.3, jac_sparsity=sparsity, method="trf", xtol=1e-10
    )
    x = np.asarray(fit.x, dtype=float)
    data = fit.fun[:n]
    chi2 = float(data @ data) / max(n - 2 * k, 1) if n >= 2 * k + 2 else 1.0

    # Laplace: information = [[A_i on the diagonal, B = -Omega^-1 to mu], [B^T, C]]; Schur complement on mu.
    own_inv = np.linalg.inv(own)
    a_inv = []
    for i, pid in enumerate(ids):
        jac = _jacobian(parts[pid][0], x[2 * i : 2 * i + 2]) / parts[pid][2][:, None]
        a_inv.append(np.linalg.inv(jac.T @ jac / max(chi2, 1.0) + own_inv))
    schur = np.linalg.inv(shared) + k * own_inv - sum(own_inv @ ai @ own_inv for ai in a_inv)
    mu_cov = np.linalg.inv(schur)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(mu_cov))):
        return PooledCalibration({pid: replace(prior, set_aside=asides[pid]) for pid in ids}, prior, asides, math.inf)
    packs = {}
    row = 0
    for i, pid in enumerate(ids):
        link = a_inv[i] @ own_inv  # A_i^-1 B_i with B_i = -Omega^-1 (the sign cancels in the product)
        cov = a_inv[i] + link @ mu_cov @ link.T
        theta_i = x[2 * i : 2 * i + 2]
        jac = _jacobian(parts[pid][0], theta_i) / parts[pid][2][:, None]
        evidence = data_evidence(jac, data[row : row + sizes[i]], max(chi2, 1.0), theta_i)
        row += sizes[i]
        packs[pid] = two_factor_calibration(
            theta_i, cov, "pack", sizes[i], PACK_LOG_SIGMA_FLOOR, asides[pid], evidence=evidence
        )
    group = two_factor_calibration(x[mu_at:], mu_cov + own, "cluster", n, CLUSTER_LOG_SIGMA_FLOOR)
    return PooledCalibration(packs, group, asides, float(fit.cost))


def calibrate_pooled(
    packs: Sequence[tuple[ForecastJob, Sequence[HealthObservation]]],
    prior: AgeingCalibration | None = None,
) -> PooledCalibration:
    """Calibrate packs of one battery model (one chemistry, the same cell) together; see the module.

    Each pack's response is simulated like ``calibrate_pack``'s (its own duty and climate); observations
    that cannot be right, or where the model cannot simulate the duty, are set aside with the reason,
    never raising. ``prior``: the one-pack prior (default: the chemistry's). Raises ValueError for packs
    of more than one chemistry (a caller's mistake: they cannot share a cell).
    """
    chemistries = {job.pack.chemistry for job, _ in packs}
    if len(chemistries) > 1:
        raise ValueError(f"packs of one battery model share a chemistry, got {sorted(chemistries)}")
    prior = prior or prior_calibration(chemistries.pop() if chemistries else "LFP")
    parts: dict[str, Part] = {}
    set_aside: dict[str, list[Aside]] = {}
    for job, observations in packs:
        part, aside = pack_part(job, observations)
        set_aside[job.pack_id] = aside
        if part is not None:
            parts[job.pack_id] = part
    fit = fit_pooled(parts, prior, set_aside)
    # Each pack's simulations used its job's LAM stress factor (the battery model's): its fit keeps it;
    # and its band widens beyond its own last check, as a single fit's (``forecast.shape_discrepancy``).
    jobs = {job.pack_id: job for job, _ in packs}
    return replace(
        fit,
        packs={
            pid: replace(
                same_lam_stress(c, jobs[pid].calibration),
                calibrated_until=_last_check(parts[pid]) if c.source == "pack" and pid in parts else None,
            )
            for pid, c in fit.packs.items()
        },
    )


def _last_check(part: Part) -> dt.date | None:
    dates = getattr(part[0], "dates", None)
    return max(dates) if dates else None


#: Prior of the LAM's C-rate stress factor (``presets.LAM_STRESS_FACTOR``; 1.0 = the preset's stress term,
#: 0 = throughput only): normal, truncated at 0. A judgement: the stress term's size is a literature-shaped
#: guess (x2 at 1C), so half of it either way is one standard deviation.
LAM_STRESS_PRIOR = (1.0, 0.5)
#: Stress factors at which every pack's response is simulated to profile the pooled posterior over it.
LAM_STRESS_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class StressFit:
    """The battery model's LAM stress factor: MAP and standard deviation (Laplace, from the profile's
    curvature), and the profile itself (grid value -> negative log posterior, data and priors)."""

    value: float
    sigma: float
    profile: dict[float, float]


def fit_lam_stress(
    parts_at: Mapping[float, Mapping[str, Part]],
    prior: AgeingCalibration,
    stress_prior: tuple[float, float] = LAM_STRESS_PRIOR,
) -> StressFit:
    """The LAM C-rate stress factor shared by the packs of one battery model, from their pooled fits.

    ``parts_at``: stress factor -> (pack id -> part, as ``fit_pooled`` takes it) with every pack's response
    simulated at that stress factor (the same packs and observations at every value). For each value the
    packs' factors are fitted jointly (``fit_pooled``); its cost plus the stress prior is the profile
    negative log posterior, and the MAP is the minimum of a parabola through the best grid value and its
    neighbours (clipped to the grid). Only packs on duties of different C-rates tell the stress apart from
    the cycling factor; otherwise the profile is flat and the prior decides. Fewer than two packs: the
    prior mean with sigma 0 (not fitted).
    """
    mean, sd = stress_prior
    values = sorted(parts_at)
    if not values or len(next(iter(parts_at.values()))) < 2:
        return StressFit(mean, 0.0, {})
    profile = {v: fit_pooled(parts_at[v], prior).cost + 0.5 * ((v - mean) / sd) ** 2 for v in values}
    values = [v for v in values if math.isfinite(profile[v])]  # a failed fit says nothing about its value
    if not values:
        return StressFit(mean, 0.0, profile)
    costs = np.array([profile[v] for v in values])
    best = int(np.argmin(costs))
    if len(values) < 3:
        return StressFit(values[best], sd, profile)
    k = min(max(best, 1), len(values) - 2)
    a, b, c = np.polyfit(np.array(values[k - 1 : k + 2]), costs[k - 1 : k + 2], 2)
    if a <= 0:  # flat or concave around the best point: take it, with the prior's spread
        return StressFit(values[best], sd, profile)
    return StressFit(float(np.clip(-b / (2 * a), values[0], values[-1])), float(math.sqrt(0.5 / a)), profile)


def calibrate_pooled_with_stress(
    packs: Sequence[tuple[ForecastJob, Sequence[HealthObservation]]],
    prior: AgeingCalibration | None = None,
    grid: Sequence[float] = LAM_STRESS_GRID,
) -> tuple[PooledCalibration, StressFit]:
    """``calibrate_pooled`` with the battery model's LAM stress factor fitted too (``fit_lam_stress``):
    every pack's response is simulated at each ``grid`` value, the stress factor is fitted, and the packs
    are then calibrated (``calibrate_pooled``) at it; each calibration carries it
    (``lam_stress_factor``/``lam_stress_sigma``). One pack (or none usable): exactly ``calibrate_pooled``,
    i.e. ``calibrate_pack``, at the jobs' own stress factor. Costs ``len(grid) + 1`` simulations a pack."""
    usable = [(job, obs) for job, obs in packs if screen_observations(obs, job.in_service_date)[0]]
    if len(usable) < 2:
        return calibrate_pooled(packs, prior), StressFit(LAM_STRESS_PRIOR[0], 0.0, {})
    chemistries = {job.pack.chemistry for job, _ in packs}
    if len(chemistries) > 1:
        raise ValueError(f"packs of one battery model share a chemistry, got {sorted(chemistries)}")
    prior = prior or prior_calibration(chemistries.pop())
    parts_at: dict[float, dict[str, Part]] = {}
    for value in grid:
        parts_at[value] = {}
        for job, observations in usable:
            at = replace(job, calibration=replace(job.calibration, lam_stress_factor=value))
            part, _ = pack_part(at, observations)
            if part is not None:
                parts_at[value][job.pack_id] = part
    common = set.intersection(*(set(p) for p in parts_at.values()))
    stress = fit_lam_stress({v: {pid: p[pid] for pid in common} for v, p in parts_at.items()}, prior)
    at_stress = [
        (replace(job, calibration=replace(job.calibration, lam_stress_factor=stress.value)), obs) for job, obs in packs
    ]
    pooled = calibrate_pooled(at_stress, prior)
    tagged = {
        pid: replace(c, lam_stress_factor=stress.value, lam_stress_sigma=stress.sigma)
        for pid, c in pooled.packs.items()
    }
    group = replace(pooled.group, lam_stress_factor=stress.value, lam_stress_sigma=stress.sigma)
    return PooledCalibration(tagged, group, pooled.set_aside, pooled.cost), stress


def fit_observed_pooled(
    parts: Mapping[str, Part],
    groups: Mapping[str, Hashable],
    priors: Mapping[str, AgeingCalibration],
    set_aside: Mapping[str, Sequence[Aside]],
) -> tuple[dict[str, AgeingCalibration], dict[Hashable, AgeingCalibration]]:
    """``calibrate.fit_observed``'s contract, pooled: packs with the same ``groups`` key (one battery
    model) are fitted together by ``fit_pooled``; a pack with no key is fitted alone (the same thing for
    one pack). Returns (pack id -> its own fit, group key -> the group's value for packs without a usable
    observation); a group value needs two or more fitted packs, as a cluster value does. The fleet's
    nightly path can call it in place of ``fit_observed`` with the same arguments."""
    members: dict[tuple[str, Hashable], list[str]] = defaultdict(list)
    for pid in parts:
        key = groups.get(pid)
        members[("alone", pid) if key is None else ("group", key)].append(pid)
    own: dict[str, AgeingCalibration] = {}
    group_value: dict[Hashable, AgeingCalibration] = {}
    for (kind, key), pids in members.items():
        pooled = fit_pooled({p: parts[p] for p in pids}, priors[pids[0]], {p: set_aside.get(p, ()) for p in pids})
        own.update(pooled.packs)
        if kind == "group" and len(pooled.packs) >= 2:
            group_value[key] = pooled.group
    return own, group_value


def _evidence_term(evidence: Evidence, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One other pack's share of mu's information and term: (I Omega + 1)^-1 I and (I Omega + 1)^-1 h."""
    i11, i12, i22, h1, h2 = evidence
    information = np.array([[i11, i12], [i12, i22]])
    damp = np.linalg.inv(information @ own + np.eye(2))
    contribution = damp @ information
    return (contribution + contribution.T) / 2, damp @ np.array([h1, h2])


def model_prior(
    prior: AgeingCalibration, evidence: Sequence[Evidence], offset_log_sigma: float = PACK_OFFSET_LOG_SIGMA
) -> AgeingCalibration:
    """The prior of one more pack of a battery model, learnt from what its other packs' checks said.

    The same hierarchy as ``fit_pooled`` (mu ~ N(m0, S0 - Omega), each pack's factors ~ N(mu, Omega)),
    done in two stages so that it needs no simulation and works across a fleet forecast in chunks: each
    other pack's fit left its data term (``AgeingCalibration.evidence``: information I_j and h_j, the
    checks alone, no prior in it), and integrating its factors out gives mu the information
    (Omega + I_j^-1)^-1 = (I_j Omega + 1)^-1 I_j and the term (I_j Omega + 1)^-1 h_j - no inverse of I_j,
    so a pack whose checks tell one direction only (the usual calendar/cycling valley) says nothing about
    the other. Returns N(mu's posterior mean, its covariance + Omega) as a two-factor prior
    (``model_packs`` = how many packs informed it); with no evidence, ``prior`` itself. For linear
    responses it is exactly the pack's share of the joint fit (tests/batteries/test_forecast_pooled.py).
    """
    return model_priors(prior, dict(enumerate(evidence)), [None], offset_log_sigma)[None]


def model_priors(
    prior: AgeingCalibration,
    evidence: Mapping[Hashable, Evidence | None],
    packs: Sequence[Hashable],
    offset_log_sigma: float = PACK_OFFSET_LOG_SIGMA,
) -> dict[Hashable, AgeingCalibration]:
    """``model_prior`` for each of ``packs`` from the ``evidence`` (pack -> its evidence) of every *other* pack
    of the battery model: a pack never learns from itself. The model's terms are summed once and each pack's
    own share taken back out, so a night costs one 2 x 2 inverse per pack of the model, not one per pair."""
    m0, shared, own = split_prior(prior, offset_log_sigma)
    terms = {k: _evidence_term(e, own) for k, e in evidence.items() if e is not None and all(map(math.isfinite, e))}
    base = np.linalg.inv(shared)
    total_precision = base + sum((t[0] for t in terms.values()), np.zeros((2, 2)))
    total_term = base @ m0 + sum((t[1] for t in terms.values()), np.zeros(2))
    out: dict[Hashable, AgeingCalibration] = {}
    for pack in packs:
        precision, term, n = total_precision, total_term, len(terms)
        if pack in terms:
            precision, term, n = precision - terms[pack][0], term - terms[pack][1], n - 1
        if n == 0:
            out[pack] = prior
            continue
        mu_cov = np.linalg.inv(precision)
        mu = mu_cov @ term
        cov = mu_cov + own
        s1, s2 = math.sqrt(cov[0, 0]), math.sqrt(cov[1, 1])
        out[pack] = AgeingCalibration(
            rate_factor=math.exp(float(mu[0])),
            log_sigma=s1,
            source="prior",
            cycling_factor=math.exp(float(mu[1])),
            cycling_log_sigma=s2,
            log_correlation=float(np.clip(cov[0, 1] / (s1 * s2), -0.99, 0.99)),
            lam_stress_factor=prior.lam_stress_factor,
            lam_stress_sigma=prior.lam_stress_sigma,
            model_packs=n,
        )
    return out
