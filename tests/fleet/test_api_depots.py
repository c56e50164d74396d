"""Depots, organisations, memberships and the vehicle-model catalogue through the REST API."""

import pytest

from fleet.models import Depot, VehicleModel
from tests import factories as f

pytestmark = pytest.mark.django_db

DEPOTS = "/api/v1/depots/"


def test_members_see_only_their_depots_and_organisations(two_depots, api_client):
    w = two_depots
    f.DepotFactory()  # another organisation's
    api_client.force_authenticate(w["staff_a"])

    depots = api_client.get(DEPOTS).json()
    organizations = api_client.get("/api/v1/organizations/").json()

    assert [d["name"] for d in depots["results"]] == ["Hermosillo"]
    assert [o["id"] for o in organizations["results"]] == [w["org"].pk]
    assert api_client.get(f"{DEPOTS}{w['depot_b'].pk}/").status_code == 404


def test_manager_changes_the_grid_limit_and_base_load(two_depots, api_client):
    w = two_depots
    api_client.force_authenticate(w["manager_a"])

    response = api_client.patch(
        f"{DEPOTS}{w['depot_a'].pk}/", {"grid_limit_kw": 800, "base_load_kw": [50] * 24, "planning_time": "19:30"}
    )

    assert response.status_code == 200, response.json()
    w["depot_a"].refresh_from_db()
    assert (w["depot_a"].grid_limit_kw, w["depot_a"].base_load_kw[0]) == (800, 50)


def test_base_load_over_the_grid_limit_is_a_400(two_depots, api_client):
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.patch(f"{DEPOTS}{two_depots['depot_a'].pk}/", {"base_load_kw": [2000] * 24})

    assert response.status_code == 400
    assert "base_load_kw" in response.json()


def test_staff_cannot_change_depot_settings_and_nobody_renames_through_the_api(two_depots, api_client):
    w = two_depots
    api_client.force_authenticate(w["staff_a"])
    assert api_client.patch(f"{DEPOTS}{w['depot_a'].pk}/", {"grid_limit_kw": 1}).status_code == 403

    api_client.force_authenticate(w["manager_a"])
    rename = api_client.patch(f"{DEPOTS}{w['depot_a'].pk}/", {"name": "Renamed"})
    assert rename.status_code == 400 and "name" in rename.json()


def test_depot_tariff_must_be_one_the_manager_can_see(two_depots, api_client):
    w = two_depots
    own = f.TariffFactory(organization=w["org"])
    foreign = f.TariffFactory()
    api_client.force_authenticate(w["manager_a"])

    assert api_client.patch(f"{DEPOTS}{w['depot_a'].pk}/", {"tariff": foreign.pk}).status_code == 400
    assert api_client.patch(f"{DEPOTS}{w['depot_a'].pk}/", {"tariff": own.pk}).json()["tariff"] == own.pk


def test_only_superusers_create_depots(two_depots, api_client):
    w = two_depots
    body = {"organization": w["org"].pk, "name": "Guaymas", "code": "gym", "grid_limit_kw": 400}
    api_client.force_authenticate(w["manager_a"])
    assert api_client.post(DEPOTS, body).status_code == 403

    api_client.force_authenticate(f.UserFactory(is_superuser=True))
    response = api_client.post(DEPOTS, body)
    assert response.status_code == 201, response.json()
    assert Depot.objects.get(code="gym").organization == w["org"]


def test_memberships_members_see_their_own_managers_see_the_depots(two_depots, api_client):
    w = two_depots
    api_client.force_authenticate(w["staff_a"])
    assert [m["username"] for m in api_client.get("/api/v1/depot-memberships/").json()["results"]] == ["staff_a"]

    api_client.force_authenticate(w["manager_a"])
    names = {m["username"] for m in api_client.get("/api/v1/depot-memberships/").json()["results"]}
    assert names == {"staff_a", "manager_a"}  # not depot B's staff
    assert api_client.post("/api/v1/depot-memberships/", {}).status_code == 405


def test_vehicle_models_are_a_catalogue_only_superusers_change(two_depots, api_client):
    bus = f.VehicleModelFactory()
    body = {
        "manufacturer": "Olinia",
        "name": "Mini",
        "kind": "car",
        "nominal_pack_kwh": 13,
        "consumption_kwh_per_km": 0.1,
        "max_ac_kw": 1.9,
        "charging_taper": [[90, 1.9], [100, 1.0]],
    }
    api_client.force_authenticate(two_depots["staff_a"])
    assert api_client.get("/api/v1/vehicle-models/").json()["count"] == 1
    assert api_client.post("/api/v1/vehicle-models/", body).status_code == 403
    assert api_client.patch(f"/api/v1/vehicle-models/{bus.pk}/", {"name": "X"}).status_code == 403

    api_client.force_authenticate(f.UserFactory(is_superuser=True))
    response = api_client.post("/api/v1/vehicle-models/", body)
    assert response.status_code == 201, response.json()
    assert VehicleModel.objects.get(name="Mini").max_charge_kw == 1.9
    bad_taper = api_client.patch(f"/api/v1/vehicle-models/{bus.pk}/", {"charging_taper": [[80, 999]]})
    assert bad_taper.status_code == 400 and "charging_taper" in bad_taper.json()
    in_use = api_client.delete(f"/api/v1/vehicle-models/{bus.pk}/")
    assert in_use.status_code == 409


def test_a_manager_sets_the_depots_geofence_which_needs_its_position(two_depots, api_client):
    depot = two_depots["depot_a"]
    api_client.force_authenticate(two_depots["manager_a"])

    without_position = api_client.patch(f"{DEPOTS}{depot.pk}/", {"geofence_radius_m": 200}, format="json")
    Depot.objects.filter(pk=depot.pk).update(latitude=29.07, longitude=-110.96)
    too_small = api_client.patch(f"{DEPOTS}{depot.pk}/", {"geofence_radius_m": 1}, format="json")
    ok = api_client.patch(f"{DEPOTS}{depot.pk}/", {"geofence_radius_m": 200}, format="json")

    assert without_position.status_code == 400 and "geofence_radius_m" in without_position.json()
    assert too_small.status_code == 400 and "geofence_radius_m" in too_small.json()
    assert ok.status_code == 200 and ok.json()["geofence_radius_m"] == 200
