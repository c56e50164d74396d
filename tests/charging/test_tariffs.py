"""Time-of-use price lookups on a GDMTH-like tariff; every expected price below is read off the table by hand.

The fixture tariff (MXN/kWh, illustrative):

                      summer (1 Apr - 31 Oct)                  winter (1 Nov - 31 Mar, wraps New Year)
    weekday           base 00-06 1.00, intermedia 06-18 1.80,  base 00-06 0.90, intermedia 06-18 1.60,
                      punta 18-22 2.30, intermedia 22-24 1.80  punta 18-22 2.10, intermedia 22-24 1.60
    saturday          base 00-07 1.00, intermedia 07-24 1.80   base 00-08 0.90, intermedia 08-24 1.60
    sunday / holiday  base 00-19 1.00, intermedia 19-24 1.80   base 00-18 0.90, intermedia 18-24 1.60

Holidays: 16 September 2025, 25 December 2025, 1 January 2026.
"""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from charging.tariffs import (
    PeriodRow,
    SeasonRow,
    TariffError,
    TariffSchedule,
    energy_price_at,
    price_slots,
)
from tests import factories as f

HERMOSILLO = zoneinfo.ZoneInfo("America/Hermosillo")
T = dt.time

TABLE = {
    ("summer", 4, 1, 10, 31): {
        "weekday": [("base", T(0), T(6), "1.00"), ("intermedia", T(6), T(18), "1.80"),
                    ("punta", T(18), T(22), "2.30"), ("intermedia", T(22), T(0), "1.80")],
        "saturday": [("base", T(0), T(7), "1.00"), ("intermedia", T(7), T(0), "1.80")],
        "sunday_holiday": [("base", T(0), T(19), "1.00"), ("intermedia", T(19), T(0), "1.80")],
    },
    ("winter", 11, 1, 3, 31): {
        "weekday": [("base", T(0), T(6), "0.90"), ("intermedia", T(6), T(18), "1.60"),
                    ("punta", T(18), T(22), "2.10"), ("intermedia", T(22), T(0), "1.60")],
        "saturday": [("base", T(0), T(8), "0.90"), ("intermedia", T(8), T(0), "1.60")],
        "sunday_holiday": [("base", T(0), T(18), "0.90"), ("intermedia", T(18), T(0), "1.60")],
    },
}  # fmt: skip


@pytest.fixture
def gdmth(db):
    tariff = f.TariffFactory(name="GDMTH test", holidays=["2025-09-16", "2025-12-25", "2026-01-01"])
    for (name, sm, sd, em, ed), day_types in TABLE.items():
        season = f.TariffSeasonFactory(
            tariff=tariff, name=name, starts_month=sm, starts_day=sd, ends_month=em, ends_day=ed
        )
        for day_type, rows in day_types.items():
            for period, starts_at, ends_at, price in rows:
                f.TariffPeriodFactory(
                    season=season,
                    day_type=day_type,
                    period=period,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    energy_price_per_kwh=price,
                )
    return tariff


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=HERMOSILLO)


def test_a_summer_weekday_evening_is_punta_and_its_edges_belong_to_the_right_period(gdmth):
    # Wednesday 16 July 2025.
    punta = energy_price_at(gdmth, at("2025-07-16 19:30"))
    assert (punta.energy_price_per_kwh, punta.period, punta.season, punta.day_type) == (
        Decimal("2.30"),
        "punta",
        "summer",
        "weekday",
    )
    assert energy_price_at(gdmth, at("2025-07-16 17:59")).period == "intermedia"
    assert energy_price_at(gdmth, at("2025-07-16 18:00")).period == "punta"  # a period includes its start
    assert energy_price_at(gdmth, at("2025-07-16 22:00")).period == "intermedia"  # ... but not its end
    assert energy_price_at(gdmth, at("2025-07-16 23:59")).energy_price_per_kwh == Decimal("1.80")  # ends 00:00
    assert energy_price_at(gdmth, at("2025-07-16 03:00")).energy_price_per_kwh == Decimal("1.00")


