"""The task outbox: a task asked for in a transaction is a row of that transaction, sent to Celery after it.

``outbox_task_send`` writes an ``OutboxTask`` row in the caller's transaction and, once it commits, sends the
pending rows (``outbox_dispatch``). Whatever the broker does, the request is recorded with the data that asked
for it: a rolled-back transaction leaves no task, a committed one leaves a row that is sent sooner or later.

- **Redis up**: the row is sent right after the commit, as ``transaction.on_commit(task.delay)`` would, and
  marked sent.
- **Redis away**: the send fails fast (logged once per outage); the row stays pending and the caller's
  request goes on (a depot event answers 201). For ``BROKER_RETRY_AFTER_S`` after a failure, commits do not
  try the broker again (a request does not pay a broker timeout each time).
- **Redis back**: pending rows are sent, oldest first, by whichever comes first: the next commit that sends,
  the periodic drain (``jobs.tasks.outbox_send_task``, every 30 s by beat) or ``manage.py outbox_send``.
  (Not at a worker's start: publishing from the worker's main process while its consumer starts hung it.)

Exactly once: each row's Celery task id is derived from its ``dedupe_key`` (``task_id_for``), and a row is
claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so two dispatchers never send one row together. A sender
killed between the send and the mark sends it again later *with the same task id*: tasks keyed by their
message id (the re-plan) or by a ``JobRun`` find that work done. The task's own idempotency is still needed
for Redis's redelivery of an unacknowledged message (acks late).

Every task a domain app queues goes through here (none calls ``.delay``/``.apply_async`` itself): re-plans
(``charging.tasks.request_replan``), queued job runs (``jobs.runs``, ``run_night --force``), alert messages
(``notifications.services.deliveries_queue``: one row per e-mail or webhook message) and NGSI-LD notifications
(``citydata.services.subscription_notify``). Only beat's own schedule and Celery's retries publish directly.

django-celery-outbox (PyPI) was considered: it replaces the Celery app so that *every* task goes through the
table and a relay daemon, which adds a process to every deployment and a database round trip to every send;
here only the tasks whose loss would be silent (re-plans, queued jobs, messages to people and subscribers)
need it, and on-commit sending keeps their latency.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import kombu.exceptions
import redis.exceptions
from django.db import transaction
from django.utils import timezone

from jobs.models import OutboxTask

logger = logging.getLogger(__name__)

BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
)
# After a failed send, commits leave their rows pending this long instead of waiting for the broker again.
BROKER_RETRY_AFTER_S = 2.0
DISPATCH_BATCH = 200
SENT_ROWS_KEPT = dt.timedelta(days=7)
_TASK_ID_NAMESPACE = uuid.UUID("6f0c3f4e-2b1d-5a55-9e4e-65766f757462")


class _BrokerState:
    """Process-wide: when the broker last refused a send (to skip it on commits for a while)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.retry_at = 0.0
        self.down_since: float | None = None


_BROKER = _BrokerState()


@dataclass(frozen=True)
class Dispatched:
    sent: int = 0
    pending: int = 0  # left pending (when known): the broker refused, or max_rows was reached
    broker_down: bool = False


def task_id_for(dedupe_key: str) -> str:
    """The Celery task id of the row with this key: the same on every send of that row."""
    return str(uuid.uuid5(_TASK_ID_NAMESPACE, dedupe_key))


def outbox_task_send(
    *,
    task,
    dedupe_key: str,
    args: Sequence = (),
    kwargs: dict | None = None,
    countdown_seconds: int = 0,
) -> OutboxTask:
    """Record ``task(*args, **kwargs)`` in the current transaction; it is sent after the commit.

    ``dedupe_key`` names the request (``charging.replan:event=42``): a second call with the same key records
    nothing more and returns the first row. ``countdown_seconds`` counts from now, not from the send: a row
    sent late runs at once.
    """
    row, created = OutboxTask.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "task_name": task.name,
            "args": list(args),
            "kwargs": kwargs or {},
            "countdown_seconds": countdown_seconds,
        },
    )
    if created:
        transaction.on_commit(_dispatch_after_commit)
    return row


def _dispatch_after_commit() -> None:
    # A request sends its own row and, after an outage, a batch of older ones; beat's drain sends the rest.
    outbox_dispatch(respect_backoff=True, max_rows=DISPATCH_BATCH)


def _eager() -> bool:
    from config.celery import app

    return bool(app.conf.task_always_eager)


