"""``manage.py seed_schedules``: write Celery beat's schedules of the overnight jobs, per depot, idempotently."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from fleet.selectors import all_depots
from jobs import nightly


class Command(BaseCommand):
    help = (
        "Create or update the periodic tasks (django-celery-beat) of every depot's nightly jobs at the depot's "
        "local times (telemetry 00:30, battery forecasts 01:30, charging plans at the depot's planning time) and "
        "the weekly telemetry retention; remove those of depots or jobs that are gone. Safe to run again: "
        "run it after adding a depot or changing a planning time."
    )

    def handle(self, *args, **options) -> None:
        report = nightly.schedules_seed(all_depots(), remove_stale=True)
        for label, names in (("created", report.created), ("updated", report.updated), ("removed", report.removed)):
            for name in names:
                self.stdout.write(f"{label:<8} {name}")
        self.stdout.write(
            self.style.SUCCESS(
                f"schedules: {len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged, {len(report.removed)} removed."
            )
        )
        if report.created or report.updated or report.removed:
            self.stdout.write("Run exactly one `celery -A config beat`: it picks the changes up by itself.")
