"""Broker credentials managed by evfleet: Mosquitto's dynamic-security plugin, driven over MQTT.

Each vehicle key is also a broker login: username ``evk_<prefix>``, password the whole key, one role
``evfleet-vehicle-<id>`` that may publish to ``evfleet/v1/vehicles/<id>/telemetry`` and subscribe to its
``.../telemetry/result`` and nothing else (the plugin's default ACL denies every other publish and
subscribe). The bridge (``mqtt_ingest``) logs in as ``EVFLEET_MQTT_USERNAME`` with role ``evfleet-bridge``:
subscribe to every vehicle's telemetry, publish the results.

The broker is told when a key is issued (the only moment the secret exists: the database keeps a hash) and
when it is revoked. A revocation set in the future (rotation with a grace period) and any missed update
are settled by ``broker_credentials_sync`` (``manage.py mqtt_broker_sync``): it deletes every ``evk_``
client whose key is gone or revoked. Commands go to ``$CONTROL/dynamic-security/v1`` with the plugin's
admin login (``EVFLEET_MQTT_ADMIN_USERNAME``/``_PASSWORD``); nothing here runs unless
``EVFLEET_MQTT_DYNSEC`` is on.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from fleet.models import VehicleApiKey

logger = logging.getLogger(__name__)

TOPIC_ROOT = "evfleet/v1/vehicles"
TELEMETRY_SUBSCRIPTION = f"{TOPIC_ROOT}/+/telemetry"
RESULT_PATTERN = f"{TOPIC_ROOT}/+/telemetry/result"
BRIDGE_ROLE = "evfleet-bridge"
KEY_USERNAME_PREFIX = "evk_"
_CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
_RESPONSE_TOPIC = f"{_CONTROL_TOPIC}/response"
_ALREADY_EXISTS = ("already exists",)
_NOT_FOUND = ("not found",)


def telemetry_topic(vehicle_id: int) -> str:
    return f"{TOPIC_ROOT}/{vehicle_id}/telemetry"


def result_topic(vehicle_id: int) -> str:
    return f"{TOPIC_ROOT}/{vehicle_id}/telemetry/result"


def vehicle_role(vehicle_id: int) -> str:
    return f"evfleet-vehicle-{vehicle_id}"


def key_username(key: VehicleApiKey) -> str:
    return f"{KEY_USERNAME_PREFIX}{key.prefix}"


def broker_address(url: str) -> tuple[str, int]:
    """``mqtt://host[:port]`` -> (host, port). Only plain MQTT over TCP (put TLS in front of the broker)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"Give the broker as mqtt://host[:port], not {url!r}.")
    return parts.hostname, parts.port or 1883


def broker_enabled() -> bool:
    return bool(settings.EVFLEET_MQTT_DYNSEC)


class BrokerAdminError(Exception):
    """The broker refused a dynamic-security command, or could not be reached in time."""


