"""The demo's random parts, drawn from a seeded generator before anything is written.

The same seed gives the same plan, so ``build`` can find every row again by its natural key.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from console.demo.data import (
    BUS,
    DEPOTS,
    FAST_FADE_PCT_PER_YEAR,
    FAST_FADING_BUSES,
    NORMAL_FADE_PCT_PER_YEAR,
    STORY_MIN_AGE_YEARS,
    SWAP_AFTER_YEARS,
    SWAPPED_BUSES,
    TESTED_EVERY_NTH_BUS,
    UNHOMED,
    UNHOMED_FIRST_NUMBER,
    Archetype,
    FleetGroup,
    T,
)
from fleet.models import Vehicle
from fleet.vin import vin_check_digit


@dataclass(frozen=True)
class BlockPlan:
    code: str
    weekdays: tuple[int, ...]
    departs_at: dt.time
    returns_at: dt.time
    distance_km: float


@dataclass(frozen=True)
class Duty:
    """What one vehicle does on a day: one block, or two that do not overlap (a split shift)."""

    weekdays: tuple[int, ...]
    blocks: tuple[BlockPlan, ...]


@dataclass(frozen=True)
class VehiclePlan:
    fleet_number: str
    archetype: Archetype
    depot_code: str | None
    vin: str
    plate: str
    status: str
    commissioned_on: dt.date
    pack_serials: tuple[str, ...]  # first to current; more than one: swapped
    swapped_on: dt.date | None
    fade_pct_per_year: tuple[float, ...]  # per pack, same order
    tested: bool


def _minutes(time_of_day: dt.time) -> int:
    return time_of_day.hour * 60 + time_of_day.minute


def _time(minutes: float, step: int = 5) -> dt.time:
    rounded = int(round(minutes / step) * step)
    return T(rounded // 60, rounded % 60)


def _vin(prefix: str, year: int, plant: str, serial: int) -> str:
    year_code = "ABCDEFGHJKLMNPRSTVWXY123456789"[(year - 2010) % 30]
    body = f"{prefix}0{year_code}{plant}{serial:06d}"
    return body[:8] + vin_check_digit(body) + body[9:]


def plan_duties(rng: random.Random, depot_code: str, group: FleetGroup) -> list[Duty]:
    lo_dep, hi_dep = _minutes(group.departs_between[0]), _minutes(group.departs_between[1])
    lo_ret, hi_ret = _minutes(group.returns_between[0]), _minutes(group.returns_between[1])

    def block(code: str, weekdays, departs: int, distance_range: tuple[int, int], earliest_return: int) -> BlockPlan:
        distance_km = 5 * rng.randint(distance_range[0] // 5, distance_range[1] // 5)
        hours = distance_km / rng.uniform(*group.speed_kmh)
        returns = min(max(departs + hours * 60, earliest_return), hi_ret)
        return BlockPlan(code, weekdays, _time(departs), _time(returns), float(distance_km))

    duties = []
    for pattern in group.patterns:
        prefix = f"{depot_code.upper()}-{pattern.tag}"
        for i in range(1, pattern.singles + 1):
            departs = rng.randrange(lo_dep, hi_dep + 1, 10)
            single = block(f"{prefix}-{i:02d}", pattern.weekdays, departs, group.distance_km, lo_ret)
            duties.append(Duty(pattern.weekdays, (single,)))
        for i in range(pattern.singles + 1, pattern.singles + pattern.pairs + 1):
            # A split shift: the morning peak, hours at the depot around noon (time to top up), the evening peak.
            departs = rng.randrange(lo_dep, lo_dep + 61, 10)
            morning = block(f"{prefix}-{i:02d}M", pattern.weekdays, departs, group.split_distance_km, 0)
            departs = rng.randrange(_minutes(T(14, 0)), _minutes(T(15, 0)) + 1, 15)
            evening = block(f"{prefix}-{i:02d}T", pattern.weekdays, departs, group.split_distance_km, 0)
            duties.append(Duty(pattern.weekdays, (morning, evening)))
    return duties


def plan_vehicles(rng: random.Random, history_until: dt.date) -> list[VehiclePlan]:
    plans: list[VehiclePlan] = []
    serials: dict[str, int] = {}
    plates = iter(range(1001, 10_000))

    def pack_serial(archetype: Archetype, year: int) -> str:
        serials[archetype.key] = serials.get(archetype.key, 0) + 1
        return f"{archetype.pack_serial_prefix}-{year}-{serials[archetype.key]:05d}"

    groups = [(spec.code, group) for spec in DEPOTS for group in spec.fleets] + [(None, UNHOMED)]
    for depot_code, group in groups:
        first = UNHOMED_FIRST_NUMBER if group is UNHOMED else 1
        for position in range(1, group.count + 1):
            fleet_number = f"{group.fleet_prefix}-{first + position - 1:03d}"
            age_days = int(rng.uniform(*group.age_years) * 365)
            commissioned_on = history_until - dt.timedelta(days=age_days)
            swapped = fleet_number in SWAPPED_BUSES
            fast = fleet_number in FAST_FADING_BUSES
            if (swapped or fast) and age_days < STORY_MIN_AGE_YEARS * 365:  # old enough for its story to show
                commissioned_on = history_until - dt.timedelta(days=int(STORY_MIN_AGE_YEARS * 365) + position)
            swapped_on = commissioned_on + dt.timedelta(days=int(SWAP_AFTER_YEARS * 365)) if swapped else None
            normal_fade = round(rng.uniform(*NORMAL_FADE_PCT_PER_YEAR), 2)
            fast_fade = round(rng.uniform(*FAST_FADE_PCT_PER_YEAR), 2)
            first_pack = pack_serial(group.archetype, commissioned_on.year)
            packs = (first_pack, pack_serial(group.archetype, swapped_on.year)) if swapped_on else (first_pack,)
            fades = (fast_fade, normal_fade) if swapped else ((fast_fade,) if fast else (normal_fade,))
            plant = {"bus": "H", "shuttle": "G", "van": "G", "mini": "C"}[group.archetype.key]
            plans.append(
                VehiclePlan(
                    fleet_number=fleet_number,
                    archetype=group.archetype,
                    depot_code=depot_code,
                    vin=_vin(group.archetype.vin_prefix, commissioned_on.year, plant, 10_000 + len(plans) + 1),
                    plate=f"SON-{next(plates)}",
                    status=Vehicle.Status.MAINTENANCE
                    if position in group.in_maintenance
                    else Vehicle.Status.IN_SERVICE,
                    commissioned_on=commissioned_on,
                    pack_serials=packs,
                    swapped_on=swapped_on,
                    fade_pct_per_year=fades,
                    tested=group.archetype is BUS and (position % TESTED_EVERY_NTH_BUS == 1 or fast or swapped),
                )
            )
    return plans
