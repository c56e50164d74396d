"""One pack's forecast: SoH and resistance to the horizon, crossings, remaining life and a P10/P50/P90 band.

The band comes from the lognormal ageing rate factor: the P10 (pessimistic) SoH is the trajectory at
the 90th percentile of the rate, P90 at the 10th (fade is monotone in the rate). The three are
simulated together (members of one trajectory, each on its own steps, one batched solve per re-simulation).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .duty import DutyProfile, duty_profile, profile_refusal, representative_day, representative_temperatures_k
from .presets import get_preset
from .simulate import day_model
from .trajectory import MemberTrajectory, TrajectorySettings, add_months, simulate_members
from .types import AgeingCalibration, Crossing, ForecastJob, ForecastPoint, ForecastRefused, ForecastResult

#: Flags of a refused forecast.
FLAG_OUTSIDE_MODEL_RANGE = "outside_model_range"
FLAG_NOT_FINITE = "not_finite"

Z90 = 1.2815515655446004  # standard normal quantile of 0.9


@dataclass(frozen=True)
class PreparedJob:
    """A job reduced to what the simulation needs (also the basis of the fleet's duty signature)."""

    chemistry: str
    profile: DutyProfile
    season_temps_k: tuple[float, ...]
    usable_soc_min: float
    #: The battery model's LAM C-rate stress factor (``AgeingCalibration.lam_stress_factor``): packs of
    #: different values are never simulated together.
    lam_stress: float = 1.0


def prepare(job: ForecastJob) -> PreparedJob:
    """The job reduced to what the simulation needs; raises ``ForecastRefused`` for a duty the model
    cannot represent (e.g. more charging events a day than it holds, a missing figure)."""
    preset = get_preset(job.pack.chemistry)
    profile = duty_profile(job.pack, job.duty, job.climate)
    refusal = profile_refusal(profile, job.pack.usable_soc_min)
    if refusal is None and not all(math.isfinite(t) for t in job.climate.monthly_mean_c):
        refusal = "the climate has a missing temperature"
    if refusal is not None:
        raise ForecastRefused(job.pack_id, FLAG_OUTSIDE_MODEL_RANGE, refusal)
    temps = representative_temperatures_k(
        job.climate, profile, preset.activation_energy_j_mol, preset.plating_exchange_current_a_m2 > 0.0
    )
    return PreparedJob(
        job.pack.chemistry, profile, tuple(temps), job.pack.usable_soc_min, job.calibration.lam_stress_factor
    )


def band_factors(calibration: AgeingCalibration) -> tuple[float, float, float]:
    """Rate factors giving the SoH P10, P50, P90 (P10 SoH = fast ageing = high rate)."""
    f, s = calibration.rate_factor, calibration.log_sigma
    return f * math.exp(Z90 * s), f, f * math.exp(-Z90 * s)


#: A posterior axis whose P10-P90 half-width in ln(factor) is below this is not simulated (no spread).
MIN_AXIS_LOG_SPREAD = 0.01


def log_covariance(calibration: AgeingCalibration) -> np.ndarray:
    """Covariance of (ln calendar factor, ln cycling factor) of a two-factor calibration."""
    s1, s2, rho = calibration.log_sigma, calibration.cycling_log_sigma, calibration.log_correlation
    return np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]])


def posterior_members(calibration: AgeingCalibration) -> list[tuple[float, float]]:
    """(calendar, cycling) factor pairs to simulate for a two-factor calibration's band: the MAP, then
    for each principal axis of the posterior covariance the points 1.28 standard deviations either side
    (the 10 % and 90 % quantiles along that axis). ``combine_band`` turns them into P10/P90."""
    assert calibration.cycling_factor is not None
    centre = np.array([math.log(calibration.rate_factor), math.log(calibration.cycling_factor)])
    values, vectors = np.linalg.eigh(log_covariance(calibration))
    out = [(calibration.rate_factor, calibration.cycling_factor)]
    for k in range(2):
        step = Z90 * math.sqrt(max(float(values[k]), 0.0)) * vectors[:, k]
        if float(np.abs(step).max()) < MIN_AXIS_LOG_SPREAD:
            continue
        for sign in (1.0, -1.0):
            a, b = np.exp(centre + sign * step)
            out.append((float(a), float(b)))
    return out


