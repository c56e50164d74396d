"""What a charger cannot do: connect without its credentials or as another charger, break the framing, flood,
touch another depot's or organisation's objects, or double anything by sending it again."""

from __future__ import annotations

import base64
import json

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from charging.models import ChargingSession
from csms.models import ChargePoint, IdToken, MeterSample, Transaction
from csms.services import charger_password_issue
from csms.simulator import SimulatedCharger
from tests import factories as f
from tests.csms.conftest import eventually

pytestmark = pytest.mark.services


def _charger(depot=None, identity="CP-A"):
    charger = f.ChargerFactory(depot=depot or f.DepotFactory(), ocpp_charge_point_id=identity)
    f.ConnectorFactory(charger=charger, connector_id=1)
    _cp, password = charger_password_issue(charger=charger)
    return charger, password


async def _raw(url: str, identity: str, username: str, password: str, subprotocol: str = "ocpp1.6"):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return await websockets.connect(
        f"{url}/{identity}", subprotocols=[subprotocol], additional_headers={"Authorization": f"Basic {token}"}
    )


async def _anonymous(url: str):
    return await websockets.connect(url, subprotocols=["ocpp1.6"])


async def _exchange(ws, message: str | list) -> list:
    await ws.send(message if isinstance(message, str) else json.dumps(message))
    return json.loads(await ws.recv())


def _refused(sims, url, identity, username, password) -> int:
    with pytest.raises(InvalidStatus) as refused:
        sims.run(_raw(url, identity, username, password))
    return refused.value.response.status_code


def test_the_handshake_refuses_unknown_wrong_and_borrowed_credentials(csms, sims):
    _charger_a, password_a = _charger(identity="CP-A")
    _charger_b, password_b = _charger(identity="CP-B")
    assert _refused(sims, csms.url, "CP-NOBODY", "CP-NOBODY", password_a) == 401
    assert _refused(sims, csms.url, "CP-A", "CP-A", "not-the-password") == 401
    # A charger claiming another's identity: with its own credentials, or with the other's name and its own password.
    assert _refused(sims, csms.url, "CP-B", "CP-A", password_a) == 401
    assert _refused(sims, csms.url, "CP-B", "CP-B", password_a) == 401
    with pytest.raises(InvalidStatus):
        sims.run(_anonymous(f"{csms.url}/CP-A"))  # no credentials
    ws = sims.run(_raw(csms.url, "CP-B", "CP-B", password_b))
    assert ws.subprotocol == "ocpp1.6"
    sims.run(ws.close())
    # A new password replaces the old one.
    charger_password_issue(charger=_charger_a)
    assert _refused(sims, csms.url, "CP-A", "CP-A", password_a) == 401
    assert ChargePoint.objects.get(charger__ocpp_charge_point_id="CP-A").password_hash.startswith("pbkdf2_sha256$")


@pytest.mark.parametrize(
    ("subprotocol", "not_json_code", "invalid_type_code"),
    [
        ("ocpp1.6", "FormationViolation", "TypeConstraintViolation"),
        ("ocpp2.0.1", "RpcFrameworkError", "TypeConstraintViolation"),
    ],
)
def test_malformed_unknown_and_schema_invalid_messages_get_call_errors_and_the_link_stays(
    csms, sims, subprotocol, not_json_code, invalid_type_code
):
    _charger_a, password = _charger()
    ws = sims.run(_raw(csms.url, "CP-A", "CP-A", password, subprotocol))

    answer = sims.run(_exchange(ws, "[2, 'not json"))
    assert answer[0] == 4 and answer[1] == "-1" and answer[2] == not_json_code
    answer = sims.run(_exchange(ws, [2, "m2", "FlyToTheMoon", {}]))
    assert answer[:3] == [4, "m2", "NotSupported"]
    answer = sims.run(_exchange(ws, [2, "m3", "Heartbeat", {"unexpected": 1}]))
    assert answer[:3] == [4, "m3", "FormatViolation"]
    status = (
        {"connectorId": "one", "errorCode": "NoError", "status": "Available"}
        if subprotocol == "ocpp1.6"
        else {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "evseId": "one", "connectorId": 1}
    )
    answer = sims.run(_exchange(ws, [2, "m4", "StatusNotification", status]))
    assert answer[:3] == [4, "m4", invalid_type_code]
    # Still connected and served.
    answer = sims.run(_exchange(ws, [2, "m5", "Heartbeat", {}]))
    assert answer[0] == 3 and answer[1] == "m5" and "currentTime" in answer[2]
    sims.run(ws.close())


