"""Duty cycle -> representative day: smoothed constant-current segments and a pack temperature.

A day is always the same ``N_SEGMENTS`` segments (unused ones last zero seconds at zero current), so one
PyBaMM model with the segment currents and boundaries as input parameters serves every pack and season:

    legs      up to ``MAX_LEGS`` discharge legs with a charging event (top-up) between two legs; a day
              without top-ups is two half legs around a one-hour layover at rest
    depot     rest before charging
    charge    CC at the charger's C-rate up to 80 % SoC, then a stepped taper (1/2, 1/4, 1/10 of it up
              to 90 %, 97 % and the target): the constant-voltage phase of a CC-CV charge as steps
    full      rest at the target SoC until departure

The real traction current (second by second) is replaced by its mean over each leg: SEI growth and
throughput-driven loss of active material depend on SoC, temperature and Ah throughput, not on the
second-scale ripple, and every current step costs a solver restart. How long the pack sits full comes
from the telemetry's time above 90 % SoC, or from the charging policy in a plan.

Currents are C-rates relative to the pack's nameplate capacity (= the model cell's capacity when new),
positive for discharge. SoC values are relative to the pack's *current* capacity, like the BMS's, so an
aged pack cycles deeper for the same energy. When the day no longer fits the usable window, it is cut
at the window's floor (``RepresentativeDay.undelivered_fraction`` says how much energy is missing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .presets import GAS_CONSTANT
from .types import BlockPlan, Climate, DutyStats, PackSpec

SECONDS_PER_DAY = 86_400.0
#: Most discharge legs a day can hold (so at most MAX_LEGS - 1 top-ups): about 4 EFC a day.
MAX_LEGS = 5
N_LEG_SEGMENTS = 2 * MAX_LEGS - 1
#: (SoC the stage charges up to, share of the charger's C-rate): CC, then the stepped CV taper.
CHARGE_STAGES = ((0.80, 1.0), (0.90, 0.5), (0.97, 0.25), (1.0, 0.1))
N_SEGMENTS = N_LEG_SEGMENTS + 1 + len(CHARGE_STAGES) + 1
LAYOVER_H = 1.0
#: A top-up during the day stops here (a fast top-up into the top of the window is not how depots charge).
TOPUP_MAX_SOC = 0.90
#: The shortest leg the model represents, and the highest mean discharge C-rate (beyond: refused).
MIN_LEG_H = 0.25
MAX_DISCHARGE_C = 3.0
MAX_CHARGE_C = 4.0
#: Pack above air temperature while in service when telemetry cannot tell (assumed).
DEFAULT_SELF_HEATING_K = 3.0
#: A pack's thermal mass damps the air's day/night swing (assumed).
PACK_SWING_DAMPING = 0.5
SEASON_MONTHS = ((12, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11))
#: Lithium plating (a preset with ``plating_exchange_current_a_m2``) is strongly non-linear in temperature
#: and its Arrhenius sign is the opposite of the SEI's: a season's day at the Arrhenius mean of three months
#: leans warm and misses the cold days' plating. Where it plates - charging at ``PLATING_SPLIT_MIN_C`` or
#: more, and a season whose coldest month's mean pack temperature is below ``PLATING_SPLIT_BELOW_C`` (fade's
#: minimum in temperature at 1C, Waldmann 2014) - that season has two days, at the cold and the warm side of
#: its days' spread, weighted per month (``representative_temperatures_k``; docs/forecast.md, "Lithium
#: plating"). The C-rate bar was
#: measured (3-year NMC bus, prior, split minus season days): 0.03 pp at 0.5C in Nogales, 0.02 in Hermosillo;
#: 0.07-0.10 at 0.6C, 0.28 at 0.7C, 0.22 at 1C in Hermosillo, 0.54 with 1C top-ups. Below it the 3.5x days
#: buy nothing.
PLATING_SPLIT_MIN_C = 0.6
PLATING_SPLIT_BELOW_C = 25.0
#: Day-to-day spread (standard deviation) of a day's mean pack temperature around its month's (weather;
#: assumed, not in ``Climate``: 2-4 K is typical of daily mean air temperatures, damped by the pack). Two
#: equally weighted days at -/+ this are the 2-point Gauss-Hermite rule for a normal spread.
WEATHER_SIGMA_K = 2.5
#: Slots per month of ``representative_temperatures_k`` (a month's weights over its season's two days).
MONTH_SLOTS = 12


def season_of_month(month: int) -> int:
    """0 = Dec-Feb, 1 = Mar-May, 2 = Jun-Aug, 3 = Sep-Nov."""
    return (month % 12) // 3


@dataclass(frozen=True)
class RepresentativeDay:
    """One simulated day. ``segments`` are (duration [s], C-rate vs nameplate, + = discharge).

    ``feasible`` is False when the duty as demanded does not fit the usable window: the day is then cut at
    the floor and ``undelivered_fraction`` (energy / nameplate energy, per day) is what it cannot deliver.
    """

    segments: tuple[tuple[float, float], ...]
    start_soc: float
    temperature_k: float
    #: Deepest discharge between two charges as a fraction of the *current* capacity.
    max_leg_dod: float
    feasible: bool
    undelivered_fraction: float = 0.0

    def boundaries_s(self) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum([d for d, _ in self.segments])])


@dataclass(frozen=True)
class DutyProfile:
    """A duty reduced to the numbers the representative day needs (telemetry or plan alike)."""

    energy_fraction: float  # daily discharged energy / nameplate energy
    start_soc: float
    charge_c_rate: float
    operating_hours: float
    top_ups: int  # charging events during the day (between legs)
    hours_full: float  # time parked at the target SoC
    self_heating_k: float
    km_per_day: float | None


def duty_profile(pack: PackSpec, duty: DutyStats | BlockPlan, climate: Climate) -> DutyProfile:
    if isinstance(duty, BlockPlan):
        energy = duty.km_per_day * duty.kwh_per_km
        return DutyProfile(
            energy_fraction=energy / pack.nominal_kwh,
            start_soc=min(duty.target_soc, pack.usable_soc_max),
            charge_c_rate=duty.charge_c_rate,
            operating_hours=duty.operating_hours,
            top_ups=duty.top_ups_per_day,
            hours_full=0.5 if duty.charge_late else 24.0,  # clipped to the depot time later
            self_heating_k=DEFAULT_SELF_HEATING_K,
            km_per_day=duty.km_per_day,
        )
    swing = max(duty.soc_max - duty.soc_min, 1e-3)
    energy_fraction = duty.energy_used_kwh / pack.nominal_kwh
    if duty.month is not None:
        heating = duty.pack_temp_mean_c - climate.monthly_mean_c[duty.month - 1]
    else:
        heating = DEFAULT_SELF_HEATING_K
    # More energy than one SoC swing: the vehicle recharged during the day, once per extra swing.
    legs = math.ceil(energy_fraction / (1.05 * swing)) if math.isfinite(energy_fraction / swing) else 1
    return DutyProfile(
        energy_fraction=energy_fraction,
        start_soc=duty.soc_max,
        charge_c_rate=max(duty.max_charge_c_rate, 0.05),
        operating_hours=duty.operating_hours,
        top_ups=max(legs, 1) - 1,
        hours_full=duty.hours_above_90_soc,
        self_heating_k=float(np.clip(heating, 0.0, 15.0)) if math.isfinite(heating) else DEFAULT_SELF_HEATING_K,
        km_per_day=duty.km_per_day,
    )


def profile_refusal(profile: DutyProfile, usable_soc_min: float) -> str | None:
    """Why the model cannot represent this duty at all (None: it can). Checked before any simulation."""
    numbers = (
        profile.energy_fraction,
        profile.start_soc,
        profile.charge_c_rate,
        profile.operating_hours,
        profile.hours_full,
        usable_soc_min,
    )
    if not all(math.isfinite(v) for v in numbers):
        return "the duty has a missing or infinite figure"
    if profile.energy_fraction < 0 or profile.operating_hours <= 0 or profile.charge_c_rate <= 0:
        return "the duty has a negative energy, no operating hours or no charging power"
    if not 0.0 <= usable_soc_min < profile.start_soc <= 1.0:
        return f"charge target {profile.start_soc:.0%} not between the usable floor {usable_soc_min:.0%} and 100 %"
    legs = profile.top_ups + 1
    if legs > MAX_LEGS:
        return (
            f"{profile.energy_fraction:.1f} nameplate energies a day need {legs} discharge legs; "
            f"the model holds at most {MAX_LEGS} (outside its range)"
        )
    if profile.charge_c_rate > MAX_CHARGE_C:
        return f"charging at {profile.charge_c_rate:.1f}C is outside the model's range (up to {MAX_CHARGE_C:.0f}C)"
    day = representative_day(profile, 1.0, 298.15, usable_soc_min)
    if day.undelivered_fraction > 0.5 * profile.energy_fraction > 0:
        return "the duty needs more than twice the usable window of a new pack between charges"
    discharge_c = max(c for _, c in day.segments)
    if discharge_c > MAX_DISCHARGE_C:
        return f"a mean discharge of {discharge_c:.1f}C is outside the model's range (up to {MAX_DISCHARGE_C:.0f}C)"
    if sum(d for d, _ in day.segments) > SECONDS_PER_DAY + 1.0:
        return "legs and charging do not fit in 24 hours"
    return None


def arrhenius_mean_temperature_k(temps_c: list[float], activation_energy_j_mol: float) -> float:
    """The constant temperature that ages as fast as the given temperatures on average."""
    temps_k = np.asarray(temps_c, dtype=float) + 273.15
    mean_rate = np.mean(np.exp(-activation_energy_j_mol / (GAS_CONSTANT * temps_k)))
    return float(-activation_energy_j_mol / (GAS_CONSTANT * math.log(mean_rate)))


def season_temperatures_k(climate: Climate, self_heating_k: float, activation_energy_j_mol: float) -> list[float]:
    """Arrhenius-effective pack temperature per season (air monthly means, damped daily swing,
    self-heating). Averaging the Arrhenius rate, not the temperature, keeps hot afternoons' weight."""
    amplitude = climate.diurnal_amplitude_c * PACK_SWING_DAMPING
    phases = np.sin(np.linspace(0.0, 2 * math.pi, 24, endpoint=False))
    result = []
    for months in SEASON_MONTHS:
        temps = [climate.monthly_mean_c[m - 1] + self_heating_k + amplitude * p for m in months for p in phases]
        result.append(arrhenius_mean_temperature_k(temps, activation_energy_j_mol))
    return result


