"""Fleet scale: group packs by a quantised duty signature, simulate each group once, answer per pack.

Packs of one chemistry whose duty and climate round to the same signature share one trajectory run
(``simulate_members``) from the group's earliest in-service date. A pack's P10/P50/P90 trajectory is
then built from that run without another PyBaMM call. Two kinds of group run:

* **Two-factor design** (a group with observed packs, or packs given a two-factor cluster value): 6
  (calendar, cycling) pairs at the ln factors ``DESIGN_LOG_POINTS`` (the centre, the four axis points
  at 0.25x and 4x the prior - the fit range of ``calibrate_pack`` - and the corner fast in both). Each
  month, ln(fade) (fade = 100 - SoH) is the full quadratic in the two ln factors through the 6 members.
  Fade is close to separable (calendar part ~ the SEI factor, cycling part ~ the LAM factor, each
  roughly a power of its factor), which ln(fade) turns into a smooth, nearly quadratic surface: against
  members simulated between the design points (4 x 4 at +-0.35 and +-1.04 in ln), the surface is within
  0.06 pp over the first 3 years inside +-0.35 and 0.20 pp anywhere in the range on a bus block (as the
  3 x 3 biquadratic of 9 members used until 2026-12-06: 0.06 / 0.16 pp); where members' duties are cut
  it misses by several pp, as the 3 x 3 and the one-factor grid do (docs/forecast.md, "Surrogate
  accuracy"). Each observed pack's two factors are fitted (MAP, Laplace posterior, as
  ``calibrate_pack``) to its SoH response read off this surface.
* **Anchors** (``_refine``): where a design member near an observed pack's fit has its duty cut within the
  group run (``_near_a_cut``: the cut is a kink in SoH the surface misses by several pp), one extra member is
  simulated per cluster of such fits (``anchor_points``); packs (and band members) near an anchor are read from
  it, corrected by the surface's difference (``_anchored_series``), and the observed ones fitted again on the
  anchored response. On the fleet-gap bench's top-up packs: nightly P50 at 3 years 7.5 -> 1.3 pp from the truth.
* **One-factor grid** (a group whose packs all have one-factor calibrations, e.g. the prior): members on
  the common factor, ln-spaced at step <= ``GRID_LOG_STEP`` over every pack's P10..P90 factor; each
  month SoH is a cubic in the factor through the 4 nearest members that still run. Where the packs need no more
  distinct band factors than that (all on the prior: 3), exactly those factors instead; where they need more and
  the cubic's members are cut, the packs' band factors there are simulated after the grid run
  (``EXACT_BAND_FACTORS``, ``_refine_grids``: the cubic crosses the cut's kink).
* **Band anchors** (``BAND_ANCHORS``, off: +30 % simulated days in the 1,000-pack night): members at the anchored
  packs' posterior band members, so that their P10/P90 are read from their own side of the cut.

Common to both: each member of a group run takes its own step (``GROUP_SETTINGS``), and takes none past the months
the group's packs read (``group_months``; its steps are chosen for a run a year longer, so its trajectory is that
run's).

* **Age and season**: a pack that went into service ``o`` months after the group start is as old as
  the group run ``o`` months earlier, but sees the seasons shifted by ``o mod 12`` months. Its monthly
  SoH change is therefore taken from the group run's months with the *same calendar month*, at the
  two ages around the pack's (``r = o mod 12`` months older and ``12 - r`` younger), weighted
  linearly in age. Without this, a pack shifted by half a year is off by ~0.5 pp (summer vs winter).
* **Guard**: the pack's duty end is the first month its own SoH no longer fits its own duty, as in
  ``forecast_pack``, or the age at which the group members around its factor(s) had their duty cut, if
  earlier (``_GroupRun.cut_month``: a charge stopping at the upper voltage limit, which capacity alone
  misses); the trajectory goes on (the group run's members cut the duty the same way).
* Where members have stopped (their simulation could not go on), the rest are interpolated with a
  lower order (the nearest alone when one or two remain), and the series ends where none remains.

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
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from .calibrate import (
    Aside,
    fit_observed,
    observation_arrays,
    prior_calibration,
    same_lam_stress,
    screen_observations,
)
from .duty import representative_day
from .forecast import (
    PreparedJob,
    assemble,
    band_factors,
    combine_band,
    forecast_pack,
    horizon_end,
    posterior_members,
    prepare,
)
from .simulate import day_model
from .trajectory import MemberTrajectory, TrajectorySettings, add_months, simulate_members
from .types import AgeingCalibration, ForecastJob, ForecastRefused, ForecastResult, HealthObservation

#: Largest ln-step between grid factors (SoH is interpolated by a cubic in the factor between them).
GRID_LOG_STEP = 0.5
#: ln factors of the two-factor design's levels, 0.25x..4x the prior (module docstring).
DESIGN_LOG_FACTORS = (math.log(0.25), 0.0, math.log(4.0))
#: The design's members in (ln calendar, ln cycling): the centre, the four axis points and the fast diagonal
#: corner - the 6 points a full quadratic needs. The 3 x 3 (9 members, a biquadratic) until 2026-12-06: the
#: quadratic through these 6 agrees with the members simulated between the design points as closely inside
#: +-0.35 (docs/forecast.md, "Surrogate accuracy") for two thirds of the group's simulation.
DESIGN_LOG_POINTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (DESIGN_LOG_FACTORS[0], 0.0),
    (DESIGN_LOG_FACTORS[2], 0.0),
    (0.0, DESIGN_LOG_FACTORS[0]),
    (0.0, DESIGN_LOG_FACTORS[2]),
    (DESIGN_LOG_FACTORS[2], DESIGN_LOG_FACTORS[2]),
)
#: Fade below this (pp) is taken as this in ln(fade) (a new pack's first instants).
MIN_FADE_PP = 1e-6
#: A group run's members each take their own step (``TrajectorySettings.per_member_steps``): in lockstep the
#: design corner that fades fastest set every member's step (docs/forecast.md, "Speed").
GROUP_SETTINGS = TrajectorySettings(per_member_steps=True)
#: Refinement members ("anchors", docs/forecast.md, "Fleet"): observed packs' fits within this distance of each
#: other in ln (max over the two factors) share one extra member simulated at their mean fit.
ANCHOR_LOG_RADIUS = 0.25
#: A pack (or a band member) is read from the nearest anchor within this distance in ln, corrected by the
#: surface's difference between its factors and the anchor's; farther, off the surface alone.
ANCHOR_LOG_REACH = 0.5
#: An observed pack gets an anchor where a design member within this distance (ln, max over the two factors) of
#: its fit has its duty cut within the group run (``_near_a_cut``): the centre (the prior) for the packs around
#: it, not the 4x members alone.
ANCHOR_CUT_REACH = 1.0
#: Anchors on (``_refine``); False reads every pack off the design surface alone (the previous release, for
#: benchmarks).
ANCHORS = True
#: Band anchors (``_band_anchors``): with the anchors, also one member per cluster of the anchored packs'
#: posterior band members (``posterior_members``) farther than ``ANCHOR_LOG_RADIUS`` from every anchor, so that
#: the P10/P90 members are read from a simulation on their side of the cut. Off by default: on the fleet-gap
#: bench's top-up packs they bring P10/P90 at 3 years from 0.58/1.35 to 0.17/0.11 pp of ``forecast_pack`` at the
#: fit, but the 1,000-pack night simulated 30 % more days (+22 % CPU, loaded; docs/forecast.md, "Fleet"), past the
#: night's 2-minute budget. False: band members read from the P50's anchor (session 8).
BAND_ANCHORS = False
#: Band anchors cluster the band members within this distance (ln, max over the two factors; ``anchor_points``).
BAND_ANCHOR_RADIUS = ANCHOR_LOG_RADIUS
#: Exact band members in one-factor grids (``_grid_for``, ``_refine_grids``): a group whose packs need no more
#: distinct band factors than the grid has members is simulated at exactly those factors; where grid members
#: near a pack's band factor have their duty cut, that factor is simulated after the grid run. False: the
#: interpolating grid alone (session 8).
EXACT_BAND_FACTORS = True

Pair = tuple[float, float]


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
        prepared.lam_stress,
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
    return PreparedJob(prepared.chemistry, profile, sig[7], sig[8], prepared.lam_stress)


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


def design_pairs() -> list[Pair]:
    """The two-factor design's members: (calendar, cycling) factor pairs (``DESIGN_LOG_POINTS``)."""
    return [(math.exp(a), math.exp(b)) for a, b in DESIGN_LOG_POINTS]


