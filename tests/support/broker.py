"""A Celery broker of the test's own: a private redis-server that the test stops and starts, and a worker's
part played in-process (take the queued messages, run their tasks), so that what a test counts is what a worker
would have done with exactly the messages Redis holds. The shared Redis is never stopped."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import redis as redis_client

from tests.faults.services import PrivateRedis

QUEUE = "evfleet-private-broker-test"


@dataclass(frozen=True)
class QueuedTask:
    task_id: str
    name: str
    args: list
    kwargs: dict
    raw: bytes


def _parsed(raw: bytes) -> QueuedTask:
    # kombu's Redis transport: a JSON envelope; Celery's protocol 2 puts the task in its headers and
    # ``[args, kwargs, embed]`` in its (base64) body.
    envelope = json.loads(raw)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _embed = json.loads(body)
    headers = envelope["headers"]
    return QueuedTask(task_id=headers["id"], name=headers["task"], args=args, kwargs=kwargs, raw=raw)


@dataclass
class PrivateBroker:
    redis: PrivateRedis
    queue: str = QUEUE

    @property
    def url(self) -> str:
        return self.redis.url

    def stop(self) -> None:
        self.redis.stop()

    def start(self) -> None:
        self.redis.start()

    def _client(self) -> redis_client.Redis:
        return redis_client.Redis.from_url(self.redis.url)

    def queued(self) -> list[QueuedTask]:
        """The messages waiting in the queue, oldest first (LPUSHed: the oldest is last in the list)."""
        return [_parsed(raw) for raw in reversed(self._client().lrange(self.queue, 0, -1))]

    def queued_task_ids(self) -> list[str]:
        return [task.task_id for task in self.queued()]

    def take(self, *names: str) -> list[QueuedTask]:
        """Take the waiting messages of the tasks ``names`` off the queue, oldest first, as a worker's prefetch
        does (to run them later with ``run_as_worker``, e.g. after Redis went away); others stay queued."""
        client = self._client()
        return [task for task in self.queued() if task.name in names and client.lrem(self.queue, 1, task.raw)]

    def run_as_worker(self, task: QueuedTask) -> object:
        """Run a taken message as a worker does: not eagerly, so that what the task publishes (a Celery retry)
        goes to the broker, and fails as it would in a worker when the broker is away. Returns the task's
        result, or the exception it ended with."""
        from celery.app.trace import build_tracer

        from config.celery import app

        app.loader.import_default_modules()
        tracer = build_tracer(task.name, app.tasks[task.name], app=app, eager=False, store_errors=False)
        outcome = tracer(task.task_id, task.args, task.kwargs, {"id": task.task_id, "retries": 0})
        return outcome.retval

    def run_queued(self, *names: str) -> list[object]:
        """Take the waiting messages of the tasks ``names``, oldest first, and run each in this process with its
        message's id, as a worker would; other tasks' messages stay queued. Returns the tasks' results."""
        from config.celery import app

        app.loader.import_default_modules()
        client, results = self._client(), []
        for task in self.queued():
            if task.name in names and client.lrem(self.queue, 1, task.raw):
                outcome = app.tasks[task.name].apply(args=task.args, kwargs=task.kwargs, task_id=task.task_id)
                results.append(outcome.get(propagate=True))
        return results
