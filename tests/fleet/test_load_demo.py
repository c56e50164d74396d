"""`manage.py load_demo`: a realistic Sonora deployment, written through the services, that a re-run leaves as is."""

import datetime as dt
from collections import defaultdict
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from batteries.models import BatteryPack, HealthObservation, PackInstallation
from charging.models import Charger
from charging.tariffs import energy_price_at
from fleet.models import Block, BlockAssignment, Depot, Vehicle
from fleet.scoping import Action, restrict
from fleet.services import vehicle_update
from fleet.vin import validate_vin

FIRST_DAY = dt.date(2026, 11, 23)  # a Monday
DEMO_APPS = ("fleet", "batteries", "charging", "csms", "auth")
MD5 = "django.contrib.auth.hashers.MD5PasswordHasher"


def load_demo(first_day: dt.date = FIRST_DAY) -> str:
    out = StringIO()
    call_command("load_demo", "--date", first_day.isoformat(), stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, list[dict]]:
    """Every row of every model of the demo's apps, all fields, in primary-key order."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for app in DEMO_APPS
        for model in apps.get_app_config(app).get_models()
    }


@pytest.fixture(scope="module")
def demo_output(django_db_setup, django_db_blocker):
    """Load the demo once for this module, in a transaction rolled back after its last test.

    Each test still runs in its own savepoint (the ``db`` fixture), so a test that re-runs the command cannot
    leak into the next one. The production password hasher (1M PBKDF2 rounds a user) would dominate: use MD5.
    """
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=[MD5]), transaction.atomic():
        yield load_demo()
        transaction.set_rollback(True)


@pytest.fixture
def demo(demo_output, db, settings):
    settings.PASSWORD_HASHERS = [MD5]
    return {depot.code: depot for depot in Depot.objects.all()}


def test_running_it_again_changes_nothing(demo, demo_output):
    before = snapshot()

    second_output = load_demo()

    assert snapshot() == before  # same rows, same values, same ids: nothing re-created, not even a password hash
    assert "nothing to change: the demo was already loaded" in second_output
    assert "[8/9] block assignments" in second_output and "417 created" not in second_output
    assert "417 created" in demo_output
    counts = {label: len(rows) for label, rows in before.items()}
    assert (counts["fleet.Vehicle"], counts["fleet.Depot"], counts["charging.Charger"]) == (82, 4, 42)
    assert counts["batteries.BatteryPack"] == 85  # one per vehicle, plus the three packs swapped out


def test_the_next_days_run_adds_that_days_assignments_and_changes_nothing_else(demo):
    before = snapshot()

    load_demo(FIRST_DAY + dt.timedelta(days=1))

    after = snapshot()
    # That day's assignments and that day's demo telemetry are new; the fleet's history, timetable and people
    # do not move with the date.
    dated = {"fleet.BlockAssignment", "fleet.TelemetryReading", "fleet.VehicleLiveState"}
    assert {label: rows for label, rows in after.items() if label not in dated} == {
        label: rows for label, rows in before.items() if label not in dated
    }
    service_dates = sorted(set(BlockAssignment.objects.values_list("service_date", flat=True)))
    assert service_dates == [FIRST_DAY + dt.timedelta(days=n) for n in range(8)]


def test_depots_must_share_their_grid_connection(demo):
    for depot in demo.values():
        installed_kw = sum(Charger.objects.filter(depot=depot).values_list("max_kw", flat=True))
        assert installed_kw > depot.grid_limit_kw, depot.name
        assert len(depot.base_load_kw) == 24 and max(depot.base_load_kw) < depot.grid_limit_kw
        assert len(depot.monthly_mean_temperature_c) == 12
    hermosillo = demo["hmo"]
    assert hermosillo.vehicles.count() == 40 and hermosillo.chargers.count() == 20
    assert (hermosillo.grid_limit_kw, hermosillo.time_zone) == (1600.0, "America/Hermosillo")
    assert (hermosillo.monthly_mean_temperature_c[0], hermosillo.monthly_mean_temperature_c[6]) == (17.0, 32.0)
    assert demo["nog"].monthly_mean_temperature_c[0] == 9.0  # Nogales, 1,200 m up, is the coldest


def test_every_charger_has_an_ocpp_identity_and_a_password_for_the_central_system(demo):
    from csms.models import ChargePoint

    chargers = list(Charger.objects.select_related("charge_point"))
    identities = [c.ocpp_charge_point_id for c in chargers]
    assert all(identities) and len(set(identities)) == len(chargers) == 42
    assert all(c.charge_point.password_hash.startswith("pbkdf2_sha256$") for c in chargers)
    assert ChargePoint.objects.count() == 42  # so tonight's plans go into the outbox for every charger


def test_every_vehicle_has_an_rfid_id_tag_the_simulated_chargers_present(demo):
    from csms.models import IdToken

    tokens = {t.vehicle.fleet_number: t for t in IdToken.objects.select_related("vehicle")}
    assert set(tokens) == set(Vehicle.objects.values_list("fleet_number", flat=True))
    assert all(t.active and t.token == f"RFID-{number}" and len(t.token) <= 20 for number, t in tokens.items())


def test_every_vehicle_is_registered_correctly(demo):
    vehicles = list(Vehicle.objects.select_related("model"))
    for vehicle in vehicles:
        validate_vin(vehicle.vin)  # check digit included
    assert len({v.vin for v in vehicles}) == len(vehicles)
    minis = [v for v in vehicles if v.model.name == "Mini EV"]
    assert {v.model.nominal_pack_kwh for v in minis} == {13.0}
    assert sum(1 for v in minis if v.home_depot_id is None) == 10  # municipal cars charging away from depots
    buses = [v for v in vehicles if v.model.name == "MODEL T 12m"]
    assert {(v.model.nominal_pack_kwh, v.model.max_dc_kw) for v in buses} == {(350.0, 150.0)}


def test_each_vehicle_has_one_pack_and_swaps_keep_their_history(demo):
    for vehicle in Vehicle.objects.all():
        assert PackInstallation.objects.filter(vehicle=vehicle, removed_at__isnull=True).count() == 1, vehicle
    swapped = Vehicle.objects.filter(pack_installations__removed_at__isnull=False).distinct()
    assert sorted(v.fleet_number for v in swapped) == ["HMO-002", "HMO-009", "HMO-021"]
    assert set(BatteryPack.objects.values_list("warranty_years", "warranty_min_soh_pct")) == {(8, 70.0)}


def test_capacity_tests_show_the_usual_fade_and_a_few_packs_fading_fast(demo):
    fade_pct_per_year = {}
    for pack in BatteryPack.objects.filter(health_observations__isnull=False).distinct():
        first_fitted = pack.installations.order_by("installed_at").first().installed_at
        last = HealthObservation.objects.filter(pack=pack).order_by("-observed_at").first()
        years = (last.observed_at - first_fitted).days / 365
        fade_pct_per_year[pack.serial] = (100 - last.soh_pct) / years
    normal = [rate for rate in fade_pct_per_year.values() if rate < 3.5]
    fast = [rate for rate in fade_pct_per_year.values() if rate >= 3.5]
    assert 1.6 < sum(normal) / len(normal) < 2.5  # field fleets: about 1.8-2.3 % a year
    assert len(fast) == 5  # the three swapped out and two still in service


def test_blocks_look_like_bus_duties_and_no_vehicle_is_in_two_places(demo):
    bus_blocks = Block.objects.filter(depot__code__in=["hmo", "nog"])
    assert all(150 <= b.distance_km <= 280 for b in bus_blocks if not b.code.endswith(("M", "T")))
    assert all(dt.time(5) <= b.departs_at <= dt.time(7) for b in bus_blocks if not b.code.endswith("T"))
    assert all(b.returns_at <= dt.time(22) for b in Block.objects.all())

    by_vehicle = defaultdict(list)
    for assignment in BlockAssignment.objects.all():
        by_vehicle[assignment.vehicle_id].append((assignment.starts_at, assignment.ends_at, assignment.service_date))
    two_a_day = 0
    for windows in by_vehicle.values():
        windows.sort()
        assert all(earlier[1] <= later[0] for earlier, later in zip(windows, windows[1:], strict=False))
        two_a_day += any(a[2] == b[2] for a, b in zip(windows, windows[1:], strict=False))
    assert two_a_day >= 5  # split shifts
    monday, sunday = FIRST_DAY, FIRST_DAY + dt.timedelta(days=6)
    hermosillo = BlockAssignment.objects.filter(block__depot=demo["hmo"])
    assert hermosillo.filter(service_date=monday).count() > hermosillo.filter(service_date=sunday).count() > 0
    assert not BlockAssignment.objects.filter(vehicle__status=Vehicle.Status.MAINTENANCE).exists()


def test_the_depots_are_priced_by_a_gdmth_tariff(demo):
    tariff = demo["hmo"].tariff
    assert tariff is not None and all(depot.tariff == tariff for depot in demo.values())
    wednesday_evening = energy_price_at(tariff, dt.datetime(2026, 11, 25, 19, 0))
    assert (wednesday_evening.season, wednesday_evening.period) == ("winter", "punta")
    assert energy_price_at(tariff, dt.datetime(2026, 11, 25, 3, 0)).period == "base"
    assert energy_price_at(tariff, dt.datetime(2026, 11, 16, 19, 0)).period == "intermedia"  # Revolution Day
    assert sorted(c.applies_in_periods for c in tariff.demand_charges.all()) == [[], ["punta"]]


def test_the_demo_people_see_what_their_roles_allow(demo):
    users = {u.username: u for u in get_user_model().objects.all()}
    staff, manager, viewer = users["hmo.staff"], users["manager"], users["viewer"]

    assert set(restrict(Vehicle.objects.all(), staff).values_list("home_depot__code", flat=True)) == {"hmo"}
    assert restrict(Vehicle.objects.all(), manager).count() == 82  # every depot, and the cars with none
    assert restrict(Vehicle.objects.all(), viewer, Action.OPERATE).count() == 0
    assert staff.is_staff and manager.is_staff and not viewer.is_staff
    assert staff.check_password("evfleet-staff") and manager.check_password("evfleet-manager")


def test_it_prints_where_to_log_in(demo, demo_output):
    for expected in (
        "[9/9] users and depot roles",
        "Hermosillo",
        "3,000",
        "1,600",
        "hmo.staff  evfleet-staff",
        "http://127.0.0.1:8000/admin/",
        "http://127.0.0.1:8000/api/docs/",
        "http://127.0.0.1:8000/api/v1/auth/token/",
    ):
        assert expected in demo_output


def test_a_rerun_keeps_a_bus_sent_to_the_workshop_there_and_gives_its_blocks_to_others(demo):
    bus = Vehicle.objects.get(fleet_number="HMO-005")
    assert BlockAssignment.objects.filter(vehicle=bus).exists()
    vehicle_update(vehicle=bus, data={"status": Vehicle.Status.MAINTENANCE})  # what depot staff would do
    hermosillo_assignments = BlockAssignment.objects.filter(block__depot=demo["hmo"]).count()

    output = load_demo()

    bus.refresh_from_db()
    assert bus.status == Vehicle.Status.MAINTENANCE
    assert not BlockAssignment.objects.filter(vehicle=bus, service_date__gte=FIRST_DAY).exists()
    assert BlockAssignment.objects.filter(block__depot=demo["hmo"]).count() == hermosillo_assignments
    assert "updated" in output
