"""The live fleet map: each vehicle of the user's depots at its last position, coloured by SoC, and the depots."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from charging.sessions import away_radius_m
from fleet.scoping import Action, restrict
from fleet.selectors import depot_queryset, vehicle_queryset
from fleet.telemetry.selectors import vehicle_live_state, with_live_state

# SoC bands of the markers: below 20 % red, below 50 % amber, else green; unknown SoC grey.
SOC_BANDS = ((20.0, "low"), (50.0, "mid"), (101.0, "high"))
STALE_AFTER_MINUTES = 30  # markers of vehicles not seen for this long are drawn faded


def soc_band(soc_pct: float | None) -> str:
    if soc_pct is None:
        return "unknown"
    return next(band for limit, band in SOC_BANDS if soc_pct < limit)


def map_data(user, *, now=None) -> dict:
    """What the map draws, as JSON-ready data (2 queries: vehicles with their live state, depots)."""
    now = now or timezone.now()
    vehicles = with_live_state(restrict(vehicle_queryset(), user, Action.VIEW)).filter(
        live_state__latitude__isnull=False, live_state__longitude__isnull=False
    )
    markers = []
    for vehicle in vehicles.order_by("fleet_number"):
        state = vehicle_live_state(vehicle)
        if state is None:  # not so: the filter above joins the live state
            continue
        age_min = (now - state.recorded_at).total_seconds() / 60
        markers.append(
            {
                "id": vehicle.pk,
                "fleet_number": vehicle.fleet_number,
                "depot": vehicle.home_depot.name if vehicle.home_depot else "",
                "lat": state.latitude,
                "lon": state.longitude,
                "soc_pct": None if state.soc_pct is None else round(state.soc_pct, 1),
                "band": soc_band(state.soc_pct),
                "speed_kmh": state.speed_kmh,
                "seen_at": state.recorded_at.isoformat(),
                "age_min": round(age_min, 1),
                "stale": age_min > STALE_AFTER_MINUTES,
            }
        )
    depots = restrict(depot_queryset(), user, Action.VIEW).filter(latitude__isnull=False, longitude__isnull=False)
    return {
        "vehicles": markers,
        "depots": [
            {"id": d.pk, "name": d.name, "lat": d.latitude, "lon": d.longitude, "radius_m": away_radius_m()}
            for d in depots.order_by("name")
        ],
        "tiles": {"url": settings.EVFLEET_MAP_TILE_URL, "attribution": settings.EVFLEET_MAP_TILE_ATTRIBUTION},
    }


def fleet_map(request: HttpRequest, *, admin_context: dict) -> TemplateResponse:
    data = map_data(request.user)
    context = {
        **admin_context,
        "title": _("Live fleet map"),
        "map_data": data,
        "vehicle_count": len(data["vehicles"]),
        "stale_count": sum(1 for v in data["vehicles"] if v["stale"]),
        "stale_minutes": STALE_AFTER_MINUTES,
        "depot_count": len(data["depots"]),
    }
    return TemplateResponse(request, "admin/citydata/fleet_map.html", context)
