"""A depot's 24 hourly base-load values and 12 monthly temperatures: one labelled number input each, errors
that name the value, in English, Spanish and German."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.translation import gettext, override

from fleet.models import Depot
from tests import factories as f
from tests.support.climates import HERMOSILLO_C

pytestmark = pytest.mark.django_db


@pytest.fixture
def depot_form(client, two_depots):
    w = two_depots
    superuser = f.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    depot = w["depot_a"]
    url = reverse("admin:fleet_depot_change", args=[depot.pk])
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        widget_data = field.widget.format_value(value) if not hasattr(field.widget, "widgets") else None
        if hasattr(field.widget, "widgets"):
            for i, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{i}"] = "" if part is None else part
        elif hasattr(value, "pk"):
            data[name] = value.pk
        elif value is not None:
            data[name] = widget_data if widget_data is not None else value
    return depot, url, data


def series(data: dict, name: str, values: list) -> dict:
    return {**data, **{f"{name}_{i}": value for i, value in enumerate(values)}}


@pytest.mark.parametrize(
    ("language", "first_hour", "first_month"),
    [("en", "00:00", "Jan"), ("es-mx", "00:00", "Ene"), ("de", "00:00", "Jan")],
)
def test_the_depot_form_has_a_labelled_input_per_hour_and_per_month(
    client, depot_form, language, first_hour, first_month
):
    _depot, url, _data = depot_form
    page = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert page.count('name="base_load_kw_') == 24 and page.count('name="monthly_mean_temperature_c_') == 12
    assert f'aria-label="{first_hour}"' in page and f'aria-label="{first_month}"' in page
    assert '<textarea name="base_load_kw"' not in page and '<textarea name="monthly_mean_temperature_c"' not in page


def test_values_are_saved_as_the_lists_the_planner_reads(client, depot_form):
    depot, url, data = depot_form
    base = [50.0] * 24
    base[19] = 80.5
    temperatures = list(HERMOSILLO_C)
    data = series(series(data, "base_load_kw", base), "monthly_mean_temperature_c", temperatures)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    depot.refresh_from_db()
    assert depot.base_load_kw == base and depot.monthly_mean_temperature_c == [float(t) for t in temperatures]

    # All empty: no series ("empty: none").
    response = client.post(
        url, series(series(data, "base_load_kw", [""] * 24), "monthly_mean_temperature_c", [""] * 12)
    )
    assert response.status_code == 302
    depot.refresh_from_db()
    assert depot.base_load_kw == [] and depot.monthly_mean_temperature_c == []


@pytest.mark.parametrize("language", ["en", "es-mx", "de"])
def test_each_wrong_value_is_named_in_the_error_in_the_readers_language(client, depot_form, language):
    depot, url, data = depot_form
    with override(language):  # Django's own messages, as its catalogue words them
        expected = [
            "03:00: " + gettext("Ensure this value is greater than or equal to %(limit_value)s.") % {"limit_value": 0},
            "07:00: " + gettext("Enter a number."),
        ]
    assert language == "en" or expected[1] != "07:00: Enter a number."
    base = ["10"] * 24
    base[3], base[7] = "-5", "abc"
    response = client.post(url, series(data, "base_load_kw", base), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["base_load_kw"] == expected
    assert Depot.objects.get(pk=depot.pk).base_load_kw == depot.base_load_kw  # nothing saved


def test_a_partly_filled_series_names_the_missing_values(client, depot_form):
    _depot, url, data = depot_form
    months = [""] * 12
    months[0] = "17"
    response = client.post(url, series(data, "monthly_mean_temperature_c", months), HTTP_ACCEPT_LANGUAGE="de")
    (error,) = response.context["adminform"].form.errors["monthly_mean_temperature_c"]
    assert error.startswith("Geben Sie alle Werte oder keinen an; es fehlen: Feb, Mär")


def test_the_models_own_rules_still_hold(client, depot_form):
    depot, url, data = depot_form
    base = [float(depot.grid_limit_kw)] * 24  # no room under the grid limit
    response = client.post(url, series(data, "base_load_kw", base))
    assert response.context["adminform"].form.errors["base_load_kw"] == [
        "The base load leaves no room under the grid limit in some hour."
    ]
