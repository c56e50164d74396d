"""Organisations, depots and who may use them; vehicle models, vehicles, blocks and their assignments."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from fleet.models.scoped import DepotScoped, OrganizationScoped, Role
from fleet.vin import normalize_vin, validate_vin

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

HOURS_PER_DAY = 24
MONTHS_PER_YEAR = 12


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(tz)s is not an IANA time zone (e.g. America/Hermosillo)."), params={"tz": value})


def default_depot_time_zone() -> str:
    return settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE


class Chemistry(models.TextChoices):
    LFP = "LFP", _("LFP (lithium iron phosphate)")
    NMC = "NMC", _("NMC (nickel manganese cobalt)")
    NCA = "NCA", _("NCA (nickel cobalt aluminium)")
    LTO = "LTO", _("LTO (lithium titanate)")


class Organization(OrganizationScoped, models.Model):
    organization_path = "id"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    default_tariff = models.ForeignKey(
        "charging.Tariff",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Prices charges away from any depot (cars on outlets)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        tariff = self.default_tariff if self.default_tariff_id and self.pk else None
        if tariff is not None and tariff.organization_id != self.pk:
            raise ValidationError({"default_tariff": _("The tariff belongs to another organisation.")})


class Depot(DepotScoped, models.Model):
    depot_path = "id"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="depots")
    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=40, help_text=_("Short code used in fleet numbers and reports, e.g. HMO."))
    time_zone = models.CharField(max_length=64, default=default_depot_time_zone, validators=[validate_time_zone])
    latitude = models.FloatField(null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)])
    geofence_radius_m = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(10), MaxValueValidator(10_000)],
        help_text=_(
            "Radius around the depot's position, in metres: a vehicle whose telemetry enters it has arrived "
            "(empty: arrivals are not detected from telemetry)."
        ),
    )
    grid_limit_kw = models.FloatField(
        validators=[MinValueValidator(0.1)], help_text=_("Grid connection (transformer) limit in kW.")
    )
    base_load_kw = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Other loads of the site: 24 hourly values in kW, local time (empty: none)."),
    )
    tariff = models.ForeignKey(
        "charging.Tariff", on_delete=models.SET_NULL, null=True, blank=True, related_name="depots"
    )
    planning_time = models.TimeField(
        default=dt.time(18, 0), help_text=_("Local time at which tonight's charging plan is computed.")
    )
    monthly_mean_temperature_c = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Climate for battery ageing: 12 monthly mean temperatures in °C, January first."),
    )

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="depot_code_unique_per_organization"),
            models.UniqueConstraint(fields=["organization", "name"], name="depot_name_unique_per_organization"),
            models.CheckConstraint(condition=Q(grid_limit_kw__gt=0), name="depot_grid_limit_positive"),
            models.CheckConstraint(
                condition=Q(geofence_radius_m__isnull=True) | Q(geofence_radius_m__gt=0),
                name="depot_geofence_radius_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def clean(self) -> None:
        errors: dict[str, StrOrPromise] = {}
        if self.base_load_kw:
            if not _is_list_of_numbers(self.base_load_kw, HOURS_PER_DAY) or min(self.base_load_kw) < 0:
                errors["base_load_kw"] = _("Give 24 hourly values in kW, each 0 or more.")
            elif self.grid_limit_kw and max(self.base_load_kw) >= self.grid_limit_kw:
                errors["base_load_kw"] = _("The base load leaves no room under the grid limit in some hour.")
        if self.monthly_mean_temperature_c and not (
            _is_list_of_numbers(self.monthly_mean_temperature_c, MONTHS_PER_YEAR)
            and all(-50 <= t <= 60 for t in self.monthly_mean_temperature_c)
        ):
            errors["monthly_mean_temperature_c"] = _("Give 12 monthly means in °C between -50 and 60.")
        if self.geofence_radius_m is not None and (self.latitude is None or self.longitude is None):
            errors["geofence_radius_m"] = _("Give the depot's latitude and longitude for its geofence.")
        tariff = self.tariff if self.tariff_id and self.organization_id else None
        if tariff is not None and tariff.organization_id != self.organization_id:
            errors["tariff"] = _("The tariff belongs to another organisation.")
        if errors:
            raise ValidationError(errors)

    def base_load_kw_at_hour(self, local_hour: int) -> float:
        return float(self.base_load_kw[local_hour]) if self.base_load_kw else 0.0


def _is_list_of_numbers(value, length: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


class DepotMembership(DepotScoped, models.Model):
    class Role(models.TextChoices):
        MANAGER = Role.MANAGER.value, _("Manager")
        STAFF = Role.STAFF.value, _("Staff")
        VIEWER = Role.VIEWER.value, _("Viewer")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="depot_memberships")
    depot = models.ForeignKey(Depot, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)

    class Meta:
        ordering = ["depot", "user"]
        constraints = [models.UniqueConstraint(fields=["user", "depot"], name="one_membership_per_user_and_depot")]

    def __str__(self) -> str:
        return f"{self.user} - {self.depot} ({self.get_role_display()})"


class ConnectorStandard(models.TextChoices):
    """The plugs (and the pantograph) a vehicle inlet and a charger connector can have: a vehicle charges only
    on a connector of a standard it accepts (``VehicleModel.connector_standards``; chargers in the charging app)."""

    CCS2 = "ccs2", "CCS2"
    CCS1 = "ccs1", "CCS1"
    CHADEMO = "chademo", "CHAdeMO"
    GBT_DC = "gbt_dc", "GB/T (DC)"
    GBT_AC = "gbt_ac", "GB/T (AC)"
    TYPE2 = "type2", _("Type 2 (AC)")
    J1772 = "j1772", "J1772 (AC)"
    OUTLET = "outlet", _("Household outlet")
    PANTOGRAPH = "pantograph", _("Pantograph")


# What a model accepts when nobody said: the commonest inlets for its charging power. A pantograph is never
# assumed: a bus needs a roof rail (or a pantograph) for it, which its model must declare.
DEFAULT_DC_STANDARDS = (ConnectorStandard.CCS2,)
DEFAULT_AC_STANDARDS = (ConnectorStandard.TYPE2, ConnectorStandard.J1772, ConnectorStandard.OUTLET)


def default_connector_standards(*, max_ac_kw: float, max_dc_kw: float) -> list[str]:
    return [
        str(s) for s in (*(DEFAULT_DC_STANDARDS if max_dc_kw else ()), *(DEFAULT_AC_STANDARDS if max_ac_kw else ()))
    ]


class VehicleModel(models.Model):
    """A make and model as sold: the catalogue every vehicle points at."""

    class Kind(models.TextChoices):
        BUS = "bus", _("Bus")
        CAR = "car", _("Car")
        VAN = "van", _("Van")

    manufacturer = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    chemistry = models.CharField(max_length=8, choices=Chemistry.choices, default=Chemistry.LFP)
    nominal_pack_kwh = models.FloatField(validators=[MinValueValidator(0.1)])
    usable_soc_min_pct = models.FloatField(default=10, validators=[MinValueValidator(0), MaxValueValidator(100)])
    usable_soc_max_pct = models.FloatField(default=95, validators=[MinValueValidator(0), MaxValueValidator(100)])
    consumption_kwh_per_km = models.FloatField(validators=[MinValueValidator(0.01), MaxValueValidator(10)])
    max_ac_kw = models.FloatField(default=0, validators=[MinValueValidator(0)])
    max_dc_kw = models.FloatField(default=0, validators=[MinValueValidator(0)])
    charging_taper = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Charging power limit by SoC: [[soc %, kW], ...] in increasing SoC, e.g. [[80, 150], [100, 30]]."),
    )
    connector_standards = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            'Connector standards the vehicle charges by, e.g. ["ccs2", "pantograph"]. Left empty: CCS2 for DC '
            "power; Type 2, J1772 and a household outlet for AC."
        ),
    )

    class Meta:
        ordering = ["manufacturer", "name"]
        constraints = [
            models.UniqueConstraint(fields=["manufacturer", "name"], name="vehicle_model_unique_name"),
            models.CheckConstraint(condition=Q(nominal_pack_kwh__gt=0), name="vehicle_model_pack_positive"),
            models.CheckConstraint(
                condition=Q(usable_soc_min_pct__gte=0, usable_soc_max_pct__lte=100)
                & Q(usable_soc_min_pct__lt=F("usable_soc_max_pct")),
                name="vehicle_model_usable_window_valid",
            ),
            models.CheckConstraint(condition=Q(max_ac_kw__gt=0) | Q(max_dc_kw__gt=0), name="vehicle_model_can_charge"),
        ]

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.name}"

    @property
    def max_charge_kw(self) -> float:
        return max(self.max_ac_kw, self.max_dc_kw)

    def clean(self) -> None:
        errors: dict[str, StrOrPromise] = {}
        window = (self.usable_soc_min_pct, self.usable_soc_max_pct)
        if None not in window and window[0] >= window[1]:
            errors["usable_soc_max_pct"] = _("The usable window's top must be above its bottom.")
        if not (self.max_ac_kw or self.max_dc_kw):
            errors["max_dc_kw"] = _("A vehicle must accept AC or DC charging power.")
        taper_error = _taper_error(self.charging_taper, self.max_charge_kw)
        if taper_error:
            errors["charging_taper"] = taper_error
        if not self.connector_standards and not errors:
            self.connector_standards = default_connector_standards(max_ac_kw=self.max_ac_kw, max_dc_kw=self.max_dc_kw)
        elif not (
            isinstance(self.connector_standards, list)
            and all(value in ConnectorStandard.values for value in self.connector_standards)
        ):
            errors["connector_standards"] = _("Give a list of connector standards, from: %(choices)s.") % {
                "choices": ", ".join(ConnectorStandard.values)
            }
        if errors:
            raise ValidationError(errors)


def _taper_error(points, max_kw: float) -> StrOrPromise | None:
    if points in (None, []):
        return None
    if not isinstance(points, list) or not all(
        isinstance(p, list | tuple)
        and len(p) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        for p in points
    ):
        return _("Give the taper as a list of [SoC %, kW] pairs.")
    socs = [p[0] for p in points]
    if socs != sorted(socs) or len(set(socs)) != len(socs) or socs[0] < 0 or socs[-1] > 100:
        return _("Taper SoC points must increase strictly, between 0 and 100 %.")
    if any(p[1] < 0 or p[1] > max_kw for p in points):
        return _("Taper powers must be between 0 and the model's maximum charging power.")
    return None


class Vehicle(DepotScoped, models.Model):
    depot_path = "home_depot"
    organization_path = "organization"

    class Status(models.TextChoices):
        IN_SERVICE = "in_service", _("In service")
        MAINTENANCE = "maintenance", _("Maintenance")
        RETIRED = "retired", _("Retired")

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="vehicles")
    fleet_number = models.CharField(max_length=40)
    vin = models.CharField("VIN", max_length=17, unique=True, validators=[validate_vin])
    plate = models.CharField(max_length=20, blank=True)
    model = models.ForeignKey(VehicleModel, on_delete=models.PROTECT, related_name="vehicles")
    home_depot = models.ForeignKey(
        Depot,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="vehicles",
        help_text=_("Empty for cars that charge away from any depot (e.g. on outlets)."),
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_SERVICE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "fleet_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "fleet_number"], name="fleet_number_unique_per_organization"
            ),
        ]
        indexes = [models.Index(fields=["home_depot", "status"])]

    def __str__(self) -> str:
        return self.fleet_number

    def clean(self) -> None:
        if self.vin:
            self.vin = normalize_vin(self.vin)
        home_depot = self.home_depot if self.home_depot_id and self.organization_id else None
        if home_depot is not None and home_depot.organization_id != self.organization_id:
            raise ValidationError({"home_depot": _("The depot belongs to another organisation.")})


class Block(DepotScoped, models.Model):
    """One vehicle duty: leaves the depot at a time, returns at a time, covers a distance.

    A block runs either on one ``service_date`` or on ``weekdays`` (0 = Monday) between ``valid_from`` and
    ``valid_until``. Times are the depot's local times; a return at or before departure is on the next day.
    """

    depot = models.ForeignKey(Depot, on_delete=models.PROTECT, related_name="blocks")
    code = models.CharField(max_length=40)
    service_date = models.DateField(null=True, blank=True)
    weekdays = models.JSONField(default=list, blank=True, help_text=_("Days it runs, 0 = Monday ... 6 = Sunday."))
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    departs_at = models.TimeField()
    returns_at = models.TimeField()
    distance_km = models.FloatField(validators=[MinValueValidator(0.1), MaxValueValidator(2000)])
    planned_energy_kwh = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])

    # Who changed what, when (django-simple-history; docs/security.md, "Audit trail").
    history = HistoricalRecords()

    class Meta:
        ordering = ["depot", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(service_date__isnull=False) | Q(valid_from__isnull=False),
                name="block_has_date_or_pattern",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_from__lte=F("valid_until")),
                name="block_validity_ordered",
            ),
            models.CheckConstraint(condition=Q(distance_km__gt=0), name="block_distance_positive"),
            models.UniqueConstraint(
                fields=["depot", "code", "service_date"],
                condition=Q(service_date__isnull=False),
                name="dated_block_code_unique_per_day",
            ),
            models.UniqueConstraint(
                fields=["depot", "code"],
                condition=Q(service_date__isnull=True),
                name="pattern_block_code_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        errors: dict[str, StrOrPromise] = {}
        if self.service_date is None:
            if not self.valid_from:
                errors["valid_from"] = _("A weekly block needs the first date it is valid.")
            if not (
                isinstance(self.weekdays, list)
                and self.weekdays
                and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in self.weekdays)
                and len(set(self.weekdays)) == len(self.weekdays)
            ):
                errors["weekdays"] = _("Give the days it runs as distinct numbers 0 (Monday) to 6 (Sunday).")
        elif self.weekdays:
            errors["weekdays"] = _("A block on one service date has no weekly pattern.")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            errors["valid_until"] = _("The block's validity ends before it starts.")
        if self.departs_at is not None and self.departs_at == self.returns_at:
            errors["returns_at"] = _("A block cannot return at the minute it departs.")
        if errors:
            raise ValidationError(errors)

    def runs_on(self, day: dt.date) -> bool:
        if self.service_date is not None:
            return self.service_date == day
        return (
            day.weekday() in self.weekdays
            and self.valid_from is not None  # always set when service_date is not (a constraint)
            and self.valid_from <= day
            and (self.valid_until is None or day <= self.valid_until)
        )

    def window_on(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The block's departure and return on ``day`` as aware datetimes in the depot's zone."""
        zone = self.depot.zone
        departs = dt.datetime.combine(day, self.departs_at, tzinfo=zone)
        return_day = day + dt.timedelta(days=1) if self.returns_at <= self.departs_at else day
        return departs, dt.datetime.combine(return_day, self.returns_at, tzinfo=zone)


class BlockAssignment(DepotScoped, models.Model):
    """A vehicle doing a block on one service date. ``starts_at``/``ends_at`` (UTC) make overlaps queryable."""

    depot_path = "block__depot"

    block = models.ForeignKey(Block, on_delete=models.CASCADE, related_name="assignments")
    vehicle = models.ForeignKey(Vehicle, on_delete=models.PROTECT, related_name="block_assignments")
    service_date = models.DateField()
    starts_at = models.DateTimeField(editable=False)
    ends_at = models.DateTimeField(editable=False)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["block", "service_date"], name="one_vehicle_per_block_and_day"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="assignment_ends_after_start"),
        ]
        indexes = [
            models.Index(fields=["vehicle", "starts_at"]),
            # The admin's list in this order, without sorting every assignment of every day.
            models.Index(fields=["starts_at"], name="block_assignment_start"),
        ]

    def __str__(self) -> str:
        return _("%(block)s on %(date)s: %(vehicle)s") % {
            "block": self.block,
            "date": self.service_date,
            "vehicle": self.vehicle,
        }
