"""Thin Celery tasks: the periodic round (beat, every minute) and the sending of one message with retries."""

from __future__ import annotations

from celery import shared_task

from notifications import services

MAX_RETRIES = 6  # with backoff 2, 4, 8, ... s (capped, jittered): about two minutes before giving up


@shared_task(acks_late=True, expires=55)
def notifications_run_task() -> dict[str, int]:
    return services.notifications_run(send_in_process=False).as_dict()


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(services.DeliveryFailed,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
)
def delivery_send_task(self, delivery_id: int) -> str:
    try:
        delivery = services.delivery_send(delivery_id=delivery_id)
    except services.DeliveryFailed:
        if self.request.retries >= self.max_retries:
            services.delivery_give_up(delivery_id=delivery_id)
            return "failed"
        raise
    return "sent" if delivery is not None else "not mine"
