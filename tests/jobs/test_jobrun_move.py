"""The job records moved from the fleet app to the jobs app: a database that holds job runs keeps every row.

Migrates a real database back to before the move, records job runs (and a beat schedule) the way the fleet
app did, migrates forward and reads them through the jobs app.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_MOVE = [("fleet", "0005_audit_history"), ("jobs", None)]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor.migrate(targets).apps


@pytest.mark.django_db(transaction=True)
def test_job_runs_recorded_by_the_fleet_app_survive_the_move_to_the_jobs_app():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old_apps = migrate(BEFORE_MOVE)
    try:
        Organization = old_apps.get_model("fleet", "Organization")
        Depot = old_apps.get_model("fleet", "Depot")
        OldJobRun = old_apps.get_model("fleet", "JobRun")
        PeriodicTask = old_apps.get_model("django_celery_beat", "PeriodicTask")
        CrontabSchedule = old_apps.get_model("django_celery_beat", "CrontabSchedule")
        organization = Organization.objects.create(name="Move Test", slug="move-test")
        depot = Depot.objects.create(organization=organization, name="Moving", code="mov", grid_limit_kw=100)
        night = dt.date(2026, 11, 23)
        for attempt, status in ((1, "failed"), (2, "succeeded")):
            OldJobRun.objects.create(
                job="charging.plan_depot_night",
                key=f"charging.plan_depot_night:depot={depot.pk}:night={night}",
                attempt=attempt,
                status=status,
                depot=depot,
                night=night,
                task_name="fleet.job_tasks.nightly_job_task",
                arguments={"job": "charging.plan_depot_night", "depot_id": depot.pk},
                summary=f"attempt {attempt}",
            )
        PeriodicTask.objects.create(
            name="evfleet.nightly:charging.plan_depot_night:depot=1",
            task="fleet.job_tasks.nightly_job_task",
            crontab=CrontabSchedule.objects.create(minute="0", hour="18"),
        )
        ids_before = sorted(OldJobRun.objects.values_list("pk", flat=True))
    finally:
        new_apps = migrate(latest)

    JobRun = new_apps.get_model("jobs", "JobRun")
    moved = list(JobRun.objects.order_by("attempt"))
    assert sorted(run.pk for run in moved) == ids_before
    assert [(run.attempt, run.status, run.summary) for run in moved] == [
        (1, "failed", "attempt 1"),
        (2, "succeeded", "attempt 2"),
    ]
    assert {run.depot_id for run in moved} == {depot.pk}
    # "Run now" and beat send the tasks under their new names.
    assert {run.task_name for run in moved} == {"jobs.tasks.nightly_job_task"}
    assert new_apps.get_model("django_celery_beat", "PeriodicTask").objects.get().task == "jobs.tasks.nightly_job_task"
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    assert "jobs_jobrun" in tables and "fleet_jobrun" not in tables
    # The unique constraints came along: a second running row of one key is refused by the database.
    assert any(
        name == "one_running_job_run_per_key"
        for name in connection.introspection.get_constraints(connection.cursor(), "jobs_jobrun")
    )
