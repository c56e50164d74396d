"""Job records in-process (SQLite or PostgreSQL, tasks eager): once per key, failures and lost workers recorded,
deliberate re-runs, chunked fan-out with a failed chunk retried alone, the admin's "run now", ``run_night``.
The same paths through Redis and real workers: tests/test_jobs_celery.py."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.urls import reverse

from charging.models import ChargingPlan
from charging.nightly import CHARGING_PLANS, PLAN_JOB
from charging.planning import plan_depot_night
from config.celery import app
from fleet.nightly import TELEMETRY
from jobs import nightly
from jobs import registry as nightly_registry
from jobs import runs as jobs
from jobs.models import JobRun
from jobs.tasks import job_chunk_task, nightly_job_task
from tests import factories as f

pytestmark = pytest.mark.django_db

NIGHT = dt.date(2026, 11, 23)


@pytest.fixture(autouse=True)
def _in_process(eager_tasks):
    """Tasks in-process even when REDIS_URL is set (CI): these tests are about the job runner."""


@pytest.fixture
def depot():
    depot = f.DepotFactory(grid_limit_kw=400.0)
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    f.VehicleFactory.create_batch(2, organization=depot.organization, home_depot=depot)
    return depot


def plan_job() -> nightly.NightlyJob:
    return nightly.job_named(PLAN_JOB)


def history(key: str) -> list[tuple[int, str]]:
    return list(JobRun.objects.filter(key=key).order_by("attempt").values_list("attempt", "status"))


def test_a_nightly_job_runs_once_per_depot_and_night(depot):
    first = nightly.run_job(job=plan_job(), depot=depot, night=NIGHT)
    again = nightly.run_job(job=plan_job(), depot=depot, night=NIGHT)

    key = f"{PLAN_JOB}:depot={depot.pk}:night=2026-11-23"
    assert history(key) == [(1, "succeeded")]
    assert not first.already_done and again.already_done
    assert again.outcome.summary.startswith("already done: plan v1: 2/2 vehicles ready")
    assert ChargingPlan.objects.filter(depot=depot, service_night=NIGHT).count() == 1
    assert first.run.counts["vehicles"] == 2 and first.run.worker


def test_a_forced_run_replans_and_leaves_one_active_plan(depot):
    nightly.run_job(job=plan_job(), depot=depot, night=NIGHT)

    nightly.run_job(job=plan_job(), depot=depot, night=NIGHT, force=True)

    assert history(plan_job().key(depot.pk, NIGHT)) == [(1, "succeeded"), (2, "succeeded")]
    plans = ChargingPlan.objects.filter(depot=depot, service_night=NIGHT).order_by("version")
    assert [(p.version, p.status) for p in plans] == [(1, "superseded"), (2, "active")]


def test_an_attempt_whose_worker_died_is_marked_interrupted_when_the_job_runs_again(depot):
    key = plan_job().key(depot.pk, NIGHT)
    JobRun.objects.create(job=PLAN_JOB, key=key, status="running", attempt=1, worker="gone@host", depot=depot)

    nightly.run_job(job=plan_job(), depot=depot, night=NIGHT)

    assert history(key) == [(1, "interrupted"), (2, "succeeded")]
    assert "worker stopped" in JobRun.objects.get(key=key, attempt=1).error


def test_a_job_that_keeps_killing_its_worker_is_given_up_until_run_again_by_hand(depot):
    key = plan_job().key(depot.pk, NIGHT)
    for attempt in (1, 2, 3):
        JobRun.objects.create(job=PLAN_JOB, key=key, status="interrupted", attempt=attempt, depot=depot)

    with pytest.raises(jobs.JobGaveUp, match="3 attempts lost their worker"):
        nightly.run_job(job=plan_job(), depot=depot, night=NIGHT)
    nightly.run_job(job=plan_job(), depot=depot, night=NIGHT, force=True)  # "Run now", after a fix

    assert history(key)[3:] == [(4, "failed"), (5, "succeeded")]


def test_a_failing_job_is_recorded_and_leaves_none_of_its_output(depot):
    def plan_then_crash(*, depot, night):
        plan_depot_night(depot=depot, service_night=night)
        raise RuntimeError("tariff missing for punta")

    crashing = nightly.NightlyJob(name="test.plan", stage=CHARGING_PLANS, run=plan_then_crash)

    with pytest.raises(RuntimeError):
        nightly.run_job(job=crashing, depot=depot, night=NIGHT)

    run = JobRun.objects.get(job="test.plan")
    assert run.status == "failed" and "RuntimeError: tariff missing for punta" in run.error
    assert run.finished_at is not None and run.duration_seconds is not None
    # The plan the job made before failing went with its transaction.
    assert not ChargingPlan.objects.filter(depot=depot).exists()


def test_the_nightly_task_takes_ids_and_dates_and_skips_what_is_done(depot):
    kwargs = {"job": PLAN_JOB, "depot_id": depot.pk, "night": NIGHT.isoformat()}

    first = nightly_job_task.apply(kwargs=kwargs).get()
    second = nightly_job_task.apply(kwargs=kwargs).get()

    assert first.startswith("plan v1") and second.startswith("already done")
    assert nightly_job_task.apply(kwargs={**kwargs, "depot_id": 987654}).get() is None  # depot gone: quiet
    assert nightly_job_task.apply(kwargs={**kwargs, "job": "no.such.job"}).get() is None


def test_job_tasks_are_idempotent_late_acknowledged_and_retry_transient_errors():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit < conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]
    app.loader.import_default_modules()
    for name in (
        "jobs.tasks.nightly_job_task",
        "jobs.tasks.nightly_depot_task",
        "jobs.tasks.job_chunk_task",
        "charging.tasks.plan_depot_night_task",
        "charging.tasks.replan_depot_task",
    ):
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost, name
        assert OperationalError in task.autoretry_for and task.retry_backoff and task.retry_jitter, name


@pytest.fixture
def chunk_calls():
    """A trivial chunked job: it records the ids it was given; ids 5 and 6 fail once with a lost database."""
    calls: list[list[int]] = []
    failed_once: set[int] = set()

    def square(*, ids, night):
        calls.append(list(ids))
        if 5 in ids and 5 not in failed_once:
            failed_once.add(5)
            raise OperationalError("server closed the connection unexpectedly")
        return {"summary": f"{len(ids)} ids", "ids": len(ids), "sum_of_squares": sum(i * i for i in ids)}

    jobs.CHUNK_FUNCTIONS["test.square"] = square
    yield calls
    jobs.CHUNK_FUNCTIONS.pop("test.square", None)


def test_fan_out_runs_one_task_per_chunk_and_retries_a_failed_chunk_alone(
    chunk_calls, django_capture_on_commit_callbacks, monkeypatch
):
    # In-process, Celery re-runs a retried task at once, but only when eager tasks do not propagate errors.
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
    parent = jobs.job_key("test.square", night=NIGHT)

    with django_capture_on_commit_callbacks(execute=True):
        queued = jobs.fan_out(job="test.square", ids=range(1, 11), chunk_size=4, parent_key=parent, night=NIGHT)

    assert [run.key for run in queued] == [f"{parent}:chunk={n}/3" for n in (1, 2, 3)]
    # Chunk 2 (5..8) failed once and was retried by itself; the others ran once.
    assert chunk_calls == [[1, 2, 3, 4], [5, 6, 7, 8], [5, 6, 7, 8], [9, 10]]
    assert history(f"{parent}:chunk=1/3") == [(1, "succeeded")]
    assert history(f"{parent}:chunk=2/3") == [(1, "failed"), (2, "succeeded")]
    assert history(f"{parent}:chunk=3/3") == [(1, "succeeded")]
    assert "OperationalError" in JobRun.objects.get(key=f"{parent}:chunk=2/3", attempt=1).error
    assert JobRun.objects.get(key=f"{parent}:chunk=2/3", attempt=2).counts == {"ids": 4, "sum_of_squares": 174}

    # The message of chunk 1 delivered again (its worker was lost after the work): nothing is redone.
    redelivered = job_chunk_task.apply(kwargs={**queued[0].arguments, "job_run_id": queued[0].pk}).get()
    assert redelivered.startswith("already done") and len(chunk_calls) == 4


def test_run_now_in_the_admin_queues_the_job_again(admin_client, depot, django_capture_on_commit_callbacks):
    nightly.run_job(job=plan_job(), depot=depot, night=NIGHT)
    run = JobRun.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:jobs_jobrun_changelist"), {"action": "run_now", "_selected_action": [run.pk]}, follow=True
        )

    assert "1 job queued to run again." in response.content.decode()
    assert history(run.key) == [(1, "succeeded"), (2, "succeeded")]
    assert ChargingPlan.objects.get(depot=depot, service_night=NIGHT, status="active").version == 2


def test_depot_members_see_their_depots_runs_and_only_managers_may_run_them_again(
    client, two_depots, django_capture_on_commit_callbacks
):
    world = two_depots
    for depot in (world["depot_a"], world["depot_b"]):
        JobRun.objects.create(
            job=PLAN_JOB,
            key=f"{PLAN_JOB}:depot={depot.pk}:night=2026-11-23",
            depot=depot,
            status="failed",
            task_name="jobs.tasks.nightly_job_task",
            arguments={"job": PLAN_JOB, "depot_id": depot.pk, "night": "2026-11-23"},
        )
    url = reverse("admin:jobs_jobrun_changelist")
    for user in (world["staff_a"], world["manager_a"]):
        user.is_staff = True
        user.save()

    client.force_login(world["staff_a"])
    staff_view = client.get(url)
    assert list(staff_view.context["cl"].queryset.values_list("depot__code", flat=True)) == ["hmo"]
    assert 'value="run_now"' not in staff_view.content.decode()

    client.force_login(world["manager_a"])
    assert 'value="run_now"' in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=False) as sent:
        client.post(url, {"action": "run_now", "_selected_action": list(JobRun.objects.values_list("pk", flat=True))})
    assert list(JobRun.objects.filter(status="pending").values_list("depot__code", "attempt")) == [("hmo", 2)]
    assert len(sent) == 1


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(nightly_registry, "NIGHTLY_JOBS", [])
    monkeypatch.setattr(nightly_registry, "discover", lambda: None)


def test_run_night_again_reports_already_done_and_force_redoes(registry, depot):
    done = []
    nightly.nightly_job(stage=TELEMETRY, name="test.aggregate")(
        lambda *, depot, night: done.append(night) or {"vehicle_days": 2}
    )

    def run_night(*args) -> str:
        out = StringIO()
        call_command("run_night", "--depot", depot.code, "--date", NIGHT.isoformat(), *args, stdout=out)
        return out.getvalue()

    first, second, forced = run_night(), run_night(), run_night("--force")

    assert "vehicle_days 2" in first
    assert "already done: vehicle_days 2" in second
    assert done == [NIGHT, NIGHT]  # the first run and the forced one
    assert "already done" not in forced
    assert history(f"test.aggregate:depot={depot.pk}:night=2026-11-23") == [(1, "succeeded"), (2, "succeeded")]
