"""Fit a pack's (or a cluster's) two ageing rate factors to health observations: maximum a posteriori.

The fitted numbers are ln(calendar factor) and ln(cycling factor), with a bivariate normal prior (the
chemistry preset's, or the cluster's value for a pack of a fitted cluster). One observation is enough:
few or short histories stay close to the prior and keep a wide band; long ones are dominated by the
data. Observations that cannot be right (not a number, above nominal by more than
``ABOVE_NOMINAL_TOLERANCE_PCT``, implausibly low, dated before the pack entered service, far off their
neighbours) are set aside with the reason recorded in ``AgeingCalibration.set_aside``; none raises.

Cheap by construction: the SoH response to the two factors is simulated once, on a grid of factor
pairs (lockstep members of one trajectory, one batched solve per re-simulation), and the least-squares
fit then interpolates that response. No PyBaMM call happens inside the optimiser.

``calibrate_pack``/``calibrate_cluster`` simulate their own response (one pack's life on a 5 x 5 grid,
bicubic). At fleet scale ``forecast_fleet(jobs, observations=..., clusters=...)`` reads each observed
pack's response off its duty group's run instead (a 3 x 3 design the forecast needs anyway,
interpolated in ln(fade): ``fleet.py``) and fits it with ``fit_observed``: no simulation per pack.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
from scipy.interpolate import RectBivariateSpline
from scipy.optimize import least_squares

from .forecast import PreparedJob, log_covariance, prepare, run_members
from .presets import get_preset
from .types import AgeingCalibration, CalibrationSource, ForecastJob, HealthObservation

Aside = tuple[str, str, str]

MIN_OBSERVATIONS = 1
#: A capacity check may read a little above nameplate (new packs, test tolerance); beyond this it is wrong.
ABOVE_NOMINAL_TOLERANCE_PCT = 3.0
LOWEST_PLAUSIBLE_SOH_PCT = 30.0
#: A check this far (pp, or 3 of its stated uncertainties if more) from the median of its neighbours
#: (other checks within ``NEIGHBOUR_DAYS``, at least two) is an outlier.
OUTLIER_PP = 4.0
NEIGHBOUR_DAYS = 180
#: Two-factor response (``calibrate_pack``, ``calibrate_cluster``): every pair of these ln-spaced factors
#: (calendar/SEI x cycling/LAM, 0.25x to 4x the prior) is simulated, 25 lockstep members.
FACTOR_GRID_2D = tuple(float(f) for f in np.exp(np.linspace(math.log(0.25), math.log(4.0), 5)))
#: Correlation of ln(calendar factor) and ln(cycling factor) in the prior of a two-factor fit built from
#: a one-factor prior (same factor, same spread for both): a pack that ages fast one way tends to age
#: fast the other (cell quality, temperature), but not always, so the data can split the two.
PRIOR_LOG_CORRELATION = 0.5
#: A date of the two-factor response needs this many grid members still running (a full cubic in the two
#: log factors has 10 coefficients).
MIN_MEMBERS_2D = 10
#: Packs of one cluster still differ: a cluster value is never trusted more than this (ln units).
CLUSTER_LOG_SIGMA_FLOOR = 0.25
#: Nor is a pack's own fit (model error, unmodelled events).
PACK_LOG_SIGMA_FLOOR = 0.05


def screen_observations(
    observations: Sequence[HealthObservation], in_service: dt.date | None = None
) -> tuple[list[HealthObservation], list[tuple[str, str, str]]]:
    """(observations kept, set aside as (date ISO, SoH as given, reason)), kept ones sorted by date."""
    kept: list[HealthObservation] = []
    aside: list[tuple[str, str, str]] = []
    for o in sorted(observations, key=lambda o: o.date):
        reason = None
        if not (math.isfinite(o.soh_pct) and math.isfinite(o.uncertainty_pct)):
            reason = "not a number"
        elif o.soh_pct > 100.0 + ABOVE_NOMINAL_TOLERANCE_PCT:
            reason = f"above nominal by more than {ABOVE_NOMINAL_TOLERANCE_PCT:g} %"
        elif o.soh_pct < LOWEST_PLAUSIBLE_SOH_PCT:
            reason = f"below {LOWEST_PLAUSIBLE_SOH_PCT:g} %: not a plausible traction pack"
        elif in_service is not None and o.date < in_service:
            reason = "dated before the pack entered service"
        if reason is None:
            kept.append(o)
        else:
            aside.append((o.date.isoformat(), repr(o.soh_pct), reason))
    outliers = []
    for o in kept:
        near = [n.soh_pct for n in kept if n is not o and abs((n.date - o.date).days) <= NEIGHBOUR_DAYS]
        if len(near) >= 2:
            median = float(np.median(near))
            if abs(o.soh_pct - median) > max(OUTLIER_PP, 3.0 * o.uncertainty_pct):
                outliers.append(o)
                aside.append(
                    (o.date.isoformat(), repr(o.soh_pct), f"outlier: {o.soh_pct - median:+.1f} pp from its neighbours")
                )
    return [o for o in kept if o not in outliers], aside


def enough_observations(observations: Sequence[HealthObservation]) -> bool:
    return len(screen_observations(observations)[0]) >= MIN_OBSERVATIONS


#: A response of SoH at the observation dates to (ln calendar factor, ln cycling factor).
Response2D = Callable[[np.ndarray], np.ndarray]


class SohResponse2D:
    """SoH at given dates as a smooth function of (ln calendar factor, ln cycling factor).

    Per date: a bicubic spline through the simulated grid, or, where some grid members had stopped, a
    least-squares cubic in the two log factors through those still running (None if too few)."""

    def __init__(self, dates: Sequence[dt.date], log_factors: np.ndarray, soh_pct: np.ndarray):
        self.dates = tuple(dates)
        self.log_factors = log_factors
        self.soh_pct = soh_pct  # (n, n, n_dates): [calendar index, cycling index, date]
        self._surfaces = [self._surface(soh_pct[:, :, k]) for k in range(len(self.dates))]

    @staticmethod
    def _basis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.stack([np.ones_like(a), a, b, a * a, a * b, b * b, a**3, a * a * b, a * b * b, b**3], axis=-1)

    def _surface(self, z: np.ndarray) -> RectBivariateSpline | np.ndarray | None:
        if np.isfinite(z).all():
            return RectBivariateSpline(self.log_factors, self.log_factors, z, kx=3, ky=3, s=0)
        ok = np.isfinite(z)
        if ok.sum() < MIN_MEMBERS_2D:
            return None
        grid_a, grid_b = np.meshgrid(self.log_factors, self.log_factors, indexing="ij")
        coefficients, *_ = np.linalg.lstsq(self._basis(grid_a[ok], grid_b[ok]), z[ok], rcond=None)
        return np.asarray(coefficients)

    def usable(self) -> np.ndarray:
        return np.array([surface is not None for surface in self._surfaces], dtype=bool)

    def only(self, keep: np.ndarray) -> SohResponse2D:
        dates = [d for d, ok in zip(self.dates, keep, strict=True) if ok]
        return SohResponse2D(dates, self.log_factors, self.soh_pct[:, :, keep])

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        a, b = float(theta[0]), float(theta[1])
        out = np.full(len(self.dates), np.nan)
        for k, surface in enumerate(self._surfaces):
            if isinstance(surface, RectBivariateSpline):
                out[k] = float(surface.ev(a, b))
            elif surface is not None:
                out[k] = float(self._basis(np.array(a), np.array(b)) @ surface)
        return out


def soh_response_2d(prepared: PreparedJob, in_service: dt.date, dates: Sequence[dt.date]) -> SohResponse2D:
    pairs = [(a, b) for a in FACTOR_GRID_2D for b in FACTOR_GRID_2D]
    members, _ = run_members(prepared, in_service, max(dates) + dt.timedelta(days=1), pairs)
    n = len(FACTOR_GRID_2D)
    soh = np.full((n, n, len(dates)), np.nan)
    for index, member in enumerate(members):
        x = [d.toordinal() for d in member.dates]
        for k, date in enumerate(dates):
            if date <= member.dates[-1]:
                soh[index // n, index % n, k] = np.interp(date.toordinal(), x, member.soh_pct)
    return SohResponse2D(dates, np.log(np.array(FACTOR_GRID_2D)), soh)


def prior_2d(prior: AgeingCalibration) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of (ln calendar factor, ln cycling factor) under ``prior``. A one-factor prior
    gives both its factor and spread, correlated by ``PRIOR_LOG_CORRELATION``."""
    if prior.cycling_factor is not None:
        return np.log([prior.rate_factor, prior.cycling_factor]), log_covariance(prior)
    s = max(prior.log_sigma, 1e-3)
    rho = PRIOR_LOG_CORRELATION
    return np.log([prior.rate_factor, prior.rate_factor]), s * s * np.array([[1.0, rho], [rho, 1.0]])


