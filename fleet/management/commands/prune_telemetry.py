"""``manage.py prune_telemetry --older-than-days N``: downsample old raw readings to 1-minute aggregates."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from fleet.telemetry.partitions import telemetry_partitions_ensure
from fleet.telemetry.retention import telemetry_prune, vehicles_to_prune


class Command(BaseCommand):
    help = (
        "Replace raw telemetry older than N days by 1-minute aggregates, computing any missing daily duty "
        "cycle first (see docs/telemetry.md, Retention)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, required=True)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, older_than_days: int, no_progress: bool, **options):
        if older_than_days < 1:
            raise CommandError("--older-than-days must be at least 1.")
        telemetry_partitions_ensure()
        total = vehicles_to_prune(older_than_days=older_than_days)
        with tqdm(total=total, unit="vehicle", disable=no_progress, file=self.stderr._out) as progress:
            summary = telemetry_prune(older_than_days=older_than_days, on_vehicle=lambda _vehicle: progress.update(1))
        self.stdout.write(
            self.style.SUCCESS(
                f"{summary['vehicles']} vehicles: {summary['readings_deleted']} readings became "
                f"{summary['minutes_written']} minutes; {summary['duty_cycles_computed']} duty cycles computed first; "
                f"{summary['partitions_dropped']} day partitions ({summary['readings_folded']} readings) folded and "
                "dropped."
            )
        )
