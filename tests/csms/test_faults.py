"""Faults of the central system itself, with the real ``run_csms`` process: the database away, killed and restarted."""

from __future__ import annotations

import time

import pytest

from charging.models import ChargingSession
from charging.ocpp import charger_profiles
from charging.planning import current_service_night, plan_depot_night
from csms.models import IdToken, MeterSample, ProfileDelivery, Transaction
from csms.services import charger_password_issue
from csms.simulator import SimulatedCharger
from tests import factories as f
from tests.csms.conftest import CentralSystemProcess, TcpProxy, eventually, free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def charger_and_bus(transactional_db):
    charger = f.ChargerFactory(ocpp_charge_point_id="CP-A")
    f.ConnectorFactory(charger=charger, connector_id=1)
    bus = f.VehicleFactory(organization=charger.depot.organization, home_depot=charger.depot)
    IdToken.objects.create(token="BUS", vehicle=bus)
    _cp, password = charger_password_issue(charger=charger)
    return charger, bus, password


def test_database_away_for_20_s_refuses_cleanly_and_nothing_is_lost(charger_and_bus, sims):
    from django.db import connection

    charger, bus, password = charger_and_bus
    proxy = TcpProxy(connection.settings_dict["HOST"] or "127.0.0.1", int(connection.settings_dict["PORT"] or 5432))
    central = CentralSystemProcess(free_port(), db_port=proxy.port).start()
    try:
        sim = SimulatedCharger.make(central.url, "CP-A", password, "1.6", {1: 150_000.0}, response_timeout=10)
        sims.run(sim.connect())
        assert sims.run(sim.boot()) == "Accepted"
        assert sims.run(sim.start_transaction(1, "BUS", soc_pct=50.0)) == "Accepted"

        proxy.cut()
        started = time.monotonic()
        refused = 0
        while time.monotonic() - started < 20:
            with pytest.raises(Exception) as error:  # noqa: PT011 - the OCPP CallError class
                sims.run(sim.link.call(_meter(sim), suppress=False))
            assert getattr(error.value, "code", "") == "InternalError"
            refused += 1
            time.sleep(2)
        assert refused >= 5 and not sim.closed and central.process.poll() is None

        proxy.restore()
        # The charger sends again what was refused (OCPP's retry); it is stored once.
        eventually(lambda: _try(sims, sim), timeout=20)
        sims.run(sim.link.call(_meter(sim)))
        sims.run(sim.stop_transaction(1))
        session = eventually(lambda: ChargingSession.objects.filter(vehicle=bus).first())
        assert session.energy_kwh >= 0
        assert MeterSample.objects.filter(transaction__isnull=False).count() >= 1
        sims.run(sim.close())
    finally:
        central.stop()
        proxy.close()


_FIXED_MOMENT = "2026-12-06T00:00:00Z"


def _meter(sim):
    from ocpp.v16 import call

    return call.MeterValues(
        connector_id=1,
        transaction_id=int(sim.connectors[1].transaction_id),
        meter_value=[{"timestamp": _FIXED_MOMENT, "sampled_value": [{"value": "1234"}]}],
    )


def _try(sims, sim) -> bool:
    try:
        sims.run(sim.link.call(_meter(sim), suppress=False))
    except Exception:
        return False
    return True


def test_killed_and_restarted_the_chargers_reconnect_and_get_the_plan_made_meanwhile(charger_and_bus, sims):
    charger, bus, password = charger_and_bus
    port = free_port()
    central = CentralSystemProcess(port).start()
    try:
        sim = SimulatedCharger.make(central.url, "CP-A", password, "2.0.1", {1: 150_000.0})
        sims.run(sim.connect())
        sims.run(sim.boot())
        sims.run(sim.start_transaction(1, "BUS", soc_pct=50.0))
        sims.run(sim.meter_values(1, interval_s=60))

        central.kill()
        eventually(lambda: sim.closed, timeout=10)
        plan = plan_depot_night(depot=charger.depot, service_night=current_service_night(charger.depot))

        central = CentralSystemProcess(port).start()
        sims.run(sim.connect())
        sims.run(sim.boot())
        expected = charger_profiles(plan, charger, ocpp_version="2.0.1")
        eventually(lambda: all(p in sim.received for p in expected))
        eventually(lambda: ProfileDelivery.objects.filter(plan=plan, status="accepted").exists())

        # The transaction started before the kill goes on and ends once.
        sims.run(sim.meter_values(1, interval_s=60))
        sims.run(sim.stop_transaction(1))
        eventually(lambda: ChargingSession.objects.filter(vehicle=bus).exists())
        assert Transaction.objects.count() == 1 and ChargingSession.objects.count() == 1
        sims.run(sim.close())
    finally:
        central.stop()
