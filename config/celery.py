"""The Celery application.

With ``REDIS_URL`` set, tasks go through Redis to worker processes. Without it (the embedded default),
settings turn on ``task_always_eager`` and every task runs in-process, so a new user needs no server.

The ``CELERY_*`` settings (config/settings.py) become ``app.conf`` here: acks late + reject on worker lost
(a task whose worker dies is delivered again), prefetch 1 (a long job never sits behind another one in a
busy worker's buffer), soft/hard time limits, and a Redis visibility timeout longer than the hard limit
(Redis re-delivers a task nobody acknowledged within it). tests/test_jobs_celery.py checks they apply.
Operations: docs/operations.md.
"""

import os

import click
from celery import Celery


def celery_command() -> str | None:
    """The Celery command this process was started for (``worker``, ``beat``, ...), or None when it was not
    started by Celery's command line (gunicorn, runserver, manage.py, pytest). Known while ``-A config`` imports
    this module: Celery's command line (click) names the command before it loads the app."""
    context = click.get_current_context(silent=True)
    if context is None or context.find_root().command.name != "celery":  # another click program (uvicorn, ...)
        return None
    return context.find_root().invoked_subcommand


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The process's role for the settings (EVFLEET_PROCESS_ROLE, config/settings.py: the database's JIT), decided here
# because this module is imported before the settings (config/__init__.py). An explicit value wins.
if celery_command() == "worker":
    os.environ.setdefault("EVFLEET_PROCESS_ROLE", "worker")

app = Celery("evfleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # Keep retrying the broker at start-up (a worker may start before Redis), and say so explicitly: Celery
    # 5.3+ warns when it is left implicit.
    broker_connection_retry_on_startup=True,
    # On a lost broker connection, let running tasks finish: if Redis re-delivers one meanwhile, its JobRun
    # key makes the copy a no-op ("already done"), so cancelling long plans would only waste work.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    # One Redis may serve several deployments or test runs: each uses its own queue.
    task_default_queue=os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery"),
)
app.autodiscover_tasks()
# The overnight jobs' tasks live next to the job runner, not in fleet/tasks.py (telemetry's).
app.autodiscover_tasks(["fleet"], related_name="job_tasks")
