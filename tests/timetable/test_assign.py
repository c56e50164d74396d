"""Energy-aware assignment through the API and the admin: the naive rule strands a worn bus, evfleet's does not."""

from __future__ import annotations

import datetime as dt

import pytest

from fleet.models import BlockAssignment
from tests import factories as f
from timetable.models import PinnedAssignment

pytestmark = pytest.mark.django_db

PINS = "/api/v1/timetable/pins/"
DAY = dt.date.today() + dt.timedelta(days=1)


def run(depot) -> str:
    return f"/api/v1/timetable/depots/{depot.pk}/assign/"


def bus_with_pack(world, soh_pct: float):
    vehicle = f.VehicleFactory(organization=world["org"], home_depot=world["depot_a"])
    pack = f.BatteryPackFactory(organization=world["org"], nominal_kwh=350.0)
    f.PackInstallationFactory(pack=pack, vehicle=vehicle)
    f.HealthObservationFactory(pack=pack, soh_pct=soh_pct)
    return vehicle


@pytest.fixture
def day(two_depots):
    """Depot A tomorrow: a worn bus first in fleet order, two healthy ones, and a long, a mid and a short block
    that all overlap. Usable kWh = 350 x SoH x 85 % window, less a 10 % reserve."""
    w = two_depots
    w["vehicle_a"].status = "retired"  # the fixture's own bus has no pack: out of the way
    w["vehicle_a"].save()
    f.ConnectorFactory(charger=f.ChargerFactory(depot=w["depot_a"]))
    w["worn"] = bus_with_pack(w, 70.0)  # 208 kWh usable, 187 above reserve
    w["healthy_1"] = bus_with_pack(w, 98.0)  # 292 usable, 262 above reserve
    w["healthy_2"] = bus_with_pack(w, 97.0)
    w["long"] = f.BlockFactory(
        depot=w["depot_a"],
        code="LONG",
        service_date=DAY,
        departs_at=dt.time(5, 0),
        returns_at=dt.time(21, 0),
        distance_km=200,
        planned_energy_kwh=240.0,
    )
    w["mid"] = f.BlockFactory(
        depot=w["depot_a"],
        code="MID",
        service_date=DAY,
        departs_at=dt.time(5, 30),
        returns_at=dt.time(20, 0),
        distance_km=150,
        planned_energy_kwh=180.0,
    )
    w["short"] = f.BlockFactory(
        depot=w["depot_a"],
        code="SHORT",
        service_date=DAY,
        departs_at=dt.time(6, 0),
        returns_at=dt.time(14, 0),
        distance_km=100,
        planned_energy_kwh=120.0,
    )
    return w


