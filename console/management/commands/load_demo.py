"""``manage.py load_demo``: create (or bring up to date) the Sonora demo deployment and say how to log in."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from django.utils import timezone

from console.demo import SERVICE_DAYS, ZONE, DemoReport, StepResult, build_demo


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"wants a date as YYYY-MM-DD, got {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Load the demo deployment (Transporte Urbano de Sonora: 4 depots, 82 vehicles, a GDMTH tariff, a week "
        "of assigned blocks, demo users). Safe to run again: it changes nothing that is already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date",
            type=_date,
            help=f"First service day of the {SERVICE_DAYS} days of block assignments (default: today in Sonora).",
        )
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Where the server will answer, for the printed URLs."
        )

    def handle(self, *args, **options) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError(
                "load_demo creates users with published passwords: it does not run with DJANGO_ENV=production."
            )
        today = options["date"] or timezone.localdate(timezone=ZONE)
        started = time.perf_counter()
        self.stdout.write(self.style.MIGRATE_HEADING("Loading the evfleet demo deployment"))
        report = build_demo(today=today, progress=self._progress)
        changed = any(step.created or step.updated for step in report.steps)
        verdict = "done" if changed else "nothing to change: the demo was already loaded"
        self.stdout.write(f"  {verdict} ({time.perf_counter() - started:.1f} s)\n")
        self._summary(report)
        self._logins(report, options["base_url"].rstrip("/"))

    def _progress(self, step: StepResult) -> None:
        if step.created == step.total:
            outcome = self.style.SUCCESS(f"{step.created} created")
        elif step.created or step.updated:
            outcome = self.style.WARNING(f"{step.created} created, {step.updated} updated, {step.unchanged} unchanged")
        else:
            outcome = "unchanged"
        self.stdout.write(f"  {step.title:<55} {step.total:>5} rows  {outcome}  ({step.seconds:.1f} s)")

    def _summary(self, report: DemoReport) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(report.organization))
        header = ("depot", "vehicles", "chargers", "plugs", "chargers kW", "grid kW", "blocks", "assignments")
        rows: list[tuple[str | int, ...]] = [
            (
                d.name,
                d.vehicles,
                d.chargers,
                d.connectors,
                f"{d.installed_kw:,.0f}",
                f"{d.grid_limit_kw:,.0f}",
                d.blocks,
                d.assignments,
            )
            for d in report.depots
        ]
        rows.append(("no home depot (mini EVs)", report.vehicles_without_depot, "", "", "", "", "", ""))
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        line = "  " + "  ".join(f"{{:<{widths[0]}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        self.stdout.write(line.format(*header))
        self.stdout.write("  " + "  ".join("-" * w for w in widths))
        for row in rows:
            self.stdout.write(line.format(*row))
        self.stdout.write(f"  Blocks are assigned from {report.first_day:%a %d %b} to {report.last_day:%a %d %b %Y}.")
        self.stdout.write(
            "  Each depot's chargers can draw more than its grid limit: tonight's plan has to share it.\n"
        )

    def _logins(self, report: DemoReport, base_url: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("Log in (demo passwords: never use these accounts in production)"))
        width = max(len(u.username) for u in report.users)
        for user in report.users:
            self.stdout.write(f"  {user.username:<{width}}  {user.password:<16}  {user.description}")
        token_url = base_url + reverse("v1:api-token")
        self.stdout.write("")
        self.stdout.write(f"  Admin          {base_url}{reverse('admin:index')}")
        self.stdout.write(f"  API docs       {base_url}{reverse('api-docs')}")
        self.stdout.write(f"  API token      {token_url}")
        self.stdout.write(
            f"  e.g.  curl -s -X POST {token_url} -H 'Content-Type: application/json' "
            '-d \'{"username": "hmo.staff", "password": "evfleet-staff"}\''
        )
