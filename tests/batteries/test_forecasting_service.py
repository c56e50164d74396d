"""Battery forecasts in the product: from the registry to stored forecasts, alerts and the API."""

import datetime as dt

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batteries import forecast as core
from batteries.forecast_service import check_abnormal_ageing, forecast_packs
from batteries.models import ForecastRun, SoHForecast
from charging.models import Alert
from fleet.services import block_assign
from tests import factories as f
from tests.support.climates import HERMOSILLO_C

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 11, 21)


def _bus_with_pack(depot, *, manufactured_years_ago=3.0, km_per_day=220, model=None):
    extra = {"model": model} if model is not None else {}
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot, **extra)
    pack = f.BatteryPackFactory(
        organization=depot.organization,
        manufactured_on=AS_OF - dt.timedelta(days=int(365 * manufactured_years_ago)),
    )
    f.PackInstallationFactory(pack=pack, vehicle=bus, installed_at=timezone.now() - dt.timedelta(days=900))
    for offset in range(-10, 10):
        day = AS_OF + dt.timedelta(days=offset)
        block = f.BlockFactory(depot=depot, service_date=day, distance_km=km_per_day)
        block_assign(block=block, vehicle=bus, service_date=day)
    return bus, pack


@pytest.fixture
def depot():
    return f.DepotFactory(monthly_mean_temperature_c=list(HERMOSILLO_C))


@pytest.mark.slow
def test_nightly_forecast_stores_a_band_per_pack_and_records_the_run(depot):
    _bus, pack = _bus_with_pack(depot)

    with CaptureQueriesContext(connection) as queries:
        run = forecast_packs(packs=[pack], as_of=AS_OF, years=1.0, trigger="test")
    # The pack's current vehicle is looked up once for its job, its cluster and its ageing check.
    current_vehicle_lookups = [
        q["sql"] for q in queries if 'FROM "batteries_packinstallation" INNER JOIN "fleet_vehicle"' in q["sql"]
    ]
    assert len(current_vehicle_lookups) == 1, current_vehicle_lookups

    assert (run.status, run.packs_done, run.packs_failed) == ("succeeded", 1, 0)
    forecast = SoHForecast.objects.get(pack=pack)
    assert forecast.calibration_source == "prior"  # no observations yet
    assert 85 < forecast.soh_now_pct < 100
    points = forecast.points
    assert len(points) >= 12
    socs = [p["soh_pct"] for p in points]
    assert all(b <= a + 1e-9 for a, b in zip(socs, socs[1:], strict=False))  # never increases
    assert all(p["soh_p10_pct"] <= p["soh_pct"] <= p["soh_p90_pct"] for p in points if p["soh_p10_pct"])

    # Re-running the same night replaces the forecast instead of adding a second one.
    again = forecast_packs(packs=[pack], as_of=AS_OF, years=1.0)
    assert SoHForecast.objects.filter(pack=pack).count() == 1
    assert SoHForecast.objects.get(pack=pack).run_id == again.pk
    assert ForecastRun.objects.count() == 2


def test_a_chunks_jobs_are_read_in_a_few_queries_whatever_its_size_and_equal_one_packs_job(depot):
    from batteries.forecast_service import pack_job, pack_jobs

    buses = [_bus_with_pack(depot)[1] for _ in range(3)]
    mini_ev, on_telemetry = _mini_ev_pack(depot.organization, home_depot=depot)
    _duty_days(mini_ev, efc_per_day=0.4)
    undated = f.BatteryPackFactory(organization=depot.organization, manufactured_on=None)
    first_in = timezone.now() - dt.timedelta(days=700)
    f.PackInstallationFactory(
        pack=undated, vehicle=f.VehicleFactory(organization=depot.organization), installed_at=first_in
    )
    out_of_any_vehicle = f.BatteryPackFactory(organization=depot.organization)
    packs = [*buses, on_telemetry, undated, out_of_any_vehicle]

    with CaptureQueriesContext(connection) as queries:
        jobs = pack_jobs(packs, AS_OF)

    assert len(queries) <= 5, [q["sql"] for q in queries]
    assert {pk: job for pk, (_vehicle, job) in jobs.items()} == {pack.pk: pack_job(pack, AS_OF) for pack in packs}
    assert jobs[out_of_any_vehicle.pk] == (None, None)
    assert jobs[undated.pk][1].in_service_date == first_in.date()  # the day it went in, as stored (UTC)
    assert isinstance(jobs[on_telemetry.pk][1].duty, core.DutyStats)  # its duty cycles, not blocks
    assert isinstance(jobs[buses[0].pk][1].duty, core.BlockPlan)


