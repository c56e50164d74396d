"""Depot staff at night: read tonight's plan, report events, get the chargers' OCPP profiles."""

import datetime as dt

import pytest

from charging.models import ChargingPlan, Connector, DepotEvent
from charging.ocpp import validate_request
from charging.planning import plan_depot_night
from fleet.services import block_assign
from tests import factories as f

pytestmark = pytest.mark.django_db

HERMOSILLO = dt.timezone(dt.timedelta(hours=-7))
NIGHT = dt.date(2026, 11, 23)


@pytest.fixture
def night(two_depots):
    w = two_depots
    for depot in (w["depot_a"], w["depot_b"]):
        f.ConnectorFactory(charger=f.ChargerFactory(depot=depot), connector_id=1)
    today = f.BlockFactory(
        depot=w["depot_a"], service_date=NIGHT, departs_at=dt.time(13), returns_at=dt.time(21), distance_km=200
    )
    block_assign(block=today, vehicle=w["vehicle_a"], service_date=NIGHT)
    tomorrow = f.BlockFactory(
        depot=w["depot_a"], service_date=NIGHT + dt.timedelta(days=1), departs_at=dt.time(5, 30), distance_km=200
    )
    block_assign(block=tomorrow, vehicle=w["vehicle_a"], service_date=tomorrow.service_date)
    w["plan_a"] = plan_depot_night(depot=w["depot_a"], service_night=NIGHT)
    w["plan_b"] = plan_depot_night(depot=w["depot_b"], service_night=NIGHT)
    return w


def test_staff_read_tonights_plan_of_their_depot(night, api_client):
    api_client.force_authenticate(night["staff_a"])

    response = api_client.get(
        "/api/v1/charging-plans/current/", {"depot": night["depot_a"].pk, "service_night": NIGHT.isoformat()}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == night["plan_a"].pk and body["status"] == "active"
    (charge,) = body["charges"]
    assert charge["fleet_number"] == night["vehicle_a"].fleet_number
    assert charge["connector_label"] and charge["ready"] is True
    assert len(charge["power_kw"]) == body["num_slots"]
    # What later nights of the month count as paid, per demand charge of the tariff.
    assert body["month_peaks_kw"] == night["plan_a"].month_peaks_kw


def test_a_plan_says_optimal_only_with_its_proof(night, api_client):
    # One bus on a free connector: the relaxation's plan is the plan, so its bound proves it.
    api_client.force_authenticate(night["staff_a"])
    body = api_client.get(f"/api/v1/charging-plans/{night['plan_a'].pk}/").json()
    assert body["optimal"] is True and body["solver_status"] == "Optimal"
    assert body["bound"] is not None and body["gap_pct"] <= 1e-4
    assert body["bound"] >= body["lp_bound"] - 1e-9


def test_another_depots_plan_and_vehicle_answer_404(night, api_client):
    api_client.force_authenticate(night["staff_a"])

    assert api_client.get(f"/api/v1/charging-plans/{night['plan_b'].pk}/").status_code == 404
    other = api_client.get("/api/v1/charging-plans/current/", {"depot": night["depot_b"].pk})
    assert other.status_code == 404
    assert api_client.get(f"/api/v1/vehicle-plans/{night['vehicle_b'].pk}/").status_code == 404
    listed = api_client.get("/api/v1/charging-plans/").json()["results"]
    assert {p["depot"] for p in listed} == {night["depot_a"].pk}


def test_a_vehicle_reads_where_it_charges_tonight(night, api_client):
    api_client.force_authenticate(night["staff_a"])

    response = api_client.get(f"/api/v1/vehicle-plans/{night['vehicle_a'].pk}/", {"service_night": NIGHT.isoformat()})

    assert response.status_code == 200
    assert response.json()["departure_soc_pct"] >= response.json()["required_soc_pct"] - 0.1


def test_an_arrival_event_replans_the_night(night, api_client, eager_tasks, django_capture_on_commit_callbacks):
    api_client.force_authenticate(night["staff_a"])
    arrived_at = dt.datetime.combine(NIGHT, dt.time(23, 0), tzinfo=HERMOSILLO)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/depot-events/",
            {
                "depot": night["depot_a"].pk,
                "kind": "vehicle_arrived",
                "client_event_id": "gw-1-0001",
                "vehicle": night["vehicle_a"].pk,
                "soc_pct": 12.0,
                "occurred_at": arrived_at.isoformat(),
            },
        )

    assert response.status_code == 201, response.json()
    plans = ChargingPlan.objects.filter(depot=night["depot_a"], service_night=NIGHT).order_by("version")
    assert [p.status for p in plans] == ["superseded", "active"]
    new_charge = plans.last().charges.get()
    assert new_charge.energy_kwh > night["plan_a"].charges.get().energy_kwh


