"""fleet.scoping.restrict: the one rule that decides who sees which depot's rows."""

import pytest

from batteries.models import BatteryPack, HealthObservation
from charging.models import Charger, Tariff
from fleet.models import Depot, Organization, Vehicle
from fleet.scoping import Action, restrict
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_staff_sees_only_their_depots_rows(two_depots):
    w = two_depots
    f.ChargerFactory(depot=w["depot_a"])
    f.ChargerFactory(depot=w["depot_b"])

    assert list(restrict(Vehicle.objects.all(), w["staff_a"])) == [w["vehicle_a"]]
    assert list(restrict(Depot.objects.all(), w["staff_a"])) == [w["depot_a"]]
    assert {c.depot for c in restrict(Charger.objects.all(), w["staff_a"])} == {w["depot_a"]}


def test_roles_decide_the_action(two_depots):
    w = two_depots
    viewer = f.UserFactory()
    f.MembershipFactory(user=viewer, depot=w["depot_a"], role="viewer")

    assert restrict(Vehicle.objects.all(), viewer, Action.VIEW).count() == 1
    assert restrict(Vehicle.objects.all(), viewer, Action.OPERATE).count() == 0
    assert restrict(Depot.objects.all(), w["staff_a"], Action.OPERATE).count() == 1
    assert restrict(Depot.objects.all(), w["staff_a"], Action.MANAGE).count() == 0
    assert restrict(Depot.objects.all(), w["manager_a"], Action.MANAGE).count() == 1


def test_vehicle_without_depot_is_visible_to_the_organisations_managers_only(two_depots):
    w = two_depots
    roaming_car = f.VehicleFactory(organization=w["org"], home_depot=None)

    assert roaming_car in restrict(Vehicle.objects.all(), w["manager_a"])
    assert roaming_car not in restrict(Vehicle.objects.all(), w["staff_a"])
    assert roaming_car not in restrict(Vehicle.objects.all(), f.UserFactory())


def test_pack_follows_the_vehicle_it_is_in_now(two_depots):
    w = two_depots
    pack = f.BatteryPackFactory(organization=w["org"])
    f.PackInstallationFactory(pack=pack, vehicle=w["vehicle_b"])
    f.HealthObservationFactory(pack=pack)

    assert not restrict(BatteryPack.objects.all(), w["staff_a"]).exists()
    assert restrict(BatteryPack.objects.all(), w["staff_b"]).get() == pack
    assert restrict(HealthObservation.objects.all(), w["staff_b"]).count() == 1
    assert not restrict(HealthObservation.objects.all(), w["staff_a"]).exists()
    assert not restrict(BatteryPack.objects.all(), w["manager_a"]).exists()  # installed in depot B, not org-level


def test_spare_pack_belongs_to_the_organisations_managers(two_depots):
    w = two_depots
    spare = f.BatteryPackFactory(organization=w["org"])
    assert restrict(BatteryPack.objects.all(), w["manager_a"]).get() == spare
    assert not restrict(BatteryPack.objects.all(), w["staff_a"]).exists()


def test_tariffs_and_organisations_are_shared_within_the_organisation(two_depots):
    w = two_depots
    tariff = f.TariffFactory(organization=w["org"])
    f.TariffFactory()  # another organisation's

    assert list(restrict(Tariff.objects.all(), w["staff_a"])) == [tariff]
    assert not restrict(Tariff.objects.all(), w["staff_a"], Action.MANAGE).exists()
    assert list(restrict(Tariff.objects.all(), w["manager_a"], Action.MANAGE)) == [tariff]
    assert list(restrict(Organization.objects.all(), w["staff_a"])) == [w["org"]]


def test_superuser_sees_everything_and_anonymous_nothing(two_depots):
    from django.contrib.auth.models import AnonymousUser

    root = f.UserFactory(is_superuser=True)
    assert restrict(Vehicle.objects.all(), root).count() == 2
    assert restrict(Vehicle.objects.all(), AnonymousUser()).count() == 0


def test_inactive_user_sees_nothing(two_depots):
    user = two_depots["staff_a"]
    user.is_active = False
    user.save()
    assert restrict(Vehicle.objects.all(), user).count() == 0