#: A fit's data term (``AgeingCalibration.evidence``): (I11, I12, I22, h1, h2).
Evidence = tuple[float, float, float, float, float]


class Fit2D(NamedTuple):
    theta: np.ndarray
    cov: np.ndarray
    n: int
    #: The data term alone (``AgeingCalibration.evidence``); None when nothing was fitted.
    evidence: Evidence | None = None


def data_evidence(jac: np.ndarray, residuals: np.ndarray, scale: float, theta: np.ndarray) -> Evidence:
    """The data term of a fit, 1/2 |residuals|^2 / scale, as a Gaussian in the ln factors around ``theta``
    (Gauss-Newton): information I = J^T J / scale and h = I theta - J^T r / scale (the quadratic whose
    gradient at ``theta`` is the data term's), so that h = I x the factors the data alone point to."""
    information = jac.T @ jac / scale
    h = information @ theta - jac.T @ residuals / scale
    return (
        float(information[0, 0]),
        float(information[0, 1]),
        float(information[1, 1]),
        float(h[0]),
        float(h[1]),
    )


def _fit_2d(parts: Sequence[tuple[Response2D, np.ndarray, np.ndarray]], prior: AgeingCalibration) -> Fit2D:
    """MAP of (ln calendar factor, ln cycling factor) under a bivariate normal prior; the posterior
    covariance is the Laplace approximation (inverse Hessian of the negative log posterior, from the
    Jacobian at the optimum). Returns (MAP, covariance, number of observations, the data term alone)."""
    mean, cov = prior_2d(prior)
    chol = np.linalg.cholesky(cov)

    def residuals(theta: np.ndarray) -> np.ndarray:
        data = [(resp(theta) - obs) / unc for resp, obs, unc in parts]
        return np.concatenate([*data, np.linalg.solve(chol, theta - mean)])

    low, high = math.log(FACTOR_GRID_2D[0]), math.log(FACTOR_GRID_2D[-1])
    start = np.clip(mean, low + 1e-6, high - 1e-6)
    fit = least_squares(residuals, x0=start, bounds=(low, high), x_scale=[0.3, 0.3])
    n = len(fit.fun) - 2
    data_jac = fit.jac[:-2]
    chi2 = float(fit.fun[:-2] @ fit.fun[:-2]) / max(n - 2, 1) if n >= 4 else 1.0
    information = data_jac.T @ data_jac / max(chi2, 1.0) + np.linalg.inv(cov)
    theta = np.asarray(fit.x, dtype=float)
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(information))):
        return Fit2D(mean, cov, 0)
    evidence = data_evidence(data_jac, fit.fun[:-2], max(chi2, 1.0), theta)
    return Fit2D(theta, np.linalg.inv(information), n, evidence)


