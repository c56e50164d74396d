"""Two dispatchers running at once on PostgreSQL (two threads, two connections) never notify an alert twice."""

import threading

import pytest
from django.db import connection

from charging.alert_messages import message
from charging.alerts import alert_raise
from notifications.models import AlertDispatch, Notification, NotificationRule
from notifications.services import alerts_dispatch
from tests import factories as f

ALERTS = 40


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_split_the_alerts_without_overlap(postgres):
    depot = f.DepotFactory()
    user = f.UserFactory(email="ops@example.org", is_superuser=True)
    NotificationRule.objects.create(user=user, mode="digest")
    for n in range(ALERTS):
        alert_raise(
            key=f"k{n}", kind="job_failed", severity="critical", depot=depot,
            organization_id=depot.organization_id, says=message("vehicle_short", vehicle=f"Bus {n}", shortfall_kwh=n),
        )  # fmt: skip
    start = threading.Barrier(2)
    counts, errors = [], []

    def dispatcher():
        try:
            start.wait()
            counts.append(alerts_dispatch().alerts_dispatched)
        except Exception as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(counts) == ALERTS
    assert Notification.objects.count() == ALERTS  # one per alert: none notified twice (or lost)
    assert AlertDispatch.objects.filter(dispatched_at__isnull=False).count() == ALERTS
