"""Vehicle telemetry: per-vehicle API keys, raw readings, live state, daily duty cycles, 1-minute aggregates.

Sign convention (documented in docs/telemetry.md): ``pack_current_a`` is **positive when the pack
discharges** (driving, A/C) and negative when it charges (plug or regenerative braking).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from fleet.models.registry import Vehicle
from fleet.models.scoped import DepotScoped


class ChargingState(models.IntegerChoices):
    # A small integer keeps the hot table narrow; the API speaks the labels ("none", "ac", "dc").
    NONE = 0, _("Not charging")
    AC = 1, _("Charging (AC)")
    DC = 2, _("Charging (DC)")


CHARGING_STATE_CODES = {"none": ChargingState.NONE, "ac": ChargingState.AC, "dc": ChargingState.DC}
CHARGING_STATE_NAMES = {int(code): name for name, code in CHARGING_STATE_CODES.items()}


class VehicleScoped(DepotScoped):
    """Telemetry rows belong to their vehicle's home depot (or, for depot-less cars, its organisation)."""

    depot_path = "vehicle__home_depot"
    organization_path = "vehicle__organization"


class VehicleApiKey(VehicleScoped, models.Model):
    """A credential a vehicle uses to upload its own telemetry. Only a SHA-256 of the secret is stored.

    The full key (``evk_<prefix>_<secret>``) is shown once when issued. ``prefix`` finds the row; the hash
    proves the secret. A key stops working at ``revoked_at`` (set in the future when rotating with a grace
    period, so a bus can pick up its new key before the old one dies).
    """

    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["vehicle", "-created_at"]
        verbose_name = _("vehicle API key")

    def __str__(self) -> str:
        return f"{self.vehicle} evk_{self.prefix}_…"

    def is_active_at(self, when) -> bool:
        return self.revoked_at is None or self.revoked_at > when


class TelemetryReading(VehicleScoped, models.Model):
    """One sample from a vehicle. ``(vehicle, recorded_at)`` is the primary key: one reading per instant.

    Every measurement is optional (a bus may not report all of them); cumulative energy counters never
    decrease except on a BMS reset.
    """

    pk = models.CompositePrimaryKey("vehicle", "recorded_at")
    # PROTECT: telemetry is history; a vehicle with readings is retired, not deleted (and a cascade would
    # make Django load millions of rows). No database FK: its deferred per-row check costs as much as the
    # insert itself, and ingest only ever writes vehicle ids it has just read from the vehicle table.
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    recorded_at = models.DateTimeField()
    soc_pct = models.FloatField(null=True)
    odometer_km = models.FloatField(null=True)
    latitude = models.FloatField(null=True)
    longitude = models.FloatField(null=True)
    speed_kmh = models.FloatField(null=True)
    pack_voltage_v = models.FloatField(null=True)
    pack_current_a = models.FloatField(null=True, help_text=_("Positive = discharge, negative = charge."))
    pack_temp_c = models.FloatField(null=True)
    pack_temp_min_c = models.FloatField(null=True)
    pack_temp_max_c = models.FloatField(null=True)
    energy_discharged_kwh = models.FloatField(null=True, help_text=_("Cumulative counter."))
    energy_charged_kwh = models.FloatField(null=True, help_text=_("Cumulative counter."))
    charging_state = models.PositiveSmallIntegerField(choices=ChargingState.choices, null=True)

    class Meta:
        # The primary key's btree (vehicle, recorded_at) serves every per-vehicle time-range query.
        ordering = ["vehicle", "recorded_at"]

    def __str__(self) -> str:
        return f"{self.vehicle_id} @ {self.recorded_at:%Y-%m-%d %H:%M:%S}"


