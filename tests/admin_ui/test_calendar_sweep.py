"""The calendar sweep: the dashboard, the plan page and the night's horizon with the clock frozen on the days
that break date code (days and months below 10, a UTC date already tomorrow in Hermosillo, the year's end,
both of Berlin's daylight-saving changes). The whole world (plans, alerts) is made at the frozen moment.

Expected values come from ``zoneinfo`` and ``strftime``, not from the code under test.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.urls import reverse

from charging.models import ChargingPlan
from charging.planning import current_service_night, night_horizon
from fleet.models import Depot

HERMOSILLO = zoneinfo.ZoneInfo("America/Hermosillo")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = dt.UTC

MOMENTS = {
    "day-and-month-below-10": dt.datetime(2026, 3, 4, 5, 6, tzinfo=UTC),  # 3 March, 22:06 in Hermosillo
    "new-year-in-utc-only": dt.datetime(2027, 1, 1, 3, 30, tzinfo=UTC),  # still 31 December in Hermosillo
    "year-end-evening": dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
    "berlin-spring-change": dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # 01:30 CET, half an hour before
    "berlin-autumn-change": dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST, the first of two
}


@pytest.fixture(params=list(MOMENTS.values()), ids=list(MOMENTS))
def frozen(request):
    """Freezes the clock before the world is built (list it first among a test's fixtures)."""
    with time_machine.travel(request.param, tick=False):
        yield request.param


def _service_night(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.date:
    local = moment.astimezone(zone)
    return local.date() - dt.timedelta(days=1) if local.hour < 12 else local.date()


def test_dashboard_and_plan_page_dates(frozen, client, fleet_world):
    w = fleet_world
    plan = w["plan_a"]
    client.force_login(w["manager_a"])

    dashboard = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    page = client.get(
        reverse("admin:charging_chargingplan_overview", args=[plan.pk]), HTTP_ACCEPT_LANGUAGE="es-MX"
    ).content.decode()

    night = ChargingPlan.objects.get(pk=plan.pk).service_night
    assert night == frozen.astimezone(HERMOSILLO).date()  # planned "tonight" on the depot's calendar
    assert f"Night of {night:%m/%d/%Y}, v1" in dashboard
    made = frozen.astimezone(HERMOSILLO)
    assert f"{made:%m/%d/%Y %H:%M} MST" in dashboard  # "Last plan", made at the frozen moment
    assert f"{night:%d/%m/%Y}" in page  # the title's night, d/m/Y in Mexico
    assert f"{made:%d/%m/%Y %H:%M} MST" in page  # "made ..."
    assert current_service_night(w["depot_a"], frozen) == _service_night(frozen, HERMOSILLO)


def test_the_night_horizon_in_berlin(frozen, two_depots):
    depot = two_depots["depot_b"]
    Depot.objects.filter(pk=depot.pk).update(time_zone="Europe/Berlin")
    depot.refresh_from_db()

    night = current_service_night(depot)
    horizon = night_horizon(depot, night)

    assert night == _service_night(frozen, BERLIN)
    start, end = horizon.start.astimezone(BERLIN), horizon.end.astimezone(BERLIN)
    assert (start.date(), start.time()) == (night, dt.time(12))
    assert (end.date(), end.time()) == (night + dt.timedelta(days=1), dt.time(12))
    hours = (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600  # real hours
    assert horizon.num_slots == hours * 4 and hours in (23, 24, 25)
