"""A charging plan as OCPP smart-charging messages, validated against the schemas the ``ocpp`` package ships.

For each connector of a charger the night becomes one *absolute* schedule that starts at the plan's
horizon start: consecutive slots with the same power merge into one period; slots where no vehicle is
planned get a limit of 0 so that nothing charges outside the plan until a re-plan says otherwise.

- OCPP 1.6: one ``SetChargingProfile`` request per connector (``csChargingProfiles``), purpose
  ``TxDefaultProfile`` (applies to whatever transaction starts on the connector) or ``TxProfile`` when the
  running transaction's id is known.
- OCPP 2.0.1: one ``SetChargingProfileRequest`` per EVSE with a ``chargingProfile``; we map connector n to
  EVSE n, the common layout of depot DC chargers (one connector per EVSE).
Limits are in W (DC chargers) or A per phase (AC chargers, at ``AC_PHASE_VOLTAGE`` and ``AC_PHASES``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ocpp.messages import MessageType, get_validator

AC_PHASE_VOLTAGE = 230.0
AC_PHASES = 3
PROFILE_STACK_LEVEL = 1
# Below this a slot's power is the solver's round-off, not a charge: a 0.001 kW leftover would otherwise be
# sent as a 1 W (or 0.0 A after rounding, next to a 1 W period) limit that no charger can deliver.
MIN_LIMIT_KW = 0.05


@dataclass(frozen=True)
class ConnectorSchedule:
    connector_id: int
    power_kw: Sequence[float]  # one value per slot of the horizon


def schedule_periods(power_kw: Sequence[float], slot_minutes: int, *, unit: str) -> list[dict]:
    """Merge equal consecutive slots into OCPP periods: ``startPeriod`` seconds from the schedule start."""
    periods: list[dict] = []
    for slot, kw in enumerate(power_kw):
        limit = _limit(kw, unit)
        if not periods or periods[-1]["limit"] != limit:
            periods.append({"startPeriod": slot * slot_minutes * 60, "limit": limit})
    return periods or [{"startPeriod": 0, "limit": 0.0}]


def _limit(kw: float, unit: str) -> float:
    if kw < MIN_LIMIT_KW:
        return 0.0
    if unit == "W":
        return float(round(max(kw, 0.0) * 1000.0))  # whole watts: also a multiple of 0.1, as 1.6 requires
    amps = max(kw, 0.0) * 1000.0 / (AC_PHASE_VOLTAGE * AC_PHASES)
    return float(Decimal(f"{amps:.1f}"))


def profile_id(plan_id: int, connector_id: int) -> int:
    """Deterministic, so re-sending the same plan replaces (not stacks) the charger's profile."""
    return (plan_id * 100 + connector_id) % 2_147_483_647


def set_charging_profile_v16(
    *,
    plan_id: int,
    horizon_start: dt.datetime,
    slot_minutes: int,
    schedule: ConnectorSchedule,
    unit: str = "W",
    transaction_id: int | None = None,
) -> dict:
    horizon_seconds = len(schedule.power_kw) * slot_minutes * 60
    profile = {
        "chargingProfileId": profile_id(plan_id, schedule.connector_id),
        "stackLevel": PROFILE_STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile" if transaction_id is not None else "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "validFrom": _iso(horizon_start),
        "validTo": _iso(horizon_start + dt.timedelta(seconds=horizon_seconds)),
        "chargingSchedule": {
            "duration": horizon_seconds,
            "startSchedule": _iso(horizon_start),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": schedule_periods(schedule.power_kw, slot_minutes, unit=unit),
        },
    }
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    return {"connectorId": schedule.connector_id, "csChargingProfiles": profile}


def set_charging_profile_v201(
    *,
    plan_id: int,
    horizon_start: dt.datetime,
    slot_minutes: int,
    schedule: ConnectorSchedule,
    unit: str = "W",
    transaction_id: str | None = None,
) -> dict:
    horizon_seconds = len(schedule.power_kw) * slot_minutes * 60
    profile = {
        "id": profile_id(plan_id, schedule.connector_id),
        "stackLevel": PROFILE_STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile" if transaction_id is not None else "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "validFrom": _iso(horizon_start),
        "validTo": _iso(horizon_start + dt.timedelta(seconds=horizon_seconds)),
        "chargingSchedule": [
            {
                "id": profile_id(plan_id, schedule.connector_id),
                "startSchedule": _iso(horizon_start),
                "duration": horizon_seconds,
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": schedule_periods(schedule.power_kw, slot_minutes, unit=unit),
            }
        ],
    }
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    return {"evseId": schedule.connector_id, "chargingProfile": profile}


def validate_request(action: str, payload: dict, ocpp_version: str) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``payload`` matches the official request schema.

    OCPP 1.6 limits carry ``multipleOf: 0.1``, which binary floats fail: like the ``ocpp`` package
    itself, parse both schema and payload with ``Decimal`` for that version.
    """
    parse_float = Decimal if ocpp_version == "1.6" else float
    validator = get_validator(MessageType.Call, action, ocpp_version, parse_float=parse_float)
    validator.validate(json.loads(json.dumps(payload), parse_float=parse_float))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- From a stored plan ---------------------------------------------------------------------------------


def charger_profiles(plan, charger, *, ocpp_version: str = "1.6", plan_charges=None) -> list[dict]:
    """Every connector of ``charger`` as a validated SetChargingProfile request for ``plan``.

    ``plan_charges``: the plan's charges with their connectors, when the caller builds many chargers' profiles
    (one query for all instead of one per charger)."""
    unit = "A" if charger.kind == "ac" else "W"
    by_connector: dict[int, list[float]] = {c.connector_id: [0.0] * plan.num_slots for c in charger.connectors.all()}
    if plan_charges is None:
        plan_charges = plan.charges.filter(connector__charger=charger).select_related("connector")
    for charge in plan_charges:
        connector = charge.connector
        if connector is None or connector.charger_id != charger.pk:
            continue
        powers = by_connector[connector.connector_id]
        for slot, kw in enumerate(charge.power_kw):
            powers[slot] += kw
    build = set_charging_profile_v16 if ocpp_version == "1.6" else set_charging_profile_v201
    requests = []
    for connector_id, powers in sorted(by_connector.items()):
        payload = build(
            plan_id=plan.pk,
            horizon_start=plan.horizon_start,
            slot_minutes=plan.slot_minutes,
            schedule=ConnectorSchedule(connector_id, powers),
            unit=unit,
        )
        validate_request("SetChargingProfile", payload, ocpp_version)
        requests.append(payload)
    return requests
