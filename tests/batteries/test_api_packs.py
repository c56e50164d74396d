"""Battery packs through the REST API: who sees which pack, swapping packs, recording health."""

import datetime as dt

import pytest
from django.utils import timezone

from batteries.models import HealthObservation, PackInstallation
from tests import factories as f

pytestmark = pytest.mark.django_db

PACKS = "/api/v1/battery-packs/"
OBSERVATIONS = "/api/v1/health-observations/"


@pytest.fixture
def packs(two_depots):
    """A pack in each depot's vehicle and a spare, all of the one organisation."""
    w = two_depots
    pack_a = f.BatteryPackFactory(organization=w["org"], serial="PACK-A")
    pack_b = f.BatteryPackFactory(organization=w["org"], serial="PACK-B")
    spare = f.BatteryPackFactory(organization=w["org"], serial="PACK-SPARE")
    f.PackInstallationFactory(pack=pack_a, vehicle=w["vehicle_a"])
    f.PackInstallationFactory(pack=pack_b, vehicle=w["vehicle_b"])
    return {**w, "pack_a": pack_a, "pack_b": pack_b, "spare": spare}


def install(api_client, pack, vehicle, when):
    return api_client.post(f"{PACKS}{pack.pk}/install/", {"vehicle": vehicle.pk, "installed_at": when.isoformat()})


def test_staff_sees_the_packs_in_their_depots_vehicles_only(packs, api_client):
    api_client.force_authenticate(packs["staff_a"])

    body = api_client.get(PACKS).json()

    assert [p["serial"] for p in body["results"]] == ["PACK-A"]
    assert body["results"][0]["active_installation"]["vehicle"] == packs["vehicle_a"].pk
    assert api_client.get(f"{PACKS}{packs['pack_b'].pk}/").status_code == 404
    assert api_client.get(f"{PACKS}{packs['spare'].pk}/").status_code == 404


def test_manager_also_sees_spares_and_each_pack_once_despite_its_history(packs, api_client):
    w = packs
    # PACK-A has an old installation in another vehicle of depot A too: two installation rows.
    old_vehicle = f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"])
    PackInstallation.objects.filter(pack=w["pack_a"]).update(installed_at=timezone.now() - dt.timedelta(days=100))
    f.PackInstallationFactory(
        pack=w["pack_a"],
        vehicle=old_vehicle,
        installed_at=timezone.now() - dt.timedelta(days=400),
        removed_at=timezone.now() - dt.timedelta(days=200),
    )
    api_client.force_authenticate(w["manager_a"])

    serials = [p["serial"] for p in api_client.get(PACKS).json()["results"]]

    assert serials == ["PACK-A", "PACK-SPARE"]


def test_pack_isolation_for_writes(packs, api_client):
    api_client.force_authenticate(packs["manager_a"])

    assert api_client.patch(f"{PACKS}{packs['pack_b'].pk}/", {"warranty_years": 1}).status_code == 404
    assert install(api_client, packs["pack_b"], packs["vehicle_a"], timezone.now()).status_code == 404
    foreign_vehicle = install(api_client, packs["spare"], packs["vehicle_b"], timezone.now())
    assert foreign_vehicle.status_code == 400 and "vehicle" in foreign_vehicle.json()


def test_staff_reads_packs_but_managers_change_them(packs, api_client):
    api_client.force_authenticate(packs["staff_a"])
    assert api_client.patch(f"{PACKS}{packs['pack_a'].pk}/", {"warranty_years": 10}).status_code == 403
    assert install(api_client, packs["pack_a"], packs["vehicle_a"], timezone.now()).status_code == 403

    api_client.force_authenticate(packs["manager_a"])
    response = api_client.patch(f"{PACKS}{packs['pack_a'].pk}/", {"warranty_years": 10})
    assert response.status_code == 200, response.json()
    assert response.json()["warranty_years"] == 10


def test_manager_registers_a_spare_pack_for_their_organisation_only(packs, api_client):
    body = {
        "serial": "CATL-NEW-1",
        "nominal_kwh": 350,
        "nominal_ah": 544,
        "cells_in_series": 200,
        "cells_in_parallel": 2,
    }
    api_client.force_authenticate(packs["manager_a"])

    created = api_client.post(PACKS, {**body, "organization": packs["org"].pk})
    foreign = api_client.post(PACKS, {**body, "serial": "CATL-NEW-2", "organization": f.OrganizationFactory().pk})

    assert created.status_code == 201, created.json()
    assert created.json()["active_installation"] is None
    assert foreign.status_code == 400 and "organization" in foreign.json()


