"""Battery packs, where they have been installed, and what we know of their health."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from fleet.models import Chemistry, Organization, Vehicle
from fleet.scoping import DepotScoped


class BatteryPack(DepotScoped, models.Model):
    """A traction pack. It belongs to its organisation; its depot is that of the vehicle it is in now."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="battery_packs")
    serial = models.CharField(max_length=64, unique=True)
    chemistry = models.CharField(max_length=8, choices=Chemistry.choices, default=Chemistry.LFP)
    nominal_kwh = models.FloatField(validators=[MinValueValidator(0.1)])
    nominal_ah = models.FloatField(validators=[MinValueValidator(0.1)])
    cells_in_series = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    cells_in_parallel = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    manufactured_on = models.DateField(null=True, blank=True)
    as_new_capacity_kwh = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1)],
        help_text=_("Measured capacity when new, the 100 % of SoH (empty: the nominal capacity)."),
    )
    warranty_years = models.PositiveSmallIntegerField(null=True, blank=True)
    warranty_km = models.PositiveIntegerField(null=True, blank=True)
    warranty_min_soh_pct = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )

    class Meta:
        ordering = ["serial"]
        constraints = [
            models.CheckConstraint(condition=Q(nominal_kwh__gt=0, nominal_ah__gt=0), name="pack_nominal_positive"),
            models.CheckConstraint(
                condition=Q(warranty_min_soh_pct__isnull=True)
                | Q(warranty_min_soh_pct__gte=0, warranty_min_soh_pct__lte=100),
                name="pack_warranty_soh_is_percent",
            ),
        ]

    def __str__(self) -> str:
        return self.serial

    @classmethod
    def scope_q(cls, depot_ids, managed_organization_ids) -> Q:
        # Only the *current* installation decides the depot; a pack's history in another depot does not.
        # A semi-join (``pk IN (packs installed there)``) rather than a join, which would repeat a pack once per
        # past installation, and rather than a correlated EXISTS: under this OR PostgreSQL cannot turn an EXISTS
        # into a join and ran it once per pack, with JIT compilation on top (250 ms for a manager's 5,000-pack
        # city, docs/operations.md); each uncorrelated IN is one hashed subplan, read once (13 ms).
        current = PackInstallation.objects.filter(removed_at__isnull=True)
        installed_here = current.filter(vehicle__home_depot__in=depot_ids).values("pack_id")
        in_a_depot = current.filter(vehicle__home_depot__isnull=False).values("pack_id")
        return Q(pk__in=installed_here) | (Q(organization__in=managed_organization_ids) & ~Q(pk__in=in_a_depot))

    @property
    def baseline_capacity_kwh(self) -> float:
        return self.as_new_capacity_kwh or self.nominal_kwh


class PackInstallation(DepotScoped, models.Model):
    """A pack in a vehicle from ``installed_at`` until ``removed_at``. Swaps close one and open another."""

    depot_path = "vehicle__home_depot"
    organization_path = "vehicle__organization"

    pack = models.ForeignKey(BatteryPack, on_delete=models.CASCADE, related_name="installations")
    vehicle = models.ForeignKey(Vehicle, on_delete=models.PROTECT, related_name="pack_installations")
    installed_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-installed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["vehicle"], condition=Q(removed_at__isnull=True), name="one_active_pack_per_vehicle"
            ),
            models.UniqueConstraint(
                fields=["pack"], condition=Q(removed_at__isnull=True), name="pack_in_one_vehicle_at_a_time"
            ),
            models.CheckConstraint(
                condition=Q(removed_at__isnull=True) | Q(removed_at__gt=F("installed_at")),
                name="installation_removed_after_installed",
            ),
        ]

    def __str__(self) -> str:
        return _("%(pack)s in %(vehicle)s") % {"pack": self.pack, "vehicle": self.vehicle}

    def clean(self) -> None:
        if self.pack_id and self.vehicle_id and self.pack.organization_id != self.vehicle.organization_id:
            raise ValidationError({"vehicle": _("The vehicle belongs to another organisation than the pack.")})


class HealthObservation(DepotScoped, models.Model):
    """One measurement of a pack's state of health."""

    class Source(models.TextChoices):
        TELEMETRY = "telemetry", _("Estimated from telemetry")
        CAPACITY_TEST = "capacity_test", _("Capacity test")
        MANUAL = "manual", _("Entered by hand")

    pack = models.ForeignKey(BatteryPack, on_delete=models.CASCADE, related_name="health_observations")
    observed_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=Source.choices)
    soh_pct = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(120)])
    capacity_kwh = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    uncertainty_pct = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    resistance_mohm = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["pack", "observed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["pack", "observed_at", "source"], name="one_observation_per_pack_time_source"
            ),
            models.CheckConstraint(condition=Q(soh_pct__gte=0, soh_pct__lte=120), name="observation_soh_range"),
        ]

    def __str__(self) -> str:
        return f"{self.pack} {self.soh_pct:.1f} % ({self.observed_at:%Y-%m-%d})"

    @classmethod
    def scope_q(cls, depot_ids, managed_organization_ids) -> Q:
        return Q(pack__in=BatteryPack.objects.filter(BatteryPack.scope_q(depot_ids, managed_organization_ids)))