def _design_basis(points: np.ndarray, size: int) -> np.ndarray:
    """Polynomial basis in (ln calendar, ln cycling): linear (3), quadratic (6) or biquadratic (9)."""
    a, b = points[:, 0], points[:, 1]
    columns = [np.ones_like(a), a, b]
    if size >= 6:
        columns += [a * a, a * b, b * b]
    if size >= 9:
        columns += [a * a * b, a * b * b, a * a * b * b]
    return np.stack(columns, axis=-1)


def surface_weights(design: np.ndarray, running: np.ndarray, theta: np.ndarray) -> np.ndarray | None:
    """Weights over the design's members (0 for those not ``running``) that interpolate a value at
    ``theta`` (ln calendar, ln cycling): the biquadratic through 9 members (a 3 x 3: exact at each, the
    tensor product of quadratics), the quadratic through 6-8 (exact through the 6 of ``DESIGN_LOG_POINTS``,
    least squares through more), a plane through 3-5, the nearest member with 1-2; None with none."""
    index = np.flatnonzero(running)
    size = 9 if len(index) >= 9 else 6 if len(index) >= 6 else 3 if len(index) >= 3 else 0
    if not len(index):
        return None
    weights = np.zeros(len(design))
    if not size:  # one or two left: the nearest goes on alone (as the one-factor grid extrapolates its slower members)
        weights[index[np.argmin(np.abs(design[index] - np.asarray(theta)).sum(axis=1))]] = 1.0
        return weights
    weights[index] = _design_basis(np.asarray(theta, dtype=float).reshape(1, 2), size)[0] @ np.linalg.pinv(
        _design_basis(design[index], size)
    )
    return weights


def _log_fade(soh_pct: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(100.0 - soh_pct, MIN_FADE_PP))


