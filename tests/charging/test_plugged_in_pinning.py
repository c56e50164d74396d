"""A bus staff report plugged in stays on that connector in the re-plan; plug-out, a fault, an unsuitable connector
or another bus on the same plug set it free again. Connector faults and superseded plans leave an audit trail.

The depot has a fast (150 kW) and a slow (50 kW) DC connector and an AC wallbox: a free bus is planned on the fast
one, so a plan that puts it on the slow one shows the reported plug-in was honoured.
"""

import datetime as dt
import logging

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from charging.events import depot_event_record
from charging.models import ChargingPlan, Connector
from charging.planning import plan_depot_night
from charging.selectors import night_event_inputs
from charging.tasks import replan_depot_task
from fleet.services import block_assign
from tests import factories as f

pytestmark = pytest.mark.django_db

HERMOSILLO = dt.timezone(dt.timedelta(hours=-7))
NIGHT = dt.date(2026, 3, 2)  # a past night: a re-plan "from now" on the real clock plans it whole
NEXT_DAY = NIGHT + dt.timedelta(days=1)


def _local(day, hour, minute=0):
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=HERMOSILLO)


@pytest.fixture
def depot(two_depots):
    depot = two_depots["depot_a"]
    depot.fast = f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    depot.slow = f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=50), connector_id=1, max_kw=50)
    ac_charger = f.ChargerFactory(depot=depot, kind="ac", max_kw=22, name="AC wallbox")
    depot.wallbox = f.ConnectorFactory(charger=ac_charger, connector_id=1, max_kw=22, standard="type2")
    depot.staff = two_depots["staff_a"]
    return depot


def _bus(depot, vehicle=None):
    """A bus back at 21:00 from a 200 km block, out again at 05:30 for another."""
    bus = vehicle or f.VehicleFactory(organization=depot.organization, home_depot=depot)
    for day, departs, returns in ((NIGHT, dt.time(13), dt.time(21)), (NEXT_DAY, dt.time(5, 30), dt.time(12))):
        block = f.BlockFactory(depot=depot, service_date=day, departs_at=departs, returns_at=returns, distance_km=200)
        block_assign(block=block, vehicle=bus, service_date=day)
    return bus


def _report(depot, kind, at, *, vehicle=None, connector=None):
    event, created = depot_event_record(
        depot=depot,
        kind=kind,
        client_event_id=f"{kind}-{vehicle.pk if vehicle else ''}-{at:%H%M}",
        occurred_at=at,
        reported_by=depot.staff,
        vehicle=vehicle,
        connector=connector,
    )
    assert created
    return event


def _replan(depot, now):
    """What the re-plan task does after events, with ``now`` chosen by the test."""
    return plan_depot_night(
        depot=depot,
        service_night=NIGHT,
        trigger=ChargingPlan.Trigger.EVENT,
        now=now,
        **night_event_inputs(depot, NIGHT),
    )


def _fixed_connector(plan, vehicle):
    (entry,) = [v for v in plan.instance["vehicles"] if v["id"] == str(vehicle.pk)]
    return entry.get("fixed_connector_id")


def _key(connector):
    return f"{connector.charger.ocpp_charge_point_id}#{connector.connector_id}"