class ForecastRun(models.Model):
    """One forecasting run over many packs (nightly or on request): what it did and how long it took."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=60, blank=True)
    as_of = models.DateField()
    packs_total = models.PositiveIntegerField(default=0)
    packs_done = models.PositiveIntegerField(default=0)
    packs_failed = models.PositiveIntegerField(default=0)
    packs_cached = models.PositiveIntegerField(
        default=0, help_text=_("Packs whose duty signature was already solved for another pack in this run.")
    )
    duty_groups = models.PositiveIntegerField(default=0)
    simulated_days = models.PositiveIntegerField(default=0)
    duration_s = models.FloatField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("forecast run")

    def __str__(self) -> str:
        started = f"{self.started_at:%Y-%m-%d %H:%M}"
        return _("forecast run %(started)s (%(status)s)") % {"started": started, "status": self.get_status_display()}


class SoHForecast(DepotScoped, models.Model):
    """A pack's state-of-health forecast as of one date: monthly P10/P50/P90 points and what they imply.

    One forecast per pack and ``as_of`` date: re-running the same night replaces it.
    """

    class CalibrationSource(models.TextChoices):
        PACK = "pack", _("Fitted to this pack's observations")
        CLUSTER = "cluster", _("Fitted to similar packs")
        PRIOR = "prior", _("Chemistry prior")

    pack = models.ForeignKey(BatteryPack, on_delete=models.CASCADE, related_name="forecasts")
    run = models.ForeignKey(ForecastRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="forecasts")
    created_at = models.DateTimeField(auto_now=True)
    as_of = models.DateField()
    method = models.CharField(max_length=80)
    calibration_source = models.CharField(max_length=10, choices=CalibrationSource.choices)
    rate_factor = models.FloatField()
    rate_log_sigma = models.FloatField()
    observations_used = models.PositiveIntegerField(default=0)
    soh_now_pct = models.FloatField()
    fade_pct_per_year = models.FloatField()
    resistance_factor_now = models.FloatField(
        null=True, blank=True, help_text=_("Empty when the duty has too little load to read it.")
    )
    eol_80_on = models.DateField(null=True, blank=True)
    eol_80_p10_on = models.DateField(null=True, blank=True)
    eol_80_p90_on = models.DateField(null=True, blank=True)
    warranty_floor_on = models.DateField(null=True, blank=True)
    rul_days = models.PositiveIntegerField()
    rul_km = models.FloatField(null=True, blank=True)
    rul_efc = models.FloatField()
    rul_censored = models.BooleanField(default=False, help_text=_("End of life lies beyond the horizon."))
    flags = models.JSONField(default=list, blank=True)
    end_of_duty_on = models.DateField(null=True, blank=True)
    points = models.JSONField(help_text=_("Monthly points: date, soh_pct, soh_p10_pct, soh_p90_pct, resistance."))
    inputs = models.JSONField(default=dict, help_text=_("The duty, climate and pack data the forecast used."))

    class Meta:
        ordering = ["pack", "-as_of"]
        verbose_name = _("SoH forecast")
        verbose_name_plural = _("SoH forecasts")
        constraints = [models.UniqueConstraint(fields=["pack", "as_of"], name="one_forecast_per_pack_and_day")]

    def __str__(self) -> str:
        soh = f"{self.soh_now_pct:.1f}"
        return _("%(pack)s as of %(date)s: %(soh)s %%") % {"pack": self.pack, "date": self.as_of, "soh": soh}

    @classmethod
    def scope_q(cls, depot_ids, managed_organization_ids) -> Q:
        return Q(pack__in=BatteryPack.objects.filter(BatteryPack.scope_q(depot_ids, managed_organization_ids)))

    def band_at(self, day) -> tuple[float, float, float] | None:
        """(P10, P50, P90) SoH % interpolated at ``day``, or None outside the forecast."""
        import datetime as dt

        rows = [(dt.date.fromisoformat(p["date"]), p) for p in self.points]
        for (d0, p0), (d1, p1) in zip(rows, rows[1:], strict=False):
            if d0 <= day <= d1 and None not in (
                p0["soh_p10_pct"],
                p1["soh_p10_pct"],
                p0["soh_p90_pct"],
                p1["soh_p90_pct"],
            ):
                w = (day - d0).days / max((d1 - d0).days, 1)
                return tuple(p0[k] + w * (p1[k] - p0[k]) for k in ("soh_p10_pct", "soh_pct", "soh_p90_pct"))
        return None
