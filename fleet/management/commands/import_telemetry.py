"""``manage.py import_telemetry FILE.csv [--vehicle ID|FLEET_NUMBER]``: a historic import through the ingest service.

The CSV has a header with reading fields (``recorded_at``, ``soc_pct``, ... as in the API) and, without
``--vehicle``, a ``vehicle`` (id) or ``fleet_number`` column. Empty cells are "not reported". Importing the
same file twice is harmless: the second run reports everything as duplicates.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from fleet.models import Vehicle
from fleet.telemetry.ingest import max_batch_readings, telemetry_ingest
from fleet.telemetry.validation import ALL_FIELDS, FLOAT_FIELD_NAMES

_SHOWN_REJECTIONS = 20


def _cell(name: str, text: str):
    if text == "":
        return None
    if name in FLOAT_FIELD_NAMES or name == "vehicle":
        try:
            return int(text) if name == "vehicle" else float(text)
        except ValueError:
            return text  # left as text: the validation rejects it with a reason
    return text


class Command(BaseCommand):
    help = "Import telemetry readings from a CSV file (idempotent; reports created/duplicate/conflict/rejected)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--vehicle", help="All rows are this vehicle's (id or fleet number).")
        parser.add_argument("--batch-size", type=int, default=max_batch_readings())
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, file: Path, vehicle: str | None, batch_size: int, no_progress: bool, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        batch_size = max(1, min(batch_size, max_batch_readings()))
        scope = {"vehicle": self._vehicle(vehicle)} if vehicle else {"allowed_vehicles": Vehicle.objects.all()}
        counts: Counter[str] = Counter()
        shown = 0
        with file.open(newline="", encoding="utf-8-sig") as stream:
            total_rows = max(sum(1 for _ in stream) - 1, 0)
            stream.seek(0)
            reader = csv.DictReader(stream)
            unknown = sorted(set(reader.fieldnames or []) - ALL_FIELDS)
            if unknown:
                raise CommandError(f"Unknown column(s): {', '.join(unknown)}. Known: {', '.join(sorted(ALL_FIELDS))}.")
            progress = tqdm(total=total_rows, unit="reading", disable=no_progress, file=self.stderr._out)
            batch, first_line = [], 2
            for line, row in enumerate(reader, start=2):
                batch.append({name: value for name, text in row.items() if (value := _cell(name, text)) is not None})
                if len(batch) == batch_size:
                    shown = self._ingest(batch, first_line, scope, counts, shown)
                    progress.update(len(batch))
                    batch, first_line = [], line + 1
            if batch:
                shown = self._ingest(batch, first_line, scope, counts, shown)
                progress.update(len(batch))
            progress.close()
        summary = ", ".join(f"{counts[s]} {s}" for s in ("created", "duplicate", "conflict", "rejected"))
        self.stdout.write(self.style.SUCCESS(f"{file.name}: {summary}."))

    def _vehicle(self, ref: str) -> Vehicle:
        matches = list(Vehicle.objects.filter(pk=int(ref))) if ref.isdigit() else []
        matches = matches or list(Vehicle.objects.filter(fleet_number=ref))
        if len(matches) != 1:
            raise CommandError(f"--vehicle {ref!r} names {'no' if not matches else 'more than one'} vehicle.")
        return matches[0]

    def _ingest(self, batch: list[dict], first_line: int, scope: dict, counts: Counter, shown: int) -> int:
        try:
            result = telemetry_ingest(readings=batch, **scope)
        except PermissionDenied as exc:
            raise CommandError(f"Lines {first_line}-{first_line + len(batch) - 1}: {exc}") from exc
        except ValidationError as exc:
            raise CommandError(f"Lines {first_line}-{first_line + len(batch) - 1}: {exc.messages}") from exc
        counts.update(result.statuses)
        for index, status in enumerate(result.statuses):
            if status in ("rejected", "conflict") and shown < _SHOWN_REJECTIONS:
                reason = result.errors.get(index, "stored with different values")
                self.stderr.write(f"line {first_line + index}: {status}: {reason}")
                shown += 1
        return shown
