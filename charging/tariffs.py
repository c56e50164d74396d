"""Time-of-use prices: which period and energy price a tariff gives to a local date and time.

A tariff's rows (seasons, periods per day type, holidays) are read once into a plain ``TariffSchedule``;
the lookups are then pure functions of a local wall-clock time, so the charging optimizer can build a
night's price grid without touching the database again.

Rules (CFE GDMTH-like):
- a season runs from its start month/day to its end month/day *inclusive* and may wrap over New Year
  (1 Nov - 30 Apr); a date no season covers (29 February after a season ending on 28 February) belongs to
  the season that started most recently;
- the day type is ``sunday_holiday`` on Sundays and on the tariff's holidays, ``saturday`` on Saturdays,
  ``weekday`` otherwise; a tariff's holidays are its explicit dates plus, when it names a holiday calendar
  (``"MX"``, ``"DE-NW"``: a country, optionally with a state), the public holidays of the ``holidays``
  package for that country and state, in any year;
- a period covers ``starts_at <= time < ends_at``; ``ends_at`` 00:00 means midnight (the end of the day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import holidays as holiday_calendars

from charging.optimizer.demand import DemandCharge, DemandCharges

WEEKDAY = "weekday"
SATURDAY = "saturday"
SUNDAY_HOLIDAY = "sunday_holiday"
_SATURDAY, _SUNDAY = 5, 6
_MIDNIGHT = dt.time(0, 0)


class TariffError(ValueError):
    """The tariff has no price for a time (a gap in its seasons or periods)."""


@dataclass(frozen=True)
class PeriodRow:
    day_type: str
    period: str
    starts_at: dt.time
    ends_at: dt.time  # 00:00 = midnight
    energy_price_per_kwh: Decimal

    def covers(self, time: dt.time) -> bool:
        return self.starts_at <= time and (self.ends_at == _MIDNIGHT or time < self.ends_at)


@dataclass(frozen=True)
class SeasonRow:
    name: str
    starts: tuple[int, int]  # (month, day)
    ends: tuple[int, int]  # (month, day), inclusive
    periods: tuple[PeriodRow, ...]

    def covers(self, day: dt.date) -> bool:
        month_day = (day.month, day.day)
        if self.starts <= self.ends:
            return self.starts <= month_day <= self.ends
        return month_day >= self.starts or month_day <= self.ends  # wraps over New Year


@dataclass(frozen=True)
class TariffSchedule:
    """A tariff's time-of-use rows as plain data. Build it with ``TariffSchedule.from_tariff``."""

    name: str
    currency: str
    seasons: tuple[SeasonRow, ...]
    holidays: frozenset[dt.date]
    holiday_calendar: str = ""  # "MX", "DE-NW"; empty: only the explicit ``holidays``

    @classmethod
    def from_tariff(cls, tariff: Any) -> TariffSchedule:
        """Read a ``charging.models.Tariff`` in two queries (none if ``seasons__periods`` is prefetched)."""
        from django.db.models import prefetch_related_objects  # the lookups below stay free of Django

        prefetch_related_objects([tariff], "seasons__periods")
        seasons = []
        for season in tariff.seasons.all():
            periods = tuple(
                PeriodRow(
                    day_type=p.day_type,
                    period=p.period,
                    starts_at=p.starts_at,
                    ends_at=p.ends_at,
                    energy_price_per_kwh=Decimal(p.energy_price_per_kwh),
                )
                for p in sorted(season.periods.all(), key=lambda p: (p.day_type, p.starts_at))
            )
            seasons.append(
                SeasonRow(
                    name=season.name,
                    starts=(season.starts_month, season.starts_day),
                    ends=(season.ends_month, season.ends_day),
                    periods=periods,
                )
            )
        return cls(
            name=tariff.name,
            currency=tariff.currency,
            seasons=tuple(sorted(seasons, key=lambda s: s.starts)),
            holidays=frozenset(dt.date.fromisoformat(str(day)) for day in tariff.holidays or ()),
            holiday_calendar=tariff.holiday_calendar,
        )


@dataclass(frozen=True)
class Price:
    """The tariff's answer for one moment: the energy price (tariff currency per kWh) and where it comes from."""

    energy_price_per_kwh: Decimal
    period: str  # e.g. "base", "intermedia", "punta"
    season: str
    day_type: str


def parse_holiday_calendar(code: str) -> tuple[str, str | None]:
    """``"DE-NW"`` -> ``("DE", "NW")``, ``"MX"`` -> ``("MX", None)``. Raises ``ValueError`` for a country or
    state the ``holidays`` package does not know."""
    country, _sep, subdivision = code.strip().upper().partition("-")
    supported = holiday_calendars.list_supported_countries()
    if country not in supported:
        raise ValueError(f"Unknown holiday calendar country {country!r}: use an ISO 3166 code such as MX or DE.")
    if not subdivision:
        return country, None
    known = {name.upper(): name for name in supported[country]}
    if subdivision not in known:
        raise ValueError(
            f"{country} has no subdivision {subdivision!r}; known: {', '.join(sorted(supported[country]))}."
        )
    return country, known[subdivision]


