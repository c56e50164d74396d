"""The Celery application.

With ``REDIS_URL`` set, tasks go through Redis to worker processes. Without it (the embedded default),
settings turn on ``task_always_eager`` and every task runs in-process, so a new user needs no server.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("evfleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
