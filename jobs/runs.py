"""Job runs: record, claim and finish every overnight job, re-plan and chunk (the ``JobRun`` service).

``job_run`` is the one way a job's work is done, in a worker or in-process:

1. It takes the job's **lock** (``job_lock``): a PostgreSQL session advisory lock named after the job's lock
   scope (``charging.plan:depot=3``). A second worker asking for it waits. The lock belongs to the database
   connection, so a worker that is killed (SIGKILL, power loss) releases it when its connection drops: a
   crashed attempt never blocks the next one.
2. Holding the lock it **claims** the natural key (``charging.plan_depot_night:depot=3:night=2026-11-23``):
   a row of that key still ``running`` belongs to a worker that died (a live one would hold the lock), so it
   becomes ``interrupted``; a ``succeeded`` row means the work is done and the job stops there ("already
   done"); otherwise a new attempt is recorded as ``running`` and committed, for all to see.
3. It does the work in **one transaction**, so an attempt that fails or is killed leaves no partial output,
   and records ``succeeded`` (summary, counts, duration) or ``failed`` (the error) in another one.

``job_run_id`` names one queued row (``pending``, made by ``job_enqueue``, "run now" or ``fan_out``): that row
runs even if its key succeeded before (a deliberate re-run), but only once.

Without PostgreSQL (the embedded SQLite mode, one process) the lock is a no-op; the claim still records.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import traceback
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from jobs.models import JobRun
from jobs.outbox import outbox_task_send

logger = logging.getLogger(__name__)

Status = JobRun.Status

# TEST ONLY: with this set (seconds), every job holds its finished but uncommitted work that long before
# committing, so a test can kill a worker in the middle of a job deterministically. Never set in production.
TEST_PAUSE_ENV = "EVFLEET_JOB_TEST_PAUSE_SECONDS"
TEST_PAUSE_LOG_MARK = "EVFLEET_JOB_TEST_PAUSE"

# First key of the two-int advisory lock: keeps evfleet's locks apart from any other user of the database.
_LOCK_NAMESPACE = 0x65766A  # "evj"
INTERRUPTED_ERROR = "The worker stopped (killed, lost or restarted) before the job finished; it was run again."
# A job that kills its worker every time (out of memory, a crashing native library) would be redelivered and
# kill workers for ever: after this many interrupted attempts of one key, redeliveries give up.
MAX_INTERRUPTED_ATTEMPTS = 3
_SUMMARY_MAX = 500


@dataclass(frozen=True)
class Outcome:
    """What a job did: a line a person reads and counts a dashboard can add up."""

    summary: str = "done"
    counts: dict[str, Any] = field(default_factory=dict)


def as_outcome(value: Outcome | str | dict | None) -> Outcome:
    """A job may return an ``Outcome``, a summary line, a dict of counts (with an optional ``summary``) or None."""
    if isinstance(value, Outcome):
        return value
    if isinstance(value, dict):
        counts = {k: v for k, v in value.items() if k != "summary"}
        summary = value.get("summary") or ", ".join(f"{k} {v}" for k, v in counts.items()) or "done"
        return Outcome(str(summary), counts)
    return Outcome(str(value) if value else "done")


class JobGaveUp(Exception):
    """The job was interrupted too often; it runs again only when asked to (``job_rerun``, ``--force``)."""


@dataclass(frozen=True)
class JobDone:
    run: JobRun  # the attempt that did the work, or the earlier one that had already done it
    outcome: Outcome
    already_done: bool


def job_key(job: str, *, depot_id: int | None = None, night: dt.date | None = None, extra: str = "") -> str:
    """The natural key of a job's work: ``job:depot=3:night=2026-11-23[:extra]``."""
    parts = [job]
    if depot_id is not None:
        parts.append(f"depot={depot_id}")
    if night is not None:
        parts.append(f"night={night.isoformat()}")
    if extra:
        parts.append(extra)
    return ":".join(parts)


def this_worker() -> str:
    """The host name recorded for runs outside Celery (``manage.py run_night``)."""
    return f"{socket.gethostname()} (pid {os.getpid()})"