def two_factor_calibration(
    theta: np.ndarray,
    cov: np.ndarray,
    source: CalibrationSource,
    n: int,
    floor: float,
    aside: Sequence[Aside] = (),
    calibrated_until: dt.date | None = None,
    evidence: Evidence | None = None,
) -> AgeingCalibration:
    s1, s2 = math.sqrt(max(float(cov[0, 0]), 0.0)), math.sqrt(max(float(cov[1, 1]), 0.0))
    rho = float(cov[0, 1]) / (s1 * s2) if s1 > 0 and s2 > 0 else 0.0
    return AgeingCalibration(
        rate_factor=math.exp(float(theta[0])),
        log_sigma=max(s1, floor),
        source=source,
        n_observations=n,
        set_aside=tuple(sorted(aside)),
        cycling_factor=math.exp(float(theta[1])),
        cycling_log_sigma=max(s2, floor),
        log_correlation=float(np.clip(rho, -0.99, 0.99)),
        calibrated_until=calibrated_until,
        evidence=evidence,
    )


def observation_arrays(observations: Sequence[HealthObservation]) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
    obs = sorted(observations, key=lambda o: o.date)
    return (
        [o.date for o in obs],
        np.array([o.soh_pct for o in obs]),
        np.array([max(o.uncertainty_pct, 0.1) for o in obs]),
    )


def calibrate_pack(
    job: ForecastJob,
    observations: Sequence[HealthObservation],
    fallback: AgeingCalibration | None = None,
) -> AgeingCalibration:
    """Fit the pack's two ageing rate factors - calendar (SEI) and cycling (loss of active material),
    in log space - to its observations (SoH %, uncertainty %), MAP against the prior ``fallback`` (e.g.
    its cluster's value) or the chemistry prior (``prior_2d``).

    Never raises for bad data: observations that cannot be right, or that fall where the model cannot
    simulate the duty, are set aside with the reason (``set_aside``). With none left, returns the prior
    (with what was set aside). The result's ``log_sigma``/``cycling_log_sigma``/``log_correlation``
    are the Laplace posterior of the two log factors, each sigma floored at ``PACK_LOG_SIGMA_FLOOR``.
    One observation leaves the posterior close to the prior (and the band nearly as wide).
    """
    prior = fallback or prior_calibration(job.pack.chemistry)
    # The fit keeps the battery model's LAM stress factor, the job's: its simulations used it.
    part, aside = pack_part(job, observations)
    if part is not None:
        theta, cov, n, evidence = _fit_2d([part], prior)
        if n:
            assert isinstance(part[0], SohResponse2D)
            until = max(part[0].dates)
            fitted = two_factor_calibration(theta, cov, "pack", n, PACK_LOG_SIGMA_FLOOR, aside, until, evidence)
            return same_lam_stress(fitted, job.calibration)
    return same_lam_stress(replace(prior, set_aside=tuple(sorted(aside))), job.calibration)


