"""Alerts to people: claim new alerts, decide who is told and how, build the messages, send them.

The flow (docs/notifications.md):
1. ``alerts_dispatch`` finds alerts raised in the last ``NOTIFICATIONS_MAX_ALERT_AGE_HOURS`` that nobody
   dispatched yet and claims them with one conditional UPDATE (a claim older than the lease is taken over),
   so two workers never dispatch the same alert.
2. For each claimed alert, every active rule that matches it (kind, severity, depot) and whose user may view
   it (``fleet.scoping.restrict``) gives one ``Notification`` per recipient and channel. At once when the
   rule says so and the recipient was not told about the same ``key`` in the last
   ``NOTIFICATIONS_REPEAT_WINDOW_MINUTES``; otherwise the alert waits for the recipient's digest (a flapping
   charger gives one message, then one digest that counts the repeats).
3. ``digests_build`` sends each recipient's waiting notifications as one message once the oldest has
   waited ``NOTIFICATIONS_DIGEST_MINUTES``.
4. ``delivery_send`` sends one message: an e-mail through Django's mail, or a webhook request signed with the
   endpoint's secret (``notifications.signing``). In the periodic round each message is handed to the send task
   through the task outbox (``jobs.outbox``), in the transaction that made it, and so is each retry of a failed
   attempt (with backoff, ``delivery_retry_later``): Redis away, the message or its retry waits in the outbox
   and is sent once when Redis is back.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from charging.models import Alert
from charging.selectors import alerts_raised_since
from fleet.scoping import Action, restrict
from jobs.outbox import outbox_task_send
from notifications import signing
from notifications.models import AlertDispatch, Channel, Delivery, Notification, NotificationRule, WebhookEndpoint

logger = logging.getLogger(__name__)

# A message is tried this many times (the first and six retries, about two minutes in all) before it is failed.
MAX_ATTEMPTS = 7
#: A message ``sending`` for longer than this lost its worker mid-send (killed, machine gone): far longer than
#: an attempt can take (the webhook's timeout, ``NOTIFICATIONS_WEBHOOK_TIMEOUT_S``, or SMTP's), so a live
#: attempt is never taken over. It may then reach its receiver twice: webhooks carry ``X-Evfleet-Delivery``,
#: the message's id, for receivers to drop a repeat.
SENDING_STALE_S = 15 * 60
RETRY_DELAY_FACTOR_S = 2
RETRY_DELAY_MAX_S = 600

WAITING = (Notification.Status.DIGEST, Notification.Status.FOLDED)
SUBJECT_PREFIX = "[evfleet]"
DELIVERY_HEADER = "X-Evfleet-Delivery"


class DeliveryFailed(Exception):
    """A message could not be sent this time (the receiver answered an error, the network or mail server
    failed); the task retries it."""


@dataclass
class RunSummary:
    alerts_dispatched: int = 0
    notifications: int = 0
    deliveries: list[int] = field(default_factory=list)  # ids of the messages created
    sent: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "alerts_dispatched": self.alerts_dispatched,
            "notifications": self.notifications,
            "messages": len(self.deliveries),
            "sent": self.sent,
            "failed": self.failed,
        }


def _minutes(name: str) -> dt.timedelta:
    return dt.timedelta(minutes=getattr(settings, name))


# --- 1 and 2: claim and dispatch --------------------------------------------------------------------------------


def alerts_claim(*, now: dt.datetime, batch_size: int = 500) -> tuple[str, list[AlertDispatch]]:
    """Claim up to ``batch_size`` undispatched alerts for this caller; returns its token and the claims."""
    since = now - dt.timedelta(hours=settings.NOTIFICATIONS_MAX_ALERT_AGE_HOURS)
    fresh = alerts_raised_since(since).exclude(pk__in=AlertDispatch.objects.values("alert_id"))
    AlertDispatch.objects.bulk_create(
        [AlertDispatch(alert_id=pk) for pk in fresh.values_list("pk", flat=True)[:batch_size]],
        ignore_conflicts=True,
    )
    token = uuid.uuid4().hex
    claimable = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - _minutes("NOTIFICATIONS_CLAIM_LEASE_MINUTES"))
    candidates = AlertDispatch.objects.filter(dispatched_at__isnull=True).filter(claimable).order_by("pk")
    # The conditional UPDATE is the claim: PostgreSQL re-checks ``claimable`` on a row another worker has just
    # claimed, so each row goes to one worker only.
    AlertDispatch.objects.filter(pk__in=list(candidates.values_list("pk", flat=True)[:batch_size])).filter(
        dispatched_at__isnull=True
    ).filter(claimable).update(claimed_by=token, claimed_at=now)
    claims = list(
        AlertDispatch.objects.filter(claimed_by=token, dispatched_at__isnull=True)
        .select_related("alert__depot", "alert__organization")
        .order_by("alert__created_at", "alert_id")
    )
    return token, claims


def alerts_dispatch(
    *, now: dt.datetime | None = None, summary: RunSummary | None = None, queue_sends: bool = False
) -> RunSummary:
    """Claim undispatched alerts and turn them into notifications and messages (not sent here; with
    ``queue_sends`` each message's send is queued in the transaction that made it, ``deliveries_queue``)."""
    now = now or timezone.now()
    summary = summary or RunSummary()
    token, claims = alerts_claim(now=now)
    if not claims:
        return summary
    alerts = [c.alert for c in claims]
    rules = list(NotificationRule.objects.filter(is_active=True).select_related("user", "webhook"))
    rules_by_user: dict[int, list[NotificationRule]] = defaultdict(list)
    for rule in rules:
        rules_by_user[rule.user_id].append(rule)
    visible: dict[int, set[int]] = {}
    for user_id, user_rules in rules_by_user.items():
        user = user_rules[0].user
        scoped = restrict(Alert.objects.filter(pk__in=[a.pk for a in alerts]), user, Action.VIEW)
        visible[user_id] = set(scoped.values_list("pk", flat=True))

    for claim in claims:
        with transaction.atomic():
            made_before = len(summary.deliveries)
            _dispatch_one(claim.alert, rules_by_user, visible, now, summary)
            AlertDispatch.objects.filter(pk=claim.pk, claimed_by=token).update(dispatched_at=now)
            if queue_sends:
                deliveries_queue(delivery_ids=summary.deliveries[made_before:])
        summary.alerts_dispatched += 1
    return summary


def _dispatch_one(
    alert: Alert,
    rules_by_user: dict[int, list[NotificationRule]],
    visible: dict[int, set[int]],
    now: dt.datetime,
    summary: RunSummary,
) -> None:
    # Recipient -> whether any matching rule wants it at once (one notification per recipient and channel).
    emails: dict[int, bool] = {}
    hooks: dict[int, bool] = {}
    users, endpoints = {}, {}
    for user_id, user_rules in rules_by_user.items():
        if alert.pk not in visible[user_id]:
            continue
        for rule in user_rules:
            if not rule.matches(alert):
                continue
            at_once = rule.mode == NotificationRule.Mode.IMMEDIATE
            if rule.by_email and rule.user.email:
                emails[user_id] = emails.get(user_id, False) or at_once
                users[user_id] = rule.user
            hook = rule.webhook
            if hook is not None and hook.is_active and hook.organization_id == alert.organization_id:
                hooks[hook.pk] = hooks.get(hook.pk, False) or at_once
                endpoints[hook.pk] = hook
    for user_id, at_once in emails.items():
        _notify(alert, Channel.EMAIL, at_once, now, summary, user=users[user_id])
    for endpoint_id, at_once in hooks.items():
        _notify(alert, Channel.WEBHOOK, at_once, now, summary, endpoint=endpoints[endpoint_id])


def _notify(alert: Alert, channel: str, at_once: bool, now: dt.datetime, summary: RunSummary, **recipient) -> None:
    if Notification.objects.filter(alert=alert, channel=channel, **recipient).exists():
        return  # a taken-over claim: this part was done before the first worker stopped
    told_recently = Notification.objects.filter(
        channel=channel,
        key=alert.key,
        status=Notification.Status.SENT,
        created_at__gte=now - _minutes("NOTIFICATIONS_REPEAT_WINDOW_MINUTES"),
        **recipient,
    ).exists()
    if at_once and not told_recently:
        status = Notification.Status.SENT
    elif at_once:
        status = Notification.Status.FOLDED
    else:
        status = Notification.Status.DIGEST
    notification = Notification.objects.create(
        alert=alert, key=alert.key, channel=channel, status=status, created_at=now, **recipient
    )
    summary.notifications += 1
    if status == Notification.Status.SENT:
        delivery = _delivery_for(channel, [alert], digest=False, **recipient)
        notification.delivery = delivery
        notification.save(update_fields=["delivery"])
        summary.deliveries.append(delivery.pk)


# --- 3: digests --------------------------------------------------------------------------------------------------


def digests_build(
    *,
    now: dt.datetime | None = None,
    force: bool = False,
    summary: RunSummary | None = None,
    queue_sends: bool = False,
):
    """One message per recipient and channel for the notifications waiting since at least a digest interval
    (all waiting ones with ``force``); ``queue_sends`` as in ``alerts_dispatch``."""
    now = now or timezone.now()
    summary = summary or RunSummary()
    waiting = Notification.objects.filter(status__in=WAITING, claim_token="")
    due_before = now if force else now - _minutes("NOTIFICATIONS_DIGEST_MINUTES")
    groups = waiting.filter(created_at__lte=due_before).values_list("channel", "user_id", "endpoint_id").distinct()
    for channel, user_id, endpoint_id in list(groups):
        token = uuid.uuid4().hex
        with transaction.atomic():
            mine = waiting.filter(channel=channel, user_id=user_id, endpoint_id=endpoint_id)
            # The conditional UPDATE is the claim: another worker's digest run skips what this one took.
            if not mine.update(claim_token=token):
                continue
            claimed = Notification.objects.filter(claim_token=token).select_related("alert__depot", "user", "endpoint")
            items = list(claimed.order_by("alert__created_at", "alert_id"))
            recipient = {"user": items[0].user} if channel == Channel.EMAIL else {"endpoint": items[0].endpoint}
            delivery = _delivery_for(channel, [n.alert for n in items], digest=True, **recipient)
            claimed.update(status=Notification.Status.DIGESTED, delivery=delivery)
            summary.deliveries.append(delivery.pk)
            if queue_sends:
                deliveries_queue(delivery_ids=[delivery.pk])
    return summary


# --- Messages ----------------------------------------------------------------------------------------------------


def _local(moment: dt.datetime, alert: Alert) -> str:
    zone = alert.depot.zone if alert.depot is not None else dt.UTC
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} {moment.astimezone(zone).tzname()}"