def test_sundays_saturdays_and_holidays_have_no_punta(gdmth):
    sunday_evening = energy_price_at(gdmth, at("2025-07-20 19:30"))
    assert (sunday_evening.day_type, sunday_evening.period, sunday_evening.energy_price_per_kwh) == (
        "sunday_holiday",
        "intermedia",
        Decimal("1.80"),
    )
    assert energy_price_at(gdmth, at("2025-07-20 18:30")).period == "base"  # Sunday base runs until 19:00
    saturday = energy_price_at(gdmth, at("2025-07-19 06:30"))
    assert (saturday.day_type, saturday.period) == ("saturday", "base")  # weekday base ends at 06:00
    # Tuesday 16 September 2025 (Independence Day) is priced as a Sunday.
    holiday = energy_price_at(gdmth, at("2025-09-16 19:30"))
    assert (holiday.day_type, holiday.period, holiday.energy_price_per_kwh) == (
        "sunday_holiday",
        "intermedia",
        Decimal("1.80"),
    )
    assert energy_price_at(gdmth, at("2025-09-17 19:30")).period == "punta"  # the day after is a weekday again


def test_the_winter_season_wraps_over_new_year(gdmth):
    assert energy_price_at(gdmth, at("2025-12-31 19:00")).energy_price_per_kwh == Decimal("2.10")  # Wed, winter
    new_year = energy_price_at(gdmth, at("2026-01-01 19:00"))  # Thursday, but a holiday
    assert (new_year.season, new_year.day_type, new_year.energy_price_per_kwh) == (
        "winter",
        "sunday_holiday",
        Decimal("1.60"),
    )
    assert energy_price_at(gdmth, at("2026-01-02 19:00")).energy_price_per_kwh == Decimal("2.10")  # Friday
    # Season edges are inclusive: 31 March is still winter, 1 April already summer (both weekdays).
    assert energy_price_at(gdmth, at("2026-03-31 19:00")).season == "winter"
    assert energy_price_at(gdmth, at("2026-04-01 19:00")).energy_price_per_kwh == Decimal("2.30")
    assert energy_price_at(gdmth, at("2025-10-31 19:00")).season == "summer"
    assert energy_price_at(gdmth, at("2025-11-01 09:00")).energy_price_per_kwh == Decimal("1.60")  # Saturday


def test_an_hourly_grid_across_midnight_changes_day_type_at_midnight(gdmth):
    # Friday 18 July 2025 21:00 to Saturday 08:00: punta, two intermedia hours, then Saturday's base until 07:00.
    slots = price_slots(gdmth, at("2025-07-18 21:00"), 60, 11)
    assert [s.energy_price_per_kwh for s in slots] == [Decimal(p) for p in ("2.30", "1.80", "1.80") + ("1.00",) * 7] + [
        Decimal("1.80")
    ]
    assert [s.day_type for s in slots[2:4]] == ["weekday", "saturday"]
    # A bus drawing a steady 100 kW over those 11 hours pays 100 x (2.30 + 2 x 1.80 + 7 x 1.00 + 1.80) MXN.
    assert sum(100 * s.energy_price_per_kwh for s in slots) == Decimal("1470.00")


def test_quarter_hour_slots_follow_the_period_boundary(gdmth):
    slots = price_slots(gdmth, at("2025-07-16 17:30"), 15, 4)
    assert [s.period for s in slots] == ["intermedia", "intermedia", "punta", "punta"]
    assert price_slots(gdmth, at("2025-07-16 17:30"), 15, 0) == []


def test_a_slot_grid_reads_the_tariff_once(gdmth, django_assert_num_queries):
    tariff = type(gdmth).objects.get(pk=gdmth.pk)
    with django_assert_num_queries(2):  # its seasons, then their periods: not once per slot
        slots = price_slots(tariff, at("2025-07-18 18:00"), 15, 96)
    assert len(slots) == 96


def test_naive_local_times_are_read_as_wall_clock(gdmth):
    assert energy_price_at(gdmth, dt.datetime(2025, 7, 16, 19, 30)).period == "punta"
    assert [s.period for s in price_slots(gdmth, dt.datetime(2025, 7, 16, 21, 0), 60, 2)] == ["punta", "intermedia"]


def test_a_missing_day_type_is_a_clear_error_not_a_silent_price(db):
    tariff = f.TariffFactory(name="weekdays only")
    season = f.TariffSeasonFactory(tariff=tariff, name="all year")
    f.TariffPeriodFactory(season=season, day_type="weekday", starts_at=T(0), ends_at=T(0), energy_price_per_kwh="1.2")
    assert energy_price_at(tariff, at("2025-07-16 12:00")).energy_price_per_kwh == Decimal("1.2")
    with pytest.raises(TariffError, match="no saturday period covers 12:00 on 2025-07-19"):
        energy_price_at(tariff, at("2025-07-19 12:00"))


