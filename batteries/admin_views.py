"""Battery health pages of the admin: one pack's history and forecast, and the fleet's packs side by side.

Bodies of ``BatteryPackAdmin``'s extra views (batteries/admin.py registers the URLs); they receive packs already
narrowed to the user's depots by the admin's ``get_queryset``.
"""

from __future__ import annotations

import csv
import datetime as dt
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib import messages
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from batteries.models import BatteryPack, HealthObservation, PackInstallation, SoHForecast
from fleet.models import Vehicle

EOL_SOH_PCT = 80.0
FAST_AGEING_RATIO = 1.5  # as batteries.forecasting.FLEET_FADE_RATIO_ALERT: the same "abnormal" on page and alert


def _ms(day: dt.date | dt.datetime) -> int:
    if isinstance(day, dt.datetime):
        return int(day.timestamp() * 1000)
    return int(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp() * 1000)


def _current_vehicle(pack: BatteryPack) -> Vehicle | None:
    installation = (
        PackInstallation.objects.filter(pack=pack, removed_at__isnull=True)
        .select_related("vehicle__home_depot", "vehicle__model")
        .first()
    )
    return installation.vehicle if installation else None


def health_chart_data(pack: BatteryPack, forecast: SoHForecast | None, observations: list[HealthObservation]) -> dict:
    """Observed SoH, the forecast's P10/P50/P90 by month, the 80 % and warranty lines and the predicted dates."""
    points = [
        {
            "t": _ms(dt.date.fromisoformat(p["date"])),
            "p50": p["soh_pct"],
            "p10": p.get("soh_p10_pct"),
            "p90": p.get("soh_p90_pct"),
        }
        for p in (forecast.points if forecast else [])
    ]
    marks = []
    if forecast and forecast.eol_80_on:
        marks.append({"t": _ms(forecast.eol_80_on), "y": EOL_SOH_PCT})
    if forecast and forecast.warranty_floor_on and pack.warranty_min_soh_pct is not None:
        marks.append({"t": _ms(forecast.warranty_floor_on), "y": pack.warranty_min_soh_pct})
    return {
        "points": points,
        "observations": [{"t": _ms(o.observed_at), "soh": o.soh_pct} for o in observations],
        "warranty_pct": pack.warranty_min_soh_pct,
        "marks": marks,
        "text": {
            "median": _("Forecast (median)"),
            "band": _("P10–P90 band"),
            "p90": "P90",
            "observed": _("Observed SoH"),
            "eol_line": _("End of life (80 %)"),
            "warranty_line": _("Warranty floor"),
            "dates": _("Predicted dates"),
            "soh_axis": _("SoH (%)"),
        },
    }


def pack_health(
    request: HttpRequest, pack: BatteryPack, *, admin_context: dict, may_forecast: bool
) -> TemplateResponse:
    forecast = SoHForecast.objects.filter(pack=pack).order_by("-as_of").first()
    observations = list(HealthObservation.objects.filter(pack=pack).order_by("observed_at"))
    vehicle = _current_vehicle(pack)
    context = {
        **admin_context,
        "title": _("Battery health: pack %(serial)s") % {"serial": pack.serial},
        "pack": pack,
        "vehicle": vehicle,
        "forecast": forecast,
        "observations": observations,
        "latest_observation": observations[-1] if observations else None,
        "chart_data": health_chart_data(pack, forecast, observations),
        "may_forecast": may_forecast,
    }
    return TemplateResponse(request, "admin/batteries/batterypack/health.html", context)


def forecast_now(request: HttpRequest, packs: list[BatteryPack]) -> None:
    """Forecast ``packs`` in this request and say how it went (there is no Celery task for forecasts yet)."""
    from batteries.forecasting import forecast_packs

    if not packs:
        messages.warning(request, _("No pack you manage was selected."))
        return
    started = time.perf_counter()
    try:
        run = forecast_packs(packs=packs, trigger=f"admin {request.user.get_username()}"[:60])
    except Exception as exc:  # the run is recorded as failed; the manager needs the reason, not a 500
        messages.error(request, _("The forecast failed: %(reason)s") % {"reason": f"{type(exc).__name__}: {exc}"})
        return
    messages.success(
        request,
        _("Forecast %(done)d of %(total)d pack(s) in %(seconds).0f s (in this request).")
        % {"done": run.packs_done, "total": run.packs_total, "seconds": time.perf_counter() - started},
    )


# --- The fleet ------------------------------------------------------------------------------------------


@dataclass
class PackRow:
    pack: BatteryPack
    vehicle: Vehicle | None
    forecast: SoHForecast | None
    group_key: tuple | None = None
    group_label: str = ""
    group_median: float | None = None
    ratio: float | None = None

    @property
    def fast(self) -> bool:
        return self.ratio is not None and self.ratio > FAST_AGEING_RATIO


@dataclass
class AgeingGroup:
    label: str
    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


def with_latest_forecast(packs: QuerySet[BatteryPack]) -> QuerySet[BatteryPack]:
    """Packs with the vehicle they are in now and their latest forecast, in three queries in all."""
    latest = SoHForecast.objects.filter(pack=OuterRef("pk")).order_by("-as_of").values("pk")[:1]
    return packs.annotate(latest_forecast_id=Subquery(latest)).prefetch_related(
        Prefetch(
            "installations",
            queryset=PackInstallation.objects.filter(removed_at__isnull=True).select_related(
                "vehicle__model", "vehicle__home_depot"
            ),
            to_attr="active_installations",
        )
    )


