"""Fit a pack's (or a cluster's) ageing rate factor to health observations.

Cheap by construction: the SoH response to the rate factor is simulated once, on a grid of factors
(lockstep members of one trajectory, one batched solve per re-simulation), and the least-squares fit
in ln(factor) then interpolates that response (cubic spline in ln factor at each observation date).
No PyBaMM call happens inside the optimiser.

``calibrate_pack``/``calibrate_cluster`` simulate their own response (one pack's life on a grid of
factors). At fleet scale ``forecast_fleet(jobs, observations=..., clusters=...)`` reads each observed
pack's response off its duty group's run instead (the run the forecast needs anyway) and fits it with
``fit_observed``: no simulation per pack.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.optimize import least_squares

from .forecast import PreparedJob, prepare, run_members
from .presets import get_preset
from .types import AgeingCalibration, ForecastJob, HealthObservation

MIN_OBSERVATIONS = 3
MIN_SPAN_DAYS = 90
#: Rate factors simulated for the response (ln-spaced, 0.25x to 4x the prior).
FACTOR_GRID = tuple(float(f) for f in np.exp(np.linspace(math.log(0.25), math.log(4.0), 9)))
#: Packs of one cluster still differ: a cluster value is never trusted more than this (ln units).
CLUSTER_LOG_SIGMA_FLOOR = 0.25
#: Nor is a pack's own fit (model error, unmodelled events).
PACK_LOG_SIGMA_FLOOR = 0.05


def enough_observations(observations: Sequence[HealthObservation]) -> bool:
    if len(observations) < MIN_OBSERVATIONS:
        return False
    dates = [o.date for o in observations]
    return (max(dates) - min(dates)).days >= MIN_SPAN_DAYS


@dataclass(frozen=True)
class SohResponse:
    """SoH at given dates as a smooth function of ln(rate factor)."""

    dates: tuple[dt.date, ...]
    log_factors: np.ndarray
    soh_pct: np.ndarray  # (n_factors, n_dates); NaN where the member had stopped

    def __call__(self, log_factor: float) -> np.ndarray:
        out = np.empty(len(self.dates))
        for k in range(len(self.dates)):
            column = self.soh_pct[:, k]
            ok = np.isfinite(column)
            spline = CubicSpline(self.log_factors[ok], column[ok], extrapolate=True)
            out[k] = spline(log_factor)
        return out


def soh_response(prepared: PreparedJob, in_service: dt.date, dates: Sequence[dt.date]) -> SohResponse:
    members, _ = run_members(prepared, in_service, max(dates) + dt.timedelta(days=1), list(FACTOR_GRID))
    soh = np.full((len(members), len(dates)), np.nan)
    for i, member in enumerate(members):
        x = [d.toordinal() for d in member.dates]
        for k, date in enumerate(dates):
            if date <= member.dates[-1]:
                soh[i, k] = np.interp(date.toordinal(), x, member.soh_pct)
    return SohResponse(tuple(dates), np.log(np.array(FACTOR_GRID)), soh)


def _fit(parts: list[tuple[SohResponse, np.ndarray, np.ndarray]], start: float) -> tuple[float, float, int]:
    """Least squares in ln(factor). Returns (ln factor, its standard error, number of residuals)."""

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([(resp(theta[0]) - obs) / unc for resp, obs, unc in parts])

    bounds = (math.log(FACTOR_GRID[0]) - 0.5, math.log(FACTOR_GRID[-1]) + 0.5)
    fit = least_squares(residuals, x0=[start], bounds=bounds, x_scale=[0.3])
    n = len(fit.fun)
    jtj = float(fit.jac[:, 0] @ fit.jac[:, 0])
    # Scale by the reduced chi-square when the scatter exceeds the stated uncertainties.
    chi2 = float(fit.fun @ fit.fun) / max(n - 1, 1)
    se = math.sqrt(max(chi2, 1.0) / jtj) if jtj > 0 else float("inf")
    return float(fit.x[0]), se, n


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
    """Fit the pack's ageing rate factor to its observations (SoH %, uncertainty %).

    With fewer than 3 observations or a span under 90 days, returns ``fallback`` (e.g. the cluster's
    value) or the chemistry prior. The result's ``log_sigma`` is the standard error of ln(factor)
    from the Jacobian, floored at ``PACK_LOG_SIGMA_FLOOR``.
    """
    if not enough_observations(observations):
        return fallback or prior_calibration(job.pack.chemistry)
    dates, soh, unc = observation_arrays(observations)
    response = soh_response(prepare(job), job.in_service_date, dates)
    theta, se, n = _fit([(response, soh, unc)], start=0.0)
    return AgeingCalibration(math.exp(theta), max(se, PACK_LOG_SIGMA_FLOOR), "pack", n)


def calibrate_cluster(
    packs: Sequence[tuple[ForecastJob, Sequence[HealthObservation]]],
) -> AgeingCalibration:
    """One rate factor for a cluster of similar packs (same chemistry, similar use), fitted to all
    their observations together. Packs with fewer than 3 observations still contribute what they have.
    """
    parts = []
    for job, observations in packs:
        if not observations:
            continue
        dates, soh, unc = observation_arrays(observations)
        parts.append((soh_response(prepare(job), job.in_service_date, dates), soh, unc))
    if not parts:
        raise ValueError("no observations in the cluster")
    theta, se, n = _fit(parts, start=0.0)
    return AgeingCalibration(math.exp(theta), max(se, CLUSTER_LOG_SIGMA_FLOOR), "cluster", n)


def prior_calibration(chemistry: str) -> AgeingCalibration:
    return AgeingCalibration(1.0, get_preset(chemistry).prior_log_sigma, "prior", 0)


def fit_observed(
    parts: Mapping[str, tuple[SohResponse, np.ndarray, np.ndarray]],
    clusters: Mapping[str, Hashable],
) -> tuple[dict[str, AgeingCalibration], dict[Hashable, AgeingCalibration]]:
    """Own fits of packs whose SoH responses are known, and cluster values.

    ``parts``: pack id -> (response at its observation dates, observed SoH %, uncertainty %), for packs
    with enough observations. ``clusters``: pack id -> cluster key. A cluster with two or more such
    packs gets one factor fitted to all their observations (floor ``CLUSTER_LOG_SIGMA_FLOOR``).
    """
    own: dict[str, AgeingCalibration] = {}
    for pack_id, part in parts.items():
        theta, se, n = _fit([part], start=0.0)
        own[pack_id] = AgeingCalibration(math.exp(theta), max(se, PACK_LOG_SIGMA_FLOOR), "pack", n)
    members: dict[Hashable, list[str]] = defaultdict(list)
    for pack_id in parts:
        if clusters.get(pack_id) is not None:
            members[clusters[pack_id]].append(pack_id)
    cluster_value: dict[Hashable, AgeingCalibration] = {}
    for key, pack_ids in members.items():
        if len(pack_ids) >= 2:
            theta, se, n = _fit([parts[p] for p in pack_ids], start=0.0)
            cluster_value[key] = AgeingCalibration(math.exp(theta), max(se, CLUSTER_LOG_SIGMA_FLOOR), "cluster", n)
    return own, cluster_value