def alert_payload(alert: Alert) -> dict:
    """An alert as a webhook carries it."""
    depot = alert.depot
    return {
        "id": alert.pk,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "message": alert.text,
        "message_code": alert.message_code,
        "message_params": alert.message_params,
        "organization": alert.organization_id,
        "depot": None if depot is None else {"id": depot.pk, "code": depot.code, "name": depot.name},
        "created_at": alert.created_at.isoformat(),
    }


def _groups(alerts: Iterable[Alert]) -> list[list[Alert]]:
    by_key: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_key[alert.key].append(alert)
    return sorted(by_key.values(), key=lambda group: group[0].created_at)


def _email_text(alerts: list[Alert], digest: bool) -> tuple[str, str]:
    if not digest:
        alert = alerts[0]
        where = alert.depot.name if alert.depot else "-"
        subject = f"{SUBJECT_PREFIX} {alert.get_severity_display()}: {alert.text}"
        body = "\n".join(
            [
                alert.text,
                "",
                _("Depot: %(depot)s") % {"depot": where},
                _("Kind: %(kind)s") % {"kind": alert.get_kind_display()},
                _("Severity: %(severity)s") % {"severity": alert.get_severity_display()},
                _("Raised: %(when)s") % {"when": _local(alert.created_at, alert)},
                _("Repeats of this alert in the next hour come in one digest."),
            ]
        )
        return subject[:200], body
    groups = _groups(alerts)
    subject = f"{SUBJECT_PREFIX} " + _("Digest: %(alerts)d alert(s) about %(things)d thing(s)") % {
        "alerts": len(alerts),
        "things": len(groups),
    }
    lines = []
    for group in groups:
        latest = group[-1]
        where = latest.depot.name if latest.depot else "-"
        first, last = _local(group[0].created_at, latest), _local(latest.created_at, latest)
        raised = (
            _("raised %(count)d times, %(first)s to %(last)s") % {"count": len(group), "first": first, "last": last}
            if len(group) > 1
            else _("raised once, %(when)s") % {"when": first}
        )
        now = _("now %(status)s") % {"status": str(latest.get_status_display()).lower()}
        lines.append(f"- [{latest.get_severity_display()}] {latest.text} ({where}): {raised}; {now}")
    return subject[:200], "\n".join(lines)


