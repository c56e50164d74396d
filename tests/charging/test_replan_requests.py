"""Re-plan requests: a burst of events becomes one re-plan; the task plans from now and supersedes."""

import dataclasses
import datetime as dt

import pytest

from charging.models import ChargingPlan
from charging.tasks import replan_depot_task, request_replan
from tests import factories as f

pytestmark = pytest.mark.django_db

NIGHT = dt.date(2026, 11, 23)


def test_a_burst_of_twenty_events_schedules_one_replan(django_capture_on_commit_callbacks):
    depot = f.DepotFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        scheduled = [request_replan(depot=depot, service_night=NIGHT, reason=f"event {i}") for i in range(20)]

    assert scheduled.count(True) == 1
    assert len(callbacks) == 1


def test_once_the_replan_runs_the_next_event_schedules_another(django_capture_on_commit_callbacks):
    depot = f.DepotFactory()
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot))
    with django_capture_on_commit_callbacks(execute=False):
        assert request_replan(depot=depot, service_night=NIGHT, reason="arrival")

    replan_depot_task.run(depot.pk, NIGHT.isoformat(), "arrival")  # the worker's side, in-process

    plan = ChargingPlan.objects.get(depot=depot)
    assert (plan.trigger, plan.trigger_detail) == ("event", "arrival")
    with django_capture_on_commit_callbacks(execute=False):
        assert request_replan(depot=depot, service_night=NIGHT, reason="connector faulted")


def test_task_for_a_deleted_depot_exits_quietly():
    assert replan_depot_task.run(987654, NIGHT.isoformat(), "gone") is None


def test_a_burst_of_plug_ins_recorded_together_is_one_insert_and_one_replan_per_depot(
    django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    from charging.events import EventReport, depot_events_record_many
    from charging.models import DepotEvent
    from jobs.models import OutboxTask

    depots = [f.DepotFactory(), f.DepotFactory()]
    reports = []
    for depot in depots:
        for i in range(10):
            connector = f.ConnectorFactory(charger=f.ChargerFactory(depot=depot), connector_id=1)
            bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
            reports.append(
                EventReport(
                    depot=depot,
                    kind=DepotEvent.Kind.VEHICLE_PLUGGED_IN,
                    client_event_id=f"plug-{depot.pk}-{i}",
                    occurred_at=dt.datetime(2026, 11, 24, 2, tzinfo=dt.UTC),
                    vehicle=bus,
                    connector=connector,
                )
            )
    stranger = f.VehicleFactory()  # another depot's bus: refused alone, the others recorded
    reports.append(dataclasses.replace(reports[0], client_event_id="stranger", vehicle=stranger))

    with django_capture_on_commit_callbacks(execute=False), django_assert_max_num_queries(20):
        assert depot_events_record_many(reports=reports) == 20

    assert DepotEvent.objects.filter(kind="vehicle_plugged_in").count() == 20
    assert not DepotEvent.objects.filter(client_event_id="stranger").exists()
    assert OutboxTask.objects.count() == 2  # one re-plan request per depot night
    with django_capture_on_commit_callbacks(execute=False):
        assert depot_events_record_many(reports=reports) == 0  # re-sent: nothing twice
    assert DepotEvent.objects.count() == 20
