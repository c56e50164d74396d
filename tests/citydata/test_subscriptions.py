"""NGSI-LD subscriptions: a loopback HTTP receiver (``receiver`` in conftest) gets signed notifications, and a 500
is retried."""

from __future__ import annotations

import json

import pytest

from citydata.models import EntityType, NgsiNotification, NgsiSubscription
from citydata.services import subscription_notify
from citydata.tasks import deliver_notification
from tests.citydata.conftest import valid_signature

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def retries_in_place():
    """Eager retries re-run in place only when eager errors do not propagate (else the first Retry escapes)."""
    conf = deliver_notification.app.conf
    before = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = before


def test_a_notification_is_signed_and_retried_after_a_500(receiver, two_depots, recorded):
    city = receiver([500, 200])
    subscription = NgsiSubscription.objects.create(
        organization=two_depots["org"], entity_type=EntityType.VEHICLE, endpoint=city.url
    )
    notification = subscription_notify(subscription=subscription)
    assert notification is not None and notification.entity_count == 2

    deliver_notification.apply(args=[notification.pk])  # retries run in place (eager), without the backoff wait

    assert len(city.received) == 2
    first, second = city.received
    assert first["body"] == second["body"]
    assert valid_signature(second, subscription.signing_secret)
    assert not valid_signature(second, "another secret")
    assert second["headers"]["Content-Type"] == "application/ld+json"
    payload = json.loads(second["body"])
    assert payload["type"] == "Notification" and payload["subscriptionId"] == subscription.urn
    assert sorted(e["fleetVehicleId"]["value"] for e in payload["data"]) == sorted(
        two_depots[f"vehicle_{s}"].fleet_number for s in "ab"
    )
    notification.refresh_from_db()
    assert notification.status == NgsiNotification.Status.DELIVERED
    assert (notification.attempts, notification.last_http_status) == (2, 200)


def test_after_the_last_retry_the_notification_is_failed_and_nothing_is_sent_twice(
    receiver, two_depots, recorded, settings
):
    city = receiver([500] * 20)
    subscription = NgsiSubscription.objects.create(
        organization=two_depots["org"], entity_type=EntityType.VEHICLE, endpoint=city.url
    )
    notification = subscription_notify(subscription=subscription)
    deliver_notification.apply(args=[notification.pk])
    notification.refresh_from_db()
    assert notification.status == NgsiNotification.Status.FAILED
    assert notification.attempts == len(city.received) == deliver_notification.max_retries + 1
    assert notification.last_http_status == 500
    # Nothing changed since: the next round has nothing to say.
    assert subscription_notify(subscription=subscription) is None
