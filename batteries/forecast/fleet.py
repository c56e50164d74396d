"""Fleet scale: group packs by a quantised duty signature, simulate each group once, answer per pack.

Packs of one chemistry whose duty and climate round to the same signature share one trajectory run
(``simulate_members``) from the group's earliest in-service date, on a grid of rate factors
(ln-spaced, step <= ``GRID_LOG_STEP``, spanning every pack's P10..P90 factor). A pack's P10/P50/P90
trajectory is then built from that run without another PyBaMM call:

* **Rate factor**: each month, SoH is a cubic in the factor through the 4 nearest grid members that
  still run (fade is smooth and a little convex in the factor). Where the faster members have stopped
  (their duty no longer fit), the remaining slower ones are extrapolated.
* **Age and season**: a pack that went into service ``o`` months after the group start is as old as
  the group run ``o`` months earlier, but sees the seasons shifted by ``o mod 12`` months. Its monthly
  SoH change is therefore taken from the group run's months with the *same calendar month*, at the
  two ages around the pack's (``r = o mod 12`` months older and ``12 - r`` younger), weighted
  linearly in age. Without this, a pack shifted by half a year is off by ~0.5 pp (summer vs winter).
* **Guard**: the pack's duty end is the first month its own SoH no longer fits its (quantised) duty, as
  in ``forecast_pack``; the trajectory goes on (the group run's members cut the duty the same way).

Signature quantisation (see docs/forecast.md): daily energy 2 % of nameplate, start SoC 2.5 %, charge
C-rate 0.05 C, operating hours 1 h, hours at full SoC 1 h, top-ups a day, seasonal pack
temperature 1 K, usable SoC floor 5 %.
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .calibrate import SohResponse, fit_observed, observation_arrays, prior_calibration, screen_observations
from .duty import representative_day
from .forecast import PreparedJob, assemble, band_factors, forecast_pack, horizon_end, prepare, run_members
from .trajectory import MemberTrajectory, TrajectorySettings, add_months
from .types import AgeingCalibration, ForecastJob, ForecastRefused, ForecastResult, HealthObservation

#: Largest ln-step between grid factors (SoH is interpolated by a cubic in the factor between them).
GRID_LOG_STEP = 0.5
#: The factors a group with observed packs must span so that calibration can find their rate.
CALIBRATION_FACTORS = (0.25, 4.0)


def _q(value: float, step: float) -> float:
    return round(round(value / step) * step, 6)


def duty_signature(prepared: PreparedJob) -> tuple[Any, ...]:
    """The quantised signature packs are grouped by (hashable)."""
    p = prepared.profile
    return (
        prepared.chemistry,
        _q(p.energy_fraction, 0.02),
        _q(p.start_soc, 0.025),
        _q(p.charge_c_rate, 0.05),
        _q(p.operating_hours, 1.0),
        p.top_ups,
        _q(min(p.hours_full, 24.0), 1.0),
        tuple(_q(t, 1.0) for t in prepared.season_temps_k),
        _q(prepared.usable_soc_min, 0.05),
    )


def _quantised(prepared: PreparedJob) -> PreparedJob:
    sig = duty_signature(prepared)
    profile = replace(
        prepared.profile,
        energy_fraction=sig[1],
        start_soc=sig[2],
        charge_c_rate=sig[3],
        operating_hours=sig[4],
        hours_full=sig[6],
        km_per_day=None,
    )
    return PreparedJob(prepared.chemistry, profile, sig[7], sig[8])


def factor_grid(factors: Sequence[float]) -> list[float]:
    lo, hi = math.log(min(factors)), math.log(max(factors))
    n = max(2, math.ceil((hi - lo) / GRID_LOG_STEP) + 1)
    return [float(f) for f in np.exp(np.linspace(lo - 1e-9, hi + 1e-9, n))]


def _lagrange_weights(nodes: np.ndarray, x: float) -> np.ndarray:
    weights = np.ones(len(nodes))
    for i, node in enumerate(nodes):
        for j, other in enumerate(nodes):
            if j != i:
                weights[i] *= (x - other) / (node - other)
    return weights


def _group_series(
    grid: list[float], members: list[MemberTrajectory], factor: float
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Monthly SoH and resistance factor of the group run at ``factor`` (index = months from the group
    start), and the flags of the grid members that ended the series.

    Each month, a cubic in the factor through the (up to) 4 grid members nearest to ``factor`` that
    still run: fade grows a little faster than the factor (an aged pack cycles deeper), which a linear
    interpolation would miss by up to ~0.4 pp at an ln-step of 0.5.
    """
    lengths = np.array([len(m.soh_pct) for m in members])
    n = int(lengths.max())
    soh_all = np.full((len(members), n), np.nan)
    res_all = np.full((len(members), n), np.nan)
    for i, m in enumerate(members):
        soh_all[i, : lengths[i]] = m.soh_pct
        res_all[i, : lengths[i]] = m.resistance_factor
    distance = np.abs(np.log(np.asarray(grid)) - math.log(factor))
    soh, res = np.empty(n), np.empty(n)
    bounds = sorted({0, *(int(x) for x in lengths)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):  # months lo..hi-1 see the same running members
        running = np.flatnonzero(lengths >= hi)
        stencil = running[np.argsort(distance[running], kind="stable")[:4]]
        weights = _lagrange_weights(np.asarray(grid)[stencil], factor)
        soh[lo:hi] = weights @ soh_all[stencil, lo:hi]
        res[lo:hi] = weights @ res_all[stencil, lo:hi]
    longest = [m for m in members if len(m.soh_pct) == n and m.stopped is not None]
    return soh, res, sorted({f for m in longest for f in m.flags})


def _rephased_changes(step: np.ndarray, offset_months: int) -> np.ndarray:
    """Monthly SoH changes of a pack in service ``offset_months`` after the group start, from the group
    run's monthly changes ``step`` (module docstring: same calendar month, the two ages around the
    pack's, weighted linearly in age). Ends where the group run no longer covers the pack's age."""
    r = offset_months % 12
    changes = []
    j = 0
    while True:
        older, younger = j + r, j + r - 12
        if older < len(step) and younger >= 0:
            changes.append(((12 - r) * step[older] + r * step[younger]) / 12)
        elif older < len(step):
            changes.append(step[older])
        elif 0 <= younger < len(step):
            changes.append(step[younger])
        else:
            break
        j += 1
    return np.asarray(changes, dtype=float)


def _pack_trajectory(
    grid: list[float],
    members: list[MemberTrajectory],
    factor: float,
    start: dt.date,
    offset_months: int,
    end: dt.date,
    fits: Callable[[float], bool],
) -> MemberTrajectory:
    """The pack's monthly trajectory from its in-service date ``start`` to ``end``; the pack went into
    service ``offset_months`` after the group start."""
    soh_g, res_g, end_flags = _group_series(grid, members, factor)
    changes = _rephased_changes(np.diff(soh_g), offset_months)
    out = MemberTrajectory(factor, [start], [100.0], [1.0])
    soh, j = 100.0, 0
    while out.dates[-1] < end:
        if j >= len(changes):  # the group run ends here: its horizon, or its members stopped (so does the pack)
            if end_flags:
                out.stopped, out.flags = out.dates[-1], list(end_flags)
            break
        soh += float(changes[j])
        j += 1
        out.dates.append(add_months(start, j))
        out.soh_pct.append(soh)
        out.resistance_factor.append(float(res_g[min(j, len(res_g) - 1)]))
        if out.duty_end is None and not fits(soh):
            out.mark_duty_end(out.dates[-1])
    return out


def _months_between(start: dt.date, later: dt.date) -> int:
    months = (later.year - start.year) * 12 + later.month - start.month
    return months - 1 if add_months(start, months) > later else months


@dataclass
class _GroupRun:
    """One duty group's simulation: grid members from the group's earliest in-service date."""

    shared: PreparedJob
    start: dt.date
    end: dt.date
    grid: list[float]
    members: list[MemberTrajectory]
    simulated_days: int


def _simulate_group(
    items: list[tuple[ForecastJob, PreparedJob]], factors: list[float], settings: TrajectorySettings | None
) -> _GroupRun:
    shared = _quantised(items[0][1])
    start = min(job.in_service_date for job, _ in items)
    # A year beyond the oldest-equivalent horizon: the re-phasing reads up to 11 months ahead.
    end = max(horizon_end(job) - (job.in_service_date - start) for job, _ in items) + dt.timedelta(days=366)
    grid = factor_grid(factors)
    members, n_days = run_members(shared, start, end, grid, settings)
    return _GroupRun(shared, start, end, grid, members, n_days)


def _cover(run: _GroupRun, factors: list[float], settings: TrajectorySettings | None) -> None:
    """Add grid members (same ln-step, outwards) until the grid spans ``factors``: a fitted pack's band
    may reach beyond the calibration range."""
    log_grid = sorted(math.log(f) for f in run.grid)
    step = min(GRID_LOG_STEP, log_grid[1] - log_grid[0]) if len(log_grid) > 1 else GRID_LOG_STEP
    extra, lo, hi = [], log_grid[0], log_grid[-1]
    while math.log(min(factors)) < lo - 1e-6:
        lo -= step
        extra.append(math.exp(lo))
    while math.log(max(factors)) > hi + 1e-6:
        hi += step
        extra.append(math.exp(hi))
    if extra:
        members, n_days = run_members(run.shared, run.start, run.end, extra, settings)
        ordered = sorted(zip(run.grid + extra, run.members + members, strict=True), key=lambda pair: pair[0])
        run.grid, run.members = [f for f, _ in ordered], [m for _, m in ordered]
        run.simulated_days += n_days


def _observed_response(run: _GroupRun, job: ForecastJob, dates: list[dt.date]) -> SohResponse:
    """The pack's SoH at ``dates`` for each grid factor, re-phased from the group run like its forecast."""
    offset = _months_between(run.start, job.in_service_date)
    x = np.array([d.toordinal() for d in dates], dtype=float)
    soh = np.full((len(run.members), len(dates)), np.nan)
    for i, member in enumerate(run.members):
        series = 100.0 + np.concatenate([[0.0], np.cumsum(_rephased_changes(np.diff(member.soh_pct), offset))])
        months = np.array([add_months(job.in_service_date, k).toordinal() for k in range(len(series))], dtype=float)
        soh[i] = np.interp(x, months, series, right=np.nan)
    return SohResponse(tuple(dates), np.log(np.asarray(run.grid)), soh)


def _calibration_part(
    run: _GroupRun, job: ForecastJob, observations: Sequence[HealthObservation]
) -> tuple[SohResponse, np.ndarray, np.ndarray] | None:
    """The pack's response with its observed SoH and uncertainties, or None if too few observations
    remain. An observation is left out where fewer than 3 grid members still run at its date (the
    group's duty no longer fits there: a spline in the factor needs members on both sides)."""
    dates, soh, unc = observation_arrays(observations)
    response = _observed_response(run, job, dates)
    usable = np.isfinite(response.soh_pct).sum(axis=0) >= 3
    if usable.all():
        return response, soh, unc
    kept = [o for o, ok in zip(sorted(observations, key=lambda o: o.date), usable, strict=True) if ok]
    if not kept:
        return None
    dates, soh, unc = observation_arrays(kept)
    return _observed_response(run, job, dates), soh, unc


def _assemble_group(
    run: _GroupRun, items: list[tuple[ForecastJob, PreparedJob]]
) -> list[ForecastResult | ForecastRefused]:
    shared = run.shared

    def fits(soh_pct: float) -> bool:
        day = representative_day(shared.profile, soh_pct / 100.0, shared.season_temps_k[0], shared.usable_soc_min)
        return day.feasible

    out: list[ForecastResult | ForecastRefused] = []
    for job, prepared in items:
        offset = _months_between(run.start, job.in_service_date)
        pack_end = horizon_end(job)
        low, mid, high = (
            _pack_trajectory(run.grid, run.members, f, job.in_service_date, offset, pack_end, fits)
            for f in band_factors(job.calibration)
        )
        own = PreparedJob(
            shared.chemistry,
            replace(shared.profile, km_per_day=prepared.profile.km_per_day),
            shared.season_temps_k,
            shared.usable_soc_min,
        )
        try:
            out.append(assemble(job, own, low, mid, high, 0))
        except ForecastRefused as refused:
            out.append(refused)
    return out


@dataclass(frozen=True)
class FleetRun:
    """Per-pack results, and the packs the model refused (pack id -> flag and reason)."""

    results: dict[str, ForecastResult]
    n_groups: int
    simulated_days: int
    refused: dict[str, ForecastRefused]


def _simulate_all(
    groups: list[list[tuple[ForecastJob, PreparedJob]]],
    factors: list[list[float]],
    settings: TrajectorySettings | None,
    workers: int,
) -> list[_GroupRun]:
    if workers > 1 and len(groups) > 1:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding solver threads
        with ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=context) as pool:
            return list(pool.map(_simulate_group, groups, factors, [settings] * len(groups)))
    return [_simulate_group(items, f, settings) for items, f in zip(groups, factors, strict=True)]


