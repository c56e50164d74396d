"""How PostgreSQL runs the two battery reads that grew with the city (bench/city_scale.py), read from EXPLAIN
ANALYZE on factories' rows: what matters is how often a part of the plan runs, which a query count cannot see.

- The pack scoping rule (``BatteryPack.scope_q``, behind every manager's pack, observation and forecast list):
  each of its subqueries runs once, not once per pack. The correlated EXISTS it had ran once per pack under its
  OR (5,000 times for a city manager, 250 ms with JIT).
- The dashboard's "last forecast" per depot (``last_forecast_at_by_depot``): one forecast row read per installed
  pack, however many forecasts each pack has had (the maximum over every forecast read the whole history).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batteries.models import BatteryPack
from batteries.selectors import last_forecast_at_by_depot
from fleet.scoping import restrict
from tests import factories as f

pytestmark = pytest.mark.django_db

PACKS = 12


def plan_nodes(queryset_sql: tuple[str, tuple]) -> list[dict]:
    sql, params = queryset_sql
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        [[document]] = cursor.fetchall()
    document = json.loads(document) if isinstance(document, str) else document
    nodes, todo = [], [document[0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    return nodes


@pytest.fixture
def packed_depot(postgres, two_depots):
    """Depot A with ``PACKS`` buses, each with its pack and a history of forecasts; a spare pack."""
    w = two_depots
    for _ in range(PACKS):
        pack = f.BatteryPackFactory(organization=w["org"])
        f.PackInstallationFactory(pack=pack, vehicle=f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"]))
        for weeks in (3, 2, 1, 0):  # made oldest first, as the nights make them
            f.SoHForecastFactory(pack=pack, as_of=timezone.localdate() - dt.timedelta(weeks=weeks))
    f.BatteryPackFactory(organization=w["org"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return w


def test_the_pack_rule_runs_each_subquery_once_not_once_per_pack(packed_depot):
    visible = restrict(BatteryPack.objects.all(), packed_depot["manager_a"])
    assert visible.count() == PACKS + 1  # the depot's packs and the spare
    sql, params = visible.query.sql_with_params()

    # No subquery of the rule refers to the pack row (a correlated EXISTS under the OR is what PostgreSQL ran once
    # per pack on the city). What the plan does with these rows is the planner's choice: at this size it hashed
    # even the old EXISTS, so the loops below guard the plan, the SQL's shape guards the rule.
    assert "EXISTS" not in sql.upper()
    subplans = [n for n in plan_nodes((sql, params)) if n.get("Parent Relationship") == "SubPlan"]
    loops = {n.get("Subplan Name"): n["Actual Loops"] for n in subplans}
    assert subplans and max(loops.values()) <= 1, loops  # 0: a subplan the OR did not need


def test_the_last_forecast_per_depot_reads_one_forecast_per_pack_whatever_the_history(packed_depot):
    depot = packed_depot["depot_a"]
    packs = BatteryPack.objects.filter(installations__vehicle__home_depot=depot)
    newest_of_each = [pack.forecasts.order_by("-as_of").first().created_at for pack in packs]

    with CaptureQueriesContext(connection) as captured:
        assert last_forecast_at_by_depot([depot.pk]) == {depot.pk: max(newest_of_each)}

    [query] = captured.captured_queries  # the SQL as sent, its values in place
    read = sum(
        node["Actual Rows"] * node["Actual Loops"]
        for node in plan_nodes((query["sql"], ()))
        if node.get("Relation Name") == "batteries_sohforecast"
    )
    assert read <= PACKS, f"{read} forecast rows read for {PACKS} packs of 4 forecasts each"
