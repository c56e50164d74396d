"""The charger board, the API of deliveries and charge points (depot-scoped), and the password command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from charging.planning import plan_depot_night
from csms.models import ChargePoint, ProfileDelivery
from csms.services import charge_point_authenticate, charger_password_issue, plans_scan, status_notification
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_charger_password_is_shown_once_and_only_its_hash_kept():
    charger = f.ChargerFactory(ocpp_charge_point_id="CP-77")
    out = StringIO()
    call_command("charger_password", "CP-77", stdout=out)
    password = out.getvalue().strip().splitlines()[-1]
    stored = ChargePoint.objects.get(charger=charger).password_hash
    assert password not in stored and len(password) >= 16
    assert charge_point_authenticate("CP-77", password).charger == charger
    assert charge_point_authenticate("CP-77", password + "x") is None
    with pytest.raises(CommandError, match="No charger"):
        call_command("charger_password", "CP-NONE", stdout=StringIO())


def test_a_new_plan_becomes_one_delivery_per_charger_and_supersedes_the_unsent_ones():
    depot = f.DepotFactory()
    chargers = [f.ChargerFactory(depot=depot) for _ in range(2)]
    for charger in chargers:
        f.ConnectorFactory(charger=charger, connector_id=1)
        charger_password_issue(charger=charger)
    first = plan_depot_night(depot=depot, service_night=depot_night(depot))
    assert plans_scan() == [first.pk]
    assert plans_scan() == []  # seen once
    second = plan_depot_night(depot=depot, service_night=first.service_night)
    plans_scan()
    assert set(ProfileDelivery.objects.filter(plan=first).values_list("status", flat=True)) == {"superseded"}
    assert set(ProfileDelivery.objects.filter(plan=second).values_list("status", flat=True)) == {"pending"}


def depot_night(depot):
    from charging.planning import current_service_night

    return current_service_night(depot)


def test_the_board_puts_faulted_chargers_on_top(client):
    depot = f.DepotFactory()
    ok = f.ChargerFactory(depot=depot, name="A ok")
    broken = f.ChargerFactory(depot=depot, name="Z broken")
    for charger in (ok, broken):
        f.ConnectorFactory(charger=charger, connector_id=1)
        charger_password_issue(charger=charger)
    status_notification(
        charge_point_id=broken.charge_point.pk, connector_number=1, status="Faulted", error_code="GroundFailure"
    )
    client.force_login(f.UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/csms/chargepoint/board/", {"depot": depot.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("Z broken") < html.index("A ok")
    assert "GroundFailure" in html


def test_deliveries_in_the_api_are_scoped_to_the_users_depots(api_client, two_depots):
    w = two_depots
    plans = {}
    for key in ("depot_a", "depot_b"):
        charger = f.ChargerFactory(depot=w[key])
        f.ConnectorFactory(charger=charger, connector_id=1)
        charger_password_issue(charger=charger)
        plans[key] = plan_depot_night(depot=w[key], service_night=depot_night(w[key]))
    plans_scan()
    api_client.force_authenticate(w["staff_a"])
    listed = api_client.get("/api/v1/profile-deliveries/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [r["plan"] for r in rows] == [plans["depot_a"].pk]
    assert rows[0]["status"] == "pending"
    other = ProfileDelivery.objects.get(plan=plans["depot_b"])
    assert api_client.get(f"/api/v1/profile-deliveries/{other.pk}/").status_code == 404
    points = api_client.get("/api/v1/charge-points/").json()
    points = points["results"] if isinstance(points, dict) else points
    assert len(points) == 1 and "password_hash" not in points[0]


def test_the_admin_shows_a_manager_only_their_depots_chargers(client, two_depots):
    w = two_depots
    mine = f.ChargerFactory(depot=w["depot_a"], ocpp_charge_point_id="CP-MINE", name="Mine")
    theirs = f.ChargerFactory(depot=w["depot_b"], ocpp_charge_point_id="CP-THEIRS", name="Theirs")
    for charger in (mine, theirs):
        f.ConnectorFactory(charger=charger, connector_id=1)
        charger_password_issue(charger=charger)
    manager = w["manager_a"]
    manager.is_staff = True
    manager.save()
    client.force_login(manager)
    listing = client.get("/admin/csms/chargepoint/").content.decode()
    assert "CP-MINE" in listing and "CP-THEIRS" not in listing
    board = client.get("/admin/csms/chargepoint/board/", {"depot": w["depot_b"].pk}).content.decode()
    assert "CP-MINE" in board and "CP-THEIRS" not in board  # another depot's id falls back to their own
    other = ChargePoint.objects.get(charger=theirs)
    assert client.get(f"/admin/csms/chargepoint/{other.pk}/change/").status_code == 302  # "doesn't exist"


def test_a_charger_linked_after_the_plan_was_scanned_gets_it_when_it_connects():
    from csms.services import charge_point_connected

    depot = f.DepotFactory()
    early = f.ChargerFactory(depot=depot)
    late = f.ChargerFactory(depot=depot)
    for charger in (early, late):
        f.ConnectorFactory(charger=charger, connector_id=1)
    charger_password_issue(charger=early)
    plan = plan_depot_night(depot=depot, service_night=depot_night(depot))
    plans_scan()
    assert list(ProfileDelivery.objects.filter(plan=plan).values_list("charge_point__charger", flat=True)) == [early.pk]

    late_point, _password = charger_password_issue(charger=late)  # e.g. simulate_chargers, after the scan
    charge_point_connected(charge_point_id=late_point.pk, ocpp_version="1.6")

    assert ProfileDelivery.objects.get(plan=plan, charge_point=late_point).status == "pending"
    charge_point_connected(charge_point_id=late_point.pk, ocpp_version="1.6")  # again: still one row
    assert ProfileDelivery.objects.filter(plan=plan).count() == 2
