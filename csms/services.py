"""Writes of the central system. The websocket server (csms/server.py) calls these from its database threads;
each one is a short transaction. Charging's own rows are written only through charging's services
(depot events, alerts, sessions); SoC goes to the vehicle's live state through fleet's telemetry ingest.

Everything here is safe to run twice with the same message: a charger re-sends what it got no answer for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from charging import alert_messages
from charging.alerts import alert_raise, alert_resolve
from charging.events import EventConflict, EventReport, depot_event_record, depot_events_record_many
from charging.models import Alert, Charger, ChargingPlan, ChargingSession, Connector, DepotEvent, PlannedCharge
from charging.ocpp import charger_profiles
from charging.selectors import active_plans
from charging.sessions import SessionConflict, charging_session_record
from csms.models import ChargePoint, IdToken, MeterSample, OcppVersion, PlanScan, ProfileDelivery, Transaction
from fleet.models import Vehicle
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
    _join_outbox(charge_point, now)


def _join_outbox(charge_point: ChargePoint, now: dt.datetime) -> None:
    """A charger linked after its depot's plan was scanned (a password issued since) gets that plan too: one
    delivery row per active plan still running, as the scan would have made."""
    scanned = active_plans().filter(depot_id=charge_point.charger.depot_id, csms_scan__isnull=False)
    running = [
        plan
        for plan in scanned.select_related(None).only("pk", "horizon_start", "num_slots", "slot_minutes")
        if plan.horizon_start + dt.timedelta(minutes=plan.slot_minutes * plan.num_slots) > now
    ]
    if running:
        ProfileDelivery.objects.bulk_create(
            [ProfileDelivery(plan=plan, charge_point=charge_point) for plan in running], ignore_conflicts=True
        )


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
        says=alert_messages.message(
            "charge_point_offline", charger=charger.name, charge_point_id=charger.ocpp_charge_point_id
        ),
        details={"charge_point_id": charger.ocpp_charge_point_id, "since": now.isoformat()},
    )


def charge_point_seen(*, charge_point_id: int, heartbeat: bool = False) -> dt.datetime:
    now = timezone.now()
    fields = {"last_seen_at": now}
    if heartbeat:
        fields["last_heartbeat_at"] = now
    ChargePoint.objects.filter(pk=charge_point_id).update(**fields)
    return now


@transaction.atomic
def charge_point_booted(
    *, charge_point_id: int, vendor: str, model: str, firmware_version: str = "", serial_number: str = ""
) -> int:
    """Keep what the charger said at boot, and queue its current profiles again (``profiles_resend_after_boot``).
    Returns how many deliveries it queued."""
    now = timezone.now()
    ChargePoint.objects.filter(pk=charge_point_id).update(
        vendor=vendor[:50],
        model=model[:50],
        firmware_version=(firmware_version or "")[:50],
        serial_number=(serial_number or "")[:50],
        booted_at=now,
        last_seen_at=now,
    )
    return profiles_resend_after_boot(charge_point_id=charge_point_id, now=now)


def profiles_resend_after_boot(*, charge_point_id: int, now: dt.datetime | None = None) -> int:
    """A charger that boots may have lost its charging profiles (a power cut, a new controller, a reset): its
    deliveries of the active plans still running that it has answered go back to pending, so the delivery loop
    sends it the current profiles again and records the new answer. Returns how many.

    Only the active plans' rows (a superseded plan is never sent again), not the rows already waiting (pending
    and unanswered ones are sent at the reconnection anyway), and not those answered over this connection: the
    central system sends due profiles as soon as a charger connects, often before its BootNotification, and a
    charger keeps what it got after it booted. So nothing is sent twice.
    """
    now = now or timezone.now()
    running = [
        plan.pk
        for plan in active_plans()
        .filter(profile_deliveries__charge_point_id=charge_point_id)
        .select_related(None)
        .only("pk", "horizon_start", "num_slots", "slot_minutes")
        if plan.horizon_start + dt.timedelta(minutes=plan.slot_minutes * plan.num_slots) > now
    ]
    if not running:
        return 0
    return (
        ProfileDelivery.objects.filter(
            charge_point_id=charge_point_id,
            plan_id__in=running,
            status__in=(ProfileDelivery.Status.ACCEPTED, ProfileDelivery.Status.REJECTED, ProfileDelivery.Status.ERROR),
        )
        .exclude(last_attempt_at__gte=F("charge_point__connected_at"))
        .update(status=ProfileDelivery.Status.PENDING)
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
    ref: TransactionRef | None = None  # for the link's cache: its meter values then cost no lookup


@dataclass(frozen=True)
class StartRequest:
    """One StartTransaction (1.6) or TransactionEvent Started (2.0.1)."""

    charge_point_id: int
    connector_number: int
    id_tag: str
    timestamp: str | dt.datetime | None
    meter_start_wh: float | None
    transaction_id: str = ""  # 2.0.1: the charger's; 1.6: ours, given in the answer
    ocpp_version: str = OcppVersion.V16

    @property
    def started_at(self) -> dt.datetime:
        return _moment(self.timestamp)

    @property
    def key(self) -> tuple[int, str, str]:
        """What makes a re-send the same transaction: 1.6 has no id of its own, so its content; 2.0.1 its id."""
        if self.ocpp_version == OcppVersion.V16:
            content = f"{self.connector_number}|{self.id_tag}|{self.started_at.isoformat()}|{self.meter_start_wh}"
            return (self.charge_point_id, "start_key", content)
        return (self.charge_point_id, "transaction_id", self.transaction_id)


def transaction_start(**request: Any) -> StartAnswer:
    """Open one transaction (``transactions_start`` for one request)."""
    return transactions_start(requests=[StartRequest(**request)])[0]


def transactions_start(*, requests: list[StartRequest]) -> list[StartAnswer]:
    """Open the transactions of many starts in one database transaction, with their plug-in events (one insert,
    one re-plan request per depot night): a depot where every bus plugs in within minutes costs a few queries per
    batch, not a dozen per start. A re-sent start returns the same transaction (and records nothing twice).

    For 1.6 the transaction id is ours (the row id); for 2.0.1 the charger's. Answers in the order of ``requests``.
    """
    charge_points = ChargePoint.objects.select_related("charger__depot").in_bulk({r.charge_point_id for r in requests})
    tokens = {
        t.token: t
        for t in IdToken.objects.select_related("vehicle").filter(
            token__in={r.id_tag for r in requests if r.id_tag}, active=True
        )
    }
    connectors = {
        (c.charger_id, c.connector_id): c
        for c in Connector.objects.select_related("charger").filter(
            charger__in={cp.charger_id for cp in charge_points.values()}
        )
    }

    def vehicle_of(request: StartRequest) -> Vehicle | None:
        # As _vehicle_for_token: an active token of a vehicle of the charger's organisation.
        token = tokens.get(request.id_tag)
        depot = charge_points[request.charge_point_id].charger.depot
        if token is None or token.vehicle.organization_id != depot.organization_id:
            return None
        return token.vehicle

    with transaction.atomic():
        for _attempt in range(2):  # a concurrent twin inserted meanwhile: the second look finds it
            found = _transactions_by_key(requests)
            new: dict[tuple[int, str, str], Transaction] = {}
            for request in requests:
                if request.key in found or request.key in new:
                    continue
                charger = charge_points[request.charge_point_id].charger
                connector = connectors.get((charger.pk, request.connector_number))
                new[request.key] = Transaction(
                    charge_point_id=request.charge_point_id,
                    connector=connector,
                    connector_number=request.connector_number,
                    transaction_id=request.transaction_id if request.ocpp_version != OcppVersion.V16 else "",
                    start_key=request.key[2] if request.ocpp_version == OcppVersion.V16 else "",
                    id_tag=request.id_tag or "",
                    vehicle=vehicle_of(request) if request.id_tag else None,
                    started_at=request.started_at,
                    meter_start_wh=request.meter_start_wh,
                    note="" if connector else f"Connector {request.connector_number} is not in the registry.",
                )
            try:
                with transaction.atomic():
                    Transaction.objects.bulk_create(new.values())
            except IntegrityError:
                continue
            ours = [tx for tx in new.values() if not tx.transaction_id]
            for tx in ours:
                tx.transaction_id = str(tx.pk)
            Transaction.objects.bulk_update(ours, ["transaction_id"])
            found.update(new)
            break
        else:
            raise IntegrityError("transactions kept colliding with concurrent starts")
        answers, plugged_in = [], []
        for request in requests:
            tx = found[request.key]
            tx.charge_point = charge_points[request.charge_point_id]
            event = None
            if tx.ended_at is None and tx.vehicle is not None and tx.connector is not None:
                event = _plug_event(
                    tx.charge_point.charger, DepotEvent.Kind.VEHICLE_PLUGGED_IN, tx.vehicle, tx.connector, tx
                )
            if event is not None:
                plugged_in.append(event)
            status = "Accepted" if tx.vehicle_id is not None else "Invalid"
            ref = TransactionRef(
                pk=tx.pk,
                transaction_id=tx.transaction_id,
                connector_number=tx.connector_number,
                vehicle_id=tx.vehicle_id,
                charger_kind=tx.charge_point.charger.kind,
                soc_sent_at=tx.soc_sent_at,
            )
            answers.append(StartAnswer(transaction_id=tx.transaction_id, status=status, ref=ref))
        depot_events_record_many(reports=plugged_in)
    return answers


def _transactions_by_key(requests: list[StartRequest]) -> dict[tuple[int, str, str], Transaction]:
    start_keys = {r.key[2] for r in requests if r.key[1] == "start_key"}
    transaction_ids = {r.key[2] for r in requests if r.key[1] == "transaction_id"}
    rows = (
        Transaction.objects.select_related("vehicle", "connector__charger")
        .filter(charge_point_id__in={r.charge_point_id for r in requests})
        .filter(Q(start_key__in=start_keys) | Q(start_key="", transaction_id__in=transaction_ids))
    )
    found = {}
    for tx in rows:
        if tx.start_key:
            found[(tx.charge_point_id, "start_key", tx.start_key)] = tx
        else:
            found[(tx.charge_point_id, "transaction_id", tx.transaction_id)] = tx
    return found


def _plug_event(charger: Charger, kind: str, vehicle, connector: Connector, tx: Transaction) -> EventReport | None:
    """Where the vehicle is, for the planner (only the depot's own vehicles: a visitor is not planned)."""
    if vehicle.home_depot_id != charger.depot_id:
        return None
    plugged_in = kind == DepotEvent.Kind.VEHICLE_PLUGGED_IN
    at = tx.started_at if plugged_in else tx.ended_at
    assert at is not None  # a plug-out is reported for an ended transaction
    return EventReport(
        depot=charger.depot,
        kind=kind,
        client_event_id=_event_id(charger.ocpp_charge_point_id, tx.transaction_id, kind),
        occurred_at=at,
        vehicle=vehicle,
        connector=connector if plugged_in else None,
        soc_pct=tx.start_soc_pct if plugged_in else tx.last_soc_pct,
        note=f"OCPP transaction {tx.transaction_id}",
    )


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
        plugged_out = _plug_event(
            tx.charge_point.charger, DepotEvent.Kind.VEHICLE_PLUGGED_OUT, tx.vehicle, tx.connector, tx
        )
        if plugged_out is not None:
            depot_events_record_many(reports=[plugged_out])
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
                    meter_readings=_meter_readings(tx),
                )
            tx.session = session
        except (ValidationError, SessionConflict) as exc:
            note = f"Session refused: {exc}"[:300]
    tx.note = note
    tx.save(update_fields=["session", "note"])


