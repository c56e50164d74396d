"""Writes of the city feeds: NGSI-LD notifications made for due subscriptions, and their signed delivery.

A notification's delivery is queued through the task outbox (``jobs.outbox``) in the transaction that made it:
with Redis away it waits there and is sent once Redis is back, instead of being lost with the failed send.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
import uuid

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from charging.selectors import charger_queryset
from citydata import entities, ngsi_ld
from citydata.models import EntityType, NgsiNotification, NgsiSubscription
from citydata.selectors import subscriptions_to_notify
from jobs.outbox import outbox_task_send

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Evfleet-Signature"
TIMESTAMP_HEADER = "X-Evfleet-Timestamp"
DELIVERY_TIMEOUT_S = 10
MAX_ENTITIES_PER_NOTIFICATION = 1000


class DeliveryFailed(Exception):
    """The endpoint did not take the notification (network error or a non-2xx answer): retry later."""


def signature(body: bytes, *, secret: str, timestamp: int) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the subscription's secret of ``<timestamp>.<body>``.

    The timestamp is signed too (and sent in ``X-Evfleet-Timestamp``) so that a receiver can refuse replays.
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _changed_entities(subscription: NgsiSubscription) -> list[dict]:
    organization = subscription.organization
    since = subscription.last_notified_at
    if subscription.entity_type == EntityType.VEHICLE:
        vehicles = entities.vehicles(entities.all_vehicles().filter(organization=organization))
        if since is not None:
            vehicles = vehicles.filter(Q(live_state__recorded_at__gt=since))
        return entities.vehicle_entities(list(vehicles[:MAX_ENTITIES_PER_NOTIFICATION]))
    # Chargers carry no change time: a station subscription gets every station each period.
    chargers = entities.chargers(charger_queryset().filter(depot__organization=organization))
    return entities.station_entities(list(chargers[:MAX_ENTITIES_PER_NOTIFICATION]))


def notification_payload(subscription: NgsiSubscription, data: list[dict], *, at: dt.datetime) -> dict:
    return {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": "Notification",
        "subscriptionId": subscription.urn,
        "notifiedAt": at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": [ngsi_ld.normalized(entity) for entity in data],
        "@context": ngsi_ld.context(),
    }


def subscription_notify(*, subscription: NgsiSubscription, now: dt.datetime | None = None) -> NgsiNotification | None:
    """A notification of the subscription's entities changed since its last one (None if nothing changed);
    its delivery is queued in the task outbox with it (sent after the commit, or when Redis is back)."""
    from citydata.tasks import deliver_notification

    now = now or timezone.now()
    data = _changed_entities(subscription)
    with transaction.atomic():
        NgsiSubscription.objects.filter(pk=subscription.pk).update(last_notified_at=now)
        subscription.last_notified_at = now
        if not data:
            return None
        notification = NgsiNotification.objects.create(
            subscription=subscription,
            created_at=now,
            payload=notification_payload(subscription, data, at=now),
            entity_count=len(data),
        )
        outbox_task_send(
            task=deliver_notification,
            args=[notification.pk],
            dedupe_key=f"citydata.notification:notification={notification.pk}",
        )
    return notification


def subscriptions_notify(*, now: dt.datetime | None = None) -> int:
    """Notify every active subscription whose throttling period has passed; the number of notifications made."""
    now = now or timezone.now()
    made = 0
    for subscription in subscriptions_to_notify():
        due = subscription.last_notified_at is None or (
            now - subscription.last_notified_at >= dt.timedelta(seconds=subscription.throttling_seconds)
        )
        if due and subscription_notify(subscription=subscription, now=now) is not None:
            made += 1
    return made


def notification_deliver(*, notification: NgsiNotification, final_attempt: bool) -> None:
    """POST the notification, signed; record the attempt. Raises ``DeliveryFailed`` for a retry unless this
    was the last attempt (then the notification is marked failed)."""
    subscription = notification.subscription
    body = json.dumps(notification.payload, separators=(",", ":")).encode()
    timestamp = int(timezone.now().timestamp())
    # The endpoint's scheme is checked below (http or https only): urlopen would also open file: URLs.
    request = urllib.request.Request(
        subscription.endpoint,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/ld+json",  # the @context is in the body
            SIGNATURE_HEADER: signature(body, secret=subscription.signing_secret, timestamp=timestamp),
            TIMESTAMP_HEADER: str(timestamp),
            "User-Agent": "evfleet-ngsi-ld-notifier",
        },
    )
    notification.attempts += 1
    status, error = None, ""
    if not subscription.endpoint.startswith(("http://", "https://")):
        error = "The endpoint is not an http(s) URL."
    else:
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_S) as response:  # nosec B310
                status = response.status
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            error = str(getattr(exc, "reason", exc))[:500]
    notification.last_http_status = status
    notification.last_error = error
    if status is not None and 200 <= status < 300:
        notification.status = NgsiNotification.Status.DELIVERED
        notification.delivered_at = timezone.now()
    else:
        notification.status = NgsiNotification.Status.FAILED if final_attempt else NgsiNotification.Status.RETRYING
    notification.save(update_fields=["attempts", "last_http_status", "last_error", "status", "delivered_at"])
    if notification.status == NgsiNotification.Status.RETRYING:
        raise DeliveryFailed(f"{subscription.endpoint}: {error or status}")
