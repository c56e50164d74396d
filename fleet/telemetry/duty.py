"""Daily duty cycles: one row per vehicle and local day (its depot's time zone) summarising its telemetry.

``aggregate_duty_cycle`` is the pure core (numpy arrays in, a dict out); ``duty_cycle_compute`` loads a
vehicle-day and stores the result, replacing an earlier one. Rules (also in docs/telemetry.md):

* Samples are taken in time order. Each sample's value holds until the next sample ("left hold"); an
  interval longer than ``max_gap_s`` (5 minutes) is a data gap and counts for no time-weighted figure.
* distance = sum of the odometer's increases (a decrease, i.e. a reset or a glitch, counts nothing).
* energy used / charged = sum of the increases of the cumulative discharged / charged counters; a vehicle
  without counters gets the integral of pack power (V x I, positive = discharge) over the non-gap intervals.
* kWh/km = energy used / distance, only when the vehicle moved at least 1 km.
* equivalent full cycles = (energy used + energy charged) / (2 x nominal capacity).
* mean SoC and mean pack temperature are time-weighted; time above 90 % SoC sums the intervals that start
  above 90 %.
* C-rates = current / nominal Ah capacity: the highest discharge (positive current) and charge (negative).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleet.models import DailyDutyCycle, TelemetryMinute, TelemetryReading, Vehicle
from fleet.telemetry.selectors import reading_arrays

MAX_GAP_S = 300.0
HIGH_SOC_PCT = 90.0
MIN_DISTANCE_FOR_RATE_KM = 1.0
# The nightly job reads this many vehicles' days with one query (~100 bytes a reading: ~30 MB for 100 buses'
# day at one reading every 30 s) and stores their duty cycles in one transaction.
DUTY_BATCH_VEHICLES = 100
_COLUMNS = (
    "recorded_at",
    "soc_pct",
    "odometer_km",
    "energy_discharged_kwh",
    "energy_charged_kwh",
    "pack_current_a",
    "pack_voltage_v",
    "pack_temp_c",
    "pack_temp_max_c",
)


def counter_increase(values: np.ndarray) -> float | None:
    """How much a cumulative counter (odometer, energy in or out) rose over ``values`` (NaN: not reported);
    None with fewer than two readings. A decrease is a reset (BMS, odometer swap) or a glitch: it adds nothing.
    The one home of this rule: duty cycles here, charging sessions in charging/sessions.py."""
    present = values[~np.isnan(values)]
    if len(present) < 2:
        return None
    steps = np.diff(present)
    return float(steps[steps > 0].sum())


def _time_weighted_mean(values: np.ndarray, weights_s: np.ndarray) -> float | None:
    present = ~np.isnan(values)
    if not present.any():
        return None
    used = present[:-1] & (weights_s > 0)
    if not used.any():
        return float(values[present].mean())
    return float(np.average(values[:-1][used], weights=weights_s[used]))


def aggregate_duty_cycle(
    *,
    t_s: np.ndarray,
    soc_pct: np.ndarray,
    odometer_km: np.ndarray,
    energy_discharged_kwh: np.ndarray,
    energy_charged_kwh: np.ndarray,
    pack_current_a: np.ndarray,
    pack_voltage_v: np.ndarray,
    pack_temp_c: np.ndarray,
    pack_temp_max_c: np.ndarray,
    capacity_kwh: float,
    capacity_ah: float | None,
    max_gap_s: float = MAX_GAP_S,
) -> dict:
    """Summarise one vehicle-day. Arrays are aligned, time-sorted (``t_s`` in seconds), NaN = not reported."""
    count = len(t_s)
    intervals_s = np.diff(t_s) if count > 1 else np.zeros(0)
    held_s = np.where(intervals_s <= max_gap_s, intervals_s, 0.0)  # data gaps count no time

    distance_km = counter_increase(odometer_km) or 0.0
    power_kw = pack_voltage_v[:-1] * pack_current_a[:-1] / 1000.0
    power_kw = np.where(np.isnan(power_kw), 0.0, power_kw)
    used = counter_increase(energy_discharged_kwh)
    if used is None:
        used = float((np.clip(power_kw, 0, None) * held_s).sum() / 3600.0)
    charged = counter_increase(energy_charged_kwh)
    if charged is None:
        charged = float((np.clip(-power_kw, 0, None) * held_s).sum() / 3600.0)

    soc_present = soc_pct[~np.isnan(soc_pct)]
    above = (soc_pct[:-1] > HIGH_SOC_PCT) if count > 1 else np.zeros(0, dtype=bool)
    temps_max = np.concatenate([pack_temp_c[~np.isnan(pack_temp_c)], pack_temp_max_c[~np.isnan(pack_temp_max_c)]])
    current = pack_current_a[~np.isnan(pack_current_a)]
    max_discharge_a = float(current.max()) if len(current) and current.max() > 0 else None
    max_charge_a = float(-current.min()) if len(current) and current.min() < 0 else None
    return {
        "reading_count": count,
        "distance_km": distance_km,
        "energy_used_kwh": used,
        "energy_charged_kwh": charged,
        "kwh_per_km": used / distance_km if distance_km >= MIN_DISTANCE_FOR_RATE_KM else None,
        "capacity_kwh": capacity_kwh,
        "equivalent_full_cycles": (used + charged) / (2.0 * capacity_kwh),
        "soc_min_pct": float(soc_present.min()) if len(soc_present) else None,
        "soc_max_pct": float(soc_present.max()) if len(soc_present) else None,
        "soc_mean_pct": _time_weighted_mean(soc_pct, held_s),
        "minutes_above_90_soc": float(held_s[above].sum() / 60.0),
        "pack_temp_mean_c": _time_weighted_mean(pack_temp_c, held_s),
        "pack_temp_max_c": float(temps_max.max()) if len(temps_max) else None,
        "max_charge_c_rate": max_charge_a / capacity_ah if capacity_ah and max_charge_a else None,
        "max_discharge_c_rate": max_discharge_a / capacity_ah if capacity_ah and max_discharge_a else None,
    }


def vehicle_zone(vehicle: Vehicle) -> zoneinfo.ZoneInfo:
    """The depot's time zone; depot-less cars use EVFLEET_DEFAULT_DEPOT_TIME_ZONE (America/Hermosillo)."""
    if vehicle.home_depot is not None:  # no query when the vehicle has no depot
        return vehicle.home_depot.zone
    return zoneinfo.ZoneInfo(settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE)


