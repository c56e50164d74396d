"""Background work through faults, on the fault stack (tests/faults/conftest.py) with real Celery processes:

- Redis stopped while depot staff report events: every event is accepted (201) and its re-plan waits in the task
  outbox (jobs/outbox.py); when Redis is back, beat's drain sends it and a worker runs every re-plan exactly once.
- A Celery worker SIGKILLed in the middle of a night job: a new worker takes the job over after the visibility
  timeout (5 s here) and the job is done exactly once.

Counted and printed like the other fault tests (``pytest tests/faults -s``).
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable

import pytest

from jobs.outbox import task_id_for
from tests.deploy.production import manage
from tests.faults.conftest import Stack

pytestmark = pytest.mark.faults

REPLAN_JOB = "charging.replan"
PLAN_JOB = "charging.plan_depot_night"
NIGHT = "2026-11-23"
VISIBILITY_TIMEOUT_S = 5


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s\n{logs()[-4000:]}")
        time.sleep(0.5)


def post_event(stack: Stack, client_event_id: str, number: int) -> int:
    """A vehicle arrival at the outbox test's own depot (no other test's events fold into its re-plans)."""
    world = stack.world["outbox"]
    vehicles = world["vehicles"]
    event = {
        "depot": world["depot"],
        "kind": "vehicle_arrived",
        "client_event_id": client_event_id,
        "vehicle": vehicles[number % len(vehicles)]["id"],
        "soc_pct": 30 + number,
    }
    status, _headers, body = stack.server.json(
        "POST", "/api/v1/depot-events/", event, token=f"Token {world['staff_token']}", timeout=15
    )
    assert status in (200, 201), (status, body)
    return status


def test_depot_events_while_redis_is_away_are_accepted_and_every_replan_runs_once_when_it_is_back(stack):
    depot = stack.world["outbox"]["depot"]  # only this test's events are at this depot
    worker = stack.start_worker("outbox")
    beat = stack.start_beat()

    def logs() -> str:
        return f"--- worker:\n{worker.log()[-2500:]}\n--- beat:\n{beat.log()[-1500:]}"

    def outbox_rows() -> list[tuple[str, bool, int]]:
        return stack.sql(
            "SELECT dedupe_key, sent_at IS NOT NULL, attempts FROM jobs_outboxtask WHERE dedupe_key LIKE %s",
            (f"{REPLAN_JOB}:depot={depot}:%",),
        )

    def replan_runs() -> list[tuple[str, str]]:
        return stack.sql(
            "SELECT celery_task_id, status FROM jobs_jobrun WHERE job = %s AND depot_id = %s", (REPLAN_JOB, depot)
        )

    # Redis up: an event's re-plan is sent at its commit and run.
    assert post_event(stack, "outbox-before", 0) == 201
    wait_until(lambda: len(replan_runs()) == 1, timeout_s=60, what="the first re-plan", logs=logs)

    stack.redis.stop()
    try:
        during = [post_event(stack, f"outbox-during-{i}", i) for i in range(6)]
        time.sleep(0.5)
        retried = [post_event(stack, f"outbox-during-{i}", i) for i in range(2)]  # a client's re-send
        pending_during = [key for key, sent, _attempts in outbox_rows() if not sent]
    finally:
        stack.redis.start()
    redis_back = time.monotonic()

    # Beat's next drain (every 30 s) sends what the outbox holds; the worker runs it.
    wait_until(lambda: all(sent for _k, sent, _a in outbox_rows()), timeout_s=90, what="outbox sent", logs=logs)
    sent_after_s = time.monotonic() - redis_back
    rows = outbox_rows()
    expected = {task_id_for(key) for key, _sent, _attempts in rows}
    wait_until(
        lambda: collections.Counter(status for _id, status in replan_runs())["succeeded"] >= len(expected),
        timeout_s=120,
        what="every re-plan",
        logs=logs,
    )
    time.sleep(VISIBILITY_TIMEOUT_S)  # a duplicate would show up now
    runs = replan_runs()
    succeeded = collections.Counter(task_id for task_id, status in runs if status == "succeeded")
    ran_twice = sum(count - 1 for count in succeeded.values())
    never_ran = len(expected - set(succeeded))
    unexpected = len(set(succeeded) - expected)
    events_stored = stack.sql("SELECT count(*) FROM charging_depotevent WHERE client_event_id LIKE 'outbox-%%'")[0][0]
    print(
        f"\nfaults: Redis away: {len(during)} depot events answered {dict(collections.Counter(during))}, re-sends "
        f"{dict(collections.Counter(retried))}; {events_stored} stored; {len(pending_during)} re-plan(s) waited in "
        f"the outbox, all sent {sent_after_s:.0f} s after Redis was back; re-plans asked {len(expected)}, run "
        f"{sum(succeeded.values())}: never {never_ran}, twice {ran_twice}, unexpected {unexpected}"
    )
    assert during == [201] * 6 and retried == [200, 200]
    assert events_stored == 7
    assert pending_during, "no re-plan waited in the outbox: the outage was not exercised"
    assert (never_ran, ran_twice, unexpected) == (0, 0, 0)
    assert all(status == "succeeded" for _id, status in runs), runs
    beat.stop()
    worker.stop()


def test_a_celery_worker_killed_in_the_middle_of_a_night_job_is_replaced_and_the_job_done_once(stack):
    # A queue of this test's own: nothing beat sent earlier sits in front of the job.
    queue = f"faults-kill-{os.getpid()}"
    visibility = {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S), "CELERY_TASK_DEFAULT_QUEUE": queue}
    key = f"{PLAN_JOB}:depot={stack.world['depot']}:night={NIGHT}"

    def attempts() -> list[tuple[int, str, str]]:
        return stack.sql("SELECT attempt, status, worker FROM jobs_jobrun WHERE key = %s ORDER BY attempt", (key,))

    # The test hook holds each job's finished, uncommitted work 120 s: the kill lands in the middle of the job.
    doomed = stack.start_worker("doomed", EVFLEET_JOB_TEST_PAUSE_SECONDS="120", **visibility)
    manage(
        {**stack.env, **visibility},
        "shell",
        "-c",
        "from jobs.tasks import nightly_job_task; nightly_job_task.apply_async(kwargs="
        f"{{'job': {PLAN_JOB!r}, 'depot_id': {stack.world['depot']}, 'night': {NIGHT!r}}})",
    )
    doomed.wait_for_log("EVFLEET_JOB_TEST_PAUSE", timeout_s=120)
    assert [(a, s) for a, s, _w in attempts()] == [(1, "running")]
    doomed.kill()
    killed_at = time.monotonic()

    # A worker restores timed-out messages when it starts: start it once the visibility timeout has passed.
    time.sleep(VISIBILITY_TIMEOUT_S + 1)
    rescuer = stack.start_worker("rescuer", **visibility)
    wait_until(
        lambda: [s for _a, s, _w in attempts()] == ["interrupted", "succeeded"],
        timeout_s=120,
        what="the redelivered night job",
        logs=lambda: f"--- doomed:\n{doomed.log()[-2000:]}\n--- rescuer:\n{rescuer.log()[-3000:]}",
    )
    done_after_s = time.monotonic() - killed_at
    time.sleep(VISIBILITY_TIMEOUT_S + 1)  # a second redelivery would run now
    runs = attempts()
    plans = stack.sql(
        "SELECT status, count(*) FROM charging_chargingplan WHERE depot_id = %s AND service_night = %s GROUP BY status",
        (stack.world["depot"], NIGHT),
    )
    succeeded = sum(1 for _a, status, _w in runs if status == "succeeded")
    print(
        f"\nfaults: Celery worker SIGKILLed mid-job: attempts {[(a, s) for a, s, _w in runs]}; succeeded {succeeded} "
        f"(by {runs[-1][2]}), {done_after_s:.0f} s after the kill; plans of the night {dict(plans)}"
    )
    assert [(a, s) for a, s, _w in runs] == [(1, "interrupted"), (2, "succeeded")]
    assert runs[0][2].startswith("doomed@") and runs[1][2].startswith("rescuer@")
    assert dict(plans) == {"active": 1}  # the killed attempt's plan was never committed
    rescuer.stop()