# --- the lock ---------------------------------------------------------------------------------------------


def _lock_id(scope: str) -> int:
    # crc32 as a signed int4; a rare collision only makes two unrelated jobs wait for each other.
    value = zlib.crc32(scope.encode())
    return value - 2**32 if value >= 2**31 else value


@contextmanager
def job_lock(scope: str) -> Iterator[None]:
    """Hold the lock named ``scope`` (waiting for it) for the ``with`` block; a no-op without PostgreSQL.

    A session-level advisory lock: it outlives the transactions inside the block and is released by the
    database when the connection drops, so a killed worker cannot keep it. The same session may take it
    again (nested eager tasks), so it never deadlocks with itself.
    """
    if connection.vendor != "postgresql":
        yield
        return
    lock_id = _lock_id(scope)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, lock_id])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, lock_id])
        except DatabaseError:  # the connection is gone, and the lock went with it
            logger.warning("could not release job lock %s: the database connection was lost", scope)


# --- claim, run, finish -----------------------------------------------------------------------------------


def _next_attempt(key: str) -> int:
    return (JobRun.objects.filter(key=key).aggregate(n=Max("attempt"))["n"] or 0) + 1


@transaction.atomic
def _claim(
    *,
    job: str,
    key: str,
    job_run_id: int | None,
    task_name: str,
    arguments: dict,
    depot_id: int | None,
    night: dt.date | None,
    worker: str,
    celery_task_id: str,
) -> tuple[JobRun, bool, bool]:
    """(the attempt to run now, False, whether it was queued on purpose), or (an earlier run, True, False) when
    the work is already done. Call with the lock held."""
    now = timezone.now()
    # We hold the key's lock, so no live worker is running it: a "running" row lost its worker.
    interrupted = JobRun.objects.filter(key=key, status=Status.RUNNING).update(
        status=Status.INTERRUPTED, finished_at=now, error=INTERRUPTED_ERROR
    )
    if interrupted:
        logger.warning("job %s: %d earlier attempt(s) lost their worker; marked interrupted", key, interrupted)

    run = None
    if job_run_id is not None:
        queued = JobRun.objects.select_for_update().filter(pk=job_run_id).first()
        if queued is not None and queued.status == Status.SUCCEEDED:
            return queued, True, False
        if queued is not None and queued.status == Status.PENDING:
            run = queued
    else:
        done = JobRun.objects.filter(key=key, status=Status.SUCCEEDED).order_by("-finished_at").first()
        if done is not None:
            return done, True, False
        run = JobRun.objects.select_for_update().filter(key=key, status=Status.PENDING).order_by("pk").first()
    queued_on_purpose = run is not None
    if run is None:
        run = JobRun(
            job=job,
            key=key,
            task_name=task_name,
            arguments=arguments,
            depot_id=depot_id,
            night=night,
            attempt=_next_attempt(key),
        )
    run.status = Status.RUNNING
    run.started_at = now
    run.worker = worker[:200]
    run.celery_task_id = celery_task_id[:64]
    run.save()
    return run, False, queued_on_purpose


def _finish(run: JobRun, status: str, *, outcome: Outcome | None = None, error: str = "") -> None:
    finished = timezone.now()
    run.status = status
    run.finished_at = finished
    run.duration_seconds = (finished - run.started_at).total_seconds() if run.started_at else None
    if outcome is not None:
        run.summary = outcome.summary[:_SUMMARY_MAX]
        run.counts = outcome.counts
    run.error = error
    run.save(update_fields=["status", "finished_at", "duration_seconds", "summary", "counts", "error"])


def _test_pause(key: str) -> None:
    seconds = float(os.environ.get(TEST_PAUSE_ENV) or 0)
    if seconds > 0:
        logger.warning("%s: %s holds its uncommitted work for %.1f s (test hook)", TEST_PAUSE_LOG_MARK, key, seconds)
        time.sleep(seconds)


