"""Battery forecasts in the product: build each pack's forecast job from the database, run the core, store.

What a pack's job is made of:
- Duty: the median day of the vehicle's last ``DUTY_WINDOW_DAYS`` daily duty cycles when telemetry has at
  least ``MIN_DUTY_DAYS`` of them; otherwise its block assignments (km per service day) with the model's
  kWh/km, charged at the depot's connector power and finishing late (the depot plans are smart).
- Climate: the home depot's 12 monthly means (a default for vehicles with no depot: those packs are
  forecast by ``batteries.nightly.forecast_depotless_packs``, every night like the others).
- Calibration: the pack's own observations when it has enough; else a cluster fit over packs of the same
  chemistry, vehicle model and depot that do; else the chemistry prior. The band's width follows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Literal

from django.conf import settings
from django.db.models import Min, OuterRef, Subquery
from django.utils import timezone

from batteries import forecast as core
from batteries.models import BatteryPack, ForecastRun, HealthObservation, PackInstallation, SoHForecast
from batteries.selectors import current_vehicle, current_vehicles
from batteries.signals import pack_ageing_checked
from fleet.models import BlockAssignment, Depot, Vehicle

logger = logging.getLogger(__name__)

DUTY_WINDOW_DAYS = 60
MIN_DUTY_DAYS = 14
BLOCK_WINDOW_DAYS = 28
SUPPORTED_CHEMISTRIES: dict[str, Literal["LFP", "NMC"]] = {
    "LFP": "LFP",
    "NMC": "NMC",
    "NCA": "NMC",
}  # NCA ages like NMC closely enough
# Hermosillo's monthly means: the demo deployment's default for vehicles with no depot climate.
DEFAULT_CLIMATE_C = (17.0, 19.0, 22.0, 25.0, 29.0, 32.0, 32.0, 32.0, 31.0, 27.0, 21.0, 17.0)
METHOD = "SPM, EC-limited SEI + stress LAM (PyBaMM IDAKLU), state extrapolation"


def horizon_years() -> float:
    return float(settings.EVFLEET_FORECAST_HORIZON_YEARS)


def _duty_from_telemetry(days: list, as_of: dt.date) -> core.DutyStats | None:
    """The median day of the vehicle's duty cycles in the window (``_PackRecords.duty_days``), or None with
    fewer than ``MIN_DUTY_DAYS``."""
    if len(days) < MIN_DUTY_DAYS:
        return None

    def median(attr: str, default: float = 0.0) -> float:
        values = [getattr(d, attr) for d in days if getattr(d, attr) is not None]
        return float(statistics.median(values)) if values else default

    return core.DutyStats(
        energy_used_kwh=median("energy_used_kwh"),
        efc_per_day=median("equivalent_full_cycles"),
        soc_min=median("soc_min_pct") / 100,
        soc_max=median("soc_max_pct") / 100,
        soc_mean=median("soc_mean_pct") / 100,
        hours_above_90_soc=median("minutes_above_90_soc") / 60,
        pack_temp_mean_c=median("pack_temp_mean_c", 25.0),
        pack_temp_max_c=median("pack_temp_max_c", 30.0),
        max_charge_c_rate=median("max_charge_c_rate", 0.3),
        max_discharge_c_rate=median("max_discharge_c_rate", 0.5),
        energy_charged_kwh=median("energy_charged_kwh"),
        km_per_day=median("distance_km"),
        month=as_of.month,
    )


def _duty_from_blocks(vehicle: Vehicle, pack: BatteryPack, km_by_day: dict[dt.date, float]) -> core.BlockPlan:
    """The vehicle's planned duty from its blocks' km per service day in the window (``_PackRecords``)."""
    # Days without blocks count as rest days: the mean over the window, not over working days only.
    km_per_day = sum(km_by_day.values()) / BLOCK_WINDOW_DAYS if km_by_day else 0.0
    model = vehicle.model
    charge_kw = model.max_dc_kw or model.max_ac_kw
    return core.BlockPlan(
        km_per_day=max(km_per_day, 1.0),
        kwh_per_km=model.consumption_kwh_per_km,
        charge_c_rate=min(charge_kw / pack.nominal_kwh, 2.0),
        target_soc=model.usable_soc_max_pct / 100,
        charge_late=vehicle.home_depot is not None,
    )


def _climate(depot: Depot | None) -> core.Climate:
    monthly = depot.monthly_mean_temperature_c if depot and depot.monthly_mean_temperature_c else DEFAULT_CLIMATE_C
    return core.Climate(monthly_mean_c=tuple(float(t) for t in monthly))


#: Uncertainty (SoH percentage points) of an observation that states none, by source: a telemetry
#: estimate (partial charges, a BMS's coulomb counting) is far less certain than a capacity test.
DEFAULT_UNCERTAINTY_PCT = {
    HealthObservation.Source.CAPACITY_TEST: 1.0,
    HealthObservation.Source.MANUAL: 2.0,
    HealthObservation.Source.TELEMETRY: 3.0,
}


def _observations(pack: BatteryPack) -> list[core.HealthObservation]:
    return [
        core.HealthObservation(
            date=o.observed_at.date(),
            soh_pct=o.soh_pct,
            uncertainty_pct=o.uncertainty_pct or DEFAULT_UNCERTAINTY_PCT.get(HealthObservation.Source(o.source), 2.0),
        )
        for o in pack.health_observations.order_by("observed_at")
    ]


@dataclasses.dataclass(frozen=True)
class _PackRecords:
    """What a pack's forecast job is built from, read for a whole chunk at once (``_read_pack_records``)."""

    vehicle: Vehicle | None
    first_installed_on: dt.date | None  # read only for packs with no manufacturing date
    duty_days: list  # the vehicle's daily duty cycles in the telemetry window (DailyDutyCycle)
    km_by_day: dict[dt.date, float]  # the vehicle's blocks' km per service day in the block window


