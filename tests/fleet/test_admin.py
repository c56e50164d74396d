"""The fleet admin through a fleet manager's, a depot staff member's and a viewer's eyes."""

# The shared fixtures are imported from tests/fleet/test_admin_support.py; test arguments name them again.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from fleet.models import BlockAssignment, Depot, DepotMembership, Vehicle
from tests import factories as f
from tests.factories import make_vin
from tests.fleet.test_admin_support import (  # noqa: F401  (fixtures)
    admin_url,
    depot_world,
    error_text,
    fast_passwords,
    form_data,
)


def test_vehicle_list_shows_the_columns_a_manager_works_with(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    response = client.get(admin_url(Vehicle, "changelist"))
    page = response.content.decode()
    vehicle = w["vehicle_a"]
    for shown in (
        vehicle.fleet_number,
        str(vehicle.model),
        "Hermosillo",
        "In service",
        w["pack_a"].serial,
        vehicle.vin,
    ):
        assert shown in page
    assert w["vehicle_b"].fleet_number not in page


def test_vehicle_depot_filter_offers_only_the_managers_depots(client, depot_world):
    client.force_login(depot_world["manager_a"])
    response = client.get(admin_url(Vehicle, "changelist"))
    depot_filter = next(spec for spec in response.context["cl"].filter_specs if spec.field_path == "home_depot")
    assert [label for _pk, label in depot_filter.lookup_choices] == ["Hermosillo"]
    assert "Nogales" not in response.content.decode()


def test_autocomplete_for_the_home_depot_offers_only_the_managers_depots(client, depot_world):
    client.force_login(depot_world["manager_a"])
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "fleet", "model_name": "vehicle", "field_name": "home_depot", "term": ""},
    )
    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == ["Hermosillo"]


def test_autocomplete_offers_only_what_the_asking_form_accepts(client, depot_world):
    w = depot_world
    # staff_a also watches depot B as a viewer: they see vehicle_b, but cannot give it a block.
    f.MembershipFactory(user=w["staff_a"], depot=w["depot_b"], role="viewer")
    client.force_login(w["staff_a"])
    vehicle_list = client.get(admin_url(Vehicle, "changelist")).context["cl"].result_list
    assert set(vehicle_list) == {w["vehicle_a"], w["vehicle_b"]}
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "fleet", "model_name": "blockassignment", "field_name": "vehicle", "term": ""},
    )
    assert [result["text"] for result in response.json()["results"]] == [w["vehicle_a"].fleet_number]


def test_a_manager_cannot_move_a_vehicle_into_another_depot(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["vehicle_a"])
    response = client.post(url, form_data(client.get(url), home_depot=w["depot_b"].pk))
    assert response.status_code == 200  # the form again, with the error
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["home_depot"])
    w["vehicle_a"].refresh_from_db()
    assert w["vehicle_a"].home_depot == w["depot_a"]


