"""The MQTT bridge: vehicles publish telemetry batches to the broker, evfleet stores them with the ingest service.

* A vehicle publishes the body of one HTTP batch (``{"readings": [...]}``) to
  ``evfleet/v1/vehicles/<vehicle id>/telemetry`` with QoS 1. The broker (dynamic security,
  ``fleet.telemetry.broker_auth``) lets a vehicle key publish to its own vehicle's topic only, so the topic
  names the vehicle the same way the key does over HTTP.
* The bridge holds a persistent session (fixed client id, ``clean_session=False``): while it is away the
  broker queues the messages. It acknowledges a message (PUBACK) only after the ingest transaction has
  committed and the result is published: a crash before that means the broker delivers it again, and the
  idempotent ingest answers ``duplicate`` for what had already been stored.
* Each message is answered on ``.../telemetry/result`` with the HTTP answer's body (counts, statuses,
  errors) or, for a whole-message refusal, ``{"error": <code>, "detail": <reason>}`` - ``invalid_json``,
  ``invalid_body``, ``payload_too_large``, ``too_many_readings``, ``unknown_vehicle``, ``forbidden``,
  ``internal`` (a topic without a vehicle id has nowhere to be answered: acknowledged and dropped). No input
  stops the bridge; a lost database connection leaves the message unacknowledged and is retried after a pause.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from fleet.models import Vehicle
from fleet.telemetry.broker_auth import TELEMETRY_SUBSCRIPTION, TOPIC_ROOT, broker_address, result_topic
from fleet.telemetry.ingest import BatchTooLarge, max_batch_bytes, max_batch_readings, telemetry_ingest

logger = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "evfleet-mqtt-ingest"
_CONNECTION_LOST = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
_ALLOWED_BODY_KEYS = frozenset({"readings"})
_VEHICLE_CACHE_S = 60.0


class MessageRefused(Exception):
    """The whole message is refused; ``code`` and the text go to the result topic."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass
class BridgeStats:
    messages: int = 0
    refused: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("created", "duplicate", "conflict", "rejected"), 0)
    )
    database_retries: int = 0


@dataclass
class _Received:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


def vehicle_id_from_topic(topic: str) -> int:
    """``evfleet/v1/vehicles/<id>/telemetry`` -> id."""
    prefix, suffix = f"{TOPIC_ROOT}/", "/telemetry"
    middle = topic[len(prefix) : -len(suffix)] if topic.startswith(prefix) and topic.endswith(suffix) else ""
    if not middle.isascii() or not middle.isdigit() or len(middle) > 18:
        raise MessageRefused("invalid_topic", f"Publish to {TOPIC_ROOT}/<vehicle id>/telemetry.")
    return int(middle)


