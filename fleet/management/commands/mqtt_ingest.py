"""``manage.py mqtt_ingest [--broker mqtt://127.0.0.1:1883]``: the MQTT bridge (docs/telemetry.md, MQTT)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from fleet.telemetry.broker_auth import broker_address
from fleet.telemetry.mqtt import DEFAULT_CLIENT_ID, TelemetryBridge


class Command(BaseCommand):
    help = (
        "Store telemetry that vehicles publish to evfleet/v1/vehicles/<id>/telemetry (QoS 1, persistent "
        "session, acknowledged after the commit) and answer on .../telemetry/result."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--broker", default=None, help="mqtt://host[:port] (default EVFLEET_MQTT_BROKER_URL)")
        parser.add_argument(
            "--client-id",
            default=DEFAULT_CLIENT_ID,
            help="The persistent session's id: keep it across restarts, or queued messages are lost to it.",
        )
        parser.add_argument(
            "--share-group",
            default="",
            help="Several bridges share the load through $share/<group>/... (each with its own --client-id).",
        )

    def handle(self, *args: Any, broker: str | None, client_id: str, share_group: str, **options: Any) -> None:
        url = broker or settings.EVFLEET_MQTT_BROKER_URL
        try:
            broker_address(url)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        bridge = TelemetryBridge(
            url=url,
            client_id=client_id,
            username=settings.EVFLEET_MQTT_USERNAME,
            password=settings.EVFLEET_MQTT_PASSWORD,
            share_group=share_group,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: bridge.stop())
        self.stdout.write(f"mqtt_ingest: {url}, subscription {bridge.subscription}, session {client_id}")
        self.stdout.flush()
        threading.Thread(target=self._report_subscribed, args=(bridge,), daemon=True).start()
        bridge.run()
        stats = bridge.stats
        self.stdout.write(
            f"mqtt_ingest stopped: {stats.messages} messages ({stats.refused} refused), readings {stats.counts}."
        )

    def _report_subscribed(self, bridge: TelemetryBridge) -> None:
        # From here on the broker queues messages for this session, even while the bridge is away.
        if bridge.subscribed.wait(timeout=3600):
            self.stdout.write("mqtt_ingest: subscribed")
            self.stdout.flush()
