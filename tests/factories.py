"""factory_boy factories for every model; tests arrange with these, never with raw ORM calls."""

from __future__ import annotations

import datetime as dt
import random

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from batteries.models import BatteryPack, HealthObservation, PackInstallation, SoHForecast
from charging.models import Alert, Charger, Connector, DemandCharge, DepotEvent, Tariff, TariffPeriod, TariffSeason
from fleet.models import Block, BlockAssignment, Depot, DepotMembership, Organization, Vehicle, VehicleModel
from fleet.models.registry import default_connector_standards
from fleet.vin import vin_check_digit

DEFAULT_PASSWORD = "correct-horse-battery-staple"


def make_vin(serial: int, wmi: str = "3MT") -> str:
    """A valid North American VIN (WMI 3xx = Mexico) with the right check digit."""
    body = f"{wmi}BE12A0P{serial:06d}"[:17].ljust(17, "0")
    body = body.replace("I", "1").replace("O", "0").replace("Q", "0")
    return body[:8] + vin_check_digit(body) + body[9:]


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Transporte Sonora {n}")
    slug = factory.Sequence(lambda n: f"sonora-{n}")


class TariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tariff

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"GDMTH {n}")


class TariffSeasonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TariffSeason

    tariff = factory.SubFactory(TariffFactory)
    name = "all year"
    starts_month, starts_day, ends_month, ends_day = 1, 1, 12, 31


class TariffPeriodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TariffPeriod

    season = factory.SubFactory(TariffSeasonFactory)
    day_type = TariffPeriod.DayType.WEEKDAY
    period = "base"
    starts_at = dt.time(0, 0)
    ends_at = dt.time(0, 0)
    energy_price_per_kwh = "1.20"


class DemandChargeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DemandCharge

    tariff = factory.SubFactory(TariffFactory)
    name = factory.Sequence(lambda n: f"capacity {n}")
    price_per_kw_month = "350.00"
    applies_in_periods = factory.LazyFunction(lambda: ["punta"])


class DepotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Depot

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Depot {n}")
    code = factory.Sequence(lambda n: f"d{n}")
    time_zone = "America/Hermosillo"
    grid_limit_kw = 1500.0


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DepotMembership

    user = factory.SubFactory(UserFactory)
    depot = factory.SubFactory(DepotFactory)
    role = DepotMembership.Role.STAFF


class VehicleModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VehicleModel
        django_get_or_create = ("manufacturer", "name")

    manufacturer = "Taruk"
    name = "MODEL T 12m"
    kind = VehicleModel.Kind.BUS
    chemistry = "LFP"
    nominal_pack_kwh = 350.0
    consumption_kwh_per_km = 1.2
    max_ac_kw = 0
    max_dc_kw = 150.0
    charging_taper = factory.LazyFunction(lambda: [[80, 150.0], [95, 60.0], [100, 20.0]])
    connector_standards = factory.LazyAttribute(
        lambda m: default_connector_standards(max_ac_kw=m.max_ac_kw, max_dc_kw=m.max_dc_kw)
    )


class VehicleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vehicle

    organization = factory.SubFactory(OrganizationFactory)
    fleet_number = factory.Sequence(lambda n: f"B-{n:04d}")
    vin = factory.Sequence(lambda n: make_vin(n))
    plate = factory.Sequence(lambda n: f"SON-{n:04d}")
    model = factory.SubFactory(VehicleModelFactory)
    home_depot = factory.SubFactory(DepotFactory, organization=factory.SelfAttribute("..organization"))


class BlockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Block

    depot = factory.SubFactory(DepotFactory)
    code = factory.Sequence(lambda n: f"BLK-{n}")
    service_date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=1))
    departs_at = dt.time(5, 30)
    returns_at = dt.time(13, 30)
    distance_km = 180.0


class BlockAssignmentFactory(factory.django.DjangoModelFactory):
    """Goes through the service so ``starts_at``/``ends_at`` are computed like in production."""

    class Meta:
        model = BlockAssignment

    block = factory.SubFactory(BlockFactory)
    vehicle = factory.SubFactory(
        VehicleFactory,
        organization=factory.SelfAttribute("..block.depot.organization"),
        home_depot=factory.SelfAttribute("..block.depot"),
    )
    service_date = factory.SelfAttribute("block.service_date")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from fleet.services import block_assign

        return block_assign(**kwargs)


class BatteryPackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BatteryPack

    organization = factory.SubFactory(OrganizationFactory)
    serial = factory.Sequence(lambda n: f"CATL-LFP-{n:06d}")
    chemistry = "LFP"
    nominal_kwh = 350.0
    nominal_ah = 544.0
    cells_in_series = 200
    cells_in_parallel = 2
    manufactured_on = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=random.randint(100, 1500)))
    warranty_years = 8
    warranty_km = 500_000
    warranty_min_soh_pct = 70.0


class PackInstallationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PackInstallation

    pack = factory.SubFactory(BatteryPackFactory)
    vehicle = factory.SubFactory(VehicleFactory, organization=factory.SelfAttribute("..pack.organization"))
    installed_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=365))


class HealthObservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthObservation

    pack = factory.SubFactory(BatteryPackFactory)
    observed_at = factory.LazyFunction(timezone.now)
    source = HealthObservation.Source.CAPACITY_TEST
    soh_pct = 96.0
    uncertainty_pct = 1.0


class ChargerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Charger

    depot = factory.SubFactory(DepotFactory)
    ocpp_charge_point_id = factory.Sequence(lambda n: f"CP-{n:04d}")
    name = factory.Sequence(lambda n: f"DC {n}")
    kind = Charger.Kind.DC
    max_kw = 150.0


class ConnectorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connector

    charger = factory.SubFactory(ChargerFactory)
    connector_id = factory.Sequence(lambda n: n + 1)
    standard = Connector.Standard.CCS2
    max_kw = 150.0


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    depot = factory.SubFactory(DepotFactory)
    organization = factory.SelfAttribute("depot.organization")
    kind = Alert.Kind.VEHICLE_NOT_READY
    key = factory.Sequence(lambda n: f"test:{n}")
    message = factory.Sequence(lambda n: f"Bus {n} will leave 20 kWh short.")


class DepotEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DepotEvent

    depot = factory.SubFactory(DepotFactory)
    service_night = factory.LazyFunction(timezone.localdate)
    kind = DepotEvent.Kind.CONNECTOR_FAULTED
    occurred_at = factory.LazyFunction(timezone.now)
    client_event_id = factory.Sequence(lambda n: f"event-{n}")


class SoHForecastFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SoHForecast

    pack = factory.SubFactory(BatteryPackFactory)
    as_of = factory.LazyFunction(timezone.localdate)
    method = "test"
    calibration_source = SoHForecast.CalibrationSource.PRIOR
    rate_factor = 1.0
    rate_log_sigma = 0.45
    soh_now_pct = 95.0
    fade_pct_per_year = 2.0
    rul_days = 2500
    rul_efc = 2500.0
    points = factory.LazyFunction(list)


from charging.models import ChargingSession  # noqa: E402


class ChargingSessionFactory(factory.django.DjangoModelFactory):
    """Goes through the service, so the cost is priced at the depot's tariff as in production."""

    class Meta:
        model = ChargingSession

    depot = factory.SubFactory(DepotFactory)
    vehicle = factory.SubFactory(
        VehicleFactory,
        organization=factory.SelfAttribute("..depot.organization"),  # away sessions: pass the vehicle
        home_depot=factory.SelfAttribute("..depot"),
    )
    source = ChargingSession.Source.STAFF
    external_id = factory.Sequence(lambda n: f"session-{n}")
    started_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=3))
    ended_at = factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(hours=2))
    energy_kwh = 100.0

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from charging.sessions import charging_session_record

        return charging_session_record(**kwargs)[0]


def manager_of(depot: Depot, **user_fields):
    """A user who manages ``depot`` (a depot membership with the manager role); ``user_fields`` go to the user."""
    manager = UserFactory(**user_fields)
    MembershipFactory(user=manager, depot=depot, role=DepotMembership.Role.MANAGER)
    return manager
