"""Retention: raw readings older than N days become 1-minute aggregates (``TelemetryMinute``).

Policy (docs/telemetry.md): raw readings are kept ``N`` days (the operator picks N; 90 is a sensible default
for capacity estimates and disputes), then downsampled, per vehicle and UTC minute, to count, mean/min/max
SoC, highest odometer and energy counters, mean position, mean/max speed, mean voltage, mean/min/max
current, mean/max pack temperature and the highest charging state. Before any raw reading goes, every local
day it belongs to gets its daily duty cycle if it has none, so no duty cycle is lost. A day that straddles
the cutoff is computed from all its raw readings first; afterwards it is not recomputed (see duty.py).

Each vehicle-day is one transaction (aggregate, insert, delete): an interrupted run leaves whole days
either pruned or intact, and re-running finishes the job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import transaction
from django.db.models import Avg, Count, Max, Min
from django.db.models.functions import TruncDate, TruncMinute
from django.utils import timezone

from fleet.models import DailyDutyCycle, TelemetryMinute, TelemetryReading, Vehicle
from fleet.telemetry.duty import duty_cycle_compute, local_day_window, vehicle_zone
from fleet.telemetry.partitions import telemetry_partitions_fold

MINUTE_AGGREGATES = {
    "reading_count": Count("*"),
    "soc_mean_pct": Avg("soc_pct"),
    "soc_min_pct": Min("soc_pct"),
    "soc_max_pct": Max("soc_pct"),
    "odometer_max_km": Max("odometer_km"),
    "latitude_mean": Avg("latitude"),
    "longitude_mean": Avg("longitude"),
    "speed_mean_kmh": Avg("speed_kmh"),
    "speed_max_kmh": Max("speed_kmh"),
    "pack_voltage_mean_v": Avg("pack_voltage_v"),
    "pack_current_mean_a": Avg("pack_current_a"),
    "pack_current_min_a": Min("pack_current_a"),
    "pack_current_max_a": Max("pack_current_a"),
    "pack_temp_mean_c": Avg("pack_temp_c"),
    "pack_temp_max_c": Max("pack_temp_max_c"),
    "energy_discharged_max_kwh": Max("energy_discharged_kwh"),
    "energy_charged_max_kwh": Max("energy_charged_kwh"),
    "charging_state_max": Max("charging_state"),
}


def retention_cutoff(*, older_than_days: int, now: dt.datetime | None = None) -> dt.datetime:
    if older_than_days < 1:
        raise ValueError("Keep at least one day of raw readings.")
    cutoff = (now or timezone.now()) - dt.timedelta(days=older_than_days)
    return cutoff.replace(second=0, microsecond=0)  # whole minutes: no minute is split between raw and aggregate


def telemetry_prune(
    *,
    older_than_days: int,
    now: dt.datetime | None = None,
    on_vehicle: Callable[[Vehicle], None] | None = None,
) -> dict[str, int]:
    """Downsample every raw reading older than ``older_than_days``. Returns counts of what it did.

    On PostgreSQL whole day partitions older than the cutoff are folded and dropped first
    (``fleet.telemetry.partitions``); what remains (the cutoff's own day, the DEFAULT partition) goes the
    vehicle-day way below."""
    cutoff = retention_cutoff(older_than_days=older_than_days, now=now)
    folded = telemetry_partitions_fold(cutoff=cutoff)
    vehicle_ids = TelemetryReading.objects.filter(recorded_at__lt=cutoff).values("vehicle_id").distinct()
    summary = {
        "vehicles": 0,
        "duty_cycles_computed": folded["duty_cycles_computed"],
        "minutes_written": folded["minutes_written"],
        "readings_deleted": 0,
        "partitions_dropped": folded["partitions_dropped"],
        "readings_folded": folded["readings_folded"],
    }
    for vehicle in Vehicle.objects.filter(pk__in=vehicle_ids).select_related("home_depot", "model").order_by("pk"):
        for key, value in _prune_vehicle(vehicle, cutoff).items():
            summary[key] += value
        summary["vehicles"] += 1
        if on_vehicle:
            on_vehicle(vehicle)
    return summary


def vehicles_to_prune(*, older_than_days: int, now: dt.datetime | None = None) -> int:
    cutoff = retention_cutoff(older_than_days=older_than_days, now=now)
    return TelemetryReading.objects.filter(recorded_at__lt=cutoff).values("vehicle_id").distinct().count()


def _prune_vehicle(vehicle: Vehicle, cutoff: dt.datetime) -> dict[str, int]:
    zone = vehicle_zone(vehicle)
    old = TelemetryReading.objects.filter(vehicle=vehicle, recorded_at__lt=cutoff)
    days = sorted(set(old.annotate(day=TruncDate("recorded_at", tzinfo=zone)).values_list("day", flat=True)))
    have = set(DailyDutyCycle.objects.filter(vehicle=vehicle, date__in=days).values_list("date", flat=True))
    counts = {"duty_cycles_computed": 0, "minutes_written": 0, "readings_deleted": 0}
    for day in days:
        with transaction.atomic():
            if day not in have and duty_cycle_compute(vehicle=vehicle, day=day) is not None:
                counts["duty_cycles_computed"] += 1
            start, end = local_day_window(day, zone)
            window = old.filter(recorded_at__gte=start, recorded_at__lt=min(end, cutoff))
            minutes = [
                TelemetryMinute(vehicle=vehicle, **row)
                for row in window.annotate(minute=TruncMinute("recorded_at", tzinfo=dt.UTC))
                .values("minute")
                .annotate(**MINUTE_AGGREGATES)
                .order_by("minute")
            ]
            TelemetryMinute.objects.bulk_create(minutes, batch_size=1000, ignore_conflicts=True)
            counts["minutes_written"] += len(minutes)
            counts["readings_deleted"] += window.delete()[0]
    return counts