def fleet_rows(packs: QuerySet[BatteryPack]) -> tuple[list[PackRow], list[AgeingGroup]]:
    """Packs ranked by remaining life (shortest first; no forecast last), each against its model and depot."""
    packs = list(with_latest_forecast(packs))
    forecasts = {
        f.pk: f
        for f in SoHForecast.objects.filter(pk__in=[p.latest_forecast_id for p in packs if p.latest_forecast_id]).defer(
            "points", "inputs"
        )
    }
    rows = []
    groups: dict[tuple, AgeingGroup] = {}
    for pack in packs:
        vehicle = pack.active_installations[0].vehicle if pack.active_installations else None
        row = PackRow(pack=pack, vehicle=vehicle, forecast=forecasts.get(pack.latest_forecast_id))
        if vehicle is not None:
            row.group_key = (vehicle.model_id, vehicle.home_depot_id)
            depot_name = vehicle.home_depot.name if vehicle.home_depot else _("no depot")
            group = groups.setdefault(row.group_key, AgeingGroup(label=f"{vehicle.model.name} · {depot_name}"))
            row.group_label = group.label
            if row.forecast is not None:
                group.rates.append(row.forecast.fade_pct_per_year)
        rows.append(row)
    for row in rows:
        if row.group_key is not None and row.forecast is not None:
            median = groups[row.group_key].median
            row.group_median = median
            row.ratio = row.forecast.fade_pct_per_year / median if median else None
    rows.sort(key=lambda r: (r.forecast is None, r.forecast.rul_days if r.forecast else 0, r.pack.serial))
    return rows, list(groups.values())


def ageing_chart_data(rows: list[PackRow], groups: list[AgeingGroup]) -> dict:
    ordered = sorted((g for g in groups if g.rates), key=lambda g: g.label)  # groups with nothing to draw: left out
    index = {group.label: i for i, group in enumerate(ordered)}
    packs = []
    for row in rows:
        if row.forecast is None or row.group_key is None:
            continue
        # A fixed spread inside each group's column so that equal rates stay visible as separate packs.
        jitter = ((row.pack.pk * 7919) % 100 - 50) / 250
        packs.append(
            {
                "group": index[row.group_label],
                "jitter": jitter,
                "fade": round(row.forecast.fade_pct_per_year, 3),
                "serial": row.pack.serial,
                "highlight": row.fast,
            }
        )
    return {
        "groups": [{"label": g.label, "median": g.median} for g in ordered],
        "packs": packs,
        "text": {
            "packs": _("Packs (red: ageing fast for their group)"),
            "median": _("Median of the group"),
            "fade_axis": _("SoH lost per year (%)"),
        },
    }


def fleet_health(
    request: HttpRequest, packs: QuerySet[BatteryPack], *, admin_context: dict, depots
) -> TemplateResponse:
    rows, groups = fleet_rows(packs)
    by_depot = defaultdict(int)
    for row in rows:
        if row.vehicle is not None and row.vehicle.home_depot_id:
            by_depot[row.vehicle.home_depot_id] += 1
    context = {
        **admin_context,
        "title": _("Battery health of the fleet"),
        "rows": rows,
        "chart_data": ageing_chart_data(rows, groups),
        "depots": depots,
        "selected_depot": request.GET.get("depot", ""),
        "forecast_count": sum(1 for r in rows if r.forecast),
        "fast_count": sum(1 for r in rows if r.fast),
        "fast_ratio": FAST_AGEING_RATIO,
    }
    return TemplateResponse(request, "admin/batteries/batterypack/fleet_health.html", context)


def health_csv(packs: QuerySet[BatteryPack]) -> HttpResponse:
    """The list page's export: per pack, where it is, its latest observed SoH and its latest forecast."""
    rows, _groups = fleet_rows(packs)
    latest_observed = dict(
        HealthObservation.objects.filter(pack__in=[r.pack.pk for r in rows])
        .order_by("pack_id", "observed_at")
        .values_list("pack_id", "soh_pct")
    )  # ordered by time: the dict keeps each pack's last one
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="battery-health.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "serial",
            "chemistry",
            "vehicle",
            "depot",
            "latest_observed_soh_pct",
            "forecast_as_of",
            "soh_now_pct",
            "fade_pct_per_year",
            "group_median_fade_pct_per_year",
            "eol_80_on",
            "eol_80_p10_on",
            "eol_80_p90_on",
            "warranty_floor_on",
            "rul_days",
            "rul_km",
            "flags",
        ]
    )
    for r in rows:
        f = r.forecast
        writer.writerow(
            [
                r.pack.serial,
                r.pack.chemistry,
                r.vehicle.fleet_number if r.vehicle else "",
                r.vehicle.home_depot.code if r.vehicle and r.vehicle.home_depot else "",
                latest_observed.get(r.pack.pk, ""),
                f.as_of.isoformat() if f else "",
                round(f.soh_now_pct, 2) if f else "",
                round(f.fade_pct_per_year, 3) if f else "",
                round(r.group_median, 3) if r.group_median is not None else "",
                f.eol_80_on.isoformat() if f and f.eol_80_on else "",
                f.eol_80_p10_on.isoformat() if f and f.eol_80_p10_on else "",
                f.eol_80_p90_on.isoformat() if f and f.eol_80_p90_on else "",
                f.warranty_floor_on.isoformat() if f and f.warranty_floor_on else "",
                f.rul_days if f else "",
                round(f.rul_km) if f and f.rul_km is not None else "",
                " ".join(f.flags) if f else "",
            ]
        )
    return response
