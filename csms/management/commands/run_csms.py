"""python manage.py run_csms [--host 127.0.0.1] [--port 9000]: the OCPP central system (docs/ocpp.md)."""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand

from csms.server import CentralSystem


class Command(BaseCommand):
    help = "Serve OCPP 1.6J and 2.0.1 chargers on ws://HOST:PORT/ocpp/<charge point id>."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9000)

    def handle(self, *args, host: str, port: int, **options) -> None:
        if options["verbosity"] < 2:
            logging.getLogger("ocpp").setLevel(logging.WARNING)  # it logs every message at INFO
        asyncio.run(self._run(host, port))

    async def _run(self, host: str, port: int) -> None:
        central = CentralSystem(host, port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, central.stop)

        def ready(bound: int) -> None:
            self.stdout.write(
                f"OCPP central system listening on ws://{host}:{bound}/ocpp/<charge point id>", ending="\n"
            )
            self.stdout.flush()

        await central.run(ready=ready)
