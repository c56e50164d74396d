"""Synthetic telemetry for the demo: a recent day of readings for every vehicle, through the ingest service.

Each vehicle drives its blocks (today's assignments; the part of the window before today repeats today's duty a
day earlier) as loops around its depot, with stops and traffic, SoC falling by distance at its model's
consumption (plus air conditioning in the heat), and charges at the depot in the evening, tapering above 80 %.
The routes are plausible loops of 4-9 km radius on the city's main axes, not a street map. Deterministic: the
same vehicle, window and seed give the same readings, so re-running the demo reports duplicates, not conflicts.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import zoneinfo
from dataclasses import dataclass

from django.utils import timezone

from fleet.models import BlockAssignment, Vehicle
from fleet.telemetry.ingest import max_batch_readings, telemetry_ingest

STEP = dt.timedelta(minutes=2)
EARTH_M_PER_DEG_LAT = 111_320.0
AC_EXTRA_ABOVE_25C = 0.015  # +1.5 % consumption per kelvin above 25 °C (air conditioning), assumed
BUS_PACK_V, SMALL_PACK_V = 650.0, 102.0  # nominal pack voltages, assumed


@dataclass
class _State:
    soc_pct: float
    odometer_km: float
    discharged_kwh: float
    charged_kwh: float
    loop_m: float = 0.0


def _route(rng: random.Random, lat: float, lon: float) -> list[tuple[float, float]]:
    """A closed loop around (lat, lon): 12 waypoints at 4-9 km, starting and ending at the depot."""
    heading = rng.uniform(0, 360)
    points = [(lat, lon)]
    for i in range(12):
        angle = math.radians(heading + i * 30 + rng.uniform(-8, 8))
        radius_m = rng.uniform(4000, 9000) * math.sin(math.pi * (i + 1) / 13)
        points.append(
            (
                lat + radius_m * math.cos(angle) / EARTH_M_PER_DEG_LAT,
                lon + radius_m * math.sin(angle) / (EARTH_M_PER_DEG_LAT * math.cos(math.radians(lat))),
            )
        )
    points.append((lat, lon))
    return points


def _leg_lengths(route: list[tuple[float, float]]) -> list[float]:
    lengths = []
    for (la1, lo1), (la2, lo2) in zip(route, route[1:], strict=False):
        dy = (la2 - la1) * EARTH_M_PER_DEG_LAT
        dx = (lo2 - lo1) * EARTH_M_PER_DEG_LAT * math.cos(math.radians(la1))
        lengths.append(math.hypot(dx, dy))
    return lengths


def _position(route, lengths, loop_m: float) -> tuple[float, float]:
    remaining = loop_m % sum(lengths)
    for (la1, lo1), (la2, lo2), length in zip(route, route[1:], lengths, strict=False):
        if remaining <= length:
            f = remaining / length if length else 0.0
            return la1 + (la2 - la1) * f, lo1 + (lo2 - lo1) * f
        remaining -= length
    return route[-1]


def _duty_windows(
    vehicle: Vehicle, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime, float]]:
    """(departs, returns, km) of the vehicle's blocks in the window; today's repeated a day earlier."""
    assignments = list(
        BlockAssignment.objects.filter(vehicle=vehicle, ends_at__gt=start - dt.timedelta(days=1), starts_at__lt=end)
        .select_related("block")
        .order_by("starts_at")
    )
    windows = [(a.starts_at, a.ends_at, a.block.distance_km) for a in assignments]
    earlier = [(s - dt.timedelta(days=1), e - dt.timedelta(days=1), km) for s, e, km in windows]
    seen = {s for s, _, _ in windows}
    merged = windows + [w for w in earlier if w[0] not in seen]
    return sorted(w for w in merged if w[1] > start and w[0] < end)


def vehicle_day(vehicle: Vehicle, *, start: dt.datetime, end: dt.datetime, seed: int) -> list[dict]:
    """Readings every ``STEP`` in ``[start, end)`` for one vehicle (JSON-ready, as the upload takes them)."""
    model = vehicle.model
    depot = vehicle.home_depot
    rng = random.Random(f"{seed}-{vehicle.pk}-{start.isoformat()}")
    lat0 = depot.latitude if depot and depot.latitude is not None else 29.0729
    lon0 = depot.longitude if depot and depot.longitude is not None else -110.9559
    route = _route(rng, lat0, lon0)
    lengths = _leg_lengths(route)
    capacity_kwh = model.nominal_pack_kwh * rng.uniform(0.88, 0.97)  # aged packs, assumed
    max_charge_kw = max(model.max_dc_kw, model.max_ac_kw)
    full_pct = model.usable_soc_max_pct
    zone = zoneinfo.ZoneInfo(depot.time_zone if depot else "America/Hermosillo")
    monthly = (depot.monthly_mean_temperature_c if depot else None) or [25.0] * 12
    temperature_c = float(monthly[start.astimezone(zone).month - 1])
    consumption = model.consumption_kwh_per_km * (1 + AC_EXTRA_ABOVE_25C * max(0.0, temperature_c - 25.0))
    state = _State(
        soc_pct=rng.uniform(80, full_pct),
        odometer_km=rng.uniform(20_000, 180_000),
        discharged_kwh=rng.uniform(20_000, 150_000),
        charged_kwh=0.0,
    )
    state.charged_kwh = state.discharged_kwh * 0.97
    duties = _duty_windows(vehicle, start, end)
    nominal_v = BUS_PACK_V if model.nominal_pack_kwh >= 100 else SMALL_PACK_V
    readings = []
    at = start
    hours = STEP.total_seconds() / 3600
    while at < end:
        duty = next(((s, e, km) for s, e, km in duties if s <= at < e), None)
        speed_kmh, power_kw, charging = 0.0, 0.0, "none"
        if duty is not None:
            departs, returns, km = duty
            mean_kmh = km / max((returns - departs).total_seconds() / 3600, 0.5)
            # Stops at lights and bus stops: a fifth of the samples stand still, the rest move around the mean.
            speed_kmh = 0.0 if rng.random() < 0.2 else max(0.0, rng.gauss(mean_kmh * 1.25, mean_kmh * 0.3))
            km_step = speed_kmh * hours
            energy = km_step * consumption
            state.loop_m += km_step * 1000
            state.odometer_km += km_step
            state.discharged_kwh += energy
            state.soc_pct = max(model.usable_soc_min_pct - 5, state.soc_pct - 100 * energy / capacity_kwh)
            power_kw = energy / hours if hours else 0.0
            lat, lon = _position(route, lengths, state.loop_m)
        else:
            state.loop_m = 0.0
            lat, lon = lat0 + rng.uniform(-0.0002, 0.0002), lon0 + rng.uniform(-0.0002, 0.0002)
            local_hour = at.astimezone(zone).hour
            # Charging at night (from 22:00 to the morning), as a managed depot does in the cheap hours.
            if max_charge_kw > 0 and (local_hour >= 22 or local_hour < 5) and state.soc_pct < full_pct - 0.5:
                taper = 1.0 if state.soc_pct < 80 else max(0.2, (full_pct - state.soc_pct) / (full_pct - 80))
                charge_kw = max_charge_kw * 0.95 * taper
                energy = min(charge_kw * hours, (full_pct - state.soc_pct) / 100 * capacity_kwh)
                state.charged_kwh += energy
                state.soc_pct += 100 * energy / capacity_kwh
                power_kw = -energy / hours
                charging = "dc" if model.max_dc_kw > 0 else "ac"
        voltage = nominal_v * (0.93 + 0.0014 * state.soc_pct)
        readings.append(
            {
                "recorded_at": at.isoformat(),
                "soc_pct": round(state.soc_pct, 2),
                "odometer_km": round(state.odometer_km, 3),
                "latitude": round(lat, 6),
                "longitude": round(lon, 6),
                "speed_kmh": round(speed_kmh, 1),
                "pack_voltage_v": round(voltage, 1),
                "pack_current_a": round(power_kw * 1000 / voltage, 1),
                "pack_temp_c": round(temperature_c + 3 + abs(power_kw) / 40, 1),
                "energy_discharged_kwh": round(state.discharged_kwh, 3),
                "energy_charged_kwh": round(state.charged_kwh, 3),
                "charging_state": charging,
            }
        )
        at += STEP
    return readings


def synthetic_telemetry(vehicles, *, end: dt.datetime | None = None, hours: int = 24, seed: int = 17) -> int:
    """Ingest ``hours`` of synthetic readings up to ``end`` (default now) for each vehicle with a depot and in
    service; the number of readings sent. Windows are aligned to ``STEP`` so that re-runs repeat instants."""
    end = end or timezone.now()
    step_s = int(STEP.total_seconds())
    end = dt.datetime.fromtimestamp(int(end.timestamp()) // step_s * step_s, tz=dt.UTC)
    start = end - dt.timedelta(hours=hours)
    sent = 0
    batch = max_batch_readings()
    for vehicle in vehicles.filter(status=Vehicle.Status.IN_SERVICE, home_depot__isnull=False).select_related(
        "model", "home_depot"
    ):
        readings = vehicle_day(vehicle, start=start, end=end, seed=seed)
        for i in range(0, len(readings), batch):
            telemetry_ingest(readings=readings[i : i + batch], vehicle=vehicle)
        sent += len(readings)
    return sent