def _meter_readings(tx: Transaction) -> list[tuple[dt.datetime, float]]:
    """The transaction's energy register samples as (moment, kWh since its start): what the session keeps so
    the night's cost can price each interval's energy (``charging.metered_energy``)."""
    start_wh = tx.meter_start_wh or 0.0
    samples = tx.meter_samples.exclude(energy_wh=None).order_by("measured_at").values_list("measured_at", "energy_wh")
    return [(moment, max((energy_wh or 0.0) - start_wh, 0.0) / 1000.0) for moment, energy_wh in samples]


# --- Meter values -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    measured_at: dt.datetime
    energy_wh: float | None
    power_w: float | None
    soc_pct: float | None


@dataclass
class TransactionRef:
    """What storing a meter value needs of its transaction: the central system keeps these per connection, so a
    meter value costs no lookup (only this charger's transactions are ever found)."""

    pk: int
    transaction_id: str
    connector_number: int
    vehicle_id: int | None
    charger_kind: str
    soc_sent_at: dt.datetime | None = None


def transaction_ref(
    *, charge_point_id: int, transaction_id: str | None = None, connector_number: int | None = None
) -> TransactionRef | None:
    """This charger's transaction by its id or, without one (1.6 may leave it out), the connector's open one."""
    rows = Transaction.objects.filter(charge_point_id=charge_point_id)
    if transaction_id:
        rows = rows.filter(transaction_id=str(transaction_id))
    elif connector_number is not None:
        rows = rows.filter(connector_number=connector_number, ended_at__isnull=True).order_by("-started_at")
    else:
        return None
    found = rows.values(
        "pk", "transaction_id", "connector_number", "vehicle_id", "charge_point__charger__kind", "soc_sent_at"
    ).first()
    if found is None:
        return None
    return TransactionRef(
        pk=found["pk"],
        transaction_id=found["transaction_id"],
        connector_number=found["connector_number"],
        vehicle_id=found["vehicle_id"],
        charger_kind=found["charge_point__charger__kind"],
        soc_sent_at=found["soc_sent_at"],
    )


