"""Deliveries are visible in the admin: a manager sees their own e-mails, not another person's."""

import pytest
from django.core import mail

from charging.alert_messages import message
from charging.alerts import alert_raise
from notifications.models import Delivery, NotificationRule
from notifications.services import notifications_run
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_manager_sees_the_deliveries_sent_to_them_and_not_anothers(two_depots, client):
    manager, other = two_depots["manager_a"], two_depots["staff_b"]
    for user in (manager, other):
        user.email, user.is_staff = f"{user.username}@example.org", True
        user.save()
        NotificationRule.objects.create(user=user)
    for depot in (two_depots["depot_a"], two_depots["depot_b"]):
        alert_raise(
            key=f"k{depot.pk}", kind="job_failed", severity="critical", depot=depot,
            organization_id=depot.organization_id,
            says=message("grid_limit_too_low", depot=depot.name, grid_limit_kw=100, vehicles=2),
        )  # fmt: skip
    notifications_run()
    assert len(mail.outbox) == 2
    mine = Delivery.objects.get(to="manager_a@example.org")
    client.force_login(manager)

    listing = client.get("/admin/notifications/delivery/").content.decode()
    page = client.get(f"/admin/notifications/delivery/{mine.pk}/change/")

    assert "The grid limit of Hermosillo (100 kW)" in listing and "Nogales" not in listing
    assert page.status_code == 200 and "sent" in page.content.decode()
    superuser = f.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert "The grid limit of Nogales (100 kW)" in client.get("/admin/notifications/delivery/").content.decode()
