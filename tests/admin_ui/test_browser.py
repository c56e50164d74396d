"""The fleet manager's admin in a real browser: the demo deployment, its dashboard, a plan and a pack's health.

The charts are checked *with their data* (the Chart.js objects the page built), in English and in Spanish, and
each page is saved as a screenshot under test-artifacts/admin_ui/.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from batteries.admin_views import PACKS_PER_PAGE
from batteries.models import BatteryPack, HealthObservation
from charging.models import ChargingPlan
from console.demo import ZONE, build_demo
from fleet.models import Depot
from fleet.scoping import Action, restrict
from tests.admin_ui.conftest import ARTIFACTS, plan_tonight, synthetic_forecast

pytestmark = [pytest.mark.browser, pytest.mark.slow]

User = get_user_model()

CHART_DATA = """
const chart = (window.evfleetCharts || {})[arguments[0]];
if (!chart) return null;
return chart.data.datasets.map(d => ({label: d.label, n: d.data.length,
  sum: d.data.reduce((s, v) => s + (typeof v === "number" ? v : (v && typeof v.y === "number" ? v.y : 0)), 0)}));
"""


def demo_deployment():
    """The Sonora demo with tonight planned in every depot and a forecast for every tested pack."""
    build_demo(today=timezone.localdate(timezone=ZONE))
    for depot in Depot.objects.all():
        plan_tonight(depot)
    # The forecaster is exercised in tests/batteries; here a forecast that follows each pack's observed trend.
    for pack in BatteryPack.objects.filter(
        health_observations__isnull=False, installations__removed_at__isnull=True
    ).distinct():
        observed = list(HealthObservation.objects.filter(pack=pack).order_by("observed_at"))
        first, last = observed[0], observed[-1]
        years = max((last.observed_at - first.observed_at).days / 365.25, 0.5)
        fade = max((first.soh_pct - last.soh_pct) / years, 0.8) if len(observed) > 1 else 2.0
        synthetic_forecast(pack, soh_now_pct=last.soh_pct, fade_pct_per_year=round(fade, 2))


def wait_for_chart(driver, canvas_id: str, timeout_s: float = 20.0) -> list[dict]:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s).until(lambda d: d.execute_script(CHART_DATA, canvas_id))


def shot(driver, name: str) -> None:
    # The whole page, not just the first screenful: widen the window's height to the document's.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1440, min(max(height, 900), 4000))
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    driver.set_window_size(1440, 1000)


def open_page(driver, live_server, url: str) -> None:
    driver.get(live_server.url + url)


def test_a_fleet_manager_sees_tonight_the_plan_and_battery_health_drawn_in_english_and_spanish(
    live_server, browser, transactional_db
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    demo_deployment()
    hermosillo = Depot.objects.get(code="hmo")
    plan = ChargingPlan.objects.get(depot=hermosillo, status="active")
    fast_pack = BatteryPack.objects.get(
        installations__removed_at__isnull=True, installations__vehicle__fleet_number="HMO-006"
    )
    driver = browser

    # Log in as the demo's fleet manager, through the login form.
    open_page(driver, live_server, reverse("admin:login"))
    driver.find_element(By.NAME, "username").send_keys("manager")
    driver.find_element(By.NAME, "password").send_keys("evfleet-manager")
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "evf-dashboard"))

    # The dashboard: one card per depot, each with a readiness verdict and tonight's plan in one line.
    cards = driver.find_elements(By.CSS_SELECTOR, "article.evf-card")
    assert sorted(c.get_attribute("data-depot") for c in cards) == ["gym", "hmo", "nog", "slrc"]
    assert all(c.get_attribute("data-readiness") in ("green", "amber", "red") for c in cards)
    hmo_card = next(c for c in cards if c.get_attribute("data-depot") == "hmo")
    assert "kWh" in hmo_card.find_element(By.CSS_SELECTOR, ".evf-plan-line").text
    assert "Tonight in your depots" in driver.page_source
    shot(driver, "01-dashboard-en")

    # The plan page: power stacked by vehicle over every slot, the site limit and the price on their axes.
    open_page(driver, live_server, reverse("admin:charging_chargingplan_overview", args=[plan.pk]))
    datasets = wait_for_chart(driver, "plan-chart")
    by_label = {d["label"]: d for d in datasets}
    lines = ("Base load (kW)", "Total site demand (kW)", "Energy price (MXN/kWh)")
    limit = next(d for d in datasets if d["label"].startswith("Grid limit (kW)"))
    vehicles = [d for d in datasets if d["label"] not in lines and d is not limit]
    assert vehicles and all(d["n"] == plan.num_slots for d in vehicles)
    assert sum(d["sum"] for d in vehicles) > 0  # power was drawn, not just axes
    assert limit["n"] == plan.num_slots and limit["sum"] > 0
    total = by_label["Total site demand (kW)"]
    assert total["sum"] == pytest.approx(sum(d["sum"] for d in vehicles) + by_label["Base load (kW)"]["sum"], rel=0.01)
    assert by_label["Energy price (MXN/kWh)"]["n"] == plan.num_slots
    rows = driver.find_elements(By.CSS_SELECTOR, "#readiness-table tbody tr[data-level]")
    assert len(rows) == plan.charges.count()
    shot(driver, "02-plan-en")

    # A fast-ageing pack: observations, the forecast's median and band, the 80 % line.
    open_page(driver, live_server, reverse("admin:batteries_batterypack_health", args=[fast_pack.pk]))
    datasets = {d["label"]: d for d in wait_for_chart(driver, "health-chart")}
    assert datasets["Forecast (median)"]["n"] == 121
    assert datasets["P10–P90 band"]["n"] == 121
    assert datasets["Observed SoH"]["n"] == fast_pack.health_observations.count() > 0
    assert datasets["End of life (80 %)"]["n"] == 2
    shot(driver, "03-pack-health-en")

    # The fleet: packs ranked by remaining life, each ageing rate against its model and depot. The table shows
    # one page of packs, the chart every pack of the fleet that is in a vehicle and has a forecast: both are
    # checked against the database, not against each other, so that this holds past one page.
    open_page(driver, live_server, reverse("admin:batteries_batterypack_fleet_health"))
    datasets = {d["label"]: d for d in wait_for_chart(driver, "ageing-chart")}
    packs_drawn = datasets["Packs (red: ageing fast for their group)"]["n"]
    visible_packs = BatteryPack.objects.filter(
        pk__in=restrict(BatteryPack.objects.all(), User.objects.get(username="manager"), Action.VIEW).values("pk")
    )
    in_a_vehicle_with_a_forecast = visible_packs.filter(
        installations__removed_at__isnull=True, forecasts__isnull=False
    ).distinct()
    assert packs_drawn == in_a_vehicle_with_a_forecast.count() > 10
    # "Packs 1–100 of N": the page states the whole fleet's count, and shows at most one page of it.
    page_range = driver.find_element(By.XPATH, "//table[@id='packs-by-life']/preceding-sibling::p[1]").text
    first, last, total = (
        int(re.sub(r"\D", "", n)) for n in re.fullmatch(r"Packs (\S+)–(\S+) of (\S+)", page_range).groups()
    )
    assert total == visible_packs.count()
    assert (first, last) == (1, min(total, PACKS_PER_PAGE))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#packs-by-life tbody tr")) == last
    shot(driver, "04-fleet-health-en")

    # Switch to Spanish with the header's language selector: labels and number formats follow.
    open_page(driver, live_server, reverse("admin:index"))
    Select(driver.find_element(By.ID, "language-select")).select_by_value("es-mx")
    WebDriverWait(driver, 20).until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es-mx")
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "evf-dashboard"))
    assert "Esta noche en sus depósitos" in driver.page_source
    assert "Plan de esta noche" in driver.page_source
    shot(driver, "05-dashboard-es")

    open_page(driver, live_server, reverse("admin:charging_chargingplan_overview", args=[plan.pk]))
    labels = {d["label"] for d in wait_for_chart(driver, "plan-chart")}
    assert "Precio de la energía (MXN/kWh)" in labels  # the new chart labels wait for the catalogue
    assert driver.find_element(By.ID, "replan-button").get_attribute("value") == "Volver a planificar ahora"
    shot(driver, "06-plan-es")

    open_page(driver, live_server, reverse("admin:batteries_batterypack_health", args=[fast_pack.pk]))
    labels = {d["label"] for d in wait_for_chart(driver, "health-chart")}
    assert "Pronóstico (mediana)" in labels
    shot(driver, "07-pack-health-es")

    # Re-plan from the page: a new active version, and the page says so.
    open_page(driver, live_server, reverse("admin:charging_chargingplan_overview", args=[plan.pk]))
    driver.find_element(By.ID, "replan-button").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "ul.messagelist li.success"))
    assert ChargingPlan.objects.get(depot=hermosillo, service_night=plan.service_night, status="active").version == 2
    wait_for_chart(driver, "plan-chart")
    shot(driver, "08-replanned-es")