@pytest.mark.slow
def test_a_chunks_forecasts_are_stored_in_one_statement(depot):
    packs = [_bus_with_pack(depot)[1] for _ in range(3)]

    with CaptureQueriesContext(connection) as queries:
        run = forecast_packs(packs=packs, as_of=AS_OF, years=1.0)

    writes = [q["sql"] for q in queries if q["sql"].startswith(('INSERT INTO "batteries_sohforecast"', "UPDATE"))]
    assert run.packs_done == 3 and SoHForecast.objects.filter(run=run).count() == 3
    assert len([w for w in writes if "batteries_sohforecast" in w]) == 1, writes


def _capacity_tests(pack, fade_pct_per_year):
    """Four capacity tests over the pack's life on a straight line of the given fade."""
    age_days = (AS_OF - pack.manufactured_on).days
    for k in range(1, 5):
        day = pack.manufactured_on + dt.timedelta(days=age_days * k // 5)
        soh = 100 - fade_pct_per_year * (day - pack.manufactured_on).days / 365
        observed_at = timezone.make_aware(dt.datetime.combine(day, dt.time(10)))
        f.HealthObservationFactory(pack=pack, observed_at=observed_at, soh_pct=soh, uncertainty_pct=0.5)


@pytest.mark.slow
def test_a_tested_pack_is_fitted_against_the_prior_its_battery_models_other_packs_taught(depot):
    """Last night's fits of three packs of the model (stored evidence: their checks say calendar 0.5,
    cycling 2.0) give tonight's fit of a fourth pack of that model its prior; a pack of another vehicle
    model with the very same checks keeps the preset's."""
    model = f.VehicleModelFactory()
    other_model = f.VehicleModelFactory(name="MODEL T 12m long range")
    target = np.log([0.5, 2.0])
    information = 400.0 * np.eye(2)  # each peer's checks pin both factors to 0.05 in ln
    evidence = [*information[np.triu_indices(2)], *(information @ target)]
    for _ in range(3):
        _bus, peer = _bus_with_pack(depot, model=model)
        f.SoHForecastFactory(
            pack=peer, as_of=AS_OF - dt.timedelta(days=1), inputs={"calibration": {"evidence": evidence}}
        )
    learner = _bus_with_pack(depot, model=model)[1]
    control = _bus_with_pack(depot, model=other_model)[1]
    control.manufactured_on = learner.manufactured_on
    control.save()
    for pack in (learner, control):
        _capacity_tests(pack, fade_pct_per_year=2.5)

    forecast_packs(packs=[learner, control], as_of=AS_OF, years=1.0)

    learnt, alone = (SoHForecast.objects.get(pack=p, as_of=AS_OF) for p in (learner, control))
    assert (learnt.calibration_source, alone.calibration_source) == ("pack", "pack")
    assert learnt.inputs["calibration"]["prior_learnt_from_packs"] == 3
    assert alone.inputs["calibration"]["prior_learnt_from_packs"] == 0
    # The same checks, read against what the model's packs taught: the split moves towards theirs.
    assert learnt.inputs["calibration"]["calendar_factor"] < alone.inputs["calibration"]["calendar_factor"] - 0.1
    assert learnt.inputs["calibration"]["cycling_factor"] > alone.inputs["calibration"]["cycling_factor"] + 0.1
    # Both stored what their own checks said, for the next night's priors.
    assert len(learnt.inputs["calibration"]["evidence"]) == len(alone.inputs["calibration"]["evidence"]) == 5


@pytest.mark.slow
def test_tested_packs_get_their_own_rate_and_their_untested_peers_the_clusters(depot):
    slow_pack = _bus_with_pack(depot)[1]
    fast_pack = _bus_with_pack(depot)[1]
    untested = _bus_with_pack(depot)[1]
    _capacity_tests(slow_pack, fade_pct_per_year=1.5)
    _capacity_tests(fast_pack, fade_pct_per_year=3.0)

    forecast_packs(packs=[slow_pack, fast_pack, untested], as_of=AS_OF, years=1.0)

    slow, fast, peer = (SoHForecast.objects.get(pack=p) for p in (slow_pack, fast_pack, untested))
    assert (slow.calibration_source, fast.calibration_source, peer.calibration_source) == ("pack", "pack", "cluster")
    assert slow.rate_factor < peer.rate_factor < fast.rate_factor
    assert fast.fade_pct_per_year > slow.fade_pct_per_year
    assert peer.rate_log_sigma > fast.rate_log_sigma


def _forecast(pack, as_of, p10_now, p50_now, p90_now, fade=2.0):
    """A stored forecast with a straight band, as the forecaster would have left it."""
    points = []
    for month in range(13):
        day = as_of + dt.timedelta(days=30 * month)
        drop = fade * month / 12
        points.append(
            {
                "date": day.isoformat(),
                "soh_pct": p50_now - drop,
                "soh_p10_pct": p10_now - 1.5 * drop,
                "soh_p90_pct": p90_now - 0.5 * drop,
                "resistance_factor": 1.0,
            }
        )
    return SoHForecast.objects.create(
        pack=pack,
        as_of=as_of,
        method="test",
        calibration_source="pack",
        rate_factor=1.0,
        rate_log_sigma=0.2,
        soh_now_pct=p50_now,
        fade_pct_per_year=fade,
        rul_days=3000,
        rul_efc=3000,
        points=points,
    )


def test_observation_below_the_forecasts_p10_raises_an_abnormal_ageing_alert(depot):
    _bus, pack = _bus_with_pack(depot)
    _forecast(pack, AS_OF - dt.timedelta(days=180), p10_now=94, p50_now=95, p90_now=96)
    observed_at = timezone.make_aware(dt.datetime.combine(AS_OF, dt.time(9)))
    f.HealthObservationFactory(pack=pack, observed_at=observed_at, soh_pct=90.0)

    alert = check_abnormal_ageing(pack)

    assert alert.kind == Alert.Kind.ABNORMAL_AGEING and alert.pack == pack and alert.depot == depot
    assert "below the forecast's P10" in alert.text

    # A new capacity test back inside the band resolves it.
    f.HealthObservationFactory(pack=pack, observed_at=observed_at + dt.timedelta(days=1), soh_pct=94.5)
    assert check_abnormal_ageing(pack) is None
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_fade_far_above_comparable_packs_raises_an_alert(depot):
    packs = [_bus_with_pack(depot)[1] for _ in range(4)]
    for pack in packs[:3]:
        _forecast(pack, AS_OF, 93, 94, 95, fade=2.0)
    _forecast(packs[3], AS_OF, 93, 94, 95, fade=4.5)

    assert check_abnormal_ageing(packs[0]) is None
    alert = check_abnormal_ageing(packs[3])

    assert "2.2x the median of 3 comparable packs" in alert.text


def test_health_api_shows_observations_and_forecast_and_ranks_the_fleet(two_depots, api_client):
    w = two_depots
    pack_a = f.BatteryPackFactory(organization=w["org"])
    f.PackInstallationFactory(pack=pack_a, vehicle=w["vehicle_a"])
    pack_b = f.BatteryPackFactory(organization=w["org"])
    f.PackInstallationFactory(pack=pack_b, vehicle=w["vehicle_b"])
    f.HealthObservationFactory(pack=pack_a, soh_pct=95.0)
    _forecast(pack_a, AS_OF, 94, 95, 96)
    _forecast(pack_b, AS_OF, 90, 91, 92)
    api_client.force_authenticate(w["staff_a"])

    detail = api_client.get(f"/api/v1/battery-health/{pack_a.pk}/")
    fleet = api_client.get("/api/v1/battery-health/")

    assert detail.status_code == 200
    body = detail.json()
    assert [o["soh_pct"] for o in body["observations"]] == [95.0]
    assert body["forecast"]["points"][0]["soh_p10_pct"] == 94
    assert [row["pack"] for row in fleet.json()["results"]] == [pack_a.pk]
    assert api_client.get(f"/api/v1/battery-health/{pack_b.pk}/").status_code == 404


@pytest.mark.slow
def test_nightly_job_splits_a_depots_packs_into_chunks_with_their_own_records(
    depot, settings, eager_tasks, django_capture_on_commit_callbacks
):
    from batteries.nightly import forecast_depot_packs
    from jobs.models import JobRun

    settings.EVFLEET_FORECAST_CHUNK_SIZE = 2
    settings.EVFLEET_FORECAST_HORIZON_YEARS = 1.0
    packs = [_bus_with_pack(depot)[1] for _ in range(3)]

    with django_capture_on_commit_callbacks(execute=True):
        outcome = forecast_depot_packs(depot=depot, night=AS_OF)

    assert outcome.counts == {"packs": 3, "chunks": 2}
    assert SoHForecast.objects.filter(pack__in=packs, as_of=AS_OF).count() == 3
    chunk_runs = JobRun.objects.filter(job="batteries.forecast_packs", status="succeeded")
    assert sorted(run.key.rsplit(":", 1)[1] for run in chunk_runs) == ["chunk=1/2", "chunk=2/2"]


def test_the_nightly_chunks_take_the_packs_in_duty_order_so_a_duty_group_is_simulated_once(depot):
    from batteries.forecast_service import in_duty_order

    heavy = _bus_with_pack(depot, km_per_day=220)[1]
    light = _bus_with_pack(depot, km_per_day=60)[1]
    heavy_too = _bus_with_pack(depot, km_per_day=221)[1]  # rounds to the first one's duty signature
    spare = f.BatteryPackFactory(organization=depot.organization)  # in no vehicle: cannot be forecast

    order = in_duty_order([heavy, light, spare, heavy_too], AS_OF)

    # Grouped by duty (lighter first), whatever the serials; what cannot be forecast last.
    assert order[0] == light.pk
    assert set(order[1:3]) == {heavy.pk, heavy_too.pk}
    assert order[3] == spare.pk


def _mini_ev_pack(organization, *, home_depot=None):
    """An Olinia-type mini EV (13 kWh, outlet charging), by default with no home depot."""
    model = f.VehicleModelFactory(
        manufacturer="Olinia",
        name="Mini 13",
        kind="car",
        chemistry="LFP",
        nominal_pack_kwh=13.0,
        consumption_kwh_per_km=0.10,
        max_ac_kw=1.9,
        max_dc_kw=0,
    )
    vehicle = f.VehicleFactory(organization=organization, model=model, home_depot=home_depot)
    pack = f.BatteryPackFactory(
        organization=organization,
        nominal_kwh=13.0,
        nominal_ah=255.0,
        cells_in_series=16,
        cells_in_parallel=1,
        manufactured_on=AS_OF - dt.timedelta(days=400),
    )
    f.PackInstallationFactory(pack=pack, vehicle=vehicle, installed_at=timezone.now() - dt.timedelta(days=400))
    return vehicle, pack


def _duty_days(vehicle, *, efc_per_day, days=20):
    from fleet.models import DailyDutyCycle

    for k in range(days):
        DailyDutyCycle.objects.create(
            vehicle=vehicle,
            date=AS_OF - dt.timedelta(days=k),
            time_zone="America/Hermosillo",
            reading_count=1000,
            distance_km=efc_per_day * 130,
            energy_used_kwh=efc_per_day * 13.0,
            energy_charged_kwh=efc_per_day * 13.5,
            kwh_per_km=0.1,
            capacity_kwh=13.0,
            equivalent_full_cycles=efc_per_day,
            soc_min_pct=10,
            soc_max_pct=95,
            soc_mean_pct=55,
            minutes_above_90_soc=60,
            pack_temp_mean_c=30,
            pack_temp_max_c=36,
            max_charge_c_rate=0.15,
            max_discharge_c_rate=0.5,
        )


def test_a_duty_outside_the_models_range_is_a_failed_pack_with_its_reason_never_a_nan_forecast(depot):
    """A 13 kWh mini EV at 8 equivalent full cycles a day used to be stored as soh_now_pct = NaN."""
    vehicle, pack = _mini_ev_pack(depot.organization, home_depot=depot)
    _duty_days(vehicle, efc_per_day=8.0)

    run = forecast_packs(packs=[pack], as_of=AS_OF, years=1.0)

    assert (run.packs_done, run.packs_failed) == (0, 1)
    assert pack.serial in run.error and "outside_model_range" in run.error
    assert not SoHForecast.objects.filter(pack=pack).exists()


@pytest.mark.slow
def test_mini_evs_with_no_home_depot_are_forecast_every_night(depot):
    from batteries.nightly import forecast_depotless_packs

    vehicle, pack = _mini_ev_pack(depot.organization)
    _duty_days(vehicle, efc_per_day=0.4)
    _bus, depot_pack = _bus_with_pack(depot)

    outcome = forecast_depotless_packs(night=AS_OF)

    assert outcome.counts["done"] == 1 and outcome.counts["failed"] == 0
    forecast = SoHForecast.objects.get(pack=pack, as_of=AS_OF)
    assert all(p["soh_p10_pct"] <= p["soh_pct"] <= p["soh_p90_pct"] for p in forecast.points)
    assert not SoHForecast.objects.filter(pack=depot_pack).exists()  # the depot's job does that one


@pytest.mark.slow
def test_run_night_for_all_depots_also_forecasts_the_packs_of_vehicles_with_no_home_depot(depot):
    """Where no beat runs (``make demo``: ``run_night --all-depots``), the mini EVs with no home depot are
    forecast too: the organisation-wide daily tasks run after the depots' nights."""
    from io import StringIO

    from django.core.management import call_command

    vehicle, pack = _mini_ev_pack(depot.organization)
    _duty_days(vehicle, efc_per_day=0.4)
    out = StringIO()

    call_command("run_night", "--all-depots", stdout=out)

    assert "Vehicles with no home depot" in out.getvalue()
    assert "evfleet.depotless.battery_forecasts" in out.getvalue()
    assert SoHForecast.objects.filter(pack=pack, as_of=timezone.localdate()).exists()
    dated = StringIO()
    call_command("run_night", "--all-depots", "--date", AS_OF.isoformat(), stdout=dated)
    assert "skipped: they run for today only" in dated.getvalue()