@lru_cache(maxsize=256)
def calendar_holidays(code: str, year: int) -> frozenset[dt.date]:
    """The public holidays of calendar ``code`` (see ``parse_holiday_calendar``) in ``year``."""
    country, subdivision = parse_holiday_calendar(code)
    return frozenset(holiday_calendars.country_holidays(country, subdiv=subdivision, years=year).keys())


def is_holiday(schedule: TariffSchedule, day: dt.date) -> bool:
    """One of the tariff's explicit holidays, or a public holiday of its calendar."""
    if day in schedule.holidays:
        return True
    return bool(schedule.holiday_calendar) and day in calendar_holidays(schedule.holiday_calendar, day.year)


def day_type_of(schedule: TariffSchedule, day: dt.date) -> str:
    if day.weekday() == _SUNDAY or is_holiday(schedule, day):
        return SUNDAY_HOLIDAY
    if day.weekday() == _SATURDAY:
        return SATURDAY
    return WEEKDAY


def season_of(schedule: TariffSchedule, day: dt.date) -> SeasonRow:
    for season in schedule.seasons:
        if season.covers(day):
            return season
    if not schedule.seasons:
        raise TariffError(f"Tariff {schedule.name} has no seasons.")
    # A gap between seasons (typically 29 February): the season that started most recently is in force.
    month_day = (day.month, day.day)
    started = [s for s in schedule.seasons if s.starts <= month_day]
    return max(started, key=lambda s: s.starts) if started else max(schedule.seasons, key=lambda s: s.starts)


def _as_schedule(tariff: Any) -> TariffSchedule:
    return tariff if isinstance(tariff, TariffSchedule) else TariffSchedule.from_tariff(tariff)


def energy_price_at(tariff: Any, local_dt: dt.datetime) -> Price:
    """The energy price and period at ``local_dt``, a wall-clock time in the depot's zone (naive or aware).

    ``tariff`` is a ``Tariff`` row or a ``TariffSchedule``; pass a schedule when looking up many times.
    Raises ``TariffError`` when the tariff has no period covering that time.
    """
    schedule = _as_schedule(tariff)
    season = season_of(schedule, local_dt.date())
    day_type = day_type_of(schedule, local_dt.date())
    wall_time = local_dt.time().replace(tzinfo=None)
    for row in season.periods:
        if row.day_type == day_type and row.covers(wall_time):
            return Price(row.energy_price_per_kwh, row.period, season.name, day_type)
    raise TariffError(
        f"Tariff {schedule.name}, season {season.name}: no {day_type} period covers {wall_time:%H:%M} "
        f"on {local_dt.date().isoformat()}."
    )


def price_slots(tariff: Any, start_local: dt.datetime, slot_minutes: int, n: int) -> list[Price]:
    """The price of each of ``n`` slots of ``slot_minutes`` from ``start_local``, one ``Price`` per slot.

    A slot takes the price of its first minute: GDMTH periods change on whole hours, so slots of 15, 30 or
    60 minutes starting on the hour never straddle a change. An aware ``start_local`` is stepped in real
    (UTC) time and read in its own zone, so a daylight-saving change shifts the wall clock as it should.
    """
    if slot_minutes <= 0 or n < 0:
        raise ValueError("slot_minutes must be positive and n not negative")
    schedule = _as_schedule(tariff)
    step = dt.timedelta(minutes=slot_minutes)
    if start_local.tzinfo is None:
        return [energy_price_at(schedule, start_local + i * step) for i in range(n)]
    zone = start_local.tzinfo
    start_utc = start_local.astimezone(dt.UTC)
    return [energy_price_at(schedule, (start_utc + i * step).astimezone(zone)) for i in range(n)]


def demand_charges_on(tariff: Any, slots: list[Price]) -> DemandCharges:
    """The tariff's demand charges on a run of priced slots (``price_slots``: a night's, a month's), month
    peaks not yet set: the one reader of ``tariff.demand_charges`` for pricing demand.

    A charge restricted to periods counts the slots of those periods (GDMTH's capacity charge on *punta*), one
    without periods every slot (GDMTH's distribution charge on the month's maximum demand). Ordered as they
    are planned (``DemandCharges.of``): the first restricted one is the main charge. One query, none when
    ``demand_charges`` is prefetched.
    """
    return DemandCharges.of(
        DemandCharge(
            name=c.name,
            mxn_per_kw=float(c.price_per_kw_month),
            slots=tuple(s.period in c.applies_in_periods for s in slots) if c.applies_in_periods else None,
            periods=tuple(sorted(c.applies_in_periods or ())),
        )
        for c in tariff.demand_charges.all()
    )