def readings_from_payload(payload: bytes) -> list[Any]:
    """The body's ``readings`` list, checked as the HTTP endpoint checks it."""
    limit = max_batch_bytes()
    if len(payload) > limit:
        raise MessageRefused("payload_too_large", f"The message exceeds {limit} bytes; send smaller batches.")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MessageRefused("invalid_json", f"Invalid JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("readings"), list):
        raise MessageRefused("invalid_body", "Send a JSON object with a `readings` list.")
    unknown = sorted(map(str, set(body) - _ALLOWED_BODY_KEYS))
    if unknown:
        raise MessageRefused("invalid_body", f"Unknown field(s): {', '.join(unknown)}.")
    if not body["readings"]:
        raise MessageRefused("invalid_body", "The batch is empty.")
    if len(body["readings"]) > max_batch_readings():
        raise MessageRefused("too_many_readings", f"At most {max_batch_readings()} readings per batch.")
    return body["readings"]


class TelemetryBridge:
    """Subscribe, ingest, answer, acknowledge. ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        *,
        url: str,
        client_id: str = DEFAULT_CLIENT_ID,
        username: str = "",
        password: str = "",
        share_group: str = "",
        database_retry_s: float = 1.0,
    ) -> None:
        self.url = url
        self.database_retry_s = database_retry_s
        self.stats = BridgeStats()
        self.subscription = f"$share/{share_group}/{TELEMETRY_SUBSCRIPTION}" if share_group else TELEMETRY_SUBSCRIPTION
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self._stop = threading.Event()
        self._generation = 0
        self._vehicles: dict[int, tuple[float, Vehicle | None]] = {}
        self.subscribed = threading.Event()
        # manual_ack: paho sends the PUBACK only when ack() is called, i.e. after the commit.
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=True
        )
        if username:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # --- paho's network thread ---------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            logger.error("MQTT broker %s refused the bridge: %s", self.url, reason)
            return
        self._generation += 1
        logger.info("MQTT bridge connected to %s (session present: %s)", self.url, flags.session_present)
        client.subscribe(self.subscription, qos=1)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.subscribed.clear()
        # Messages received on the lost connection are no longer ours to acknowledge: the broker sends
        # the unacknowledged ones again on the next connection.
        self._generation += 1
        if not self._stop.is_set():
            logger.warning("MQTT bridge lost the broker (%s); reconnecting.", reason)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if all(not reason.is_failure for reason in reasons):
            self.subscribed.set()
        else:
            logger.error("MQTT broker refused the subscription %s: %s", self.subscription, reasons)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/result"):
            return
        self._inbox.put(_Received(self._generation, message.mid, message.qos, message.topic, bytes(message.payload)))

    # --- the worker (caller's thread: Django's database connection lives here) -----------------------------

    def run(self) -> None:
        host, port = broker_address(self.url)
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()
        try:
            while not self._stop.is_set():
                try:
                    received = self._inbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._handle(received)
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def stop(self) -> None:
        self._stop.set()

    def _handle(self, received: _Received) -> None:
        while not self._stop.is_set():
            if received.generation != self._generation:
                return  # from a lost connection: redelivered on this one
            try:
                answer = self._process(received)
            except _CONNECTION_LOST as exc:
                # Nothing was committed; the message stays unacknowledged and is tried again.
                self.stats.database_retries += 1
                logger.warning("MQTT bridge: database unavailable (%s); retrying in %s s.", exc, self.database_retry_s)
                connection.close()
                time.sleep(self.database_retry_s)
                continue
            except Exception:
                # A bug must not stop every vehicle's telemetry: answer, log, acknowledge (nothing committed).
                logger.exception("MQTT bridge: could not process a message on %s", received.topic)
                answer = {"error": "internal", "detail": "The message could not be processed; it was not stored."}
            self._answer_and_ack(received, answer)
            return

    def _process(self, received: _Received) -> dict[str, Any]:
        self.stats.messages += 1
        close_old_connections()
        try:
            vehicle_id = vehicle_id_from_topic(received.topic)
            readings = readings_from_payload(received.payload)
            vehicle = self._vehicle(vehicle_id)
            if vehicle is None:
                raise MessageRefused("unknown_vehicle", "Unknown vehicle.")
            try:
                result = telemetry_ingest(readings=readings, vehicle=vehicle)
            except PermissionDenied as exc:
                raise MessageRefused("forbidden", str(exc)) from exc
            except DjangoValidationError as exc:
                raise MessageRefused("invalid_body", "; ".join(exc.messages)) from exc
            except BatchTooLarge as exc:
                raise MessageRefused("too_many_readings", str(exc)) from exc
        except MessageRefused as refusal:
            self.stats.refused += 1
            return {"error": refusal.code, "detail": refusal.detail}
        for status, count in result.counts.items():
            self.stats.counts[status] += count
        return result.as_dict()

    def _vehicle(self, vehicle_id: int) -> Vehicle | None:
        now = time.monotonic()
        cached = self._vehicles.get(vehicle_id)
        if cached is None or now - cached[0] > _VEHICLE_CACHE_S:
            cached = (now, Vehicle.objects.filter(pk=vehicle_id).first())
            self._vehicles[vehicle_id] = cached
        return cached[1]

    def _answer_and_ack(self, received: _Received, answer: dict[str, Any]) -> None:
        try:
            vehicle_id: int | None = vehicle_id_from_topic(received.topic)
        except MessageRefused:
            vehicle_id = None
        if vehicle_id is not None:
            self._client.publish(result_topic(vehicle_id), orjson.dumps(answer), qos=1)
        if received.generation == self._generation:
            self._client.ack(received.mid, received.qos)
