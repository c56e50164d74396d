"""Figures named for what they are: the night's peak demand is not the peak in a demand-charge window, a faulted
charger shows on the dashboard, a bus in the workshop is not counted ready, the API's numbers are rounded, and a
remaining life capped at the forecast horizon reads "> 10 years"."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from batteries.models import SoHForecast
from charging.models import Charger, ChargingPlan, Connector, PlannedCharge
from charging.nightly import plan_outcome
from fleet.models import Vehicle

# A night's charging load by slot (kW) over a 40 kW base load: the site's highest demand is 160.4 kW, outside
# the demand-charge window, where the peak stored on the plan is 70 kW.
LOAD_KW = [0.0, 50.0, 120.4, 30.0]
BASE_LOAD_KW = 40.0
WINDOW_PEAK_KW = 70.0


@pytest.fixture
def shaped_plan(fleet_world):
    plan = fleet_world["plan_a"]
    charges = list(plan.charges.all())
    assert charges, "the fixture's plan charges vehicle A"
    power = LOAD_KW + [0.0] * (plan.num_slots - len(LOAD_KW))
    PlannedCharge.objects.filter(pk=charges[0].pk).update(power_kw=power)
    PlannedCharge.objects.filter(plan=plan).exclude(pk=charges[0].pk).update(power_kw=[0.0] * plan.num_slots)
    instance = {**plan.instance, "base_load_kw": [BASE_LOAD_KW] * plan.num_slots}
    ChargingPlan.objects.filter(pk=plan.pk).update(
        peak_kw=WINDOW_PEAK_KW, solve_seconds=0.16316426299999875, instance=instance
    )
    return fleet_world


def _card(page: str, code: str) -> str:
    match = re.search(rf'<article[^>]*data-depot="{code}".*?</article>', page, re.S)
    assert match
    return re.sub(r"\s+", " ", match.group(0))


def test_the_dashboard_names_both_peaks(client, shaped_plan):
    w = shaped_plan
    client.force_login(w["manager_a"])

    card = _card(client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode(), "hmo")

    assert f"Night's peak demand 160 kW of {w['depot_a'].grid_limit_kw:,.0f} kW grid limit" in card
    assert "peak in the demand-charge window 70 kW" in card


def test_the_plan_page_and_run_night_name_both_peaks(client, shaped_plan):
    w = shaped_plan
    plan = ChargingPlan.objects.get(pk=w["plan_a"].pk)
    client.force_login(w["manager_a"])

    page = client.get(reverse("admin:charging_chargingplan_overview", args=[plan.pk])).content.decode()
    outcome = plan_outcome(plan)

    assert re.search(r'id="evf-night-peak">\s*160 /', page)
    assert re.search(r'id="evf-window-peak">\s*70 kW', page)
    assert "night's peak 160 kW" in outcome.summary and "peak in the demand-charge window 70 kW" in outcome.summary
    assert outcome.counts["night_peak_kw"] == 160.4 and outcome.counts["window_peak_kw"] == WINDOW_PEAK_KW


def test_faulted_chargers_and_vehicles_out_of_service_on_the_dashboard(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    before = _card(client.get(reverse("admin:index")).content.decode(), "hmo")
    ready_before = int(re.search(r"(\d+) ready", before).group(1))
    assert "Chargers out of order" not in before and ready_before >= 1

    Connector.objects.filter(charger__depot=w["depot_a"]).update(status=Charger.Status.FAULTED)
    Vehicle.objects.filter(pk=w["vehicle_a"].pk).update(status=Vehicle.Status.MAINTENANCE)
    after = _card(client.get(reverse("admin:index")).content.decode(), "hmo")

    assert re.search(r'Chargers out of order</a>: <span[^>]*data-faulted="1"', after)
    vehicle_a_ready = PlannedCharge.objects.filter(plan=w["plan_a"], vehicle=w["vehicle_a"], shortfall_kwh__lte=0.05)
    assert vehicle_a_ready.count() == 1  # it was counted ready; in the workshop it no longer is
    assert int(re.search(r"(\d+) ready", after).group(1)) == ready_before - vehicle_a_ready.count()


def test_the_plan_api_rounds_its_figures(api_client, shaped_plan):
    w = shaped_plan
    api_client.force_authenticate(w["manager_a"])

    body = api_client.get(f"/api/v1/charging-plans/{w['plan_a'].pk}/").json()

    assert body["solve_seconds"] == 0.163
    for charge in body["charges"]:
        assert all(kw == round(kw, 3) for kw in charge["power_kw"])
    for key in ("energy_kwh", "peak_kw", "site_limit_kw", "shortfall_kwh"):
        assert body[key] == round(body[key], 3), key


def test_a_life_beyond_the_horizon_reads_more_than_ten_years(client, fleet_world):
    w = fleet_world
    forecast = SoHForecast.objects.filter(pack=w["pack_a"]).latest("as_of")
    SoHForecast.objects.filter(pk=forecast.pk).update(rul_days=3654, rul_censored=True, eol_80_on=None)
    client.force_login(w["manager_a"])

    page = client.get(reverse("admin:batteries_batterypack_health", args=[w["pack_a"].pk])).content.decode()
    fleet = client.get(reverse("admin:batteries_batterypack_fleet_health")).content.decode()

    assert re.search(r'id="rul">&gt; 10 years<', page)
    assert "&gt; 10 years" in fleet and "3,654" not in fleet and "3,654" not in page


def test_the_plan_chart_groups_vehicles_and_fits_its_scale_to_the_demand():
    import datetime as dt

    from charging.admin_views import VEHICLES_DRAWN_ALONE, plan_chart_data
    from fleet.models import Depot

    n = 4
    base = [20.0, 20.0, 30.0, 30.0]
    plan = ChargingPlan(
        depot=Depot(time_zone="America/Hermosillo"),
        horizon_start=dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC),
        slot_minutes=15,
        num_slots=n,
        instance={"base_load_kw": base, "site_limit_kw": [980.0, 980.0, 970.0, 970.0]},
    )
    # Twelve buses drawing 10 kW less each: the eight biggest alone, the four smallest as one band.
    charges = [
        PlannedCharge(vehicle=Vehicle(fleet_number=f"B{i:02d}"), power_kw=[120.0 - 10 * i] * n) for i in range(12)
    ]

    data = plan_chart_data(plan, charges)

    labels = [v["label"] for v in data["vehicles"]]
    assert labels[:VEHICLES_DRAWN_ALONE] == [f"B{i:02d}" for i in range(VEHICLES_DRAWN_ALONE)]
    assert labels[-1] == "Other vehicles (4)" and len(labels) == VEHICLES_DRAWN_ALONE + 1
    assert data["vehicles"][-1]["power_kw"] == [40.0 + 30.0 + 20.0 + 10.0] * n
    charging = sum(120.0 - 10 * i for i in range(12))  # 780 kW in every slot
    assert data["total_kw"] == [b + charging for b in base]
    assert data["grid_limit_kw"] == [1000.0] * n  # site limit + base load: the connection's limit
    assert data["y_max_kw"] >= max(data["total_kw"])
    assert data["y_max_kw"] >= 1000.0  # the limit is near (within half again of the peak): kept in sight

    small = [PlannedCharge(vehicle=Vehicle(fleet_number="B1"), power_kw=[30.0] * n)]
    assert plan_chart_data(plan, small)["y_max_kw"] < 200  # a quiet night is not drawn at a fifth of the scale
