"""The plan page and the plan API say, per charger, whether the plan reached it: a simulated charger that accepts,
one that rejects a connector's profile, one that is not connected ("offline - pending") and one with no OCPP link.
Read from the outbox through ``csms.selectors.plan_delivery``, handed to charging at start-up (charging never
imports csms)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from charging.planning import current_service_night, plan_depot_night
from csms.models import ProfileDelivery
from csms.services import charger_password_issue
from csms.simulator import SimulatedCharger
from tests import factories as f
from tests.csms.conftest import eventually

pytestmark = pytest.mark.services


def _depot():
    depot = f.DepotFactory()
    chargers = {}
    for name, identity in (("A accepts", "CP-OK"), ("B rejects", "CP-REJ"), ("C offline", "CP-OFF")):
        charger = f.ChargerFactory(depot=depot, name=name, ocpp_charge_point_id=identity)
        for n in (1, 2):
            f.ConnectorFactory(charger=charger, connector_id=n)
        _cp, password = charger_password_issue(charger=charger)
        chargers[identity] = (charger, password)
    unlinked = f.ChargerFactory(depot=depot, name="D no link", ocpp_charge_point_id="CP-NOLINK")  # no password
    f.ConnectorFactory(charger=unlinked, connector_id=1)
    return depot, chargers


async def _up(sim: SimulatedCharger) -> SimulatedCharger:
    await sim.connect()
    await sim.boot()
    return sim


def test_the_plan_page_and_api_show_accepted_rejected_offline_and_unlinked_chargers(csms, sims, client, api_client):
    depot, chargers = _depot()
    accepting = SimulatedCharger.make(csms.url, "CP-OK", chargers["CP-OK"][1], "1.6", {1: 150e3, 2: 150e3})
    # This one only knows connector 1: it rejects connector 2's profile.
    rejecting = SimulatedCharger.make(csms.url, "CP-REJ", chargers["CP-REJ"][1], "2.0.1", {1: 150e3})
    for sim in (accepting, rejecting):
        sims.run(_up(sim))

    plan = plan_depot_night(depot=depot, service_night=current_service_night(depot))
    eventually(lambda: ProfileDelivery.objects.filter(plan=plan, status__in=("accepted", "rejected")).count() == 2)
    expected = {
        "CP-OK": ("accepted", "Accepted"),
        "CP-REJ": ("rejected", "Rejected"),
        "CP-OFF": ("offline", "Offline - pending"),
        "CP-NOLINK": ("not_linked", "No OCPP link"),
    }

    api_client.force_authenticate(f.UserFactory(is_superuser=True, is_staff=True))
    body = api_client.get(f"/api/v1/charging-plans/{plan.pk}/").json()
    shown = {row["charge_point_id"]: (row["status"], row["status_label"]) for row in body["delivery"]}
    assert shown == expected
    rejected = next(row for row in body["delivery"] if row["charge_point_id"] == "CP-REJ")
    assert rejected["answers"] == {"1": "Accepted", "2": "Rejected"} and rejected["attempts"] == 1
    offline = next(row for row in body["delivery"] if row["charge_point_id"] == "CP-OFF")
    assert offline["connected"] is False and offline["attempts"] == 0 and offline["answered_at"] is None
    # Tonight's plan of the depot carries the same.
    current = api_client.get("/api/v1/charging-plans/current/", {"depot": depot.pk}).json()
    assert {row["charge_point_id"]: row["status"] for row in current["delivery"]} == {
        k: v[0] for k, v in expected.items()
    }

    client.force_login(f.UserFactory(is_superuser=True, is_staff=True))
    for url in (
        reverse("admin:charging_chargingplan_overview", args=[plan.pk]),
        reverse("admin:charging_chargingplan_change", args=[plan.pk]),
    ):
        page = client.get(url).content.decode()
        assert 'id="plan-delivery"' in page
        for identity, (status, label) in expected.items():
            assert f'data-charger="{identity}" data-status="{status}"' in page
            assert label in page

    # The offline charger comes up: it gets the plan, and the page says so.
    offline_sim = SimulatedCharger.make(csms.url, "CP-OFF", chargers["CP-OFF"][1], "1.6", {1: 150e3, 2: 150e3})
    sims.run(_up(offline_sim))
    eventually(
        lambda: (
            ProfileDelivery.objects.get(plan=plan, charge_point__charger__ocpp_charge_point_id="CP-OFF").status
            == "accepted"
        )
    )
    page = client.get(reverse("admin:charging_chargingplan_overview", args=[plan.pk])).content.decode()
    assert 'data-charger="CP-OFF" data-status="accepted"' in page

    for sim in (accepting, rejecting, offline_sim):
        sims.run(sim.close())


@pytest.mark.django_db
def test_a_connected_charger_waits_as_pending_and_a_plan_not_seen_yet_too(api_client):
    """Before the central system has sent anything: pending for a connected charger, offline for the others."""
    from csms.models import ChargePoint

    depot, chargers = _depot()
    ChargePoint.objects.filter(charger=chargers["CP-OK"][0]).update(connected=True)
    plan = plan_depot_night(depot=depot, service_night=current_service_night(depot))
    api_client.force_authenticate(f.UserFactory(is_superuser=True, is_staff=True))
    statuses = {
        r["charge_point_id"]: r["status"]
        for r in api_client.get(f"/api/v1/charging-plans/{plan.pk}/").json()["delivery"]
    }
    assert statuses == {"CP-OK": "pending", "CP-REJ": "offline", "CP-OFF": "offline", "CP-NOLINK": "not_linked"}


@pytest.mark.django_db
def test_another_depots_plan_and_its_delivery_stay_hidden(api_client, two_depots):
    w = two_depots
    charger = f.ChargerFactory(depot=w["depot_b"])
    f.ConnectorFactory(charger=charger, connector_id=1)
    charger_password_issue(charger=charger)
    plan_b = plan_depot_night(depot=w["depot_b"], service_night=current_service_night(w["depot_b"]))
    api_client.force_authenticate(w["staff_a"])
    assert api_client.get(f"/api/v1/charging-plans/{plan_b.pk}/").status_code == 404