def test_resending_an_event_is_safe_and_reusing_its_id_is_a_conflict(night, api_client):
    api_client.force_authenticate(night["staff_a"])
    connector = Connector.objects.get(charger__depot=night["depot_a"])
    event = {
        "depot": night["depot_a"].pk,
        "kind": "connector_faulted",
        "client_event_id": "e-7",
        "connector": connector.pk,
    }

    first = api_client.post("/api/v1/depot-events/", event)
    again = api_client.post("/api/v1/depot-events/", event)
    different = api_client.post("/api/v1/depot-events/", {**event, "kind": "connector_restored"})

    assert (first.status_code, again.status_code, different.status_code) == (201, 200, 409), again.json()
    assert first.json()["id"] == again.json()["id"]
    assert DepotEvent.objects.count() == 1
    connector.refresh_from_db()
    assert connector.status == "faulted"
    assert "detail" in different.json()


def test_events_about_another_depot_are_refused(night, api_client):
    api_client.force_authenticate(night["staff_a"])

    into_b = api_client.post(
        "/api/v1/depot-events/", {"depot": night["depot_b"].pk, "kind": "block_changed", "client_event_id": "x"}
    )
    foreign_vehicle = api_client.post(
        "/api/v1/depot-events/",
        {
            "depot": night["depot_a"].pk,
            "kind": "vehicle_arrived",
            "client_event_id": "y",
            "vehicle": night["vehicle_b"].pk,
        },
    )
    missing_vehicle = api_client.post(
        "/api/v1/depot-events/", {"depot": night["depot_a"].pk, "kind": "vehicle_arrived", "client_event_id": "z"}
    )

    assert into_b.status_code == 400 and "depot" in into_b.json()
    assert foreign_vehicle.status_code == 400 and "vehicle" in foreign_vehicle.json()
    assert missing_vehicle.status_code == 400 and "vehicle" in missing_vehicle.json()
    assert not DepotEvent.objects.exists()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_charger_profiles_are_valid_ocpp(night, api_client, version):
    api_client.force_authenticate(night["staff_a"])
    charger = night["plan_a"].charges.get().connector.charger

    response = api_client.get(
        f"/api/v1/chargers/{charger.pk}/charging-profiles/",
        {"ocpp_version": version, "service_night": NIGHT.isoformat()},
    )

    assert response.status_code == 200
    for request in response.json()["requests"]:
        validate_request("SetChargingProfile", request, version)
    foreign = night["plan_b"].depot.chargers.get()
    assert api_client.get(f"/api/v1/chargers/{foreign.pk}/charging-profiles/").status_code == 404


def test_without_a_night_current_falls_back_from_the_night_in_progress_to_the_coming_one(two_depots, api_client):
    from charging.planning import current_service_night

    depot = two_depots["depot_a"]
    coming = current_service_night(depot) + dt.timedelta(days=1)
    plan = plan_depot_night(depot=depot, service_night=coming)
    api_client.force_authenticate(two_depots["staff_a"])

    response = api_client.get("/api/v1/charging-plans/current/", {"depot": depot.pk})

    assert response.status_code == 200 and response.json()["id"] == plan.pk
