"""Tariffs and chargers (charging plans, sessions and alerts join them later)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fleet.models import Depot, Organization
from fleet.scoping import DepotScoped, OrganizationScoped


class Tariff(OrganizationScoped, models.Model):
    """An electricity tariff: time-of-use energy prices by season and day type, plus demand charges.

    It can express CFE's GDMTH: seasons with base / intermedia / punta hours per day type, a capacity
    charge on the demand during punta and a distribution charge on the month's maximum demand.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="tariffs")
    name = models.CharField(max_length=120)
    currency = models.CharField(max_length=3, default="MXN")
    holidays = models.JSONField(default=list, blank=True, help_text=_("Dates (YYYY-MM-DD) priced as Sunday / holiday."))

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="tariff_name_unique")]

    def __str__(self) -> str:
        return self.name


class TariffSeason(models.Model):
    """A part of the year, from a month/day to a month/day inclusive; it may wrap over New Year."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="seasons")
    name = models.CharField(max_length=60)
    starts_month = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(12)])
    starts_day = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(31)])
    ends_month = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(12)])
    ends_day = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(31)])

    class Meta:
        ordering = ["tariff", "starts_month", "starts_day"]
        constraints = [models.UniqueConstraint(fields=["tariff", "name"], name="season_name_unique_per_tariff")]

    def __str__(self) -> str:
        return f"{self.tariff}: {self.name}"


class TariffPeriod(models.Model):
    """Hours of one day type in one season at one energy price. ``ends_at`` 00:00 means midnight."""

    class DayType(models.TextChoices):
        WEEKDAY = "weekday", _("Monday to Friday")
        SATURDAY = "saturday", _("Saturday")
        SUNDAY_HOLIDAY = "sunday_holiday", _("Sunday and holidays")

    season = models.ForeignKey(TariffSeason, on_delete=models.CASCADE, related_name="periods")
    day_type = models.CharField(max_length=16, choices=DayType.choices)
    period = models.CharField(max_length=30, help_text=_("Period name, e.g. base, intermedia, punta."))
    starts_at = models.TimeField()
    ends_at = models.TimeField()
    energy_price_per_kwh = models.DecimalField(max_digits=10, decimal_places=4, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["season", "day_type", "starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(energy_price_per_kwh__gte=0), name="period_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.period} {self.starts_at:%H:%M}-{self.ends_at:%H:%M} ({self.get_day_type_display()})"

    def clean(self) -> None:
        ends_at_midnight = self.ends_at == dt.time(0, 0)
        both_set = self.starts_at is not None and self.ends_at is not None
        if both_set and not ends_at_midnight and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("A period ends after it starts (00:00 means midnight).")})


class DemandCharge(models.Model):
    """A charge per kW of the billing month's highest demand, optionally only inside named periods."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="demand_charges")
    name = models.CharField(max_length=60)
    price_per_kw_month = models.DecimalField(max_digits=10, decimal_places=4, validators=[MinValueValidator(0)])
    applies_in_periods = models.JSONField(
        default=list,
        blank=True,
        help_text=_('Period names where demand counts, e.g. ["punta"]; empty: all hours.'),
    )

    class Meta:
        ordering = ["tariff", "name"]
        constraints = [models.UniqueConstraint(fields=["tariff", "name"], name="demand_charge_name_unique")]

    def __str__(self) -> str:
        return f"{self.tariff}: {self.name}"

    def clean(self) -> None:
        if not (isinstance(self.applies_in_periods, list) and all(isinstance(p, str) for p in self.applies_in_periods)):
            raise ValidationError({"applies_in_periods": _("Give a list of period names.")})


class Charger(DepotScoped, models.Model):
    class Kind(models.TextChoices):
        AC = "ac", _("AC")
        DC = "dc", _("DC")
        PANTOGRAPH = "pantograph", _("Pantograph")

    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        CHARGING = "charging", _("Charging")
        FAULTED = "faulted", _("Faulted")
        OFFLINE = "offline", _("Offline")
        MAINTENANCE = "maintenance", _("Maintenance")

    depot = models.ForeignKey(Depot, on_delete=models.PROTECT, related_name="chargers")
    ocpp_charge_point_id = models.CharField(
        "OCPP charge point id",
        max_length=48,
        unique=True,
        help_text=_("The chargeBoxIdentity the charger uses."),
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    max_kw = models.FloatField(validators=[MinValueValidator(0.1)], help_text=_("Shared by all its connectors."))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.AVAILABLE)

    class Meta:
        ordering = ["depot", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(max_kw__gt=0), name="charger_power_positive"),
            models.UniqueConstraint(fields=["depot", "name"], name="charger_name_unique_per_depot"),
        ]

    def __str__(self) -> str:
        return self.name


class Connector(DepotScoped, models.Model):
    depot_path = "charger__depot"

    class Standard(models.TextChoices):
        CCS2 = "ccs2", "CCS2"
        CCS1 = "ccs1", "CCS1"
        TYPE2 = "type2", _("Type 2 (AC)")
        J1772 = "j1772", "J1772 (AC)"
        OUTLET = "outlet", _("Household outlet")
        PANTOGRAPH = "pantograph", _("Pantograph")

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1)], help_text=_("The OCPP connectorId (1, 2, ...).")
    )
    standard = models.CharField(max_length=12, choices=Standard.choices)
    max_kw = models.FloatField(validators=[MinValueValidator(0.1)])
    status = models.CharField(max_length=12, choices=Charger.Status.choices, default=Charger.Status.AVAILABLE)

    class Meta:
        ordering = ["charger", "connector_id"]
        constraints = [
            models.UniqueConstraint(fields=["charger", "connector_id"], name="connector_id_unique_per_charger"),
            models.CheckConstraint(condition=Q(connector_id__gte=1), name="connector_id_from_one"),
            models.CheckConstraint(condition=Q(max_kw__gt=0), name="connector_power_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.charger} #{self.connector_id}"

    def clean(self) -> None:
        if self.charger_id and self.max_kw and self.max_kw > self.charger.max_kw:
            raise ValidationError(
                {
                    "max_kw": _("A connector cannot deliver more than its charger (%(kw)s kW).")
                    % {"kw": self.charger.max_kw}
                }
            )
