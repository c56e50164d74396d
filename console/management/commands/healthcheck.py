"""``manage.py healthcheck``: is this deployment able to run its nights, and did last night's jobs run?

Exit status 0 when every check passes (warnings allowed), 1 otherwise; ``--json`` for monitoring systems.
Checks: the database, the broker (Redis) and the workers listening on it, the Celery settings that make
redelivery safe, for every enabled beat schedule of a nightly job the run of its latest due night, and the
task outbox (tasks not yet sent).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

OK, WARN, FAIL = "ok", "warn", "fail"
# A scheduled job has this long to be picked up and recorded before a missing run counts as a failure.
PICKUP_GRACE = dt.timedelta(minutes=15)


@dataclass
class Check:
    name: str
    status: str
    detail: str


def check_cache() -> list[Check]:
    """Redis as the cache: a warning when this process had to fall back to its own memory (rate limits and
    sign-in throttling then count per process). One cache operation first, so the state is current."""
    from django.core.cache import cache

    from config.cache import cache_status

    cache.get("evfleet:healthcheck")
    checks = []
    for entry in cache_status():
        if entry["degraded"]:
            detail = f"{entry['location']} unreachable since {entry['down_since']}: {entry['last_error']}"
            checks.append(Check("cache", WARN, detail + "; serving from this process's memory"))
        else:
            checks.append(Check("cache", OK, f"{entry['location']} ({entry['outages']} outage(s) survived)"))
    return checks or [Check("cache", OK, "local memory (embedded mode)")]


def check_database() -> list[Check]:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return [Check("database", OK, f"{connection.vendor}, {1000 * (time.perf_counter() - started):.0f} ms")]


def check_broker(*, workers_timeout_s: float) -> list[Check]:
    from config.celery import app

    if app.conf.task_always_eager:
        return [Check("broker", OK, "none configured: tasks run in-process (embedded mode)")]
    started = time.perf_counter()
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        queue = app.conf.task_default_queue
        waiting = conn.default_channel.client.llen(queue)
    checks = [
        Check(
            "broker",
            OK,
            f"{conn.as_uri()}, {1000 * (time.perf_counter() - started):.0f} ms, {waiting} task(s) waiting in {queue!r}",
        )
    ]
    replies = app.control.ping(timeout=workers_timeout_s)
    workers = sorted(name for reply in replies for name in reply)
    checks.append(
        Check("workers", OK, f"{len(workers)} responding: {', '.join(workers)}")
        if workers
        else Check("workers", FAIL, f"no worker answered within {workers_timeout_s:.0f} s: nothing will run")
    )
    return checks


def check_celery_settings() -> list[Check]:
    from config.celery import app

    conf = app.conf
    visibility_s = (conf.broker_transport_options or {}).get("visibility_timeout", 3600)
    problems = []
    if not (conf.task_acks_late and conf.task_reject_on_worker_lost):
        problems.append("tasks are not acknowledged late (a lost worker loses its task)")
    if conf.worker_prefetch_multiplier != 1:
        problems.append(f"prefetch multiplier is {conf.worker_prefetch_multiplier}, not 1")
    if conf.task_time_limit and visibility_s <= conf.task_time_limit:
        problems.append(
            f"visibility timeout {visibility_s} s is not longer than the hard time limit {conf.task_time_limit} s: "
            "Redis would hand running tasks to a second worker"
        )
    if problems:
        return [Check("celery settings", FAIL, "; ".join(problems))]
    return [
        Check(
            "celery settings",
            OK,
            f"acks late, prefetch 1, limits {conf.task_soft_time_limit}/{conf.task_time_limit} s, "
            f"visibility timeout {visibility_s} s",
        )
    ]


def _due_night(at: dt.time, zone, now: dt.datetime) -> dt.date:
    """The local date of the latest scheduled run that should have started by ``now``."""
    local_now = (now - PICKUP_GRACE).astimezone(zone)
    today_at = dt.datetime.combine(local_now.date(), at, tzinfo=zone)
    return local_now.date() if today_at <= local_now else local_now.date() - dt.timedelta(days=1)


def check_nightly_jobs(now: dt.datetime) -> list[Check]:
    from django_celery_beat.models import PeriodicTask

    from config.celery import app
    from fleet.selectors import all_depots
    from jobs import nightly
    from jobs.selectors import latest_attempt

    schedules = {t.name: t for t in PeriodicTask.objects.filter(name__startswith=nightly.NIGHTLY_SCHEDULE_PREFIX)}
    if not schedules:
        status = WARN if app.conf.task_always_eager else FAIL
        return [Check("nightly jobs", status, "no schedules: run manage.py seed_schedules (and one celery beat)")]
    checks = []
    for depot in all_depots():
        for job in nightly.registered_jobs():
            entry = schedules.get(nightly.schedule_name(job, depot))
            name = f"{job.name} @ {depot.code}"
            if entry is None:
                checks.append(Check(name, FAIL, "no schedule: run manage.py seed_schedules"))
                continue
            if not entry.enabled:
                checks.append(Check(name, WARN, "schedule disabled in the admin"))
                continue
            night = _due_night(nightly.scheduled_time(job, depot), depot.zone, now)
            run = latest_attempt(job.key(depot.pk, night))
            if run is None:
                never_sent = entry.last_run_at is None
                checks.append(
                    Check(
                        name,
                        WARN if never_sent else FAIL,
                        f"night {night}: no run" + (" (beat has not sent this schedule yet)" if never_sent else ""),
                    )
                )
            elif run.status == run.Status.SUCCEEDED:
                checks.append(Check(name, OK, f"night {night}: {run.summary}"))
            elif run.status in (run.Status.RUNNING, run.Status.PENDING):
                checks.append(Check(name, OK, f"night {night}: {run.status} since {run.started_at or run.created_at}"))
            else:
                first_line = (run.error.strip().splitlines() or [""])[-1][:200]
                checks.append(Check(name, FAIL, f"night {night}: attempt {run.attempt} {run.status}: {first_line}"))
    return checks


def check_stuck_runs(now: dt.datetime) -> list[Check]:
    from config.celery import app
    from jobs.selectors import runs_queued_since_before, runs_running_since_before

    limit_s = app.conf.task_time_limit or 3600
    stuck = runs_running_since_before(now - dt.timedelta(seconds=limit_s))
    keys = list(stuck.values_list("key", flat=True)[:5])
    checks = [
        Check(
            "stuck runs",
            FAIL,
            f"{stuck.count()} run(s) 'running' for longer than the hard time limit ({limit_s} s), their worker "
            f"is probably gone: {', '.join(keys)}",
        )
        if keys
        else Check("stuck runs", OK, "none")
    ]
    # A queued run normally starts within seconds; after the visibility timeout its message is probably lost.
    visibility_s = (app.conf.broker_transport_options or {}).get("visibility_timeout", 3600)
    waiting = runs_queued_since_before(now - dt.timedelta(seconds=visibility_s))
    if waiting.exists():
        checks.append(
            Check(
                "queued runs",
                WARN,
                f"{waiting.count()} run(s) queued over {visibility_s} s ago and never started (lost message? no "
                "worker on the queue?): 'Run now' sends them again",
            )
        )
    return checks


# Pending outbox rows are sent within seconds of Redis answering (beat drains every 30 s): older ones mean the
# broker is still away, or no beat and no worker runs.
OUTBOX_STALE_S = 300


def check_outbox() -> list[Check]:
    from jobs.outbox import outbox_status

    status = outbox_status()
    if status["pending"] and status["oldest_pending_age_s"] > OUTBOX_STALE_S:
        return [
            Check(
                "task outbox",
                FAIL,
                f"{status['pending']} task(s) not sent, the oldest {status['oldest_pending_age_s']:.0f} s ago: is "
                "Redis reachable, are beat and a worker running? (manage.py outbox_send sends them now)",
            )
        ]
    return [Check("task outbox", OK, f"{status['pending']} pending")]


class Command(BaseCommand):
    help = "Check the database, the broker and its workers, and last night's jobs; exit 1 if anything is wrong."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument(
            "--workers-timeout", type=float, default=2.0, help="Seconds to wait for workers to answer (default 2)."
        )

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        checks: list[Check] = []
        steps = [
            ("database", check_database),
            ("cache", check_cache),
            ("broker", lambda: check_broker(workers_timeout_s=options["workers_timeout"])),
            ("celery settings", check_celery_settings),
            ("nightly jobs", lambda: check_nightly_jobs(now)),
            ("stuck runs", lambda: check_stuck_runs(now)),
            ("task outbox", check_outbox),
        ]
        for name, step in steps:
            try:
                checks.extend(step())
            except Exception as exc:  # a check that cannot run is a failed check, never a crash
                checks.append(Check(name, FAIL, f"{type(exc).__name__}: {exc}"))
        healthy = all(check.status != FAIL for check in checks)
        if options["json"]:
            report = {
                "status": OK if healthy else FAIL,
                "checked_at": now.isoformat(),
                "redis": bool(settings.REDIS_URL),
                "checks": [asdict(c) for c in checks],
            }
            self.stdout.write(json.dumps(report, indent=2))
        else:
            styles = {OK: self.style.SUCCESS, WARN: self.style.WARNING, FAIL: self.style.ERROR}
            for check in checks:
                self.stdout.write(f"{styles[check.status](check.status.upper()):<6} {check.name}: {check.detail}")
        if not healthy:
            failed = [c.name for c in checks if c.status == FAIL]
            raise CommandError(f"unhealthy: {', '.join(failed)}")
