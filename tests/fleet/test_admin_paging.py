"""Admin changelists over tables that grow every night (fleet/admin_paging.py): what they ask the database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from charging.models import Alert, DepotEvent
from fleet import admin_paging
from fleet.admin_paging import EstimatedCountPaginator, estimated_rows
from jobs.models import JobRun
from jobs.selectors import job_names
from tests import factories as f

pytestmark = pytest.mark.django_db


def analyze(model) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{model._meta.db_table}"')


def test_an_unfiltered_list_of_a_large_table_is_counted_by_the_planners_estimate(monkeypatch):
    f.AlertFactory.create_batch(5)
    analyze(Alert)
    monkeypatch.setattr(admin_paging, "ESTIMATE_COUNT_ABOVE", 3)
    # The estimate is what ANALYZE saw; make it visibly different from the exact count.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pg_class SET reltuples = 12345 WHERE oid = %s::regclass", [Alert._meta.db_table])

    assert estimated_rows(Alert) == 12345
    assert EstimatedCountPaginator(Alert.objects.all(), 50).count == 12345
    # Filtered (a manager's depots, a filter, a search): counted exactly.
    depot = Alert.objects.first().depot
    assert EstimatedCountPaginator(Alert.objects.filter(depot=depot), 50).count == 1


def test_a_small_table_is_counted_exactly():
    f.AlertFactory.create_batch(3)
    analyze(Alert)

    assert EstimatedCountPaginator(Alert.objects.all(), 50).count == 3


def test_job_names_are_the_distinct_names_sorted():
    for name in ("charging.plan_depot_night", "batteries.forecast_depot_packs", "charging.plan_depot_night"):
        JobRun.objects.create(job=name, key=f"{name}:{JobRun.objects.count()}")

    assert job_names() == ["batteries.forecast_depot_packs", "charging.plan_depot_night"]


def test_the_depot_filter_offers_the_managers_depots_without_reading_the_events(client, two_depots):
    w = two_depots
    depot_c = f.DepotFactory(organization=w["org"])  # a second depot of hers, without events: offered all the same
    f.MembershipFactory(user=w["manager_a"], depot=depot_c, role="staff")
    f.DepotEventFactory(depot=w["depot_a"])
    f.DepotEventFactory(depot=w["depot_b"])
    client.force_login(w["manager_a"])

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("admin:charging_depotevent_changelist")).content.decode()

    assert f"depot__id__exact={w['depot_a'].pk}" in page
    assert f"depot__id__exact={depot_c.pk}" in page
    assert f"depot__id__exact={w['depot_b'].pk}" not in page  # another depot's: not offered
    counts = [
        q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"] and "charging_depotevent" in q["sql"]
    ]
    assert len(counts) == 1  # the page's count only: no "N total", no DISTINCT depot over the events
    assert not [q for q in queries.captured_queries if "DISTINCT" in q["sql"] and "charging_depotevent" in q["sql"]]


@pytest.mark.parametrize(
    "changelist",
    [
        "admin:charging_chargingplan_changelist",
        "admin:charging_chargingsession_changelist",
        "admin:jobs_jobrun_changelist",
        "admin:batteries_healthobservation_changelist",
        "admin:fleet_blockassignment_changelist",
    ],
)
def test_growing_tables_are_listed_without_a_date_hierarchy_reading_the_whole_table(admin_client, changelist):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse(changelist))

    assert response.status_code == 200
    reads = " ".join(q["sql"] for q in queries.captured_queries)
    assert "DATE_TRUNC" not in reads and 'MIN("' not in reads


def test_events_are_listed_newest_first(admin_client):
    depot = f.DepotFactory()
    older = f.DepotEventFactory(depot=depot, occurred_at="2026-11-01T21:00:00Z")
    newer = f.DepotEventFactory(depot=depot, occurred_at="2026-11-02T21:00:00Z")

    page = admin_client.get(reverse("admin:charging_depotevent_changelist")).content.decode()

    assert page.index(f"/{newer.pk}/change/") < page.index(f"/{older.pk}/change/")
    assert DepotEvent.objects.count() == 2
