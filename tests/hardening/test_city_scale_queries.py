"""Query counts do not grow with rows: every admin changelist and every API list, on a generated city
(bench/city_scale.py's generator) at two sizes - the second with twice the depots and vehicles and twice the days -
asks the database no more often than on the first. The times at the full size are the benchmark's business."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from bench.city_scale import CitySize, admin_changelist_urls, api_list_urls, generate, list_parameters

pytestmark = pytest.mark.django_db

SMALL = CitySize(depots=2, vehicles_per_depot=3, chargers_per_depot=2, days=3, readings_per_day=2)
LARGER = CitySize(depots=4, vehicles_per_depot=6, chargers_per_depot=3, days=6, readings_per_day=2)


def pages(world) -> dict[tuple[str, str], Client]:
    """Every admin changelist as the superuser and as an organisation's manager (whose lists go through the
    scoping rule), and every API list as the superuser."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk([world["superuser"], world["manager"]])
    superuser, manager = users[world["superuser"]], users[world["manager"]]
    urls: dict[tuple[str, str], Client] = {}
    for who, user in (("superuser", superuser), ("manager", manager)):
        admin_client = Client()
        admin_client.force_login(user)
        for url in admin_changelist_urls():
            urls[(who, url)] = admin_client
    api_client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=superuser)[0].key}")
    for url in api_list_urls(api_client):
        urls[("API", url)] = api_client
    return urls


def get(client: Client, url: str, world: dict):
    response = client.get(url)
    for parameter in list_parameters(world):  # a list that needs its depot or organisation
        if response.status_code != 400:
            break
        response = client.get(f"{url}?{parameter}")
    return response


def test_no_admin_changelist_or_api_list_asks_more_queries_when_the_city_grows(django_assert_max_num_queries):
    small = generate(SMALL, tag="small")
    clients = pages(small)
    queries_at_small = {}
    for (who, url), client in clients.items():
        get(client, url, small)  # warm per-process caches (content types, schema) before counting
        with CaptureQueriesContext(connection) as queries:
            response = get(client, url, small)
        if who == "manager" and response.status_code == 403:
            continue  # beat's schedules and the user admin are the superuser's
        assert response.status_code == 200, (who, url, response.status_code)
        queries_at_small[(who, url)] = len(queries)

    larger = generate(LARGER, tag="large")
    clients = pages(larger)  # the larger city's manager: twice the depots and vehicles of the small one's
    for (who, url), at_small in queries_at_small.items():
        get(clients[(who, url)], url, larger)
        with django_assert_max_num_queries(at_small, info=f"{who} {url}"):
            assert get(clients[(who, url)], url, larger).status_code == 200

    # every page was asked: the admin's changelists (both ways) and the API's lists
    assert len([key for key in queries_at_small if key[0] == "manager"]) > 25
    assert len(queries_at_small) > 70


def test_the_generator_fills_the_rows_it_reports():
    # The big tables are filled by SQL (INSERT ... SELECT), not by the models: each row is where it should be.
    from charging.models import ChargingPlan, PlannedCharge
    from fleet.models import DailyDutyCycle, TelemetryReading

    counts = generate(SMALL, tag="small")["counts"]

    assert DailyDutyCycle.objects.count() == counts["duty_cycles"] == 2 * 3 * 3
    assert TelemetryReading.objects.count() == counts["readings"] == 2 * 3 * 3 * 2
    assert PlannedCharge.objects.count() == counts["planned_charges"] == 2 * 3 * 3
    for plan in ChargingPlan.objects.prefetch_related("charges__vehicle", "charges__connector__charger"):
        charges = list(plan.charges.all())
        assert {charge.vehicle.home_depot_id for charge in charges} == {plan.depot_id}
        assert {charge.connector.charger.depot_id for charge in charges} == {plan.depot_id}
        assert all(charge.departure_at - charge.arrival_at == dt.timedelta(hours=9) for charge in charges)
