"""What an organisation publishes to its city: feed settings, NGSI-LD subscriptions and their deliveries."""

from __future__ import annotations

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from fleet.models import Organization
from fleet.scoping import OrganizationScoped


def new_signing_secret() -> str:
    return secrets.token_urlsafe(32)


class FeedSettings(OrganizationScoped, models.Model):
    """How an organisation's GTFS-Realtime feed is published. Without a row: token-protected, no delay."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    gtfs_rt_public = models.BooleanField(
        default=False,
        help_text=_("Publish the GTFS-Realtime vehicle positions without a token (anyone may read them)."),
    )
    position_delay_seconds = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(24 * 3600)],
        help_text=_("Publish positions this many seconds late (0 = live)."),
    )

    class Meta:
        verbose_name = _("city feed settings")
        verbose_name_plural = _("city feed settings")

    def __str__(self) -> str:
        access = _("public") if self.gtfs_rt_public else _("token")
        return f"{self.organization}: {access} GTFS-RT"


class EntityType(models.TextChoices):
    VEHICLE = "Vehicle", "Vehicle"
    EV_CHARGING_STATION = "EVChargingStation", "EVChargingStation"


class NgsiSubscription(OrganizationScoped, models.Model):
    """A city platform's NGSI-LD subscription: entities of one type, pushed to ``endpoint`` when they change.

    Each notification is signed: ``X-Evfleet-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>``.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    description = models.CharField(max_length=200, blank=True)
    entity_type = models.CharField(max_length=40, choices=EntityType.choices)
    endpoint = models.URLField(max_length=500, help_text=_("The city's notification endpoint (HTTP POST)."))
    signing_secret = models.CharField(max_length=100, default=new_signing_secret)
    active = models.BooleanField(default=True)
    throttling_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(5)], help_text=_("At most one notification per this period.")
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["organization", "id"]
        verbose_name = _("NGSI-LD subscription")

    def __str__(self) -> str:
        return f"{self.organization}: {self.entity_type} -> {self.endpoint}"

    @property
    def urn(self) -> str:
        return f"urn:ngsi-ld:Subscription:evfleet:{self.pk}"


class NgsiNotification(OrganizationScoped, models.Model):
    """One notification for a subscription, with its delivery attempts."""

    organization_path = "subscription__organization"

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RETRYING = "retrying", _("Retrying")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    subscription = models.ForeignKey(NgsiSubscription, on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    payload = models.JSONField()
    entity_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("NGSI-LD notification")

    def __str__(self) -> str:
        return f"{self.subscription_id} @ {self.created_at:%Y-%m-%d %H:%M:%S} ({self.status})"
