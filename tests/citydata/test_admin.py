"""The city feeds' admin: an organisation's subscriptions and settings are its managers' business only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from citydata.models import EntityType, FeedSettings, NgsiNotification, NgsiSubscription
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_another_organisations_subscriptions_and_settings_stay_hidden(client, two_depots):
    w = two_depots
    other = f.OrganizationFactory(name="Other transit")
    mine = NgsiSubscription.objects.create(
        organization=w["org"], entity_type=EntityType.VEHICLE, endpoint="https://city.example/a"
    )
    theirs = NgsiSubscription.objects.create(
        organization=other, entity_type=EntityType.VEHICLE, endpoint="https://elsewhere.example/b"
    )
    NgsiNotification.objects.create(subscription=theirs, payload={}, status="failed", attempts=7)
    their_settings = FeedSettings.objects.create(organization=other, gtfs_rt_public=True)
    client.force_login(w["manager_a"])

    listed = client.get(reverse("admin:citydata_ngsisubscription_changelist")).content.decode()
    assert "city.example" in listed and "elsewhere.example" not in listed
    assert client.get(reverse("admin:citydata_ngsisubscription_change", args=[mine.pk])).status_code == 200
    for name, obj in (("ngsisubscription", theirs), ("feedsettings", their_settings)):
        response = client.get(reverse(f"admin:citydata_{name}_change", args=[obj.pk]), follow=True)
        assert response.redirect_chain and "elsewhere.example" not in response.content.decode()
    assert "Other transit" not in client.get(reverse("admin:citydata_feedsettings_changelist")).content.decode()
    assert "elsewhere" not in client.get(reverse("admin:citydata_ngsinotification_changelist")).content.decode()
    # Depot staff see the subscription but may not change it (managers' business).
    client.force_login(w["staff_a"])
    response = client.post(
        reverse("admin:citydata_ngsisubscription_change", args=[mine.pk]), {"endpoint": "https://x.example"}
    )
    assert response.status_code == 403
    mine.refresh_from_db()
    assert mine.endpoint == "https://city.example/a"
