"""The fleet manager's admin pages and downloads: what they show, to whom, and at what cost in queries.

Depot A's manager must never see depot B in a page, a chart or an export; a list page's queries must not grow
with its rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from batteries.models import SoHForecast
from charging.models import ChargingPlan
from fleet.models import DailyDutyCycle, TelemetryReading, Vehicle, VehicleLiveState
from tests import factories as f
from tests.admin_ui.conftest import plan_tonight, synthetic_forecast

pytestmark = pytest.mark.django_db


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def changelist_action(client, model_admin_url: str, action: str, some_pk: int):
    """Run ``action`` on the whole change list (as "select all N" does)."""
    return client.post(
        model_admin_url, {"action": action, "_selected_action": [some_pk], "select_across": "1", "index": "0"}
    )


# --- the dashboard ----------------------------------------------------------------------------------------------


def test_the_dashboard_shows_each_of_my_depots_tonight_and_nothing_of_the_others(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    cards = response.context["depot_cards"]
    assert [card.depot for card in cards] == [w["depot_a"]]
    card = cards[0]
    assert card.plan == w["plan_a"]
    assert card.open_alerts == 1 and card.critical_alerts == 1
    assert card.readiness.level == "green"  # the one vehicle has no block: its standby charge is met
    page = response.content.decode()
    assert "Tonight in your depots" in page and w["depot_b"].name not in page
    assert reverse("admin:charging_chargingplan_overview", args=[w["plan_a"].pk]) in page


def test_a_vehicle_short_of_its_need_turns_the_depot_amber_or_red(client, fleet_world):
    w = fleet_world
    charge = w["plan_a"].charges.get()
    charge.required_soc_pct, charge.departure_soc_pct, charge.shortfall_kwh = 80.0, 77.0, 10.0
    charge.save()
    client.force_login(w["manager_a"])
    card = client.get(reverse("admin:index")).context["depot_cards"][0]
    assert (card.readiness.level, card.readiness.short_small) == ("amber", 1)

    charge.departure_soc_pct = 60.0
    charge.save()
    card = client.get(reverse("admin:index")).context["depot_cards"][0]
    assert (card.readiness.level, card.readiness.short_large) == ("red", 1)
    assert card.readiness.short_vehicles[0]["vehicle__fleet_number"] == w["vehicle_a"].fleet_number


def test_a_depot_with_vehicles_in_service_and_no_plan_is_red(client, two_depots):
    w = two_depots
    client.force_login(w["manager_a"])
    card = client.get(reverse("admin:index")).context["depot_cards"][0]
    assert card.plan is None and card.readiness.level == "red" and card.readiness.not_planned == 1
    assert "No active plan for tonight yet." in client.get(reverse("admin:index")).content.decode()


def _index_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("admin:index")).status_code == 200
    return len(queries)


def test_the_dashboard_costs_the_same_queries_for_one_depot_or_five(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    one_depot = _index_queries(client)
    for n in range(4):
        depot = f.DepotFactory(organization=w["org"], name=f"Depot {n}", code=f"d{n}")
        f.MembershipFactory(user=w["manager_a"], depot=depot, role="manager")
        vehicle = f.VehicleFactory(organization=w["org"], home_depot=depot)
        charger = f.ChargerFactory(depot=depot)
        f.ConnectorFactory(charger=charger, connector_id=1)
        plan_tonight(depot)
        f.AlertFactory(depot=depot, organization=w["org"], vehicle=vehicle)
    assert len(client.get(reverse("admin:index")).context["depot_cards"]) == 5
    assert _index_queries(client) == one_depot
    assert one_depot <= 20


# --- the plan page --------------------------------------------------------------------------------------------


def test_the_plan_page_draws_the_night_and_offers_its_downloads(client, fleet_world):
    w = fleet_world
    plan = w["plan_a"]
    client.force_login(w["manager_a"])
    response = client.get(reverse("admin:charging_chargingplan_overview", args=[plan.pk]))
    assert response.status_code == 200
    data = response.context["chart_data"]
    assert len(data["labels"]) == len(data["grid_limit_kw"]) == len(data["price_per_kwh"]) == plan.num_slots
    assert len(data["base_load_kw"]) == len(data["total_kw"]) == plan.num_slots
    assert all(len(v["power_kw"]) == plan.num_slots for v in data["vehicles"])
    assert response.context["may_replan"]

    rows = csv_rows(client.get(reverse("admin:charging_chargingplan_csv", args=[plan.pk])))
    assert [r["fleet_number"] for r in rows] == [w["vehicle_a"].fleet_number]
    assert len([k for k in rows[0] if k.startswith("kw_")]) == plan.num_slots

    profiles = client.get(reverse("admin:charging_chargingplan_profiles", args=[plan.pk]) + "?ocpp=2.0.1")
    assert profiles.status_code == 200
    body = json.loads(profiles.content)
    assert body["plan"]["ocpp_version"] == "2.0.1"
    assert all(r["chargingProfile"]["chargingSchedule"] for c in body["chargers"] for r in c["requests"])
    bad = client.get(reverse("admin:charging_chargingplan_profiles", args=[plan.pk]) + "?ocpp=9")
    assert bad.status_code == 400 and "ocpp" in json.loads(bad.content)["detail"]


def test_re_planning_from_the_page_makes_a_new_manual_version(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    response = client.post(reverse("admin:charging_chargingplan_replan", args=[w["plan_a"].pk]))
    new = ChargingPlan.objects.get(depot=w["depot_a"], status="active")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:charging_chargingplan_overview", args=[new.pk])
    assert (new.version, new.trigger) == (2, ChargingPlan.Trigger.MANUAL)
    assert "manager_a" in new.trigger_detail


def test_a_viewer_sees_the_plan_but_cannot_re_plan(client, fleet_world):
    w = fleet_world
    viewer = f.UserFactory(username="viewer_a")
    f.MembershipFactory(user=viewer, depot=w["depot_a"], role="viewer")
    client.force_login(viewer)
    page = client.get(reverse("admin:charging_chargingplan_overview", args=[w["plan_a"].pk]))
    assert page.status_code == 200 and not page.context["may_replan"]
    assert client.post(reverse("admin:charging_chargingplan_replan", args=[w["plan_a"].pk])).status_code == 403
    assert ChargingPlan.objects.get(depot=w["depot_a"], status="active").version == 1


@pytest.mark.parametrize("view", ["overview", "csv", "profiles"])
def test_another_depots_plan_is_not_found_in_any_view(client, fleet_world, view):
    w = fleet_world
    client.force_login(w["manager_a"])
    assert client.get(reverse(f"admin:charging_chargingplan_{view}", args=[w["plan_b"].pk])).status_code == 404


def test_another_depots_plan_cannot_be_re_planned(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    assert client.post(reverse("admin:charging_chargingplan_replan", args=[w["plan_b"].pk])).status_code == 404
    assert ChargingPlan.objects.get(depot=w["depot_b"], status="active").version == 1


# --- battery health -----------------------------------------------------------------------------------------


def test_a_packs_health_page_carries_observations_forecast_band_and_dates(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    response = client.get(reverse("admin:batteries_batterypack_health", args=[w["pack_a"].pk]))
    assert response.status_code == 200
    data = response.context["chart_data"]
    assert len(data["observations"]) == 3
    assert len(data["points"]) == 121 and all(p["p10"] <= p["p50"] <= p["p90"] for p in data["points"])
    # 92 % fading 2 %/yr: 80 % in six years; the 70 % warranty floor lies beyond the ten-year forecast.
    assert data["warranty_pct"] == 70.0 and [m["y"] for m in data["marks"]] == [80.0]
    assert client.get(reverse("admin:batteries_batterypack_health", args=[w["pack_b"].pk])).status_code == 404


def test_a_packs_health_page_says_when_its_prior_was_learnt_from_other_packs_of_its_model(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    url = reverse("admin:batteries_batterypack_health", args=[w["pack_a"].pk])
    assert "other pack(s) of its battery model" not in client.get(url).content.decode()
    forecast = SoHForecast.objects.filter(pack=w["pack_a"]).latest("as_of")
    forecast.inputs = {"calibration": {"prior_learnt_from_packs": 7}}
    forecast.save()
    page = client.get(url).content.decode()
    assert "Its checks were read against what 7 other pack(s) of its battery model have shown." in page


def test_the_fleet_health_page_ranks_my_packs_and_compares_each_with_its_group(client, fleet_world):
    w = fleet_world
    # A second pack in depot A's model and depot that fades three times faster.
    other = f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"], model=w["vehicle_a"].model)
    fast = f.BatteryPackFactory(organization=w["org"], serial="PACK-FAST")
    f.PackInstallationFactory(pack=fast, vehicle=other)
    synthetic_forecast(fast, soh_now_pct=85.0, fade_pct_per_year=6.0)
    client.force_login(w["manager_a"])
    response = client.get(reverse("admin:batteries_batterypack_fleet_health"))
    rows = response.context["rows"]
    assert [r.pack.serial for r in rows] == ["PACK-FAST", "PACK-A"]  # shortest remaining life first
    assert rows[0].group_median == pytest.approx(4.0) and rows[0].fast is False
    assert "PACK-B" not in response.content.decode()
    assert {p["serial"] for p in response.context["chart_data"]["packs"]} == {"PACK-FAST", "PACK-A"}


def test_forecast_now_runs_only_for_packs_i_manage(client, fleet_world, monkeypatch):
    w = fleet_world
    asked = []

    def fake_forecast_packs(*, packs, trigger="", **kwargs):
        asked.append(sorted(p.serial for p in packs))
        return type("Run", (), {"packs_done": len(packs), "packs_total": len(packs)})()

    monkeypatch.setattr("batteries.forecast_service.forecast_packs", fake_forecast_packs)
    client.force_login(w["manager_a"])
    response = client.post(reverse("admin:batteries_batterypack_forecast", args=[w["pack_a"].pk]), follow=True)
    assert asked == [["PACK-A"]]
    assert "Forecast 1 of 1 pack(s)" in response.content.decode()
    assert client.post(reverse("admin:batteries_batterypack_forecast", args=[w["pack_b"].pk])).status_code == 404
    changelist_action(client, reverse("admin:batteries_batterypack_changelist"), "forecast_now", w["pack_a"].pk)
    assert asked[-1] == ["PACK-A"]


def test_a_forecast_that_fails_says_why_instead_of_a_500(client, fleet_world, monkeypatch):
    def broken(**kwargs):
        raise ValueError("no duty for this pack")

    monkeypatch.setattr("batteries.forecast_service.forecast_packs", broken)
    client.force_login(fleet_world["manager_a"])
    response = client.post(
        reverse("admin:batteries_batterypack_forecast", args=[fleet_world["pack_a"].pk]), follow=True
    )
    assert response.status_code == 200 and "no duty for this pack" in response.content.decode()


# --- the vehicle page -------------------------------------------------------------------------------------------


def test_the_vehicle_page_degrades_gracefully_without_telemetry(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    response = client.get(reverse("admin:fleet_vehicle_telemetry", args=[w["vehicle_a"].pk]))
    assert response.status_code == 200 and not response.context["has_telemetry"]
    assert "No telemetry from this vehicle" in response.content.decode()
    assert client.get(reverse("admin:fleet_vehicle_telemetry", args=[w["vehicle_b"].pk])).status_code == 404


def test_the_vehicle_page_charts_soc_odometer_and_energy_per_km(client, fleet_world):
    w = fleet_world
    vehicle = w["vehicle_a"]
    now = timezone.now()
    TelemetryReading.objects.bulk_create(
        TelemetryReading(
            vehicle=vehicle, recorded_at=now - dt.timedelta(minutes=10 * i), soc_pct=90 - i * 0.1, odometer_km=5000 - i
        )
        for i in range(200)
    )
    VehicleLiveState.objects.create(
        vehicle=vehicle,
        recorded_at=now,
        received_at=now,
        soc_pct=90,
        odometer_km=5000,
        latitude=29.07,
        longitude=-110.95,
    )
    DailyDutyCycle.objects.create(**_duty(vehicle, timezone.localdate() - dt.timedelta(days=1)))
    client.force_login(w["manager_a"])
    response = client.get(reverse("admin:fleet_vehicle_telemetry", args=[vehicle.pk]))
    chart = response.context["telemetry_chart"]
    assert len(chart["t"]) == len(chart["soc"]) == len(chart["odometer"]) == 200
    assert chart["t"] == sorted(chart["t"])
    assert response.context["duty_chart"]["kwh_per_km"] == [1.2]
    assert response.context["map_url"] and "mlat=29.07" in response.context["map_url"]


# --- exports respect the user's depots ---------------------------------------------------------------------------


def _duty(vehicle, day) -> dict:
    return {
        "vehicle": vehicle,
        "date": day,
        "time_zone": "America/Hermosillo",
        "reading_count": 100,
        "distance_km": 200.0,
        "energy_used_kwh": 240.0,
        "energy_charged_kwh": 250.0,
        "kwh_per_km": 1.2,
        "capacity_kwh": 350.0,
        "equivalent_full_cycles": 0.7,
        "minutes_above_90_soc": 30.0,
    }


def test_every_export_holds_my_depots_rows_only(client, fleet_world):
    w = fleet_world
    for side in ("a", "b"):
        DailyDutyCycle.objects.create(**_duty(w[f"vehicle_{side}"], timezone.localdate()))
    client.force_login(w["manager_a"])

    plans = csv_rows(
        changelist_action(client, reverse("admin:charging_chargingplan_changelist"), "export_csv", w["plan_a"].pk)
    )
    assert {r["depot"] for r in plans} == {w["depot_a"].code}

    duty = csv_rows(
        changelist_action(
            client, reverse("admin:fleet_vehicle_changelist"), "export_duty_cycles_csv", w["vehicle_a"].pk
        )
    )
    assert [r["fleet_number"] for r in duty] == [w["vehicle_a"].fleet_number]

    health = csv_rows(
        changelist_action(
            client, reverse("admin:batteries_batterypack_changelist"), "export_health_csv", w["pack_a"].pk
        )
    )
    assert [r["serial"] for r in health] == ["PACK-A"] and health[0]["latest_observed_soh_pct"] == "94.0"

    # Naming depot B's vehicle in the request does not smuggle its rows in: the export comes out empty.
    response = client.post(
        reverse("admin:fleet_vehicle_changelist"),
        {"action": "export_duty_cycles_csv", "_selected_action": [w["vehicle_b"].pk], "index": "0"},
    )
    assert csv_rows(response) == []


# --- list pages stay cheap ----------------------------------------------------------------------------------


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:charging_chargingplan_changelist",
        "admin:batteries_batterypack_changelist",
        "admin:fleet_vehicle_changelist",
        "admin:batteries_batterypack_fleet_health",
    ],
)
def test_a_list_page_costs_the_same_queries_for_one_row_or_many(client, fleet_world, url_name):
    w = fleet_world
    client.force_login(w["manager_a"])
    url = reverse(url_name)
    if url_name == "admin:charging_chargingplan_changelist":
        # The plan list costs the nights on the page at once (charging.selectors.night_costs): a fixed few
        # queries once any night on the page was re-planned, none before; start from a re-planned night.
        plan_tonight(w["depot_a"])
    few = _queries(client, url)
    for n in range(6):
        vehicle = f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"])
        pack = f.BatteryPackFactory(organization=w["org"])
        f.PackInstallationFactory(pack=pack, vehicle=vehicle)
        synthetic_forecast(pack, soh_now_pct=95 - n, fade_pct_per_year=2 + n / 10)
    plan_tonight(w["depot_a"])
    assert _queries(client, url) == few


def test_a_manager_of_more_depots_than_a_page_gets_the_dashboard_a_page_at_a_time(client, fleet_world, monkeypatch):
    from console import dashboard
    from fleet.selectors import depots_visible_to

    monkeypatch.setattr(dashboard, "DEPOTS_PER_PAGE", 2)
    w = fleet_world
    client.force_login(w["manager_a"])
    for n in range(4):
        f.MembershipFactory(
            user=w["manager_a"],
            depot=f.DepotFactory(organization=w["org"], name=f"Zone {n}", code=f"z{n}"),
            role="manager",
        )
    visible = depots_visible_to(w["manager_a"])

    first = client.get(reverse("admin:index"))
    last = client.get(reverse("admin:index"), {"page": 3})

    assert [card.depot for card in first.context["depot_cards"]] == visible[:2]
    assert [card.depot for card in last.context["depot_cards"]] == visible[4:]
    assert f"Depots 1–2 of {len(visible)}" in first.content.decode() and 'rel="next"' in first.content.decode()
    assert 'rel="next"' not in last.content.decode()


def test_the_plan_page_costs_the_same_queries_for_a_larger_plan(client, fleet_world):
    """Issue 20: the plan change page once cost two queries per planned charge (about 600 for a 300-bus depot)."""
    w = fleet_world
    client.force_login(w["manager_a"])
    depot = w["depot_a"]

    def plan_page_queries(vehicle_count: int) -> int:
        while Vehicle.objects.filter(home_depot=depot).count() < vehicle_count:
            f.VehicleFactory(organization=w["org"], home_depot=depot)
        plan = plan_tonight(depot)
        assert plan.charges.count() == vehicle_count
        url = reverse("admin:charging_chargingplan_change", args=[plan.pk])
        client.get(url)  # warm: the session and the caches' first reads are not the page's
        return _queries(client, url)

    few = plan_page_queries(2)
    assert plan_page_queries(8) == few