def _task_named(name: str):
    from config.celery import app

    app.loader.import_default_modules()  # outside a worker, task modules are imported on demand
    return app.tasks[name]


def _publish(row: OutboxTask) -> None:
    options: dict = {"task_id": task_id_for(row.dedupe_key)}
    run_at = row.created_at + dt.timedelta(seconds=row.countdown_seconds)
    if run_at > timezone.now():
        options["eta"] = run_at
    _task_named(row.task_name).apply_async(args=row.args, kwargs=row.kwargs, **options)


def _broker_failed(exc: BaseException) -> None:
    with _BROKER.lock:
        _BROKER.retry_at = time.monotonic() + BROKER_RETRY_AFTER_S
        if _BROKER.down_since is None:
            _BROKER.down_since = time.time()
            logger.error(
                "Task queue unavailable (%s: %s); tasks stay in the outbox until it is back.", type(exc).__name__, exc
            )


def _broker_answered() -> None:
    if _BROKER.down_since is not None:
        with _BROKER.lock:
            if _BROKER.down_since is not None:
                logger.warning("Task queue is back after %.0f s; sending the outbox.", time.time() - _BROKER.down_since)
                _BROKER.down_since = None


def _send_one(row_id: int, eager: bool) -> OutboxTask | bool | None:
    """Claim and send one row. Returns None when someone else has it or it is sent, False when the broker
    refused, True when sent, or the row to run in-process (eager mode, after its mark is committed)."""
    with transaction.atomic():
        row = OutboxTask.objects.select_for_update(skip_locked=True).filter(pk=row_id, sent_at__isnull=True).first()
        if row is None:
            return None
        row.attempts += 1
        if not eager:
            try:
                _publish(row)
            except BROKER_ERRORS as exc:
                row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                row.save(update_fields=["attempts", "last_error"])
                _broker_failed(exc)
                return False
        row.sent_at = timezone.now()
        row.save(update_fields=["attempts", "sent_at"])
    return row if eager else True


def outbox_dispatch(*, respect_backoff: bool = False, max_rows: int | None = None) -> Dispatched:
    """Send pending rows, oldest first, until none is left, the broker refuses one or ``max_rows`` were sent.

    ``respect_backoff``: skip the broker for ``BROKER_RETRY_AFTER_S`` after it refused (what commits do); the
    periodic drain and the command always try. In the embedded mode (no broker) the tasks run in this process:
    a task's failure is its own (recorded on its job row, logged here), not the caller's.
    """
    if respect_backoff and time.monotonic() < _BROKER.retry_at:
        return Dispatched(broker_down=True)  # the rows wait; not even a count during an outage
    eager = _eager()
    sent = 0
    while True:
        pending_rows = OutboxTask.objects.filter(sent_at__isnull=True)
        batch = list(pending_rows.order_by("created_at", "pk").values_list("pk", flat=True)[:DISPATCH_BATCH])
        if not batch or (max_rows is not None and sent >= max_rows):
            return Dispatched(sent=sent, pending=len(batch))
        progressed = False
        for row_id in batch:
            result = _send_one(row_id, eager)
            if result is False:
                left = OutboxTask.objects.filter(sent_at__isnull=True).count()
                return Dispatched(sent=sent, pending=left, broker_down=True)
            if result is None:
                continue
            progressed = True
            sent += 1
            if isinstance(result, OutboxTask):
                try:
                    _publish(result)
                except Exception:
                    logger.exception("outbox task %s [%s] failed in-process", result.task_name, result.dedupe_key)
        _broker_answered()
        if not progressed:  # every row of the batch is another dispatcher's: it sends them
            return Dispatched(sent=sent)


def outbox_prune(*, now: dt.datetime | None = None) -> int:
    """Delete rows sent more than ``SENT_ROWS_KEPT`` ago. Returns how many."""
    cutoff = (now or timezone.now()) - SENT_ROWS_KEPT
    deleted, _ = OutboxTask.objects.filter(sent_at__lt=cutoff).delete()
    return deleted


def outbox_status() -> dict:
    """For the healthcheck: pending rows and the age of the oldest, in seconds."""
    oldest = OutboxTask.objects.filter(sent_at__isnull=True).order_by("created_at").values_list("created_at", flat=True)
    first = oldest.first()
    return {
        "pending": OutboxTask.objects.filter(sent_at__isnull=True).count(),
        "oldest_pending_age_s": (timezone.now() - first).total_seconds() if first else 0.0,
    }