@dataclass(frozen=True)
class MeterValuesMessage:
    """One MeterValues (or TransactionEvent's meter values) of one connector, its transaction already resolved."""

    charge_point_id: int
    connector_number: int
    transaction: TransactionRef | None
    samples: tuple[Sample, ...]


def meter_values_store_batch(*, messages: list[MeterValuesMessage]) -> None:
    """Store the samples of many messages in one database transaction: a re-sent moment is ignored, and each
    transaction's SoC at start and last, peak power and meter start follow its samples (one UPDATE for all).

    The central system acknowledges the messages only after this commits, so an accepted meter value is stored.
    """
    rows = [
        MeterSample(
            charge_point_id=m.charge_point_id,
            connector_number=m.connector_number,
            transaction_id=m.transaction.pk if m.transaction else None,
            measured_at=s.measured_at,
            energy_wh=s.energy_wh,
            power_w=s.power_w,
            soc_pct=s.soc_pct,
        )
        for m in messages
        for s in m.samples
    ]
    if not rows:
        return
    followed: dict[int, list[Sample]] = {}
    for message in messages:
        if message.transaction is not None:
            followed.setdefault(message.transaction.pk, []).extend(message.samples)
    with transaction.atomic():
        MeterSample.objects.bulk_create(rows, ignore_conflicts=True)
        if followed:
            with connection.cursor() as cursor:
                cursor.executemany(_follow_sql(), [_follows(pk, samples) for pk, samples in followed.items()])


