"""The OCPP central system: one asyncio process serving ws://HOST:PORT/ocpp/<charge point id> (docs/ocpp.md).

``websockets`` carries the connections and the ``ocpp`` package parses, validates (official JSON schemas) and
routes the messages. Every database touch runs in a small thread pool (Django's ORM is synchronous), through
``csms.services``. A delivery loop turns new plans into SetChargingProfile calls (the outbox in
``ProfileDelivery``), so a plan made while the central system was down, or while a charger was offline, is
delivered when both are back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.utils import timezone
from ocpp import messages as ocpp_messages
from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType, unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from csms import services, validation
from csms.models import OcppVersion

logger = logging.getLogger(__name__)

SUBPROTOCOLS = {"ocpp2.0.1": OcppVersion.V201, "ocpp1.6": OcppVersion.V16}
PATH_PREFIX = "/ocpp/"
# A charger that gave no answer is asked again after this long (or at once when it reconnects).
NO_ANSWER_RETRY_S = 60.0
SOC_PUSH_EVERY_S = 5.0


class DatabaseUnavailable(OCPPError):
    """Answered as InternalError: the charger keeps the message and sends it again later (OCPP's retry)."""

    code = "InternalError"
    default_description = "The central system cannot store this now; send it again later."


async def in_db(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run a service in the database thread pool; a lost database becomes ``DatabaseUnavailable``."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(_db_call, fn, kwargs))


def _db_call(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    # Each thread keeps its connection (no per-call health check: that is one more round trip per message); a
    # connection the database dropped fails once, is closed here, and the next call reconnects.
    try:
        return fn(**kwargs)
    except DatabaseError as exc:
        if connection.connection is not None and not connection.is_usable():
            connection.close()  # the next call reconnects
        if _is_connection_error(exc):
            connection.close()
            raise DatabaseUnavailable(description=str(exc)[:200]) from exc
        raise


def _is_connection_error(exc: DatabaseError) -> bool:
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


class RateLimiter:
    """A token bucket per connection: ``per_minute`` messages, bursts of up to a quarter of that."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(per_minute / 4.0, 10.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class GroupCommit:
    """Work from many connections written in one database transaction ("group commit"). Each caller waits for
    the commit that holds its item, so a charger is answered only once what it sent is stored: an accepted
    message is never lost, and a lost database is an InternalError the charger answers by sending it again.

    A batch is everything that arrived while the previous one was being written: under load batches grow and
    the database sees one commit instead of hundreds; on a quiet system an item is written at once.
    """

    def __init__(
        self,
        write: Callable[..., Any],  # write(items=[...]) in a database thread
        *,
        max_batch: int = 1000,
        written: Callable[[Any], None] | None = None,
        answers: bool = False,
    ) -> None:
        # answers: write returns one answer per item, in order, and each caller gets its own from submit().
        self.write, self.max_batch, self.written, self.answers = write, max_batch, written, answers
        self.pending: list[tuple[Any, asyncio.Future]] = []
        self.arrived = asyncio.Event()
        self.batches = 0

    async def submit(self, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        self.arrived.set()
        return await future

    async def run(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            while self.pending:
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                await self._write(batch)

    async def _write(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        self.batches += 1
        try:
            result = await in_db(self.write, items=[item for item, _future in batch])
        except DatabaseUnavailable as exc:
            _settle(batch, exc)
        except Exception:  # one bad item must not fail the others: write each alone, fail only the bad one
            logger.exception("group commit of %d items failed; writing them one by one", len(batch))
            for item, future in batch:
                try:
                    result = await in_db(self.write, items=[item])
                except Exception as exc:
                    _settle([(item, future)], exc)
                else:
                    self._done(result)
                    _settle([(item, future)], None, result if self.answers else None)
        else:
            self._done(result)
            _settle(batch, None, result if self.answers else None)

    def _done(self, result: Any) -> None:
        if self.written is not None:
            self.written(result)


def _settle(
    batch: list[tuple[Any, asyncio.Future]], error: BaseException | None, answers: list[Any] | None = None
) -> None:
    for i, (_item, future) in enumerate(batch):
        if future.done():  # the connection went away meanwhile
            continue
        if error is None:
            future.set_result(answers[i] if answers is not None else None)
        else:
            future.set_exception(error)


class _Link:
    """What both protocol versions share: framing errors, rate limit, the charge point row."""

    _ocpp_version: str
    id: str  # the charge point identity, set by the ocpp package's ChargePoint (every link is also one)

    if TYPE_CHECKING:  # the ocpp package's ChargePoint.start (a link is one too); never defined here at run time

        async def start(self) -> None: ...

    def __init__(
        self,
        identity: str,
        websocket: ServerConnection,
        *,
        charge_point_id: int,
        meter_writer: GroupCommit,
        start_writer: GroupCommit,
        deliveries_queued: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(identity, websocket, response_timeout=settings.EVFLEET_CSMS_RESPONSE_TIMEOUT_S)  # type: ignore[call-arg]
        self.charge_point_id = charge_point_id
        self.meter_writer = meter_writer
        self.start_writer = start_writer
        self.deliveries_queued = deliveries_queued  # wakes the delivery loop
        self.limiter = RateLimiter(settings.EVFLEET_CSMS_MESSAGES_PER_MINUTE)
        self.rate_limited = 0
        # This connection's transactions, so a meter value costs no lookup. Per connection: a charger that
        # reconnects (here or to another process) starts afresh from the database.
        self.transactions: dict[str, services.TransactionRef] = {}
        self.open_on_connector: dict[int, services.TransactionRef | None] = {}

    async def transaction_ref(
        self, transaction_id: str | None, connector_number: int | None
    ) -> services.TransactionRef | None:
        """This charger's transaction by id or, without one (or an unknown one), the connector's open one."""
        if transaction_id:
            ref = self.transactions.get(transaction_id)
            if ref is None:
                ref = await in_db(
                    services.transaction_ref, charge_point_id=self.charge_point_id, transaction_id=transaction_id
                )
                if ref is not None:
                    self.transactions[ref.transaction_id] = ref
            if ref is not None:
                return ref
        if connector_number is None:
            return None
        if connector_number not in self.open_on_connector:
            ref = await in_db(
                services.transaction_ref, charge_point_id=self.charge_point_id, connector_number=connector_number
            )
            self.open_on_connector[connector_number] = ref
            if ref is not None:
                self.transactions[ref.transaction_id] = ref
        return self.open_on_connector[connector_number]

    async def transaction_start(self, **start: Any) -> services.StartAnswer:
        """Open the transaction (and its plug-in event) in the next group commit of starts: when a depot's buses
        plug in together, their starts and events are a few queries and one re-plan request per depot, not a
        dozen queries each in the pool that the meter values wait for."""
        answer: services.StartAnswer = await self.start_writer.submit(
            services.StartRequest(charge_point_id=self.charge_point_id, **start)
        )
        self.open_on_connector.pop(start["connector_number"], None)
        if answer.ref is not None:
            self.transactions.setdefault(answer.ref.transaction_id, answer.ref)
        return answer

    def transaction_stopped(self, transaction_id: str) -> None:
        ref = self.transactions.pop(str(transaction_id), None)
        for number, open_ref in list(self.open_on_connector.items()):
            if open_ref is not None and (open_ref is ref or open_ref.transaction_id == str(transaction_id)):
                del self.open_on_connector[number]

    async def store_meter_values(
        self, connector_number: int | None, transaction_id: str | None, samples: list[services.Sample]
    ) -> None:
        """Queue the samples for the next group commit and wait until they are stored."""
        if not samples:
            return
        ref = await self.transaction_ref(transaction_id, connector_number)
        if connector_number is None:
            if ref is None:
                return
            connector_number = ref.connector_number
        await self.meter_writer.submit(
            services.MeterValuesMessage(self.charge_point_id, connector_number, ref, tuple(samples))
        )

    async def route_message(self, raw_msg: str) -> None:
        try:
            msg = unpack(raw_msg)
        except OCPPError as exc:
            await self._send_error(_unique_id_of(raw_msg), self._framing_code(raw_msg), str(exc.description))
            return
        if msg.message_type_id == MessageType.Call and not self.limiter.allow():
            self.rate_limited += 1
            if self.rate_limited % 100 == 1:
                logger.warning("%s: rate limited (%d messages refused)", self.id, self.rate_limited)
            await self._send_error(msg.unique_id, "GenericError", "Rate limit exceeded: slow down.")
            return
        await super().route_message(raw_msg)  # type: ignore[misc]

    def _framing_code(self, raw_msg: str) -> str:
        try:
            json.loads(raw_msg)
        except ValueError:
            return "FormationViolation" if self._ocpp_version == OcppVersion.V16 else "RpcFrameworkError"
        return "ProtocolError" if self._ocpp_version == OcppVersion.V16 else "RpcFrameworkError"

    async def _send_error(self, unique_id: str, code: str, description: str) -> None:
        await self._send(json.dumps([MessageType.CallError, unique_id, code, description[:255], {}]))  # type: ignore[attr-defined]

    async def send_profiles(self, payloads: list[dict]) -> dict[str, str]:
        """Send each connector's SetChargingProfile; the answer per connector id."""
        answers: dict[str, str] = {}
        for payload in payloads:
            number = str(payload.get("connectorId", payload.get("evseId")))
            request = self.profile_request(payload)
            try:
                # Built and validated against the official schema by charging.ocpp: not validated twice.
                response = await self.call(request, suppress=False, skip_schema_validation=True)  # type: ignore[attr-defined]
                answers[number] = str(response.status)
            except TimeoutError:
                answers[number] = "no answer"
            except OCPPError as exc:
                answers[number] = f"error: {exc.code}"
            except ConnectionClosed:
                answers[number] = "no answer"
        return answers

    def profile_request(self, payload: dict) -> Any:
        raise NotImplementedError

    async def booted(self, **said: str) -> None:
        """Keep what the charger said at boot; its current profiles are queued again (it may have lost them), and
        sent once the boot is answered (the delivery loop runs after this handler's answer is on its way)."""
        queued = await in_db(services.charge_point_booted, charge_point_id=self.charge_point_id, **said)
        if queued:
            self.deliveries_queued()

    async def seen(self, heartbeat: bool = False) -> dt.datetime:
        return await in_db(services.charge_point_seen, charge_point_id=self.charge_point_id, heartbeat=heartbeat)


def _unique_id_of(raw_msg: str) -> str:
    with contextlib.suppress(ValueError, TypeError):
        parsed = json.loads(raw_msg)
        if isinstance(parsed, list) and len(parsed) > 1 and isinstance(parsed[1], str):
            return parsed[1][:36]
    return "-1"


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_SCALE_TO_BASE = {"Wh": 1.0, "kWh": 1000.0, "W": 1.0, "kW": 1000.0, "Percent": 1.0}


def samples_from(meter_value: list[dict], *, version: str) -> list[services.Sample]:
    """Energy (Wh), power (W) and SoC (%) per timestamp from OCPP sampled values (phase-less values only)."""
    samples = []
    for entry in meter_value or []:
        energy = power = soc = None
        for sampled in entry.get("sampled_value") or entry.get("sampledValue") or []:
            if sampled.get("phase"):
                continue
            measurand = sampled.get("measurand", "Energy.Active.Import.Register")
            value = _number(sampled.get("value"))
            if value is None:
                continue
            if version == OcppVersion.V16:
                unit = sampled.get("unit") or ("Percent" if measurand == "SoC" else "Wh")
                value *= _SCALE_TO_BASE.get(unit, 1.0)
            else:
                unit_of_measure = sampled.get("unit_of_measure") or {}
                unit = unit_of_measure.get("unit") or ("Percent" if measurand == "SoC" else "Wh")
                value *= _SCALE_TO_BASE.get(unit, 1.0) * 10 ** int(unit_of_measure.get("multiplier", 0))
            if measurand == "Energy.Active.Import.Register":
                energy = value
            elif measurand == "Power.Active.Import":
                power = value
            elif measurand == "SoC" and 0 <= value <= 100:
                soc = value
        moment = services._moment(entry.get("timestamp"))
        samples.append(services.Sample(moment, energy, power, soc))
    return samples


class Link16(_Link, ChargePoint16):
    _ocpp_version = OcppVersion.V16

    def profile_request(self, payload: dict) -> Any:
        return call16.SetChargingProfile(
            connector_id=payload["connectorId"], cs_charging_profiles=payload["csChargingProfiles"]
        )

    @on("BootNotification")
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **extra: Any) -> Any:
        await self.booted(
            vendor=charge_point_vendor,
            model=charge_point_model,
            firmware_version=extra.get("firmware_version", ""),
            serial_number=extra.get("charge_point_serial_number", ""),
        )
        return result16.BootNotification(
            current_time=_now_iso(), interval=settings.EVFLEET_CSMS_HEARTBEAT_S, status="Accepted"
        )

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        await self.seen(heartbeat=True)
        return result16.Heartbeat(current_time=_now_iso())

    @on("StatusNotification")
    async def on_status(self, connector_id: int, error_code: str, status: str, **extra: Any) -> Any:
        await in_db(
            services.status_notification,
            charge_point_id=self.charge_point_id,
            connector_number=connector_id,
            status=status,
            error_code=error_code,
            timestamp=extra.get("timestamp"),
        )
        return result16.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_tag: str) -> Any:
        status = await in_db(services.authorize, charge_point_id=self.charge_point_id, token=id_tag)
        return result16.Authorize(id_tag_info={"status": status})

    @on("StartTransaction")
    async def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **extra: Any) -> Any:
        answer = await self.transaction_start(
            connector_number=connector_id,
            id_tag=id_tag,
            timestamp=timestamp,
            meter_start_wh=float(meter_start),
            ocpp_version=OcppVersion.V16,
        )
        return result16.StartTransaction(
            transaction_id=int(answer.transaction_id), id_tag_info={"status": answer.status}
        )

    @on("StopTransaction")
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **extra: Any) -> Any:
        data = extra.get("transaction_data") or []
        if data:
            await self.store_meter_values(None, str(transaction_id), samples_from(data, version=self._ocpp_version))
        await in_db(
            services.transaction_stop,
            charge_point_id=self.charge_point_id,
            transaction_id=str(transaction_id),
            timestamp=timestamp,
            meter_stop_wh=float(meter_stop),
            reason=extra.get("reason", ""),
            id_tag=extra.get("id_tag", ""),
        )
        self.transaction_stopped(str(transaction_id))
        if extra.get("id_tag"):
            return result16.StopTransaction(id_tag_info={"status": "Accepted"})
        return result16.StopTransaction()

    @on("MeterValues")
    async def on_meter_values(self, connector_id: int, meter_value: list, **extra: Any) -> Any:
        tx = extra.get("transaction_id")
        samples = samples_from(meter_value, version=self._ocpp_version)
        await self.store_meter_values(connector_id, str(tx) if tx is not None else None, samples)
        return result16.MeterValues()


