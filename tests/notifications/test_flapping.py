"""A flapping connector (faulted and restored 50 times) must not send a hundred messages."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from charging.events import depot_event_record
from charging.models import Alert
from notifications.models import NotificationRule, WebhookEndpoint
from notifications.services import notifications_run
from tests import factories as f

pytestmark = pytest.mark.django_db

FLAPS = 50


def test_fifty_flaps_give_one_message_at_once_and_one_digest_per_channel(two_depots, receiver, settings):
    depot, manager = two_depots["depot_a"], two_depots["manager_a"]
    manager.email = "manager@example.org"
    manager.save()
    endpoint = WebhookEndpoint.objects.create(
        organization=two_depots["org"], name="ops", url=receiver.url, secret=receiver.secret
    )
    NotificationRule.objects.create(user=manager, by_email=True, webhook=endpoint)
    connector = f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, name="DC 3"), connector_id=1)
    for n in range(FLAPS):
        depot_event_record(depot=depot, kind="connector_faulted", client_event_id=f"f{n}", connector=connector)
        depot_event_record(depot=depot, kind="connector_restored", client_event_id=f"r{n}", connector=connector)
    assert Alert.objects.filter(kind="charger_fault", depot=depot).count() == FLAPS
    now = timezone.now()

    notifications_run(now=now)
    at_once = (len(mail.outbox), len(receiver.requests))
    notifications_run(now=now + dt.timedelta(minutes=5))  # nothing new, the digest is not due
    notifications_run(now=now + dt.timedelta(minutes=settings.NOTIFICATIONS_DIGEST_MINUTES + 1))

    assert at_once == (1, 1)
    assert (len(mail.outbox), len(receiver.requests)) == (2, 2)
    digest_mail, digest_hook = mail.outbox[1], receiver.requests[1].body
    assert f"raised {FLAPS - 1} times" in digest_mail.body and "now resolved" in digest_mail.body
    assert digest_hook["type"] == "digest"
    assert [(g["count"], g["latest"]["status"]) for g in digest_hook["groups"]] == [(FLAPS - 1, "resolved")]