@functools.cache
def _follow_sql() -> str:
    """One UPDATE of a transaction's derived fields from its new samples (SQL written once, for PostgreSQL and
    SQLite: the ORM's bulk_update compiles a CASE per row and field, the largest CPU cost of a batch). A field the
    samples say nothing about (a NULL parameter) keeps its value; the start values are set once."""
    q = connection.ops.quote_name
    table = q(Transaction._meta.db_table)
    columns = {f.name: str(f.column) for f in Transaction._meta.concrete_fields}
    start_soc, last_soc, peak, meter_start = (
        q(columns[name]) for name in ("start_soc_pct", "last_soc_pct", "max_power_w", "meter_start_wh")
    )
    real = "CAST(%s AS DOUBLE PRECISION)"
    # Identifiers from the model's own metadata, quoted; every value is a parameter.
    return (
        f"UPDATE {table} SET {start_soc} = COALESCE({start_soc}, {real}), "  # nosec B608
        f"{last_soc} = COALESCE({real}, {last_soc}), "
        f"{peak} = CASE WHEN {peak} IS NULL OR {peak} < {real} THEN COALESCE({real}, {peak}) ELSE {peak} END, "
        f"{meter_start} = COALESCE({meter_start}, {real}) WHERE {q('id')} = %s"
    )


