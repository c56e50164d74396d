"""PostgreSQL's JIT per process role (config/settings.py, EVFLEET_PROCESS_ROLE / EVFLEET_DB_JIT; docs/operations.md,
"City scale"): the web's connections run with ``jit = off``, a Celery worker's keep the server's setting. Read with
``SHOW jit`` on real connections: this process's (set up like gunicorn's or runserver's: not started by Celery),
fresh processes' with other environments, and a real ``celery worker`` process's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from tests.test_jobs_celery import BASE_DIR, _test_database_url, queue, start_worker  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def show_jit(conn) -> str:
    with conn.cursor() as cursor:
        cursor.execute("SHOW jit")
        return cursor.fetchone()[0]


@pytest.fixture
def server_jit(postgres) -> str:
    """The server's own setting, on a connection that asks for nothing. The tests below compare with it: were it
    off already, "the web turns it off" would show nothing, so it must be PostgreSQL's default, on."""
    with psycopg.connect(_test_database_url()) as raw:
        value = show_jit(raw)
    assert value == "on", "the test server has jit off: these tests could not tell the settings' effect"
    return value


def test_the_web_connects_with_jit_off(server_jit):
    assert os.environ.get("EVFLEET_PROCESS_ROLE") is None and settings.EVFLEET_PROCESS_ROLE == "web"
    connection.close()  # a new connection, as a web worker opens one
    assert show_jit(connection) == "off"


def settings_in_a_new_process(**env: str) -> tuple[str, str]:
    """``(options sent, SHOW jit)`` of a fresh process's connection with ``env`` on top of this one's."""
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "cursor = connection.cursor(); cursor.execute('SHOW jit')\n"
        "print(repr(connection.settings_dict.get('OPTIONS', {}).get('options', '')), cursor.fetchone()[0])\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("EVFLEET_PROCESS_ROLE", "EVFLEET_DB_JIT")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": _test_database_url(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    options, jit = done.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    return options, jit


def test_the_worker_role_and_the_override_decide_jit(server_jit):
    # The worker role sends nothing: the server's (or the database role's) own setting.
    assert settings_in_a_new_process(EVFLEET_PROCESS_ROLE="worker") == ("''", server_jit)
    # EVFLEET_DB_JIT overrides either role's choice.
    assert settings_in_a_new_process(EVFLEET_PROCESS_ROLE="worker", EVFLEET_DB_JIT="off") == ("'-c jit=off'", "off")
    # Options given in DATABASE_URL are kept, jit's added after them.
    url = _test_database_url() + "?options=-c%20statement_timeout%3D5000"
    assert settings_in_a_new_process(DATABASE_URL=url) == ("'-c statement_timeout=5000 -c jit=off'", "off")


def test_a_bad_value_stops_the_start(postgres):
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "EVFLEET_DB_JIT": "of"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "EVFLEET_DB_JIT='of': give one of on, off, server" in done.stderr


def test_a_celery_worker_keeps_the_servers_jit(server_jit, start_worker, queue, redis_url):  # noqa: F811
    """A real ``celery worker`` process, started as production starts one (no role in its environment): Celery's
    command line makes it a worker, and its connection has the server's jit."""
    import redis

    from tests.support.jit_probe import app

    worker = start_worker("jit", app_module="tests.support.jit_probe")
    key = f"evfleet-test-jit-{uuid.uuid4().hex[:10]}"
    app.send_task("tests.support.jit_probe.report_jit", kwargs={"key": key}, queue=queue)
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while (answer := client.get(key)) is None:
        assert time.monotonic() < deadline, f"no answer from the worker:\n{worker.log()[-3000:]}"
        time.sleep(0.2)
    client.delete(key)
    assert answer.decode() == f"worker:{server_jit}"