class VehicleLiveState(VehicleScoped, models.Model):
    """Each vehicle's latest known position, SoC and odometer; moves only forward in time."""

    vehicle = models.OneToOneField(Vehicle, on_delete=models.CASCADE, primary_key=True, related_name="live_state")
    recorded_at = models.DateTimeField(help_text=_("Time of the latest reading (last seen)."))
    received_at = models.DateTimeField(help_text=_("When that reading reached the server."))
    soc_pct = models.FloatField(null=True)
    odometer_km = models.FloatField(null=True)
    latitude = models.FloatField(null=True)
    longitude = models.FloatField(null=True)
    speed_kmh = models.FloatField(null=True)
    charging_state = models.PositiveSmallIntegerField(choices=ChargingState.choices, null=True)

    class Meta:
        ordering = ["vehicle"]

    def __str__(self) -> str:
        when = f"{self.recorded_at:%Y-%m-%d %H:%M}"
        return _("%(vehicle)s last seen %(when)s") % {"vehicle": self.vehicle_id, "when": when}


class DailyDutyCycle(VehicleScoped, models.Model):
    """A vehicle's day (local day of its depot) summarised from its telemetry. Recomputing replaces it."""

    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="duty_cycles")
    date = models.DateField(help_text=_("Local date in the depot's time zone."))
    time_zone = models.CharField(max_length=64)
    reading_count = models.PositiveIntegerField()
    distance_km = models.FloatField()
    energy_used_kwh = models.FloatField(help_text=_("Energy discharged by the pack."))
    energy_charged_kwh = models.FloatField(help_text=_("Energy into the pack (plug and regeneration)."))
    kwh_per_km = models.FloatField(null=True, help_text=_("Empty when the vehicle moved less than 1 km."))
    capacity_kwh = models.FloatField(help_text=_("Pack capacity the cycle counts are relative to."))
    equivalent_full_cycles = models.FloatField()
    soc_min_pct = models.FloatField(null=True)
    soc_max_pct = models.FloatField(null=True)
    soc_mean_pct = models.FloatField(null=True, help_text=_("Time-weighted."))
    minutes_above_90_soc = models.FloatField()
    pack_temp_mean_c = models.FloatField(null=True, help_text=_("Time-weighted."))
    pack_temp_max_c = models.FloatField(null=True)
    max_charge_c_rate = models.FloatField(null=True)
    max_discharge_c_rate = models.FloatField(null=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["vehicle", "date"]
        constraints = [models.UniqueConstraint(fields=["vehicle", "date"], name="one_duty_cycle_per_vehicle_day")]

    def __str__(self) -> str:
        return f"{self.vehicle_id} {self.date}"


class TelemetryMinute(VehicleScoped, models.Model):
    """Raw readings older than the retention period, downsampled to one row per vehicle and minute."""

    pk = models.CompositePrimaryKey("vehicle", "minute")
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    minute = models.DateTimeField(help_text=_("Start of the minute (UTC)."))
    reading_count = models.PositiveIntegerField()
    soc_mean_pct = models.FloatField(null=True)
    soc_min_pct = models.FloatField(null=True)
    soc_max_pct = models.FloatField(null=True)
    odometer_max_km = models.FloatField(null=True)
    latitude_mean = models.FloatField(null=True)
    longitude_mean = models.FloatField(null=True)
    speed_mean_kmh = models.FloatField(null=True)
    speed_max_kmh = models.FloatField(null=True)
    pack_voltage_mean_v = models.FloatField(null=True)
    pack_current_mean_a = models.FloatField(null=True)
    pack_current_min_a = models.FloatField(null=True)
    pack_current_max_a = models.FloatField(null=True)
    pack_temp_mean_c = models.FloatField(null=True)
    pack_temp_max_c = models.FloatField(null=True)
    energy_discharged_max_kwh = models.FloatField(null=True)
    energy_charged_max_kwh = models.FloatField(null=True)
    charging_state_max = models.PositiveSmallIntegerField(choices=ChargingState.choices, null=True)

    class Meta:
        ordering = ["vehicle", "minute"]

    def __str__(self) -> str:
        return f"{self.vehicle_id} {self.minute:%Y-%m-%d %H:%M}"


__all__ = [
    "CHARGING_STATE_CODES",
    "CHARGING_STATE_NAMES",
    "ChargingState",
    "DailyDutyCycle",
    "TelemetryMinute",
    "TelemetryReading",
    "VehicleApiKey",
    "VehicleLiveState",
]