def _follows(pk: int, samples: list[Sample]) -> tuple[float | None, ...]:
    """The parameters of ``_follow_sql`` for one transaction's new samples."""
    ordered = sorted(samples, key=lambda s: s.measured_at)
    socs = [s.soc_pct for s in ordered if s.soc_pct is not None]
    powers = [s.power_w for s in ordered if s.power_w is not None]
    energies = [s.energy_wh for s in ordered if s.energy_wh is not None]
    first_soc, last_soc = (socs[0], socs[-1]) if socs else (None, None)
    peak = max(powers) if powers else None
    return (first_soc, last_soc, peak, peak, energies[0] if energies else None, pk)


def meter_values_store(
    *, charge_point_id: int, connector_number: int, transaction_id: str | None, samples: Iterable[Sample]
) -> int:
    """One message's samples, stored at once (the central system batches instead: ``meter_values_store_batch``).
    Returns how many samples it was given."""
    samples = tuple(samples)
    if not samples:
        return 0
    ref = transaction_ref(charge_point_id=charge_point_id, transaction_id=transaction_id)
    if ref is None:
        ref = transaction_ref(charge_point_id=charge_point_id, connector_number=connector_number)
    meter_values_store_batch(messages=[MeterValuesMessage(charge_point_id, connector_number, ref, samples)])
    if ref is not None:
        live_soc_push(latest=live_soc_due([(ref, samples)]))
    return len(samples)


# The vehicle's live state needs the latest SoC, not every sample (those stay in MeterSample): at most one
# reading per transaction and interval, so 1,000 connectors reporting every 10 s do not become 100 telemetry writes/s.
LIVE_SOC_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class LiveSoc:
    transaction: TransactionRef
    sample: Sample


def live_soc_due(stored: Iterable[tuple[TransactionRef, Iterable[Sample]]]) -> list[LiveSoc]:
    """The SoC readings due for the vehicles' live state: per transaction with a vehicle, its latest SoC once
    ``LIVE_SOC_EVERY`` has passed since the last one sent. Marks them sent on the refs (no database)."""
    latest: dict[int, LiveSoc] = {}
    for ref, samples in stored:
        if ref.vehicle_id is None:
            continue
        for sample in samples:
            if sample.soc_pct is None:
                continue
            held = latest.get(ref.pk)
            if held is None or sample.measured_at > held.sample.measured_at:
                latest[ref.pk] = LiveSoc(ref, sample)
    due = []
    for item in latest.values():
        sent = item.transaction.soc_sent_at
        if sent is not None and item.sample.measured_at - sent < LIVE_SOC_EVERY:
            continue
        item.transaction.soc_sent_at = item.sample.measured_at
        due.append(item)
    return due


def live_soc_push(*, latest: list[LiveSoc]) -> None:
    """Pass SoC readings to the vehicles' live state through fleet's telemetry ingest, in one batch."""
    if not latest:
        return
    readings = [
        {
            "vehicle": item.transaction.vehicle_id,
            "recorded_at": item.sample.measured_at.isoformat(),
            "soc_pct": item.sample.soc_pct,
            "charging_state": "ac" if item.transaction.charger_kind == "ac" else "dc",
        }
        for item in latest
    ]
    for item in latest:
        Transaction.objects.filter(pk=item.transaction.pk).update(soc_sent_at=item.sample.measured_at)
    vehicles = Vehicle.objects.filter(pk__in={item.transaction.vehicle_id for item in latest})
    try:
        telemetry_ingest(readings=readings, allowed_vehicles=vehicles)
    except (
        ValidationError
    ) as exc:  # e.g. a charger clock far in the future: the samples are kept, the SoC not passed on
        logger.info("SoC of %d transactions not passed to the vehicles: %s", len(latest), exc)


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
        .prefetch_related("charge_point__charger__connectors")
        .order_by("created_at")
    )
    due = []
    charges_by_plan: dict[int, dict[int, list[PlannedCharge]]] = {}  # plan -> charger -> its charges
    for delivery in rows:
        if delivery.plan_id not in charges_by_plan:
            by_charger: dict[int, list[PlannedCharge]] = {}
            for charge in delivery.plan.charges.filter(connector__isnull=False).select_related("connector"):
                if charge.connector is not None:
                    by_charger.setdefault(charge.connector.charger_id, []).append(charge)
            charges_by_plan[delivery.plan_id] = by_charger
        charger = delivery.charge_point.charger
        payloads = charger_profiles(
            delivery.plan,
            charger,
            ocpp_version=ocpp_versions[delivery.charge_point_id],
            plan_charges=charges_by_plan[delivery.plan_id].get(charger.pk, []),
        )
        due.append(DueDelivery(delivery.pk, delivery.charge_point_id, payloads))
    return due