@pytest.mark.parametrize("now", [_local(NIGHT, 22, 15), None], ids=["replan-from-now", "full-plan"])
def test_a_bus_plugged_into_another_connector_than_planned_is_planned_there(depot, now):
    bus = _bus(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    assert first.charges.get(vehicle=bus).connector == depot.fast

    _report(depot, "vehicle_plugged_in", _local(NIGHT, 22), vehicle=bus, connector=depot.slow)
    second = _replan(depot, now)

    charge = second.charges.get(vehicle=bus)
    assert charge.connector == depot.slow
    assert _fixed_connector(second, bus) == _key(depot.slow)
    assert charge.departure_soc_pct >= charge.required_soc_pct - 0.1  # 50 kW for 7 h is still enough


def test_plugging_out_sets_the_bus_free_again(depot):
    bus = _bus(depot)
    plan_depot_night(depot=depot, service_night=NIGHT)
    _report(depot, "vehicle_plugged_in", _local(NIGHT, 22), vehicle=bus, connector=depot.slow)
    assert _replan(depot, _local(NIGHT, 22, 15)).charges.get(vehicle=bus).connector == depot.slow

    _report(depot, "vehicle_plugged_out", _local(NIGHT, 22, 30), vehicle=bus)
    after = _replan(depot, _local(NIGHT, 22, 45))

    assert after.charges.get(vehicle=bus).connector == depot.fast
    assert _fixed_connector(after, bus) is None


def test_a_fault_on_the_reported_connector_sets_the_bus_free(depot):
    bus = _bus(depot)
    plan_depot_night(depot=depot, service_night=NIGHT)
    _report(depot, "vehicle_plugged_in", _local(NIGHT, 22), vehicle=bus, connector=depot.slow)

    _report(depot, "connector_faulted", _local(NIGHT, 22, 30), connector=depot.slow)
    after = _replan(depot, _local(NIGHT, 22, 45))

    charge = after.charges.get(vehicle=bus)
    assert charge.connector == depot.fast
    assert charge.shortfall_kwh == pytest.approx(0, abs=0.05)


def test_a_bus_reported_on_a_connector_that_does_not_suit_it_is_planned_free_with_a_warning(depot, caplog):
    bus = _bus(depot)  # DC only
    plan_depot_night(depot=depot, service_night=NIGHT)
    _report(depot, "vehicle_plugged_in", _local(NIGHT, 22), vehicle=bus, connector=depot.wallbox)

    with caplog.at_level(logging.WARNING, logger="charging.planning"):
        after = _replan(depot, _local(NIGHT, 22, 15))

    assert after.charges.get(vehicle=bus).connector == depot.fast
    assert _fixed_connector(after, bus) is None
    assert any("does not suit" in r.getMessage() and str(bus.pk) in r.getMessage() for r in caplog.records)


def test_two_buses_reported_on_one_connector_the_latest_plug_in_wins(depot):
    first_bus, second_bus = _bus(depot), _bus(depot)
    plan_depot_night(depot=depot, service_night=NIGHT)
    _report(depot, "vehicle_plugged_in", _local(NIGHT, 22), vehicle=first_bus, connector=depot.slow)
    assert _replan(depot, _local(NIGHT, 22, 15)).charges.get(vehicle=first_bus).connector == depot.slow

    _report(depot, "vehicle_plugged_in", _local(NIGHT, 22, 30), vehicle=second_bus, connector=depot.slow)
    after = _replan(depot, _local(NIGHT, 22, 45))

    assert after.charges.get(vehicle=second_bus).connector == depot.slow
    assert _fixed_connector(after, first_bus) is None
    assert after.charges.get(vehicle=first_bus).connector == depot.fast
    assert after.shortfall_kwh == pytest.approx(0, abs=0.05)


def test_a_bus_reported_on_the_plug_the_plan_gave_another_bus_takes_it_over(depot):
    planned_bus, other_bus = _bus(depot), _bus(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    planned = first.charges.get(vehicle=planned_bus)
    now = planned.plug_in_at + dt.timedelta(minutes=15)  # the plan has planned_bus on its plug by now
    assert now < planned.plug_out_at

    _report(depot, "vehicle_plugged_in", now - dt.timedelta(minutes=5), vehicle=other_bus, connector=planned.connector)
    after = _replan(depot, now)

    assert after.charges.get(vehicle=other_bus).connector == planned.connector
    assert _fixed_connector(after, planned_bus) is None  # it was unplugged to make room: free to move
    assert after.charges.get(vehicle=planned_bus).connector not in (None, planned.connector)


def test_staff_report_a_plug_in_through_the_api_and_the_vehicles_plan_follows(
    depot, client, django_capture_on_commit_callbacks
):
    bus = _bus(depot)
    plan_depot_night(depot=depot, service_night=NIGHT)
    headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=depot.staff).key}"}

    def vehicle_plan():
        response = client.get(f"/api/v1/vehicle-plans/{bus.pk}/", {"service_night": NIGHT.isoformat()}, **headers)
        assert response.status_code == 200, response.content
        return response.json()

    before = vehicle_plan()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/api/v1/depot-events/",
            {
                "depot": depot.pk,
                "kind": "vehicle_plugged_in",
                "client_event_id": "gw-7-0042",
                "vehicle": bus.pk,
                "connector": depot.slow.pk,
                "occurred_at": _local(NIGHT, 22).isoformat(),
            },
            content_type="application/json",
            **headers,
        )
    assert response.status_code == 201, response.content
    assert len(callbacks) == 1  # the re-plan request, sent after commit
    replan_depot_task.run(depot.pk, NIGHT.isoformat(), "vehicle_plugged_in (gw-7-0042)")  # the worker's side

    after = vehicle_plan()
    assert (before["connector"], after["connector"]) == (depot.fast.pk, depot.slow.pk)
    assert after["connector_label"] == f"{depot.slow.charger.name} #1"
    assert after["id"] != before["id"]  # a charge of the new plan version


def test_a_connector_fault_event_leaves_an_audit_entry_with_its_reporter(depot):
    _report(depot, "connector_faulted", _local(NIGHT, 22), connector=depot.slow)

    entry = Connector.history.filter(id=depot.slow.pk).latest("history_date")
    assert (entry.history_type, entry.status, entry.prev_record.status) == ("~", "faulted", "available")
    assert entry.history_user == depot.staff
    assert "connector_faulted" in entry.history_change_reason

    _report(depot, "connector_restored", _local(NIGHT, 23), connector=depot.slow)
    assert Connector.history.filter(id=depot.slow.pk).latest("history_date").status == "available"


def test_a_replan_records_the_old_plan_as_superseded(depot):
    _bus(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)

    second = plan_depot_night(depot=depot, service_night=NIGHT, trigger=ChargingPlan.Trigger.MANUAL)

    entry = ChargingPlan.history.filter(id=first.pk).latest("history_date")
    assert (entry.history_type, entry.status, entry.prev_record.status) == ("~", "superseded", "active")
    assert entry.history_change_reason == f"superseded by version {second.version}"
    assert ChargingPlan.objects.filter(depot=depot, service_night=NIGHT, status="active").get() == second


def test_a_replan_in_the_admin_records_the_manager_who_superseded_the_plan(depot, two_depots, client):
    _bus(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    client.force_login(two_depots["manager_a"])

    response = client.post(reverse("admin:charging_chargingplan_replan", args=[first.pk]))

    assert response.status_code == 302
    entry = ChargingPlan.history.filter(id=first.pk).latest("history_date")
    assert (entry.status, entry.history_user) == ("superseded", two_depots["manager_a"])
