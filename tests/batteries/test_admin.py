"""The battery admin: packs follow the vehicle they are in now; installs are swaps done by the service."""

# The shared fixtures are imported from tests/fleet/test_admin_support.py; test arguments name them again.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from batteries.models import BatteryPack, PackInstallation
from tests import factories as f
from tests.fleet.test_admin_support import (  # noqa: F401  (fixtures)
    admin_url,
    depot_world,
    error_text,
    fast_passwords,
)


def install_form(pack, vehicle, installed_at: dt.datetime) -> dict:
    local = timezone.localtime(installed_at)
    return {
        "pack": pack.pk,
        "vehicle": vehicle.pk,
        "installed_at_0": local.date().isoformat(),
        "installed_at_1": local.strftime("%H:%M:%S"),
    }


def test_pack_list_shows_vehicle_health_and_warranty_of_the_managers_depot_only(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    page = client.get(admin_url(BatteryPack, "changelist")).content.decode()
    for shown in (w["pack_a"].serial, "LFP", w["vehicle_a"].fleet_number, "93.5 %", "8 y / 500,000 km / ≥ 70 % SoH"):
        assert shown in page
    assert w["pack_b"].serial not in page


def test_latest_soh_is_the_newest_observation(client, depot_world):
    w = depot_world
    f.HealthObservationFactory(pack=w["pack_a"], observed_at=timezone.now() - dt.timedelta(days=400), soh_pct=99.0)
    client.force_login(w["manager_a"])
    response = client.get(admin_url(BatteryPack, "changelist"))
    (row,) = response.context["cl"].result_list
    assert row.latest_soh_pct == 93.5


def test_depot_filter_lists_only_the_users_depots_and_filters_by_the_vehicle_now(client, depot_world):
    w = depot_world
    spare = f.BatteryPackFactory(organization=w["org"])  # in no vehicle: the organisation's managers see it
    client.force_login(w["manager_a"])
    url = admin_url(BatteryPack, "changelist")
    response = client.get(url)
    depot_filter = next(spec for spec in response.context["cl"].filter_specs if spec.parameter_name == "depot")
    assert [label for _pk, label in depot_filter.lookup_choices] == ["Hermosillo"]
    assert {p.serial for p in response.context["cl"].result_list} == {w["pack_a"].serial, spare.serial}
    filtered = client.get(url, {"depot": w["depot_a"].pk}).context["cl"].result_list
    assert [p.serial for p in filtered] == [w["pack_a"].serial]


def test_a_pack_out_of_service_with_a_long_history_is_listed_once(client, depot_world):
    w = depot_world
    pack = f.BatteryPackFactory(organization=w["org"])
    start = timezone.now() - dt.timedelta(days=900)
    for months in (0, 6):
        f.PackInstallationFactory(
            pack=pack,
            vehicle=f.VehicleFactory(organization=w["org"], home_depot=w["depot_b"]),
            installed_at=start + dt.timedelta(days=30 * months),
            removed_at=start + dt.timedelta(days=30 * months + 100),
        )
    client.force_login(w["manager_a"])
    serials = [p.serial for p in client.get(admin_url(BatteryPack, "changelist")).context["cl"].result_list]
    assert serials.count(pack.serial) == 1
    assert client.get(admin_url(pack)).status_code == 200


def test_installing_a_pack_is_a_swap_that_keeps_history(client, depot_world):
    w = depot_world
    new_pack = f.BatteryPackFactory(organization=w["org"])
    client.force_login(w["manager_a"])
    response = client.post(admin_url(PackInstallation, "add"), install_form(new_pack, w["vehicle_a"], timezone.now()))
    assert response.status_code == 302, error_text(response)
    assert PackInstallation.objects.get(vehicle=w["vehicle_a"], removed_at__isnull=True).pack == new_pack
    w["installation_a"].refresh_from_db()
    assert w["installation_a"].removed_at is not None  # the old pack's installation is closed, not deleted


def test_a_swap_before_the_current_installation_began_is_a_form_error(client, depot_world):
    w = depot_world
    new_pack = f.BatteryPackFactory(organization=w["org"])
    too_early = w["installation_a"].installed_at - dt.timedelta(days=1)
    client.force_login(w["manager_a"])
    response = client.post(admin_url(PackInstallation, "add"), install_form(new_pack, w["vehicle_a"], too_early))
    assert response.status_code == 200
    assert "after the current installation began" in error_text(response)
    assert PackInstallation.objects.get(vehicle=w["vehicle_a"], removed_at__isnull=True).pack == w["pack_a"]


def test_a_manager_cannot_install_another_depots_pack(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    response = client.post(
        admin_url(PackInstallation, "add"), install_form(w["pack_b"], w["vehicle_a"], timezone.now())
    )
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["pack"])
    assert PackInstallation.objects.get(pack=w["pack_b"], removed_at__isnull=True).vehicle == w["vehicle_b"]


def test_pack_autocomplete_of_the_install_form_offers_only_visible_packs(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "batteries", "model_name": "packinstallation", "field_name": "pack", "term": "CATL"},
    )
    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == [w["pack_a"].serial]


def test_installations_are_history_staff_and_viewers_only_read(client, depot_world):
    w = depot_world
    for user_key in ("staff_a", "viewer_a"):
        client.force_login(w[user_key])
        assert client.get(admin_url(PackInstallation, "add")).status_code == 403
        assert client.get(admin_url(w["installation_a"])).context["has_change_permission"] is False
        assert client.get(admin_url(w["pack_a"])).context["has_change_permission"] is False


def test_the_remove_action_closes_the_installation(client, depot_world):
    w = depot_world
    client.force_login(w["manager_a"])
    response = client.post(
        admin_url(PackInstallation, "changelist"),
        {"action": "remove_packs_now", "_selected_action": [w["installation_a"].pk]},
    )
    assert response.status_code == 302
    w["installation_a"].refresh_from_db()
    assert w["installation_a"].removed_at is not None


def test_pack_changelist_queries_do_not_grow_with_rows(client, depot_world, django_assert_max_num_queries):
    w = depot_world
    for _ in range(30):
        pack = f.BatteryPackFactory(organization=w["org"])
        f.PackInstallationFactory(pack=pack, vehicle=f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"]))
        f.HealthObservationFactory(pack=pack)
    client.force_login(w["manager_a"])
    url = admin_url(BatteryPack, "changelist")
    with django_assert_max_num_queries(12):
        response = client.get(url)
    assert len(response.context["cl"].result_list) == 31


def test_forecast_changelist_reads_no_curves_and_pages_fifty(client, depot_world, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from batteries.models import SoHForecast

    w = depot_world
    today = timezone.localdate()
    for weeks in range(1, 61):  # one pack's weekly forecasts for more than a year: more than a page
        f.SoHForecastFactory(pack=w["pack_a"], as_of=today - dt.timedelta(weeks=weeks))
    client.force_login(w["manager_a"])

    with django_assert_max_num_queries(12), CaptureQueriesContext(connection) as queries:
        response = client.get(admin_url(SoHForecast, "changelist"))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50 and response.context["cl"].result_count > 60
    listed = [q["sql"] for q in queries.captured_queries if 'FROM "batteries_sohforecast"' in q["sql"]]
    assert listed and not any('"points"' in sql or '"inputs"' in sql for sql in listed)