def _delivery_status(answers: dict[str, str]) -> str:
    values = set(answers.values())
    if values and values <= {"Accepted"}:
        return ProfileDelivery.Status.ACCEPTED
    if "no answer" in values:
        return ProfileDelivery.Status.NO_ANSWER
    if any(v.startswith("error") for v in values):
        return ProfileDelivery.Status.ERROR
    return ProfileDelivery.Status.REJECTED


def delivery_record(
    *, delivery_id: int, answers: dict[str, str], sent_at: dt.datetime | None = None
) -> ProfileDelivery:
    """The charger's answer per connector ("Accepted", "Rejected", "no answer", "error: ...")."""
    deliveries_record(answers_by_delivery={delivery_id: answers}, sent_at={delivery_id: sent_at} if sent_at else None)
    return ProfileDelivery.objects.get(pk=delivery_id)


def deliveries_record(
    *, answers_by_delivery: dict[int, dict[str, str]], sent_at: Mapping[int, dt.datetime] | None = None
) -> None:
    """Many chargers' answers in one transaction: one UPDATE per distinct answer (after a plan, nearly all
    chargers answer alike). A superseded row keeps its status but records the answer.

    ``sent_at``: when each delivery was sent. An answer to profiles sent over an earlier connection than the
    charger's current one is stale: if the charger rebooted in between it has lost those profiles, and its boot
    put the row back to pending (``profiles_resend_after_boot``). Recorded, it would mark the row accepted and the
    charger would never get the profiles again, so it is dropped and the row is sent again if it is still due (an
    answer can reach the writer after the new connection's boot: answers are written in batches)."""
    now = timezone.now()
    stale = _sent_over_an_earlier_connection(sent_at or {})
    groups: dict[tuple[str, str], list[int]] = {}
    for delivery_id, answers in answers_by_delivery.items():
        if delivery_id in stale:
            continue
        key = json.dumps(answers, sort_keys=True)
        groups.setdefault((_delivery_status(answers), key), []).append(delivery_id)
    with transaction.atomic():
        for (status, key), ids in groups.items():
            answered = {} if status == ProfileDelivery.Status.NO_ANSWER else {"answered_at": now}
            common = {"attempts": F("attempts") + 1, "last_attempt_at": now, "answers": json.loads(key), **answered}
            rows = ProfileDelivery.objects.filter(pk__in=ids)
            rows.exclude(status=ProfileDelivery.Status.SUPERSEDED).update(status=status, **common)
            rows.filter(status=ProfileDelivery.Status.SUPERSEDED).update(**common)


def _sent_over_an_earlier_connection(sent_at: Mapping[int, dt.datetime]) -> set[int]:
    """The deliveries sent before their charger's current connection began (one query for the batch)."""
    if not sent_at:
        return set()
    reconnected = ProfileDelivery.objects.filter(
        pk__in=list(sent_at), charge_point__connected_at__gt=min(sent_at.values())
    ).values_list("pk", "charge_point__connected_at")
    stale = {pk for pk, connected_at in reconnected if connected_at is not None and connected_at > sent_at[pk]}
    if stale:
        logger.info("dropped %d answers to profiles sent over a connection since replaced", len(stale))
    return stale
