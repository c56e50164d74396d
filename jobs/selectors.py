"""Reads of the job records. ``jobs`` sits below ``fleet``, so these do not scope to a user: callers that answer
one pass the querysets through ``fleet.scoping.restrict`` (``JobRun`` declares its depot)."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from jobs.models import JobRun


def recent_runs(depot_ids: list[int], *, since: dt.datetime) -> QuerySet[JobRun]:
    """The depots' runs created since ``since``, newest first, with what a summary of them shows."""
    return (
        JobRun.objects.filter(depot_id__in=depot_ids, created_at__gte=since)
        .order_by("-created_at", "-id")
        .only("depot_id", "job", "status", "created_at", "finished_at", "duration_seconds", "summary")
    )


def latest_attempt(key: str) -> JobRun | None:
    """The last attempt at the work named ``key`` (``jobs.runs.job_key``), or None if it never ran."""
    return JobRun.objects.filter(key=key).order_by("-attempt").first()


def runs_running_since_before(moment: dt.datetime) -> QuerySet[JobRun]:
    """Runs still marked running that started before ``moment``, oldest first."""
    return JobRun.objects.filter(status=JobRun.Status.RUNNING, started_at__lt=moment).order_by("started_at")


def runs_queued_since_before(moment: dt.datetime) -> QuerySet[JobRun]:
    """Runs queued before ``moment`` that no worker has started."""
    return JobRun.objects.filter(status=JobRun.Status.PENDING, created_at__lt=moment)


def job_names() -> list[str]:
    """Every job name that has a run, sorted. A handful of names over a table that grows every night: read by
    skipping through the (job, night) index one name at a time, not with ``DISTINCT`` over every run."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return list(JobRun.objects.order_by("job").values_list("job", flat=True).distinct())
    table = JobRun._meta.db_table
    # Each step reads the next name after the last one through the index (a "loose index scan").
    sql = (
        f"WITH RECURSIVE names(job) AS ((SELECT job FROM {table} ORDER BY job LIMIT 1) "  # nosec B608 # noqa: S608 - the model's table name, not input
        f"UNION ALL SELECT (SELECT job FROM {table} WHERE job > names.job ORDER BY job LIMIT 1) "
        "FROM names WHERE names.job IS NOT NULL) SELECT job FROM names WHERE job IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]
