"""Overnight jobs on a real Redis and real Celery worker processes.

Each test starts ``celery -A config worker --pool=prefork --concurrency=1`` as a subprocess connected to the
pytest database (committed data: ``transaction=True``) and to the ``redis_url`` Redis, on a queue of its own.
They need PostgreSQL and Redis: they skip without them, and fail in CI (EVFLEET_REQUIRE_SERVICES=1).

"The middle of a job" is made deterministic with the test-only hook ``EVFLEET_JOB_TEST_PAUSE_SECONDS``
(fleet/jobs.py): the worker holds its finished, uncommitted work that long and logs a mark, and the test
kills it while it waits. A big planning instance would only make the moment likely, and the test slow.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from charging.events import depot_event_record
from charging.models import ChargingPlan, DepotEvent
from charging.nightly import PLAN_JOB
from charging.planning import plan_depot_night
from charging.tasks import REPLAN_JOB, replan_depot_task
from config.celery import app
from jobs import runs as jobs
from jobs.models import JobRun
from jobs.tasks import nightly_job_task
from tests import factories as f

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
NIGHT = dt.date(2026, 11, 23)
WORKER_START_TIMEOUT_S = 90
VISIBILITY_TIMEOUT_S = 5


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, *, count: int = 1, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while self.log().count(text) < count:
            if self.process.poll() is not None:
                pytest.fail(f"worker {self.name} exited ({self.process.returncode}) before {text!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {self.name}: no {text!r} (x{count}) within {timeout_s} s:\n{self.log()[-4000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as if its machine died."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _test_database_url() -> str:
    db = connection.settings_dict  # during tests NAME is the test database (test_evfleet_...)
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def queue(redis_url):
    """A queue of this test's own, for the test process and its workers; deleted afterwards."""
    import redis

    name = f"evfleet-test-{uuid.uuid4().hex[:10]}"
    default_queue = app.conf.task_default_queue
    app.conf.task_default_queue = name
    yield name
    app.conf.task_default_queue = default_queue
    client = redis.Redis.from_url(redis_url)
    client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")


@pytest.fixture
def start_worker(postgres, redis_url, queue, tmp_path) -> Callable[..., Worker]:
    started: list[Worker] = []

    def start(name: str, *, app_module: str = "config", **env_extra: str) -> Worker:
        env = {
            **{key: value for key, value in os.environ.items() if key != jobs.TEST_PAUSE_ENV},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": redis_url,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "PYBAMM_DISABLE_TELEMETRY": "true",
            "PYTHONUNBUFFERED": "1",
            **env_extra,
        }
        log_path = tmp_path / f"worker-{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", app_module, "worker", "--pool=prefork", "--concurrency=1",
            "-Q", queue, "-n", f"{name}@{queue}", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel=INFO",
        ]  # fmt: skip
        with log_path.open("w") as log:
            process = subprocess.Popen(
                command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(name, process, log_path)
        started.append(worker)
        worker.wait_for_log(" ready.", timeout_s=WORKER_START_TIMEOUT_S)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str, workers: list[Worker]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name}:\n{w.log()[-3000:]}" for w in workers)
            pytest.fail(f"{what}: not within {timeout_s} s\n{logs}")
        time.sleep(0.25)


@pytest.fixture
def depot():
    """A depot with two DC connectors and three buses to plan for."""
    depot = f.DepotFactory(grid_limit_kw=400.0, code="hmo", name="Hermosillo")
    for _ in range(2):
        f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    for _ in range(3):
        f.VehicleFactory(organization=depot.organization, home_depot=depot)
    return depot


def plan_key(depot) -> str:
    return jobs.job_key(PLAN_JOB, depot_id=depot.pk, night=NIGHT)


def runs_of(key: str) -> list[tuple[int, str]]:
    return list(JobRun.objects.filter(key=key).order_by("attempt").values_list("attempt", "status"))


def active_plans(depot, night=NIGHT):
    return ChargingPlan.objects.filter(depot=depot, service_night=night, status=ChargingPlan.Status.ACTIVE)


def test_a_nightly_job_makes_the_round_trip_through_redis_and_a_worker(start_worker, depot):
    worker = start_worker("a")

    nightly_job_task.apply_async(kwargs={"job": PLAN_JOB, "depot_id": depot.pk, "night": NIGHT.isoformat()})

    wait_until(
        lambda: runs_of(plan_key(depot)) == [(1, "succeeded")], timeout_s=60, what="plan job succeeds", workers=[worker]
    )
    run = JobRun.objects.get(key=plan_key(depot))
    plan = active_plans(depot).get()
    assert run.worker.startswith("a@") and run.celery_task_id
    assert run.counts["plan_id"] == plan.pk and run.counts["vehicles"] == 3
    assert run.summary.startswith("plan v1: 3/3 vehicles ready")
    assert run.duration_seconds is not None and run.duration_seconds >= 0


