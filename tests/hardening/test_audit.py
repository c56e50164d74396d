"""The audit trail: each change to a depot's grid limit, a tariff, a block, a charger's status or a plan leaves
an entry with who made it and when, through whichever door it came (API token, admin session, service), and
the admin's History page shows it to the depot's people only."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from charging.models import Charger, ChargingPlan, Tariff, TariffSeason
from fleet.models import Block, Depot
from tests import factories as f
from tests.hardening.conftest import token_headers

pytestmark = pytest.mark.django_db


def latest(model, obj):
    return model.history.filter(id=obj.pk).latest("history_date")


def patch(client, url, body, token):
    return client.patch(url, data=json.dumps(body), content_type="application/json", **token_headers(token))


def test_a_grid_limit_change_through_the_api_records_who_and_when(world, client):
    depot = world["depot_a"]
    before = timezone.now()

    response = patch(client, f"/api/v1/depots/{depot.pk}/", {"grid_limit_kw": 900.0}, world["manager_token"])

    assert response.status_code == 200, response.content
    entry = latest(Depot, depot)
    assert (entry.history_user, entry.history_type, entry.grid_limit_kw) == (world["manager_a"], "~", 900.0)
    assert before <= entry.history_date <= timezone.now()
    assert entry.diff_against(entry.prev_record).changed_fields == ["grid_limit_kw"]


def test_a_tariff_change_records_the_tariff_and_its_replaced_seasons(world, client):
    tariff = world["tariff"]
    old_season = world["season"]
    season = {"name": "verano", "starts_month": 5, "starts_day": 1, "ends_month": 10, "ends_day": 31, "periods": []}

    response = patch(
        client, f"/api/v1/tariffs/{tariff.pk}/", {"name": "GDMTH 2027", "seasons": [season]}, world["manager_token"]
    )

    assert response.status_code == 200, response.content
    entry = latest(Tariff, tariff)
    assert (entry.history_user, entry.name) == (world["manager_a"], "GDMTH 2027")
    gone = TariffSeason.history.get(id=old_season.pk, history_type="-")
    added = TariffSeason.history.get(name="verano", history_type="+")
    assert gone.history_user == added.history_user == world["manager_a"]


def test_a_block_change_by_staff_records_the_staff_member(world, client):
    block = world["block_a"]

    response = patch(client, f"/api/v1/blocks/{block.pk}/", {"distance_km": 210.0}, world["staff_token"])

    assert response.status_code == 200, response.content
    entry = latest(Block, block)
    assert (entry.history_user, entry.distance_km) == (world["staff_a"], 210.0)


def test_a_charger_status_report_records_who_reported_it(world, client):
    charger = world["charger_a"]

    response = client.post(
        f"/api/v1/chargers/{charger.pk}/status/",
        data=json.dumps({"status": "faulted"}),
        content_type="application/json",
        **token_headers(world["staff_token"]),
    )

    assert response.status_code == 200, response.content
    entry = latest(Charger, charger)
    assert (entry.history_user, entry.status, entry.prev_record.status) == (world["staff_a"], "faulted", "available")


def test_a_charger_change_in_the_admin_records_the_manager(world, client):
    from tests.fleet.test_admin_support import admin_url, form_data

    charger = world["charger_a"]
    client.force_login(world["manager_a"])
    page = client.get(admin_url(charger))

    response = client.post(admin_url(charger), form_data(page, max_kw=200.0))

    assert response.status_code == 302, response.content[:500]
    entry = latest(Charger, charger)
    assert (entry.history_user, entry.max_kw) == (world["manager_a"], 200.0)


def test_plans_record_the_job_that_made_them_and_the_manager_who_replanned(world, client):
    plan = world["plan_a"]
    nightly = latest(ChargingPlan, plan)
    client.force_login(world["manager_a"])

    for day_type in ("saturday", "sunday_holiday"):  # the world's tariff prices weekdays only
        f.TariffPeriodFactory(season=world["season"], day_type=day_type)

    client.post(reverse("admin:charging_chargingplan_replan", args=[plan.pk]))

    replanned = ChargingPlan.objects.filter(depot=plan.depot, service_night=plan.service_night).latest("version")
    assert replanned.pk != plan.pk
    assert (nightly.history_type, nightly.history_user) == ("+", None)  # made by the overnight service
    assert latest(ChargingPlan, replanned).history_user == world["manager_a"]
    assert "instance" not in [field.name for field in ChargingPlan.history.model._meta.fields]  # too large


def test_the_history_page_shows_the_change_to_the_depots_people_and_to_nobody_else(world, client):
    depot_a, depot_b = world["depot_a"], world["depot_b"]
    patch(client, f"/api/v1/depots/{depot_a.pk}/", {"grid_limit_kw": 800.0}, world["manager_token"])
    history_a = reverse("admin:fleet_depot_history", args=[depot_a.pk])
    history_b = reverse("admin:fleet_depot_history", args=[depot_b.pk])

    client.force_login(world["manager_a"])
    own = client.get(history_a)
    foreign = client.get(history_b)
    client.force_login(world["staff_b"])
    other_depot = client.get(history_a)

    assert own.status_code == 200
    assert "manager_a" in own.content.decode() and "grid_limit_kw" in own.content.decode()
    assert foreign.status_code == 403
    assert other_depot.status_code == 403


def test_an_old_version_can_be_viewed_but_not_saved_back_from_the_history_page(world, client):
    depot = world["depot_a"]
    patch(client, f"/api/v1/depots/{depot.pk}/", {"grid_limit_kw": 700.0}, world["manager_token"])
    first = Depot.history.filter(id=depot.pk).earliest("history_date")
    url = reverse("admin:fleet_depot_simple_history", args=[depot.pk, first.history_id])
    client.force_login(world["viewer_a"])

    viewed = client.get(url)
    reverted = client.post(url, {"grid_limit_kw": 1500.0})

    assert viewed.status_code == 200
    assert reverted.status_code == 403
    depot.refresh_from_db()
    assert depot.grid_limit_kw == 700.0
