"""Reads of the battery registry."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Max, OuterRef, Prefetch, QuerySet, Subquery
from django.utils.formats import number_format
from django.utils.translation import ngettext

from batteries.models import BatteryPack, HealthObservation, PackInstallation, SoHForecast
from fleet.models import Vehicle


def active_pack(vehicle: Vehicle) -> BatteryPack | None:
    installation = (
        PackInstallation.objects.filter(vehicle=vehicle, removed_at__isnull=True).select_related("pack").first()
    )
    return installation.pack if installation else None


def current_vehicle(pack: BatteryPack) -> Vehicle | None:
    """The vehicle ``pack`` is installed in now (with its model and home depot), or None when it is out."""
    return current_vehicles([pack.pk]).get(pack.pk)


def current_vehicles(pack_ids: list[int]) -> dict[int, Vehicle]:
    """``current_vehicle`` of many packs in one query: pack id -> its vehicle now (packs that are out: absent).
    A pack with two open installations (a swap recorded in the wrong order) is in the latest one."""
    vehicles: dict[int, Vehicle] = {}
    installations = (
        PackInstallation.objects.filter(pack_id__in=pack_ids, removed_at__isnull=True)
        .select_related("vehicle__model", "vehicle__home_depot")
        .order_by("pack_id", "-installed_at")
    )
    for installation in installations:
        vehicles.setdefault(installation.pack_id, installation.vehicle)
    return vehicles


def installed_pack_nominal_capacity(vehicle: Vehicle) -> tuple[float, float | None] | None:
    """Nominal (kWh, Ah) of the pack installed in ``vehicle``, or None when it carries none."""
    pack = active_pack(vehicle)
    return (pack.nominal_kwh, pack.nominal_ah) if pack is not None else None


def latest_soh_pct(pack: BatteryPack) -> float | None:
    """The newest word on the pack's SoH: its latest observation or its latest forecast's "now", whichever
    is more recent (a forecast carries an old capacity test forward through the months since)."""
    observation = HealthObservation.objects.filter(pack=pack).order_by("-observed_at").first()
    forecast = SoHForecast.objects.filter(pack=pack).order_by("-as_of").first()
    if forecast and (observation is None or forecast.as_of > observation.observed_at.date()):
        return forecast.soh_now_pct
    return observation.soh_pct if observation else None


def _plausible_soh_pct(soh: float | None) -> float:
    """A SoH that is unknown or not a plausible number (NaN, infinite, <= 0 or above 120 %: a broken measurement
    or forecast) counts as new rather than poisoning a plan."""
    if soh is None or not math.isfinite(soh) or not 0 < soh <= 120:
        return 100.0
    return soh


def vehicle_capacity_kwh(vehicle: Vehicle) -> float:
    """The vehicle's battery capacity now, in kWh: its installed pack's as-new capacity x the pack's latest SoH.

    The one home of this rule (planning, sessions and reports read it; ``vehicle_capacities`` is the same for
    many vehicles at once). A vehicle with no registered pack has its model's nameplate; an implausible SoH
    counts as new (``_plausible_soh_pct``).
    """
    pack = active_pack(vehicle)
    if pack is None:
        return vehicle.model.nominal_pack_kwh
    return pack.baseline_capacity_kwh * _plausible_soh_pct(latest_soh_pct(pack)) / 100.0


@dataclass(frozen=True)
class VehicleCapacity:
    capacity_kwh: float  # as ``vehicle_capacity_kwh``
    soh_pct: float  # the SoH it used (100 when unknown or implausible)
    has_pack: bool


def vehicle_capacities(vehicles: Iterable[Vehicle]) -> dict[int, VehicleCapacity]:
    """``vehicle_capacity_kwh`` for many vehicles in one query (vehicle pk -> capacity): each installed pack
    with its latest observation and latest forecast as subqueries, the newer of the two winning as in
    ``latest_soh_pct``. The vehicles need their ``model`` (a vehicle with no pack has its nameplate)."""
    vehicles = list(vehicles)
    observation = HealthObservation.objects.filter(pack=OuterRef("pack_id")).order_by("-observed_at")
    forecast = SoHForecast.objects.filter(pack=OuterRef("pack_id")).order_by("-as_of")
    installed = (
        PackInstallation.objects.filter(vehicle__in=[v.pk for v in vehicles], removed_at__isnull=True)
        .annotate(
            observed_soh=Subquery(observation.values("soh_pct")[:1]),
            observed_at=Subquery(observation.values("observed_at")[:1]),
            forecast_soh=Subquery(forecast.values("soh_now_pct")[:1]),
            forecast_as_of=Subquery(forecast.values("as_of")[:1]),
        )
        .values_list(
            "vehicle_id",
            "pack__as_new_capacity_kwh",
            "pack__nominal_kwh",
            "observed_soh",
            "observed_at",
            "forecast_soh",
            "forecast_as_of",
        )
    )
    packs = {row[0]: row[1:] for row in installed}
    capacities: dict[int, VehicleCapacity] = {}
    for vehicle in vehicles:
        if vehicle.pk not in packs:
            capacities[vehicle.pk] = VehicleCapacity(vehicle.model.nominal_pack_kwh, 100.0, has_pack=False)
            continue
        as_new, nominal, observed_soh, observed_at, forecast_soh, forecast_as_of = packs[vehicle.pk]
        newer_forecast = forecast_as_of is not None and (observed_at is None or forecast_as_of > observed_at.date())
        soh = _plausible_soh_pct(forecast_soh if newer_forecast else observed_soh)
        capacities[vehicle.pk] = VehicleCapacity((as_new or nominal) * soh / 100.0, soh, has_pack=True)
    return capacities


def pack_queryset() -> QuerySet[BatteryPack]:
    """Packs with the vehicle they are in now (``active_installations``, a list of 0 or 1) and their latest
    SoH (``latest_observed_soh_pct``), in two queries whatever the page size. Callers restrict it."""
    latest_soh = HealthObservation.objects.filter(pack=OuterRef("pk")).order_by("-observed_at").values("soh_pct")[:1]
    return (
        BatteryPack.objects.select_related("organization")
        .prefetch_related(
            Prefetch(
                "installations",
                queryset=PackInstallation.objects.filter(removed_at__isnull=True).select_related("vehicle"),
                to_attr="active_installations",
            )
        )
        .annotate(latest_observed_soh_pct=Subquery(latest_soh))
    )


def pack_installation_queryset() -> QuerySet[PackInstallation]:
    return PackInstallation.objects.select_related("pack", "vehicle")


def health_observation_queryset() -> QuerySet[HealthObservation]:
    return HealthObservation.objects.select_related("pack")


def packs_in_depot(depot) -> QuerySet[BatteryPack]:
    """Packs now installed in vehicles whose home depot is ``depot``."""
    return BatteryPack.objects.filter(
        installations__removed_at__isnull=True, installations__vehicle__home_depot=depot
    ).order_by("serial")


def latest_forecast(pack: BatteryPack) -> SoHForecast | None:
    return SoHForecast.objects.filter(pack=pack).order_by("-as_of").first()


DAYS_PER_YEAR = 365.25


def remaining_life_label(forecast: SoHForecast) -> str:
    """The remaining life as people read it: "1,234 days", or, when the end of life lies beyond the forecast's
    horizon (``rul_censored``: ``rul_days`` is then only the horizon), "> 10 years" rather than a figure that
    looks measured."""
    if forecast.rul_censored:
        years = int(forecast.rul_days // DAYS_PER_YEAR)
        return ngettext("> %(years)d year", "> %(years)d years", years) % {"years": years}
    return ngettext("%(days)s day", "%(days)s days", forecast.rul_days) % {
        "days": number_format(forecast.rul_days, force_grouping=True)
    }


def active_pack_serial() -> Subquery:
    """Annotation for a ``Vehicle`` queryset: the serial of the pack installed in it now (None without one)."""
    active = PackInstallation.objects.filter(vehicle=OuterRef("pk"), removed_at__isnull=True)
    return Subquery(active.values("pack__serial")[:1])


def last_forecast_at_by_depot(depot_ids: list[int]) -> dict[int, dt.datetime]:
    """Per depot, when the newest ageing forecast (by its as-of date) of a pack installed in one of its vehicles
    was made. One query, reading one forecast per installed pack whatever the forecast history: each pack's
    newest is one step down the (pack, as_of) unique index. (The maximum of ``created_at`` over every forecast
    read the whole history, 13 rows a pack after 90 nights and growing: 1.4 s on the city-scale dashboard.)"""
    newest = SoHForecast.objects.filter(pack_id=OuterRef("pack_id")).order_by("-as_of").values("created_at")[:1]
    rows = (
        PackInstallation.objects.filter(removed_at__isnull=True, vehicle__home_depot_id__in=depot_ids)
        .order_by()
        .values("vehicle__home_depot_id")
        .annotate(latest=Max(Subquery(newest)))
    )
    return {row["vehicle__home_depot_id"]: row["latest"] for row in rows if row["latest"] is not None}
