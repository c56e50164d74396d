"""Battery health pages of the admin: one pack's history and forecast, and the fleet's packs side by side.

Bodies of ``BatteryPackAdmin``'s extra views (batteries/admin.py registers the URLs); they receive packs already
narrowed to the user's depots by the admin's ``get_queryset``.
"""

from __future__ import annotations

import csv
import datetime as dt
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, cast

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, FilteredRelation, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from batteries.models import BatteryPack, HealthObservation, PackInstallation, SoHForecast
from batteries.selectors import current_vehicle
from fleet.models import Vehicle

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

EOL_SOH_PCT = 80.0
FAST_AGEING_RATIO = 1.5  # as batteries.forecast_service.FLEET_FADE_RATIO_ALERT: the same "abnormal" on page and alert


def _ms(day: dt.date | dt.datetime) -> int:
    if isinstance(day, dt.datetime):
        return int(day.timestamp() * 1000)
    return int(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp() * 1000)


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
    vehicle = current_vehicle(pack)
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
    from batteries.forecast_service import forecast_packs

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

PACKS_PER_PAGE = 100


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

    def ratio(self, fade_pct_per_year: float) -> float | None:
        median = self.median
        return fade_pct_per_year / median if median else None


@dataclass
class FadePoint:
    """One pack's latest fade rate in its group, for the chart."""

    pack_id: int
    serial: str
    group_key: tuple
    fade_pct_per_year: float
    ratio: float | None = None

    @property
    def fast(self) -> bool:
        return self.ratio is not None and self.ratio > FAST_AGEING_RATIO


@dataclass
class FleetAgeing:
    """Every pack's latest fade rate against its (vehicle model, depot) group, over *all* the packs shown.

    Built in one query whatever the number of packs: the page of the table compares its packs with medians of
    whole groups, not of the packs that happen to share the page.
    """

    groups: dict[tuple, AgeingGroup]
    points: list[FadePoint]
    forecast_count: int

    @property
    def fast_count(self) -> int:
        return sum(1 for point in self.points if point.fast)


def _latest_forecast(field_name: str) -> Subquery:
    return Subquery(SoHForecast.objects.filter(pack=OuterRef("pk")).order_by("-as_of").values(field_name)[:1])


def with_latest_forecast(packs: QuerySet[BatteryPack]) -> QuerySet[BatteryPack]:
    """Packs with the vehicle they are in now and their latest forecast, in three queries in all."""
    return packs.annotate(latest_forecast_id=_latest_forecast("pk")).prefetch_related(
        Prefetch(
            "installations",
            queryset=PackInstallation.objects.filter(removed_at__isnull=True).select_related(
                "vehicle__model", "vehicle__home_depot"
            ),
            to_attr="active_installations",
        )
    )


class RankedPack(TypedDict):
    """What ``ranked_by_remaining_life`` adds to each pack."""

    latest_forecast_id: int | None
    latest_rul_days: int | None
    active_installations: list[PackInstallation]  # the prefetch's to_attr: the one the pack is in now, if any


def ranked_by_remaining_life(packs: QuerySet[BatteryPack]) -> QuerySet[WithAnnotations[BatteryPack, RankedPack]]:
    """Shortest remaining life first, packs without a forecast last; ranked by the database, so it can be paged."""
    ranked = (
        with_latest_forecast(packs)
        .annotate(latest_rul_days=_latest_forecast("rul_days"))
        .order_by(F("latest_rul_days").asc(nulls_last=True), "serial", "pk")
    )
    # The plugin cannot follow the annotation through with_latest_forecast nor see a prefetch's to_attr.
    return cast("QuerySet[WithAnnotations[BatteryPack, RankedPack]]", ranked)


