"""Tariffs through the REST API: one document with seasons, periods and demand charges."""

import pytest

from charging.models import Tariff, TariffPeriod
from tests import factories as f

pytestmark = pytest.mark.django_db

TARIFFS = "/api/v1/tariffs/"


def gdmth_body(organization, **overrides) -> dict:
    body = {
        "organization": organization.pk,
        "name": "GDMTH Noroeste",
        "currency": "MXN",
        "holidays": ["2025-12-25", "2025-01-01"],
        "seasons": [
            {
                "name": "verano",
                "starts_month": 5,
                "starts_day": 1,
                "ends_month": 10,
                "ends_day": 31,
                "periods": [
                    {
                        "day_type": "weekday",
                        "period": "base",
                        "starts_at": "00:00",
                        "ends_at": "06:00",
                        "energy_price_per_kwh": "1.05",
                    },
                    {
                        "day_type": "weekday",
                        "period": "punta",
                        "starts_at": "18:00",
                        "ends_at": "22:00",
                        "energy_price_per_kwh": "2.90",
                    },
                ],
            }
        ],
        "demand_charges": [{"name": "capacidad", "price_per_kw_month": "350.00", "applies_in_periods": ["punta"]}],
    }
    return {**body, **overrides}


def test_manager_creates_a_tariff_with_its_structure_in_one_request(two_depots, api_client):
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.post(TARIFFS, gdmth_body(two_depots["org"]))

    assert response.status_code == 201, response.json()
    tariff = Tariff.objects.get(pk=response.json()["id"])
    assert tariff.holidays == ["2025-01-01", "2025-12-25"]
    assert [p.period for p in TariffPeriod.objects.filter(season__tariff=tariff)] == ["base", "punta"]
    assert response.json()["seasons"][0]["periods"][1]["energy_price_per_kwh"] == "2.9000"
    assert response.json()["demand_charges"][0]["applies_in_periods"] == ["punta"]


def test_members_read_their_organisations_tariffs_only(two_depots, api_client):
    own = f.TariffPeriodFactory(season__tariff__organization=two_depots["org"]).season.tariff
    f.TariffFactory()  # another organisation's
    api_client.force_authenticate(two_depots["staff_a"])

    body = api_client.get(TARIFFS).json()

    assert [t["id"] for t in body["results"]] == [own.pk]
    assert body["results"][0]["seasons"][0]["periods"][0]["period"] == "base"


def test_staff_cannot_write_tariffs_and_nobody_writes_into_another_organisation(two_depots, api_client):
    own = f.TariffFactory(organization=two_depots["org"])
    foreign = f.TariffFactory()
    api_client.force_authenticate(two_depots["staff_a"])
    assert api_client.post(TARIFFS, gdmth_body(two_depots["org"])).status_code == 403
    assert api_client.patch(f"{TARIFFS}{own.pk}/", {"name": "x"}).status_code == 403

    api_client.force_authenticate(two_depots["manager_a"])
    assert api_client.post(TARIFFS, gdmth_body(foreign.organization)).status_code == 400
    assert api_client.patch(f"{TARIFFS}{foreign.pk}/", {"name": "x"}).status_code == 404


def test_a_bad_period_is_a_400_that_says_where(two_depots, api_client):
    body = gdmth_body(two_depots["org"])
    body["seasons"][0]["periods"][1]["ends_at"] = "17:00"  # before it starts
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.post(TARIFFS, body)

    assert response.status_code == 400
    assert response.json()["seasons"][0].startswith("seasons[0].periods[1].ends_at:")
    assert not Tariff.objects.exists()  # nothing half-written


def test_unknown_nested_field_is_rejected(two_depots, api_client):
    body = gdmth_body(two_depots["org"])
    body["seasons"][0]["periods"][0]["price"] = "1.0"
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.post(TARIFFS, body)

    assert response.status_code == 400
    # DRF reports list items by position: only the failing ones.
    assert response.json() == {"seasons": {"0": {"periods": {"0": {"price": ["Unknown field."]}}}}}


def test_update_replaces_the_seasons_given(two_depots, api_client):
    api_client.force_authenticate(two_depots["manager_a"])
    tariff_id = api_client.post(TARIFFS, gdmth_body(two_depots["org"])).json()["id"]
    all_year = {"name": "todo el año", "starts_month": 1, "starts_day": 1, "ends_month": 12, "ends_day": 31}

    response = api_client.patch(f"{TARIFFS}{tariff_id}/", {"seasons": [all_year]})

    assert response.status_code == 200, response.json()
    assert [s["name"] for s in response.json()["seasons"]] == ["todo el año"]
    assert len(response.json()["demand_charges"]) == 1  # not given: kept


def test_a_tariff_in_use_cannot_be_deleted(two_depots, api_client):
    tariff = f.TariffFactory(organization=two_depots["org"])
    two_depots["depot_a"].tariff = tariff
    two_depots["depot_a"].save()
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.delete(f"{TARIFFS}{tariff.pk}/")

    assert response.status_code == 400
    assert "Hermosillo" in response.json()["non_field_errors"][0]
    assert Tariff.objects.filter(pk=tariff.pk).exists()


def test_tariff_list_loads_the_structure_in_a_fixed_number_of_queries(
    two_depots, api_client, django_assert_max_num_queries
):
    for _ in range(5):
        f.TariffPeriodFactory(season__tariff__organization=two_depots["org"])
    api_client.force_authenticate(two_depots["staff_a"])

    with django_assert_max_num_queries(5):  # count, page, seasons, periods, demand charges
        response = api_client.get(TARIFFS)

    assert response.json()["count"] == 5