def _surface_series(
    design: np.ndarray, members: list[MemberTrajectory], theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Monthly SoH and resistance factor of the group run at ``theta`` (ln calendar, ln cycling), and
    the flags of the members that ended the series: ln(fade) interpolated over the design each month
    (``surface_weights``), resistance in the same weights."""
    lengths = np.array([len(m.soh_pct) for m in members])
    n = int(lengths.max())
    log_fade = np.full((len(members), n), np.nan)
    res_all = np.full((len(members), n), np.nan)
    for i, m in enumerate(members):
        log_fade[i, : lengths[i]] = _log_fade(np.asarray(m.soh_pct))
        res_all[i, : lengths[i]] = m.resistance_factor
    soh, res = np.full(n, np.nan), np.full(n, np.nan)
    end = n
    bounds = sorted({0, *(int(x) for x in lengths)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):  # months lo..hi-1 see the same running members
        weights = surface_weights(design, lengths >= hi, theta)
        if weights is None:
            end = lo
            break
        running = weights != 0
        soh[lo:hi] = 100.0 - np.exp(weights[running] @ log_fade[running, lo:hi])
        res[lo:hi] = weights[running] @ res_all[running, lo:hi]
    soh[0] = 100.0
    longest = [m for m in members if len(m.soh_pct) >= end and m.stopped is not None]
    if end < n:
        longest = [m for m in members if m.stopped is not None]
    return soh[:end], res[:end], sorted({f for m in longest for f in m.flags})


class _SurfaceResponse:
    """A pack's SoH at its observation dates as a function of (ln calendar, ln cycling): the design
    members' SoH there (re-phased like its forecast), interpolated in ln(fade) like the forecast; plus
    ``shift`` in ln(fade) per date where it is read from an anchor (``anchored``)."""

    def __init__(self, design: np.ndarray, dates: list[dt.date], log_fade: np.ndarray, shift: np.ndarray | None = None):
        self.design = design
        self.dates = dates
        self.log_fade = log_fade  # (members, dates), all finite
        self.shift = np.zeros(log_fade.shape[1]) if shift is None else shift

    def log_fade_at(self, theta: np.ndarray) -> np.ndarray:
        weights = surface_weights(self.design, np.ones(len(self.design), dtype=bool), theta)
        assert weights is not None
        return np.asarray(weights @ self.log_fade, dtype=float)

    def anchored(self, point: np.ndarray, anchor_soh_pct: np.ndarray) -> _SurfaceResponse:
        """The response read from an anchor member at ``point`` (its SoH at the dates), corrected by the
        surface's difference between the factors asked for and ``point`` (as ``_GroupRun.series``)."""
        shift = _log_fade(anchor_soh_pct) - self.log_fade_at(point)
        return _SurfaceResponse(self.design, self.dates, self.log_fade, shift)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        return np.asarray(100.0 - np.exp(self.log_fade_at(theta) + self.shift), dtype=float)


def _pack_trajectory(
    series: tuple[np.ndarray, np.ndarray, list[str]],
    label: float | Pair,
    start: dt.date,
    offset_months: int,
    end: dt.date,
    fits: Callable[[float], bool],
    cut_month: int | None = None,
) -> MemberTrajectory:
    """The pack's monthly trajectory from its in-service date ``start`` to ``end``, from the group run's
    ``series`` at the pack's factor(s) ``label`` (SoH, resistance, flags that ended it); the pack went
    into service ``offset_months`` after the group start. Its duty ends at the first month its SoH no
    longer ``fits`` (its own duty), or at age ``cut_month`` (months) if earlier: where the group's members
    had to cut their days (the charge stops at the upper voltage limit), which capacity alone misses."""
    soh_g, res_g, end_flags = series
    changes = _rephased_changes(np.diff(soh_g), offset_months)
    out = (
        MemberTrajectory(label[0], [start], [100.0], [1.0], cycling_factor=label[1])
        if isinstance(label, tuple)
        else MemberTrajectory(label, [start], [100.0], [1.0])
    )
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
        if out.duty_end is None and (not fits(soh) or (cut_month is not None and j >= cut_month)):
            out.mark_duty_end(out.dates[-1])
    return out


def _months_between(start: dt.date, later: dt.date) -> int:
    months = (later.year - start.year) * 12 + later.month - start.month
    return months - 1 if add_months(start, months) > later else months


@dataclass
class _GroupRun:
    """One duty group's simulation from the group's earliest in-service date: the members of a one-factor
    grid (``grid`` of floats) or of the two-factor design (``grid`` of (calendar, cycling) pairs)."""

    shared: PreparedJob
    start: dt.date
    end: dt.date
    grid: list[float] | list[Pair]
    members: list[MemberTrajectory]
    simulated_days: int
    #: Refinement members simulated after the fits (two-factor design only), at ``anchor_points`` (ln factors,
    #: anchors x 2): a pack near one is read from it (``series``, ``cut_month``).
    anchors: list[MemberTrajectory] = field(default_factory=list)
    anchor_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def nearest_anchor(self, theta: np.ndarray) -> int | None:
        """Index of the anchor nearest to ``theta`` (ln factors; max over the two) if within ``ANCHOR_LOG_REACH``."""
        if not self.anchors:
            return None
        distance = np.abs(self.anchor_points - theta).max(axis=1)
        k = int(np.argmin(distance))
        return k if distance[k] <= ANCHOR_LOG_REACH else None

    @property
    def design(self) -> np.ndarray | None:
        """ln factors of the two-factor design's members (members x 2), or None for a one-factor grid."""
        if not self.grid or not isinstance(self.grid[0], tuple):
            return None
        design: np.ndarray = np.log(np.asarray(self.grid, dtype=float))
        return design

    def cut_month(self, factors: float | Pair) -> int | None:
        """Age (months) at which a pack at ``factors`` has its duty cut, from the members' duty ends
        (interpolated like its SoH: ln-linear in the factor between the two grid members around it, the
        design's surface weights over the design); None where a member around it ran uncut to its end
        (the pack's own capacity check then decides alone)."""
        ages = [None if m.duty_end is None else _months_between(self.start, m.duty_end) for m in self.members]
        design = self.design
        if design is None:
            grid = np.log(np.asarray(self.grid, dtype=float))
            x = math.log(float(factors if not isinstance(factors, tuple) else factors[0]))
            if len(grid) == 1 or x <= grid[0] or x >= grid[-1]:
                return ages[0 if x <= grid[0] else -1]
            k = int(np.searchsorted(grid, x))  # grid[k - 1] < x <= grid[k]
            if factors in self.grid:  # a member at exactly this factor (EXACT_BAND_FACTORS): its own cut
                return ages[self.grid.index(factors)]  # type: ignore[arg-type]
            lo, hi = ages[k - 1], ages[k]
            if lo is None or hi is None:
                return None
            w = float((x - grid[k - 1]) / (grid[k] - grid[k - 1]))
            return round((1 - w) * lo + w * hi)
        pair = factors if isinstance(factors, tuple) else (factors, factors)
        theta = np.log(np.asarray(pair, dtype=float))
        everyone = np.ones(len(design), dtype=bool)
        weights = surface_weights(design, everyone, theta)
        assert weights is not None
        known = None if any(a is None for a in ages) else np.asarray(ages, dtype=float)
        near = self.nearest_anchor(theta)
        if near is None:
            return None if known is None else max(0, round(float(weights @ known)))
        # Near an anchor: its own cut, moved by the members' cut ages' difference where all were cut.
        anchor = self.anchors[near]
        if anchor.duty_end is None:
            return None
        age = float(_months_between(self.start, anchor.duty_end))
        if known is not None:
            at_anchor = surface_weights(design, everyone, self.anchor_points[near])
            assert at_anchor is not None
            age += float((weights - at_anchor) @ known)
        return max(0, round(age))

    def series(self, factors: float | Pair) -> tuple[np.ndarray, np.ndarray, list[str]]:
        design = self.design
        if design is None:
            assert not isinstance(factors, tuple)
            return _group_series([float(f) for f in self.grid if not isinstance(f, tuple)], self.members, factors)
        pair = factors if isinstance(factors, tuple) else (factors, factors)
        theta = np.log(np.asarray(pair, dtype=float))
        surface = _surface_series(design, self.members, theta)
        k = self.nearest_anchor(theta)
        if k is None:
            return surface
        return _anchored_series(surface, _surface_series(design, self.members, self.anchor_points[k]), self.anchors[k])


def _anchored_series(
    surface: tuple[np.ndarray, np.ndarray, list[str]],
    at_anchor: tuple[np.ndarray, np.ndarray, list[str]],
    anchor: MemberTrajectory,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A pack's series read from an anchor member: the anchor's ln(fade) plus the surface's difference between
    the pack's factors (``surface``) and the anchor's (``at_anchor``); resistance likewise, in its own units.
    Where the members' duties are cut the surface misses by several pp (docs/forecast.md, "Fleet"); its
    difference over the short distance to the anchor is what is left of that miss."""
    soh_s, res_s, flags_s = surface
    soh_a, res_a, _ = at_anchor
    own_soh, own_res = np.asarray(anchor.soh_pct, dtype=float), np.asarray(anchor.resistance_factor, dtype=float)
    n = min(len(soh_s), len(soh_a), len(own_soh))
    soh = 100.0 - np.exp(_log_fade(own_soh[:n]) + _log_fade(soh_s[:n]) - _log_fade(soh_a[:n]))
    soh[0] = 100.0
    res = own_res[:n] + res_s[:n] - res_a[:n]
    flags = set(flags_s) | (set(anchor.flags) if anchor.stopped is not None else set())
    return soh, res, sorted(flags)


def group_months(start: dt.date, jobs: Sequence[ForecastJob]) -> int:
    """Months a group run from ``start`` must cover so that every pack's trajectory reaches its horizon: a pack
    ``o`` months younger than the group start, ``j`` months from its in-service date to its horizon, reads the
    group's monthly changes up to ``j - 1 + o mod 12`` (``_rephased_changes``: the same calendar month, up to 11
    months older). Until session 8 the run went a year past the oldest pack's horizon instead (the re-phasing's
    11 months, counted from the horizon of a pack as old as the group): ~12 months no pack reads."""
    needed = 0
    for job in jobs:
        horizon, months = horizon_end(job), 0
        while add_months(job.in_service_date, months) < horizon:
            months += 1
        needed = max(needed, months + _months_between(start, job.in_service_date) % 12)
    return needed


def _simulate_group(
    items: list[tuple[ForecastJob, PreparedJob]], grid: list[float] | list[Pair], settings: TrajectorySettings | None
) -> _GroupRun:
    shared = _quantised(items[0][1])
    start = min(job.in_service_date for job, _ in items)
    # The steps are chosen for a run to a year beyond the oldest-equivalent horizon (as until session 8), but no
    # member steps on past the months packs read (``group_months``): the same trajectories, ~5 % fewer days.
    end = max(horizon_end(job) - (job.in_service_date - start) for job, _ in items) + dt.timedelta(days=366)
    until = add_months(start, group_months(start, [job for job, _ in items]))
    members, n_days = simulate_members(
        day_model(shared.chemistry).with_lam_stress(shared.lam_stress),
        shared.profile,
        list(shared.season_temps_k),
        shared.usable_soc_min,
        start,
        end,
        grid,
        settings,
        until=until,
    )
    return _GroupRun(shared, start, end, grid, members, n_days)


def _observed_soh(
    start: dt.date, members: Sequence[MemberTrajectory], job: ForecastJob, dates: list[dt.date]
) -> np.ndarray:
    """Each member's SoH at ``dates`` for this pack, re-phased from a group run (from ``start``) like its
    forecast (members x dates; NaN past a member's end)."""
    offset = _months_between(start, job.in_service_date)
    x = np.array([d.toordinal() for d in dates], dtype=float)
    soh = np.full((len(members), len(dates)), np.nan)
    for i, member in enumerate(members):
        series = 100.0 + np.concatenate([[0.0], np.cumsum(_rephased_changes(np.diff(member.soh_pct), offset))])
        months = np.array([add_months(job.in_service_date, k).toordinal() for k in range(len(series))], dtype=float)
        soh[i] = np.interp(x, months, series, right=np.nan)
    return soh


def _calibration_part(
    run: _GroupRun, job: ForecastJob, observations: Sequence[HealthObservation], aside: list[Aside]
) -> tuple[_SurfaceResponse, np.ndarray, np.ndarray] | None:
    """The pack's response on the group's two-factor design with its observed SoH and uncertainties, or
    None if no observation is usable. An observation is set aside (reason appended to ``aside``) where a
    design member no longer runs at its date (the model cannot simulate the duty there)."""
    design = run.design
    assert design is not None
    dates, soh, unc = observation_arrays(observations)
    response = _observed_soh(run.start, run.members, job, dates)
    usable = np.isfinite(response).all(axis=0)
    for date, value, ok in zip(dates, soh, usable, strict=True):
        if not ok:
            aside.append((date.isoformat(), repr(float(value)), "the model cannot simulate the duty at this date"))
    if not usable.any():
        return None
    kept = [d for d, ok in zip(dates, usable, strict=True) if ok]
    return _SurfaceResponse(design, kept, _log_fade(response[:, usable])), soh[usable], unc[usable]


def _fits_from(day_fits: Callable[[float], bool]) -> Callable[[float], bool]:
    """``day_fits`` (does the duty fit a pack at this SoH, %) as one comparison: the duty fits from a
    threshold SoH up (a smaller capacity only deepens the same day's discharge), found by bisection to
    the float's resolution. Asking ``representative_day`` every month of every pack's five trajectories
    was a third of the fleet's assembly time."""
    if not day_fits(100.0):
        return lambda soh_pct: False
    lo, hi = 0.0, 100.0  # day_fits(hi) holds; below lo nothing is known to fit
    if day_fits(lo):
        return lambda soh_pct: True
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if day_fits(mid):
            hi = mid
        else:
            lo = mid
    return lambda soh_pct: soh_pct >= hi


def _day_fits(prepared: PreparedJob, soh_pct: float) -> bool:
    """Does the pack's whole day fit it at this SoH (%)? Capacity only: the season does not matter."""
    day = representative_day(prepared.profile, soh_pct / 100.0, prepared.season_temps_k[0], prepared.usable_soc_min)
    return day.feasible


def _assemble_group(
    run: _GroupRun, items: list[tuple[ForecastJob, PreparedJob]]
) -> list[ForecastResult | ForecastRefused]:
    shared = run.shared
    series: dict[float | Pair, tuple[np.ndarray, np.ndarray, list[str]]] = {}  # packs of a cluster share factors

    def series_at(factors: float | Pair) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if factors not in series:
            series[factors] = run.series(factors)
        return series[factors]

    out: list[ForecastResult | ForecastRefused] = []
    for job, prepared in items:
        offset = _months_between(run.start, job.in_service_date)
        # The pack's own duty decides when it no longer fits (the quantised one moved the date by up to a
        # month of fade either way; 0.3 ms a pack).
        fits = _fits_from(partial(_day_fits, prepared))

        def trajectory(
            factors: float | Pair, job: ForecastJob = job, offset: int = offset, fits: Callable[[float], bool] = fits
        ) -> MemberTrajectory:
            return _pack_trajectory(
                series_at(factors), factors, job.in_service_date, offset, horizon_end(job), fits, run.cut_month(factors)
            )

        if job.calibration.two_factors:  # the posterior's band, as forecast_pack builds it
            trajectories = [trajectory(pair) for pair in posterior_members(job.calibration)]
            mid = trajectories[0]
            low, high = combine_band(
                mid, [(trajectories[k], trajectories[k + 1]) for k in range(1, len(trajectories), 2)]
            )
        else:
            low, mid, high = (trajectory(f) for f in band_factors(job.calibration))
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


def anchor_points(thetas: Sequence[np.ndarray], radius: float = ANCHOR_LOG_RADIUS) -> list[np.ndarray]:
    """Where to simulate anchors for these fits (ln factors): greedily, the fit with the most others within
    ``radius`` (max over the two ln factors) and those others make a cluster, anchored at their mean."""
    left = [np.asarray(t, dtype=float) for t in thetas]
    out = []
    while left:
        near = [[j for j, u in enumerate(left) if np.abs(u - t).max() <= radius] for t in left]
        best = max(range(len(left)), key=lambda i: (len(near[i]), -i))
        out.append(np.mean([left[j] for j in near[best]], axis=0))
        left = [t for j, t in enumerate(left) if j not in near[best]]
    return out


def band_anchor_points(
    calibrations: Sequence[AgeingCalibration], anchors: Sequence[np.ndarray], radius: float = ANCHOR_LOG_RADIUS
) -> list[np.ndarray]:
    """Band anchors (``BAND_ANCHORS``): the posterior band members (``posterior_members`` past the MAP, ln
    factors) of these fits that are farther than ``ANCHOR_LOG_RADIUS`` from every anchor in ``anchors`` (the
    well-identified axis's members usually are not), clustered as ``anchor_points`` within ``radius``. A band
    member 0.4-0.5 ln from its MAP along the poorly identified axis can sit on the other side of the cut from the
    MAP's anchor, where the surface's difference does not know its own cut."""
    points = []
    for calibration in calibrations:
        if not calibration.two_factors:
            continue
        for pair in posterior_members(calibration)[1:]:
            theta = np.log(np.asarray(pair, dtype=float))
            if all(np.abs(theta - a).max() > ANCHOR_LOG_RADIUS for a in anchors):
                points.append(theta)
    return anchor_points(points, radius) if points else []


def _log_factors(calibration: AgeingCalibration) -> np.ndarray:
    """(ln calendar, ln cycling) of a fit; a one-factor value scales both."""
    return np.log([calibration.rate_factor, calibration.cycling_factor or calibration.rate_factor])


def _near_a_cut(run: _GroupRun, theta: np.ndarray) -> bool:
    """Does the surface miss at ``theta`` (ln factors): is a design member within ``ANCHOR_CUT_REACH`` of it cut
    within the group run (the kink)? Where only the far fast-cycling members are cut (a capacity cut after 5-13
    years), the packs around the prior gained nothing from an anchor (docs/forecast.md, "Fleet")."""
    design = run.design
    assert design is not None
    near = np.abs(design - theta).max(axis=1) <= ANCHOR_CUT_REACH
    return any(m.duty_end is not None for m, ok in zip(run.members, near, strict=True) if ok)


def _refine(
    groups: list[list[tuple[ForecastJob, PreparedJob]]],
    runs: list[_GroupRun],
    own: dict[str, AgeingCalibration],
    parts: Mapping[str, tuple[_SurfaceResponse, np.ndarray, np.ndarray]],
    priors: Mapping[str, AgeingCalibration],
    set_aside: Mapping[str, Sequence[Aside]],
    calibrated_until: Mapping[str, dt.date],
    settings: TrajectorySettings | None,
    workers: int,
) -> None:
    """Anchors where the surface misses (``_near_a_cut``): members simulated at the observed packs' fits there
    (clustered, ``anchor_points``), attached to their group runs; then each observed pack near an anchor is
    fitted again on the anchored response (the members' kink reaches back into the observation dates)."""
    todo: list[tuple[int, list[np.ndarray]]] = []
    for i, (items, run) in enumerate(zip(groups, runs, strict=True)):
        if run.design is None:
            continue
        fitted = [own[job.pack_id] for job, _ in items if job.pack_id in own]
        thetas = [t for t in (_log_factors(c) for c in fitted) if _near_a_cut(run, t)]
        if thetas:
            todo.append((i, anchor_points(thetas)))
    extra = _simulate_all(
        [groups[i] for i, _ in todo],
        [[(float(a), float(b)) for a, b in np.exp(points)] for _, points in todo],
        settings,
        workers,
    )
    again = {}
    for (i, points), anchors in zip(todo, extra, strict=True):
        run = runs[i]
        run.anchors, run.anchor_points = anchors.members, np.asarray(points)
        run.simulated_days += anchors.simulated_days
        for job, _ in groups[i]:
            pid = job.pack_id
            if pid not in own or pid not in parts:
                continue
            c = own[pid]
            k = run.nearest_anchor(_log_factors(c))
            if k is None:
                continue
            response, soh, unc = parts[pid]
            at_anchor = _observed_soh(run.start, [run.anchors[k]], job, response.dates)[0]
            if np.isfinite(at_anchor).all():
                again[pid] = (response.anchored(run.anchor_points[k], at_anchor), soh, unc)
    refitted, _ = fit_observed(again, {}, priors, set_aside, calibrated_until)
    own.update(refitted)
    if BAND_ANCHORS:
        _band_anchors(groups, runs, own, [i for i, _ in todo], settings, workers)


def _band_anchors(
    groups: list[list[tuple[ForecastJob, PreparedJob]]],
    runs: list[_GroupRun],
    own: Mapping[str, AgeingCalibration],
    anchored: Sequence[int],
    settings: TrajectorySettings | None,
    workers: int,
) -> None:
    """Band anchors (``BAND_ANCHORS``) for the anchored groups: members at the posterior band members of the
    (refitted) observed fits near a cut that no anchor is near (``band_anchor_points``), simulated in one more
    batch after the refit (at the first fit's band they sat up to ~0.2 ln from the refitted band members, which
    left the P10 0.6 pp from ``forecast_pack`` at the fit on the fleet-gap bench's fastest top-up pack) and
    attached to the group run's anchors: a band member is read from the nearest anchor, as the P50."""
    todo: list[tuple[int, list[np.ndarray]]] = []
    for i in anchored:
        run = runs[i]
        fitted = [own[job.pack_id] for job, _ in groups[i] if job.pack_id in own]
        near = [c for c in fitted if _near_a_cut(run, _log_factors(c))]
        points = band_anchor_points(near, list(run.anchor_points), BAND_ANCHOR_RADIUS)
        if points:
            todo.append((i, points))
    extra = _simulate_all(
        [groups[i] for i, _ in todo],
        [[(float(a), float(b)) for a, b in np.exp(points)] for _, points in todo],
        settings,
        workers,
    )
    for (i, points), anchors in zip(todo, extra, strict=True):
        run = runs[i]
        run.anchors = [*run.anchors, *anchors.members]
        run.anchor_points = np.concatenate([run.anchor_points, np.asarray(points)])
        run.simulated_days += anchors.simulated_days


@dataclass(frozen=True)
class FleetRun:
    """Per-pack results, and the packs the model refused (pack id -> flag and reason)."""

    results: dict[str, ForecastResult]
    n_groups: int
    simulated_days: int
    refused: dict[str, ForecastRefused]


def _simulate_all(
    groups: list[list[tuple[ForecastJob, PreparedJob]]],
    grids: list[list[float] | list[Pair]],
    settings: TrajectorySettings | None,
    workers: int,
) -> list[_GroupRun]:
    if workers > 1 and len(groups) > 1:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding solver threads
        with ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=context) as pool:
            return list(pool.map(_simulate_group, groups, grids, [settings] * len(groups)))
    return [_simulate_group(items, grid, settings) for items, grid in zip(groups, grids, strict=True)]