def local_day_window(day: dt.date, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.combine(day, dt.time(0), tzinfo=zone),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone),
    )


# Which pack a vehicle carries is the batteries app's knowledge, and fleet sits below it: batteries hands fleet
# a reader at start-up (``BatteriesConfig.ready``) instead of fleet importing it.
InstalledPackCapacity = Callable[[Vehicle], tuple[float, float | None] | None]
_installed_pack_capacity: InstalledPackCapacity | None = None


def installed_pack_capacity_source(reader: InstalledPackCapacity) -> None:
    """Set how to read the nominal (kWh, Ah) of a vehicle's installed pack (None: no pack installed)."""
    global _installed_pack_capacity
    _installed_pack_capacity = reader


def vehicle_capacity(vehicle: Vehicle) -> tuple[float, float | None]:
    """Nominal (kWh, Ah) of the vehicle's pack; the model's kWh and no Ah when no pack is installed."""
    installed = _installed_pack_capacity(vehicle) if _installed_pack_capacity is not None else None
    if installed is not None:
        return installed
    return vehicle.model.nominal_pack_kwh, None


def day_readings(vehicle: Vehicle, start: dt.datetime, end: dt.datetime) -> dict[str, np.ndarray]:
    rows = list(
        TelemetryReading.objects.filter(vehicle=vehicle, recorded_at__gte=start, recorded_at__lt=end)
        .order_by("recorded_at")
        .values_list(*_COLUMNS)
    )
    if not rows:
        return {}
    times = [row[0].timestamp() for row in rows]
    values = np.array([row[1:] for row in rows], dtype=np.float64)  # None becomes NaN
    arrays = {"t_s": np.array(times)}
    for position, name in enumerate(_COLUMNS[1:]):
        arrays[name] = values[:, position]
    return arrays


def _duty_figures(vehicle: Vehicle, arrays: dict[str, np.ndarray]) -> dict:
    capacity_kwh, capacity_ah = vehicle_capacity(vehicle)
    if capacity_ah is None:  # no pack on record: the pack's Ah from its kWh and the day's median voltage
        voltage = arrays["pack_voltage_v"][~np.isnan(arrays["pack_voltage_v"])]
        capacity_ah = capacity_kwh * 1000.0 / float(np.median(voltage)) if len(voltage) else None
    return aggregate_duty_cycle(
        t_s=arrays["t_s"],
        soc_pct=arrays["soc_pct"],
        odometer_km=arrays["odometer_km"],
        energy_discharged_kwh=arrays["energy_discharged_kwh"],
        energy_charged_kwh=arrays["energy_charged_kwh"],
        pack_current_a=arrays["pack_current_a"],
        pack_voltage_v=arrays["pack_voltage_v"],
        pack_temp_c=arrays["pack_temp_c"],
        pack_temp_max_c=arrays["pack_temp_max_c"],
        capacity_kwh=capacity_kwh,
        capacity_ah=capacity_ah,
    )