def job_run(
    *,
    job: str,
    key: str,
    work: Callable[[], Outcome | str | dict | None],
    lock_scope: str | None = None,
    job_run_id: int | None = None,
    task_name: str = "",
    arguments: dict | None = None,
    depot_id: int | None = None,
    night: dt.date | None = None,
    worker: str = "",
    celery_task_id: str = "",
) -> JobDone:
    """Run ``work`` once for ``key``, recorded as a ``JobRun``; see the module's docstring.

    ``lock_scope`` (default: the key) is what must not run twice at once: all planning of a depot shares
    ``charging.plan:depot=3`` whatever the night or trigger. ``work``'s exception is recorded and re-raised.
    """
    with job_lock(lock_scope or key):
        run, already_done, queued_on_purpose = _claim(
            job=job,
            key=key,
            job_run_id=job_run_id,
            task_name=task_name,
            arguments=arguments or {},
            depot_id=depot_id,
            night=night,
            worker=worker or this_worker(),
            celery_task_id=celery_task_id or "",
        )
        if already_done:
            logger.info("job %s already done by attempt %s at %s: skipped", key, run.attempt, run.finished_at)
            return JobDone(run, Outcome(f"already done: {run.summary}", run.counts), True)
        interrupted = JobRun.objects.filter(key=key, status=Status.INTERRUPTED).count()
        if not queued_on_purpose and interrupted >= MAX_INTERRUPTED_ATTEMPTS:
            message = (
                f"{interrupted} attempts lost their worker (out of memory? killed?): not run again automatically. "
                "Fix the cause, then use 'Run now' or run_night --force."
            )
            _finish(run, Status.FAILED, error=message)
            raise JobGaveUp(message)
        try:
            with transaction.atomic():
                outcome = as_outcome(work())
                _test_pause(key)
        except BaseException as exc:
            # SystemExit/KeyboardInterrupt: the process is being stopped, not the job failing.
            status = Status.FAILED if isinstance(exc, Exception) else Status.INTERRUPTED
            try:
                _finish(run, status, error="".join(traceback.format_exception(exc)).strip())
            except DatabaseError:  # the next attempt will find it "running" and mark it interrupted
                logger.exception("could not record the failure of job %s", key)
            raise
        _finish(run, Status.SUCCEEDED, outcome=outcome)
        return JobDone(run, outcome, False)


# --- queueing, re-running and fanning out ----------------------------------------------------------------


def job_pending_row(
    *, job: str, key: str, task_name: str, arguments: dict, depot_id: int | None, night: dt.date | None
) -> JobRun:
    """A ``pending`` row for ``key``: the one already queued, or a new one."""
    for _ in range(3):  # a worker claiming the same key may take the attempt number we computed: try again
        existing = JobRun.objects.filter(key=key, status=Status.PENDING).order_by("pk").first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                return JobRun.objects.create(
                    job=job,
                    key=key,
                    task_name=task_name,
                    arguments=arguments,
                    depot_id=depot_id,
                    night=night,
                    attempt=_next_attempt(key),
                    status=Status.PENDING,
                )
        except IntegrityError:
            continue
    raise RuntimeError(f"could not queue job {key}: its attempt numbers keep changing")


@transaction.atomic
def job_enqueue(
    *,
    task,
    job: str,
    key: str,
    arguments: dict,
    depot_id: int | None = None,
    night: dt.date | None = None,
) -> JobRun:
    """Queue ``task(**arguments, job_run_id=...)`` after the current transaction commits, with a pending row.

    The row makes the queued work visible (admin, healthcheck) and makes it a deliberate run: it runs even if
    ``key`` succeeded before. Queueing a key that is already pending reuses that row (a double click runs once).
    """
    run = job_pending_row(job=job, key=key, task_name=task.name, arguments=arguments, depot_id=depot_id, night=night)
    # Through the outbox: queued with the row, sent after the commit or, Redis away, when it is back. Each
    # call sends (the row says what runs, and runs it once), as a second "Run now" did before.
    outbox_task_send(
        task=task, kwargs={**arguments, "job_run_id": run.pk}, dedupe_key=f"jobrun={run.pk}:{uuid.uuid4().hex}"
    )
    return run


