"""Thin Celery tasks: the periodic round (beat, every minute) and the sending of one message."""

from __future__ import annotations

from celery import shared_task

from notifications import services


@shared_task(acks_late=True, expires=55)
def notifications_run_task() -> dict[str, int]:
    return services.notifications_run(send_in_process=False).as_dict()


@shared_task(acks_late=True)
def delivery_send_task(delivery_id: int) -> str:
    """One attempt. A failed one is retried through the task outbox (``services.delivery_retry_later``), not
    with Celery's ``retry()``, which publishes straight to the broker and lost the retry when Redis was away."""
    try:
        delivery = services.delivery_send(delivery_id=delivery_id)
    except services.DeliveryFailed:
        return "attempt failed"
    return "sent" if delivery is not None else "not mine"