def test_swapping_packs_keeps_one_active_pack_per_vehicle_and_the_history(packs, api_client):
    w = packs
    api_client.force_authenticate(w["manager_a"])
    swap_time = timezone.now().replace(microsecond=0)

    response = install(api_client, w["spare"], w["vehicle_a"], swap_time)

    assert response.status_code == 201, response.json()
    assert response.json()["vehicle"] == w["vehicle_a"].pk
    active = PackInstallation.objects.filter(vehicle=w["vehicle_a"], removed_at__isnull=True)
    assert [i.pack.serial for i in active] == ["PACK-SPARE"]
    old = PackInstallation.objects.get(pack=w["pack_a"])
    assert old.removed_at == swap_time
    history = api_client.get("/api/v1/pack-installations/", {"vehicle": w["vehicle_a"].pk}).json()
    assert [row["pack_serial"] for row in history["results"]] == ["PACK-SPARE", "PACK-A"]
    # The removed pack became a spare: the manager still sees it, without a vehicle.
    removed = api_client.get(f"{PACKS}{w['pack_a'].pk}/").json()
    assert removed["active_installation"] is None


def test_a_swap_dated_before_the_current_installation_is_a_400(packs, api_client):
    api_client.force_authenticate(packs["manager_a"])

    response = install(api_client, packs["spare"], packs["vehicle_a"], timezone.now() - dt.timedelta(days=1000))

    assert response.status_code == 400
    assert "installed_at" in response.json()
    assert PackInstallation.objects.get(pack=packs["pack_a"]).removed_at is None


def test_install_rejects_unknown_fields(packs, api_client):
    api_client.force_authenticate(packs["manager_a"])

    response = api_client.post(
        f"{PACKS}{packs['spare'].pk}/install/", {"vehicle": packs["vehicle_a"].pk, "removed_at": "2020-01-01"}
    )

    assert response.status_code == 400 and "removed_at" in response.json()


def test_staff_records_a_capacity_test_and_resending_updates_it(packs, api_client):
    api_client.force_authenticate(packs["staff_a"])
    body = {
        "pack": packs["pack_a"].pk,
        "observed_at": "2025-06-01T08:00:00Z",
        "source": "capacity_test",
        "soh_pct": 93.5,
        "capacity_kwh": 327.0,
    }

    first = api_client.post(OBSERVATIONS, body)
    again = api_client.post(OBSERVATIONS, {**body, "soh_pct": 93.1})

    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    assert list(HealthObservation.objects.values_list("soh_pct", flat=True)) == [93.1]
    assert api_client.get(PACKS).json()["results"][0]["latest_soh_pct"] == 93.1


def test_observations_from_telemetry_or_for_another_depots_pack_are_rejected(packs, api_client):
    api_client.force_authenticate(packs["staff_a"])
    body = {"pack": packs["pack_a"].pk, "observed_at": "2025-06-01T08:00:00Z", "source": "telemetry", "soh_pct": 90}

    telemetry = api_client.post(OBSERVATIONS, body)
    foreign = api_client.post(OBSERVATIONS, {**body, "source": "manual", "pack": packs["pack_b"].pk})

    assert telemetry.status_code == 400 and "source" in telemetry.json()
    assert foreign.status_code == 400 and "pack" in foreign.json()
    assert not HealthObservation.objects.exists()


def test_observation_list_is_scoped_and_filtered(packs, api_client):
    f.HealthObservationFactory(pack=packs["pack_a"], soh_pct=91)
    f.HealthObservationFactory(pack=packs["pack_b"], soh_pct=85)
    api_client.force_authenticate(packs["staff_a"])

    everything = api_client.get(OBSERVATIONS).json()
    low = api_client.get(OBSERVATIONS, {"soh_pct_below": 90}).json()

    assert [o["soh_pct"] for o in everything["results"]] == [91]
    assert low["count"] == 0


def test_pack_list_does_not_query_per_pack(two_depots, api_client, django_assert_max_num_queries):
    w = two_depots
    for vehicle in f.VehicleFactory.create_batch(20, organization=w["org"], home_depot=w["depot_a"]):
        pack = f.PackInstallationFactory(pack__organization=w["org"], vehicle=vehicle).pack
        f.HealthObservationFactory(pack=pack)
    api_client.force_authenticate(w["manager_a"])

    with django_assert_max_num_queries(3):  # count, page (latest SoH as a subquery), active installations
        response = api_client.get(PACKS, {"limit": 100})

    assert response.json()["count"] == 20
    assert all(p["active_installation"] and p["latest_soh_pct"] == 96.0 for p in response.json()["results"])
