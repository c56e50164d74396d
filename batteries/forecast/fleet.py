"""Fleet scale: group packs by a quantised duty signature, simulate each group once, answer per pack.

Packs of one chemistry whose duty and climate round to the same signature share one trajectory run.
That run covers a grid of rate factors (ln-spaced, spanning every member's P10..P90), and each pack's
P10/P50/P90 trajectories are interpolated in ln(factor) between grid members (SoH is smooth and
monotone in the rate factor). Packs that went into service on different dates share the run by age:
the run starts at the group's earliest in-service date and each pack's dates are shifted by its age
offset (the seasonal phase then differs by that offset modulo a year: a small, documented error).

Signature quantisation (see docs/forecast.md): daily energy 2 % of nameplate, start SoC 2.5 %, charge
C-rate 0.05 C, operating hours 1 h, hours at full SoC 1 h, opportunity charging yes/no, seasonal pack
temperature 1 K, usable SoC floor 5 %.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from .forecast import PreparedJob, assemble, band_factors, horizon_end, prepare, run_members
from .trajectory import MemberTrajectory, TrajectorySettings
from .types import ForecastJob, ForecastResult

#: Largest ln-step between grid factors; SoH is interpolated linearly in ln(factor) between them.
GRID_LOG_STEP = 0.2


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


def _interpolated(
    grid: list[float], members: list[MemberTrajectory], factor: float, shift: dt.timedelta
) -> MemberTrajectory:
    """The trajectory at ``factor`` from the two grid members around it, dates shifted by ``shift``."""
    logs = np.log(grid)
    k = int(np.clip(np.searchsorted(logs, math.log(factor)) - 1, 0, len(grid) - 2))
    a, b = members[k], members[k + 1]
    w = float((math.log(factor) - logs[k]) / (logs[k + 1] - logs[k]))
    n = min(len(a.dates), len(b.dates))
    out = MemberTrajectory(factor)
    out.dates = [d + shift for d in a.dates[:n]]
    out.soh_pct = [(1 - w) * x + w * y for x, y in zip(a.soh_pct[:n], b.soh_pct[:n], strict=True)]
    out.resistance_factor = [
        (1 - w) * x + w * y for x, y in zip(a.resistance_factor[:n], b.resistance_factor[:n], strict=True)
    ]
    stopped = [m for m in (a, b) if m.stopped is not None and len(m.dates) == n]
    if stopped:
        out.stopped = stopped[0].stopped + shift
        out.flags = sorted({f for m in stopped for f in m.flags})
    return out


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

    ``workers`` > 1 runs groups in threads (measure first: see bench/bench_forecast.py).
    """
    groups: dict[tuple, list[tuple[ForecastJob, PreparedJob]]] = defaultdict(list)
    for job in jobs:
        prepared = prepare(job)
        groups[duty_signature(prepared)].append((job, prepared))

    def run_group(items: list[tuple[ForecastJob, PreparedJob]]) -> tuple[list[ForecastResult], int]:
        shared = _quantised(items[0][1])
        start = min(job.in_service_date for job, _ in items)
        end = max(horizon_end(job) - (job.in_service_date - start) for job, _ in items)
        grid = factor_grid([f for job, _ in items for f in band_factors(job.calibration)])
        members, n_days = run_members(shared, start, end, grid, settings)
        out = []
        for job, prepared in items:
            shift = job.in_service_date - start
            low, mid, high = (_interpolated(grid, members, f, shift) for f in band_factors(job.calibration))
            own = PreparedJob(
                shared.chemistry,
                replace(shared.profile, km_per_day=prepared.profile.km_per_day),
                shared.season_temps_k,
                shared.usable_soc_min,
            )
            out.append(assemble(job, own, low, mid, high, 0))
        return out, n_days

    items_list = list(groups.values())
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outputs = list(pool.map(run_group, items_list))
    else:
        outputs = [run_group(items) for items in items_list]
    results = {r.pack_id: r for group_results, _ in outputs for r in group_results}
    return FleetRun(results, len(items_list), sum(n for _, n in outputs))
