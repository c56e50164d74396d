"""Re-plan requests: a burst of events becomes one re-plan; the task plans from now and supersedes."""

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