def test_a_manager_cannot_add_a_vehicle_to_another_depot(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    response = client.post(
        admin_url(Vehicle, "add"),
        {
            "organization": w["org"].pk,
            "fleet_number": "B-9001",
            "vin": make_vin(9001),
            "model": w["vehicle_a"].model_id,
            "home_depot": w["depot_b"].pk,
            "status": "in_service",
            "pack_installations-TOTAL_FORMS": "0",
            "pack_installations-INITIAL_FORMS": "0",
        },
    )
    assert "Select a valid choice" in error_text(response)
    assert not Vehicle.objects.filter(fleet_number="B-9001").exists()


def test_staff_change_a_vehicle_of_their_depot_through_the_service(client, depot_world):
    w = depot_world
    client.force_login(w["staff_a"])
    url = admin_url(w["vehicle_a"])
    response = client.post(url, form_data(client.get(url), status="maintenance", vin=w["vehicle_a"].vin.lower()))
    assert response.status_code == 302, error_text(response)
    w["vehicle_a"].refresh_from_db()
    assert w["vehicle_a"].status == Vehicle.Status.MAINTENANCE
    assert w["vehicle_a"].vin == w["vehicle_a"].vin.upper()  # normalised by the service


def test_a_manager_who_is_staff_elsewhere_adds_vehicles_only_where_they_manage(client, depot_world):
    w = depot_world
    f.MembershipFactory(user=w["manager_a"], depot=w["depot_b"], role="staff")
    client.force_login(w["manager_a"])
    add_form = client.get(admin_url(Vehicle, "add")).context["adminform"].form
    assert list(add_form.fields["home_depot"].queryset) == [w["depot_a"]]
    change_form = client.get(admin_url(w["vehicle_a"])).context["adminform"].form
    assert set(change_form.fields["home_depot"].queryset) == {w["depot_a"], w["depot_b"]}


def test_a_vin_with_a_wrong_check_digit_is_a_form_error(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    vin = make_vin(4242)
    wrong_digit = "0" if vin[8] != "0" else "1"
    response = client.post(
        admin_url(Vehicle, "add"),
        {
            "organization": w["org"].pk,
            "fleet_number": "B-4242",
            "vin": vin[:8] + wrong_digit + vin[9:],
            "model": w["vehicle_a"].model_id,
            "home_depot": w["depot_a"].pk,
            "status": "in_service",
            "pack_installations-TOTAL_FORMS": "0",
            "pack_installations-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "check digit" in str(response.context["adminform"].form.errors["vin"])
    assert not Vehicle.objects.filter(fleet_number="B-4242").exists()


def test_a_manager_adds_a_vehicle(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    response = client.post(
        admin_url(Vehicle, "add"),
        {
            "organization": w["org"].pk,
            "fleet_number": "B-4243",
            "vin": make_vin(4243).lower(),
            "model": w["vehicle_a"].model_id,
            "home_depot": w["depot_a"].pk,
            "status": "in_service",
            "pack_installations-TOTAL_FORMS": "0",
            "pack_installations-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, error_text(response)
    assert Vehicle.objects.get(fleet_number="B-4243").vin == make_vin(4243)


def test_staff_see_the_depot_settings_but_cannot_change_the_grid_limit(client, depot_world):
    w = depot_world
    client.force_login(w["staff_a"])
    url = admin_url(w["depot_a"])
    page = client.get(url)
    assert page.status_code == 200
    assert "grid_limit_kw" not in page.context["adminform"].form.fields  # shown read-only
    response = client.post(url, {**form_data(page), "grid_limit_kw": "9999"})
    assert response.status_code == 403
    w["depot_a"].refresh_from_db()
    assert w["depot_a"].grid_limit_kw == 1500.0


def test_a_manager_changes_the_grid_limit_and_a_bad_base_load_is_a_form_error(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["depot_a"])
    too_high = {f"base_load_kw_{hour}": "2000" for hour in range(24)}  # above the new limit in every hour
    response = client.post(url, form_data(client.get(url), grid_limit_kw="1800", **too_high))
    assert "no room under the grid limit" in error_text(response)
    response = client.post(url, form_data(client.get(url), grid_limit_kw="1800"))
    assert response.status_code == 302, error_text(response)
    w["depot_a"].refresh_from_db()
    assert w["depot_a"].grid_limit_kw == 1800.0


def test_a_manager_cannot_give_their_depot_another_organisations_tariff(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    url = admin_url(w["depot_a"])
    response = client.post(url, form_data(client.get(url), tariff=w["other_tariff"].pk))
    assert "Select a valid choice" in error_text(response)


def test_depot_list_compares_installed_charger_power_with_the_grid_limit(client, depot_world):
    w = depot_world
    f.ChargerFactory(depot=w["depot_a"], max_kw=150.0)  # two 150 kW chargers under a 1,500 kW limit
    client.force_login(w["manager_a"])
    page = client.get(admin_url(Depot, "changelist")).content.decode()
    assert "300 / 1,500 kW (20 %)" in page


def test_a_viewer_can_look_but_not_change(client, depot_world):
    w = depot_world
    client.force_login(w["viewer_a"])
    url = admin_url(w["vehicle_a"])
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert client.post(url, {**form_data(page), "status": "retired"}).status_code == 403
    assert client.get(admin_url(Vehicle, "add")).status_code == 403
    assert client.get(admin_url(w["block_a"])).context["has_change_permission"] is False
    w["vehicle_a"].refresh_from_db()
    assert w["vehicle_a"].status == Vehicle.Status.IN_SERVICE


def test_an_overlapping_block_assignment_is_a_form_error(client, depot_world):
    w = depot_world
    # vehicle_a already does block_a (05:30-13:30 tomorrow); a midday block overlaps it.
    midday = f.BlockFactory(
        depot=w["depot_a"], service_date=w["block_a"].service_date, departs_at=dt.time(12), returns_at=dt.time(18)
    )
    client.force_login(w["staff_a"])
    response = client.post(
        admin_url(BlockAssignment, "add"),
        {"block": midday.pk, "vehicle": w["vehicle_a"].pk, "service_date": midday.service_date.isoformat()},
    )
    assert response.status_code == 200
    assert "already does block" in str(response.context["adminform"].form.errors["vehicle"])
    assert not BlockAssignment.objects.filter(block=midday).exists()


def test_a_block_assignment_is_saved_with_its_window(client, depot_world):
    w = depot_world
    evening = f.BlockFactory(
        depot=w["depot_a"], service_date=w["block_a"].service_date, departs_at=dt.time(15), returns_at=dt.time(22)
    )
    client.force_login(w["staff_a"])
    response = client.post(
        admin_url(BlockAssignment, "add"),
        {"block": evening.pk, "vehicle": w["vehicle_a"].pk, "service_date": evening.service_date.isoformat()},
    )
    assert response.status_code == 302, error_text(response)
    assignment = BlockAssignment.objects.get(block=evening)
    assert (assignment.starts_at, assignment.ends_at) == evening.window_on(evening.service_date)


def test_staff_cannot_assign_another_depots_vehicle(client, depot_world):
    w = depot_world
    evening = f.BlockFactory(depot=w["depot_a"], departs_at=dt.time(15), returns_at=dt.time(22))
    client.force_login(w["staff_a"])
    response = client.post(
        admin_url(BlockAssignment, "add"),
        {"block": evening.pk, "vehicle": w["vehicle_b"].pk, "service_date": evening.service_date.isoformat()},
    )
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["vehicle"])


def test_moving_a_block_into_a_clash_is_a_form_error_and_changes_nothing(client, depot_world):
    w = depot_world
    evening = f.BlockFactory(
        depot=w["depot_a"], service_date=w["block_a"].service_date, departs_at=dt.time(15), returns_at=dt.time(22)
    )
    f.BlockAssignmentFactory(block=evening, vehicle=w["vehicle_a"])
    client.force_login(w["staff_a"])
    url = admin_url(evening)
    # Departing at 13:00 the evening block would overlap vehicle_a's morning block (until 13:30).
    response = client.post(url, form_data(client.get(url), departs_at="13:00"))
    assert response.status_code == 200
    assert "already does block" in error_text(response)
    evening.refresh_from_db()
    assert evening.departs_at == dt.time(15)


def test_moving_a_block_moves_its_assignments(client, depot_world):
    w = depot_world
    client.force_login(w["staff_a"])
    block = w["block_a"]
    url = admin_url(block)
    response = client.post(url, form_data(client.get(url), departs_at="06:00"))
    assert response.status_code == 302, error_text(response)
    w["assignment_a"].refresh_from_db()
    assert w["assignment_a"].starts_at == dt.datetime.combine(block.service_date, dt.time(6), tzinfo=block.depot.zone)


def test_a_manager_gives_a_colleague_a_role_by_username_only_in_their_depots(client, depot_world):
    w = depot_world
    newcomer = f.UserFactory(username="newcomer")
    client.force_login(w["manager_a"])
    url = admin_url(DepotMembership, "add")
    response = client.post(url, {"user": "newcomer", "depot": w["depot_b"].pk, "role": "manager"})
    assert "Select a valid choice" in error_text(response)
    response = client.post(url, {"user": "nobody", "depot": w["depot_a"].pk, "role": "staff"})
    assert "No active user has this username" in error_text(response)
    response = client.post(url, {"user": "newcomer", "depot": w["depot_a"].pk, "role": "staff"})
    assert response.status_code == 302, error_text(response)
    assert DepotMembership.objects.get(user=newcomer).depot == w["depot_a"]


@pytest.mark.parametrize("user_key", ["staff_a", "viewer_a"])
def test_only_managers_change_memberships(client, depot_world, user_key):
    w = depot_world
    client.force_login(w[user_key])
    membership = DepotMembership.objects.get(user=w["manager_a"])
    assert client.get(admin_url(membership)).context["has_change_permission"] is False
    assert client.get(admin_url(DepotMembership, "add")).status_code == 403


def test_vehicle_changelist_queries_do_not_grow_with_rows(client, depot_world, django_assert_max_num_queries):
    w = depot_world
    for _ in range(30):
        vehicle = f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"])
        f.PackInstallationFactory(pack=f.BatteryPackFactory(organization=w["org"]), vehicle=vehicle)
    client.force_login(w["manager_a"])
    url = admin_url(Vehicle, "changelist")
    with django_assert_max_num_queries(12):
        response = client.get(url)
    assert len(response.context["cl"].result_list) == 31


def test_a_weekly_block_shows_its_days_and_validity(client, depot_world):
    w = depot_world
    f.BlockFactory(
        depot=w["depot_a"],
        code="RUTA-7",
        service_date=None,
        weekdays=[4, 0, 2],
        valid_from=dt.date(2025, 1, 6),
        valid_until=None,
    )
    client.force_login(w["staff_a"])
    page = client.get(admin_url(w["block_a"].__class__, "changelist")).content.decode()
    assert "Mon, Wed, Fri (2025-01-06 – …)" in page
