"""The charging admin: depot staff report a charger's status, managers own chargers and tariffs."""

# The shared fixtures are imported from tests/fleet/test_admin_support.py; test arguments name them again.
# ruff: noqa: F811

from __future__ import annotations

from charging.models import Charger, Connector, Tariff, TariffPeriod
from tests import factories as f
from tests.fleet.test_admin_support import (  # noqa: F401  (fixtures)
    admin_url,
    depot_world,
    error_text,
    fast_passwords,
    form_data,
)


def test_charger_list_shows_depot_power_status_and_connectors(client, depot_world):
    w = depot_world
    f.ConnectorFactory(charger=w["charger_a"], connector_id=2, max_kw=75.0)
    client.force_login(w["manager_a"])
    response = client.get(admin_url(Charger, "changelist"))
    (row,) = response.context["cl"].result_list
    assert (row, row.depot, row.connector_count) == (w["charger_a"], w["depot_a"], 2)
    page = response.content.decode()
    assert "Hermosillo" in page and "150.0" in page and "Available" in page
    assert w["charger_b"].name not in page


def test_staff_report_a_fault_but_cannot_change_a_chargers_power(client, depot_world):
    w = depot_world
    charger = w["charger_a"]
    client.force_login(w["staff_a"])
    url = admin_url(charger)
    page = client.get(url)
    assert set(page.context["adminform"].form.fields) == {"status"}
    # A tampered form cannot sneak the power in: read-only fields are not in the form at all.
    data = form_data(page, status="faulted", max_kw="999")
    data["connectors-0-status"] = "faulted"
    response = client.post(url, data)
    assert response.status_code == 302, error_text(response)
    charger.refresh_from_db()
    assert (charger.status, charger.max_kw) == (Charger.Status.FAULTED, 150.0)
    assert Connector.objects.get(pk=w["connector_a"].pk).status == Charger.Status.FAULTED


def test_staff_cannot_add_or_delete_chargers(client, depot_world):
    w = depot_world
    client.force_login(w["staff_a"])
    assert client.get(admin_url(Charger, "add")).status_code == 403
    assert client.post(admin_url(w["charger_a"], "delete"), {"post": "yes"}).status_code == 403
    assert Charger.objects.filter(pk=w["charger_a"].pk).exists()


def test_a_connector_stronger_than_its_charger_is_a_form_error(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["charger_a"])
    response = client.post(url, form_data(client.get(url), **{"connectors-0-max_kw": "400"}))
    assert response.status_code == 200
    assert "cannot deliver more than its charger" in error_text(response)


def test_a_manager_cannot_put_a_charger_in_another_depot(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["charger_a"])
    response = client.post(url, form_data(client.get(url), depot=w["depot_b"].pk))
    assert "Select a valid choice" in error_text(response)


def test_tariffs_are_read_by_any_member_and_changed_by_managers(client, depot_world):
    w = depot_world
    tariff = w["tariff"]
    for user_key in ("staff_a", "viewer_a"):
        client.force_login(w[user_key])
        page = client.get(admin_url(tariff))
        assert page.status_code == 200
        assert page.context["has_change_permission"] is False
        assert client.post(admin_url(tariff), form_data(page, name="renamed")).status_code == 403
    client.force_login(w["manager_a"])
    url = admin_url(tariff)
    response = client.post(url, form_data(client.get(url), name="GDMTH Noroeste 2025"))
    assert response.status_code == 302, error_text(response)
    assert Tariff.objects.get(pk=tariff.pk).name == "GDMTH Noroeste 2025"


def test_a_manager_adds_a_punta_period_and_a_backwards_period_is_a_form_error(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["season"])
    page = client.get(url)
    new_row = {
        "periods-TOTAL_FORMS": "2",
        "periods-1-day_type": "weekday",
        "periods-1-period": "punta",
        "periods-1-starts_at": "20:00",
        "periods-1-ends_at": "18:00",
        "periods-1-energy_price_per_kwh": "3.10",
    }
    response = client.post(url, form_data(page, **new_row))
    assert "ends after it starts" in error_text(response)
    response = client.post(url, form_data(page, **{**new_row, "periods-1-ends_at": "22:00"}))
    assert response.status_code == 302, error_text(response)
    assert TariffPeriod.objects.filter(season=w["season"], period="punta").exists()


def test_a_season_cannot_be_moved_to_another_organisations_tariff(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["season"])
    response = client.post(url, form_data(client.get(url), tariff=w["other_tariff"].pk))
    assert "Select a valid choice" in error_text(response)


def test_a_manager_adds_a_connector_and_removes_another_in_one_save(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["charger_a"])
    new_row = {
        "connectors-TOTAL_FORMS": "2",
        "connectors-0-DELETE": "on",
        "connectors-1-connector_id": "2",
        "connectors-1-standard": "ccs2",
        "connectors-1-max_kw": "150",
        "connectors-1-status": "available",
    }
    response = client.post(url, form_data(client.get(url), **new_row))
    assert response.status_code == 302, error_text(response)
    assert list(w["charger_a"].connectors.values_list("connector_id", flat=True)) == [2]


def test_lowering_a_chargers_power_below_a_connector_is_a_form_error(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["charger_a"])
    response = client.post(url, form_data(client.get(url), max_kw="50"))
    assert response.status_code == 200
    assert "150" in error_text(response)
    w["charger_a"].refresh_from_db()
    assert w["charger_a"].max_kw == 150.0


def test_a_manager_acknowledges_and_resolves_alerts_from_the_list(client, depot_world):
    from charging.models import Alert

    client.force_login(depot_world["manager_a"])
    own, foreign = depot_world["alert_a"], depot_world["alert_b"]
    url = admin_url(Alert, "changelist")

    client.post(url, {"action": "acknowledge", "_selected_action": [own.pk, foreign.pk]})
    own.refresh_from_db()
    foreign.refresh_from_db()
    assert (own.status, foreign.status) == ("acknowledged", "open")

    client.post(url, {"action": "resolve", "_selected_action": [own.pk]})
    own.refresh_from_db()
    assert own.status == "resolved" and own.resolved_at is not None
