"""Reads of telemetry for other parts of the app (the admin's vehicle list, plans, reports)."""

from __future__ import annotations

import datetime as dt
import statistics

from django.db.models import QuerySet
from django.utils import timezone

from fleet.local_time import local_datetime_label
from fleet.models import DailyDutyCycle, TelemetryReading, Vehicle, VehicleLiveState
from fleet.models.telemetry import CHARGING_STATE_NAMES


def with_live_state(vehicles: QuerySet[Vehicle]) -> QuerySet[Vehicle]:
    """``vehicles`` with their live state joined in (one query for a whole admin page)."""
    return vehicles.select_related("live_state")


def vehicle_live_state(vehicle: Vehicle) -> VehicleLiveState | None:
    try:
        return vehicle.live_state
    except VehicleLiveState.DoesNotExist:
        return None


def live_state_summary(vehicle: Vehicle) -> str:
    """One line for a list column, e.g. ``72 % · 15,234 km · 11/21/2026 08:02 MST (dc)``; "—" if never seen.
    "Last seen" is in the home depot's zone (the default depot zone for a vehicle with none), labelled."""
    state = vehicle_live_state(vehicle)
    if state is None:
        return "—"
    parts = []
    if state.soc_pct is not None:
        parts.append(f"{state.soc_pct:.0f} %")
    if state.odometer_km is not None:
        parts.append(f"{state.odometer_km:,.0f} km")
    seen = local_datetime_label(state.recorded_at, vehicle.home_depot if vehicle.home_depot_id else None)
    charging = None if state.charging_state is None else CHARGING_STATE_NAMES.get(state.charging_state)
    parts.append(f"{seen} ({charging})" if charging and charging != "none" else seen)
    return " · ".join(parts)


CAPACITY_SAMPLE_FIELDS = ("recorded_at", "soc_pct", "pack_current_a", "charging_state", "speed_kmh")


def capacity_samples(vehicle: Vehicle, since, until) -> list[tuple]:
    """The readings a capacity estimate reads (``fleet.telemetry.capacity``), oldest first, in [since, until):
    tuples of ``CAPACITY_SAMPLE_FIELDS``."""
    return list(
        TelemetryReading.objects.filter(vehicle=vehicle, recorded_at__gte=since, recorded_at__lt=until)
        .order_by("recorded_at")
        .values_list(*CAPACITY_SAMPLE_FIELDS)
    )


# --- What planning reads of telemetry -------------------------------------------------------------------

# A vehicle's own median needs this many days of duty; fewer, and its model's fleet median stands in.
MIN_DUTY_DAYS_FOR_MEDIAN = 3
MIN_DUTY_DISTANCE_KM = 5.0  # a day of shunting in the yard says nothing about consumption on the road
CONSUMPTION_WINDOW_DAYS = 30


def live_soc_pct(vehicle: Vehicle, *, since: dt.datetime) -> float | None:
    """The vehicle's last reported SoC (%), if it was reported at or after ``since`` (e.g. after its last block
    ended: the vehicle is back and says how full it is); None when it has not reported since."""
    state = VehicleLiveState.objects.filter(vehicle=vehicle, recorded_at__gte=since).only("soc_pct").first()
    return state.soc_pct if state is not None else None


def measured_consumption_kwh_per_km(vehicle: Vehicle, *, until: dt.date | None = None) -> float | None:
    """Measured energy per km: the median over the vehicle's own duty days of the last 30 days, else the median
    over its model's vehicles' days, else None (then the model's nominal figure applies)."""
    until = until or timezone.localdate()
    recent = DailyDutyCycle.objects.filter(
        date__gt=until - dt.timedelta(days=CONSUMPTION_WINDOW_DAYS),
        date__lte=until,
        distance_km__gte=MIN_DUTY_DISTANCE_KM,
        kwh_per_km__isnull=False,
    )
    for days in (recent.filter(vehicle=vehicle), recent.filter(vehicle__model_id=vehicle.model_id)):
        values = [value for value in days.values_list("kwh_per_km", flat=True)[:5000] if value is not None]
        if len(values) >= MIN_DUTY_DAYS_FOR_MEDIAN:
            return float(statistics.median(values))
    return None
