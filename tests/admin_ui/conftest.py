"""Fixtures of the fleet manager's admin tests: a world of two depots with plans and forecasts, and a browser.

Browser tests (``@pytest.mark.browser``) drive headless Chromium through Selenium. Without Chromium they skip,
except in CI (``EVFLEET_REQUIRE_SERVICES=1``), where they fail: the charts must be seen drawn there.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone, translation

from tests import factories as f

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin_ui"
CHROMIUM = os.environ.get("EVFLEET_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EVFLEET_CHROMEDRIVER", "/usr/bin/chromedriver")


def pytest_configure(config):
    # Also declared in pyproject.toml's markers; repeated here so that --strict-markers never trips on it.
    config.addinivalue_line("markers", "browser: drives headless Chromium (Selenium); required in CI")


@pytest.fixture(autouse=True)
def _language_reset():
    """Each test starts and ends in the default language: the test client's LocaleMiddleware leaves the last
    request's language active in the thread, so a test that asks for German would change the next one's text."""
    translation.deactivate()
    yield
    translation.deactivate()


def synthetic_forecast(pack, *, soh_now_pct: float, fade_pct_per_year: float, as_of: dt.date | None = None):
    """A stored forecast shaped like the forecaster's: monthly P10/P50/P90 for ten years, its dates derived.

    The admin draws what is stored; the forecaster itself is tested in tests/batteries.
    """
    as_of = as_of or timezone.localdate()
    points, eol, floor = [], None, None
    floor_pct = pack.warranty_min_soh_pct
    for month in range(0, 121):
        years = month / 12
        day = as_of + dt.timedelta(days=round(365.25 * years))
        p50 = soh_now_pct - fade_pct_per_year * years
        spread = 0.3 + 0.35 * years
        points.append(
            {
                "date": day.isoformat(),
                "soh_pct": round(p50, 2),
                "soh_p10_pct": round(p50 - spread, 2),
                "soh_p90_pct": round(p50 + spread, 2),
                "resistance_factor": round(1 + 0.02 * years, 3),
            }
        )
        if eol is None and p50 <= 80:
            eol = day
        if floor is None and floor_pct is not None and p50 <= floor_pct:
            floor = day
    return f.SoHForecastFactory(
        pack=pack,
        as_of=as_of,
        soh_now_pct=soh_now_pct,
        fade_pct_per_year=fade_pct_per_year,
        eol_80_on=eol,
        warranty_floor_on=floor,
        rul_days=(eol - as_of).days if eol else 3650,
        points=points,
    )


def plan_tonight(depot):
    """Plan the night that starts this evening (local date), as ``manage.py run_night`` does."""
    from charging.planning import plan_depot_night

    return plan_depot_night(depot=depot, service_night=timezone.localdate(timezone=depot.zone))


@pytest.fixture
def fleet_world(two_depots):
    """``two_depots`` with a DC charger, a tariff-less plan for tonight, a pack with observations and a forecast
    on each side. Depot A's manager (``manager_a``) must see side A only."""
    w = two_depots
    for side in ("a", "b"):
        depot, vehicle = w[f"depot_{side}"], w[f"vehicle_{side}"]
        charger = f.ChargerFactory(depot=depot, name=f"DC {side}", kind="dc", max_kw=150)
        f.ConnectorFactory(charger=charger, connector_id=1, standard="ccs2", max_kw=150)
        pack = f.BatteryPackFactory(organization=w["org"], serial=f"PACK-{side.upper()}")
        f.PackInstallationFactory(pack=pack, vehicle=vehicle)
        for years_ago, soh in ((3, 98.0), (2, 96.1), (1, 94.0)):
            f.HealthObservationFactory(
                pack=pack, soh_pct=soh, observed_at=timezone.now() - dt.timedelta(days=365 * years_ago)
            )
        synthetic_forecast(pack, soh_now_pct=92.0, fade_pct_per_year=2.0 if side == "a" else 4.0)
        w[f"pack_{side}"] = pack
        w[f"plan_{side}"] = plan_tonight(depot)
        w[f"alert_{side}"] = f.AlertFactory(
            organization=w["org"], depot=depot, severity="critical", message=f"Charger fault at {depot.name}"
        )
    w["manager_a"].is_staff = True
    w["manager_a"].save(update_fields=["is_staff"])
    return w


# --- the browser ----------------------------------------------------------------------------------------------


def _missing(reason: str):
    if os.environ.get("EVFLEET_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (EVFLEET_REQUIRE_SERVICES=1: browser tests are required)", pytrace=False)
    pytest.skip(f"{reason}: apt-get install -y chromium chromium-driver")


@pytest.fixture
def browser():
    """Headless Chromium with a fresh profile, English by default (the test switches languages itself)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        _missing(f"Chromium ({CHROMIUM}) or its driver ({CHROMEDRIVER}) is missing")
    profile = tempfile.mkdtemp(prefix="evfleet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1440,1000",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
