"""The task outbox (jobs/outbox.py): a task asked for in a transaction is a row of it, sent after the commit, kept
while the broker is away and sent when it is back, once. On a real Redis broker of the test's own (a private
redis-server, stopped and started by the test: the ``private_broker`` fixture); the shared Redis is never
stopped."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.db import transaction

from charging.events import depot_event_record
from charging.models import DepotEvent
from console.management.commands.healthcheck import OUTBOX_STALE_S, check_outbox
from jobs import outbox
from jobs.models import OutboxTask
from jobs.tasks import outbox_send_task
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def depot():
    depot = f.DepotFactory()
    f.VehicleFactory(organization=depot.organization, home_depot=depot)
    return depot


def arrival(depot, client_event_id: str):
    return depot_event_record(
        depot=depot,
        kind=DepotEvent.Kind.VEHICLE_ARRIVED,
        client_event_id=client_event_id,
        vehicle=depot.vehicles.first(),
        soc_pct=45.0,
    )


def test_an_event_writes_its_replan_in_its_transaction_and_it_is_sent_after_the_commit(private_broker, depot):
    event, created = arrival(depot, "gw-1")

    row = OutboxTask.objects.get()
    assert created and row.task_name == "charging.tasks.replan_depot_task"
    assert row.dedupe_key == f"charging.replan:depot={depot.pk}:event={event.pk}"
    assert row.sent_at is not None and row.attempts == 1
    assert private_broker.queued_task_ids() == [outbox.task_id_for(row.dedupe_key)]


def test_a_rolled_back_transaction_leaves_no_task(private_broker, depot):
    with pytest.raises(RuntimeError), transaction.atomic():
        arrival(depot, "gw-1")
        raise RuntimeError("the request failed after the event")

    assert not OutboxTask.objects.exists()
    assert private_broker.queued_task_ids() == []


def test_with_the_broker_away_events_are_recorded_and_their_tasks_sent_once_when_it_is_back(private_broker, depot):
    other = f.DepotFactory()
    f.VehicleFactory(organization=other.organization, home_depot=other)
    private_broker.stop()

    started = time.monotonic()
    arrival(depot, "gw-1")
    arrival(other, "gw-2")
    recorded_s = time.monotonic() - started
    pending = list(OutboxTask.objects.filter(sent_at__isnull=True).order_by("created_at"))
    assert len(pending) == 2 and all(row.attempts <= 1 for row in pending)
    assert "OperationalError" in pending[0].last_error or "Connection" in pending[0].last_error
    assert recorded_s < 5  # the broker's refusal is quick, and the second commit does not wait for it again
    assert check_outbox()[0].status == "ok"  # young rows: not an alarm yet

    private_broker.start()
    first = outbox.outbox_dispatch()
    again = outbox.outbox_dispatch()

    assert (first.sent, first.pending, again.sent) == (2, 0, 0)
    assert private_broker.queued_task_ids() == [outbox.task_id_for(row.dedupe_key) for row in pending]
    assert not OutboxTask.objects.filter(sent_at__isnull=True).exists()


def test_the_same_request_recorded_twice_is_one_task(private_broker, depot):
    arrival(depot, "gw-1")
    event, created = arrival(depot, "gw-1")  # the client's re-send

    assert not created
    assert OutboxTask.objects.count() == 1
    assert len(private_broker.queued_task_ids()) == 1


def test_pending_rows_are_sent_by_the_drain_task_and_the_command_and_an_old_one_fails_the_healthcheck(
    private_broker, depot
):
    private_broker.stop()
    arrival(depot, "gw-1")
    OutboxTask.objects.update(created_at=OutboxTask.objects.get().created_at.replace(year=2020))
    stale = check_outbox()[0]
    assert stale.status == "fail" and "1 task(s) not sent" in stale.detail and OUTBOX_STALE_S < 10**9

    with pytest.raises(Exception, match="still unavailable"):
        call_command("outbox_send")
    private_broker.start()
    assert outbox_send_task.run().startswith("outbox: 1 sent, 0 pending")

    assert len(private_broker.queued_task_ids()) == 1
    assert check_outbox()[0].status == "ok"