def recipient_language(user=None) -> str:
    """The language a recipient reads. Users have no language of their own (yet), so every message is written
    in the site's default language (``LANGUAGE_CODE``), whatever language the admin that triggered it uses."""
    return settings.LANGUAGE_CODE


def _delivery_for(channel: str, alerts: list[Alert], *, digest: bool, user=None, endpoint=None) -> Delivery:
    with translation.override(recipient_language(user)):
        return _delivery_in_active_language(channel, alerts, digest=digest, user=user, endpoint=endpoint)


def _delivery_in_active_language(
    channel: str, alerts: list[Alert], *, digest: bool, user=None, endpoint=None
) -> Delivery:
    subject, text = _email_text(alerts, digest)
    if channel == Channel.EMAIL:
        return Delivery.objects.create(
            channel=channel, user=user, to=user.email, is_digest=digest, subject=subject, body=text
        )
    groups = [
        {"key": group[-1].key, "count": len(group), "latest": alert_payload(group[-1])} for group in _groups(alerts)
    ]
    document = {"type": "digest" if digest else "alert", "alerts": [alert_payload(a) for a in alerts]}
    if digest:
        document["groups"] = groups
    return Delivery.objects.create(
        channel=channel,
        endpoint=endpoint,
        to=endpoint.url,
        is_digest=digest,
        subject=subject,
        body=json.dumps(document, separators=(",", ":"), sort_keys=True),
    )


