"""The night's cost after a re-plan: what was delivered before it plus what remains, each labelled.

A re-plan solves only the rest of the night, so its ``total_cost`` is the remaining cost (issue 19: "tonight's
cost" fell from 15,483 to 3,900 MXN after a re-plan). With nothing changed, re-planning at 04:30 must leave the
night's cost where the first plan put it.
"""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from charging.models import ChargingPlan
from charging.planning import plan_depot_night
from charging.selectors import night_costs
from tests import factories as f
from tests.charging.test_planning import NEXT_DAY, NIGHT, _bus_with_blocks, _local
from tests.charging.test_planning import depot as depot  # noqa: F401  (the fixture)
from tests.charging.test_planning import gdmth_depot as gdmth_depot  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db


def _replan_at_half_past_four(depot):
    _bus_with_blocks(depot)
    _bus_with_blocks(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    second = plan_depot_night(
        depot=depot, service_night=NIGHT, now=_local(NEXT_DAY, 4, 30), trigger=ChargingPlan.Trigger.EVENT
    )
    return first, second


def test_a_plan_of_the_whole_night_costs_what_it_says(depot):
    _bus_with_blocks(depot)
    plan = plan_depot_night(depot=depot, service_night=NIGHT)
    cost = night_costs([plan])[plan.pk]
    assert (cost.delivered, cost.remaining, cost.night) == (Decimal("0.00"), plan.total_cost, plan.total_cost)
    assert not cost.replanned and cost.replanned_at is None


@pytest.mark.parametrize("tariff", ["punta capacity charge", "GDMTH: capacity and distribution charges"])
def test_after_a_replan_the_night_costs_what_was_delivered_plus_what_remains(request, tariff):
    depot = request.getfixturevalue("depot" if tariff.startswith("punta") else "gdmth_depot")
    first, second = _replan_at_half_past_four(depot)
    cost = night_costs([first, second])

    assert second.total_cost < first.total_cost  # what the page showed as "tonight's cost"
    assert cost[second.pk].remaining == second.total_cost
    assert cost[second.pk].delivered > 0
    assert cost[second.pk].replanned_at == _local(NEXT_DAY, 4, 30)
    # Nothing changed at 04:30: the night costs what the first plan said (the LP may share the rest otherwise).
    assert float(cost[second.pk].night) == pytest.approx(float(first.total_cost), rel=0.01, abs=1.0)
    assert cost[second.pk].night_kwh == pytest.approx(first.energy_kwh, rel=0.01)
    # The superseded plan itself still reads as a plan of the whole night.
    assert cost[first.pk].night == first.total_cost


def test_the_delivered_part_is_priced_slot_by_slot_from_the_superseded_plan(depot):
    first, second = _replan_at_half_past_four(depot)
    slot_h = first.slot_minutes / 60
    ran = round((second.horizon_start - first.horizon_start) / dt.timedelta(minutes=first.slot_minutes))
    prices = first.instance["energy_price_mxn_per_kwh"]
    expected = sum(sum(c.power_kw[s] for c in first.charges.all()) * prices[s] * slot_h for s in range(ran))
    assert float(night_costs([second])[second.pk].delivered) == pytest.approx(expected, abs=0.01)


def test_the_plan_page_the_api_and_the_dashboard_show_both_labelled(client, depot):
    first, second = _replan_at_half_past_four(depot)
    cost = night_costs([second])[second.pk]
    manager = f.manager_of(depot, is_staff=True)
    client.force_login(manager)

    page = client.get(
        reverse("admin:charging_chargingplan_overview", args=[second.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert f'data-night="{cost.night}"' in page and f'data-remaining="{cost.remaining}"' in page
    assert "Night&#x27;s cost" in page or "Night's cost" in page
    assert "delivered before the re-plan at" in page and "remaining" in page

    details = client.get(reverse("admin:charging_chargingplan_change", args=[second.pk])).content.decode()
    assert f'data-night="{cost.night}"' in details

    body = client.get(f"/api/v1/charging-plans/{second.pk}/").json()
    assert body["night_cost"] == {
        "delivered": str(cost.delivered),
        "remaining": str(cost.remaining),
        "night": str(cost.night),
        "replanned_at": body["night_cost"]["replanned_at"],
        "delivered_source": "planned",  # no charging sessions: the superseded plan's slots
        "delivered_kwh": cost.delivered_kwh,
        "metered_kwh": 0.0,
        "remaining_kwh": cost.remaining_kwh,
        "night_kwh": cost.night_kwh,
    }
    assert body["total_cost"] == str(second.total_cost)

    with time_machine.travel(_local(NEXT_DAY, 4, 45), tick=False):  # the dashboard shows the night in progress
        response = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en")
    card = response.context["depot_cards"][0]
    assert card.plan == second and card.night_cost == cost
    dashboard = response.content.decode()
    assert f"{cost.night:,.0f} MXN" in dashboard
    assert "remaining after the re-plan" in dashboard


def test_the_plan_pages_energy_and_the_plan_lists_columns_show_the_night_and_the_remaining_part(client, depot):
    first, second = _replan_at_half_past_four(depot)
    cost = night_costs([second])[second.pk]
    assert cost.night_kwh == pytest.approx(first.energy_kwh, rel=0.01) and cost.remaining_kwh < cost.night_kwh
    manager = f.manager_of(depot, is_staff=True)
    client.force_login(manager)

    page = client.get(
        reverse("admin:charging_chargingplan_overview", args=[second.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert f'data-night-kwh="{cost.night_kwh}"' in page and f'data-remaining-kwh="{cost.remaining_kwh}"' in page
    assert "Night&#x27;s energy" in page or "Night's energy" in page
    assert f"{cost.remaining_kwh:,.0f} kWh remaining" in page

    listing = client.get(reverse("admin:charging_chargingplan_changelist"), HTTP_ACCEPT_LANGUAGE="en")
    rows = {plan.pk: plan for plan in listing.context["cl"].result_list}
    assert rows[second.pk].night_cost == cost
    html = listing.content.decode()
    assert f'{cost.night_kwh:,.0f}<br><span class="evf-night-cost-split">{cost.remaining_kwh:,.0f} remaining' in html
    assert f'{cost.night:,.2f}<br><span class="evf-night-cost-split">{cost.remaining:,.2f} remaining' in html
    # The superseded version planned the whole night: its own figures, with no remaining part.
    assert f"{first.total_cost:,.2f}</td>" in html


def test_the_plan_list_costs_the_same_queries_for_one_re_planned_night_or_many(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.charging.test_planning import depot as make_depot

    manager = f.UserFactory(is_superuser=True, is_staff=True)
    client.force_login(manager)

    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("admin:charging_chargingplan_changelist")).status_code == 200
        return len(queries)

    _replan_at_half_past_four(make_depot.__wrapped__())
    one_night = list_queries()
    for _ in range(3):
        _replan_at_half_past_four(make_depot.__wrapped__())
    assert list_queries() == one_night
