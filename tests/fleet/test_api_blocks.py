"""Blocks and block assignments through the REST API: depot-scoped, and one vehicle is never in two places."""

import datetime as dt

import pytest

from fleet.models import Block, BlockAssignment
from tests import factories as f

pytestmark = pytest.mark.django_db

BLOCKS = "/api/v1/blocks/"
ASSIGNMENTS = "/api/v1/block-assignments/"
TOMORROW = dt.date.today() + dt.timedelta(days=1)


def block_body(depot, **overrides) -> dict:
    body = {
        "depot": depot.pk,
        "code": "L1-AM",
        "service_date": TOMORROW.isoformat(),
        "departs_at": "05:30",
        "returns_at": "13:30",
        "distance_km": 180,
    }
    return {**body, **overrides}


def test_staff_plans_a_block_in_their_depot(two_depots, api_client):
    api_client.force_authenticate(two_depots["staff_a"])

    response = api_client.post(BLOCKS, block_body(two_depots["depot_a"]))

    assert response.status_code == 201, response.json()
    assert Block.objects.get(pk=response.json()["id"]).depot == two_depots["depot_a"]


def test_blocks_are_isolated_between_depots(two_depots, api_client):
    w = two_depots
    block_a = f.BlockFactory(depot=w["depot_a"])
    block_b = f.BlockFactory(depot=w["depot_b"])
    api_client.force_authenticate(w["staff_a"])

    listed = api_client.get(BLOCKS).json()
    assert [b["id"] for b in listed["results"]] == [block_a.pk]
    assert api_client.get(f"{BLOCKS}{block_b.pk}/").status_code == 404
    assert api_client.patch(f"{BLOCKS}{block_b.pk}/", {"distance_km": 1}).status_code == 404
    assert api_client.delete(f"{BLOCKS}{block_b.pk}/").status_code == 404
    assert api_client.post(BLOCKS, block_body(w["depot_b"])).status_code == 400
    block_b.refresh_from_db()
    assert block_b.distance_km == 180.0


def test_a_block_stays_in_its_depot(two_depots, api_client):
    block_a = f.BlockFactory(depot=two_depots["depot_a"])
    api_client.force_authenticate(two_depots["manager_a"])

    response = api_client.patch(f"{BLOCKS}{block_a.pk}/", {"depot": two_depots["depot_b"].pk})

    assert response.status_code == 400
    assert "depot" in response.json()


def test_invalid_block_is_a_400_with_the_models_reason(two_depots, api_client):
    api_client.force_authenticate(two_depots["staff_a"])

    response = api_client.post(BLOCKS, block_body(two_depots["depot_a"], returns_at="05:30"))

    assert response.status_code == 400
    assert "returns_at" in response.json()


def test_assign_a_vehicle_then_an_overlapping_block_is_rejected_and_the_first_stays(two_depots, api_client):
    w = two_depots
    morning = f.BlockFactory(depot=w["depot_a"], code="L1-AM", departs_at=dt.time(5, 30), returns_at=dt.time(13, 30))
    midday = f.BlockFactory(depot=w["depot_a"], code="L2-MID", departs_at=dt.time(12, 0), returns_at=dt.time(18, 0))
    api_client.force_authenticate(w["staff_a"])

    first = api_client.post(ASSIGNMENTS, {"block": morning.pk, "vehicle": w["vehicle_a"].pk})
    assert first.status_code == 201, first.json()
    assert first.json()["service_date"] == morning.service_date.isoformat()

    clash = api_client.post(ASSIGNMENTS, {"block": midday.pk, "vehicle": w["vehicle_a"].pk})

    assert clash.status_code == 400
    assert "already does block L1-AM" in clash.json()["vehicle"][0]
    assert list(BlockAssignment.objects.values_list("block__code", flat=True)) == ["L1-AM"]


def test_assignments_are_listed_by_vehicle_and_date_and_can_be_removed(two_depots, api_client):
    w = two_depots
    mine = f.BlockAssignmentFactory(block=f.BlockFactory(depot=w["depot_a"]), vehicle=w["vehicle_a"])
    f.BlockAssignmentFactory(block=f.BlockFactory(depot=w["depot_b"]), vehicle=w["vehicle_b"])
    api_client.force_authenticate(w["staff_a"])

    by_vehicle = api_client.get(ASSIGNMENTS, {"vehicle": w["vehicle_a"].pk}).json()
    by_date = api_client.get(
        ASSIGNMENTS, {"service_date_after": TOMORROW.isoformat(), "service_date_before": TOMORROW.isoformat()}
    ).json()
    other_depot = api_client.get(ASSIGNMENTS, {"vehicle": w["vehicle_b"].pk}).json()

    assert [a["id"] for a in by_vehicle["results"]] == [mine.pk]
    assert [a["id"] for a in by_date["results"]] == [mine.pk]  # depot B's assignment stays invisible
    assert other_depot["count"] == 0

    assert api_client.delete(f"{ASSIGNMENTS}{mine.pk}/").status_code == 204
    assert not BlockAssignment.objects.filter(pk=mine.pk).exists()


def test_cannot_assign_another_depots_vehicle_or_block(two_depots, api_client):
    w = two_depots
    block_a = f.BlockFactory(depot=w["depot_a"])
    block_b = f.BlockFactory(depot=w["depot_b"])
    api_client.force_authenticate(w["staff_a"])

    foreign_vehicle = api_client.post(ASSIGNMENTS, {"block": block_a.pk, "vehicle": w["vehicle_b"].pk})
    foreign_block = api_client.post(ASSIGNMENTS, {"block": block_b.pk, "vehicle": w["vehicle_a"].pk})

    assert foreign_vehicle.status_code == 400 and "vehicle" in foreign_vehicle.json()
    assert foreign_block.status_code == 400 and "block" in foreign_block.json()
    assert not BlockAssignment.objects.exists()


def test_weekly_block_needs_the_assignment_date(two_depots, api_client):
    w = two_depots
    weekly = f.BlockFactory(depot=w["depot_a"], service_date=None, weekdays=[0, 1, 2, 3, 4], valid_from=TOMORROW)
    api_client.force_authenticate(w["staff_a"])

    response = api_client.post(ASSIGNMENTS, {"block": weekly.pk, "vehicle": w["vehicle_a"].pk})

    assert response.status_code == 400
    assert "service_date" in response.json()


def test_blocks_running_on_a_date_are_listed_without_error(two_depots, api_client):
    monday = dt.date(2026, 11, 23)
    weekly = f.BlockFactory(depot=two_depots["depot_a"], service_date=None, weekdays=[0], valid_from=monday)
    f.BlockFactory(depot=two_depots["depot_a"], service_date=None, weekdays=[1], valid_from=monday)
    api_client.force_authenticate(two_depots["staff_a"])

    response = api_client.get("/api/v1/blocks/", {"runs_on": monday.isoformat()})

    assert response.status_code == 200
    assert [b["code"] for b in response.json()["results"]] == [weekly.code]
