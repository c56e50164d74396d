"""Alerts reach people by e-mail: who is told (rules, depot scoping), once, at once or in a digest."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from charging.alert_messages import message
from charging.alerts import alert_raise
from jobs.models import OutboxTask
from notifications.models import AlertDispatch, Delivery, Notification, NotificationRule
from notifications.services import alerts_claim, notifications_run
from notifications.tasks import delivery_send_task
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(two_depots):
    for name in ("manager_a", "staff_b"):
        user = two_depots[name]
        user.email = f"{name}@example.org"
        user.save()
    return two_depots


BUS_7_SHORT = message("vehicle_short", vehicle="Bus 7", shortfall_kwh=20)


def _raise(depot, key="plan:x", severity="critical", kind="vehicle_not_ready", says=BUS_7_SHORT):
    return alert_raise(
        key=key, kind=kind, severity=severity, depot=depot, organization_id=depot.organization_id, says=says
    )


def test_a_new_alert_is_mailed_once_to_whoever_asked_for_it(world):
    NotificationRule.objects.create(user=world["manager_a"])  # every depot they may view, warning and above
    alert = _raise(world["depot_a"])

    summary = notifications_run()
    again = notifications_run()

    assert [m.to for m in mail.outbox] == [["manager_a@example.org"]]
    assert alert.text in mail.outbox[0].subject and "Hermosillo" in mail.outbox[0].body
    assert (summary.sent, again.sent, again.alerts_dispatched) == (1, 0, 0)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.is_digest) == ("sent", 1, False)
    assert list(delivery.notifications.values_list("alert_id", flat=True)) == [alert.pk]


def test_nobody_hears_of_a_depot_they_may_not_view(world):
    NotificationRule.objects.create(user=world["staff_b"])  # staff of Nogales only
    _raise(world["depot_a"], key="a")
    _raise(world["depot_b"], key="b", says=message("vehicle_short", vehicle="Nogales bus", shortfall_kwh=12))

    notifications_run()

    assert [m.subject for m in mail.outbox] == ["[evfleet] Critical: Nogales bus will leave 12 kWh short."]
    assert mail.outbox[0].to == ["staff_b@example.org"]


def test_rules_filter_by_depot_kind_and_severity(world):
    manager = world["manager_a"]
    f.MembershipFactory(user=manager, depot=world["depot_b"], role="viewer")
    NotificationRule.objects.create(user=manager, depot=world["depot_b"], kinds=["charger_fault"])
    _raise(world["depot_a"], key="1", kind="charger_fault")  # another depot than the rule's
    _raise(world["depot_b"], key="2", kind="vehicle_not_ready")  # another kind
    _raise(world["depot_b"], key="3", kind="charger_fault", severity="info")  # below warning
    _raise(
        world["depot_b"],
        key="4",
        kind="charger_fault",
        says=message("charger_faulted", equipment="DC 1", depot="Nogales"),
    )

    notifications_run()

    assert [m.subject for m in mail.outbox] == ["[evfleet] Critical: Charger DC 1 at Nogales is faulted."]


def test_a_digest_rule_sends_one_message_after_the_digest_interval(world, settings):
    NotificationRule.objects.create(user=world["manager_a"], mode="digest")
    for n in range(3):
        _raise(world["depot_a"], key=f"k{n}", says=message("vehicle_short", vehicle=f"Bus {n}", shortfall_kwh=n))
    now = timezone.now()

    notifications_run(now=now)
    assert mail.outbox == []

    notifications_run(now=now + dt.timedelta(minutes=settings.NOTIFICATIONS_DIGEST_MINUTES + 1))

    assert len(mail.outbox) == 1
    assert "3 alert(s)" in mail.outbox[0].subject
    assert all(f"Bus {n} will leave {n} kWh short." in mail.outbox[0].body for n in range(3))
    assert set(Notification.objects.values_list("status", flat=True)) == {"digested"}


def test_an_alert_is_claimed_by_one_dispatcher_only(world):
    _raise(world["depot_a"])
    now = timezone.now()

    _first_token, first = alerts_claim(now=now)
    _second_token, second = alerts_claim(now=now)

    assert len(first) == 1 and second == []
    # A claim that was never finished (its worker died) is taken over after the lease.
    _third_token, third = alerts_claim(now=now + dt.timedelta(minutes=30))
    assert [c.alert_id for c in third] == [first[0].alert_id]


def test_a_taken_over_claim_does_not_mail_twice(world):
    NotificationRule.objects.create(user=world["manager_a"])
    _raise(world["depot_a"])
    now = timezone.now()
    notifications_run(now=now)
    AlertDispatch.objects.update(dispatched_at=None)  # as if the worker died before marking it done

    notifications_run(now=now + dt.timedelta(minutes=30))

    assert len(mail.outbox) == 1


def test_the_periodic_round_queues_each_message_for_the_retrying_task_through_the_outbox(
    world, django_capture_on_commit_callbacks
):
    NotificationRule.objects.create(user=world["manager_a"])
    _raise(world["depot_a"], key="a")
    _raise(world["depot_a"], key="b", says=message("vehicle_short", vehicle="Bus 8", shortfall_kwh=8))

    with django_capture_on_commit_callbacks(execute=False):
        summary = notifications_run(send_in_process=False)

    # One outbox row per message, written with it (sent to Celery after the commit, or when Redis is back).
    rows = OutboxTask.objects.order_by("pk")
    assert [(row.task_name, row.args) for row in rows] == [
        (delivery_send_task.name, [delivery_id]) for delivery_id in summary.deliveries
    ]
    assert [row.dedupe_key for row in rows] == [f"notifications.delivery:delivery={d}" for d in summary.deliveries]
    assert mail.outbox == []  # nothing sent before the transaction commits
    for row in rows:
        delivery_send_task.run(*row.args)  # the worker's side, in-process
    assert sorted(m.subject for m in mail.outbox) == [
        "[evfleet] Critical: Bus 7 will leave 20 kWh short.",
        "[evfleet] Critical: Bus 8 will leave 8 kWh short.",
    ]


def test_the_periodic_round_queues_a_digest_once_through_the_outbox(world, settings):
    NotificationRule.objects.create(user=world["manager_a"], mode="digest")
    for n in range(3):
        _raise(world["depot_a"], key=f"k{n}", says=message("vehicle_short", vehicle=f"Bus {n}", shortfall_kwh=n + 1))
    now = timezone.now()
    later = now + dt.timedelta(minutes=settings.NOTIFICATIONS_DIGEST_MINUTES + 1)

    notifications_run(now=now, send_in_process=False)
    assert not OutboxTask.objects.exists()  # waiting for the digest: no message yet
    first = notifications_run(now=later, send_in_process=False)
    again = notifications_run(now=later, send_in_process=False)

    [digest] = first.deliveries
    assert again.deliveries == []
    [row] = OutboxTask.objects.all()
    assert (row.task_name, row.args) == (delivery_send_task.name, [digest])
    assert Delivery.objects.get(pk=digest).is_digest


def test_beat_runs_the_round_every_minute_with_a_task_that_exists(settings):
    from config.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["notifications.run"]

    assert entry["task"] in app.tasks
    assert entry["schedule"] == 60.0 and entry["options"]["expires"] < 60
