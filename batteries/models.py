"""Battery packs, where they have been installed, and what we know of their health."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
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
        # Exists() rather than a join: a join would repeat a pack once per past installation.
        current = PackInstallation.objects.filter(pack=OuterRef("pk"), removed_at__isnull=True)
        installed_here = Exists(current.filter(vehicle__home_depot__in=depot_ids))
        in_a_depot = Exists(current.filter(vehicle__home_depot__isnull=False))
        return Q(installed_here) | (Q(organization__in=managed_organization_ids) & ~Q(in_a_depot))

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
        return f"{self.pack} in {self.vehicle}"

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