def plating_seasons(climate: Climate, profile: DutyProfile, plating: bool) -> tuple[bool, ...]:
    """Per season (``SEASON_MONTHS`` order): whether it is simulated one day per month because a cold pack
    charged fast may plate lithium there. ``plating``: the chemistry's model has plating at all."""
    if not plating or profile.charge_c_rate < PLATING_SPLIT_MIN_C:
        return (False,) * len(SEASON_MONTHS)
    return tuple(
        min(climate.monthly_mean_c[m - 1] for m in months) + profile.self_heating_k < PLATING_SPLIT_BELOW_C
        for months in SEASON_MONTHS
    )


def representative_temperatures_k(
    climate: Climate, profile: DutyProfile, activation_energy_j_mol: float, plating: bool
) -> list[float]:
    """The pack temperatures of the representative days (``day_temperatures`` reads them): the 4 season
    temperatures (``season_temperatures_k``) or - where a season may plate lithium (``plating_seasons``) -
    ``MONTH_SLOTS`` equally weighted slots per month (Jan..Dec).

    A plating season has two days, a cold and a warm one: its days' mean air temperature -/+ one standard
    deviation of their spread (its three months' means and the weather, ``WEATHER_SIGMA_K``; the 2-point
    Gauss-Hermite nodes of a normal spread), each with self-heating and the daily swing folded in as
    ``season_temperatures_k`` does. Each month of the season weighs the two so that their mean air
    temperature is the month's own (clipped to the two; weights in steps of 1/``MONTH_SLOTS``): the season's
    cold months lean on the cold day. The other seasons fill every slot with their one temperature.
    """
    split = plating_seasons(climate, profile, plating)
    seasons = season_temperatures_k(climate, profile.self_heating_k, activation_energy_j_mol)
    if not any(split):
        return seasons
    temps: list[float] = []
    for month in range(1, 13):
        season = season_of_month(month)
        if not split[season]:
            temps += [seasons[season]] * MONTH_SLOTS
            continue
        air = np.array([climate.monthly_mean_c[m - 1] for m in SEASON_MONTHS[season]], dtype=float)
        spread = math.sqrt(float(air.var()) + WEATHER_SIGMA_K**2)
        cold_c, warm_c = float(air.mean()) - spread, float(air.mean()) + spread
        cold, warm = (
            _pack_temperature_k(t, climate, profile.self_heating_k, activation_energy_j_mol) for t in (cold_c, warm_c)
        )
        share = min(max((climate.monthly_mean_c[month - 1] - cold_c) / (warm_c - cold_c), 0.0), 1.0)
        n_warm = round(MONTH_SLOTS * share)
        temps += [cold] * (MONTH_SLOTS - n_warm) + [warm] * n_warm
    return temps


