"""Every admin page works for a fleet manager, and shows only their depots' rows.

The manager of depot A has ``is_staff`` and *no* Django model permission: depot memberships alone open
the admin. Each registered model is visited, so a new admin without scoping fails here.
"""

# The shared fixtures are imported from tests/fleet/test_admin_support.py; test arguments name them again.
# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.urls import reverse

from fleet.models import VehicleModel
from tests.fleet.test_admin_support import admin_url, depot_world, fast_passwords  # noqa: F401  (fixtures)

# Every app of the project (not Django's or a library's): a new app's admin is covered the day it lands.
PROJECT_APPS = {config.label for config in apps.get_app_configs() if Path(config.path).parent == settings.BASE_DIR}


# Rows that belong to no depot or organisation (a forecasting run covers the whole installation).
OPERATOR_ONLY = {"batteries.ForecastRun"}


def project_models():
    return sorted(
        (
            model
            for model in admin.site._registry
            if model._meta.app_label in PROJECT_APPS and model._meta.label not in OPERATOR_ONLY
        ),
        key=lambda model: model._meta.label,
    )


def test_every_project_model_has_an_admin_and_the_tests_cover_it(depot_world):
    assert set(project_models()) == set(depot_world["seen_by_manager_a"])


def test_the_admin_site_is_called_evfleet(client, depot_world):
    client.force_login(depot_world["manager_a"])
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert response.context["site_header"] == "evfleet"
    assert response.context["site_title"] == "evfleet"


def test_a_manager_without_django_permissions_sees_every_project_model_on_the_index(client, depot_world):
    manager = depot_world["manager_a"]
    assert not manager.user_permissions.exists() and not manager.is_superuser
    client.force_login(manager)
    response = client.get(reverse("admin:index"))
    listed = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert {model.__name__ for model in project_models()} <= listed


@pytest.mark.parametrize("model", project_models(), ids=lambda model: model._meta.label)
def test_a_manager_gets_each_changelist_with_their_rows_and_without_the_others(client, depot_world, model):
    client.force_login(depot_world["manager_a"])
    response = client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert admin_url(depot_world["seen_by_manager_a"][model]) in page
    hidden = depot_world["hidden_from_manager_a"][model]
    if hidden is not None:
        assert admin_url(hidden) not in page


@pytest.mark.parametrize("model", project_models(), ids=lambda model: model._meta.label)
def test_a_manager_opens_the_change_page_of_their_rows(client, depot_world, model):
    client.force_login(depot_world["manager_a"])
    obj = depot_world["seen_by_manager_a"][model]
    response = client.get(admin_url(obj))
    assert response.status_code == 200
    assert response.context["original"] == obj


@pytest.mark.parametrize(
    # The vehicle catalogue is shared by every organisation: there is no other depot's row to hide.
    "model",
    [model for model in project_models() if model is not VehicleModel],
    ids=lambda model: model._meta.label,
)
def test_another_depots_row_is_not_found_by_url(client, depot_world, model):
    hidden = depot_world["hidden_from_manager_a"][model]
    client.force_login(depot_world["manager_a"])
    # Django's admin answers a missing object with a redirect to its index and a message.
    response = client.get(admin_url(hidden), follow=True)
    assert response.redirect_chain == [(reverse("admin:index"), 302)]
    assert "doesn’t exist" in response.content.decode()
    assert str(hidden) not in response.content.decode()
    # Nor through the history or delete pages (403 first where the user may delete nothing at all).
    for view in ("history", "delete"):
        response = client.get(admin_url(hidden, view))
        assert response.status_code in (302, 403)
        assert str(hidden) not in response.content.decode()


@pytest.mark.parametrize("model", project_models(), ids=lambda model: model._meta.label)
def test_add_pages_open_where_a_manager_may_add(client, depot_world, model):
    client.force_login(depot_world["manager_a"])
    response = client.get(admin_url(model, "add"))
    # Organisations and depots are created by the installation's operators (superusers); plans, alerts and
    # events are made by the planner and the depots, never added by hand.
    made_elsewhere = getattr(admin.site._registry[model], "add_action", None) is None
    expected = 403 if made_elsewhere or model._meta.model_name in {"organization", "depot"} else 200
    assert response.status_code == expected


def test_a_superuser_sees_both_depots(client, depot_world):
    from tests.factories import UserFactory

    root = UserFactory(username="root", is_superuser=True)
    client.force_login(root)
    page = client.get(admin_url(depot_world["vehicle_a"].__class__, "changelist")).content.decode()
    assert admin_url(depot_world["vehicle_a"]) in page and admin_url(depot_world["vehicle_b"]) in page


def test_a_staff_account_without_any_depot_sees_no_project_model(client, depot_world):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="stranger"))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert not [app for app in response.context["app_list"] if app["app_label"] in PROJECT_APPS]
    assert client.get(admin_url(depot_world["vehicle_a"].__class__, "changelist")).status_code == 403