# --- 4: sending --------------------------------------------------------------------------------------------------


def deliveries_queue(*, delivery_ids: Iterable[int]) -> None:
    """Hand each message to the retrying send task through the task outbox: recorded in the caller's
    transaction (the one that made the message), sent to Celery after its commit or, Redis away, when Redis is
    back. Keyed by the message, so a message is queued once whoever asks again; the task sends it once
    (``delivery_send`` claims it), even when the outbox re-sends it after a crash."""
    from notifications.tasks import delivery_send_task  # the task module imports this one

    for delivery_id in delivery_ids:
        outbox_task_send(
            task=delivery_send_task, args=[delivery_id], dedupe_key=f"notifications.delivery:delivery={delivery_id}"
        )


def delivery_send(*, delivery_id: int) -> Delivery | None:
    """Send one message. Returns it when sent, None when it is not this caller's to send (already sent or
    being sent). Raises ``DeliveryFailed`` when sending failed: the delivery is then ``retrying``, its next
    attempt recorded in the task outbox (``delivery_retry_later``), or ``failed`` after the last attempt."""
    now = timezone.now()
    claimed = (
        Delivery.objects.filter(pk=delivery_id)
        .filter(_claimable(now))
        .update(status=Delivery.Status.SENDING, attempts=F("attempts") + 1, sending_since=now)
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    try:
        if delivery.channel == Channel.EMAIL:
            _send_email(delivery)
        else:
            _send_webhook(delivery)
    except (DeliveryFailed, OSError) as exc:
        delivery_retry_later(delivery=delivery, error=str(exc))
        raise DeliveryFailed(str(exc)) from exc
    Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.SENT, sent_at=timezone.now(), last_error="")
    delivery.refresh_from_db()
    return delivery


def _claimable(now: dt.datetime) -> Q:
    """Waiting to be sent, or left ``sending`` by a worker lost mid-send (``SENDING_STALE_S``)."""
    return Q(status__in=(Delivery.Status.PENDING, Delivery.Status.RETRYING)) | Q(
        status=Delivery.Status.SENDING, sending_since__lt=now - dt.timedelta(seconds=SENDING_STALE_S)
    )


def retry_delay_s(attempts: int) -> int:
    """Seconds before the next attempt of a message tried ``attempts`` times: 2, 4, 8, ... capped at
    ``RETRY_DELAY_MAX_S``, with full jitter (Celery's own backoff formula, as ``retry_backoff=2`` had it)."""
    return get_exponential_backoff_interval(
        factor=RETRY_DELAY_FACTOR_S, retries=attempts - 1, maximum=RETRY_DELAY_MAX_S, full_jitter=True
    )


