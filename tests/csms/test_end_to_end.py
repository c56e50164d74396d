"""The live depot on real sockets: a plan reaches a simulated 1.6 and a 2.0.1 charger, they charge by it and report
meter values, the sessions are stored and show in plan vs actual; a fault re-plans and the others get new profiles.
"""

from __future__ import annotations

import datetime as dt

import pytest

from charging.models import Alert, ChargingPlan, ChargingSession, Connector
from charging.ocpp import charger_profiles
from charging.planning import current_service_night, plan_depot_night
from charging.reports import plan_vs_actual
from csms.models import IdToken, MeterSample, ProfileDelivery
from csms.services import charger_password_issue
from csms.simulator import SimulatedCharger, limit_w
from fleet.services import block_assign
from tests import factories as f
from tests.csms.conftest import eventually, night_time_zone

pytestmark = pytest.mark.services


def _depot_with_buses():
    depot = f.DepotFactory(time_zone=night_time_zone(), grid_limit_kw=600.0)
    night = current_service_night(depot)
    chargers = {}
    for identity, version in (("CP-16", "1.6"), ("CP-201", "2.0.1"), ("CP-SPARE", "1.6")):
        charger = f.ChargerFactory(depot=depot, ocpp_charge_point_id=identity, max_kw=150)
        for n in (1, 2):
            f.ConnectorFactory(charger=charger, connector_id=n, max_kw=150)
        _cp, password = charger_password_issue(charger=charger)
        chargers[identity] = (charger, password, version)
    buses = []
    for i in range(3):
        bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
        block = f.BlockFactory(
            depot=depot,
            service_date=night + dt.timedelta(days=1),
            departs_at=dt.time(7, 0),
            returns_at=dt.time(13, 0),
            distance_km=150,
        )
        block_assign(block=block, vehicle=bus, service_date=night + dt.timedelta(days=1))
        IdToken.objects.create(token=f"RFID-{i}", vehicle=bus)
        buses.append(bus)
    return depot, night, chargers, buses


def _sim(csms, chargers, identity) -> SimulatedCharger:
    charger, password, version = chargers[identity]
    return SimulatedCharger.make(csms.url, identity, password, version, {1: 150_000.0, 2: 150_000.0})


def test_plan_to_chargers_meter_values_to_sessions_and_a_fault_replans(csms, sims, eager_replans):
    depot, night, chargers, buses = _depot_with_buses()
    sim16, sim201, spare = (sims.run(_connected(_sim(csms, chargers, i))) for i in ("CP-16", "CP-201", "CP-SPARE"))
    assert (sim16.boot_status, sim201.boot_status, spare.boot_status) == ("Accepted",) * 3

    # A plan: each charger gets exactly its connectors' profiles, as charging.ocpp builds them.
    plan = plan_depot_night(depot=depot, service_night=night)
    for sim in (sim16, sim201, spare):
        charger = chargers[sim.identity][0]
        expected = charger_profiles(plan, charger, ocpp_version=sim.version)
        eventually(lambda sim=sim, expected=expected: all(p in sim.received for p in expected))
    eventually(lambda: ProfileDelivery.objects.filter(plan=plan, status=ProfileDelivery.Status.ACCEPTED).count() == 3)

    # Two buses charge (1.6 and 2.0.1), reporting what the profile allows now, with SoC.
    assert sims.run(sim16.start_transaction(1, "RFID-0", soc_pct=30.0)) == "Accepted"
    assert sims.run(sim201.start_transaction(1, "RFID-1", soc_pct=40.0)) == "Accepted"
    for _ in range(3):
        for sim in (sim16, sim201):
            sims.run(sim.meter_values(1, interval_s=600.0))
    reported = {sim.identity: sim.connectors[1].energy_wh for sim in (sim16, sim201)}
    for sim in (sim16, sim201):
        profile = sim.connectors[1].profile
        samples = list(MeterSample.objects.filter(charge_point__charger__ocpp_charge_point_id=sim.identity))
        assert samples and all(s.transaction_id for s in samples)
        for sample in samples:
            assert sample.power_w == pytest.approx(min(limit_w(profile, sample.measured_at) or 0.0, 150_000.0), abs=0.1)
    sims.run(sim16.stop_transaction(1))
    sims.run(sim201.stop_transaction(1))

    eventually(lambda: ChargingSession.objects.filter(depot=depot).count() == 2)  # both (a list of one is truthy)
    sessions = list(ChargingSession.objects.filter(depot=depot).order_by("vehicle_id"))
    assert [s.vehicle_id for s in sessions] == [buses[0].pk, buses[1].pk]
    by_vehicle = {s.vehicle_id: s for s in sessions}
    assert by_vehicle[buses[0].pk].energy_kwh == pytest.approx(round(reported["CP-16"]) / 1000.0, abs=0.001)
    assert by_vehicle[buses[1].pk].energy_kwh == pytest.approx(reported["CP-201"] / 1000.0, abs=0.001)
    assert by_vehicle[buses[0].pk].start_soc_pct == 30.0
    assert all(s.source == ChargingSession.Source.CHARGER_GATEWAY for s in sessions)
    report = plan_vs_actual(depot=depot, service_night=night, sessions=ChargingSession.objects.all())
    assert report["sessions"] == 2
    assert report["actual_energy_kwh"] == pytest.approx(sum(s.energy_kwh for s in sessions), abs=0.01)

    # A fault on the spare charger: alert, connector out of service, a re-plan, new profiles to the others.
    before = ChargingPlan.objects.filter(depot=depot).count()
    sims.run(spare.status(1, "Faulted", "GroundFailure"))
    alert = eventually(lambda: Alert.objects.filter(kind=Alert.Kind.CHARGER_FAULT, status="open").first())
    assert "GroundFailure" in alert.text and alert.depot_id == depot.pk
    assert Connector.objects.get(charger__ocpp_charge_point_id="CP-SPARE", connector_id=1).status == "faulted"
    replan = eventually(
        lambda: (
            ChargingPlan.objects.filter(depot=depot, status="active", pk__gt=plan.pk)
            .exclude(trigger="nightly")
            .filter(trigger_detail__startswith="connector_faulted")
            .first()
        )
    )
    assert ChargingPlan.objects.filter(depot=depot).count() > before
    for sim in (sim16, sim201):
        expected = charger_profiles(replan, chargers[sim.identity][0], ocpp_version=sim.version)
        eventually(lambda sim=sim, expected=expected: all(p in sim.received for p in expected))
    # A re-sent Faulted changes nothing: still one open alert for the connector.
    sims.run(spare.status(1, "Faulted", "GroundFailure"))
    assert Alert.objects.filter(kind=Alert.Kind.CHARGER_FAULT, status="open").count() == 1

    for sim in (sim16, sim201, spare):
        sims.run(sim.close())


async def _connected(sim: SimulatedCharger) -> SimulatedCharger:
    await sim.connect()
    await sim.boot()
    for number in sim.connectors:
        await sim.status(number, "Available")
    return sim