class Link201(_Link, ChargePoint201):
    _ocpp_version = OcppVersion.V201

    def profile_request(self, payload: dict) -> Any:
        return call201.SetChargingProfile(evse_id=payload["evseId"], charging_profile=payload["chargingProfile"])

    @on("BootNotification")
    async def on_boot(self, charging_station: dict, reason: str, **extra: Any) -> Any:
        await self.booted(
            vendor=charging_station.get("vendor_name", ""),
            model=charging_station.get("model", ""),
            firmware_version=charging_station.get("firmware_version", ""),
            serial_number=charging_station.get("serial_number", ""),
        )
        return result201.BootNotification(
            current_time=_now_iso(), interval=settings.EVFLEET_CSMS_HEARTBEAT_S, status="Accepted"
        )

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        await self.seen(heartbeat=True)
        return result201.Heartbeat(current_time=_now_iso())

    @on("StatusNotification")
    async def on_status(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **extra: Any
    ) -> Any:
        await in_db(
            services.status_notification,
            charge_point_id=self.charge_point_id,
            connector_number=evse_id,  # connector n is EVSE n (charging/ocpp.py)
            status=connector_status,
            timestamp=timestamp,
        )
        return result201.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_token: dict, **extra: Any) -> Any:
        status = await in_db(services.authorize, charge_point_id=self.charge_point_id, token=id_token["id_token"])
        return result201.Authorize(id_token_info={"status": status})

    @on("TransactionEvent")
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict,
        **extra: Any,
    ) -> Any:
        tx_id = transaction_info["transaction_id"]
        evse = extra.get("evse") or {}
        token = (extra.get("id_token") or {}).get("id_token", "")
        samples = samples_from(extra.get("meter_value") or [], version=self._ocpp_version)
        answer = None
        if event_type == "Started" or await self.transaction_ref(tx_id, None) is None:
            energies = [s.energy_wh for s in samples if s.energy_wh is not None]
            answer = await self.transaction_start(
                connector_number=evse.get("id", 1),
                id_tag=token,
                timestamp=timestamp,
                meter_start_wh=energies[0] if energies else None,
                transaction_id=tx_id,
                ocpp_version=OcppVersion.V201,
            )
        if samples:
            ref = await self.transaction_ref(tx_id, None)
            await self.store_meter_values(ref.connector_number if ref else evse.get("id", 1), tx_id, samples)
        if event_type == "Ended":
            energies = [s.energy_wh for s in samples if s.energy_wh is not None]
            await in_db(
                services.transaction_stop,
                charge_point_id=self.charge_point_id,
                transaction_id=tx_id,
                timestamp=timestamp,
                meter_stop_wh=energies[-1] if energies else None,
                reason=transaction_info.get("stopped_reason", ""),
                id_tag=token,
            )
            self.transaction_stopped(tx_id)
        if token:
            status = (
                answer.status
                if answer
                else await in_db(services.authorize, charge_point_id=self.charge_point_id, token=token)
            )
            return result201.TransactionEvent(id_token_info={"status": status})
        return result201.TransactionEvent()

    @on("MeterValues")
    async def on_meter_values(self, evse_id: int, meter_value: list, **extra: Any) -> Any:
        await self.store_meter_values(evse_id, None, samples_from(meter_value, version=self._ocpp_version))
        return result201.MeterValues()