def test_the_naive_rule_strands_the_worn_bus_and_evfleets_assignment_does_not(day, api_client):
    api_client.force_authenticate(day["staff_a"])
    response = api_client.post(run(day["depot_a"]), {"service_date": DAY.isoformat()}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"].startswith("optimal") and body["uncovered"] == []
    assert body["naive_buses_below_reserve"] == [day["worn"].fleet_number]
    assert body["buses_below_reserve"] == []
    given = {a.block.code: a.vehicle for a in BlockAssignment.objects.filter(service_date=DAY)}
    assert given["SHORT"] == day["worn"]
    assert {given["LONG"], given["MID"]} == {day["healthy_1"], day["healthy_2"]}
    assert given["LONG"] == day["healthy_1"]  # the longest block on the healthiest pack
    assert any("no charging plan" in w for w in body["warnings"])


def test_a_pinned_assignment_is_kept_and_reruns_are_stable(day, api_client):
    api_client.force_authenticate(day["staff_a"])
    pin = api_client.post(
        PINS, {"block": day["short"].pk, "vehicle": day["healthy_2"].pk, "service_date": DAY.isoformat()}, format="json"
    )
    assert pin.status_code == 201, pin.json()
    rows = []
    for _ in range(2):
        body = api_client.post(run(day["depot_a"]), {"service_date": DAY.isoformat()}, format="json").json()
        short = next(a for a in body["assigned"] if a["block"] == "SHORT")
        assert short["vehicle"] == day["healthy_2"].fleet_number and short["pinned"]
        rows.append(sorted(BlockAssignment.objects.filter(service_date=DAY).values_list("pk", "vehicle_id")))
    assert rows[0] == rows[1]  # a re-run with nothing changed rewrites nothing
    # With the pin, the worn bus (187 kWh above reserve) takes MID (180 kWh) and healthy_1 the long block.
    given = {a["block"]: a["vehicle"] for a in body["assigned"]}
    assert given == {
        "SHORT": day["healthy_2"].fleet_number,
        "MID": day["worn"].fleet_number,
        "LONG": day["healthy_1"].fleet_number,
    }
    assert BlockAssignment.objects.filter(service_date=DAY).count() == 3


def test_a_block_no_bus_can_run_is_uncovered_with_the_reason(day, api_client):
    from fleet import services as fleet_services

    fleet_services.block_update(block=day["long"], data={"planned_energy_kwh": 300.0})
    api_client.force_authenticate(day["staff_a"])
    body = api_client.post(run(day["depot_a"]), {"service_date": DAY.isoformat()}, format="json").json()
    assert [u["block"] for u in body["uncovered"]] == ["LONG"]
    assert "needs 300 kWh above reserve" in body["uncovered"][0]["reason"]
    assert not BlockAssignment.objects.filter(block=day["long"]).exists()


def test_an_expected_pull_out_soc_from_tonights_plan_counts(day, api_client):
    from charging.models import ChargingPlan, PlannedCharge

    night = DAY - dt.timedelta(days=1)
    start = dt.datetime.combine(night, dt.time(12), tzinfo=day["depot_a"].zone)
    plan = ChargingPlan.objects.create(
        depot=day["depot_a"],
        service_night=night,
        version=1,
        horizon_start=start,
        slot_minutes=15,
        num_slots=96,
        instance={},
    )
    # healthy_1 will leave at 60 % (142 kWh above reserve): only the short block fits; the worn bus takes MID.
    PlannedCharge.objects.create(
        plan=plan,
        vehicle=day["healthy_1"],
        arrival_at=start,
        departure_at=start + dt.timedelta(hours=17),
        arrival_soc_pct=20,
        required_soc_pct=95,
        departure_soc_pct=60,
    )
    api_client.force_authenticate(day["staff_a"])
    body = api_client.post(run(day["depot_a"]), {"service_date": DAY.isoformat()}, format="json").json()
    given = {a["block"]: a["vehicle"] for a in body["assigned"]}
    assert given["SHORT"] == day["healthy_1"].fleet_number
    assert given["MID"] == day["worn"].fleet_number and given["LONG"] == day["healthy_2"].fleet_number
    assert body["buses_below_reserve"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"service_date": "tomorrow"}, "service_date"),
        ({"dry_run": "perhaps"}, "dry_run"),
        ({"colour": "red"}, "colour"),
        ({"service_date": "5922-08-07", "with_charging_plan": True}, "service_date"),  # found by the schema fuzzer
    ],
)
def test_bad_input_is_a_400_with_the_field(day, api_client, body, field):
    api_client.force_authenticate(day["staff_a"])
    response = api_client.post(run(day["depot_a"]), {"service_date": DAY.isoformat(), **body}, format="json")
    assert response.status_code == 400 and field in response.json()


def test_another_depots_assignment_and_pins_are_out_of_reach(day, api_client):
    api_client.force_authenticate(day["staff_b"])
    response = api_client.post(run(day["depot_a"]), {"service_date": DAY.isoformat()}, format="json")
    assert response.status_code == 404
    pin = api_client.post(
        PINS, {"block": day["short"].pk, "vehicle": day["healthy_2"].pk, "service_date": DAY.isoformat()}, format="json"
    )
    assert pin.status_code == 400
    assert not PinnedAssignment.objects.exists() and not BlockAssignment.objects.exists()


def test_a_viewer_may_not_run_the_assignment(day, api_client):
    viewer = f.UserFactory(username="viewer_a")
    f.MembershipFactory(user=viewer, depot=day["depot_a"], role="viewer")
    api_client.force_authenticate(viewer)
    response = api_client.post(run(day["depot_a"]), {"service_date": DAY.isoformat()}, format="json")
    assert response.status_code == 403
    assert not BlockAssignment.objects.exists()


def test_a_pin_that_would_put_a_bus_in_two_places_is_refused(day, api_client):
    api_client.force_authenticate(day["staff_a"])
    first = {"block": day["short"].pk, "vehicle": day["worn"].pk, "service_date": DAY.isoformat()}
    assert api_client.post(PINS, first, format="json").status_code == 201
    clash = {"block": day["mid"].pk, "vehicle": day["worn"].pk, "service_date": DAY.isoformat()}
    response = api_client.post(PINS, clash, format="json")
    assert response.status_code == 400 and "vehicle" in response.json()
    assert PinnedAssignment.objects.count() == 1