def combine_band(
    mid: MemberTrajectory, pairs: list[tuple[MemberTrajectory, MemberTrajectory]]
) -> tuple[MemberTrajectory, MemberTrajectory]:
    """P10 and P90 trajectories from the MAP member and the members either side of it on each posterior
    axis (``posterior_members``). SoH is close to linear in the log factors over the band, so its spread
    is the root sum of squares of the axes' offsets; each side (down, up) is taken from the member that
    goes that way, so an asymmetric response keeps its asymmetry and P10 <= P50 <= P90 by construction.
    A member that stopped stops the band with it (and the forecast is refused in ``assemble``)."""
    everyone = [mid, *(m for pair in pairs for m in pair)]
    low, high = MemberTrajectory(mid.rate_factor), MemberTrajectory(mid.rate_factor)
    last = min(m.dates[-1] for m in everyone if m.dates) if all(m.dates for m in everyone) else None
    for date, soh, resistance in zip(mid.dates, mid.soh_pct, mid.resistance_factor, strict=True):
        if last is None or date > last:
            break
        down = up = 0.0
        for plus, minus in pairs:
            offsets = (plus.value_at(date, plus.soh_pct) - soh, minus.value_at(date, minus.soh_pct) - soh)
            down += min(*offsets, 0.0) ** 2
            up += max(*offsets, 0.0) ** 2
        for member, value in ((low, soh - math.sqrt(down)), (high, soh + math.sqrt(up))):
            member.dates.append(date)
            member.soh_pct.append(value)
            member.resistance_factor.append(resistance)
    for member in (low, high):
        member.flags = sorted({f for m in everyone for f in m.flags})
        stops = [m.stopped for m in everyone if m.stopped is not None]
        member.stopped = min(stops) if stops else None
        ends = [m.duty_end for m in everyone if m.duty_end is not None]
        member.duty_end = min(ends) if ends else None
    return low, high


#: Shape-of-fade discrepancy of a calibrated band (issue 13, session 8). Two rate factors scale the
#: model's two mechanisms; they cannot change the shape of fade in time, and that shape is model-form
#: uncertainty: fade ~ t^z with z about 0.5 for diffusion-limited SEI, 0.75 in common calendar-ageing
#: fits and 1 for reaction-limited SEI or throughput-driven loss of active material; evfleet's fade
#: behaves as z ~ 0.9 over 3 years (docs/forecast.md, session 8). So z is taken as uncertain by this
#: standard deviation (P10-P90 +-0.19) around the model's: the loss fitted at the last check (age T)
#: extrapolates to age t with a lognormal factor of sigma SHAPE_EXPONENT_SIGMA x ln(t / T). Zero up to
#: the last check, it shrinks as the span grows against the horizon (3 y: +-0.36 ln from 180 days,
#: +-0.08 from 2 years). Set from that literature range before it was measured against the references.
SHAPE_EXPONENT_SIGMA = 0.15


