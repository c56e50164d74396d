"""OCPP charging profiles from a plan: the payloads validate against the official schemas."""

import datetime as dt

import jsonschema
import pytest

from charging.ocpp import ConnectorSchedule, schedule_periods, set_charging_profile_v16, validate_request

START = dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)


def test_equal_slots_merge_into_periods_and_idle_slots_get_zero():
    periods = schedule_periods([0, 0, 150, 150, 75.5, 0], 15, unit="W")
    assert periods == [
        {"startPeriod": 0, "limit": 0.0},
        {"startPeriod": 1800, "limit": 150000.0},
        {"startPeriod": 3600, "limit": 75500.0},
        {"startPeriod": 4500, "limit": 0.0},
    ]


@pytest.mark.parametrize("unit", ["W", "A"])
def test_a_solver_leftover_is_no_period(unit):
    # 0.001 kW after a full slot (the LP's round-off) and 0.04 kW before the next one: no 1 W or 0.1 A period,
    # the charger goes from its power straight to 0; a real 0.2 kW trickle stays.
    periods = schedule_periods([0, 0.001, 50.0, 0.001, 0.04, 0.2], 15, unit=unit)
    assert [p["startPeriod"] for p in periods] == [0, 1800, 2700, 4500]
    assert [p["limit"] > 0 for p in periods] == [False, True, False, True]
    assert all(p["limit"] == 0 or p["limit"] >= (100 if unit == "W" else 0.1) for p in periods)


def test_ac_limits_are_amps_per_phase_with_one_decimal():
    (period,) = schedule_periods([11.0], 15, unit="A")
    assert period["limit"] == pytest.approx(11000 / (230 * 3), abs=0.05)


@pytest.mark.parametrize("transaction_id", [None, 42])
def test_v16_payload_validates(transaction_id):
    payload = set_charging_profile_v16(
        plan_id=7,
        horizon_start=START,
        slot_minutes=15,
        schedule=ConnectorSchedule(2, [0.0, 149.97, 33.333, 0.0]),
        transaction_id=transaction_id,
    )
    validate_request("SetChargingProfile", payload, "1.6")
    profile = payload["csChargingProfiles"]
    assert profile["chargingProfilePurpose"] == ("TxProfile" if transaction_id else "TxDefaultProfile")
    assert profile["chargingSchedule"]["duration"] == 3600


def test_validation_rejects_a_broken_payload():
    payload = set_charging_profile_v16(
        plan_id=1, horizon_start=START, slot_minutes=15, schedule=ConnectorSchedule(1, [10.0])
    )
    payload["csChargingProfiles"]["chargingProfileKind"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError):
        validate_request("SetChargingProfile", payload, "1.6")
