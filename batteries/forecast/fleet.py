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
* **Guard**: the pack stops at the first month its own SoH no longer fits its (quantised) duty, as in
  ``forecast_pack``.

Signature quantisation (see docs/forecast.md): daily energy 2 % of nameplate, start SoC 2.5 %, charge
C-rate 0.05 C, operating hours 1 h, hours at full SoC 1 h, opportunity charging yes/no, seasonal pack
temperature 1 K, usable SoC floor 5 %.
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from .duty import representative_day
from .forecast import PreparedJob, assemble, band_factors, horizon_end, prepare, run_members
from .trajectory import FLAG_DUTY_EXCEEDS_CAPACITY, MemberTrajectory, TrajectorySettings, add_months
from .types import ForecastJob, ForecastResult

#: Largest ln-step between grid factors (SoH is interpolated by a cubic in the factor between them).
GRID_LOG_STEP = 0.5


def _q(value: float, step: float) -> float:
    return round(round(value / step) * step, 6)


def duty_signature(prepared: PreparedJob) -> tuple:
    """The quantised signature packs are grouped by (hashable)."""
    p = prepared.profile
    return (
        prepared.chemistry,
        _q(p.energy_fraction, 0.02),
        _q(p.start_soc, 0.025),
        _q(p.charge_c_rate, 0.05),
        _q(p.operating_hours, 1.0),
        p.opportunity_charge,
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
    service ``offset_months`` after the group start (module docstring: same calendar month, ages around
    the pack's)."""
    soh_g, res_g, end_flags = _group_series(grid, members, factor)
    step = np.diff(soh_g)  # step[k]: SoH change in group month k
    r = offset_months % 12
    out = MemberTrajectory(factor, [start], [100.0], [1.0])
    soh, j = 100.0, 0
    while out.dates[-1] < end:
        older, younger = j + r, j + r - 12
        if older < len(step) and younger >= 0:
            change = ((12 - r) * step[older] + r * step[younger]) / 12
        elif older < len(step):
            change = step[older]
        elif younger >= 0 and younger < len(step):
            change = step[younger]
        else:  # the group run ends here: its horizon, or its members stopped (then so does the pack)
            if end_flags:
                out.stopped, out.flags = out.dates[-1], list(end_flags)
            break
        soh += float(change)
        j += 1
        out.dates.append(add_months(start, j))
        out.soh_pct.append(soh)
        out.resistance_factor.append(float(res_g[min(j, len(res_g) - 1)]))
        if not fits(soh):
            out.stopped, out.flags = out.dates[-1], [FLAG_DUTY_EXCEEDS_CAPACITY]
            break
    return out


def _months_between(start: dt.date, later: dt.date) -> int:
    months = (later.year - start.year) * 12 + later.month - start.month
    return months - 1 if add_months(start, months) > later else months


def _run_group(
    items: list[tuple[ForecastJob, PreparedJob]], settings: TrajectorySettings | None
) -> tuple[list[ForecastResult], int]:
    shared = _quantised(items[0][1])
    start = min(job.in_service_date for job, _ in items)
    # A year beyond the oldest-equivalent horizon: the re-phasing reads up to 11 months ahead.
    end = max(horizon_end(job) - (job.in_service_date - start) for job, _ in items) + dt.timedelta(days=366)
    grid = factor_grid([f for job, _ in items for f in band_factors(job.calibration)])
    members, n_days = run_members(shared, start, end, grid, settings)

    def fits(soh_pct: float) -> bool:
        day = representative_day(shared.profile, soh_pct / 100.0, shared.season_temps_k[0], shared.usable_soc_min)
        return day.feasible

    out = []
    for job, prepared in items:
        offset = _months_between(start, job.in_service_date)
        pack_end = horizon_end(job)
        low, mid, high = (
            _pack_trajectory(grid, members, f, job.in_service_date, offset, pack_end, fits)
            for f in band_factors(job.calibration)
        )
        own = PreparedJob(
            shared.chemistry,
            replace(shared.profile, km_per_day=prepared.profile.km_per_day),
            shared.season_temps_k,
            shared.usable_soc_min,
        )
        out.append(assemble(job, own, low, mid, high, 0))
    return out, n_days


@dataclass(frozen=True)
class FleetRun:
    results: dict[str, ForecastResult]
    n_groups: int
    simulated_days: int


def forecast_fleet(
    jobs: Sequence[ForecastJob],
    settings: TrajectorySettings | None = None,
    workers: int = 1,
) -> FleetRun:
    """Forecast many packs; returns per-pack results keyed by ``pack_id``, plus run statistics.

    ``workers`` > 1 runs groups in that many worker processes (each builds its own PyBaMM model, ~1-3 s
    with the compiled model cached on disk); use it where the caller may start processes (a script or
    a management command, not inside a daemonic Celery prefork worker).
    """
    groups: dict[tuple, list[tuple[ForecastJob, PreparedJob]]] = defaultdict(list)
    for job in jobs:
        prepared = prepare(job)
        groups[duty_signature(prepared)].append((job, prepared))
    # Biggest groups first, so that worker processes finish together.
    items_list = sorted(groups.values(), key=len, reverse=True)
    if workers > 1 and len(items_list) > 1:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding solver threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            outputs = list(pool.map(_run_group, items_list, [settings] * len(items_list)))
    else:
        outputs = [_run_group(items, settings) for items in items_list]
    results = {r.pack_id: r for group_results, _ in outputs for r in group_results}
    return FleetRun(results, len(items_list), sum(n for _, n in outputs))