class DynsecAdmin:
    """A short-lived admin connection to the dynamic-security plugin: send commands, wait for the answers."""

    def __init__(self, url: str, username: str, password: str, *, timeout_s: float = 10.0) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._responses: queue.Queue[bytes] = queue.Queue()
        self._connected: queue.Queue[mqtt.ReasonCode] = queue.Queue()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"evfleet-admin-{uuid.uuid4().hex[:12]}", clean_session=True
        )
        self._client.username_pw_set(username, password)
        self._client.on_connect = lambda _c, _u, _f, reason, _p: self._connected.put(reason)
        self._client.on_message = lambda _c, _u, message: self._responses.put(bytes(message.payload))

    def __enter__(self) -> DynsecAdmin:
        host, port = broker_address(self.url)
        try:
            self._client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise BrokerAdminError(f"Cannot reach the MQTT broker at {self.url}: {exc}") from exc
        self._client.loop_start()
        try:
            reason = self._connected.get(timeout=self.timeout_s)
        except queue.Empty:
            self.__exit__()
            raise BrokerAdminError(f"The MQTT broker at {self.url} did not answer the admin login.") from None
        if reason.is_failure:
            self.__exit__()
            raise BrokerAdminError(f"The MQTT broker refused the admin login: {reason}.")
        result, _mid = self._client.subscribe(_RESPONSE_TOPIC, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS:
            self.__exit__()
            raise BrokerAdminError("Could not subscribe to the dynamic-security responses.")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def run(self, commands: list[dict[str, Any]], *, tolerate: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; return the responses. An error not matching ``tolerate``
        (substrings of the plugin's error text, e.g. "already exists") raises ``BrokerAdminError``."""
        # The response subscription may not be active yet when the first command goes out: the command
        # carries a correlation id and is re-sent until its answer arrives.
        correlation = uuid.uuid4().hex
        for command in commands:
            command["correlationData"] = correlation
        payload = orjson.dumps({"commands": commands})
        deadline = timezone.now() + dt.timedelta(seconds=self.timeout_s)
        while timezone.now() < deadline:
            self._client.publish(_CONTROL_TOPIC, payload, qos=1)
            try:
                while True:
                    answer = orjson.loads(self._responses.get(timeout=1.0))
                    responses = answer.get("responses", [])
                    if responses and responses[0].get("correlationData") == correlation:
                        return self._checked(responses, tolerate)
            except queue.Empty:
                continue
        raise BrokerAdminError(f"No dynamic-security answer from {self.url} in {self.timeout_s} s.")

    @staticmethod
    def _checked(responses: list[dict[str, Any]], tolerate: tuple[str, ...]) -> list[dict[str, Any]]:
        for response in responses:
            error = response.get("error")
            if error and not any(part in error.lower() for part in tolerate):
                raise BrokerAdminError(f"{response.get('command')}: {error}")
        return responses


def admin_connection(url: str | None = None) -> DynsecAdmin:
    return DynsecAdmin(
        url or settings.EVFLEET_MQTT_BROKER_URL,
        settings.EVFLEET_MQTT_ADMIN_USERNAME,
        settings.EVFLEET_MQTT_ADMIN_PASSWORD,
    )


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def _vehicle_role_commands(vehicle_id: int) -> list[dict[str, Any]]:
    return [
        {
            "command": "createRole",
            "rolename": vehicle_role(vehicle_id),
            "textname": f"evfleet vehicle {vehicle_id}: publish its telemetry, read its results",
            "acls": [
                _acl("publishClientSend", telemetry_topic(vehicle_id)),
                _acl("subscribePattern", result_topic(vehicle_id)),
            ],
        }
    ]


def broker_setup(admin: DynsecAdmin, *, bridge_username: str, bridge_password: str) -> None:
    """Deny by default, the bridge's role and login. Safe to run again (existing objects are kept, the
    bridge's password is set to the one given)."""
    admin.run(
        [
            {
                "command": "setDefaultACLAccess",
                "acls": [
                    {"acltype": "publishClientSend", "allow": False},
                    {"acltype": "publishClientReceive", "allow": True},
                    {"acltype": "subscribe", "allow": False},
                    {"acltype": "unsubscribe", "allow": True},
                ],
            },
            {
                "command": "createRole",
                "rolename": BRIDGE_ROLE,
                "textname": "evfleet mqtt_ingest: read every vehicle's telemetry, publish the results",
            },
        ],
        tolerate=_ALREADY_EXISTS,
    )
    # ACL by ACL, so that a broker set up by an older evfleet gets the ones added since.
    for acl in (
        _acl("subscribePattern", TELEMETRY_SUBSCRIPTION),
        # Several bridges (mqtt_ingest --share-group): the plugin checks the filter with its $share prefix.
        _acl("subscribePattern", f"$share/+/{TELEMETRY_SUBSCRIPTION}"),
        _acl("publishClientSend", RESULT_PATTERN),
    ):
        admin.run([{"command": "addRoleACL", "rolename": BRIDGE_ROLE, **acl}], tolerate=_ALREADY_EXISTS)
    admin.run(
        [
            {
                "command": "createClient",
                "username": bridge_username,
                "password": bridge_password,
                "roles": [{"rolename": BRIDGE_ROLE, "priority": 0}],
            }
        ],
        tolerate=_ALREADY_EXISTS,
    )
    admin.run([{"command": "setClientPassword", "username": bridge_username, "password": bridge_password}])


def vehicle_credentials_grant(admin: DynsecAdmin, *, key: VehicleApiKey, raw_key: str) -> None:
    """Make ``key`` a broker login for its vehicle's topics (the plugin stores its own salted hash)."""
    admin.run(_vehicle_role_commands(key.vehicle_id), tolerate=_ALREADY_EXISTS)
    admin.run(
        [
            {
                "command": "createClient",
                "username": key_username(key),
                "password": raw_key,
                "textname": f"vehicle {key.vehicle_id} key {key.prefix}",
                "roles": [{"rolename": vehicle_role(key.vehicle_id), "priority": 0}],
            }
        ]
    )


def vehicle_credentials_withdraw(admin: DynsecAdmin, *, key: VehicleApiKey) -> None:
    """Delete ``key``'s broker login (the plugin also disconnects a session logged in with it)."""
    admin.run([{"command": "deleteClient", "username": key_username(key)}], tolerate=_NOT_FOUND)


@dataclass
class SyncReport:
    deleted: list[str]
    without_broker_login: list[str]


def broker_credentials_sync(admin: DynsecAdmin, *, now: dt.datetime | None = None) -> SyncReport:
    """Delete the broker logins of keys that are gone or revoked by ``now``; name active keys that have no
    broker login (issued while the broker was unreachable or before MQTT was on: rotate them)."""
    now = now or timezone.now()
    listed = admin.run([{"command": "listClients", "verbose": False, "count": -1, "offset": 0}])
    usernames = {name for name in listed[0].get("data", {}).get("clients", []) if isinstance(name, str)}
    on_broker = {name[len(KEY_USERNAME_PREFIX) :] for name in usernames if name.startswith(KEY_USERNAME_PREFIX)}
    active = set(
        VehicleApiKey.objects.filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=now)).values_list(
            "prefix", flat=True
        )
    )
    stale = sorted(on_broker - active)
    if stale:
        admin.run(
            [{"command": "deleteClient", "username": f"{KEY_USERNAME_PREFIX}{prefix}"} for prefix in stale],
            tolerate=_NOT_FOUND,
        )
    return SyncReport(
        deleted=[f"{KEY_USERNAME_PREFIX}{prefix}" for prefix in stale],
        without_broker_login=sorted(f"{KEY_USERNAME_PREFIX}{prefix}" for prefix in active - on_broker),
    )


# --- Hooks called by fleet.telemetry.keys after the key's transaction commits ------------------------------


def on_key_issued(key: VehicleApiKey, raw_key: str) -> None:
    if not broker_enabled():
        return
    try:
        with admin_connection() as admin:
            vehicle_credentials_grant(admin, key=key, raw_key=raw_key)
    except BrokerAdminError as exc:
        # The key works over HTTP; over MQTT once re-issued. The sync command lists such keys.
        logger.warning("Vehicle key %s has no MQTT login: %s", key_username(key), exc)


def on_key_revoked(key: VehicleApiKey) -> None:
    if not broker_enabled() or key.revoked_at is None or key.revoked_at > timezone.now():
        return  # a future revocation (rotation grace) is settled by broker_credentials_sync
    try:
        with admin_connection() as admin:
            vehicle_credentials_withdraw(admin, key=key)
    except BrokerAdminError as exc:
        logger.error("Revoked key %s still logs in to the MQTT broker: %s (run mqtt_broker_sync)", key, exc)
