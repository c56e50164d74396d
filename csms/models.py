"""What the central system knows about the chargers it talks to: credentials, link state, transactions, meter
samples, id tokens, and the delivery of each plan's charging profiles (the outbox).

The charger's OCPP identity is ``charging.Charger.ocpp_charge_point_id`` (one home for it); this app keeps
what only the OCPP link needs, one-to-one with the charger.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fleet.scoping import DepotScoped


class OcppVersion(models.TextChoices):
    V16 = "1.6", "OCPP 1.6J"
    V201 = "2.0.1", "OCPP 2.0.1"


class ChargePoint(DepotScoped, models.Model):
    """The OCPP side of a charger: its password (hashed), what it said at boot, and whether it is connected."""

    depot_path = "charger__depot"

    charger = models.OneToOneField("charging.Charger", on_delete=models.CASCADE, related_name="charge_point")
    password_hash = models.CharField(max_length=256, blank=True, help_text=_("Django password hash; empty: none."))
    password_set_at = models.DateTimeField(null=True, blank=True)
    ocpp_version = models.CharField(max_length=8, choices=OcppVersion.choices, blank=True)
    connected = models.BooleanField(default=False)
    connected_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text=_("Last message of any kind."))
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    booted_at = models.DateTimeField(null=True, blank=True)
    vendor = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=50, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    serial_number = models.CharField(max_length=50, blank=True)
    connector_states = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Last OCPP status per connector id: {"1": {"status": ..., "error_code": ..., "at": ...}}.'),
    )

    class Meta:
        ordering = ["charger__depot", "charger__name"]

    def __str__(self) -> str:
        return self.charger.ocpp_charge_point_id


class IdToken(DepotScoped, models.Model):
    """An id tag (1.6) or id token (2.0.1) that identifies a vehicle at a charger: its RFID card, or the
    ISO 15118 contract id (eMAID) its onboard unit presents."""

    depot_path = "vehicle__home_depot"
    organization_path = "vehicle__organization"

    class Kind(models.TextChoices):
        RFID = "rfid", _("RFID card")
        ISO15118 = "iso15118", _("ISO 15118 contract id (eMAID)")
        CENTRAL = "central", _("Central (set by the system)")

    token = models.CharField(max_length=36, unique=True, help_text=_("1.6 id tags have at most 20 characters."))
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RFID)
    vehicle = models.ForeignKey("fleet.Vehicle", on_delete=models.CASCADE, related_name="id_tokens")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["token"]

    def __str__(self) -> str:
        return self.token


class Transaction(DepotScoped, models.Model):
    """A charging transaction as the charger reports it; once it stops it becomes a ``ChargingSession``.

    ``transaction_id`` is ours for 1.6 (the row's id, given in the StartTransaction answer) and the charger's
    for 2.0.1. ``start_key`` makes a re-sent StartTransaction return the same transaction.
    """

    depot_path = "charge_point__charger__depot"

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="transactions")
    connector = models.ForeignKey(
        "charging.Connector", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    connector_number = models.PositiveSmallIntegerField(help_text=_("The connector id (1.6) or EVSE id (2.0.1)."))
    transaction_id = models.CharField(max_length=64, blank=True)
    start_key = models.CharField(max_length=200, blank=True)
    id_tag = models.CharField(max_length=36, blank=True)
    vehicle = models.ForeignKey("fleet.Vehicle", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    meter_start_wh = models.FloatField(null=True, blank=True)
    meter_stop_wh = models.FloatField(null=True, blank=True)
    start_soc_pct = models.FloatField(null=True, blank=True)
    last_soc_pct = models.FloatField(null=True, blank=True)
    max_power_w = models.FloatField(null=True, blank=True)
    soc_sent_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a SoC of this transaction last went to the vehicle's live state.")
    )
    stop_reason = models.CharField(max_length=40, blank=True)
    session = models.OneToOneField(
        "charging.ChargingSession", on_delete=models.SET_NULL, null=True, blank=True, related_name="ocpp_transaction"
    )
    note = models.CharField(max_length=300, blank=True, help_text=_("Why no session was recorded, if none was."))

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "transaction_id"],
                condition=~Q(transaction_id=""),
                name="csms_transaction_id_unique_per_charge_point",
            ),
            models.UniqueConstraint(
                fields=["charge_point", "start_key"], condition=~Q(start_key=""), name="csms_transaction_start_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.charge_point} tx {self.transaction_id}"

    @property
    def energy_kwh(self) -> float | None:
        if self.meter_start_wh is None or self.meter_stop_wh is None:
            return None
        return max(self.meter_stop_wh - self.meter_start_wh, 0.0) / 1000.0


class MeterSample(models.Model):
    """One sampled moment of a connector: energy register, power, SoC (whatever the charger sent)."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="meter_samples")
    connector_number = models.PositiveSmallIntegerField()
    transaction = models.ForeignKey(
        Transaction, on_delete=models.CASCADE, null=True, blank=True, related_name="meter_samples"
    )
    measured_at = models.DateTimeField()
    energy_wh = models.FloatField(null=True, blank=True)
    power_w = models.FloatField(null=True, blank=True)
    soc_pct = models.FloatField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["measured_at"]
        constraints = [
            # A re-sent MeterValues stores nothing twice.
            models.UniqueConstraint(
                fields=["charge_point", "connector_number", "measured_at"], name="csms_one_sample_per_moment"
            ),
        ]
        indexes = [models.Index(fields=["transaction", "measured_at"])]

    def __str__(self) -> str:
        when = f"{self.measured_at:%Y-%m-%d %H:%M:%S}"
        return _("%(charge_point)s #%(connector)s at %(when)s") % {
            "charge_point": self.charge_point,
            "connector": self.connector_number,
            "when": when,
        }


class ProfileDelivery(DepotScoped, models.Model):
    """The outbox: one row per plan and charger, from the moment the plan is seen until the charger answers.

    Rows survive a restart of the central system; a charger that is offline gets its row's profiles when it
    reconnects, unless a newer plan has superseded the row by then.
    """

    depot_path = "charge_point__charger__depot"

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")
        NO_ANSWER = "no_answer", _("No answer")
        ERROR = "error", _("Answered with an error")
        SUPERSEDED = "superseded", _("Superseded by a newer plan")

    plan = models.ForeignKey("charging.ChargingPlan", on_delete=models.CASCADE, related_name="profile_deliveries")
    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answers = models.JSONField(default=dict, blank=True, help_text=_("Per connector id: the charger's answer."))

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "charge_point"], name="csms_one_delivery_per_plan_and_charger")
        ]
        indexes = [models.Index(fields=["charge_point", "status"])]
        verbose_name_plural = "profile deliveries"

    def __str__(self) -> str:
        return f"{self.plan} -> {self.charge_point}: {self.status}"


class PlanScan(models.Model):
    """A plan the central system has turned into deliveries (the scan's memory, so it survives restarts)."""

    plan = models.OneToOneField("charging.ChargingPlan", on_delete=models.CASCADE, related_name="csms_scan")
    scanned_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return _("%(plan)s scanned") % {"plan": self.plan}