def fleet_ageing(packs: QuerySet[BatteryPack]) -> FleetAgeing:
    """Group every pack of ``packs`` by the model and depot of the vehicle it is in now (one query)."""
    rows = (
        BatteryPack.objects.filter(pk__in=packs.values("pk"))
        .annotate(
            active=FilteredRelation("installations", condition=Q(installations__removed_at__isnull=True)),
            latest_fade=_latest_forecast("fade_pct_per_year"),
        )
        .values_list(
            "pk",
            "serial",
            "latest_fade",
            "active__vehicle_id",
            "active__vehicle__model_id",
            "active__vehicle__model__name",
            "active__vehicle__home_depot_id",
            "active__vehicle__home_depot__name",
        )
    )
    groups: dict[tuple, AgeingGroup] = {}
    points = []
    forecast_count = 0
    for pack_id, serial, fade, vehicle_id, model_id, model_name, depot_id, depot_name in rows:
        forecast_count += fade is not None
        if vehicle_id is None:
            continue
        key = (model_id, depot_id)
        if key not in groups:
            depot_label = depot_name if depot_id is not None else _("no depot")
            groups[key] = AgeingGroup(label=f"{model_name} · {depot_label}")
        group = groups[key]
        if fade is not None:
            group.rates.append(fade)
            points.append(FadePoint(pack_id=pack_id, serial=serial, group_key=key, fade_pct_per_year=fade))
    for point in points:
        point.ratio = groups[point.group_key].ratio(point.fade_pct_per_year)
    return FleetAgeing(groups=groups, points=points, forecast_count=forecast_count)


def pack_rows(packs: Sequence[WithAnnotations[BatteryPack, RankedPack]], ageing: FleetAgeing) -> list[PackRow]:
    """Table rows for ``packs`` (from ``ranked_by_remaining_life``, in that order), compared with their group."""
    forecasts = {
        f.pk: f
        for f in SoHForecast.objects.filter(pk__in=[p.latest_forecast_id for p in packs if p.latest_forecast_id]).defer(
            "points", "inputs"
        )
    }
    rows = []
    for pack in packs:
        vehicle = pack.active_installations[0].vehicle if pack.active_installations else None
        forecast = forecasts.get(pack.latest_forecast_id) if pack.latest_forecast_id is not None else None
        row = PackRow(pack=pack, vehicle=vehicle, forecast=forecast)
        # A pack installed between the two queries has no group yet: it shows without a comparison.
        group_key = (vehicle.model_id, vehicle.home_depot_id) if vehicle is not None else None
        group = ageing.groups.get(group_key) if group_key is not None else None
        if group is not None:
            row.group_key = group_key
            row.group_label = group.label
            if row.forecast is not None:
                row.group_median = group.median
                row.ratio = group.ratio(row.forecast.fade_pct_per_year)
        rows.append(row)
    return rows


def fleet_rows(packs: QuerySet[BatteryPack]) -> list[PackRow]:
    """All of ``packs`` ranked by remaining life (shortest first; no forecast last), each against its group."""
    return pack_rows(list(ranked_by_remaining_life(packs)), fleet_ageing(packs))


def ageing_chart_data(ageing: FleetAgeing) -> dict:
    ordered_keys = sorted((k for k, g in ageing.groups.items() if g.rates), key=lambda k: ageing.groups[k].label)
    index = {key: i for i, key in enumerate(ordered_keys)}  # groups with nothing to draw: left out
    packs = []
    for point in ageing.points:
        # A fixed spread inside each group's column so that equal rates stay visible as separate packs.
        jitter = ((point.pack_id * 7919) % 100 - 50) / 250
        packs.append(
            {
                "group": index[point.group_key],
                "jitter": jitter,
                "fade": round(point.fade_pct_per_year, 3),
                "serial": point.serial,
                "highlight": point.fast,
            }
        )
    return {
        "groups": [{"label": ageing.groups[k].label, "median": ageing.groups[k].median} for k in ordered_keys],
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
    """The fleet's packs by remaining life, ``PACKS_PER_PAGE`` at a time; the chart and the counts cover them all.

    Queries per page do not grow with the fleet: the page's packs (count, rows, installations, forecasts) and
    one query for every pack's fade rate and group.
    """
    ageing = fleet_ageing(packs)
    paginator = Paginator(ranked_by_remaining_life(packs), PACKS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))  # not a number or past the end: the first or last page
    context = {
        **admin_context,
        "title": _("Battery health of the fleet"),
        "rows": pack_rows(list(page.object_list), ageing),
        "page_obj": page,
        "paginator": paginator,
        "page_range": paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "chart_data": ageing_chart_data(ageing),
        "depots": depots,
        "selected_depot": request.GET.get("depot", ""),
        "forecast_count": ageing.forecast_count,
        "fast_count": ageing.fast_count,
        "fast_ratio": FAST_AGEING_RATIO,
    }
    return TemplateResponse(request, "admin/batteries/batterypack/fleet_health.html", context)


def health_csv(packs: QuerySet[BatteryPack]) -> HttpResponse:
    """The list page's export: per pack, where it is, its latest observed SoH and its latest forecast."""
    rows = fleet_rows(packs)
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
