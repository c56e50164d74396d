"""The fleet battery health page, paged: 100 packs a page in the order of remaining life, each pack still compared
with its whole group, the depot filter kept in the page links, and the same queries for every page.

A fleet of 126 packs in depot A (two pages) and a few in depot B, which depot A's manager must never see.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from batteries.admin_views import PACKS_PER_PAGE
from tests import factories as f

pytestmark = pytest.mark.django_db

URL = reverse("admin:batteries_batterypack_fleet_health")
SHORT_LIVED = [f"A-{i:03d}" for i in range(PACKS_PER_PAGE)]  # 500-599 days left, 3 %/yr: page 1
LONG_LIVED = [f"L-{i:03d}" for i in range(20)]  # 2,000-2,019 days left, 1 %/yr
ODD_ONE = "L-ODD"  # 3,000 days left, 3.5 %/yr: page 2, against a group whose median is 3 %/yr
NO_FORECAST = [f"N-{i}" for i in range(5)]  # last, by serial
EXPECTED_ORDER = SHORT_LIVED + LONG_LIVED + [ODD_ONE] + NO_FORECAST


def pack_in(world, depot, serial: str, **forecast):
    vehicle = f.VehicleFactory(organization=world["org"], home_depot=depot, model=world["vehicle_a"].model)
    pack = f.BatteryPackFactory(organization=world["org"], serial=serial)
    f.PackInstallationFactory(pack=pack, vehicle=vehicle)
    if forecast:
        f.SoHForecastFactory(pack=pack, **forecast)
    return pack


def fill_depot_a(world) -> None:
    depot = world["depot_a"]
    for i, serial in enumerate(SHORT_LIVED):
        pack_in(world, depot, serial, rul_days=500 + i, fade_pct_per_year=3.0)
    for i, serial in enumerate(LONG_LIVED):
        pack_in(world, depot, serial, rul_days=2000 + i, fade_pct_per_year=1.0)
    pack_in(world, depot, ODD_ONE, rul_days=3000, fade_pct_per_year=3.5)
    for serial in NO_FORECAST:
        pack_in(world, depot, serial)


@pytest.fixture
def big_fleet(two_depots):
    w = two_depots
    fill_depot_a(w)
    for i in range(3):  # the shortest lives of all, fading fastest: they would top every ranking if they leaked
        pack_in(w, w["depot_b"], f"NOG-PACK-{i}", rul_days=10 + i, fade_pct_per_year=9.0)
    return w


def serials(response) -> list[str]:
    assert response.status_code == 200
    return [row.pack.serial for row in response.context["rows"]]


def test_the_packs_come_100_a_page_in_the_order_of_remaining_life(client, big_fleet):
    client.force_login(big_fleet["manager_a"])

    first = client.get(URL)
    second = client.get(URL, {"page": 2})

    assert serials(first) + serials(second) == EXPECTED_ORDER
    assert len(serials(first)) == PACKS_PER_PAGE
    assert "Packs 1–100 of 126" in first.content.decode()
    assert "Packs 101–126 of 126" in second.content.decode()
    assert "126 packs, 121 with a forecast" in first.content.decode()
    for page in (first, second):
        assert "NOG-PACK" not in page.content.decode()


def test_a_pack_on_the_second_page_is_compared_with_its_whole_group(client, big_fleet):
    """Page 2 alone has a median of 1 %/yr; the group's (all 121 forecast packs) is 3 %/yr."""
    client.force_login(big_fleet["manager_a"])

    second = client.get(URL, {"page": 2})

    odd = next(row for row in second.context["rows"] if row.pack.serial == ODD_ONE)
    assert odd.group_median == pytest.approx(3.0)
    assert odd.fast is False  # 3.5 / 3.0; against page 2 alone it would be 3.5 / 1.0, "ageing fast"
    chart = second.context["chart_data"]
    assert len(chart["packs"]) == 121  # the chart is the whole fleet's, whatever the page
    assert [g["median"] for g in chart["groups"]] == [pytest.approx(3.0)]
    assert second.context["fast_count"] == 0


def page_links(response) -> list[dict]:
    """The query of each link in the page navigation."""
    nav = re.search(r'<nav[^>]*id="fleet-health-pages".*?</nav>', response.content.decode(), re.S).group(0)
    return [parse_qs(html.unescape(href).lstrip("?")) for href in re.findall(r'href="([^"]*)"', nav)]


def test_the_page_links_keep_the_depot_filter(client, big_fleet):
    w = big_fleet
    client.force_login(w["manager_a"])
    depot_a = w["depot_a"].pk

    first = client.get(URL, {"depot": depot_a})
    second = client.get(URL, {"depot": depot_a, "page": 2})
    unfiltered = client.get(URL)

    assert page_links(first) == [{"depot": [str(depot_a)], "page": ["2"]}] * 2  # "2" and "Next"
    assert page_links(second) == [{"depot": [str(depot_a)], "page": ["1"]}] * 2  # "Previous" and "1"
    assert serials(first) + serials(second) == EXPECTED_ORDER
    assert page_links(unfiltered) == [{"page": ["2"]}] * 2


def test_another_depot_in_the_filter_shows_no_pack_and_no_pages(client, big_fleet):
    w = big_fleet
    client.force_login(w["manager_a"])

    response = client.get(URL, {"depot": w["depot_b"].pk})

    assert serials(response) == []
    assert response.context["paginator"].count == 0
    assert "fleet-health-pages" not in response.content.decode()


@pytest.mark.parametrize("page", ["abc", "0", "-1", "99", "1e9", ""])
def test_a_page_number_that_is_no_page_shows_a_page_instead_of_an_error(client, big_fleet, page):
    client.force_login(big_fleet["manager_a"])

    response = client.get(URL, {"page": page})

    assert serials(response) in (EXPECTED_ORDER[:PACKS_PER_PAGE], EXPECTED_ORDER[PACKS_PER_PAGE:])


def _queries(client, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, params)
    assert response.status_code == 200
    return len(queries)


def test_every_page_costs_the_same_queries_as_a_fleet_of_three_packs(client, two_depots):
    w = two_depots
    client.force_login(w["manager_a"])
    for i in range(3):
        pack_in(w, w["depot_a"], f"S-{i}", rul_days=100 + i, fade_pct_per_year=2.0)
    small = _queries(client)

    small_filtered = _queries(client, depot=w["depot_a"].pk)

    fill_depot_a(w)
    first, second = _queries(client), _queries(client, page=2)
    filtered = [_queries(client, page=page, depot=w["depot_a"].pk) for page in (1, 2)]

    assert client.get(URL, {"page": 2}).context["paginator"].num_pages == 2
    assert first == second == small
    assert filtered == [small_filtered, small_filtered]  # the filter lists my depots once: one more, every page
    assert small <= 12
