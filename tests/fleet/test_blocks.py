"""Block assignments: a vehicle is never in two places at once."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from fleet.models import BlockAssignment
from fleet.services import block_assign, block_update
from tests import factories as f

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2026, 11, 23)


@pytest.fixture
def depot():
    return f.DepotFactory(time_zone="America/Hermosillo")


@pytest.fixture
def bus(depot):
    return f.VehicleFactory(organization=depot.organization, home_depot=depot)


def test_assignment_times_are_the_depots_local_times_stored_in_utc(depot, bus):
    block = f.BlockFactory(depot=depot, service_date=MONDAY, departs_at=dt.time(5, 30), returns_at=dt.time(13, 0))

    assignment = block_assign(block=block, vehicle=bus, service_date=MONDAY)

    # Hermosillo is UTC-7 all year.
    assert assignment.starts_at == dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC)
    assert assignment.ends_at == dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)


def test_a_block_returning_after_midnight_ends_the_next_day(depot, bus):
    block = f.BlockFactory(depot=depot, service_date=MONDAY, departs_at=dt.time(15, 0), returns_at=dt.time(0, 30))

    assignment = block_assign(block=block, vehicle=bus, service_date=MONDAY)

    assert assignment.ends_at - assignment.starts_at == dt.timedelta(hours=9, minutes=30)


def test_overlapping_assignment_for_one_vehicle_is_rejected_and_the_first_stays(depot, bus):
    morning = f.BlockFactory(depot=depot, service_date=MONDAY, departs_at=dt.time(5, 0), returns_at=dt.time(13, 0))
    overlapping = f.BlockFactory(depot=depot, service_date=MONDAY, departs_at=dt.time(12, 0), returns_at=dt.time(20, 0))
    block_assign(block=morning, vehicle=bus, service_date=MONDAY)

    with pytest.raises(ValidationError) as excinfo:
        block_assign(block=overlapping, vehicle=bus, service_date=MONDAY)

    assert "vehicle" in excinfo.value.message_dict
    assert morning.code in excinfo.value.message_dict["vehicle"][0]
    assert list(BlockAssignment.objects.values_list("block__code", flat=True)) == [morning.code]


def test_back_to_back_blocks_do_not_overlap(depot, bus):
    morning = f.BlockFactory(depot=depot, service_date=MONDAY, departs_at=dt.time(5, 0), returns_at=dt.time(13, 0))
    afternoon = f.BlockFactory(depot=depot, service_date=MONDAY, departs_at=dt.time(13, 0), returns_at=dt.time(21, 0))

    block_assign(block=morning, vehicle=bus, service_date=MONDAY)
    block_assign(block=afternoon, vehicle=bus, service_date=MONDAY)

    assert bus.block_assignments.count() == 2


def test_two_vehicles_may_do_overlapping_blocks(depot, bus):
    other_bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    a = f.BlockFactory(depot=depot, service_date=MONDAY)
    b = f.BlockFactory(depot=depot, service_date=MONDAY)

    block_assign(block=a, vehicle=bus, service_date=MONDAY)
    block_assign(block=b, vehicle=other_bus, service_date=MONDAY)

    assert BlockAssignment.objects.count() == 2


def test_weekly_block_runs_only_on_its_days_within_validity(depot, bus):
    block = f.BlockFactory(
        depot=depot,
        service_date=None,
        weekdays=[0, 2, 4],
        valid_from=MONDAY,
        valid_until=MONDAY + dt.timedelta(days=13),
    )

    block_assign(block=block, vehicle=bus, service_date=MONDAY + dt.timedelta(days=2))  # Wednesday
    with pytest.raises(ValidationError, match="does not run"):
        block_assign(block=block, vehicle=bus, service_date=MONDAY + dt.timedelta(days=1))  # Tuesday
    with pytest.raises(ValidationError, match="does not run"):
        block_assign(block=block, vehicle=bus, service_date=MONDAY + dt.timedelta(days=14))  # after validity


def test_reassigning_a_block_on_a_day_moves_it_to_the_new_vehicle(depot, bus):
    other_bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    block = f.BlockFactory(depot=depot, service_date=MONDAY)
    block_assign(block=block, vehicle=bus, service_date=MONDAY)

    block_assign(block=block, vehicle=other_bus, service_date=MONDAY)

    assert list(BlockAssignment.objects.values_list("vehicle", flat=True)) == [other_bus.pk]


def test_changing_a_blocks_times_moves_its_assignments_and_rechecks_overlap(depot, bus):
    morning = f.BlockFactory(depot=depot, service_date=MONDAY, departs_at=dt.time(5, 0), returns_at=dt.time(12, 0))
    evening = f.BlockFactory(depot=depot, service_date=MONDAY, departs_at=dt.time(14, 0), returns_at=dt.time(20, 0))
    block_assign(block=morning, vehicle=bus, service_date=MONDAY)
    block_assign(block=evening, vehicle=bus, service_date=MONDAY)

    with pytest.raises(ValidationError):
        block_update(block=morning, data={"returns_at": dt.time(15, 0)})

    block_update(block=morning, data={"returns_at": dt.time(13, 0)})
    assert BlockAssignment.objects.get(block=morning).ends_at == dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)


def test_retired_vehicle_and_other_organisation_cannot_take_a_block(depot, bus):
    block = f.BlockFactory(depot=depot, service_date=MONDAY)
    foreign_bus = f.VehicleFactory()
    bus.status = "retired"
    bus.save()

    with pytest.raises(ValidationError, match="retired"):
        block_assign(block=block, vehicle=bus, service_date=MONDAY)
    with pytest.raises(ValidationError, match="another organisation"):
        block_assign(block=block, vehicle=foreign_bus, service_date=MONDAY)


def test_database_refuses_an_assignment_that_ends_before_it_starts(depot, bus):
    block = f.BlockFactory(depot=depot, service_date=MONDAY)
    start = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    with pytest.raises(IntegrityError):
        BlockAssignment.objects.create(block=block, vehicle=bus, service_date=MONDAY, starts_at=start, ends_at=start)


def test_block_validation_messages(depot):
    from fleet.models import Block

    weekly_without_days = Block(
        depot=depot, code="X", valid_from=MONDAY, departs_at=dt.time(5), returns_at=dt.time(9), distance_km=100
    )
    with pytest.raises(ValidationError) as excinfo:
        weekly_without_days.full_clean()
    assert "weekdays" in excinfo.value.message_dict
