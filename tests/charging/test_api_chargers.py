"""Chargers and connectors through the REST API: managers run them, staff report their status."""

import pytest

from charging.models import Charger, Connector
from tests import factories as f

pytestmark = pytest.mark.django_db

CHARGERS = "/api/v1/chargers/"
CONNECTORS = "/api/v1/connectors/"


def charger_body(depot, **overrides) -> dict:
    body = {"depot": depot.pk, "ocpp_charge_point_id": "HMO-CP-01", "name": "DC 1", "kind": "dc", "max_kw": 150}
    return {**body, **overrides}


def test_chargers_are_isolated_between_depots(two_depots, api_client):
    w = two_depots
    charger_a = f.ChargerFactory(depot=w["depot_a"])
    f.ConnectorFactory(charger=charger_a, connector_id=1)
    charger_b = f.ChargerFactory(depot=w["depot_b"])
    api_client.force_authenticate(w["manager_a"])

    listed = api_client.get(CHARGERS).json()

    assert [c["id"] for c in listed["results"]] == [charger_a.pk]
    assert [c["connector_id"] for c in listed["results"][0]["connectors"]] == [1]
    assert api_client.get(f"{CHARGERS}{charger_b.pk}/").status_code == 404
    assert api_client.patch(f"{CHARGERS}{charger_b.pk}/", {"max_kw": 1}).status_code == 404
    assert api_client.delete(f"{CHARGERS}{charger_b.pk}/").status_code == 404
    assert api_client.post(f"{CHARGERS}{charger_b.pk}/status/", {"status": "faulted"}).status_code == 404
    into_b = api_client.post(CHARGERS, charger_body(w["depot_b"]))
    assert into_b.status_code == 400 and "depot" in into_b.json()
    move_to_b = api_client.patch(f"{CHARGERS}{charger_a.pk}/", {"depot": w["depot_b"].pk})
    assert move_to_b.status_code == 400 and "depot" in move_to_b.json()
    charger_b.refresh_from_db()
    assert charger_b.status == "available"


def test_manager_installs_a_charger_with_its_connector(two_depots, api_client):
    api_client.force_authenticate(two_depots["manager_a"])

    charger = api_client.post(CHARGERS, charger_body(two_depots["depot_a"]))
    assert charger.status_code == 201, charger.json()
    connector = api_client.post(
        CONNECTORS, {"charger": charger.json()["id"], "connector_id": 1, "standard": "ccs2", "max_kw": 150}
    )
    assert connector.status_code == 201, connector.json()

    shown = api_client.get(f"{CHARGERS}{charger.json()['id']}/").json()
    assert [c["standard"] for c in shown["connectors"]] == ["ccs2"]


def test_connector_stronger_than_its_charger_is_a_400(two_depots, api_client):
    charger = f.ChargerFactory(depot=two_depots["depot_a"], max_kw=60)
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.post(
        CONNECTORS, {"charger": charger.pk, "connector_id": 1, "standard": "ccs2", "max_kw": 150}
    )

    assert response.status_code == 400 and "max_kw" in response.json()


def test_duplicate_charge_point_id_is_a_400(two_depots, api_client):
    f.ChargerFactory(depot=two_depots["depot_b"], ocpp_charge_point_id="HMO-CP-01")
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.post(CHARGERS, charger_body(two_depots["depot_a"]))

    assert response.status_code == 400 and "ocpp_charge_point_id" in response.json()


def test_staff_reports_a_fault_but_cannot_change_the_charger(two_depots, api_client):
    charger = f.ChargerFactory(depot=two_depots["depot_a"])
    connector = f.ConnectorFactory(charger=charger)
    api_client.force_authenticate(two_depots["staff_a"])

    faulted = api_client.post(f"{CHARGERS}{charger.pk}/status/", {"status": "faulted"})
    connector_offline = api_client.post(f"{CONNECTORS}{connector.pk}/status/", {"status": "offline"})

    assert faulted.status_code == 200, faulted.json()
    assert faulted.json()["status"] == "faulted"
    assert connector_offline.status_code == 200
    assert api_client.patch(f"{CHARGERS}{charger.pk}/", {"max_kw": 300}).status_code == 403
    assert api_client.delete(f"{CHARGERS}{charger.pk}/").status_code == 403
    assert api_client.post(CHARGERS, charger_body(two_depots["depot_a"])).status_code == 403
    charger.refresh_from_db()
    assert (charger.status, charger.max_kw) == ("faulted", 150.0)
    assert Connector.objects.get(pk=connector.pk).status == "offline"


def test_viewer_cannot_even_report_a_status(two_depots, api_client):
    charger = f.ChargerFactory(depot=two_depots["depot_a"])
    viewer = f.UserFactory()
    f.MembershipFactory(user=viewer, depot=two_depots["depot_a"], role="viewer")
    api_client.force_authenticate(viewer)

    assert api_client.get(f"{CHARGERS}{charger.pk}/").status_code == 200
    assert api_client.post(f"{CHARGERS}{charger.pk}/status/", {"status": "faulted"}).status_code == 403


def test_status_must_be_a_known_one_and_nothing_else_is_accepted(two_depots, api_client):
    charger = f.ChargerFactory(depot=two_depots["depot_a"])
    api_client.force_authenticate(two_depots["staff_a"])

    unknown_status = api_client.post(f"{CHARGERS}{charger.pk}/status/", {"status": "on fire"})
    extra_field = api_client.post(f"{CHARGERS}{charger.pk}/status/", {"status": "faulted", "max_kw": 1})

    assert unknown_status.status_code == 400 and "status" in unknown_status.json()
    assert extra_field.status_code == 400 and "max_kw" in extra_field.json()


def test_lowering_a_chargers_power_under_its_connectors_is_a_400(two_depots, api_client):
    charger = f.ChargerFactory(depot=two_depots["depot_a"], max_kw=150)
    f.ConnectorFactory(charger=charger, max_kw=150)
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.patch(f"{CHARGERS}{charger.pk}/", {"max_kw": 100})

    assert response.status_code == 400 and "max_kw" in response.json()
    assert Charger.objects.get(pk=charger.pk).max_kw == 150


def test_charger_filters(two_depots, api_client):
    f.ChargerFactory(depot=two_depots["depot_a"], name="AC 1", kind="ac", max_kw=22)
    f.ChargerFactory(depot=two_depots["depot_a"], name="DC 1", kind="dc", status="faulted")
    api_client.force_authenticate(two_depots["staff_a"])

    faulted = api_client.get(CHARGERS, {"status": "faulted"}).json()
    ac = api_client.get(CHARGERS, {"kind": "ac"}).json()

    assert [c["name"] for c in faulted["results"]] == ["DC 1"]
    assert [c["name"] for c in ac["results"]] == ["AC 1"]


def test_charger_list_does_not_query_per_charger(two_depots, api_client, django_assert_max_num_queries):
    for charger in f.ChargerFactory.create_batch(15, depot=two_depots["depot_a"]):
        f.ConnectorFactory.create_batch(2, charger=charger, max_kw=75)
    api_client.force_authenticate(two_depots["staff_a"])

    with django_assert_max_num_queries(3):  # count, page, connectors
        response = api_client.get(CHARGERS, {"limit": 100})

    assert sum(len(c["connectors"]) for c in response.json()["results"]) == 30
