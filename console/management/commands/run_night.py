"""``manage.py run_night``: run the registered overnight jobs in-process (or on the workers), per depot.

Each job is recorded as a ``JobRun`` and done once per depot and night: running the command again skips
what is already done ("already done") unless ``--force``. ``--dispatch`` sends one task per depot to the
Celery workers instead (``jobs.tasks.nightly_depot_task``), after the command's transaction commits; with
``--force`` it first records one pending run per job and depot, so the forced work is done once however often
the task is delivered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from fleet.selectors import all_depots, depot_codes, depots_with_code
from jobs import nightly

if TYPE_CHECKING:
    from fleet.models import Depot


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"wants a date as YYYY-MM-DD, got {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Run tonight's jobs (telemetry aggregation, battery forecasts, charging plans: whatever the apps have "
        "registered in their nightly.py) in this process, without Celery."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all-depots", action="store_true", help="Every depot of every organisation.")
        which.add_argument(
            "--depot", metavar="CODE", help="One depot by its code (e.g. hmo), or ORGANISATION-SLUG/CODE if ambiguous."
        )
        parser.add_argument(
            "--date",
            type=_date,
            help="The night that starts on the evening of this local date (default: today in each depot's zone).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Run jobs again even if they already succeeded for that night."
        )
        parser.add_argument(
            "--dispatch",
            action="store_true",
            help="Send one task per depot to the Celery workers (needs REDIS_URL) instead of running here.",
        )

    def handle(self, *args, **options) -> None:
        depots = self._depots(options["depot"]) if options["depot"] else list(all_depots())
        jobs = nightly.registered_jobs()
        if not jobs:
            self.stdout.write(self.style.WARNING("no nightly jobs registered (each arrives with its app's nightly.py)"))
        if not depots:
            self.stdout.write("No depots: nothing to run (try `manage.py load_demo`).")
            return
        if options["dispatch"]:
            self._dispatch(depots, options["date"], force=options["force"])
            return
        started = time.perf_counter()
        failures = 0
        for depot in depots:
            night = options["date"] or timezone.localdate(timezone=depot.zone)
            self.stdout.write(self.style.MIGRATE_HEADING(f"{depot.name} ({depot.code}), night of {night:%a %d %b %Y}"))
            if not jobs:
                self.stdout.write("  no jobs to run")
                continue
            for result in nightly.run_night(depot=depot, night=night, jobs=jobs, force=options["force"]):
                status = self.style.SUCCESS("ok    ") if result.ok else self.style.ERROR("FAILED")
                if result.already_done:
                    status = self.style.SUCCESS("done  ")
                self.stdout.write(f"  {status} {result.job.name:<40} {result.summary}  ({result.seconds:.1f} s)")
                failures += not result.ok
        if options["all_depots"]:
            failures += self._run_daily_tasks(dated=options["date"] is not None)
        self.stdout.write(
            f"{len(jobs)} job(s) x {len(depots)} depot(s) in {time.perf_counter() - started:.1f} s, {failures} failed."
        )
        if failures:
            raise CommandError(f"{failures} nightly job run(s) failed; see above and the log.")

    def _run_daily_tasks(self, *, dated: bool) -> int:
        """The vehicles with no home depot (municipal mini EVs): beat's daily tasks, which no depot's night runs.
        They work on today (beat's day), so a --date night leaves them out. Returns the number that failed."""
        self.stdout.write(self.style.MIGRATE_HEADING("Vehicles with no home depot (organisation-wide daily tasks)"))
        if dated:
            self.stdout.write("  skipped: they run for today only, as beat sends them (drop --date to run them)")
            return 0
        results = nightly.run_daily_tasks()
        for result in results:
            status = self.style.SUCCESS("ok    ") if result.ok else self.style.ERROR("FAILED")
            self.stdout.write(f"  {status} {result.name:<40} {result.summary}  ({result.seconds:.1f} s)")
        return sum(not result.ok for result in results)

    def _dispatch(self, depots: list[Depot], night: dt.date | None, *, force: bool) -> None:
        from jobs.outbox import outbox_task_send
        from jobs.tasks import nightly_depot_task

        if not settings.REDIS_URL:
            raise CommandError("--dispatch needs a broker (REDIS_URL); without one, run the jobs here (no --dispatch).")
        with transaction.atomic():
            for depot in depots:
                kwargs: dict[str, object] = {"depot_id": depot.pk, "night": night.isoformat() if night else None}
                if force:
                    kwargs["forced_job_run_ids"] = nightly.forced_runs(
                        depot_id=depot.pk, night=night or timezone.localdate(timezone=depot.zone)
                    )
                # Through the task outbox: with Redis away, the depot's night is sent when it is back.
                outbox_task_send(
                    task=nightly_depot_task, kwargs=kwargs, dedupe_key=f"run_night:depot={depot.pk}:{uuid.uuid4().hex}"
                )
                self.stdout.write(f"sent: {depot.name} ({depot.code}), night of {night or 'today (depot time)'}")
        self.stdout.write(f"{len(depots)} depot task(s) sent; follow them in the admin under Job runs.")

    def _depots(self, wanted: str) -> list[Depot]:
        organization_slug, _, code = wanted.rpartition("/")
        found = depots_with_code(code, organization_slug=organization_slug)
        if not found:
            known = ", ".join(depot_codes()) or "none"
            raise CommandError(f"No depot with code {wanted!r}. Known codes: {known}.")
        if len(found) > 1:
            choices = ", ".join(f"{d.organization.slug}/{d.code}" for d in found)
            raise CommandError(f"Depot code {code!r} is used by several organisations; say which: {choices}.")
        return found