def test_a_worker_killed_in_the_middle_of_planning_hands_the_job_over(start_worker, depot):
    # An earlier re-plan left an active plan: the nightly plan must supersede it, exactly once.
    plan_depot_night(depot=depot, service_night=NIGHT, trigger=ChargingPlan.Trigger.MANUAL)
    # Redis hands an unacknowledged task to another worker after the visibility timeout: 5 s here, not 2 h.
    visibility = {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S)}
    doomed = start_worker("doomed", **{jobs.TEST_PAUSE_ENV: "120"}, **visibility)

    nightly_job_task.apply_async(kwargs={"job": PLAN_JOB, "depot_id": depot.pk, "night": NIGHT.isoformat()})
    doomed.wait_for_log(jobs.TEST_PAUSE_LOG_MARK)  # planned, superseded, not committed yet
    assert runs_of(plan_key(depot)) == [(1, "running")]
    doomed.kill()

    # A worker restores timed-out tasks when it starts (then every ~100 s): start it once the task timed out.
    time.sleep(VISIBILITY_TIMEOUT_S + 1)
    rescuer = start_worker("rescuer", **visibility)
    wait_until(
        lambda: runs_of(plan_key(depot)) == [(1, "interrupted"), (2, "succeeded")],
        timeout_s=90,
        what="the redelivered plan job succeeds",
        workers=[doomed, rescuer],
    )
    attempts = {run.attempt: run for run in JobRun.objects.filter(key=plan_key(depot))}
    assert attempts[1].worker.startswith("doomed@") and "worker stopped" in attempts[1].error
    assert attempts[2].worker.startswith("rescuer@")
    # The killed attempt's plan was never committed: v1 (manual) superseded by v2 (nightly), one active.
    plans = ChargingPlan.objects.filter(depot=depot, service_night=NIGHT).order_by("version")
    assert [(p.version, p.trigger, p.status) for p in plans] == [
        (1, "manual", "superseded"),
        (2, "nightly", "active"),
    ]


def test_the_same_nightly_job_sent_twice_plans_once(start_worker, depot):
    worker = start_worker("a")
    kwargs = {"job": PLAN_JOB, "depot_id": depot.pk, "night": NIGHT.isoformat()}

    nightly_job_task.apply_async(kwargs=kwargs)
    nightly_job_task.apply_async(kwargs=kwargs)

    worker.wait_for_log("succeeded in", count=2)
    assert runs_of(plan_key(depot)) == [(1, "succeeded")]
    assert ChargingPlan.objects.filter(depot=depot, service_night=NIGHT).count() == 1
    assert "already done" in worker.log()


def test_replans_of_one_depot_run_one_at_a_time_and_bursts_coalesce(start_worker, depot):
    # Two workers, each holding every job 1 s before committing: unserialised re-plans would overlap.
    workers = [start_worker(name, **{jobs.TEST_PAUSE_ENV: "1"}) for name in ("a", "b")]
    vehicles = list(depot.vehicles.all())

    # A burst of 20 arrivals reported within a few seconds.
    for i in range(20):
        depot_event_record(
            depot=depot,
            kind=DepotEvent.Kind.VEHICLE_ARRIVED,
            client_event_id=f"arrival-{i}",
            vehicle=vehicles[i % len(vehicles)],
            soc_pct=40.0 + i,
        )
    night = DepotEvent.objects.filter(depot=depot).first().service_night
    replans = JobRun.objects.filter(job=REPLAN_JOB, depot=depot)
    wait_until(
        lambda: replans.filter(status="succeeded").exists(), timeout_s=60, what="the burst's re-plan", workers=workers
    )
    time.sleep(2 * 5)  # give a second re-plan (an event after the first one started) time to show up
    assert 1 <= replans.count() <= 2
    assert ChargingPlan.objects.filter(depot=depot, trigger="event").count() == replans.count()

    # Four re-plan requests at once, straight to the queue (no coalescing): one at a time, on both workers.
    for i in range(4):
        replan_depot_task.apply_async(args=(depot.pk, night.isoformat(), f"request {i}"))
    wait_until(
        lambda: replans.filter(status="succeeded").count() >= 4 + 1,
        timeout_s=60,
        what="four more re-plans",
        workers=workers,
    )
    runs = sorted(replans.filter(status="succeeded"), key=lambda run: run.started_at)
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished_at <= later.started_at, f"{earlier.key} and {later.key} overlapped"
    assert active_plans(depot, night).count() == 1