@transaction.atomic
def delivery_retry_later(*, delivery: Delivery, error: str) -> None:
    """A failed attempt: the message is ``retrying`` with its next attempt queued in the task outbox in the same
    transaction, or ``failed`` after ``MAX_ATTEMPTS``. Why the outbox and not Celery's ``retry()``: a retry
    published while Redis is away was rejected and lost, leaving the message ``retrying`` for ever; an outbox
    row waits in the database and is sent when Redis is back (the drain), never lost with the broker."""
    from notifications.tasks import delivery_send_task  # the task module imports this one

    if delivery.attempts >= MAX_ATTEMPTS:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, last_error=error[:500])
        return
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.RETRYING, last_error=error[:500])
    outbox_task_send(
        task=delivery_send_task,
        args=[delivery.pk],
        # One row per attempt: the first send's row (``deliveries_queue``) is already sent.
        dedupe_key=f"notifications.delivery:delivery={delivery.pk}:attempt={delivery.attempts + 1}",
        countdown_seconds=retry_delay_s(delivery.attempts),
    )


def stranded_retries_queue() -> None:
    """Give every ``retrying`` message its next attempt in the task outbox if it has none. Messages failed before
    retries went through the outbox were retried by Celery's ``retry()``, which published straight to Redis: a
    retry due while Redis was away was lost and the message stayed ``retrying``. ``outbox_task_send`` records
    nothing for a key it already holds, so a message whose retry waits is left alone. A message left ``sending``
    by a worker lost mid-send (``SENDING_STALE_S``) gets one too: the task's redelivery finds it claimed and
    leaves it. One look-up per such message (normally few); run by beat's round."""
    from notifications.tasks import delivery_send_task  # the task module imports this one

    retrying = (
        Delivery.objects.filter(_claimable(timezone.now()))
        .exclude(status=Delivery.Status.PENDING)  # a pending one's first send is queued with it
        .values_list("pk", "attempts")
    )
    for delivery_id, attempts in retrying:
        with transaction.atomic():
            outbox_task_send(
                task=delivery_send_task,
                args=[delivery_id],
                dedupe_key=f"notifications.delivery:delivery={delivery_id}:attempt={attempts + 1}",
            )


def _send_email(delivery: Delivery) -> None:
    # OSError covers smtplib's errors (SMTPException derives from it) and refused connections.
    EmailMessage(subject=delivery.subject, body=delivery.body, to=[delivery.to]).send(fail_silently=False)


def _send_webhook(delivery: Delivery) -> None:
    endpoint: WebhookEndpoint | None = delivery.endpoint
    if endpoint is None:
        raise DeliveryFailed("the webhook endpoint was deleted")
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "evfleet-notifications"}
    headers.update(signing.signed_headers(endpoint.secret, body))
    headers[DELIVERY_HEADER] = str(delivery.pk)  # the same on every attempt: a receiver drops a repeat by it
    if urllib.parse.urlsplit(endpoint.url).scheme not in ("http", "https"):
        raise DeliveryFailed(f"{endpoint.url} is not an http(s) URL")
    request = urllib.request.Request(endpoint.url, data=body, headers=headers, method="POST")
    try:
        # The scheme is checked just above (http or https only): no file:// or custom schemes.
        with urllib.request.urlopen(request, timeout=settings.NOTIFICATIONS_WEBHOOK_TIMEOUT_S) as response:  # nosec B310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"{endpoint.url} answered {exc.code}") from exc


# --- The whole round ---------------------------------------------------------------------------------------------


def notifications_run(
    *, now: dt.datetime | None = None, send_in_process: bool = True, force_digests: bool = False
) -> RunSummary:
    """Dispatch new alerts, build due digests, and send the messages: here, one attempt each
    (``send_in_process``, for tests and a round run by hand), or through the retrying Celery task, queued in
    the task outbox with the message (``deliveries_queue``; what beat's round does)."""
    now = now or timezone.now()
    queue_sends = not send_in_process
    summary = alerts_dispatch(now=now, queue_sends=queue_sends)
    digests_build(now=now, force=force_digests, summary=summary, queue_sends=queue_sends)
    if queue_sends:
        stranded_retries_queue()
    if send_in_process:
        for delivery_id in summary.deliveries:
            try:
                sent = delivery_send(delivery_id=delivery_id)
            except DeliveryFailed as exc:
                logger.warning("delivery %s failed: %s", delivery_id, exc)
                summary.failed += 1
            else:
                summary.sent += sent is not None
    return summary