def _grid_for(items: list[tuple[ForecastJob, PreparedJob]]) -> list[float] | list[Pair]:
    """The two-factor design if any pack of the group has a two-factor calibration, else the one-factor
    grid over the packs' band factors: exactly those factors where they are no more than the interpolating
    grid's members (``EXACT_BAND_FACTORS``; the prior's 3 instead of 4), so no pack's band is interpolated."""
    if any(job.calibration.two_factors for job, _ in items):
        return design_pairs()
    factors = [f for job, _ in items for f in band_factors(job.calibration)]
    grid = factor_grid(factors)
    exact = sorted(set(factors))
    return exact if EXACT_BAND_FACTORS and len(exact) <= len(grid) else grid


def _refine_grids(
    groups: list[list[tuple[ForecastJob, PreparedJob]]],
    runs: list[_GroupRun],
    settings: TrajectorySettings | None,
    workers: int,
) -> None:
    """Members at exactly the packs' band factors where the one-factor grid's interpolation crosses a cut: a
    band factor that is not a grid member and whose 4 nearest grid members (the cubic's stencil) include one
    whose duty was cut within the months the pack reads is simulated after the grid run (one more batch per such
    group) and joins the grid (the cubic through the 4 nearest members is then that member alone)."""
    todo: list[tuple[int, list[float]]] = []
    for i, (items, run) in enumerate(zip(groups, runs, strict=True)):
        if run.design is not None:
            continue
        cut_ages = np.array(
            [np.inf if m.duty_end is None else _months_between(run.start, m.duty_end) for m in run.members]
        )
        if not np.isfinite(cut_ages).any():
            continue
        grid = [float(f) for f in run.grid if not isinstance(f, tuple)]
        log_grid = np.log(np.asarray(grid))
        extra: set[float] = set()
        for job, _ in items:
            # The group months the pack reads (``group_months``): a cut after them does not reach its forecast.
            reads = group_months(run.start, [job])
            for f in set(band_factors(job.calibration)) - set(grid) - extra:
                stencil = np.argsort(np.abs(log_grid - math.log(f)), kind="stable")[:4]
                if (cut_ages[stencil] < reads).any():
                    extra.add(f)
        if extra:
            todo.append((i, sorted(extra)))
    more = _simulate_all([groups[i] for i, _ in todo], [extra for _, extra in todo], settings, workers)
    for (i, _), added in zip(todo, more, strict=True):
        run = runs[i]
        merged = sorted(zip([*run.grid, *added.grid], [*run.members, *added.members], strict=True), key=lambda p: p[0])
        run.grid = [f for f, _ in merged]
        run.members = [m for _, m in merged]
        run.simulated_days += added.simulated_days


