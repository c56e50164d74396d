"""The live fleet map in the admin: its data (scoped, coloured by SoC, last-seen age) and, in Chromium, drawn."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from citydata.admin_views import map_data
from fleet.models import VehicleLiveState
from fleet.telemetry.ingest import telemetry_ingest
from tests import factories as f
from tests.admin_ui.conftest import ARTIFACTS, browser  # noqa: F401 (the fixture)
from tests.fleet.test_telemetry_support import reading

MAP_URL = "admin:citydata_fleet_map"


@pytest.fixture
def located(two_depots):
    """Depots with coordinates; A has a bus at 15 % seen now and one at 80 % seen two hours ago; B one bus."""
    w = two_depots
    for side, (lat, lon) in (("a", (29.0729, -110.9559)), ("b", (31.3086, -110.9422))):
        depot = w[f"depot_{side}"]
        depot.latitude, depot.longitude = lat, lon
        depot.save()
    now = timezone.now().replace(microsecond=0)
    telemetry_ingest(readings=[reading(now - dt.timedelta(minutes=1), soc_pct=15.0)], vehicle=w["vehicle_a"])
    w["old_a"] = f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"])
    telemetry_ingest(readings=[reading(now - dt.timedelta(hours=2), soc_pct=80.0, latitude=29.09)], vehicle=w["old_a"])
    telemetry_ingest(readings=[reading(now, soc_pct=55.0, latitude=31.31, longitude=-110.94)], vehicle=w["vehicle_b"])
    return w


@pytest.mark.django_db
def test_the_map_data_is_scoped_and_coloured_by_soc_with_age(located, django_assert_max_num_queries):
    w = located
    with django_assert_max_num_queries(4):
        data = map_data(w["manager_a"])
    shown = {v["fleet_number"]: v for v in data["vehicles"]}
    assert set(shown) == {w["vehicle_a"].fleet_number, w["old_a"].fleet_number}  # not B's bus
    assert shown[w["vehicle_a"].fleet_number]["band"] == "low"
    assert not shown[w["vehicle_a"].fleet_number]["stale"]
    old = shown[w["old_a"].fleet_number]
    assert old["band"] == "high" and old["stale"] and 119 <= old["age_min"] <= 125
    assert [d["name"] for d in data["depots"]] == [w["depot_a"].name]
    assert VehicleLiveState.objects.count() == 3


@pytest.mark.django_db
def test_the_map_page_shows_only_the_users_depots(located, client):
    w = located
    client.force_login(w["manager_a"])
    page = client.get(reverse(MAP_URL))
    assert page.status_code == 200
    text = page.content.decode()
    assert w["vehicle_a"].fleet_number in text and w["depot_a"].name in text
    assert w["vehicle_b"].fleet_number not in text and w["depot_b"].name not in text
    client.force_login(f.UserFactory(is_staff=False))
    assert client.get(reverse(MAP_URL)).status_code == 302  # to the login page


@pytest.mark.browser
@pytest.mark.slow
def test_the_map_draws_every_marker_even_without_tiles(live_server, browser, transactional_db, settings):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    org = f.OrganizationFactory()
    depot = f.DepotFactory(organization=org, name="Hermosillo", code="hmo", latitude=29.0729, longitude=-110.9559)
    f.manager_of(depot, username="map-manager")
    now = timezone.now().replace(microsecond=0)
    buses = []
    for i, (soc, minutes) in enumerate(((12.0, 1), (35.0, 3), (90.0, 180))):
        bus = f.VehicleFactory(organization=org, home_depot=depot)
        telemetry_ingest(
            readings=[reading(now - dt.timedelta(minutes=minutes), soc_pct=soc, latitude=29.06 + 0.01 * i)],
            vehicle=bus,
        )
        buses.append(bus)
    # No tile server reachable (as offline): a closed local port.
    settings.EVFLEET_MAP_TILE_URL = "http://127.0.0.1:9/{z}/{x}/{y}.png"
    driver = browser
    driver.get(live_server.url + reverse("admin:login"))
    driver.find_element(By.NAME, "username").send_keys("map-manager")
    driver.find_element(By.NAME, "password").send_keys(f.DEFAULT_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "content-main"))
    driver.get(live_server.url + reverse(MAP_URL))
    drawn = WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return window.evfleetMap && window.evfleetMap.drawn")
    )
    assert sorted(v["fleet_number"] for v in drawn["vehicles"]) == sorted(b.fleet_number for b in buses)
    colours = {v["fleet_number"]: (v["colour"], v["stale"]) for v in drawn["vehicles"]}
    assert colours[buses[0].fleet_number] == ("#c0392b", False)
    assert colours[buses[1].fleet_number] == ("#e69f00", False)
    assert colours[buses[2].fleet_number] == ("#2e8b57", True)
    # The markers are really in the page (SVG paths), coloured, while no tile could load.
    fills = driver.execute_script(
        "return Array.from(document.querySelectorAll('path.evf-vehicle')).map(p => p.getAttribute('fill'))"
    )
    assert sorted(fills) == sorted(["#c0392b", "#e69f00", "#2e8b57"])
    loaded_tiles = driver.execute_script(
        "return Array.from(document.querySelectorAll('img.leaflet-tile-loaded')).length"
    )
    assert loaded_tiles == 0
    assert drawn["depots"] == [{"id": depot.pk, "name": "Hermosillo"}]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "citydata-fleet-map.png"))
