"""The stack every fault test runs on (one per test session of this package): evfleet in production settings
under gunicorn (2 workers, ``--preload``), on a PostgreSQL cluster and a redis-server of its own, seeded with one
depot (a charger, a staff member, buses with vehicle keys). Celery workers are started by the tests that need
them (``Stack.start_worker``), on a queue of this run's own."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.conftest import SERVICES_REQUIRED
from tests.deploy.production import Gunicorn, manage, manage_steps, production_env
from tests.faults.services import CeleryBeat, CeleryWorker, PrivatePostgres, PrivateRedis, binaries_missing

TELEMETRY_CLIENTS = 3


@dataclass
class Stack:
    postgres: PrivatePostgres
    redis: PrivateRedis
    server: Gunicorn
    database_url: str
    world: dict
    env: dict[str, str]
    tmp: Path
    workers: list[CeleryWorker] = field(default_factory=list)

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params).fetchall()

    def start_worker(self, name: str, **env_extra: str) -> CeleryWorker:
        worker = CeleryWorker(name, {**self.env, **env_extra}, self.tmp / f"worker-{name}.log").start()
        self.workers.append(worker)
        return worker

    def start_beat(self, **env_extra: str) -> CeleryBeat:
        beat = CeleryBeat("beat", {**self.env, **env_extra}, self.tmp / "beat.log").start()
        self.workers.append(beat)
        return beat


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    missing = binaries_missing()
    if missing:  # CI has them (.ci/run); a developer machine may not
        if SERVICES_REQUIRED:
            pytest.fail(f"{missing} (EVFLEET_REQUIRE_SERVICES=1)")
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp("faults")
    postgres, redis = PrivatePostgres(), PrivateRedis()
    server = None
    workers: list[CeleryWorker] = []
    try:
        postgres.start()
        redis.start()
        database_url = postgres.create_database("evfleet")
        env = production_env(
            database_url=database_url,
            redis_url=redis.url,
            static_root=tmp / "static",
            DB_CONN_MAX_AGE="60",
            CELERY_TASK_DEFAULT_QUEUE=f"faults-{os.getpid()}",
            # Clients here send far more than a bus would: the rate limits are not what is tested.
            EVFLEET_API_RATE_USER="100000/min",
            EVFLEET_API_RATE_TELEMETRY_BATCH="100000/min",
            EVFLEET_LOGIN_RATE="1000/min",
        )
        manage_steps(env, "migrate --no-input --verbosity=0", "collectstatic --no-input --verbosity=0")
        seeded = manage(
            env, "shell", "-c", f"from tests.faults.seed import main; main({TELEMETRY_CLIENTS})", timeout=120
        )
        world = json.loads(seeded.stdout.strip().splitlines()[-1])
        server = Gunicorn(env, tmp / "gunicorn.log", workers=2, preload=True).start()
        yield Stack(postgres, redis, server, database_url, world, env, tmp, workers)
    finally:
        for worker in workers:
            worker.stop()
        if server is not None:
            server.stop()
        redis.destroy()
        postgres.destroy()
