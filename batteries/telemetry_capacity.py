"""Battery health from telemetry: a capacity estimate of a vehicle's installed pack, recorded as a health
observation with its uncertainty. Fleet measures (``fleet.telemetry.capacity``, pure); batteries records."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.utils import timezone

from batteries.selectors import active_pack
from batteries.services import health_observation_record
from fleet.models import Vehicle
from fleet.telemetry.capacity import MIN_SAMPLES, estimate_capacity
from fleet.telemetry.selectors import capacity_samples


def capacity_observation_record(*, vehicle, since: dt.datetime, until: dt.datetime):
    """Estimate the capacity of ``vehicle``'s installed pack from its readings in [since, until) and record it
    as a ``telemetry`` health observation at the end of the last segment used. Re-running updates it.

    Returns the observation, or None (no pack installed, or no qualifying charge).
    """
    pack = active_pack(vehicle)
    if pack is None:
        return None
    installation = pack.installations.filter(removed_at__isnull=True).first()
    since = max(since, installation.installed_at) if installation else since
    rows = capacity_samples(vehicle, since, until)
    if len(rows) < MIN_SAMPLES:
        return None
    moments = [row[0] for row in rows]
    values = np.array([row[1:] for row in rows], dtype=np.float64)
    estimate = estimate_capacity(
        t_s=np.array([moment.timestamp() for moment in moments]),
        soc_pct=values[:, 0],
        current_a=values[:, 1],
        charging_state=values[:, 2],
        speed_kmh=values[:, 3],
    )
    if estimate is None:
        return None
    baseline_ah = pack.nominal_ah * pack.baseline_capacity_kwh / pack.nominal_kwh
    soh_pct = 100.0 * estimate.capacity_ah / baseline_ah
    if not 0 < soh_pct <= 120:
        return None  # implausible: a mis-scaled current or SoC; better no observation than a wrong one
    observation, _created = health_observation_record(
        pack=pack,
        observed_at=moments[estimate.segments[-1].stop - 1],
        source="telemetry",
        soh_pct=round(soh_pct, 2),
        capacity_kwh=round(estimate.capacity_ah * pack.nominal_kwh / pack.nominal_ah, 2),
        uncertainty_pct=round(estimate.uncertainty_pct, 2),
        notes=f"{len(estimate.segments)} charging segment(s), {estimate.soc_span_pct:.0f} % SoC in total, "
        f"{estimate.capacity_ah:.1f} Ah.",
    )
    return observation


def capacity_observations_record(*, vehicle_ids: list[int] | None = None, days: int = 14, until=None) -> int:
    """Record a telemetry capacity estimate for each vehicle (not retired) with a qualifying charge in the last
    ``days``; returns how many were recorded."""
    until = until or timezone.now()
    vehicles = Vehicle.objects.exclude(status=Vehicle.Status.RETIRED)
    if vehicle_ids is not None:
        vehicles = Vehicle.objects.filter(pk__in=vehicle_ids)
    recorded = 0
    for vehicle in vehicles.iterator():
        if capacity_observation_record(vehicle=vehicle, since=until - dt.timedelta(days=days), until=until):
            recorded += 1
    return recorded