def _task_named(name: str):
    """The Celery task registered as ``name``, to send with its own options (acks late, retries).

    By name, not by import: the task modules sit above this one and import it.
    """
    from config.celery import app

    app.loader.import_default_modules()  # outside a worker, task modules are imported on demand
    return app.tasks[name]


def job_rerun(*, run: JobRun) -> JobRun:
    """Run the job of ``run`` again ("run now" in the admin): same task, same arguments, a new attempt."""
    if not run.task_name:
        raise ValueError(f"{run.key} was not run by a task: it cannot be sent again")
    task = _task_named(run.task_name)
    arguments = {k: v for k, v in run.arguments.items() if k != "job_run_id"}
    return job_enqueue(task=task, job=run.job, key=run.key, arguments=arguments, depot_id=run.depot_id, night=run.night)


ChunkFunction = Callable[..., Outcome | str | dict | None]
ChunkFunctionT = TypeVar("ChunkFunctionT", bound=ChunkFunction)
# Filled by ``chunk_job``; the chunk task looks functions up here by name (a message names, never imports, code).
CHUNK_FUNCTIONS: dict[str, ChunkFunction] = {}
# The task that runs one chunk, sent by name (``jobs.tasks`` imports this module).
CHUNK_TASK_NAME = "jobs.tasks.job_chunk_task"


def chunk_job(name: str) -> Callable[[ChunkFunctionT], ChunkFunctionT]:
    """Register ``function(*, ids, night)`` as the work of one chunk of the fanned-out job ``name``."""

    def register(function: ChunkFunctionT) -> ChunkFunctionT:
        CHUNK_FUNCTIONS[name] = function
        return function

    return register


def chunks(ids: Sequence[int], size: int) -> list[list[int]]:
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    ordered = list(ids)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


@transaction.atomic
def fan_out(
    *,
    job: str,
    ids: Sequence[int] = (),
    chunk_size: int = 0,
    parent_key: str,
    night: dt.date | None = None,
    depot_id: int | None = None,
    parts: Sequence[Sequence[int]] | None = None,
) -> list[JobRun]:
    """Split ``ids`` into chunks (or take the caller's ``parts``, e.g. chunks that keep a group whole) and
    queue one task per chunk (``jobs.tasks.job_chunk_task``).

    Each chunk has its own key (``<parent_key>:chunk=2/5``) and rows: chunks run in parallel on as many
    workers as there are, and a chunk that fails is retried alone (Celery's retry of that one task, or
    "run now" on its row). The chunk function (registered with ``chunk_job(job)``) runs in one transaction
    per attempt, so it should write its output replacing its own earlier output for those ids.
    """
    if job not in CHUNK_FUNCTIONS:
        raise LookupError(f"no chunk function registered for {job!r} (use jobs.runs.chunk_job)")
    chunk_task = _task_named(CHUNK_TASK_NAME)
    parts = [list(part) for part in parts] if parts is not None else chunks(ids, chunk_size)
    queued = []
    for number, part in enumerate(parts, start=1):
        key = f"{parent_key}:chunk={number}/{len(parts)}"
        arguments = {
            "job": job,
            "ids": part,
            "key": key,
            "night": night.isoformat() if night else None,
            "depot_id": depot_id,
        }
        queued.append(
            job_enqueue(task=chunk_task, job=job, key=key, arguments=arguments, depot_id=depot_id, night=night)
        )
    return queued


def run_chunk(
    *,
    job: str,
    ids: list[int],
    key: str,
    night: dt.date | None,
    depot_id: int | None,
    job_run_id: int | None,
    task_name: str = "",
    worker: str = "",
    celery_task_id: str = "",
) -> JobDone:
    function = CHUNK_FUNCTIONS.get(job)
    if function is None:
        raise LookupError(f"no chunk function registered for {job!r}")
    return job_run(
        job=job,
        key=key,
        work=lambda: function(ids=ids, night=night),
        job_run_id=job_run_id,
        task_name=task_name,
        arguments={
            "job": job,
            "ids": ids,
            "key": key,
            "night": night.isoformat() if night else None,
            "depot_id": depot_id,
        },
        depot_id=depot_id,
        night=night,
        worker=worker,
        celery_task_id=celery_task_id,
    )
