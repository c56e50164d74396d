"""Signed webhooks to a real loopback HTTP receiver that checks the signature itself."""

import pytest

from charging.alert_messages import message
from charging.alerts import alert_raise
from jobs.models import OutboxTask
from notifications import signing
from notifications.models import Delivery, NotificationRule, WebhookEndpoint
from notifications.services import MAX_ATTEMPTS, alerts_dispatch, notifications_run
from notifications.tasks import delivery_send_task
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooked(two_depots, receiver):
    endpoint = WebhookEndpoint.objects.create(
        organization=two_depots["org"], name="ops", url=receiver.url, secret=receiver.secret
    )
    NotificationRule.objects.create(user=two_depots["manager_a"], by_email=False, webhook=endpoint)
    return endpoint


CONNECTOR_FAULTED = message("connector_faulted", equipment="DC 1 #1", depot="Hermosillo")


def _raise(depot, key="equipment:connector:1", says=CONNECTOR_FAULTED):
    return alert_raise(
        key=key,
        kind="charger_fault",
        severity="critical",
        depot=depot,
        organization_id=depot.organization_id,
        says=says,
    )


def test_an_alert_is_posted_signed_with_the_endpoints_secret(two_depots, hooked, receiver):
    alert = _raise(two_depots["depot_a"])

    summary = notifications_run()

    assert summary.sent == 1
    [request] = receiver.requests
    assert request.signature_valid and request.status_answered == 200
    assert request.body["type"] == "alert"
    assert [(a["id"], a["kind"], a["depot"]["code"]) for a in request.body["alerts"]] == [
        (alert.pk, "charger_fault", "hmo")
    ]


def test_a_500_is_retried_through_the_outbox_and_the_second_attempt_lands(two_depots, hooked, receiver):
    receiver.answers = [500]
    _raise(two_depots["depot_a"])
    [delivery_id] = alerts_dispatch().deliveries

    # The failed attempt records its retry in the task outbox, with a backoff of up to 2 s (jittered).
    assert delivery_send_task.apply(args=[delivery_id]).get() == "attempt failed"
    [retry] = OutboxTask.objects.all()
    assert (retry.dedupe_key, retry.args) == (f"notifications.delivery:delivery={delivery_id}:attempt=2", [delivery_id])
    assert 0 <= retry.countdown_seconds <= 2
    assert Delivery.objects.get(pk=delivery_id).status == "retrying"

    assert delivery_send_task.run(*retry.args) == "sent"  # the worker's side of the sent row, in-process

    assert [r.status_answered for r in receiver.requests] == [500, 200]
    assert all(r.signature_valid for r in receiver.requests)
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_an_endpoint_that_keeps_failing_ends_as_failed_after_the_last_attempt(two_depots, hooked, receiver):
    receiver.answers = [503, 503]
    _raise(two_depots["depot_a"])
    summary = notifications_run()  # the first attempt, in-process
    [delivery_id] = summary.deliveries
    assert (summary.failed, Delivery.objects.get(pk=delivery_id).status) == (1, "retrying")
    assert OutboxTask.objects.filter(dedupe_key__endswith=":attempt=2").count() == 1

    Delivery.objects.filter(pk=delivery_id).update(attempts=MAX_ATTEMPTS - 1)  # as if retried all but once
    delivery_send_task.apply(args=[delivery_id])  # the last allowed attempt

    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert "503" in delivery.last_error
    assert [r.status_answered for r in receiver.requests] == [503, 503]
    assert not OutboxTask.objects.filter(dedupe_key__endswith=f":attempt={MAX_ATTEMPTS + 1}").exists()


def test_a_wrong_secret_is_refused_by_the_receiver(two_depots, hooked, receiver):
    hooked.secret = "not-the-receivers-secret"
    hooked.save()
    _raise(two_depots["depot_a"])

    summary = notifications_run()

    assert summary.failed == 1
    assert [r.signature_valid for r in receiver.requests] == [False]


def test_another_organisations_endpoint_never_gets_our_alerts(two_depots, receiver):
    foreign = WebhookEndpoint.objects.create(organization=f.OrganizationFactory(), name="x", url=receiver.url)
    NotificationRule.objects.create(user=f.UserFactory(is_superuser=True), by_email=False, webhook=foreign)
    _raise(two_depots["depot_a"])

    notifications_run()

    assert receiver.requests == []


def test_signing_matches_an_independent_hmac_and_rejects_old_timestamps():
    body = b'{"a":1}'
    headers = signing.signed_headers("s3cret", body, now=1_000_000)

    assert headers["X-Evfleet-Timestamp"] == "1000000"
    assert signing.verify("s3cret", body, "1000000", headers["X-Evfleet-Signature"], now=1_000_100)
    assert not signing.verify("s3cret", body + b" ", "1000000", headers["X-Evfleet-Signature"], now=1_000_100)
    assert not signing.verify("s3cret", body, "1000000", headers["X-Evfleet-Signature"], now=1_000_000 + 3600)


def test_a_message_left_retrying_without_its_next_attempt_is_given_one_by_the_round(two_depots, hooked, receiver):
    # As Celery's retry() left a message when its publish failed (before retries went through the outbox).
    _raise(two_depots["depot_a"])
    [delivery_id] = alerts_dispatch().deliveries
    Delivery.objects.filter(pk=delivery_id).update(status="retrying", attempts=1, last_error="answered 500")
    assert not OutboxTask.objects.exists()

    notifications_run(send_in_process=False)  # beat's round
    notifications_run(send_in_process=False)  # and the next: still one next attempt

    [retry] = OutboxTask.objects.all()
    assert retry.dedupe_key == f"notifications.delivery:delivery={delivery_id}:attempt=2"
    assert delivery_send_task.run(*retry.args) == "sent"  # the worker's side of the sent row
    assert [r.status_answered for r in receiver.requests] == [200]
    assert Delivery.objects.get(pk=delivery_id).status == "sent"
    notifications_run(send_in_process=False)
    assert OutboxTask.objects.count() == 1  # a sent message is not retried


def test_a_message_left_sending_by_a_lost_worker_is_sent_once_it_is_stale(two_depots, hooked, receiver):
    """A worker killed mid-send leaves the message ``sending``: the task's redelivery must not take over a live
    attempt, but one older than ``SENDING_STALE_S`` is a lost one, and beat's round gives it its next attempt."""
    import datetime as dt

    from django.utils import timezone

    from notifications.services import SENDING_STALE_S, delivery_send

    _raise(two_depots["depot_a"])
    [delivery_id] = alerts_dispatch().deliveries
    began = timezone.now()
    Delivery.objects.filter(pk=delivery_id).update(status="sending", attempts=1, sending_since=began)

    assert delivery_send(delivery_id=delivery_id) is None  # a live attempt is not taken over
    notifications_run(send_in_process=False)
    assert not OutboxTask.objects.exists() and receiver.requests == []

    Delivery.objects.filter(pk=delivery_id).update(sending_since=began - dt.timedelta(seconds=SENDING_STALE_S + 1))
    notifications_run(send_in_process=False)  # beat's round
    notifications_run(send_in_process=False)  # and the next: still one next attempt
    [retry] = OutboxTask.objects.all()
    assert retry.dedupe_key == f"notifications.delivery:delivery={delivery_id}:attempt=2"
    assert delivery_send_task.run(*retry.args) == "sent"
    [request] = receiver.requests
    assert request.delivery_id == str(delivery_id)  # for the receiver to drop a repeat
    assert Delivery.objects.get(pk=delivery_id).status == "sent"