def forecast_fleet(
    jobs: Sequence[ForecastJob],
    settings: TrajectorySettings | None = None,
    workers: int = 1,
    observations: Mapping[str, Sequence[HealthObservation]] | None = None,
    clusters: Mapping[str, Hashable] | None = None,
    priors: Mapping[str, AgeingCalibration] | None = None,
) -> FleetRun:
    """Forecast many packs, calibrating them on the way; returns per-pack results keyed by ``pack_id``.

    Without ``observations`` each pack uses ``job.calibration``; a job that comes with a two-factor
    calibration (``calibrate_pack``) is forecast on its own with ``forecast_pack`` (exactly its own
    simulation) and its observations are not refitted here. With ``observations`` (pack id -> its
    health observations), a pack with at least one usable observation gets its own two factors
    (calendar and cycling, MAP against the chemistry prior, like ``calibrate_pack``); a pack without
    takes its cluster's value (``clusters``: pack id -> any hashable key; a cluster value needs two or
    more fitted packs, whose observations are pooled), else keeps ``job.calibration`` (by default the
    prior). ``result.calibration`` says which (source pack/cluster/prior). ``priors`` (pack id -> the prior
    its own fit starts from; default the chemistry preset's): the service gives an observed pack its battery
    model's prior learnt from the other packs' checks (``pooled.model_prior``).

    Calibration costs no simulation of its own: a group with observed packs is simulated on the
    two-factor design (6 members) and each observed pack's SoH response at its observation dates is read
    off that run, re-phased exactly like its forecast; where design members near the fits have their duty
    cut, one anchor member per cluster of fits is simulated after the fits (module docstring). Groups
    without observed packs are simulated afterwards: on the design if a pack got a two-factor cluster
    value, else on the one-factor band grid of their calibrations (3-4 members for the prior).

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
                # A pack that comes with its own two-factor fit is forecast exactly on its own.
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
    set_aside: dict[str, list[Aside]] = {}
    for pid, obs in observations.items():
        if pid not in in_service:
            continue
        kept, aside = screen_observations(obs, in_service[pid])
        set_aside[pid] = list(aside)
        if kept:
            observed[pid] = kept
    # Biggest groups first, so that worker processes finish together.
    ordered = sorted(grouped.values(), key=len, reverse=True)
    with_obs = [items for items in ordered if any(job.pack_id in observed for job, _ in items)]
    without = [items for items in ordered if not any(job.pack_id in observed for job, _ in items)]

    group_settings = settings or GROUP_SETTINGS
    runs = _simulate_all(with_obs, [design_pairs() for _ in with_obs], group_settings, workers)
    parts = {}
    for items, run in zip(with_obs, runs, strict=True):
        for job, _ in items:
            if job.pack_id in observed:
                part = _calibration_part(run, job, observed[job.pack_id], set_aside[job.pack_id])
                if part is not None:
                    parts[job.pack_id] = part
    given_priors = priors or {}
    priors = {pid: given_priors.get(pid) or prior_calibration(chemistry[pid]) for pid in parts}
    # The last check each fit saw: the band's shape term (forecast.shape_discrepancy) widens after it.
    last_check = {pid: max(o.date for o in observed[pid]) for pid in parts}
    own, cluster_value = fit_observed(parts, clusters, priors, set_aside, last_check)
    if ANCHORS:
        _refine(with_obs, runs, own, parts, priors, set_aside, last_check, group_settings, workers)
    # A fit says whose checks its prior was learnt from (0: the preset's).
    own = {pid: replace(c, model_packs=priors[pid].model_packs) if pid in priors else c for pid, c in own.items()}

    def calibrated(items: list[tuple[ForecastJob, PreparedJob]]) -> list[tuple[ForecastJob, PreparedJob]]:
        out = []
        for job, prepared in items:
            value: AgeingCalibration = (
                own.get(job.pack_id) or cluster_value.get(clusters.get(job.pack_id)) or job.calibration
            )
            if job.pack_id not in own and set_aside.get(job.pack_id):
                value = replace(value, set_aside=tuple(sorted(set_aside[job.pack_id])))
            # The battery model's LAM stress factor is the job's: the group was simulated at it.
            value = same_lam_stress(value, job.calibration)
            out.append((replace(job, calibration=value), prepared))
        return out

    with_obs = [calibrated(items) for items in with_obs]
    without = [calibrated(items) for items in without]
    later = _simulate_all(without, [_grid_for(items) for items in without], group_settings, workers)
    if EXACT_BAND_FACTORS:
        _refine_grids(without, later, group_settings, workers)
    runs += later
    results: dict[str, ForecastResult] = dict(alone)
    for items, run in zip(with_obs + without, runs, strict=True):
        for outcome in _assemble_group(run, items):
            if isinstance(outcome, ForecastRefused):
                refused[outcome.pack_id] = outcome
            else:
                results[outcome.pack_id] = outcome
    return FleetRun(results, len(ordered), alone_days + sum(run.simulated_days for run in runs), refused)