def same_lam_stress(calibration: AgeingCalibration, of: AgeingCalibration) -> AgeingCalibration:
    """``calibration`` with the LAM stress factor (and its sigma) of ``of``: a fit keeps the battery model's
    value its simulations used (the job's)."""
    return replace(calibration, lam_stress_factor=of.lam_stress_factor, lam_stress_sigma=of.lam_stress_sigma)


def pack_part(
    job: ForecastJob, observations: Sequence[HealthObservation]
) -> tuple[tuple[SohResponse2D, np.ndarray, np.ndarray] | None, list[Aside]]:
    """One pack's piece of a fit: (its simulated response at the usable observations' dates, their SoH
    %, their uncertainty %), or None if none is usable; and what was set aside, with the reason."""
    kept, aside = screen_observations(observations, job.in_service_date)
    if not kept:
        return None, aside
    dates, soh, unc = observation_arrays(kept)
    response = soh_response_2d(prepare(job), job.in_service_date, dates)
    usable = response.usable()
    for date, value, ok in zip(dates, soh, usable, strict=True):
        if not ok:
            aside.append((date.isoformat(), repr(float(value)), "the model cannot simulate the duty at this date"))
    if not usable.any():
        return None, aside
    return (response.only(usable), soh[usable], unc[usable]), aside


def calibrate_cluster(
    packs: Sequence[tuple[ForecastJob, Sequence[HealthObservation]]],
) -> AgeingCalibration:
    """Two rate factors (calendar, cycling) for a cluster of similar packs (same chemistry, similar use),
    fitted to all their observations together. Packs with few observations still contribute what they
    have."""
    parts = []
    chemistry = packs[0][0].pack.chemistry if packs else "LFP"
    for job, observations in packs:
        part, _aside = pack_part(job, observations)
        if part is not None:
            parts.append(part)
    if not parts:
        raise ValueError("no usable observations in the cluster")
    theta, cov, n, _ = _fit_2d(parts, prior_calibration(chemistry))
    return two_factor_calibration(theta, cov, "cluster", n, CLUSTER_LOG_SIGMA_FLOOR)


def prior_calibration(chemistry: str) -> AgeingCalibration:
    return AgeingCalibration(1.0, get_preset(chemistry).prior_log_sigma, "prior", 0)


def fit_observed(
    parts: Mapping[str, tuple[Response2D, np.ndarray, np.ndarray]],
    clusters: Mapping[str, Hashable],
    priors: Mapping[str, AgeingCalibration],
    set_aside: Mapping[str, Sequence[Aside]],
    calibrated_until: Mapping[str, dt.date] | None = None,
) -> tuple[dict[str, AgeingCalibration], dict[Hashable, AgeingCalibration]]:
    """Own two-factor fits of packs whose SoH responses are known, and cluster values.

    ``parts``: pack id -> (response at its observation dates, observed SoH %, uncertainty %), for packs
    with usable observations; ``priors``: pack id -> its chemistry prior (``prior_2d``); ``set_aside``:
    pack id -> observations left out (recorded on its calibration). ``clusters``: pack id -> cluster
    key. A cluster with two or more such packs gets two factors fitted to all their observations
    (floor ``CLUSTER_LOG_SIGMA_FLOOR``). Same MAP and Laplace posterior as ``calibrate_pack``.
    ``calibrated_until``: pack id -> the date of its last usable check, recorded on its own fit (the band
    widens beyond it: ``forecast.shape_discrepancy``); a pack not in it gets no such widening.
    """
    own: dict[str, AgeingCalibration] = {}
    for pack_id, part in parts.items():
        theta, cov, n, evidence = _fit_2d([part], priors[pack_id])
        if n:
            own[pack_id] = two_factor_calibration(
                theta,
                cov,
                "pack",
                n,
                PACK_LOG_SIGMA_FLOOR,
                set_aside.get(pack_id, ()),
                (calibrated_until or {}).get(pack_id),
                evidence,
            )
    members: dict[Hashable, list[str]] = defaultdict(list)
    for pack_id in own:
        if clusters.get(pack_id) is not None:
            members[clusters[pack_id]].append(pack_id)
    cluster_value: dict[Hashable, AgeingCalibration] = {}
    for key, pack_ids in members.items():
        if len(pack_ids) >= 2:
            theta, cov, n, _ = _fit_2d([parts[p] for p in pack_ids], priors[pack_ids[0]])
            if n:
                cluster_value[key] = two_factor_calibration(theta, cov, "cluster", n, CLUSTER_LOG_SIGMA_FLOOR)
    return own, cluster_value
