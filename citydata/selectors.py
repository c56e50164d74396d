"""Reads of the city feeds: which vehicles and stations a request may publish, and an organisation's settings."""

from __future__ import annotations

from django.db.models import QuerySet

from citydata.models import FeedSettings, NgsiSubscription
from fleet.models import Organization, Vehicle
from fleet.scoping import Action, restrict
from fleet.selectors import vehicle_queryset


def feed_settings(organization: Organization) -> FeedSettings:
    """The organisation's settings, or the defaults (token-protected, no delay) when it has none."""
    return FeedSettings.objects.filter(organization=organization).first() or FeedSettings(organization=organization)


def public_feed_organization(slug: str) -> Organization | None:
    """The organisation named ``slug`` if it publishes its GTFS-Realtime feed without a token."""
    settings = FeedSettings.objects.select_related("organization").filter(organization__slug=slug, gtfs_rt_public=True)
    found = settings.first()
    return found.organization if found else None


def feed_vehicles(user, organization: Organization, *, public: bool) -> QuerySet[Vehicle]:
    """The organisation's vehicles: all of them for its public feed, else those in the user's depots."""
    vehicles = vehicle_queryset().filter(organization=organization)
    return vehicles if public else restrict(vehicles, user, Action.VIEW)


def subscriptions_to_notify() -> QuerySet[NgsiSubscription]:
    return NgsiSubscription.objects.filter(active=True).select_related("organization")
