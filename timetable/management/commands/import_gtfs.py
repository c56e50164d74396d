"""manage.py import_gtfs FEED.zip --depot CODE [--from DATE --to DATE] [--vehicle-model ID] [--dry-run]"""

from __future__ import annotations

import datetime as dt
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from fleet.models import Depot, VehicleModel
from timetable import services
from timetable.gtfs import FeedError


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = "Import a GTFS feed's trips as a depot's dated blocks (one transaction; a bad feed changes nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("feed", help="path to the GTFS .zip")
        parser.add_argument("--depot", required=True, help="depot code")
        parser.add_argument("--from", dest="date_from", type=_date, help="first service date (default: today)")
        parser.add_argument("--to", dest="date_to", type=_date, help="last service date (default: a week)")
        parser.add_argument("--vehicle-model", type=int, help="VehicleModel id whose kWh/km prices the blocks")
        parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **opts) -> None:
        depots = list(Depot.objects.filter(code=opts["depot"]))
        if len(depots) != 1:
            raise CommandError(f"depot code {opts['depot']!r} matches {len(depots)} depots")
        model = None
        if opts["vehicle_model"] is not None:
            model = VehicleModel.objects.filter(pk=opts["vehicle_model"]).first()
            if model is None:
                raise CommandError(f"no vehicle model {opts['vehicle_model']}")
        try:
            report = services.gtfs_import(
                depot=depots[0],
                path=opts["feed"],
                date_from=opts["date_from"],
                date_to=opts["date_to"],
                vehicle_model=model,
                dry_run=opts["dry_run"],
            )
        except FeedError as exc:
            raise CommandError(
                "the feed cannot be imported (nothing was changed):\n  " + "\n  ".join(exc.problems)
            ) from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if opts["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        verb = "would be" if report.dry_run else "were"
        self.stdout.write(
            f"{report.service_from}..{report.service_to}: blocks created {len(report.created)}, updated "
            f"{len(report.updated)}, unchanged {len(report.unchanged)}, withdrawn {len(report.withdrawn)} "
            f"({verb} written)"
        )
        for day in report.days:
            line = f"  {day['date']}: {day['trips']} trips, {day['feed_blocks']} blocks from block_id"
            if "chained_blocks" in day:
                line += (
                    f", {day['chained_trips']} trips chained into {day['chained_blocks']} blocks "
                    f"(lower bound {day['lower_bound']}, {'optimal' if day['optimal'] else 'not proven optimal'}, "
                    f"{day['method']})"
                )
            self.stdout.write(line)
        for warning in report.warnings:
            self.stdout.write(self.style.WARNING(f"  ! {warning}"))