def _read_pack_records(packs: list[BatteryPack], as_of: dt.date) -> dict[int, _PackRecords]:
    """Each pack's records in four queries for all of them (current vehicles, first installations, duty cycles,
    blocks): per pack, building the night's 1,000 jobs took four queries each, twice (groups, then chunks)."""
    from fleet.models import DailyDutyCycle

    vehicles = current_vehicles([pack.pk for pack in packs])
    vehicle_ids = {vehicle.pk for vehicle in vehicles.values()}
    undated = [pack.pk for pack in packs if pack.manufactured_on is None]
    first_installed = dict(
        PackInstallation.objects.filter(pack_id__in=undated)
        .values("pack_id")
        .annotate(first=Min("installed_at"))
        .values_list("pack_id", "first")
    )
    duty_days: dict[int, list] = defaultdict(list)
    for day in DailyDutyCycle.objects.filter(
        vehicle_id__in=vehicle_ids, date__gt=as_of - dt.timedelta(days=DUTY_WINDOW_DAYS), date__lte=as_of
    ).exclude(soc_min_pct=None):
        duty_days[day.vehicle_id].append(day)
    window = (as_of - dt.timedelta(days=BLOCK_WINDOW_DAYS // 2), as_of + dt.timedelta(days=BLOCK_WINDOW_DAYS // 2))
    km_by_day: dict[int, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for vehicle_id, service_date, km in BlockAssignment.objects.filter(
        vehicle_id__in=vehicle_ids, service_date__range=window
    ).values_list("vehicle_id", "service_date", "block__distance_km"):
        km_by_day[vehicle_id][service_date] += km
    records = {}
    for pack in packs:
        vehicle = vehicles.get(pack.pk)
        installed = first_installed.get(pack.pk)
        records[pack.pk] = _PackRecords(
            vehicle=vehicle,
            first_installed_on=installed.date() if installed else None,
            duty_days=duty_days.get(vehicle.pk, []) if vehicle else [],
            km_by_day=dict(km_by_day.get(vehicle.pk, {})) if vehicle else {},
        )
    return records


def pack_jobs(
    packs: Iterable[BatteryPack], as_of: dt.date, *, years: float | None = None
) -> dict[int, tuple[Vehicle | None, core.ForecastJob | None]]:
    """Each pack's current vehicle and forecast job without calibration (None if it cannot be forecast, and why
    is logged), by pack id, read in a few queries for all of them."""
    packs = list(packs)
    records = _read_pack_records(packs, as_of)
    return {pack.pk: (records[pack.pk].vehicle, _pack_job(pack, records[pack.pk], as_of, years)) for pack in packs}


def pack_job(pack: BatteryPack, as_of: dt.date, *, years: float | None = None) -> core.ForecastJob | None:
    """One pack's ``pack_jobs`` job."""
    return pack_jobs([pack], as_of, years=years)[pack.pk][1]


def _pack_job(pack: BatteryPack, records: _PackRecords, as_of: dt.date, years: float | None) -> core.ForecastJob | None:
    chemistry = SUPPORTED_CHEMISTRIES.get(pack.chemistry)
    vehicle = records.vehicle
    if chemistry is None or vehicle is None:
        logger.info("pack %s: no forecast (chemistry %s, in a vehicle: %s)", pack, pack.chemistry, bool(vehicle))
        return None
    in_service = pack.manufactured_on or records.first_installed_on or as_of
    model = vehicle.model
    return core.ForecastJob(
        pack_id=str(pack.pk),
        pack=core.PackSpec(
            chemistry=chemistry,
            nominal_kwh=pack.baseline_capacity_kwh,
            nominal_ah=pack.nominal_ah,
            cells_series=pack.cells_in_series,
            cells_parallel=pack.cells_in_parallel,
            warranty_floor_soh_pct=pack.warranty_min_soh_pct or 70.0,
            usable_soc_min=model.usable_soc_min_pct / 100,
            usable_soc_max=model.usable_soc_max_pct / 100,
        ),
        duty=_duty_from_telemetry(records.duty_days, as_of) or _duty_from_blocks(vehicle, pack, records.km_by_day),
        climate=_climate(vehicle.home_depot),
        in_service_date=min(in_service, as_of),
        as_of=as_of,
        horizon_years=years if years is not None else horizon_years(),
    )


def in_duty_groups(packs: Iterable[BatteryPack], as_of: dt.date) -> list[list[int]]:
    """The packs' ids in duty groups (the core's duty signature), lighter duties first, each group by
    serial; the packs that cannot be forecast tonight form the last group (a chunk refuses them with the
    reason). Costs building each pack's job (a few queries a pack), far less than a group simulation."""
    keyed: list[tuple[tuple, str, int]] = []
    packs = list(packs)
    jobs = pack_jobs(packs, as_of)
    for pack in packs:
        job = jobs[pack.pk][1]
        key: tuple = (1,)
        if job is not None:
            with contextlib.suppress(core.ForecastRefused):  # refused tonight with its reason, by the chunk
                key = (0, core.duty_signature(core.prepare(job)))
        keyed.append((key, pack.serial, pack.pk))
    groups: dict[tuple, list[int]] = {}
    for key, _serial, pk in sorted(keyed, key=lambda item: (item[0], item[1])):
        groups.setdefault(key, []).append(pk)
    return list(groups.values())


def in_duty_order(packs: Iterable[BatteryPack], as_of: dt.date) -> list[int]:
    """The packs' ids ordered by duty signature (``in_duty_groups`` one after the other)."""
    return [pk for group in in_duty_groups(packs, as_of) for pk in group]


def _cluster_key(pack: BatteryPack, vehicle: Vehicle | None) -> tuple:
    return (pack.chemistry, vehicle.model_id if vehicle else None, vehicle.home_depot_id if vehicle else None)


def _battery_model_key(pack: BatteryPack, vehicle: Vehicle | None) -> tuple | None:
    """Packs of one battery model - the same cell, whatever their duty or depot - within one operator. The
    registry has no cell part number, so the same chemistry and pack design (Ah, cells in series and in
    parallel) in the same vehicle model stands for it. None for a pack out of a vehicle."""
    if vehicle is None:
        return None
    return (
        pack.organization_id,
        pack.chemistry,
        vehicle.model_id,
        pack.nominal_ah,
        pack.cells_in_series,
        pack.cells_in_parallel,
    )


def _model_evidence(key: tuple) -> list[tuple[int, tuple]]:
    """(pack id, its latest fit's evidence) for the packs of one battery model now in a vehicle: what their
    own checks said, without any prior (``core.AgeingCalibration.evidence``). One query a model."""
    organization_id, chemistry, model_id, nominal_ah, series, parallel = key
    latest = (
        SoHForecast.objects.filter(pack=OuterRef("pk")).order_by("-as_of").values("inputs__calibration__evidence")[:1]
    )
    packs = (
        BatteryPack.objects.filter(
            organization_id=organization_id,
            chemistry=chemistry,
            nominal_ah=nominal_ah,
            cells_in_series=series,
            cells_in_parallel=parallel,
            installations__removed_at__isnull=True,
            installations__vehicle__model_id=model_id,
        )
        .annotate(evidence=Subquery(latest))
        .values_list("pk", "evidence")
    )
    return [(pk, tuple(evidence)) for pk, evidence in packs if isinstance(evidence, list) and len(evidence) == 5]


def _model_priors(
    jobs: dict[int, tuple[BatteryPack, core.ForecastJob]],
    vehicles: dict[int, Vehicle | None],
    observations: dict[str, list[core.HealthObservation]],
) -> dict[str, core.AgeingCalibration]:
    """Each observed pack's prior learnt from the other packs of its battery model (their stored evidence,
    never its own: no pack confirms itself), keyed by the job's pack id. A pack whose model has no other
    pack with a fit keeps the chemistry preset's prior (absent here)."""
    observed: dict[tuple, list[int]] = defaultdict(list)
    for pack, job in jobs.values():
        key = _battery_model_key(pack, vehicles[pack.pk])
        if key is not None and observations.get(job.pack_id):
            observed[key].append(pack.pk)
    priors = {}
    for key, pks in observed.items():
        chemistry = jobs[pks[0]][1].pack.chemistry
        learnt = core.model_priors(core.prior_calibration(chemistry), dict(_model_evidence(key)), pks)
        for pk in pks:
            if learnt[pk].model_packs:
                priors[jobs[pk][1].pack_id] = learnt[pk]
    return priors


def _calibrate(
    jobs: dict[int, tuple[BatteryPack, core.ForecastJob]], vehicles: dict[int, Vehicle | None]
) -> tuple[dict[str, list[core.HealthObservation]], dict[str, tuple], dict[str, core.AgeingCalibration]]:
    """What the fleet run calibrates from, keyed by the job's pack id: each pack's observations, its cluster
    key (chemistry, vehicle model, depot) and, for an observed pack, its battery model's learnt prior
    (``_model_priors``). The core fits packs with usable observations against that prior (else the
    preset's), gives a pack without its cluster's value (2+ fitted packs), else the prior: from the
    forecast's own group runs."""
    observations = {job.pack_id: _observations(pack) for pack, job in jobs.values()}
    clusters = {job.pack_id: _cluster_key(pack, vehicles[pack.pk]) for pack, job in jobs.values()}
    return observations, clusters, _model_priors(jobs, vehicles, observations)


def forecast_packs(
    *, packs: Iterable[BatteryPack], as_of: dt.date | None = None, trigger: str = "", years: float | None = None
) -> ForecastRun:
    """Forecast these packs (grouped by duty signature, each group solved once) and store the results."""
    started = time.perf_counter()
    as_of = as_of or timezone.localdate()
    run = ForecastRun.objects.create(as_of=as_of, trigger=trigger[:60])
    jobs: dict[int, tuple[BatteryPack, core.ForecastJob]] = {}
    vehicles: dict[int, Vehicle | None] = {}
    skipped = 0
    packs = list(packs)
    built = pack_jobs(packs, as_of, years=years)
    for pack in packs:
        vehicles[pack.pk], job = built[pack.pk]
        if job is None:
            skipped += 1
        else:
            jobs[pack.pk] = (pack, job)
    try:
        fleet_jobs = [
            dataclasses.replace(job, calibration=core.prior_calibration(job.pack.chemistry))
            for _pack, job in jobs.values()
        ]
        observations, clusters, priors = _calibrate(jobs, vehicles)
        fleet = core.forecast_fleet(fleet_jobs, observations=observations, clusters=clusters, priors=priors)
    except Exception as exc:  # the run is recorded as failed, with the reason, and the error goes on
        ForecastRun.objects.filter(pk=run.pk).update(
            status=ForecastRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
            duration_s=time.perf_counter() - started,
        )
        raise
    reasons = []
    forecasts = []
    for job in fleet_jobs:
        pack = jobs[int(job.pack_id)][0]
        result = fleet.results.get(job.pack_id)
        if result is None:
            # Refused (a duty outside the model's range, a simulation that could not go on): no forecast is
            # stored for tonight, and the run says which pack and why.
            refusal = fleet.refused.get(job.pack_id)
            reason = f"{refusal.flag}: {refusal.reason}" if refusal else "no result"
            reasons.append(f"pack {pack.serial}: {reason}")
            logger.warning("pack %s: no forecast: %s", pack.serial, reason)
            continue
        forecasts.append(_forecast_row(pack, job, result, run))
    _store(forecasts)
    done, failed = len(forecasts), len(reasons)
    peer_fades = _latest_fades_by_model_and_depot(vehicles.values())
    for pack, _job in jobs.values():
        check_abnormal_ageing(pack, vehicle=vehicles[pack.pk], peer_fades=peer_fades)
    run.packs_total = len(jobs) + skipped
    run.packs_done, run.packs_failed = done, failed
    run.duty_groups = fleet.n_groups
    run.packs_cached = max(done - fleet.n_groups, 0)
    run.simulated_days = fleet.simulated_days
    run.error = "\n".join(reasons)
    run.status = ForecastRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.duration_s = time.perf_counter() - started
    run.save()
    return run


def _finite(value):
    """NaN or infinity (a quantity nobody could determine) is stored as empty, never as a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


#: What a re-run of the same night replaces in a pack's forecast of that day (everything but its keys).
_REPLACED_ON_RERUN = [
    field.name for field in SoHForecast._meta.concrete_fields if field.name not in ("id", "pack", "as_of")
]


def _store(forecasts: list[SoHForecast]) -> None:
    """Store tonight's forecasts in one statement: a re-run of the night replaces each pack's forecast of that
    day (``one_forecast_per_pack_and_day``). One upsert for a chunk instead of a transaction and 3-4 statements
    a pack: the night's database time is its workers' time too."""
    SoHForecast.objects.bulk_create(
        forecasts, update_conflicts=True, unique_fields=["pack", "as_of"], update_fields=_REPLACED_ON_RERUN
    )


def _forecast_row(
    pack: BatteryPack, job: core.ForecastJob, result: core.ForecastResult, run: ForecastRun
) -> SoHForecast:
    calibration = result.calibration
    return SoHForecast(
        pack=pack,
        as_of=result.as_of,
        **{
            "run": run,
            "method": METHOD,
            "calibration_source": calibration.source,
            "rate_factor": calibration.rate_factor,
            "rate_log_sigma": calibration.log_sigma,
            "observations_used": calibration.n_observations,
            "soh_now_pct": result.soh_now_pct,
            "fade_pct_per_year": result.fade_pct_per_year,
            "resistance_factor_now": result.resistance_factor_now,
            "eol_80_on": result.eol_80.date,
            "eol_80_p10_on": result.eol_80.date_p10,
            "eol_80_p90_on": result.eol_80.date_p90,
            "warranty_floor_on": result.warranty.date,
            "rul_days": result.rul_days,
            "rul_km": result.rul_km,
            "rul_efc": result.rul_efc,
            "rul_censored": result.rul_censored,
            "flags": list(result.flags),
            "end_of_duty_on": result.end_of_duty_date,
            "points": _finite([p.to_dict() for p in result.points]),
            "inputs": {
                "pack": job.pack.to_dict(),
                "duty": _finite(job.duty.to_dict()),
                "climate": job.climate.to_dict(),
                "observations_set_aside": [list(item) for item in calibration.set_aside],
                # The stored rate_factor/rate_log_sigma are the calendar (SEI) factor; a two-factor fit's
                # cycling (LAM) factor and the correlation are kept here.
                "calibration": _finite(
                    {
                        "calendar_factor": calibration.rate_factor,
                        "calendar_log_sigma": calibration.log_sigma,
                        "cycling_factor": calibration.cycling_factor,
                        "cycling_log_sigma": calibration.cycling_log_sigma,
                        "log_correlation": calibration.log_correlation,
                        # What the pack's own checks said (no prior in it): its model's other packs learn
                        # their prior from it the next night (core.model_prior).
                        "evidence": list(calibration.evidence) if calibration.evidence else None,
                        "prior_learnt_from_packs": calibration.model_packs,
                    }
                ),
                "undelivered_kwh_per_day": result.undelivered_kwh_per_day,
            },
        },
    )


# --- Abnormal ageing -------------------------------------------------------------------------------------

FLEET_FADE_RATIO_ALERT = 1.5  # fade this many times the median of comparable packs
MIN_PEERS = 3


def check_abnormal_ageing(
    pack: BatteryPack, *, vehicle: Vehicle | None = None, peer_fades: dict[tuple, dict[int, float]] | None = None
):
    """Open (or refresh) an alert when a pack ages abnormally; resolve it when it no longer does.

    Abnormal: its latest observation lies below the P10 of the forecast made before it (fading faster
    than its own model allows), or its forecast fade rate is more than ``FLEET_FADE_RATIO_ALERT`` times the
    median of packs of the same vehicle model and depot. ``peer_fades``: those packs' latest fades by (vehicle
    model, depot) when the caller has read them for many packs at once (the night does, once a chunk).
    """
    # Each reason as a message of charging.alert_messages (code and parameters): the alert words it per reader.
    reasons: list[dict] = []
    latest = pack.health_observations.order_by("-observed_at").first()
    if latest is not None:
        earlier = pack.forecasts.filter(as_of__lt=latest.observed_at.date()).order_by("-as_of").first()
        band = earlier.band_at(latest.observed_at.date()) if earlier else None
        if band is not None and latest.soh_pct < band[0]:
            reasons.append(
                {
                    "code": "ageing_below_forecast",
                    "params": {
                        "soh_pct": round(latest.soh_pct, 2),
                        "date": latest.observed_at.date().isoformat(),
                        "p10_pct": round(band[0], 2),
                    },
                }
            )
    current = pack.forecasts.order_by("-as_of").first()
    vehicle = vehicle or current_vehicle(pack)
    if current is not None and vehicle is not None:
        if peer_fades is None:
            peer_fades = _latest_fades_by_model_and_depot([vehicle])
        group = peer_fades.get((vehicle.model_id, vehicle.home_depot_id), {})
        peers = [fade for pk, fade in group.items() if pk != pack.pk]
        if len(peers) >= MIN_PEERS:
            median = statistics.median(peers)
            if median > 0 and current.fade_pct_per_year > FLEET_FADE_RATIO_ALERT * median:
                reasons.append(
                    {
                        "code": "ageing_faster_than_peers",
                        "params": {
                            "fade_pct_per_year": round(current.fade_pct_per_year, 3),
                            "ratio": round(current.fade_pct_per_year / median, 3),
                            "peers": len(peers),
                            "median_pct_per_year": round(median, 3),
                        },
                    }
                )
    # Alerts live in charging, above this app: it hears the verdict and raises or resolves the pack's alert.
    depot = vehicle.home_depot if vehicle else None
    answers = pack_ageing_checked.send(sender=BatteryPack, pack=pack, vehicle=vehicle, depot=depot, reasons=reasons)
    return next((alert for _receiver, alert in answers if alert is not None), None)


def _latest_fades_by_model_and_depot(vehicles: Iterable[Vehicle | None]) -> dict[tuple, dict[int, float]]:
    """The latest forecast fade of every pack now installed in a vehicle of the same model and home depot as one
    of ``vehicles``, by (vehicle model, depot): one query a (model, depot), each pack's latest fade a subquery.
    Per pack instead, the night's ageing checks grew with the square of a depot's fleet."""
    latest = SoHForecast.objects.filter(pack=OuterRef("pk")).order_by("-as_of").values("fade_pct_per_year")[:1]
    groups: dict[tuple, dict[int, float]] = {}
    for key in {(v.model_id, v.home_depot_id) for v in vehicles if v is not None}:
        model_id, depot_id = key
        packs = BatteryPack.objects.filter(
            installations__removed_at__isnull=True,
            installations__vehicle__model_id=model_id,
            installations__vehicle__home_depot_id=depot_id,
        )
        fades = packs.annotate(latest_fade=Subquery(latest)).values_list("pk", "latest_fade")
        groups[key] = {pk: fade for pk, fade in fades if fade is not None}
    return groups
