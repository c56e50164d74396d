"""``manage.py mqtt_broker_sync [--setup]``: bring the broker's logins in line with evfleet's vehicle keys."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from fleet.telemetry.broker_auth import BrokerAdminError, admin_connection, broker_credentials_sync, broker_setup


class Command(BaseCommand):
    help = (
        "Through Mosquitto's dynamic-security plugin: with --setup, deny by default and create the bridge's "
        "role and login; always, delete the logins of revoked keys and list active keys without one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--broker", default=None, help="mqtt://host[:port] (default EVFLEET_MQTT_BROKER_URL)")
        parser.add_argument("--setup", action="store_true", help="Also create the bridge's role and login.")

    def handle(self, *args: Any, broker: str | None, setup: bool, **options: Any) -> None:
        if not settings.EVFLEET_MQTT_ADMIN_USERNAME:
            raise CommandError("Set EVFLEET_MQTT_ADMIN_USERNAME and _PASSWORD (the dynamic-security admin login).")
        try:
            with admin_connection(broker) as admin:
                if setup:
                    if not settings.EVFLEET_MQTT_USERNAME or not settings.EVFLEET_MQTT_PASSWORD:
                        raise CommandError("Set EVFLEET_MQTT_USERNAME and EVFLEET_MQTT_PASSWORD for the bridge.")
                    broker_setup(
                        admin,
                        bridge_username=settings.EVFLEET_MQTT_USERNAME,
                        bridge_password=settings.EVFLEET_MQTT_PASSWORD,
                    )
                    self.stdout.write(f"Bridge login {settings.EVFLEET_MQTT_USERNAME!r} and its role are in place.")
                report = broker_credentials_sync(admin)
        except BrokerAdminError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Deleted {len(report.deleted)} broker logins of revoked keys: {', '.join(report.deleted)}")
        if report.without_broker_login:
            self.stdout.write(
                f"{len(report.without_broker_login)} active keys have no broker login (rotate them to use MQTT): "
                + ", ".join(report.without_broker_login)
            )
