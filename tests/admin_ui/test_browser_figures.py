"""Times and figures read off the dashboard and the plan page in a real browser, against the database, in
English, Mexican Spanish and German.

Each language has its own date format (m/d/Y, d/m/Y, d.m.Y) and number separators ("1,234.5" / "1.234,5");
times are the depot's local times with the zone's abbreviation. The expected texts are built here from the rows
with Python's own date formatting, not with the page's code.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from charging.models import ChargingPlan
from charging.planning import plan_depot_night
from charging.selectors import night_costs, night_peak_kw_by_plan
from fleet.services import block_assign
from tests import factories as f
from tests.admin_ui.conftest import ARTIFACTS
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Per language: the short date-and-time format (strftime) and the number separators (thousands, decimal).
LANGUAGES = {
    "en": ("%m/%d/%Y %H:%M", ",", "."),
    "es-mx": ("%d/%m/%Y %H:%M", ",", "."),
    "de": ("%d.%m.%Y %H:%M", ".", ","),
}


def number(text: str, language: str) -> float:
    """A figure as the page writes it in ``language`` ("1.234,5" in German), as a float."""
    _format, thousands, decimal = LANGUAGES[language]
    return float(text.replace(thousands, "").replace(decimal, "."))


def local_label(moment: dt.datetime, zone, language: str) -> str:
    local = moment.astimezone(zone)
    return f"{local.strftime(LANGUAGES[language][0])} {local.tzname()}"


def figure_in(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return found.group(1)


def test_the_manager_reads_the_databases_times_and_figures_in_three_languages(
    live_server, browser, fleet_world, transactional_db
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    w = fleet_world
    depot, night = w["depot_a"], w["plan_a"].service_night
    # Three buses back tonight at 21:00 and out at 05:30 on 250 km blocks: a night with energy to buy.
    for _ in range(3):
        bus = f.VehicleFactory(organization=w["org"], home_depot=depot)
        for day, departs, returns in (
            (night, dt.time(13), dt.time(21)),
            (night + dt.timedelta(days=1), dt.time(5, 30), dt.time(12)),
        ):
            block = f.BlockFactory(
                depot=depot, service_date=day, departs_at=departs, returns_at=returns, distance_km=250
            )
            block_assign(block=block, vehicle=bus, service_date=day)
    first = plan_depot_night(depot=depot, service_night=night)
    # A re-plan at 04:30 (local), once charging has begun: the night's cost is then delivered + remaining.
    replanned_at = dt.datetime.combine(night + dt.timedelta(days=1), dt.time(4, 30), tzinfo=depot.zone)
    plan = plan_depot_night(depot=depot, service_night=night, now=replanned_at, trigger=ChargingPlan.Trigger.MANUAL)
    assert plan.horizon_start == replanned_at and first.energy_kwh > 0
    cost = night_costs([plan])[plan.pk]
    peak_kw = night_peak_kw_by_plan([plan])[plan.pk]
    zone = depot.zone
    driver = browser

    driver.get(live_server.url + reverse("admin:login"))
    driver.find_element(By.NAME, "username").send_keys(w["manager_a"].username)
    driver.find_element(By.NAME, "password").send_keys(DEFAULT_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "evf-dashboard"))

    for language in LANGUAGES:
        driver.add_cookie({"name": "django_language", "value": language})

        # The dashboard: the depot's card, tonight's plan line, the night's peak, when the plan was made.
        driver.get(live_server.url + reverse("admin:index"))
        WebDriverWait(driver, 20).until(
            lambda d, lang=language: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
        )
        card = driver.find_element(By.CSS_SELECTOR, f"article.evf-card[data-depot='{depot.code}']")
        plan_line = card.find_element(By.CSS_SELECTOR, ".evf-plan-line").text
        night = plan.service_night.strftime(LANGUAGES[language][0].split(" ")[0])
        assert night in plan_line and f"v{plan.version}" in plan_line
        assert (
            number(figure_in(plan_line, r"([\d.,]+) kWh"), language) == round(cost.night_kwh) > round(plan.energy_kwh)
        )
        assert number(figure_in(plan_line, r"kWh, ([\d.,]+) MXN"), language) == round(cost.night)
        assert number(figure_in(plan_line, r"\(([\d.,]+) MXN"), language) == round(cost.remaining)
        peak_text = card.find_element(By.CSS_SELECTOR, ".evf-night-peak").text
        assert number(figure_in(peak_text, r"([\d.,]+) kW"), language) == round(peak_kw)
        last_plan = card.find_element(By.CSS_SELECTOR, "time.evf-last-plan").text
        assert last_plan == local_label(plan.created_at, zone, language)
        driver.save_screenshot(str(ARTIFACTS / f"figures-dashboard-{language}.png"))

        # The plan page: made when (local, labelled), the night's peak against the limit, the night's cost.
        driver.get(live_server.url + reverse("admin:charging_chargingplan_overview", args=[plan.pk]))
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "evf-night-cost"))
        note = driver.find_element(By.CSS_SELECTOR, ".evf-note").text
        assert local_label(plan.created_at, zone, language) in note
        peak_and_limit = driver.find_element(By.ID, "evf-night-peak").text
        peak, limit = re.fullmatch(r"([\d.,]+) / ([\d.,]+) kW", peak_and_limit).groups()
        assert number(peak, language) == round(peak_kw) and number(limit, language) == round(depot.grid_limit_kw)
        night_cost = driver.find_element(By.ID, "evf-night-cost")
        assert Decimal(night_cost.get_attribute("data-night")) == cost.night
        total = night_cost.find_element(By.CSS_SELECTOR, ".evf-night-total").text
        assert number(total, language) == round(cost.night)
        split = night_cost.find_element(By.CSS_SELECTOR, ".evf-kpi-note").text
        assert local_label(plan.horizon_start, zone, language) in split
        assert number(figure_in(split, r"^([\d.,]+) MXN"), language) == round(cost.delivered) > 0
        # The readiness table: each vehicle's departure (local time) and departure SoC.
        for charge in plan.charges.select_related("vehicle"):
            row = driver.find_element(
                By.XPATH, f"//table[@id='readiness-table']//tr[td/a='{charge.vehicle.fleet_number}']"
            )
            assert charge.departure_at.astimezone(zone).strftime("%H:%M") in row.text
            assert f"{round(charge.departure_soc_pct)} %" in row.text
        driver.save_screenshot(str(ARTIFACTS / f"figures-plan-{language}.png"))
