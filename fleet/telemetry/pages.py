"""The vehicle's telemetry page in the admin: SoC and odometer over the last days, energy per km per day."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from fleet.models import DailyDutyCycle, Vehicle, VehicleLiveState
from fleet.telemetry.selectors import vehicle_readings

TELEMETRY_DAYS = 7
TELEMETRY_POINTS = 600  # per chart: enough for a week at ~15 min, light for the browser
DUTY_DAYS = 30


def _thin(count: int, limit: int) -> np.ndarray:
    """Positions of at most ``limit`` + 1 readings spread evenly over ``count``, the last one included."""
    if count <= limit:
        return np.arange(count)
    return np.append((np.arange(limit) * (count / limit)).astype(np.int64), count - 1)


def _json_numbers(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(value) else float(value) for value in values]


def vehicle_page_context(vehicle: Vehicle, *, now: dt.datetime | None = None) -> dict:
    """SoC and odometer over the last days, last position, energy per km per day; empty parts when no data."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=TELEMETRY_DAYS)
    readings = vehicle_readings(vehicle, since=since, measurements=("soc_pct", "odometer_km"))
    shown = _thin(len(readings["t_s"]), TELEMETRY_POINTS)
    live = VehicleLiveState.objects.filter(vehicle=vehicle).first()
    duty = list(
        DailyDutyCycle.objects.filter(vehicle=vehicle, date__gte=(now - dt.timedelta(days=DUTY_DAYS)).date()).order_by(
            "date"
        )
    )
    telemetry_chart = {
        "t": [int(t_s * 1000) for t_s in readings["t_s"][shown]],
        "soc": _json_numbers(readings["soc_pct"][shown]),
        "odometer": _json_numbers(readings["odometer_km"][shown]),
        "zone": vehicle.home_depot.time_zone if vehicle.home_depot else settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE,
        "text": {
            "soc": _("SoC (%)"),
            "odometer": _("Odometer (km)"),
            "soc_axis": _("SoC (%)"),
            "odometer_axis": _("km"),
        },
    }
    duty_chart = {
        "labels": [d.date.isoformat() for d in duty],
        "kwh_per_km": [d.kwh_per_km for d in duty],
        "distance_km": [d.distance_km for d in duty],
        "text": {
            "distance": _("Distance (km)"),
            "kwh_per_km": _("Energy per km (kWh/km)"),
            "kwh_per_km_axis": _("kWh/km"),
            "distance_axis": _("km"),
        },
    }
    return {
        "vehicle": vehicle,
        "live": live,
        "has_telemetry": bool(len(shown)),
        "duty_cycles": duty,
        "telemetry_days": TELEMETRY_DAYS,
        "duty_days": DUTY_DAYS,
        "telemetry_chart": telemetry_chart,
        "duty_chart": duty_chart,
        "map_url": (
            f"https://www.openstreetmap.org/?mlat={live.latitude}&mlon={live.longitude}#map=15/{live.latitude}/{live.longitude}"
            if live and live.latitude is not None and live.longitude is not None
            else None
        ),
        "title": _("Vehicle %(fleet_number)s: telemetry") % {"fleet_number": vehicle.fleet_number},
    }
