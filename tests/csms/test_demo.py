"""The demo shows the loop: the demo's chargers have OCPP identities and passwords from ``load_demo``; the simulator
connects them to a central system on a free port and they accept tonight's plan; ``demo_services`` (what
``make demo`` runs) starts the central system and the simulator as processes and stops them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from io import StringIO

import pytest
from django.core.management import call_command

from charging.models import Charger, ChargingSession
from charging.planning import current_service_night, plan_depot_night
from charging.reports import plan_vs_actual
from csms.models import ChargePoint, IdToken, MeterSample, ProfileDelivery, Transaction
from fleet.models import Depot
from tests import factories as f
from tests.csms.conftest import eventually, free_port, night_time_zone

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_the_demo_chargers_connect_to_a_central_system_and_accept_tonights_plan(csms, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # the demo users' passwords
    call_command("load_demo", stdout=StringIO())
    nogales = Depot.objects.get(code="nog")
    assert not ChargePoint.objects.filter(charger__depot=nogales, password_hash="").exists()
    plan = plan_depot_night(depot=nogales, service_night=current_service_night(nogales))
    # The plan is in the outbox before any charger is connected: "offline - pending" for all of them.
    eventually(
        lambda: ProfileDelivery.objects.filter(plan=plan).count() == Charger.objects.filter(depot=nogales).count()
    )

    out = StringIO()
    call_command(
        "simulate_chargers", "--depot", "nog", "--url", csms.url, "--interval", "1", "--seconds", "6", stdout=out
    )

    chargers = Charger.objects.filter(depot=nogales).count()
    assert f"Simulating {chargers} charger(s) of nog" in out.getvalue()
    assert out.getvalue().count("2 profile(s) received") == chargers  # 2 connectors each
    assert set(ProfileDelivery.objects.filter(plan=plan).values_list("status", flat=True)) == {"accepted"}
    booted = ChargePoint.objects.filter(charger__depot=nogales, booted_at__isnull=False, vendor="evfleet")
    assert booted.count() == chargers


def test_the_demo_buses_plug_in_where_the_plan_puts_them_and_their_sessions_reach_plan_vs_actual(csms, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # the demo users' passwords
    settings.EVFLEET_CSMS_MESSAGES_PER_MINUTE = 6000  # an accelerated night: a meter value a second per connector
    call_command("load_demo", stdout=StringIO())
    nogales = Depot.objects.get(code="nog")
    assert IdToken.objects.filter(vehicle__home_depot=nogales, active=True).exists()
    Depot.objects.filter(pk=nogales.pk).update(time_zone=night_time_zone())  # tonight's plan runs from now on
    nogales.refresh_from_db()
    night = current_service_night(nogales)
    plan = plan_depot_night(depot=nogales, service_night=night)
    planned = plan.charges.filter(connector__isnull=False, energy_kwh__gt=0)
    assert planned.exists()

    out = StringIO()
    call_command(
        "simulate_chargers",
        *("--depot", "nog", "--url", csms.url, "--plug-in", "--speed", "3600", "--interval", "1", "--seconds", "12"),
        stdout=out,
    )

    assert f"{planned.count()} planned vehicle(s) will plug in." in out.getvalue()
    transactions = Transaction.objects.filter(charge_point__charger__depot=nogales)
    # The buses started their transactions where the plan put them (each with its own id token), on every connector
    # the plan uses.
    pairs = {(c.vehicle_id, c.connector_id) for c in planned}
    started = {(t.vehicle_id, t.connector_id) for t in transactions}
    assert started and started <= pairs
    assert {connector for _vehicle, connector in started} == {connector for _vehicle, connector in pairs}
    assert all(t.vehicle_id is not None and t.ended_at is not None for t in transactions)
    sessions = eventually(
        lambda: list(ChargingSession.objects.filter(depot=nogales, source=ChargingSession.Source.CHARGER_GATEWAY))
    )
    for session in sessions:
        samples = MeterSample.objects.filter(transaction__session=session)
        assert samples.filter(soc_pct__isnull=False).exists() and samples.filter(power_w__isnull=False).exists()
    assert sum(s.energy_kwh for s in sessions) > 0
    report = plan_vs_actual(depot=nogales, service_night=night, sessions=ChargingSession.objects.filter(depot=nogales))
    assert report["sessions"] == len(sessions)
    assert report["actual_energy_kwh"] == pytest.approx(sum(s.energy_kwh for s in sessions), abs=0.01)


def test_demo_services_runs_the_central_system_and_the_simulator_and_stops_them(transactional_db):
    from django.db import connection

    depot = f.DepotFactory(code="dmo")
    for n in (1, 2):
        charger = f.ChargerFactory(depot=depot, ocpp_charge_point_id=f"DEMO-{n}")
        f.ConnectorFactory(charger=charger, connector_id=1)
    plan = plan_depot_night(depot=depot, service_night=current_service_night(depot))
    db = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{db['PORT'] or 5432}/{db['NAME']}"}
    port = free_port()
    started = time.monotonic()
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo_services", "--ocpp-port", str(port), "--depot", "dmo", "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The chargers had no password: the simulator issued them; the plan made before reached both.
        eventually(
            lambda: ProfileDelivery.objects.filter(plan=plan, status="accepted").count() == 2,
            timeout=90,
        )
        assert ChargePoint.objects.filter(charger__depot=depot, connected=True).count() == 2
    finally:
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends (the terminal sends it to the children as well)
        output, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, output
    assert f"[run_csms] OCPP central system listening on ws://127.0.0.1:{port}/ocpp" in output
    assert "[simulate_chargers] Simulating 2 charger(s) of dmo" in output
    assert time.monotonic() - started < 120
    # Stopped: the central system marked both chargers offline on its way out.
    eventually(lambda: not ChargePoint.objects.filter(charger__depot=depot, connected=True).exists(), timeout=20)
