"""A charger that comes back (rebooted, replaced, or after the central system restarted) with no profiles gets the
current plan's profiles at its BootNotification, recorded like any delivery; never a superseded plan's, never twice.
"""

from __future__ import annotations

import time

import pytest

from charging.ocpp import charger_profiles
from charging.planning import current_service_night, plan_depot_night
from csms.models import ProfileDelivery
from csms.services import charger_password_issue
from csms.simulator import SimulatedCharger
from tests import factories as f
from tests.csms.conftest import RunningCentralSystem, eventually, night_time_zone

pytestmark = pytest.mark.services


def _depot():
    depot = f.DepotFactory(time_zone=night_time_zone())
    linked = {}
    for identity, version in (("CP-R16", "1.6"), ("CP-R201", "2.0.1")):
        charger = f.ChargerFactory(depot=depot, ocpp_charge_point_id=identity, max_kw=150)
        for n in (1, 2):
            f.ConnectorFactory(charger=charger, connector_id=n, max_kw=150)
        _cp, password = charger_password_issue(charger=charger)
        linked[identity] = (charger, password, version)
    return depot, linked


def _fresh(url: str, linked, identity: str) -> SimulatedCharger:
    """A charger with no profiles in memory, as after a reboot."""
    _charger, password, version = linked[identity]
    return SimulatedCharger.make(url, identity, password, version, {1: 150_000.0, 2: 150_000.0})


async def _boot(sim: SimulatedCharger) -> SimulatedCharger:
    await sim.connect()
    await sim.boot()
    return sim


def _deliveries(plan, status: str) -> int:
    return ProfileDelivery.objects.filter(plan=plan, status=status).count()


def test_a_rebooted_charger_gets_the_current_profiles_again_and_the_answer_is_recorded(csms, sims):
    depot, linked = _depot()
    plan = plan_depot_night(depot=depot, service_night=current_service_night(depot))
    before = {identity: sims.run(_boot(_fresh(csms.url, linked, identity))) for identity in linked}
    eventually(lambda: _deliveries(plan, "accepted") == 2)
    for sim in before.values():
        sims.run(sim.close())

    for identity, (charger, _password, version) in linked.items():
        again = sims.run(_boot(_fresh(csms.url, linked, identity)))
        expected = charger_profiles(plan, charger, ocpp_version=version)
        eventually(lambda again=again, expected=expected: all(p in again.received for p in expected))
        assert all(again.connectors[n].profile is not None for n in (1, 2))
        sims.run(again.close())
    # Counted, not listed: ``eventually`` returns at the first truthy value, which one row already is.
    eventually(lambda: ProfileDelivery.objects.filter(plan=plan, status="accepted", attempts=2).count() == 2)
    rows = list(ProfileDelivery.objects.filter(plan=plan, status="accepted", attempts=2))
    assert len(rows) == 2 and all(set(row.answers.values()) == {"Accepted"} for row in rows)


def test_a_charger_back_after_a_re_plan_gets_only_the_new_plan_once(csms, sims):
    depot, linked = _depot()
    night = current_service_night(depot)
    first = plan_depot_night(depot=depot, service_night=night)
    sim = sims.run(_boot(_fresh(csms.url, linked, "CP-R16")))
    eventually(lambda: _deliveries(first, "accepted") == 1)
    sims.run(sim.close())

    second = plan_depot_night(depot=depot, service_night=night)  # while it is away: the first is superseded
    eventually(lambda: ProfileDelivery.objects.filter(plan=second).count() == 2)
    again = sims.run(_boot(_fresh(csms.url, linked, "CP-R16")))
    eventually(lambda: _deliveries(second, "accepted") == 1)
    time.sleep(1.0)  # room for a wrong second sending to arrive
    charger = linked["CP-R16"][0]
    # Exactly the new plan's profiles, once: the pending row was sent at the reconnection and the boot did not
    # queue it again; the superseded plan's accepted row stays as it was.
    assert again.received == charger_profiles(second, charger, ocpp_version="1.6")
    assert ProfileDelivery.objects.get(plan=first, charge_point__charger=charger).attempts == 1
    sims.run(again.close())


def test_after_the_central_system_restarts_a_rebooted_charger_gets_the_plan(csms, sims):
    depot, linked = _depot()
    plan = plan_depot_night(depot=depot, service_night=current_service_night(depot))
    sim = sims.run(_boot(_fresh(csms.url, linked, "CP-R201")))
    eventually(lambda: _deliveries(plan, "accepted") == 1)
    csms.stop()
    eventually(lambda: sim.closed, timeout=10)

    restarted = RunningCentralSystem().start()
    try:
        again = sims.run(_boot(_fresh(restarted.url, linked, "CP-R201")))
        charger = linked["CP-R201"][0]
        expected = charger_profiles(plan, charger, ocpp_version="2.0.1")
        eventually(lambda: all(p in again.received for p in expected))
        eventually(lambda: ProfileDelivery.objects.filter(plan=plan, status="accepted", attempts=2).count() == 1)
        sims.run(again.close())
    finally:
        restarted.stop()


@pytest.mark.django_db
def test_an_answer_sent_over_the_connection_before_a_reboot_does_not_mark_the_rebooted_charger_served():
    """Answers are written in batches, so one to profiles sent before a reboot can reach the database after the new
    connection's boot put the row back to pending. Recorded, it would mark the row accepted, and the charger,
    which lost those profiles, would never get them again. And what a charger got over its new connection,
    before its BootNotification, is not sent again at the boot."""
    from django.utils import timezone

    from csms.services import charge_point_booted, charge_point_connected, deliveries_record, plans_scan

    depot, linked = _depot()
    plan = plan_depot_night(depot=depot, service_night=current_service_night(depot))
    plans_scan()
    charge_points = [charger.charge_point for charger, _pw, _v in linked.values()]
    first, second = (ProfileDelivery.objects.get(plan=plan, charge_point=cp) for cp in charge_points)
    accepted = {"1": "Accepted", "2": "Accepted"}

    def connect_and_boot():
        for cp in charge_points:
            charge_point_connected(charge_point_id=cp.pk, ocpp_version=cp.ocpp_version or "1.6")
            charge_point_booted(charge_point_id=cp.pk, vendor="evfleet", model="sim")

    def answer(*rows, sent_at):
        deliveries_record(
            answers_by_delivery={row.pk: accepted for row in rows}, sent_at={row.pk: sent_at for row in rows}
        )

    connect_and_boot()
    sent_over_the_first_connection = timezone.now()
    answer(first, sent_at=sent_over_the_first_connection)
    assert _deliveries(plan, "accepted") == 1

    connect_and_boot()  # both reboot; the second's answer over the first connection is still in the batch
    answer(second, sent_at=sent_over_the_first_connection)
    assert _deliveries(plan, "pending") == 2  # both will be sent again

    answer(first, second, sent_at=timezone.now())
    assert _deliveries(plan, "accepted") == 2
    for cp in charge_points:  # a boot after what the charger got over this connection: nothing to send again
        charge_point_booted(charge_point_id=cp.pk, vendor="evfleet", model="sim")
    assert _deliveries(plan, "accepted") == 2