@transaction.atomic
def duty_cycle_compute(*, vehicle: Vehicle, day: dt.date) -> DailyDutyCycle | None:
    """Compute and store ``vehicle``'s duty cycle for its local ``day``, replacing an earlier one.

    Returns None when the day has no raw readings. A day already downsampled by retention keeps its stored
    duty cycle (the raw data it was computed from is gone).
    """
    zone = vehicle_zone(vehicle)
    start, end = local_day_window(day, zone)
    if TelemetryMinute.objects.filter(vehicle=vehicle, minute__gte=start, minute__lt=end).exists():
        return DailyDutyCycle.objects.filter(vehicle=vehicle, date=day).first()
    arrays = day_readings(vehicle, start, end)
    if not arrays:
        return None
    duty_cycle, _created = DailyDutyCycle.objects.update_or_create(
        vehicle=vehicle,
        date=day,
        defaults={**_duty_figures(vehicle, arrays), "time_zone": str(zone.key), "computed_at": timezone.now()},
    )
    return duty_cycle


_STORED_FIELDS = [
    field.name
    for field in DailyDutyCycle._meta.concrete_fields
    if field.name not in ("id", "vehicle", "date") and not field.primary_key
]


@transaction.atomic
def _duty_cycles_store_batch(vehicles: list[Vehicle], *, day: dt.date, zone: zoneinfo.ZoneInfo) -> int:
    """``duty_cycle_compute`` for vehicles of one time zone at once: one read of all their readings (binary
    fetch into numpy), the same aggregation per vehicle, one upsert. Returns how many duty cycles the day has."""
    start, end = local_day_window(day, zone)
    ids = [vehicle.pk for vehicle in vehicles]
    downsampled = set(
        TelemetryMinute.objects.filter(vehicle_id__in=ids, minute__gte=start, minute__lt=end)
        .values_list("vehicle_id", flat=True)
        .distinct()
    )
    kept = DailyDutyCycle.objects.filter(vehicle_id__in=downsampled, date=day).count() if downsampled else 0
    raw = [pk for pk in ids if pk not in downsampled]
    by_vehicle = reading_arrays(raw, start=start, end=end, measurements=_COLUMNS[1:]).by_vehicle()
    computed_at = timezone.now()
    duty_cycles = [
        DailyDutyCycle(
            vehicle=vehicle,
            date=day,
            time_zone=str(zone.key),
            computed_at=computed_at,
            **_duty_figures(vehicle, by_vehicle[vehicle.pk]),
        )
        for vehicle in vehicles
        if vehicle.pk in by_vehicle
    ]
    DailyDutyCycle.objects.bulk_create(
        duty_cycles, update_conflicts=True, unique_fields=["vehicle", "date"], update_fields=_STORED_FIELDS
    )
    return kept + len(duty_cycles)


def duty_cycles_compute(
    *, day: dt.date | None = None, vehicle_ids: list[int] | None = None, now: dt.datetime | None = None
) -> int:
    """Duty cycles of ``vehicle_ids`` (None: every vehicle not retired) for ``day``, default each one's local
    yesterday. Returns how many the day has (stored now, or kept for a day retention has downsampled).

    The same figures as ``duty_cycle_compute`` one vehicle at a time, read ``DUTY_BATCH_VEHICLES`` vehicles of
    the same time zone at a time; one transaction per batch, so a failure loses little."""
    vehicles = Vehicle.objects.select_related("home_depot", "model").order_by("pk")
    if vehicle_ids is None:
        vehicles = vehicles.exclude(status=Vehicle.Status.RETIRED)
    else:
        vehicles = vehicles.filter(pk__in=vehicle_ids)
    now = now or timezone.now()
    by_zone_day: dict[tuple[str, dt.date], list[Vehicle]] = {}
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    for vehicle in vehicles.iterator():
        zone = vehicle_zone(vehicle)
        zones[zone.key] = zone
        local_day = day or (now.astimezone(zone).date() - dt.timedelta(days=1))
        by_zone_day.setdefault((zone.key, local_day), []).append(vehicle)
    stored = 0
    for (zone_key, local_day), group in by_zone_day.items():
        for first in range(0, len(group), DUTY_BATCH_VEHICLES):
            batch = group[first : first + DUTY_BATCH_VEHICLES]
            stored += _duty_cycles_store_batch(batch, day=local_day, zone=zones[zone_key])
    return stored


def duty_cycles_for_depot_night(*, depot, night: dt.date) -> str:
    """The nightly job for one depot: the day before ``night`` in full, ``night`` itself provisionally (its
    buses may still be out; the next night recomputes it). Depot-less cars are covered by the Celery task."""
    vehicle_ids = list(depot.vehicles.exclude(status=Vehicle.Status.RETIRED).values_list("pk", flat=True))
    yesterday = night - dt.timedelta(days=1)
    final = duty_cycles_compute(day=yesterday, vehicle_ids=vehicle_ids)
    provisional = duty_cycles_compute(day=night, vehicle_ids=vehicle_ids)
    return f"{final} vehicle-days on {yesterday}, {provisional} provisional on {night}"
