"""Reads of telemetry for other parts of the app (the admin's vehicle list, plans, reports)."""

from __future__ import annotations

from django.db.models import QuerySet

from fleet.models import TelemetryReading, Vehicle, VehicleLiveState
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
    """One line for a list column, e.g. ``72 % · 15,234 km · 2026-11-21 08:02 (dc)``; "—" if never seen."""
    state = vehicle_live_state(vehicle)
    if state is None:
        return "—"
    parts = []
    if state.soc_pct is not None:
        parts.append(f"{state.soc_pct:.0f} %")
    if state.odometer_km is not None:
        parts.append(f"{state.odometer_km:,.0f} km")
    seen = f"{state.recorded_at:%Y-%m-%d %H:%M} UTC"
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
