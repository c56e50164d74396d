"""An NGSI-LD notification made while Redis is away reaches its subscriber once Redis is back, once: its delivery
waits in the task outbox (``citydata.services.subscription_notify``). Redis here is a private redis-server
holding both the broker and the cache (``private_broker``, ``private_redis_cache``), stopped and started by the
test; the worker's part is played in-process on exactly the messages that Redis holds."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from citydata.models import EntityType, NgsiNotification, NgsiSubscription
from citydata.tasks import deliver_notification, notify_ngsi_subscriptions
from fleet.telemetry.keys import vehicle_key_issue
from jobs import outbox
from jobs.models import OutboxTask
from tests.citydata.conftest import token_client, valid_signature
from tests.fleet.test_telemetry_support import BATCH_URL, URLCONF, readings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLCONF)]


def test_a_subscription_notified_while_redis_is_away_is_delivered_once_when_it_is_back(
    two_depots, receiver, api_client, private_broker, private_redis_cache
):
    city = receiver([])
    subscription = NgsiSubscription.objects.create(
        organization=two_depots["org"], entity_type=EntityType.VEHICLE, endpoint=city.url
    )
    _key, bus_key = vehicle_key_issue(vehicle=two_depots["vehicle_a"])
    private_broker.stop()

    # The bus reports in (its live state changes), the city reads the entities, and beat's round notifies the
    # subscription (a worker that held its message when Redis went away).
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=5)
    uploaded = api_client.generic(
        "POST",
        BATCH_URL,
        json.dumps({"readings": readings(start, 5, step_s=60, soc_pct=58.0)}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {bus_key}",
    )
    api_client.credentials()
    read = token_client(api_client, two_depots["manager_a"]).get("/ngsi-ld/v1/entities", {"type": "Vehicle"})
    made = notify_ngsi_subscriptions.run()

    assert (uploaded.status_code, read.status_code) == (200, 200), uploaded.content
    assert made == 1
    notification = NgsiNotification.objects.get()
    assert notification.status == NgsiNotification.Status.PENDING and city.received == []
    [row] = OutboxTask.objects.filter(task_name=deliver_notification.name)
    assert row.sent_at is None and row.dedupe_key == f"citydata.notification:notification={notification.pk}"

    private_broker.start()
    drained = outbox.outbox_dispatch()  # what beat's drain does every 30 s
    delivered = private_broker.run_queued(deliver_notification.name)

    assert drained.pending == 0 and delivered == ["delivered"]
    [message] = city.received
    assert valid_signature(message, subscription.signing_secret)
    assert json.loads(message["body"])["subscriptionId"] == subscription.urn

    # A sender killed between the send and its mark sends the row again, with the same task id: the task finds
    # the notification delivered and does not post it twice.
    OutboxTask.objects.filter(pk=row.pk).update(sent_at=None)
    assert outbox.outbox_dispatch().sent == 1
    assert private_broker.queued_task_ids().count(outbox.task_id_for(row.dedupe_key)) == 1
    assert private_broker.run_queued(deliver_notification.name) == ["delivered"]

    assert len(city.received) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NgsiNotification.Status.DELIVERED, 1)
