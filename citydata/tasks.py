"""Celery tasks of the city feeds: thin wrappers that load by id and call the service."""

from __future__ import annotations

import logging

from celery import shared_task

from citydata.models import NgsiNotification
from citydata.services import DeliveryFailed, notification_deliver, subscriptions_notify

logger = logging.getLogger(__name__)
MAX_DELIVERY_RETRIES = 6  # with backoff 10, 20, 40 ... s (capped at 10 minutes), about 10 minutes in all


@shared_task(
    bind=True,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=MAX_DELIVERY_RETRIES,
)
def deliver_notification(self, notification_id: int) -> str | None:
    notification = NgsiNotification.objects.select_related("subscription").filter(pk=notification_id).first()
    if notification is None:
        logger.info("notification %s is gone: nothing to deliver", notification_id)
        return None
    if notification.status in (NgsiNotification.Status.DELIVERED, NgsiNotification.Status.FAILED):
        return notification.status  # a redelivered message: already settled
    notification_deliver(notification=notification, final_attempt=self.request.retries >= self.max_retries)
    return notification.status


@shared_task(expires=55)
def notify_ngsi_subscriptions() -> int:
    """Every minute (beat): a notification for each due subscription."""
    return subscriptions_notify()
