"""python manage.py simulate_chargers --depot CODE [--depot CODE ...]: the depots' chargers as simulated OCPP clients.

It gives each charger a fresh password (so do not point it at a depot with real chargers), connects them to the
central system, follows the profiles they receive and reports meter values until stopped (Ctrl-C, or after
``--seconds``).

With ``--plug-in``, the vehicles that the depots' active plans put on a connector plug in there (each presents its
id token: Authorize, then a transaction at its planned arrival SoC) once the connector has its profile, charge as
the profile allows and unplug at their planned departure SoC or departure time; the next planned vehicle of the
connector follows. ``--speed`` runs the simulated clock faster than the wall clock (e.g. 60: a minute a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from charging.models import PlannedCharge
from charging.selectors import active_plans, charger_queryset
from csms.models import IdToken
from csms.services import charger_password_issue
from csms.simulator import PluggedVehicle, SimulatedCharger
from fleet.selectors import depot_queryset


class Command(BaseCommand):
    help = "Connect depots' chargers as simulated OCPP 1.6J / 2.0.1 clients (new passwords are issued)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--depot", required=True, action="append", help="Depot code (repeat for several).")
        parser.add_argument("--url", default="ws://127.0.0.1:9000/ocpp")
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between meter values.")
        parser.add_argument(
            "--versions", default="1.6,2.0.1", help="OCPP versions to use in turn, e.g. '1.6' or '1.6,2.0.1'."
        )
        parser.add_argument("--seconds", type=float, default=None, help="Stop after this long (default: Ctrl-C).")
        parser.add_argument(
            "--plug-in",
            action="store_true",
            help="Plug in the vehicles the active plans assign to the connectors (they need an active id token).",
        )
        parser.add_argument("--speed", type=float, default=1.0, help="Simulated seconds per wall-clock second.")

    def handle(
        self,
        *args,
        depot: list[str],
        url: str,
        interval: float,
        versions: str,
        seconds: float | None,
        plug_in: bool,
        speed: float,
        **options,
    ) -> None:
        if options["verbosity"] < 2:
            logging.getLogger("ocpp").setLevel(logging.WARNING)  # it logs every message at INFO
        depots = list(depot_queryset().filter(code__in=depot))
        missing = sorted(set(depot) - {d.code for d in depots})
        if missing:
            raise CommandError(f"No depot has the code {', '.join(map(repr, missing))}.")
        chargers = list(charger_queryset().filter(depot__in=depots).exclude(ocpp_charge_point_id="").order_by("pk"))
        if not chargers:
            raise CommandError(f"Depot {', '.join(depot)} has no chargers with an OCPP charge point id.")
        cycle = [v.strip() for v in versions.split(",") if v.strip()]
        if speed <= 0:
            raise CommandError("--speed must be positive.")
        planned = planned_vehicles(depots) if plug_in else {}
        sims = []
        for i, charger in enumerate(chargers):
            _cp, password = charger_password_issue(charger=charger)
            sims.append(
                SimulatedCharger.make(
                    url,
                    charger.ocpp_charge_point_id,
                    password,
                    cycle[i % len(cycle)],
                    {c.connector_id: c.max_kw * 1000.0 for c in charger.connectors.all()},
                    speed=speed,
                )
            )
            for connector in charger.connectors.all():
                sims[-1].connectors[connector.connector_id].vehicles = planned.get(connector.pk, [])
        if plug_in:
            count = sum(len(v) for v in planned.values())
            self.stdout.write(f"{count} planned vehicle(s) will plug in.")
        until = f"for {seconds:g} s" if seconds is not None else "Ctrl-C stops"
        self.stdout.write(f"Simulating {len(sims)} charger(s) of {', '.join(depot)} against {url}; {until}.")
        self.stdout.flush()
        asyncio.run(self._run(sims, interval, seconds))

    async def _run(self, sims: list[SimulatedCharger], interval: float, seconds: float | None) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):  # not the main thread (a test): no handlers
                loop.add_signal_handler(sig, stop.set)
        if seconds is not None:
            loop.call_later(seconds, stop.set)
        results = await asyncio.gather(
            *(sim.run(stop=stop, interval_s=interval) for sim in sims), return_exceptions=True
        )
        for sim, result in zip(sims, results, strict=True):
            if isinstance(result, BaseException):
                self.stderr.write(f"{sim.identity}: {result!r}")
            self.stdout.write(f"{sim.identity}: {len(sim.received)} profile(s) received")


def planned_vehicles(depots) -> dict[int, list[PluggedVehicle]]:
    """Per connector (pk), the vehicles the depots' active plans charge there, in plug-in order, with the id token
    they present (their first active one; a vehicle without one is left out), planned SoCs and departure."""
    charges = (
        PlannedCharge.objects.filter(
            plan__in=active_plans().filter(depot__in=depots), connector__isnull=False, energy_kwh__gt=0
        )
        .select_related("vehicle__model")
        .order_by("plug_in_at", "arrival_at")
    )
    tokens: dict[int, str] = {}
    for token in IdToken.objects.filter(active=True, vehicle__in={c.vehicle_id for c in charges}).order_by("token"):
        tokens.setdefault(token.vehicle_id, token.token)
    now = timezone.now()
    planned: dict[int, list[PluggedVehicle]] = {}
    for charge in charges:
        if charge.vehicle_id not in tokens or charge.departure_at <= now:
            continue
        assert charge.connector_id is not None  # filtered above
        planned.setdefault(charge.connector_id, []).append(
            PluggedVehicle(
                token=tokens[charge.vehicle_id],
                soc_pct=charge.arrival_soc_pct,
                battery_wh=charge.vehicle.model.nominal_pack_kwh * 1000.0,
                target_soc_pct=charge.departure_soc_pct,
                departs_at=charge.departure_at,
            )
        )
    return planned
