"""Writes of the central system. The websocket server (csms/server.py) calls these from its database threads;
each one is a short transaction. Charging's own rows are written only through charging's services
(depot events, alerts, sessions); SoC goes to the vehicle's live state through fleet's telemetry ingest.

Everything here is safe to run twice with the same message: a charger re-sends what it got no answer for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from charging.alerts import alert_raise, alert_resolve
from charging.events import EventConflict, depot_event_record
from charging.models import Alert, Charger, ChargingPlan, ChargingSession, Connector, DepotEvent
from charging.ocpp import charger_profiles
from charging.selectors import active_plans
from charging.sessions import SessionConflict, charging_session_record
from csms.models import ChargePoint, IdToken, MeterSample, OcppVersion, PlanScan, ProfileDelivery, Transaction
from fleet.telemetry.ingest import telemetry_ingest

logger = logging.getLogger(__name__)

# Machine passwords are 32 random characters (~190 bits): no guessing attack exists to slow down, and a slow hash
# (Django's default is 1,000,000 rounds) would make 500 chargers reconnecting after a restart queue for minutes of
# CPU at the handshake. Django's PBKDF2, salted, with few rounds.
PASSWORD_ITERATIONS = 1_000
_HASHER = PBKDF2PasswordHasher()

# OCPP statuses that take a connector out of service / say it works again.
OUT_OF_SERVICE = {"Faulted", "Unavailable"}
IN_SERVICE = {
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEV",
    "SuspendedEVSE",
    "Finishing",
    "Reserved",
    "Occupied",
}
BROKEN_CONNECTOR_STATUSES = (Charger.Status.FAULTED,)


# --- Credentials --------------------------------------------------------------------------------------------


def charge_point_for(charger: Charger) -> ChargePoint:
    charge_point, _created = ChargePoint.objects.get_or_create(charger=charger)
    return charge_point


@transaction.atomic
def charger_password_issue(*, charger: Charger) -> tuple[ChargePoint, str]:
    """A new password for ``charger`` (the old one stops working). Returns it once; only its hash is kept."""
    charge_point = charge_point_for(charger)
    raw = secrets.token_urlsafe(24)  # 32 characters, inside OCPP's 16..40 for BasicAuthPassword
    charge_point.password_hash = _HASHER.encode(raw, _HASHER.salt(), iterations=PASSWORD_ITERATIONS)
    charge_point.password_set_at = timezone.now()
    charge_point.save(update_fields=["password_hash", "password_set_at"])
    return charge_point, raw


def charge_point_authenticate(identity: str, password: str) -> ChargePoint | None:
    """The charge point with this identity if the password is its own, else None (unknown or wrong alike)."""
    charge_point = (
        ChargePoint.objects.select_related("charger__depot")
        .filter(charger__ocpp_charge_point_id=identity)
        .exclude(password_hash="")
        .first()
    )
    if charge_point is None:
        _HASHER.encode(password or "-", "timingsalt", iterations=PASSWORD_ITERATIONS)  # same cost as a check
        return None
    if not _HASHER.verify(password, charge_point.password_hash):
        return None
    return charge_point


# --- Link state ---------------------------------------------------------------------------------------------


def _offline_alert_key(charge_point: ChargePoint) -> str:
    return f"csms:offline:{charge_point.charger.ocpp_charge_point_id}"


@transaction.atomic
def charge_point_connected(*, charge_point_id: int, ocpp_version: str) -> None:
    now = timezone.now()
    ChargePoint.objects.filter(pk=charge_point_id).update(
        connected=True, connected_at=now, last_seen_at=now, ocpp_version=ocpp_version
    )
    charge_point = ChargePoint.objects.select_related("charger").get(pk=charge_point_id)
    alert_resolve(key=_offline_alert_key(charge_point))


@transaction.atomic
def charge_point_disconnected(*, charge_point_id: int, since: dt.datetime) -> None:
    """Marks it offline (unless a newer connection of the same charger took over) and raises an alert."""
    now = timezone.now()
    updated = ChargePoint.objects.filter(pk=charge_point_id, connected_at__lte=since).update(
        connected=False, disconnected_at=now
    )
    if not updated:
        return
    charge_point = ChargePoint.objects.select_related("charger__depot").get(pk=charge_point_id)
    charger = charge_point.charger
    alert_raise(
        key=_offline_alert_key(charge_point),
        kind=Alert.Kind.CHARGER_FAULT,
        severity=Alert.Severity.WARNING,
        depot=charger.depot,
        organization_id=charger.depot.organization_id,
        message=f"Charger {charger.name} ({charger.ocpp_charge_point_id}) is offline.",
        details={"charge_point_id": charger.ocpp_charge_point_id, "since": now.isoformat()},
    )


def charge_point_seen(*, charge_point_id: int, heartbeat: bool = False) -> dt.datetime:
    now = timezone.now()
    fields = {"last_seen_at": now}
    if heartbeat:
        fields["last_heartbeat_at"] = now
    ChargePoint.objects.filter(pk=charge_point_id).update(**fields)
    return now


def charge_point_booted(
    *, charge_point_id: int, vendor: str, model: str, firmware_version: str = "", serial_number: str = ""
) -> None:
    now = timezone.now()
    ChargePoint.objects.filter(pk=charge_point_id).update(
        vendor=vendor[:50],
        model=model[:50],
        firmware_version=(firmware_version or "")[:50],
        serial_number=(serial_number or "")[:50],
        booted_at=now,
        last_seen_at=now,
    )


# --- Status -------------------------------------------------------------------------------------------------


def _event_id(*parts: object) -> str:
    """A depot event id for an OCPP message: the same message gives the same id, so a re-send is one event."""
    return "ocpp-" + hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:48]


def status_notification(
    *, charge_point_id: int, connector_number: int, status: str, error_code: str = "", timestamp: str | None = None
) -> None:
    """Keep the charger's status per connector; Faulted/Unavailable takes the connector out of service (a depot
    event: registry, alert, coalesced re-plan), a working status after that brings it back. ``connector_number``
    0 is the whole charger (1.6)."""
    charge_point = ChargePoint.objects.select_related("charger__depot").get(pk=charge_point_id)
    charger = charge_point.charger
    at = _moment(timestamp)
    with transaction.atomic():
        locked = ChargePoint.objects.select_for_update().get(pk=charge_point_id)
        states = dict(locked.connector_states)
        states[str(connector_number)] = {"status": status, "error_code": error_code or "", "at": at.isoformat()}
        locked.connector_states = states
        locked.last_seen_at = timezone.now()
        locked.save(update_fields=["connector_states", "last_seen_at"])
    connectors = list(Connector.objects.filter(charger=charger).order_by("connector_id"))
    if connector_number != 0:
        connectors = [c for c in connectors if c.connector_id == connector_number]
    for connector in connectors:
        broken = connector.status in BROKEN_CONNECTOR_STATUSES
        if status in OUT_OF_SERVICE and not broken:
            kind = DepotEvent.Kind.CONNECTOR_FAULTED
        elif status in IN_SERVICE and broken:
            kind = DepotEvent.Kind.CONNECTOR_RESTORED
        else:
            continue
        with transaction.atomic(), contextlib.suppress(EventConflict):
            depot_event_record(
                depot=charger.depot,
                kind=kind,
                client_event_id=_event_id(charger.ocpp_charge_point_id, connector.connector_id, kind, at),
                occurred_at=at,
                connector=connector,
                note=f"OCPP {status} {error_code or ''}".strip()[:200],
            )
            # The connector's fault alert is raised (and resolved) by the depot event, with this note in it:
            # one alert per connector whoever reports the fault (charging.alerts.equipment_status_alert).


# --- Authorisation and transactions -------------------------------------------------------------------------


def _vehicle_for_token(charger: Charger, token: str):
    """The vehicle behind an id token, if the token is active and the vehicle is of the charger's organisation
    (a visiting bus of the same organisation charges where it is; another organisation's never)."""
    id_token = (
        IdToken.objects.select_related("vehicle")
        .filter(token=token, active=True, vehicle__organization_id=charger.depot.organization_id)
        .first()
    )
    return id_token.vehicle if id_token else None


def authorize(*, charge_point_id: int, token: str) -> str:
    charger = Charger.objects.select_related("depot").get(charge_point__pk=charge_point_id)
    return "Accepted" if _vehicle_for_token(charger, token) is not None else "Invalid"


def _moment(value: str | dt.datetime | None) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    parsed = parse_datetime(value) if value else None
    if parsed is None:
        return timezone.now()
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return parsed


@dataclass(frozen=True)
class StartAnswer:
    transaction_id: str
    status: str  # Accepted / Invalid


def transaction_start(
    *,
    charge_point_id: int,
    connector_number: int,
    id_tag: str,
    timestamp: str | dt.datetime | None,
    meter_start_wh: float | None,
    transaction_id: str = "",
    ocpp_version: str = OcppVersion.V16,
) -> StartAnswer:
    """Open a transaction (1.6 StartTransaction, 2.0.1 TransactionEvent Started). A re-send returns the same one.

    For 1.6 the transaction id is ours (the row id); for 2.0.1 the charger's.
    """
    charge_point = ChargePoint.objects.select_related("charger__depot").get(pk=charge_point_id)
    charger = charge_point.charger
    started_at = _moment(timestamp)
    vehicle = _vehicle_for_token(charger, id_tag) if id_tag else None
    connector = Connector.objects.filter(charger=charger, connector_id=connector_number).first()
    if ocpp_version == OcppVersion.V16:
        start_key = f"{connector_number}|{id_tag}|{started_at.isoformat()}|{meter_start_wh}"
        lookup = {"start_key": start_key}
    else:
        start_key = ""
        lookup = {"transaction_id": transaction_id}
    try:
        with transaction.atomic():
            tx, created = Transaction.objects.get_or_create(
                charge_point=charge_point,
                **lookup,
                defaults={
                    "connector": connector,
                    "connector_number": connector_number,
                    "transaction_id": transaction_id,
                    "id_tag": id_tag or "",
                    "vehicle": vehicle,
                    "started_at": started_at,
                    "meter_start_wh": meter_start_wh,
                    "note": "" if connector else f"Connector {connector_number} is not in the registry.",
                },
            )
            if created and ocpp_version == OcppVersion.V16:
                tx.transaction_id = str(tx.pk)
                tx.save(update_fields=["transaction_id"])
    except IntegrityError:  # a concurrent twin won
        tx = Transaction.objects.get(charge_point=charge_point, **lookup)
        created = False
    if created and vehicle is not None and connector is not None:
        _plug_event(charger, DepotEvent.Kind.VEHICLE_PLUGGED_IN, vehicle, connector, started_at, tx)
    status = "Accepted" if tx.vehicle_id is not None else "Invalid"
    return StartAnswer(transaction_id=tx.transaction_id, status=status)


def _plug_event(charger: Charger, kind: str, vehicle, connector: Connector, at: dt.datetime, tx: Transaction) -> None:
    """Tell the planner where the vehicle is (only for the depot's own vehicles: a visitor is not planned)."""
    if vehicle.home_depot_id != charger.depot_id:
        return
    try:
        with transaction.atomic():
            depot_event_record(
                depot=charger.depot,
                kind=kind,
                client_event_id=_event_id(charger.ocpp_charge_point_id, tx.transaction_id, kind),
                occurred_at=at,
                vehicle=vehicle,
                connector=connector if kind == DepotEvent.Kind.VEHICLE_PLUGGED_IN else None,
                soc_pct=tx.last_soc_pct if kind == DepotEvent.Kind.VEHICLE_PLUGGED_OUT else tx.start_soc_pct,
                note=f"OCPP transaction {tx.transaction_id}",
            )
    except (EventConflict, ValidationError) as exc:
        logger.info("no %s event for transaction %s: %s", kind, tx.pk, exc)


def transaction_find(*, charge_point_id: int, transaction_id: str) -> Transaction | None:
    """Only this charger's transactions: another charger's id finds nothing."""
    return (
        Transaction.objects.select_related("charge_point__charger", "vehicle")
        .filter(charge_point_id=charge_point_id, transaction_id=str(transaction_id))
        .first()
    )


def transaction_stop(
    *,
    charge_point_id: int,
    transaction_id: str,
    timestamp: str | dt.datetime | None,
    meter_stop_wh: float | None,
    reason: str = "",
    id_tag: str = "",
) -> Transaction | None:
    """Close the transaction and record its charging session (idempotent: a re-send changes nothing).

    Returns None for an id that is not this charger's (the charger is told Accepted all the same: it must
    stop re-sending, and nothing of ours changes)."""
    with transaction.atomic():
        tx = (
            Transaction.objects.select_for_update()
            .filter(charge_point_id=charge_point_id, transaction_id=str(transaction_id))
            .first()
        )
        if tx is None:
            return None
        if tx.ended_at is not None:
            return tx
        tx.ended_at = _moment(timestamp)
        if meter_stop_wh is None:
            last = tx.meter_samples.exclude(energy_wh=None).order_by("-measured_at").first()
            meter_stop_wh = last.energy_wh if last else None
        tx.meter_stop_wh = meter_stop_wh
        tx.stop_reason = (reason or "")[:40]
        if tx.vehicle_id is None and id_tag:
            tx.vehicle = _vehicle_for_token(tx.charge_point.charger, id_tag)
        tx.save(update_fields=["ended_at", "meter_stop_wh", "stop_reason", "vehicle"])
    _record_session(tx)
    if tx.vehicle is not None and tx.connector is not None:
        charger = tx.charge_point.charger
        _plug_event(charger, DepotEvent.Kind.VEHICLE_PLUGGED_OUT, tx.vehicle, tx.connector, tx.ended_at, tx)
    return tx


def _record_session(tx: Transaction) -> None:
    charger = tx.charge_point.charger
    note = ""
    if tx.vehicle is None:
        note = "No vehicle: the id tag is unknown, so no charging session was recorded."
    elif tx.meter_start_wh is None or tx.meter_stop_wh is None or tx.ended_at is None:
        note = "No meter start or stop: no charging session was recorded."
    else:
        try:
            with transaction.atomic():
                session, _created = charging_session_record(
                    source=ChargingSession.Source.CHARGER_GATEWAY,
                    external_id=f"ocpp-{charger.pk}-{tx.transaction_id}"[:64],
                    vehicle=tx.vehicle,
                    depot=charger.depot,
                    connector=tx.connector,
                    started_at=tx.started_at,
                    ended_at=tx.ended_at,
                    energy_kwh=round(tx.energy_kwh or 0.0, 3),
                    start_soc_pct=tx.start_soc_pct,
                    end_soc_pct=tx.last_soc_pct,
                    max_kw=round(tx.max_power_w / 1000.0, 3) if tx.max_power_w is not None else None,
                )
            tx.session = session
        except (ValidationError, SessionConflict) as exc:
            note = f"Session refused: {exc}"[:300]
    tx.note = note
    tx.save(update_fields=["session", "note"])


# --- Meter values -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    measured_at: dt.datetime
    energy_wh: float | None
    power_w: float | None
    soc_pct: float | None


def meter_values_store(
    *, charge_point_id: int, connector_number: int, transaction_id: str | None, samples: Iterable[Sample]
) -> int:
    """Store samples (a re-sent moment is ignored), update the transaction's SoC and peak power, and pass the SoC
    on to the vehicle's live state. Returns how many samples it was given."""
    samples = list(samples)
    if not samples:
        return 0
    tx = None
    if transaction_id:
        tx = transaction_find(charge_point_id=charge_point_id, transaction_id=transaction_id)
    if tx is None:  # 1.6 may leave the id out: the connector's open transaction
        tx = (
            Transaction.objects.select_related("charge_point__charger", "vehicle")
            .filter(charge_point_id=charge_point_id, connector_number=connector_number, ended_at__isnull=True)
            .order_by("-started_at")
            .first()
        )
    rows = [
        MeterSample(
            charge_point_id=charge_point_id,
            connector_number=connector_number,
            transaction=tx,
            measured_at=s.measured_at,
            energy_wh=s.energy_wh,
            power_w=s.power_w,
            soc_pct=s.soc_pct,
        )
        for s in samples
    ]
    # No transaction around the two writes: one round trip each (the transaction's fields are derived from samples).
    MeterSample.objects.bulk_create(rows, ignore_conflicts=True)
    if tx is not None:
        _follow_transaction(tx, samples)
    if tx is not None and tx.vehicle_id is not None:
        _live_soc(tx, samples)
    return len(rows)


def _follow_transaction(tx: Transaction, samples: list[Sample]) -> None:
    fields = []
    ordered = sorted(samples, key=lambda s: s.measured_at)
    socs = [s.soc_pct for s in ordered if s.soc_pct is not None]
    if socs:
        if tx.start_soc_pct is None:
            tx.start_soc_pct = socs[0]
            fields.append("start_soc_pct")
        tx.last_soc_pct = socs[-1]
        fields.append("last_soc_pct")
    powers = [s.power_w for s in ordered if s.power_w is not None]
    if powers and (tx.max_power_w is None or max(powers) > tx.max_power_w):
        tx.max_power_w = max(powers)
        fields.append("max_power_w")
    energies = [s.energy_wh for s in ordered if s.energy_wh is not None]
    if energies and tx.meter_start_wh is None:
        tx.meter_start_wh = energies[0]
        fields.append("meter_start_wh")
    if fields:
        tx.save(update_fields=fields)


# The vehicle's live state needs the latest SoC, not every sample (those stay in MeterSample): at most one
# reading per transaction and interval, so 1,000 connectors reporting every 10 s do not become 100 telemetry writes/s.
LIVE_SOC_EVERY = dt.timedelta(seconds=60)


def _live_soc(tx: Transaction, samples: list[Sample]) -> None:
    with_soc = [s for s in samples if s.soc_pct is not None]
    if not with_soc:
        return
    latest = max(with_soc, key=lambda s: s.measured_at)
    if tx.soc_sent_at is not None and latest.measured_at - tx.soc_sent_at < LIVE_SOC_EVERY:
        return
    state = "ac" if tx.charge_point.charger.kind == "ac" else "dc"
    readings = [{"recorded_at": latest.measured_at.isoformat(), "soc_pct": latest.soc_pct, "charging_state": state}]
    Transaction.objects.filter(pk=tx.pk).update(soc_sent_at=latest.measured_at)
    try:
        telemetry_ingest(readings=readings, vehicle=tx.vehicle)
    except ValidationError as exc:  # e.g. a charger clock far in the future: the sample is kept, the SoC not passed on
        logger.info("SoC of transaction %s not passed to the vehicle: %s", tx.pk, exc)


# --- Plans to chargers (the outbox) -------------------------------------------------------------------------


def plans_scan() -> list[int]:
    """Turn every active plan not seen yet into one pending delivery per charger of its depot, and supersede
    the pending deliveries of the plans it replaced. Returns the ids of the plans it handled.

    Run by the central system every ``EVFLEET_CSMS_SCAN_S``; a plan made while it was down is found at start.
    """
    new_plans: list[int] = []
    for plan in active_plans().filter(csms_scan__isnull=True).order_by("created_at"):
        with transaction.atomic():
            _scan, created = PlanScan.objects.get_or_create(plan=plan)
            if not created:
                continue
            charge_points = ChargePoint.objects.filter(charger__depot_id=plan.depot_id)
            ProfileDelivery.objects.filter(
                charge_point__in=charge_points,
                plan__service_night=plan.service_night,
                status__in=(ProfileDelivery.Status.PENDING, ProfileDelivery.Status.NO_ANSWER),
            ).exclude(plan=plan).update(status=ProfileDelivery.Status.SUPERSEDED)
            ProfileDelivery.objects.bulk_create(
                [ProfileDelivery(plan=plan, charge_point=cp) for cp in charge_points], ignore_conflicts=True
            )
            new_plans.append(plan.pk)
    return new_plans


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: int
    charge_point_id: int
    payloads: list[dict]


def deliveries_due(
    *,
    charge_point_ids: Iterable[int],
    ocpp_versions: dict[int, str],
    exclude_ids: set[int] | frozenset[int] = frozenset(),
    retry_after_s: float = 60.0,
) -> list[DueDelivery]:
    """Deliveries of active plans to send now to these (connected) chargers, with their payloads: the pending
    ones, and the unanswered ones once ``retry_after_s`` has passed or the charger has reconnected since."""
    now = timezone.now()
    rows = (
        ProfileDelivery.objects.filter(
            charge_point_id__in=list(charge_point_ids), plan__status=ChargingPlan.Status.ACTIVE
        )
        .filter(
            Q(status=ProfileDelivery.Status.PENDING)
            | Q(status=ProfileDelivery.Status.NO_ANSWER, last_attempt_at__lt=now - dt.timedelta(seconds=retry_after_s))
            | Q(status=ProfileDelivery.Status.NO_ANSWER, last_attempt_at__lt=F("charge_point__connected_at"))
        )
        .exclude(pk__in=list(exclude_ids))
        .select_related("plan", "charge_point__charger")
        .order_by("created_at")
    )
    due = []
    for delivery in rows:
        version = ocpp_versions[delivery.charge_point_id]
        payloads = charger_profiles(delivery.plan, delivery.charge_point.charger, ocpp_version=version)
        due.append(DueDelivery(delivery.pk, delivery.charge_point_id, payloads))
    return due


def delivery_record(*, delivery_id: int, answers: dict[str, str]) -> ProfileDelivery:
    """The charger's answer per connector ("Accepted", "Rejected", "no answer", "error: ...")."""
    values = set(answers.values())
    if values and values <= {"Accepted"}:
        status = ProfileDelivery.Status.ACCEPTED
    elif "no answer" in values:
        status = ProfileDelivery.Status.NO_ANSWER
    elif any(v.startswith("error") for v in values):
        status = ProfileDelivery.Status.ERROR
    else:
        status = ProfileDelivery.Status.REJECTED
    now = timezone.now()
    with transaction.atomic():
        delivery = ProfileDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.answers = answers
        if status != ProfileDelivery.Status.NO_ANSWER:
            delivery.answered_at = now
        if delivery.status != ProfileDelivery.Status.SUPERSEDED:
            delivery.status = status
        delivery.save()
    return delivery