def _pack_temperature_k(air_c: float, climate: Climate, self_heating_k: float, activation_energy_j_mol: float) -> float:
    """A day's Arrhenius-effective pack temperature at a mean air temperature (self-heating, damped swing)."""
    amplitude = climate.diurnal_amplitude_c * PACK_SWING_DAMPING
    phases = np.sin(np.linspace(0.0, 2 * math.pi, 24, endpoint=False))
    return arrhenius_mean_temperature_k(
        [air_c + self_heating_k + amplitude * p for p in phases], activation_energy_j_mol
    )


def day_temperatures(temps_k: Sequence[float]) -> tuple[list[float], np.ndarray]:
    """The distinct representative days' temperatures and, per calendar month (Jan..Dec), the weight of
    each day in that month (a 12 x days matrix, rows sum to 1). ``temps_k``: 4 season temperatures
    (``SEASON_MONTHS`` order), or 12 k values: k equally weighted days per month. Equal temperatures share
    one day (an unsplit season's months cost one day, not three or six)."""
    n = len(temps_k)
    if n == len(SEASON_MONTHS):
        return list(temps_k), np.eye(n)[[season_of_month(m) for m in range(1, 13)]]
    if n == 0 or n % 12:
        raise ValueError("representative temperatures: 4 seasons or k per month")
    k = n // 12
    distinct = list(dict.fromkeys(temps_k))
    weights = np.zeros((12, len(distinct)))
    for i, t in enumerate(temps_k):
        weights[i // k, distinct.index(t)] += 1.0 / k
    return distinct, weights


def _charge_stages(soc_from: float, target: float, charge_c: float, cap: float) -> list[tuple[float, float]]:
    """CC then the stepped taper from ``soc_from`` to ``target`` (Coulomb counting), always len(CHARGE_STAGES)."""
    stages = []
    soc = soc_from
    for limit, share in CHARGE_STAGES:
        c_rate = charge_c * share
        stage_target = min(limit, target) if limit < 1.0 else target
        delta = max(stage_target - soc, 0.0)
        stages.append((delta * cap / c_rate * 3600.0, -c_rate))
        soc = max(soc, stage_target)
    return stages


def representative_day(
    profile: DutyProfile, capacity_fraction: float, temperature_k: float, usable_soc_min: float
) -> RepresentativeDay:
    """The day for a pack at ``capacity_fraction`` of its new capacity (SoH/100)."""
    cap = max(capacity_fraction, 1e-3)
    legs = max(profile.top_ups, 0) + 1
    charge_c = profile.charge_c_rate
    start = profile.start_soc
    top = min(start, TOPUP_MAX_SOC) if legs > 1 else start
    demanded_dod = profile.energy_fraction / cap / legs  # each leg, of current capacity
    allowed_dod = max(min(start, top) - usable_soc_min, 0.0)
    leg_dod = min(demanded_dod, allowed_dod)
    undelivered = max(demanded_dod - leg_dod, 0.0) * legs * cap
    feasible = demanded_dod <= allowed_dod + 1e-9

    if legs == 1:
        leg_h = max((profile.operating_hours - LAYOVER_H) / 2, MIN_LEG_H)
        discharge_c = leg_dod * cap / 2 / leg_h
        leg_segments = [(leg_h * 3600.0, discharge_c), (LAYOVER_H * 3600.0, 0.0), (leg_h * 3600.0, discharge_c)]
        soc_end = start - leg_dod
    else:
        topups = [(top - (start - leg_dod)), *([leg_dod] * (legs - 2))]
        topup_h = [max(delta, 0.0) * cap / charge_c for delta in topups]
        leg_h = max((profile.operating_hours - sum(topup_h)) / legs, MIN_LEG_H)
        discharge_c = leg_dod * cap / leg_h
        leg_segments = []
        for k in range(legs):
            leg_segments.append((leg_h * 3600.0, discharge_c))
            if k < legs - 1:
                leg_segments.append((topup_h[k] * 3600.0, -charge_c))
        soc_end = top - leg_dod
    leg_segments += [(0.0, 0.0)] * (N_LEG_SEGMENTS - len(leg_segments))

    stages = _charge_stages(soc_end, start, charge_c, cap)
    used_s = sum(d for d, _ in leg_segments) + sum(d for d, _ in stages)
    depot_s = max(SECONDS_PER_DAY - used_s, 0.0)
    full_s = min(profile.hours_full * 3600.0, depot_s)
    segments = (*leg_segments, (depot_s - full_s, 0.0), *stages, (full_s, 0.0))
    return RepresentativeDay(segments, start, temperature_k, leg_dod, feasible, undelivered)
