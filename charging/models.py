"""Tariffs and chargers (charging plans, sessions and alerts join them later)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from charging.alert_messages import render_message
from charging.readiness import is_ready
from charging.tariffs import parse_holiday_calendar
from fleet.models import ConnectorStandard, Depot, Organization
from fleet.scoping import DepotScoped, OrganizationScoped


def validate_holiday_calendar(value: str) -> None:
    try:
        parse_holiday_calendar(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class Tariff(OrganizationScoped, models.Model):
    """An electricity tariff: time-of-use energy prices by season and day type, plus demand charges.

    It can express CFE's GDMTH: seasons with base / intermedia / punta hours per day type, a capacity
    charge on the demand during punta and a distribution charge on the month's maximum demand.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="tariffs")
    name = models.CharField(max_length=120)
    currency = models.CharField(max_length=3, default="MXN")
    holidays = models.JSONField(default=list, blank=True, help_text=_("Dates (YYYY-MM-DD) priced as Sunday / holiday."))
    holiday_calendar = models.CharField(
        max_length=12,
        blank=True,
        validators=[validate_holiday_calendar],
        help_text=_(
            "Public holidays priced as Sunday / holiday as well: a country, optionally with its state "
            '("MX", "DE-NW"). Empty: only the dates above.'
        ),
    )

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="tariff_name_unique")]

    def __str__(self) -> str:
        return self.name


class TariffSeason(OrganizationScoped, models.Model):
    """A part of the year, from a month/day to a month/day inclusive; it may wrap over New Year."""

    organization_path = "tariff__organization"

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="seasons")
    name = models.CharField(max_length=60)
    starts_month = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(12)])
    starts_day = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(31)])
    ends_month = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(12)])
    ends_day = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(31)])

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords()

    class Meta:
        ordering = ["tariff", "starts_month", "starts_day"]
        constraints = [models.UniqueConstraint(fields=["tariff", "name"], name="season_name_unique_per_tariff")]

    def __str__(self) -> str:
        return f"{self.tariff}: {self.name}"


class TariffPeriod(OrganizationScoped, models.Model):
    """Hours of one day type in one season at one energy price. ``ends_at`` 00:00 means midnight."""

    organization_path = "season__tariff__organization"

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

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords()

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


class DemandCharge(OrganizationScoped, models.Model):
    """A charge per kW of the billing month's highest demand, optionally only inside named periods."""

    organization_path = "tariff__organization"

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="demand_charges")
    name = models.CharField(max_length=60)
    price_per_kw_month = models.DecimalField(max_digits=10, decimal_places=4, validators=[MinValueValidator(0)])
    applies_in_periods = models.JSONField(
        default=list,
        blank=True,
        help_text=_('Period names where demand counts, e.g. ["punta"]; empty: all hours.'),
    )

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords()

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

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords()

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

    # The vocabulary is fleet's: vehicle models declare the standards they accept (fleet.models.ConnectorStandard).
    Standard = ConnectorStandard

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1)], help_text=_("The OCPP connectorId (1, 2, ...).")
    )
    standard = models.CharField(max_length=12, choices=Standard.choices)
    max_kw = models.FloatField(validators=[MinValueValidator(0.1)])
    status = models.CharField(max_length=12, choices=Charger.Status.choices, default=Charger.Status.AVAILABLE)

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords()

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


