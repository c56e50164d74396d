"""Shared helpers of the MQTT tests (no tests here): a private Mosquitto with dynamic security, MQTT clients.

Every MQTT test talks to its own Mosquitto, started here on a free port with its config, persistence and
dynamic-security file in a temp dir; the shared broker on 1883 is never touched.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
ADMIN_USERNAME = "evfleet-admin"
BRIDGE_USERNAME = "evfleet-bridge"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dynsec_plugin() -> str:
    for path in DYNSEC_PLUGIN_PATHS:
        if os.path.exists(path):
            return path
    pytest.fail("Mosquitto's dynamic-security plugin is not installed (apt-get install mosquitto; .ci/run does)")


class PrivateBroker:
    """A Mosquitto of the test's own: ``start()``, ``stop()`` (SIGTERM: saves its persistence), ``start()`` again."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("mosquitto") is None or shutil.which("mosquitto_ctrl") is None:
            pytest.fail("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
        self.directory = directory
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.admin_password = secrets.token_urlsafe(16)
        self.bridge_password = secrets.token_urlsafe(16)
        self.process: subprocess.Popen[bytes] | None = None
        self.config = directory / "mosquitto.conf"
        dynsec_file = directory / "dynamic-security.json"
        subprocess.run(
            ["mosquitto_ctrl", "dynsec", "init", str(dynsec_file), ADMIN_USERNAME, self.admin_password],
            check=True,
            capture_output=True,
        )
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            "per_listener_settings false\n"
            "user root\n"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 100000\n"
            "max_inflight_messages 20\n"
            "max_packet_size 8388608\n"
            f"plugin {dynsec_plugin()}\n"
            f"plugin_opt_config_file {dynsec_file}\n"
            f"log_dest file {directory}/mosquitto.log\n"
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start: {self.log()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)
        self.process = None

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


class VehicleClient:
    """A vehicle (or a test tool) on the broker: publish batches, collect the answers on its result topic."""

    def __init__(
        self,
        broker: PrivateBroker,
        *,
        username: str,
        password: str,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> None:
        self.results: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.connected = threading.Event()
        self.connect_reasons: list[Any] = []
        self.granted: queue.Queue[list[Any]] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{secrets.token_hex(6)}",
            clean_session=clean_session,
        )
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_args: self.connected.clear()
        self.client.on_message = lambda _c, _u, message: self.results.put(
            (message.topic, orjson.loads(message.payload))
        )
        self.client.on_subscribe = lambda _c, _u, _mid, reasons, _p: self.granted.put(list(reasons))
        self.broker = broker

    def _on_connect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connect_reasons.append(reason)
        if not reason.is_failure:
            self.connected.set()

    def __enter__(self) -> VehicleClient:
        self.client.connect("127.0.0.1", self.broker.port, keepalive=30)
        self.client.loop_start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout_s: float = 10) -> bool:
        return self.connected.wait(timeout_s)

    def subscribe(self, topic: str, timeout_s: float = 10) -> list[Any]:
        self.client.subscribe(topic, qos=1)
        return self.granted.get(timeout=timeout_s)

    def publish(self, topic: str, payload: bytes | dict[str, Any], timeout_s: float = 10) -> bool:
        """Publish with QoS 1; whether the broker acknowledged it."""
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        info = self.client.publish(topic, data, qos=1)
        info.wait_for_publish(timeout_s)
        return info.is_published()

    def next_result(self, timeout_s: float = 15) -> tuple[str, dict[str, Any]]:
        return self.results.get(timeout=timeout_s)


def connect_reason(broker: PrivateBroker, *, username: str, password: str, timeout_s: float = 10) -> Any:
    """The broker's answer to one login attempt (no retries)."""
    answers: queue.Queue[Any] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{secrets.token_hex(6)}")
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.put(reason)
    client.connect("127.0.0.1", broker.port, keepalive=10)
    client.loop_start()
    try:
        return answers.get(timeout=timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
