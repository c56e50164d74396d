"""Job records: one row per attempt of an overnight job, a re-plan or a chunk of a fanned-out job.

The natural ``key`` (``charging.plan_depot_night:depot=3:night=2026-11-23``) names the work, not the attempt:
a redelivered or repeated job finds a succeeded row with its key and stops there ("already done"); a new
attempt gets the next ``attempt`` number. The writes live in ``jobs.runs``; docs/operations.md explains the
states. The depot is named by its model label (like ``AUTH_USER_MODEL``): the job machinery sits below the
apps whose work it runs and imports none of them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from config.scopes import DepotScoped


class JobRun(DepotScoped, models.Model):
    # Depot-less runs (fleet-wide jobs) have no depot: only superusers see them.
    depot_path = "depot"

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending (queued)")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        INTERRUPTED = "interrupted", _("Interrupted (worker lost)")

    job = models.CharField(max_length=100, help_text=_("The job's name, e.g. charging.plan_depot_night."))
    key = models.CharField(max_length=255, help_text=_("The work this run does; one success per key is enough."))
    task_name = models.CharField(
        max_length=200, blank=True, help_text=_("Celery task that runs the job; 'run now' sends it again.")
    )
    arguments = models.JSONField(default=dict, blank=True, help_text=_("The task's keyword arguments (ids, dates)."))
    depot = models.ForeignKey("fleet.Depot", on_delete=models.SET_NULL, null=True, blank=True, related_name="job_runs")
    night = models.DateField(null=True, blank=True, help_text=_("Local date of the evening the night starts."))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveIntegerField(default=1, help_text=_("1 for the first run of this key, then 2, 3, ..."))
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text=_("What the job did, e.g. vehicles planned."))
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text=_("Host name of the worker that ran it."))
    celery_task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["key", "attempt"], name="job_run_attempt_unique"),
            # The claim runs under a lock per key (jobs.runs.job_lock); this is the database's own guarantee.
            models.UniqueConstraint(fields=["key"], condition=Q(status="running"), name="one_running_job_run_per_key"),
        ]
        indexes = [
            models.Index(fields=["key", "status"], name="job_run_key_status"),
            models.Index(fields=["job", "night"], name="job_run_job_night"),
            models.Index(fields=["status", "created_at"], name="job_run_status_created"),
            # The admin's list, newest first, without sorting every run of every night.
            models.Index(fields=["created_at", "id"], name="job_run_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.key} #{self.attempt} {self.status}"


class OutboxTask(models.Model):
    """A Celery task to send, written in the transaction that asked for it (a transactional outbox).

    ``jobs.outbox`` sends it after the commit and marks it sent; a row the broker refused (Redis away) stays
    pending and is sent by the next dispatch (the next commit that sends, the periodic drain,
    ``manage.py outbox_send``). The Celery task id is derived from ``dedupe_key``, so a row sent
    twice (the sender died between the send and the mark) is the same message to the job records.
    """

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    countdown_seconds = models.PositiveIntegerField(default=0, help_text=_("Run no earlier than this after created."))
    dedupe_key = models.CharField(max_length=255, unique=True, help_text=_("What this task is for; one row per key."))
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text=_("Sends tried, including the one that worked."))
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(sent_at__isnull=True), name="outbox_task_pending"),
        ]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "pending"
        return f"{self.task_name} [{self.dedupe_key}] {state}"