def shape_discrepancy(
    job: ForecastJob, low: MemberTrajectory, mid: MemberTrajectory, high: MemberTrajectory
) -> tuple[MemberTrajectory, MemberTrajectory]:
    """P10 and P90 trajectories with the shape-of-fade discrepancy (``SHAPE_EXPONENT_SIGMA``) added to a
    calibrated band beyond its last check (``AgeingCalibration.calibrated_until``): at age t past the
    check at age T, the P50's loss (100 - SoH) times exp(+-1.28 sigma ln(t / T)) gives the offsets,
    folded into each side with the band's own offset as one more axis (root sum of squares, as
    ``combine_band``). Unchanged without ``calibrated_until`` (the prior, a cluster value) and up to it."""
    until = job.calibration.calibrated_until
    span = (until - job.in_service_date).days if until is not None else 0
    if until is None or span <= 0:
        return low, high
    out = []
    for member, side in ((low, -1.0), (high, 1.0)):
        widened = MemberTrajectory(member.rate_factor, cycling_factor=member.cycling_factor)
        widened.flags, widened.stopped, widened.duty_end = list(member.flags), member.stopped, member.duty_end
        for date, p50 in zip(mid.dates, mid.soh_pct, strict=True):
            if member.dates and date > member.dates[-1]:
                break
            value = member.value_at(date, member.soh_pct)
            age = (date - job.in_service_date).days
            if date > until and age > 0:
                spread = Z90 * SHAPE_EXPONENT_SIGMA * math.log(age / span)
                loss = max(100.0 - p50, 0.0)
                offset = loss * (math.exp(spread) - 1.0) if side < 0 else loss * (1.0 - math.exp(-spread))
                value = p50 + side * math.hypot(max(side * (value - p50), 0.0), offset)
            widened.dates.append(date)
            widened.soh_pct.append(min(max(value, 0.0), 100.0) if side > 0 else max(value, 0.0))
            widened.resistance_factor.append(member.value_at(date, member.resistance_factor))
        out.append(widened)
    return out[0], out[1]


def horizon_end(job: ForecastJob) -> dt.date:
    return add_months(job.as_of, round(12 * job.horizon_years)) + dt.timedelta(days=1)


#: One pack's forecast: each member on its own steps, the P50's at most 8 months. In lockstep (before session 9)
#: the P10 member, fading fastest, set every member's step: the cold 1C NMC bus's 10 years took 504 simulated
#: days and its P50 was 0.58 pp from the every-day reference; on its own capped steps 336 days and 0.50 pp, no
#: month further from the reference than lockstep's (docs/forecast.md, "Speed", session 9).
PACK_SETTINGS = TrajectorySettings(per_member_steps=True)


def run_members(
    prepared: PreparedJob,
    start: dt.date,
    end: dt.date,
    factors: Sequence[float | tuple[float, float] | tuple[float, float, float]],
    settings: TrajectorySettings | None = None,
    median: int | None = None,
) -> tuple[list[MemberTrajectory], int]:
    return simulate_members(
        day_model(prepared.chemistry).with_lam_stress(prepared.lam_stress),
        prepared.profile,
        list(prepared.season_temps_k),
        prepared.usable_soc_min,
        start,
        end,
        factors,
        settings,
        median=median,
    )


def forecast_pack(job: ForecastJob, settings: TrajectorySettings | None = None) -> ForecastResult:
    """Forecast one pack from its in-service date to ``as_of + horizon_years``.

    Uses ``job.calibration`` (the prior if the pack was never calibrated): one common factor, the band
    along it; or two factors (calendar, cycling) with the band from their posterior covariance
    (``posterior_members``: up to 5 members instead of 3). A pack whose duty outgrows
    its capacity gets a forecast with the flag and the date (``ForecastResult``). Raises
    ``ForecastRefused`` (flag and reason) for a duty the model cannot represent or simulate to the
    horizon: a forecast never holds a NaN or an infinite value. ``settings``: the step control (``PACK_SETTINGS``
    if not given).
    """
    prepared = prepare(job)
    settings = settings or PACK_SETTINGS
    if job.calibration.two_factors:
        points = posterior_members(job.calibration)
        members, n_days = run_members(prepared, job.in_service_date, horizon_end(job), points, settings, median=0)
        pairs = [(members[k], members[k + 1]) for k in range(1, len(members), 2)]
        low, high = combine_band(members[0], pairs)
        return assemble(job, prepared, low, members[0], high, n_days)
    factors = list(band_factors(job.calibration))
    members, n_days = run_members(prepared, job.in_service_date, horizon_end(job), factors, settings, median=1)
    return assemble(job, prepared, members[0], members[1], members[2], n_days)