def test_admin_action_assigns_the_selected_blocks_day(day, client):
    from timetable.models import FeedImport, TimetableBlock

    record = FeedImport.objects.create(
        depot=day["depot_a"], file_name="f.zip", feed_sha256="0" * 64, service_from=DAY, service_to=DAY
    )
    link = TimetableBlock.objects.create(
        block=day["long"], feed_import=record, service_km=200, deadhead_km=0, season_factor=1, energy_kwh=240
    )
    client.force_login(day["manager_a"])
    response = client.post(
        "/admin/timetable/timetableblock/", {"action": "assign_buses", "_selected_action": [link.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "3 blocks assigned, 0 uncovered" in response.content.decode()
    assert BlockAssignment.objects.filter(service_date=DAY).count() == 3

    response = client.post(
        "/admin/timetable/timetableblock/",
        {"action": "assign_buses_with_plan", "_selected_action": [link.pk]},
        follow=True,
    )
    assert response.status_code == 200
    # Every bus is home and full all night: the first plan changes nothing, so one plan settles it.
    assert "1 charging plans; assignment and plan agree: yes" in response.content.decode()


def test_assignment_and_charging_plan_are_iterated_until_they_agree(two_depots, api_client):
    from charging.models import ChargingPlan

    """The healthy bus comes back at 03:30 from a late block on a 50 kW charger: assuming full packs, the first
    assignment gives it the long block; the plan cannot charge it for that, so the next assignment moves the
    long block to the other bus, the next plan charges for the new assignment, and the one after changes
    nothing."""
    from fleet import services as fleet_services

    w = two_depots
    w["vehicle_a"].status = "retired"
    w["vehicle_a"].save()
    f.ConnectorFactory(charger=f.ChargerFactory(depot=w["depot_a"], max_kw=50.0), max_kw=50.0)
    healthy = bus_with_pack(w, 98.0)  # 262 kWh above reserve when full
    other = bus_with_pack(w, 90.0)  # 241 kWh above reserve when full
    late = f.BlockFactory(
        depot=w["depot_a"],
        code="LATE",
        service_date=DAY - dt.timedelta(days=1),
        departs_at=dt.time(19, 0),
        returns_at=dt.time(3, 30),
        distance_km=180,
        planned_energy_kwh=220.0,
    )
    fleet_services.block_assign(block=late, vehicle=healthy, service_date=DAY - dt.timedelta(days=1))
    for code, departs, returns, kwh in (("LONG", (5, 0), (21, 0), 230.0), ("SHORT", (5, 30), (13, 0), 60.0)):
        f.BlockFactory(
            depot=w["depot_a"],
            code=code,
            service_date=DAY,
            departs_at=dt.time(*departs),
            returns_at=dt.time(*returns),
            distance_km=kwh / 1.2,
            planned_energy_kwh=kwh,
        )

    api_client.force_authenticate(w["staff_a"])
    response = api_client.post(
        run(w["depot_a"]), {"service_date": DAY.isoformat(), "with_charging_plan": True}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    rounds = body["plan_rounds"]
    assert body["plan_agreed"] is True
    assert rounds[1]["changed"] == ["LONG", "SHORT"]  # the first plan moved the long block off the healthy bus
    assert rounds[-1]["changed"] == [] and len(rounds) == 3
    given = {a.block.code: a.vehicle for a in BlockAssignment.objects.filter(service_date=DAY)}
    assert given == {"LONG": other, "SHORT": healthy}
    assert body["buses_below_reserve"] == []
    active = ChargingPlan.objects.get(depot=w["depot_a"], service_night=DAY - dt.timedelta(days=1), status="active")
    assert active.pk == rounds[-1]["plan"]  # the active plan is the one made for the final assignment
    charge = active.charges.get(vehicle=other)
    assert charge.required_soc_pct > 80  # planned for the long block


def test_bulk_assignment_checks_what_block_assign_checks(day):
    """``fleet.services.blocks_assign`` (the assignment's bulk write): a bus in two places is refused, whether
    both blocks are in the batch or one was assigned before; a block's own earlier row is replaced."""
    from django.core.exceptions import ValidationError

    from fleet import services as fleet_services

    with pytest.raises(ValidationError, match="already does block"):
        fleet_services.blocks_assign(pairs=[(day["long"], day["worn"]), (day["mid"], day["worn"])], service_date=DAY)
    assert not BlockAssignment.objects.filter(service_date=DAY).exists()

    fleet_services.block_assign(block=day["short"], vehicle=day["healthy_1"], service_date=DAY)
    with pytest.raises(ValidationError, match="SHORT"):
        fleet_services.blocks_assign(pairs=[(day["long"], day["healthy_1"])], service_date=DAY)

    # SHORT moves to the worn bus in the same batch that gives LONG to healthy_1: no clash with SHORT's old row.
    rows = fleet_services.blocks_assign(
        pairs=[(day["long"], day["healthy_1"]), (day["short"], day["worn"])], service_date=DAY
    )
    assert len(rows) == 2
    given = {a.block.code: a.vehicle for a in BlockAssignment.objects.filter(service_date=DAY)}
    assert given == {"LONG": day["healthy_1"], "SHORT": day["worn"]}
