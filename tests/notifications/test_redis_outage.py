"""An alert raised while Redis is away still reaches people, once: the round's messages wait in the task outbox
(``notifications.services.deliveries_queue``) and are sent when Redis is back. Redis here is a private
redis-server holding both the broker and the cache (``private_broker``, ``private_redis_cache``), stopped and
started by the test; the worker's part is played in-process on exactly the messages that Redis holds."""

from __future__ import annotations

import pytest
from django.core import mail

from jobs import outbox
from jobs.models import OutboxTask
from notifications.models import Delivery, NotificationRule, WebhookEndpoint
from notifications.tasks import delivery_send_task, notifications_run_task
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def told(two_depots, receiver):
    """Depot A's manager asks for alerts at once, by e-mail and on the organisation's webhook."""
    manager = two_depots["manager_a"]
    manager.email = "manager_a@example.org"
    manager.save()
    endpoint = WebhookEndpoint.objects.create(
        organization=two_depots["org"], name="ops", url=receiver.url, secret=receiver.secret
    )
    NotificationRule.objects.create(user=manager, by_email=True, webhook=endpoint)
    two_depots["connector"] = f.ConnectorFactory(charger__depot=two_depots["depot_a"])
    return two_depots


def test_an_alert_raised_while_redis_is_away_is_mailed_and_posted_once_when_it_is_back(
    told, receiver, api_client, private_broker, private_redis_cache
):
    api_client.force_authenticate(told["staff_a"])
    private_broker.stop()

    # A connector reported faulted raises a critical alert; then beat's round runs (a worker that held its
    # message when Redis went away).
    reported = api_client.post(
        "/api/v1/depot-events/",
        {
            "depot": told["depot_a"].pk,
            "kind": "connector_faulted",
            "client_event_id": "gw-fault-1",
            "connector": told["connector"].pk,
        },
    )
    alerts = api_client.get("/api/v1/alerts/")
    round_during = notifications_run_task.run()

    assert (reported.status_code, alerts.status_code) == (201, 200), reported.content
    assert [a["kind"] for a in alerts.json()["results"]] == ["charger_fault"]
    assert round_during["messages"] == 2  # one e-mail, one webhook
    assert mail.outbox == [] and receiver.requests == []
    waiting = OutboxTask.objects.filter(task_name=delivery_send_task.name, sent_at__isnull=True)
    assert waiting.count() == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}

    private_broker.start()
    drained = outbox.outbox_dispatch()  # what beat's drain does every 30 s
    sent = private_broker.run_queued(delivery_send_task.name)

    assert drained.sent == 3 and drained.pending == 0  # the two messages and the event's re-plan
    assert sent == ["sent", "sent"]
    assert [m.to for m in mail.outbox] == [["manager_a@example.org"]]
    assert "faulted" in mail.outbox[0].subject
    [posted] = receiver.requests
    assert posted.signature_valid and [a["kind"] for a in posted.body["alerts"]] == ["charger_fault"]

    # A sender killed between the send and its mark sends the rows again, with the same task ids: the task
    # finds each message sent. And the next round has nothing new to say.
    task_ids = {
        outbox.task_id_for(row.dedupe_key) for row in OutboxTask.objects.filter(task_name=delivery_send_task.name)
    }
    OutboxTask.objects.filter(task_name=delivery_send_task.name).update(sent_at=None)
    again = outbox.outbox_dispatch()
    assert again.sent == 2 and set(private_broker.queued_task_ids()) >= task_ids
    assert private_broker.run_queued(delivery_send_task.name) == ["not mine", "not mine"]
    assert notifications_run_task.run()["messages"] == 0

    assert len(mail.outbox) == 1 and len(receiver.requests) == 1
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}


@pytest.fixture
def hooked(two_depots, receiver):
    """Depot A's manager is told at once on the organisation's webhook only."""
    endpoint = WebhookEndpoint.objects.create(
        organization=two_depots["org"], name="ops", url=receiver.url, secret=receiver.secret
    )
    NotificationRule.objects.create(user=two_depots["manager_a"], by_email=False, webhook=endpoint)
    two_depots["connector"] = f.ConnectorFactory(charger__depot=two_depots["depot_a"])
    return two_depots


def test_a_webhook_retry_due_while_redis_is_away_is_posted_when_it_is_back(
    hooked, receiver, api_client, private_broker
):
    # Redis up: an alert's message is queued. A worker takes it; then Redis goes away.
    api_client.force_authenticate(hooked["staff_a"])
    event = {"depot": hooked["depot_a"].pk, "kind": "connector_faulted", "client_event_id": "gw-fault-2"}
    assert api_client.post("/api/v1/depot-events/", {**event, "connector": hooked["connector"].pk}).status_code == 201
    assert notifications_run_task.run()["messages"] == 1
    [taken] = private_broker.take(delivery_send_task.name)
    private_broker.stop()

    # The receiver answers 500: the worker's attempt fails and its retry is due while Redis is away.
    receiver.answers = [500]
    private_broker.run_as_worker(taken)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("retrying", 1)

    # Redis back: beat's drain sends what waited, a worker runs it, and the message lands (once).
    private_broker.start()
    outbox.outbox_dispatch()
    results = private_broker.run_queued(delivery_send_task.name)

    assert [r.status_answered for r in receiver.requests] == [500, 200]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2), results
    assert not OutboxTask.objects.filter(sent_at__isnull=True).exists()
