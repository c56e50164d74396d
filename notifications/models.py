"""Who is told about which alerts, how, and what was sent.

- ``NotificationRule``: one person's wish, per depot or for every depot they may view: which alert kinds
  and severities, by e-mail and/or to a webhook, at once or in a digest.
- ``WebhookEndpoint``: an organisation's receiver (a URL and the secret its requests are signed with).
- ``AlertDispatch``: an alert's claim ticket; the dispatcher claims alerts with a conditional UPDATE, so two
  workers never notify the same alert.
- ``Notification``: one alert for one recipient on one channel, and how it went out (at once, in a digest,
  folded into a digest because the same thing was reported a moment ago).
- ``Delivery``: one message sent (an e-mail or a webhook request), with its attempts: what the admin shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from charging.models import Alert
from fleet.models import Depot, Organization
from fleet.scoping import OrganizationScoped
from notifications.signing import new_secret

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

SEVERITY_RANK: dict[str, int] = {Alert.Severity.INFO: 0, Alert.Severity.WARNING: 1, Alert.Severity.CRITICAL: 2}


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhook")


class WebhookEndpoint(OrganizationScoped, models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=100,
        default=new_secret,
        help_text=_("Requests carry an HMAC-SHA256 signature made with this secret (docs/notifications.md)."),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="webhook_name_unique")]

    def __str__(self) -> str:
        return self.name


class NotificationRule(models.Model):
    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", _("At once (repeats folded into a digest)")
        DIGEST = "digest", _("Digest only")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_rules")
    depot = models.ForeignKey(
        Depot,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty: every depot the user may view."),
    )
    kinds = models.JSONField(default=list, blank=True, help_text=_("Alert kinds to send; empty: every kind."))
    min_severity = models.CharField(max_length=10, choices=Alert.Severity.choices, default=Alert.Severity.WARNING)
    by_email = models.BooleanField(default=True)
    webhook = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="rules")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.IMMEDIATE)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "depot"]
        constraints = [
            models.CheckConstraint(condition=Q(by_email=True) | Q(webhook__isnull=False), name="rule_has_a_channel"),
        ]

    def __str__(self) -> str:
        depots = self.depot or _("every depot")  # outside the f-string, where makemessages can read it
        return f"{self.user} - {depots}"

    def clean(self) -> None:
        errors: dict[str, StrOrPromise] = {}
        if not self.by_email and self.webhook_id is None:
            errors["by_email"] = _("Choose e-mail, a webhook or both.")
        valid_kinds = set(Alert.Kind.values)
        if not (isinstance(self.kinds, list) and all(k in valid_kinds for k in self.kinds)):
            errors["kinds"] = _("Give a list of alert kinds: %(kinds)s.") % {"kinds": ", ".join(sorted(valid_kinds))}
        webhook, depot = (self.webhook, self.depot) if self.webhook_id and self.depot_id else (None, None)
        if webhook is not None and depot is not None and webhook.organization_id != depot.organization_id:
            errors["webhook"] = _("The webhook belongs to another organisation.")
        if errors:
            raise ValidationError(errors)

    def matches(self, alert: Alert) -> bool:
        """Kind, severity and depot; whether the user may see the alert is checked by the dispatcher."""
        if not self.is_active or (self.depot_id is not None and alert.depot_id != self.depot_id):
            return False
        if self.kinds and alert.kind not in self.kinds:
            return False
        return SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[self.min_severity]


class AlertDispatch(models.Model):
    alert = models.OneToOneField(Alert, on_delete=models.CASCADE, related_name="+")
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["dispatched_at", "claimed_at"])]

    def __str__(self) -> str:
        return _("dispatch of alert %(alert)s") % {"alert": self.alert_id}


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        RETRYING = "retrying", _("Failed, will retry")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    channel = models.CharField(max_length=10, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    to = models.CharField(max_length=500, help_text=_("E-mail address or URL."))
    is_digest = models.BooleanField(default=False)
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text=_("The e-mail text, or the JSON the webhook request carries."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sending_since = models.DateTimeField(
        null=True, blank=True, help_text=_("When the current attempt began: a worker lost mid-send leaves it old.")
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = _("deliveries")
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return _("%(channel)s to %(to)s: %(subject)s") % {
            "channel": self.get_channel_display(),
            "to": self.to,
            "subject": self.subject,
        }


class Notification(models.Model):
    class Status(models.TextChoices):
        SENT = "sent", _("Sent at once")
        DIGEST = "digest", _("Waiting for the digest")
        FOLDED = "folded", _("Repeat: waiting for the digest")
        DIGESTED = "digested", _("Sent in a digest")

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200, help_text=_("The alert's key: what repeats are recognised by."))
    channel = models.CharField(max_length=10, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    delivery = models.ForeignKey(
        Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    claim_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "user"], condition=Q(channel="email"), name="one_email_per_alert_and_user"
            ),
            models.UniqueConstraint(
                fields=["alert", "endpoint"], condition=Q(channel="webhook"), name="one_webhook_per_alert_and_endpoint"
            ),
            models.CheckConstraint(
                condition=(Q(channel="email", user__isnull=False) | Q(channel="webhook", endpoint__isnull=False)),
                name="notification_has_its_recipient",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "channel"]),
            models.Index(fields=["key", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} -> {self.user or self.endpoint} ({self.channel})"