class ChargingPlan(DepotScoped, models.Model):
    """The optimizer's answer for one depot night, kept with its input so it can be explained and replayed.

    Re-planning adds a version and supersedes the active one: history is never overwritten, and the
    database allows one active plan per depot and night.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUPERSEDED = "superseded", _("Superseded")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        NIGHTLY = "nightly", _("Nightly planning")
        EVENT = "event", _("Re-plan after an event")
        MANUAL = "manual", _("Re-plan on request")

    depot = models.ForeignKey(Depot, on_delete=models.PROTECT, related_name="charging_plans")
    service_night = models.DateField(help_text=_("Local date of the evening the night starts."))
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.NIGHTLY)
    trigger_detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    horizon_start = models.DateTimeField()
    slot_minutes = models.PositiveSmallIntegerField()
    num_slots = models.PositiveSmallIntegerField()
    method = models.CharField(max_length=60, blank=True)
    solver_status = models.CharField(max_length=200, blank=True)
    solve_seconds = models.FloatField(default=0)
    energy_kwh = models.FloatField(default=0)
    energy_cost = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    demand_cost = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    peak_kw = models.FloatField(default=0)
    site_limit_kw = models.FloatField(
        default=0, help_text=_("Lowest site limit over the night (grid minus base load).")
    )
    shortfall_kwh = models.FloatField(default=0)
    vehicles_short = models.PositiveIntegerField(default=0)
    lp_bound = models.FloatField(null=True, blank=True, help_text=_("The LP relaxation's lower bound on the cost."))
    bound = models.FloatField(
        null=True,
        blank=True,
        help_text=_("Best proven lower bound on the cost: the LP relaxation's, or the exact MILP's when higher."),
    )
    gap_pct = models.FloatField(null=True, blank=True, help_text=_("Cost above the best proven bound, in %."))
    optimal = models.BooleanField(
        default=False,
        help_text=_("Proven optimal: the cost meets the bound. Otherwise a feasible plan, gap_pct above."),
    )
    month_peaks_kw = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "Per demand charge (by name), the month's peak demand in its periods once this plan has run, in kW: "
            "what later nights of the month count as already paid."
        ),
    )
    instance = models.JSONField(help_text=_("The optimizer input, as documented in docs/optimizer.md."))
    error = models.TextField(blank=True)

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords(excluded_fields=["instance"])  # the optimizer input: large, never edited

    class Meta:
        ordering = ["-service_night", "depot", "-version"]
        # The admin's list (newest night first, then the newest plan) without sorting every plan of every night.
        indexes = [models.Index(fields=["service_night", "id"], name="plan_night_newest")]
        constraints = [
            models.UniqueConstraint(fields=["depot", "service_night", "version"], name="plan_version_unique"),
            models.UniqueConstraint(
                fields=["depot", "service_night"],
                condition=Q(status="active"),
                name="one_active_plan_per_depot_night",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.depot} {self.service_night} v{self.version}"

    @property
    def total_cost(self):
        return self.energy_cost + self.demand_cost


class PlannedCharge(DepotScoped, models.Model):
    """One vehicle in a plan: its connector, its power in every slot, and whether it will be ready."""

    depot_path = "plan__depot"

    plan = models.ForeignKey(ChargingPlan, on_delete=models.CASCADE, related_name="charges")
    vehicle = models.ForeignKey("fleet.Vehicle", on_delete=models.PROTECT, related_name="planned_charges")
    connector = models.ForeignKey(
        Connector, on_delete=models.SET_NULL, null=True, blank=True, related_name="planned_charges"
    )
    arrival_at = models.DateTimeField()
    departure_at = models.DateTimeField()
    plug_in_at = models.DateTimeField(null=True, blank=True)
    plug_out_at = models.DateTimeField(null=True, blank=True)
    arrival_soc_pct = models.FloatField()
    required_soc_pct = models.FloatField()
    departure_soc_pct = models.FloatField()
    energy_kwh = models.FloatField(default=0)
    shortfall_kwh = models.FloatField(default=0)
    shortfall_reason = models.CharField(max_length=200, blank=True)
    power_kw = models.JSONField(default=list, help_text=_("Grid-side kW in each slot of the plan's horizon."))
    sources = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "Where the planned values came from: the arrival SoC's source and the consumption's "
            "(charging/measured.py); empty for plans stored before sources were recorded."
        ),
    )

    class Meta:
        ordering = ["plan", "departure_at"]
        constraints = [models.UniqueConstraint(fields=["plan", "vehicle"], name="one_charge_per_vehicle_in_plan")]

    def __str__(self) -> str:
        return _("%(vehicle)s in %(plan)s") % {"vehicle": self.vehicle, "plan": self.plan}

    @property
    def ready(self) -> bool:
        return is_ready(self.shortfall_kwh)


class Alert(DepotScoped, models.Model):
    """Something a person must look at. ``key`` de-duplicates: re-planning does not repeat an open alert."""

    depot_path = "depot"
    organization_path = "organization"

    class Kind(models.TextChoices):
        VEHICLE_NOT_READY = "vehicle_not_ready", _("Vehicle will not be ready")
        GRID_LIMIT_TOO_LOW = "grid_limit_too_low", _("Grid limit too low for the night")
        NO_COMPATIBLE_CONNECTOR = "no_compatible_connector", _("No compatible connector")
        ABNORMAL_AGEING = "abnormal_ageing", _("Abnormal battery ageing")
        CHARGER_FAULT = "charger_fault", _("Charger fault")
        JOB_FAILED = "job_failed", _("Overnight job failed")

    class Severity(models.TextChoices):
        INFO = "info", _("Info")
        WARNING = "warning", _("Warning")
        CRITICAL = "critical", _("Critical")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alerts")
    depot = models.ForeignKey(Depot, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    key = models.CharField(max_length=200, help_text=_("What the alert is about; one open alert per key."))
    # What the alert says is stored as a code and parameters and worded when shown, in the reader's language
    # (charging.alert_messages). ``message`` is the English text of alerts stored before codes existed.
    message_code = models.CharField(max_length=60, blank=True)
    message_params = models.JSONField(default=dict, blank=True)
    message = models.CharField(
        max_length=500, blank=True, help_text=_("The text of an alert stored before alerts had message codes.")
    )
    details = models.JSONField(default=dict, blank=True)
    vehicle = models.ForeignKey("fleet.Vehicle", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    pack = models.ForeignKey("batteries.BatteryPack", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    plan = models.ForeignKey(ChargingPlan, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=~Q(status="resolved"), name="one_unresolved_alert_per_key"
            ),
        ]
        indexes = [
            models.Index(fields=["depot", "status"]),
            # The admin's list, newest first (the admin adds "-id"), without sorting every alert of every night.
            models.Index(fields=["created_at", "id"], name="alert_newest"),
        ]

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        """What the alert says, in the active language (an old row without a code: its stored English text)."""
        return render_message(self.message_code, self.message_params) if self.message_code else self.message


class DepotEvent(DepotScoped, models.Model):
    """Something depot staff (or a gateway) report during the night; each one asks for a re-plan.

    ``client_event_id`` makes re-sending safe: the same id for the same depot is the same event.
    """

    class Kind(models.TextChoices):
        VEHICLE_ARRIVED = "vehicle_arrived", _("Vehicle arrived")
        VEHICLE_PLUGGED_IN = "vehicle_plugged_in", _("Vehicle plugged in")
        VEHICLE_PLUGGED_OUT = "vehicle_plugged_out", _("Vehicle plugged out")
        CONNECTOR_FAULTED = "connector_faulted", _("Connector faulted")
        CONNECTOR_RESTORED = "connector_restored", _("Connector back in service")
        BLOCK_CHANGED = "block_changed", _("Block changed")
        BLOCK_CANCELLED = "block_cancelled", _("Block cancelled")

    depot = models.ForeignKey(Depot, on_delete=models.CASCADE, related_name="events")
    service_night = models.DateField()
    kind = models.CharField(max_length=24, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    client_event_id = models.CharField(max_length=64)
    vehicle = models.ForeignKey("fleet.Vehicle", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    block = models.ForeignKey("fleet.Block", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    soc_pct = models.FloatField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(fields=["depot", "client_event_id"], name="depot_event_id_unique"),
            models.CheckConstraint(
                condition=Q(soc_pct__isnull=True) | Q(soc_pct__gte=0, soc_pct__lte=100), name="event_soc_is_percent"
            ),
        ]
        indexes = [
            models.Index(fields=["depot", "service_night"]),
            # The admin's list, newest first (the admin adds "-id"), without sorting every event of every night.
            models.Index(fields=["occurred_at", "id"], name="depot_event_newest"),
        ]

    def __str__(self) -> str:
        when = f"{self.occurred_at:%Y-%m-%d %H:%M}"
        return _("%(kind)s at %(depot)s (%(when)s)") % {
            "kind": self.get_kind_display(),
            "depot": self.depot,
            "when": when,
        }


class ChargingSession(DepotScoped, models.Model):
    """A charge that actually happened: posted by depot staff or a charger gateway, or found in telemetry.

    Sessions away from any depot (a car on an outlet) have no depot and belong to the vehicle's
    organisation. ``external_id`` is the sender's id for the session (for telemetry: derived from the
    vehicle and the start), so re-sending is safe. ``cost`` is the energy priced at the tariff, minute by
    minute; it is empty when no tariff applies, and ``cost_note`` says why.
    """

    depot_path = "depot"
    organization_path = "vehicle__organization"

    class Source(models.TextChoices):
        STAFF = "staff", _("Depot staff")
        CHARGER_GATEWAY = "charger_gateway", _("Charger gateway")
        TELEMETRY = "telemetry", _("Detected from telemetry")

    depot = models.ForeignKey(
        Depot,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="charging_sessions",
        help_text=_("Empty for a charge away from any depot."),
    )
    vehicle = models.ForeignKey("fleet.Vehicle", on_delete=models.PROTECT, related_name="charging_sessions")
    connector = models.ForeignKey(
        Connector, on_delete=models.SET_NULL, null=True, blank=True, related_name="charging_sessions"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    external_id = models.CharField(max_length=64, help_text=_("The sender's id for this session."))
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    energy_kwh = models.FloatField(validators=[MinValueValidator(0)], help_text=_("Energy drawn from the grid."))
    start_soc_pct = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)])
    end_soc_pct = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)])
    max_kw = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    meter_readings = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "The charger's meter during the session: [moment, kWh since the start] pairs (OCPP MeterValues); "
            "empty when none were reported."
        ),
    )
    cost = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    cost_note = models.CharField(max_length=200, blank=True, help_text=_("Why the cost is empty, if it is."))
    plan = models.ForeignKey(ChargingPlan, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ended_at__gt=models.F("started_at")), name="session_ends_after_start"),
            models.CheckConstraint(condition=Q(energy_kwh__gte=0), name="session_energy_not_negative"),
            models.CheckConstraint(
                condition=Q(start_soc_pct__isnull=True) | Q(start_soc_pct__gte=0, start_soc_pct__lte=100),
                name="session_start_soc_is_percent",
            ),
            models.CheckConstraint(
                condition=Q(end_soc_pct__isnull=True) | Q(end_soc_pct__gte=0, end_soc_pct__lte=100),
                name="session_end_soc_is_percent",
            ),
            models.CheckConstraint(
                condition=Q(max_kw__isnull=True) | Q(max_kw__gte=0), name="session_max_power_not_negative"
            ),
            models.UniqueConstraint(
                fields=["source", "depot", "external_id"],
                condition=Q(depot__isnull=False),
                name="session_external_id_unique_per_depot",
            ),
            models.UniqueConstraint(
                fields=["source", "vehicle", "external_id"],
                condition=Q(depot__isnull=True),
                name="away_session_external_id_unique_per_vehicle",
            ),
        ]
        indexes = [
            models.Index(fields=["depot", "started_at"]),
            models.Index(fields=["vehicle", "started_at"]),
            # The admin's list, newest first, without sorting every session of every night.
            models.Index(fields=["started_at", "id"], name="session_newest"),
        ]

    def __str__(self) -> str:
        where = self.depot or _("away")
        when = f"{self.started_at:%Y-%m-%d %H:%M}"
        return _("%(vehicle)s at %(where)s %(when)s") % {"vehicle": self.vehicle, "where": where, "when": when}

    def clean(self) -> None:
        errors = {}
        if self.started_at and self.ended_at and self.ended_at <= self.started_at:
            errors["ended_at"] = _("A session ends after it starts.")
        if self.connector is not None and self.depot_id and self.connector.charger.depot_id != self.depot_id:
            errors["connector"] = _("The connector is not at this depot.")
        if self.connector_id and not self.depot_id:
            errors["connector"] = _("A session away from any depot has no depot connector.")
        if self.vehicle_id and self.depot is not None and self.vehicle.organization_id != self.depot.organization_id:
            errors["vehicle"] = _("The vehicle belongs to another organisation.")
        if errors:
            raise ValidationError(errors)

    @property
    def duration_hours(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() / 3600.0

    @property
    def average_kw(self) -> float:
        return self.energy_kwh / self.duration_hours if self.duration_hours > 0 else 0.0
