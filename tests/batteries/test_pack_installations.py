"""One active pack per vehicle; swaps keep the history."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from batteries.models import PackInstallation
from batteries.selectors import active_pack
from batteries.services import pack_install, pack_remove
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def bus():
    return f.VehicleFactory()


def test_swap_closes_the_old_installation_and_keeps_history(bus):
    old_pack = f.BatteryPackFactory(organization=bus.organization)
    new_pack = f.BatteryPackFactory(organization=bus.organization)
    first_day = timezone.now() - dt.timedelta(days=800)
    swap_day = timezone.now() - dt.timedelta(days=10)
    pack_install(pack=old_pack, vehicle=bus, installed_at=first_day)

    pack_install(pack=new_pack, vehicle=bus, installed_at=swap_day)

    assert active_pack(bus) == new_pack
    history = list(PackInstallation.objects.filter(vehicle=bus).order_by("installed_at"))
    assert [(i.pack, i.installed_at, i.removed_at) for i in history] == [
        (old_pack, first_day, swap_day),
        (new_pack, swap_day, None),
    ]


def test_moving_a_pack_to_another_vehicle_empties_the_first(bus):
    pack = f.BatteryPackFactory(organization=bus.organization)
    other_bus = f.VehicleFactory(organization=bus.organization, home_depot=bus.home_depot)
    pack_install(pack=pack, vehicle=bus, installed_at=timezone.now() - dt.timedelta(days=5))

    pack_install(pack=pack, vehicle=other_bus)

    assert active_pack(bus) is None
    assert active_pack(other_bus) == pack


def test_installing_the_same_pack_twice_changes_nothing(bus):
    pack = f.BatteryPackFactory(organization=bus.organization)
    first = pack_install(pack=pack, vehicle=bus)
    again = pack_install(pack=pack, vehicle=bus)
    assert first.pk == again.pk
    assert PackInstallation.objects.count() == 1


def test_database_refuses_two_active_packs_in_one_vehicle(bus):
    f.PackInstallationFactory(vehicle=bus, pack=f.BatteryPackFactory(organization=bus.organization))
    with pytest.raises(IntegrityError), transaction.atomic():
        PackInstallation.objects.create(
            vehicle=bus, pack=f.BatteryPackFactory(organization=bus.organization), installed_at=timezone.now()
        )


def test_pack_of_another_organisation_is_refused(bus):
    with pytest.raises(ValidationError, match="another organisation"):
        pack_install(pack=f.BatteryPackFactory(), vehicle=bus)


def test_swap_before_the_current_installation_began_is_refused(bus):
    pack_install(pack=f.BatteryPackFactory(organization=bus.organization), vehicle=bus)
    with pytest.raises(ValidationError, match="after the current installation"):
        pack_install(
            pack=f.BatteryPackFactory(organization=bus.organization),
            vehicle=bus,
            installed_at=timezone.now() - dt.timedelta(days=30),
        )


def test_removed_pack_leaves_the_vehicle_without_pack(bus):
    pack = f.BatteryPackFactory(organization=bus.organization)
    pack_install(pack=pack, vehicle=bus, installed_at=timezone.now() - dt.timedelta(days=3))
    pack_remove(pack=pack)
    assert active_pack(bus) is None