def _now_iso() -> str:
    return timezone.now().astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


LINKS: dict[str, type[_Link]] = {OcppVersion.V16: Link16, OcppVersion.V201: Link201}


class CentralSystem:
    """The server: accepts chargers, keeps one link per charger, and delivers plans."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9000) -> None:
        self.host, self.port = host, port
        self.links: dict[int, _Link] = {}  # charge point pk -> its live link
        self.in_flight: set[int] = set()  # delivery ids being sent
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.bound_port: int | None = None
        # Meter values and delivery answers are written in group commits (see GroupCommit); the vehicles' live
        # SoC, derived from stored samples, follows every few seconds off the chargers' path.
        self.meter_writer = GroupCommit(_write_meter_values, written=self._soc_due)
        self.delivery_writer = GroupCommit(_write_delivery_answers)
        self.start_writer = GroupCommit(_write_transaction_starts, answers=True)
        self.soc_pending: dict[int, services.LiveSoc] = {}

    # --- Handshake ------------------------------------------------------------------------------------------

    async def process_request(self, websocket: ServerConnection, request: Request) -> Response | None:
        """Refuse before the upgrade: a path that is not /ocpp/<id>, missing, wrong or another charger's credentials."""
        if not request.path.startswith(PATH_PREFIX):
            return websocket.respond(HTTPStatus.NOT_FOUND, "Connect to /ocpp/<charge point id>.\n")
        identity = request.path[len(PATH_PREFIX) :].strip("/")
        username, password = _basic_credentials(request.headers.get("Authorization", ""))
        if not identity or username is None:
            response = websocket.respond(HTTPStatus.UNAUTHORIZED, "HTTP Basic credentials required.\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="evfleet OCPP"'
            return response
        # The username is the charge point identity (OCPP security profile 1): a charger may only be itself.
        if username != identity:
            return websocket.respond(HTTPStatus.UNAUTHORIZED, "Credentials do not match the identity.\n")
        try:
            charge_point = await in_db(services.charge_point_authenticate, identity=identity, password=password)
        except DatabaseUnavailable:
            return websocket.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Try again later.\n")
        if charge_point is None:
            return websocket.respond(HTTPStatus.UNAUTHORIZED, "Unknown charge point or wrong password.\n")
        websocket.charge_point_pk = charge_point.pk  # type: ignore[attr-defined]
        return None

    # --- Connections ----------------------------------------------------------------------------------------

    async def handle(self, websocket: ServerConnection) -> None:
        version = SUBPROTOCOLS.get(websocket.subprotocol or "")
        if version is None:
            await websocket.close(1002, "Offer ocpp1.6 or ocpp2.0.1")
            return
        identity = websocket.request.path[len(PATH_PREFIX) :].strip("/")  # type: ignore[union-attr]
        pk: int = websocket.charge_point_pk  # type: ignore[attr-defined]
        link = LINKS[version](
            identity,
            websocket,
            charge_point_id=pk,
            meter_writer=self.meter_writer,
            start_writer=self.start_writer,
            deliveries_queued=self.wake.set,
        )
        previous = self.links.get(pk)
        if previous is not None:  # the same charger again (a dropped link it has not noticed): the new one wins
            with contextlib.suppress(Exception):
                await previous._connection.close(1000, "Replaced by a new connection")  # type: ignore[attr-defined]
        self.links[pk] = link
        try:
            await in_db(services.charge_point_connected, charge_point_id=pk, ocpp_version=version)
        except DatabaseUnavailable:
            await websocket.close(1013, "Try again later")
            return
        connected_at = timezone.now()
        self.wake.set()  # its pending profiles
        try:
            await link.start()
        except ConnectionClosed:
            pass
        finally:
            if self.links.get(pk) is link:
                del self.links[pk]
                with contextlib.suppress(DatabaseUnavailable, DatabaseError):
                    await in_db(services.charge_point_disconnected, charge_point_id=pk, since=connected_at)

    # --- Outbox ---------------------------------------------------------------------------------------------

    async def delivery_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                await in_db(services.plans_scan)
                await self._deliver_due()
            except (DatabaseUnavailable, DatabaseError) as exc:
                logger.warning("delivery loop: database unavailable (%s); retrying", exc)
            except Exception:  # never let one bad plan stop deliveries to everyone
                logger.exception("delivery loop failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=settings.EVFLEET_CSMS_SCAN_S)
            self.wake.clear()

    async def _deliver_due(self) -> None:
        if not self.links:
            return
        versions = {pk: link._ocpp_version for pk, link in self.links.items()}
        due = await in_db(
            services.deliveries_due,
            charge_point_ids=list(versions),
            ocpp_versions=versions,
            exclude_ids=set(self.in_flight),
            retry_after_s=NO_ANSWER_RETRY_S,
        )
        for item in due:
            link = self.links.get(item.charge_point_id)
            if link is None or item.delivery_id in self.in_flight:
                continue
            self.in_flight.add(item.delivery_id)
            asyncio.create_task(self._deliver(link, item))

    async def _deliver(self, link: _Link, item: services.DueDelivery) -> None:
        try:
            sent_at = timezone.now()
            answers = await link.send_profiles(item.payloads)
            for _attempt in range(30):  # the answer is kept even if the database is away for a while
                try:
                    await self.delivery_writer.submit((item.delivery_id, answers, sent_at))
                    break
                except (DatabaseUnavailable, DatabaseError):
                    await asyncio.sleep(1.0)
        finally:
            self.in_flight.discard(item.delivery_id)

    # --- The vehicles' live SoC ---------------------------------------------------------------------------

    def _soc_due(self, due: list[services.LiveSoc]) -> None:
        for item in due:
            self.soc_pending[item.transaction.pk] = item

    async def soc_loop(self) -> None:
        """Pass the latest SoC per transaction on to the vehicles' live state, a batch every few seconds. The
        samples themselves are already stored; a batch lost with the database is sent again a minute later."""
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=SOC_PUSH_EVERY_S)
            if not self.soc_pending:
                continue
            latest, self.soc_pending = list(self.soc_pending.values()), {}
            try:
                await in_db(services.live_soc_push, latest=latest)
            except Exception:
                logger.warning("live SoC of %d transactions not passed on", len(latest), exc_info=True)

    # --- Running --------------------------------------------------------------------------------------------

    async def run(self, *, ready: Callable[[int], None] | None = None) -> None:
        # The ocpp package validates each message in the default executor, i.e. behind our database calls; a
        # schema check takes a fraction of a millisecond, the hop to a busy pool far more: validate in the loop.
        ocpp_messages.ASYNC_VALIDATION = False
        validation.install()  # jsonschema-rs first: a 2.0.1 message's check from 4 ms to microseconds
        loop = asyncio.get_running_loop()
        threads = settings.EVFLEET_CSMS_DB_THREADS
        executor = ThreadPoolExecutor(threads, thread_name_prefix="csms-db")
        loop.set_default_executor(executor)
        try:
            await self._serve(ready)
        finally:
            # Each database thread closes its own connection (Django's connections are per thread).
            barrier = threading.Barrier(threads, timeout=10)
            await asyncio.gather(
                *(loop.run_in_executor(executor, _close_connection, barrier) for _ in range(threads)),
                return_exceptions=True,
            )
            executor.shutdown(wait=False)

    async def _serve(self, ready: Callable[[int], None] | None) -> None:
        async with serve(
            self.handle,
            self.host,
            self.port,
            subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
            process_request=self.process_request,
            max_size=256 * 1024,
            compression=None,
            open_timeout=60,  # a depot's chargers all reconnect at once after a restart
            backlog=1024,
        ) as server:
            self.bound_port = next(iter(server.sockets)).getsockname()[1]
            logger.info("OCPP central system on ws://%s:%s%s<id>", self.host, self.bound_port, PATH_PREFIX)
            background = [
                asyncio.create_task(self.delivery_loop()),
                asyncio.create_task(self.meter_writer.run()),
                asyncio.create_task(self.delivery_writer.run()),
                asyncio.create_task(self.start_writer.run()),
                asyncio.create_task(self.soc_loop()),
            ]
            if ready is not None:
                ready(self.bound_port)
            await self.stopping.wait()
            for task in background:
                task.cancel()
            for link in list(self.links.values()):
                with contextlib.suppress(Exception):
                    await link._connection.close(1001, "Central system stopping")  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.stopping.set()


def _write_meter_values(*, items: list[services.MeterValuesMessage]) -> list[services.LiveSoc]:
    services.meter_values_store_batch(messages=items)
    return services.live_soc_due((m.transaction, m.samples) for m in items if m.transaction is not None)


def _write_transaction_starts(*, items: list[services.StartRequest]) -> list[services.StartAnswer]:
    return services.transactions_start(requests=items)


def _write_delivery_answers(*, items: list[tuple[int, dict[str, str], dt.datetime]]) -> None:
    services.deliveries_record(
        answers_by_delivery={pk: answers for pk, answers, _sent in items},
        sent_at={pk: sent for pk, _answers, sent in items},
    )


def _close_connection(barrier: threading.Barrier) -> None:
    barrier.wait()
    connections.close_all()


def _basic_credentials(header: str) -> tuple[str | None, str]:
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, ""
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else (None, "")