def _band_span(items: list[tuple[ForecastJob, PreparedJob]]) -> list[float]:
    return [f for job, _ in items for f in band_factors(job.calibration)]


def forecast_fleet(
    jobs: Sequence[ForecastJob],
    settings: TrajectorySettings | None = None,
    workers: int = 1,
    observations: Mapping[str, Sequence[HealthObservation]] | None = None,
    clusters: Mapping[str, Hashable] | None = None,
) -> FleetRun:
    """Forecast many packs, calibrating them on the way; returns per-pack results keyed by ``pack_id``.

    Without ``observations`` each pack uses ``job.calibration``; a job whose calibration has two factors
    (``calibrate_pack``) is forecast on its own with ``forecast_pack`` (the group runs are a one-factor
    grid) and its observations are not refitted here. With ``observations`` (pack id -> its
    health observations), a pack with enough of them (3+ over 90+ days) is fitted to them; a pack
    without takes its cluster's value (``clusters``: pack id -> any hashable key; a cluster value needs
    two or more fitted packs, whose observations are pooled), else keeps ``job.calibration`` (by default
    the prior). ``result.calibration`` says which (source pack/cluster/prior).

    Calibration costs no simulation of its own: a group with observed packs is simulated on a factor
    grid spanning ``CALIBRATION_FACTORS`` and each observed pack's SoH response at its observation
    dates is read off that run, re-phased exactly like its forecast. Groups without observed packs are
    simulated afterwards, on the band of their (then known) calibrations.

    ``workers`` > 1 runs groups in that many worker processes (each builds its own PyBaMM model, ~1-3 s
    with the compiled model cached on disk); use it where the caller may start processes (a script or
    a management command, not inside a daemonic Celery prefork worker).
    """
    observations = observations or {}
    clusters = clusters or {}
    refused: dict[str, ForecastRefused] = {}
    grouped: dict[tuple[Any, ...], list[tuple[ForecastJob, PreparedJob]]] = defaultdict(list)
    in_service: dict[str, dt.date] = {}
    chemistry: dict[str, str] = {}
    alone: dict[str, ForecastResult] = {}
    alone_days = 0
    for job in jobs:
        try:
            prepared = prepare(job)
            if job.calibration.two_factors:
                # A pack with its own two-factor fit (calendar and cycling rates in its own proportion)
                # is not on its group's one-factor grid: it is forecast on its own.
                alone[job.pack_id] = forecast_pack(job, settings)
                alone_days += alone[job.pack_id].simulated_days
                continue
        except ForecastRefused as refusal:
            refused[job.pack_id] = refusal
            continue
        grouped[duty_signature(prepared)].append((job, prepared))
        in_service[job.pack_id] = job.in_service_date
        chemistry[job.pack_id] = job.pack.chemistry
    observed: dict[str, list[HealthObservation]] = {}
    set_aside: dict[str, tuple[tuple[str, str, str], ...]] = {}
    for pid, obs in observations.items():
        if pid not in in_service:
            continue
        kept, aside = screen_observations(obs, in_service[pid])
        set_aside[pid] = tuple(aside)
        if kept:
            observed[pid] = kept
    # Biggest groups first, so that worker processes finish together.
    ordered = sorted(grouped.values(), key=len, reverse=True)
    with_obs = [items for items in ordered if any(job.pack_id in observed for job, _ in items)]
    without = [items for items in ordered if not any(job.pack_id in observed for job, _ in items)]

    runs = _simulate_all(
        with_obs, [[*CALIBRATION_FACTORS, *_band_span(items)] for items in with_obs], settings, workers
    )
    parts = {}
    for items, run in zip(with_obs, runs, strict=True):
        for job, _ in items:
            if job.pack_id in observed:
                part = _calibration_part(run, job, observed[job.pack_id])
                if part is not None:
                    parts[job.pack_id] = part
    priors = {pid: prior_calibration(chemistry[pid]) for pid in parts}
    own, cluster_value = fit_observed(parts, clusters, priors, set_aside)

    def calibrated(items: list[tuple[ForecastJob, PreparedJob]]) -> list[tuple[ForecastJob, PreparedJob]]:
        out = []
        for job, prepared in items:
            value: AgeingCalibration = (
                own.get(job.pack_id) or cluster_value.get(clusters.get(job.pack_id)) or job.calibration
            )
            if job.pack_id not in own and set_aside.get(job.pack_id):
                value = replace(value, set_aside=set_aside[job.pack_id])
            out.append((replace(job, calibration=value), prepared))
        return out

    with_obs = [calibrated(items) for items in with_obs]
    without = [calibrated(items) for items in without]
    for items, run in zip(with_obs, runs, strict=True):
        _cover(run, _band_span(items), settings)
    runs += _simulate_all(without, [_band_span(items) for items in without], settings, workers)
    results: dict[str, ForecastResult] = dict(alone)
    for items, run in zip(with_obs + without, runs, strict=True):
        for outcome in _assemble_group(run, items):
            if isinstance(outcome, ForecastRefused):
                refused[outcome.pack_id] = outcome
            else:
                results[outcome.pack_id] = outcome
    return FleetRun(results, len(ordered), alone_days + sum(run.simulated_days for run in runs), refused)