def test_a_flood_is_rate_limited_and_the_charger_served_again_later(csms, sims, settings):
    _charger_a, password = _charger()
    ws = sims.run(_raw(csms.url, "CP-A", "CP-A", password))
    answers = [sims.run(_exchange(ws, [2, f"h{i}", "Heartbeat", {}])) for i in range(120)]
    refused = [a for a in answers if a[0] == 4]
    served = [a for a in answers if a[0] == 3]
    assert refused and all(a[2] == "GenericError" and "Rate limit" in a[3] for a in refused)
    # The bucket holds a quarter minute of the limit; a little more trickles in while the flood lasts.
    assert 30 <= len(served) < 60
    sims.run(ws.close())


def test_a_charger_cannot_touch_another_depot_or_organisation(csms, sims):
    org = f.OrganizationFactory()
    depot_a, depot_b = f.DepotFactory(organization=org), f.DepotFactory(organization=org)
    charger_a, password_a = _charger(depot_a, "CP-A")
    charger_b, password_b = _charger(depot_b, "CP-B")
    stranger = f.VehicleFactory()  # another organisation's bus
    IdToken.objects.create(token="STRANGER", vehicle=stranger)
    sim_a = SimulatedCharger.make(csms.url, "CP-A", password_a, "1.6", {1: 150_000.0})
    sim_b = SimulatedCharger.make(csms.url, "CP-B", password_b, "1.6", {1: 150_000.0})
    sims.run(sim_a.connect())
    sims.run(sim_b.connect())

    assert sims.run(sim_a.authorize("STRANGER")) == "Invalid"
    assert sims.run(sim_a.start_transaction(1, "STRANGER")) == "Invalid"
    assert Transaction.objects.get(charge_point__charger=charger_a).vehicle is None

    # B stops A's transaction by its id: nothing of A's changes.
    tx_a = Transaction.objects.get(charge_point__charger=charger_a)
    sim_b.connectors[1].transaction_id = tx_a.transaction_id
    sims.run(sim_b.stop_transaction(1))
    tx_a.refresh_from_db()
    assert tx_a.ended_at is None
    # A status for a connector number the charger does not have changes no connector anywhere.
    sims.run(sim_b.status(7, "Faulted"))
    assert not charger_a.connectors.filter(status="faulted").exists()
    assert not charger_b.connectors.filter(status="faulted").exists()
    sims.run(sim_a.close())
    sims.run(sim_b.close())


def test_re_sent_messages_double_nothing(csms, sims):
    charger, password = _charger()
    bus = f.VehicleFactory(organization=charger.depot.organization, home_depot=charger.depot)
    IdToken.objects.create(token="BUS", vehicle=bus)
    ws = sims.run(_raw(csms.url, "CP-A", "CP-A", password))
    start = {"connectorId": 1, "idTag": "BUS", "meterStart": 1000, "timestamp": "2026-12-06T01:00:00Z"}
    first = sims.run(_exchange(ws, [2, "s1", "StartTransaction", start]))
    again = sims.run(_exchange(ws, [2, "s2", "StartTransaction", start]))
    assert first[2]["transactionId"] == again[2]["transactionId"]
    tx_id = first[2]["transactionId"]
    meter = {
        "connectorId": 1,
        "transactionId": tx_id,
        "meterValue": [{"timestamp": "2026-12-06T01:10:00Z", "sampledValue": [{"value": "6000"}]}],
    }
    sims.run(_exchange(ws, [2, "m1", "MeterValues", meter]))
    sims.run(_exchange(ws, [2, "m2", "MeterValues", meter]))
    stop = {"transactionId": tx_id, "meterStop": 21000, "timestamp": "2026-12-06T01:30:00Z"}
    sims.run(_exchange(ws, [2, "t1", "StopTransaction", stop]))
    sims.run(_exchange(ws, [2, "t2", "StopTransaction", stop]))
    sims.run(ws.close())

    assert Transaction.objects.count() == 1
    assert MeterSample.objects.count() == 1
    session = eventually(lambda: ChargingSession.objects.get())
    assert session.energy_kwh == 20.0 and session.vehicle == bus
