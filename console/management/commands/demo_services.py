"""``manage.py demo_services``: the demo's live depot. It starts the OCPP central system (``run_csms``) and the demo
depots' chargers as simulated OCPP clients (``simulate_chargers``), optionally the web app (``runserver``) beside
them, and stops them all on Ctrl-C (or after ``--seconds``). ``make demo`` runs it.

Each runs as its own process, as in production; this command only starts, watches and stops them.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.demo.data import DEPOTS

MANAGE_PY = Path(settings.BASE_DIR) / "manage.py"


class Command(BaseCommand):
    help = (
        "Run the demo's OCPP central system and its simulated chargers (and, with --runserver, the web app); "
        "Ctrl-C stops them all. The simulated chargers get new passwords: never for real chargers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ocpp-host", default="127.0.0.1")
        parser.add_argument("--ocpp-port", type=int, default=9000)
        parser.add_argument(
            "--depot",
            action="append",
            help="Depot code whose chargers are simulated (repeat; default: every depot of the demo).",
        )
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between meter values.")
        parser.add_argument(
            "--speed", type=float, default=1.0, help="Simulated seconds per second for the chargers (e.g. 60)."
        )
        parser.add_argument("--runserver", metavar="HOST:PORT", help="Also serve the web app there.")
        parser.add_argument("--seconds", type=float, default=None, help="Stop after this long (default: Ctrl-C).")

    def handle(self, *args, **options) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError("demo_services resets chargers' passwords: it does not run with DJANGO_ENV=production.")
        depots = options["depot"] or [spec.code for spec in DEPOTS]
        host, port = options["ocpp_host"], options["ocpp_port"]
        children: dict[str, subprocess.Popen] = {}  # by command, in starting order
        deadline = time.monotonic() + options["seconds"] if options["seconds"] is not None else None
        try:
            self._start(children, ["run_csms", "--host", host, "--port", str(port)], wait_for="listening")
            simulate = [
                "simulate_chargers",
                "--url",
                f"ws://{host}:{port}/ocpp",
                "--interval",
                str(options["interval"]),
                "--speed",
                str(options["speed"]),
                "--plug-in",  # the planned vehicles plug in and charge: sessions and meter values in plan vs actual
            ]
            for code in depots:
                simulate += ["--depot", code]
            self._start(children, simulate)
            if options["runserver"]:
                self._start(children, ["runserver", "--noreload", options["runserver"]])
            while all(child.poll() is None for child in children.values()):
                if deadline is not None and time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            failed = [(name, c) for name, c in children.items() if c.poll() not in (None, 0)]
            if failed:
                raise CommandError(f"{failed[0][0]} stopped (exit {failed[0][1].returncode}).")
        except KeyboardInterrupt:  # Ctrl-C reaches the children too; they stop on their own, the rest below
            pass
        finally:
            self._stop(children)

    def _start(self, children: dict[str, subprocess.Popen], command: list[str], wait_for: str = "") -> subprocess.Popen:
        child = subprocess.Popen(
            [sys.executable, str(MANAGE_PY), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        children[command[0]] = child
        ready = threading.Event()
        prefix = f"[{command[0]}] "

        def relay() -> None:  # the child's output, prefixed, so three processes can share one terminal
            assert child.stdout is not None
            for line in child.stdout:
                self.stdout.write(prefix + line.rstrip("\n"))
                self.stdout.flush()
                if wait_for and wait_for in line:
                    ready.set()

        threading.Thread(target=relay, daemon=True).start()
        if wait_for:
            started = time.monotonic()
            while not ready.wait(0.2):
                if child.poll() is not None or time.monotonic() - started > 60:
                    raise CommandError(f"{command[0]} did not start (exit {child.poll()}).")
        return child

    def _stop(self, children: dict[str, subprocess.Popen]) -> None:
        # The simulated chargers first (they stop their transactions), then the web app, then the central system.
        started = list(children.values())
        for child in started[1:] + started[:1]:
            if child.poll() is None:
                child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
