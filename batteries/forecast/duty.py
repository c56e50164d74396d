"""Duty cycle -> representative day: a few smoothed constant-current segments and a pack temperature.

A day is always the same eight segments (some may last zero seconds), so one PyBaMM model with the
segment currents and boundaries as input parameters serves every pack and every season:

    0 discharge (first half of the day's energy)    4 charge, constant current up to 80 % SoC
    1 layover (rest, or an opportunity charge)      5 taper: half the current up to 90 % SoC
    2 discharge (second half)                       6 taper: a quarter of the current up to target
    3 depot rest before charging                    7 rest at the target SoC until departure

The real traction current (second by second) is replaced by its mean over each leg: SEI growth and
throughput-driven loss of active material depend on SoC, temperature and Ah throughput, not on the
second-scale ripple, and every current step costs a solver restart. How long the pack sits full
(segment 7) comes from the telemetry's time above 90 % SoC, or from the charging policy in a plan.

Currents are C-rates relative to the pack's nameplate capacity (= the model cell's capacity when new),
positive for discharge. SoC values are relative to the pack's *current* capacity, like the BMS's, so an
aged pack cycles deeper for the same energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .presets import GAS_CONSTANT
from .types import BlockPlan, Climate, DutyStats, PackSpec

SECONDS_PER_DAY = 86_400.0
N_SEGMENTS = 8
LAYOVER_H = 1.0
TAPER_START_SOC = (0.80, 0.90)
#: Pack above air temperature while in service when telemetry cannot tell (assumed).
DEFAULT_SELF_HEATING_K = 3.0
#: A pack's thermal mass damps the air's day/night swing (assumed).
PACK_SWING_DAMPING = 0.5
SEASON_MONTHS = ((12, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11))


def season_of_month(month: int) -> int:
    """0 = Dec-Feb, 1 = Mar-May, 2 = Jun-Aug, 3 = Sep-Nov."""
    return (month % 12) // 3


@dataclass(frozen=True)
class RepresentativeDay:
    """One simulated day. ``segments`` are (duration [s], C-rate vs nameplate, + = discharge)."""

    segments: tuple[tuple[float, float], ...]
    start_soc: float
    temperature_k: float
    #: Deepest discharge between two charges as a fraction of the *current* capacity.
    max_leg_dod: float
    feasible: bool

    def boundaries_s(self) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum([d for d, _ in self.segments])])


@dataclass(frozen=True)
class DutyProfile:
    """A duty reduced to the numbers the representative day needs (telemetry or plan alike)."""

    energy_fraction: float  # daily discharged energy / nameplate energy
    start_soc: float
    charge_c_rate: float
    operating_hours: float
    opportunity_charge: bool
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
            opportunity_charge=False,
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
    return DutyProfile(
        energy_fraction=energy_fraction,
        start_soc=duty.soc_max,
        charge_c_rate=max(duty.max_charge_c_rate, 0.05),
        operating_hours=duty.operating_hours,
        # More energy than one SoC swing: the bus recharges during the day.
        opportunity_charge=energy_fraction > 1.25 * swing,
        hours_full=duty.hours_above_90_soc,
        self_heating_k=float(np.clip(heating, 0.0, 15.0)),
        km_per_day=duty.km_per_day,
    )


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


def representative_day(
    profile: DutyProfile, capacity_fraction: float, temperature_k: float, usable_soc_min: float
) -> RepresentativeDay:
    """The day for a pack at ``capacity_fraction`` of its new capacity (SoH/100)."""
    cap = max(capacity_fraction, 1e-3)
    day_dod = profile.energy_fraction / cap  # of current capacity
    leg_dod = day_dod / 2
    leg_h = max((profile.operating_hours - LAYOVER_H) / 2, 0.5)
    discharge_c = profile.energy_fraction / 2 / leg_h
    charge_c = profile.charge_c_rate

    if profile.opportunity_charge:
        layover_h = max(LAYOVER_H, profile.energy_fraction / 2 / charge_c)
        layover_c = -profile.energy_fraction / 2 / layover_h
        max_leg = leg_dod
        soc_after = profile.start_soc - leg_dod
    else:
        layover_h, layover_c = LAYOVER_H, 0.0
        max_leg = day_dod
        soc_after = profile.start_soc - day_dod

    # Depot charge back to the start SoC by Coulomb counting: CC, then two taper stages.
    stages = []
    soc = soc_after
    for limit, c_rate in zip(
        (*TAPER_START_SOC, profile.start_soc), (charge_c, charge_c / 2, charge_c / 4), strict=True
    ):
        target = min(limit, profile.start_soc)
        delta = max(target - soc, 0.0)
        stages.append((delta * cap / c_rate * 3600.0, -c_rate))
        soc = max(soc, target)

    used_s = (2 * leg_h + layover_h) * 3600.0 + sum(d for d, _ in stages)
    depot_s = max(SECONDS_PER_DAY - used_s, 0.0)
    full_s = min(profile.hours_full * 3600.0, depot_s)
    segments = (
        (leg_h * 3600.0, discharge_c),
        (layover_h * 3600.0, layover_c),
        (leg_h * 3600.0, discharge_c),
        (depot_s - full_s, 0.0),
        *stages,
        (full_s, 0.0),
    )
    feasible = profile.start_soc - max_leg >= usable_soc_min - 1e-9 and used_s <= SECONDS_PER_DAY
    return RepresentativeDay(segments, profile.start_soc, temperature_k, max_leg, feasible)