def test_a_day_between_seasons_belongs_to_the_season_that_started_last():
    # Plain data, no database: "winter" ends on 28 February, so 29 February 2028 falls in no season.
    flat = (PeriodRow("weekday", "base", T(0), T(0), Decimal("1")),)
    schedule = TariffSchedule(
        name="gap",
        currency="MXN",
        seasons=(
            SeasonRow("winter", (11, 1), (2, 28), flat),
            SeasonRow("summer", (3, 1), (10, 31), flat),
        ),
        holidays=frozenset(),
    )
    assert energy_price_at(schedule, dt.datetime(2028, 2, 29, 12)).season == "winter"
    assert energy_price_at(schedule, dt.datetime(2028, 3, 1, 12)).season == "summer"


# --- Holiday calendars (the ``holidays`` package) -----------------------------------------------------------
# Expected holidays are read off the law, not the package: Mexico's Revolution Day is the third Monday of
# November (Federal Labour Law art. 74); Corpus Christi (Fronleichnam) is Easter Sunday + 60 days, a public
# holiday in North Rhine-Westphalia and not in Berlin. Easter 2030 is 21 April, so Fronleichnam is 20 June.


def _with_calendar(tariff, code: str):
    tariff.holiday_calendar = code
    tariff.full_clean()
    tariff.save()
    return tariff


def test_a_mexican_holiday_years_ahead_is_priced_as_a_holiday_with_the_mx_calendar(gdmth):
    revolution_day = dt.date(2030, 11, 18)  # third Monday of November 2030
    assert revolution_day.weekday() == 0 and 15 <= revolution_day.day <= 21
    evening = at("2030-11-18 19:00")

    without = energy_price_at(gdmth, evening)
    assert (without.day_type, without.period, without.energy_price_per_kwh) == ("weekday", "punta", Decimal("2.10"))

    with_mx = energy_price_at(_with_calendar(gdmth, "MX"), evening)
    assert (with_mx.day_type, with_mx.period, with_mx.energy_price_per_kwh) == (
        "sunday_holiday",
        "intermedia",
        Decimal("1.60"),
    )
    # The Monday after is an ordinary weekday again.
    assert energy_price_at(gdmth, at("2030-11-25 19:00")).period == "punta"


def test_fronleichnam_is_a_holiday_in_north_rhine_westphalia_but_not_in_berlin(gdmth):
    corpus_christi = dt.date(2030, 4, 21) + dt.timedelta(days=60)
    assert corpus_christi == dt.date(2030, 6, 20) and corpus_christi.weekday() == 3  # a Thursday
    evening = dt.datetime(2030, 6, 20, 19, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))

    nrw = energy_price_at(_with_calendar(gdmth, "DE-NW"), evening)
    assert (nrw.day_type, nrw.period, nrw.energy_price_per_kwh) == ("sunday_holiday", "intermedia", Decimal("1.80"))

    berlin = energy_price_at(_with_calendar(gdmth, "DE-BE"), evening)
    assert (berlin.day_type, berlin.period, berlin.energy_price_per_kwh) == ("weekday", "punta", Decimal("2.30"))


def test_the_explicit_list_still_counts_alongside_the_calendar(gdmth):
    _with_calendar(gdmth, "DE-NW")
    # 16 September 2025 is on the tariff's own list (a Tuesday; not a German holiday).
    assert energy_price_at(gdmth, at("2025-09-16 19:30")).day_type == "sunday_holiday"
    assert energy_price_at(gdmth, at("2025-09-17 19:30")).day_type == "weekday"


@pytest.mark.parametrize("code", ["XX", "DE-ZZ"])
def test_an_unknown_holiday_calendar_is_a_validation_error(gdmth, code):
    from django.core.exceptions import ValidationError

    gdmth.holiday_calendar = code
    with pytest.raises(ValidationError) as raised:
        gdmth.full_clean()
    assert "holiday_calendar" in raised.value.message_dict


def test_the_api_takes_a_holiday_calendar_and_rejects_an_unknown_one(gdmth, api_client):
    manager = f.UserFactory(is_superuser=True)
    api_client.force_authenticate(manager)
    url = f"/api/v1/tariffs/{gdmth.pk}/"

    assert api_client.patch(url, {"holiday_calendar": "DE-NW"}).json()["holiday_calendar"] == "DE-NW"
    response = api_client.patch(url, {"holiday_calendar": "DE-XX"})

    assert response.status_code == 400
    assert "XX" in str(response.json()["holiday_calendar"])
