"""Beat schedules from the depots (``manage.py seed_schedules``) and ``manage.py healthcheck``."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from batteries.nightly import BATTERY_FORECASTS
from charging.nightly import CHARGING_PLANS
from config.celery import app
from console.management.commands import healthcheck
from fleet.nightly import TELEMETRY
from jobs import nightly
from jobs import registry as nightly_registry
from jobs.models import JobRun
from tests import factories as f

pytestmark = pytest.mark.django_db

HERMOSILLO = zoneinfo.ZoneInfo("America/Hermosillo")
TIJUANA = zoneinfo.ZoneInfo("America/Tijuana")


@pytest.fixture
def registry(monkeypatch):
    """One job per stage, the way the apps register theirs (the real ones would run PyBaMM and the LP)."""
    monkeypatch.setattr(nightly_registry, "NIGHTLY_JOBS", [])
    monkeypatch.setattr(nightly_registry, "discover", lambda: None)
    for stage, name in (
        (TELEMETRY, "test.duty_cycles"),
        (BATTERY_FORECASTS, "test.forecasts"),
        (CHARGING_PLANS, "test.plan"),
    ):
        nightly.nightly_job(stage=stage, name=name)(lambda *, depot, night: "done")


@pytest.fixture
def depots():
    org = f.OrganizationFactory()
    return (
        f.DepotFactory(organization=org, code="hmo", time_zone="America/Hermosillo", planning_time=dt.time(18, 0)),
        f.DepotFactory(organization=org, code="tij", time_zone="America/Tijuana", planning_time=dt.time(19, 15)),
    )


def seed() -> str:
    out = StringIO()
    call_command("seed_schedules", stdout=out)
    return out.getvalue()


def schedule(job: str, depot) -> PeriodicTask:
    return PeriodicTask.objects.select_related("crontab").get(name=f"evfleet.nightly:{job}:depot={depot.pk}")


def when(task: PeriodicTask) -> tuple[str, str, str, zoneinfo.ZoneInfo]:
    c = task.crontab
    return c.hour, c.minute, c.day_of_week, c.timezone


def test_seeding_twice_creates_each_schedule_once_in_each_depots_time_zone(registry, depots):
    hmo, tij = depots

    first, second = seed(), seed()

    # 3 jobs x 2 depots, plus telemetry retention and the four daily jobs of the cars with no depot (duty
    # cycles, charging sessions, capacity estimates, battery forecasts)
    assert "11 created, 0 updated, 0 unchanged, 0 removed" in first
    assert "0 created, 0 updated, 11 unchanged, 0 removed" in second
    assert PeriodicTask.objects.count() == 11
    assert when(schedule("test.duty_cycles", hmo)) == ("0", "30", "*", HERMOSILLO)
    assert when(schedule("test.forecasts", hmo)) == ("1", "30", "*", HERMOSILLO)
    assert when(schedule("test.plan", hmo)) == ("18", "0", "*", HERMOSILLO)
    assert when(schedule("test.plan", tij)) == ("19", "15", "*", TIJUANA)
    plan = schedule("test.plan", tij)
    assert plan.task == "jobs.tasks.nightly_job_task"
    assert json.loads(plan.kwargs) == {"job": "test.plan", "depot_id": tij.pk}  # ids only; the night is computed
    assert plan.expire_seconds == 3 * 3600 and plan.enabled  # a stale entry is dropped, not run hours late
    retention = PeriodicTask.objects.get(name="evfleet.telemetry_prune")
    assert (retention.task, json.loads(retention.kwargs)) == ("fleet.tasks.telemetry_prune", {"older_than_days": 90})
    assert when(retention) == ("3", "0", "0", HERMOSILLO)  # Sundays 03:00
    depotless = PeriodicTask.objects.get(name="evfleet.depotless.charging_sessions")
    assert depotless.task == "charging.tasks.sessions_detect_depotless_task"
    assert when(depotless) == ("1", "0", "*", HERMOSILLO)


def test_a_new_planning_time_is_taken_on_reseeding_and_the_admins_switch_is_kept(registry, depots):
    hmo, tij = depots
    seed()
    disabled = schedule("test.plan", hmo)
    disabled.enabled = False
    disabled.save()
    hmo.planning_time = dt.time(20, 45)
    hmo.save()

    output = seed()

    assert "1 created" not in output and f"updated  evfleet.nightly:test.plan:depot={hmo.pk}" in output
    assert "0 created, 1 updated, 10 unchanged" in output
    updated = schedule("test.plan", hmo)
    assert when(updated) == ("20", "45", "*", HERMOSILLO)
    assert updated.enabled is False
    assert PeriodicTask.objects.filter(name__contains="test.plan").count() == 2


def test_schedules_of_a_removed_depot_are_removed(registry, depots):
    hmo, tij = depots
    seed()
    tij_id = tij.pk
    tij.delete()

    output = seed()

    assert "0 created, 0 updated, 8 unchanged, 3 removed" in output
    assert not PeriodicTask.objects.filter(name__endswith=f"depot={tij_id}").exists()
    assert CrontabSchedule.objects.filter(timezone=HERMOSILLO).exists()


# --- healthcheck ----------------------------------------------------------------------------------------


@pytest.fixture
def in_process_broker(eager_tasks):
    """Embedded mode for the broker check, even where CI sets REDIS_URL (no workers run here)."""


def health(*args) -> tuple[dict, bool]:
    out = StringIO()
    try:
        call_command("healthcheck", "--json", *args, stdout=out)
        healthy = True
    except CommandError:
        healthy = False
    return json.loads(out.getvalue()), healthy


def record_last_night(depot, status: str = "succeeded", *, only: str | None = None) -> None:
    now = timezone.now()
    for job in nightly.registered_jobs():
        night = healthcheck._due_night(nightly.scheduled_time(job, depot), depot.zone, now)
        JobRun.objects.create(
            job=job.name,
            key=job.key(depot.pk, night),
            depot=depot,
            night=night,
            status=status if only in (None, job.name) else "succeeded",
            summary="fine",
            error="Traceback...\nRuntimeError: solver out of memory" if status == "failed" else "",
        )


def test_healthcheck_passes_when_last_nights_jobs_succeeded(registry, in_process_broker):
    depot = f.DepotFactory(code="hmo")
    seed()
    record_last_night(depot)

    report, healthy = health()

    assert healthy and report["status"] == "ok"
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses["database"] == statuses["broker"] == statuses["celery settings"] == "ok"
    assert statuses["test.plan @ hmo"] == "ok"


def test_healthcheck_fails_and_says_which_job_failed(registry, in_process_broker):
    depot = f.DepotFactory(code="hmo")
    seed()
    record_last_night(depot, "failed", only="test.forecasts")

    report, healthy = health()

    assert not healthy and report["status"] == "fail"
    failed = [check for check in report["checks"] if check["status"] == "fail"]
    assert [check["name"] for check in failed] == ["test.forecasts @ hmo"]
    assert "attempt 1 failed: RuntimeError: solver out of memory" in failed[0]["detail"]


def test_healthcheck_fails_when_the_broker_is_unreachable(registry, monkeypatch):
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:9/0")  # nothing listens on the discard port

    report, healthy = health()

    broker = next(check for check in report["checks"] if check["name"] == "broker")
    assert not healthy and broker["status"] == "fail"