def _finite_or_none(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(value) else None


def crossing(member: MemberTrajectory, threshold_pct: float) -> dt.date | None:
    soh = member.soh_pct
    for k in range(1, len(soh)):
        if soh[k] < threshold_pct <= soh[k - 1]:
            d0, d1 = member.dates[k - 1].toordinal(), member.dates[k].toordinal()
            frac = (soh[k - 1] - threshold_pct) / (soh[k - 1] - soh[k])
            return dt.date.fromordinal(round(d0 + frac * (d1 - d0)))
    return None


def assemble(
    job: ForecastJob,
    prepared: PreparedJob,
    low: MemberTrajectory,
    mid: MemberTrajectory,
    high: MemberTrajectory,
    simulated_days: int,
) -> ForecastResult:
    """Build the result from the P10 (``low``), P50 and P90 (``high``) SoH trajectories.

    Raises ``ForecastRefused`` when a member ended before the horizon (its simulation failed) or any
    number would not be finite: a forecast has all three band values at every month, or none.
    """
    end = horizon_end(job)
    for member in (low, mid, high):
        if member.stopped is not None or not member.dates or member.dates[-1] < end - dt.timedelta(days=1):
            flag = member.flags[-1] if member.flags else "solver_failed"
            raise ForecastRefused(
                job.pack_id, flag, f"the simulation could not go on after {member.stopped or member.dates[-1]}"
            )
    low, high = shape_discrepancy(job, low, mid, high)
    points = []
    for date, soh, resistance in zip(mid.dates, mid.soh_pct, mid.resistance_factor, strict=True):
        if date < job.as_of:
            continue
        # Fade is monotone in the rate factor while the duty is whole, but a fast member whose duty was cut
        # (it delivers less energy a day) can fade slower than the median afterwards. The P50 is always the
        # median member's own value (sorting the three once made a cut P10 member the P50: 2.8 pp off the
        # reference on the 2 EFC/day duty); the edges are clamped to it.
        p50 = float(soh)
        p10 = min(float(low.value_at(date, low.soh_pct)), p50)
        p90 = max(float(high.value_at(date, high.soh_pct)), p50)
        p10, p50, p90 = round(p10, 3), round(p50, 3), round(p90, 3)
        points.append(ForecastPoint(date, p50, p10, p90, _finite_or_none(resistance)))

    soh_now = mid.value_at(job.as_of, mid.soh_pct)
    r_now = mid.value_at(job.as_of, mid.resistance_factor)
    year_later = mid.value_at(add_months(job.as_of, 12), mid.soh_pct)
    fade = soh_now - year_later

    def cross(threshold: float) -> Crossing:
        return Crossing(threshold, crossing(mid, threshold), crossing(low, threshold), crossing(high, threshold))

    eol = cross(80.0)
    warranty = cross(job.pack.warranty_floor_soh_pct)
    candidates = [d for d in (eol.date, mid.duty_end) if d is not None]
    life_end = min(candidates) if candidates else end
    rul_days = max((life_end - job.as_of).days, 0)
    km = prepared.profile.km_per_day
    last = representative_day(
        prepared.profile, mid.soh_pct[-1] / 100.0, prepared.season_temps_k[0], prepared.usable_soc_min
    )
    numbers = [soh_now, fade, *(v for p in points for v in (p.soh_pct, p.soh_p10_pct, p.soh_p90_pct))]
    if not all(math.isfinite(v) for v in numbers) or (km is not None and not math.isfinite(km)):
        raise ForecastRefused(job.pack_id, FLAG_NOT_FINITE, "the model gave a value that is not a finite number")
    return ForecastResult(
        pack_id=job.pack_id,
        as_of=job.as_of,
        soh_now_pct=round(float(soh_now), 3),
        resistance_factor_now=_finite_or_none(r_now),
        fade_pct_per_year=round(float(fade), 3),
        points=points,
        eol_80=eol,
        warranty=warranty,
        rul_days=rul_days,
        rul_km=None if km is None else round(rul_days * km, 1),
        # EFC per day = discharged energy / nameplate energy (charge + discharge over twice the capacity).
        rul_efc=round(rul_days * prepared.profile.energy_fraction, 1),
        rul_censored=not candidates,
        calibration=job.calibration,
        flags=sorted(set(mid.flags)),
        end_of_duty_date=mid.duty_end,
        undelivered_kwh_per_day=round(last.undelivered_fraction * job.pack.nominal_kwh, 2),
        simulated_days=simulated_days,
    )
