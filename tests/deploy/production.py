"""Helpers (no tests here) to run evfleet as an operator would: production settings in a subprocess, the
README's `manage.py` steps, and gunicorn on a free loopback port. Used by tests/deploy and tests/faults."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What the TLS-terminating proxy in front of gunicorn would add (production redirects plain HTTP to HTTPS).
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "Host": "127.0.0.1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(*, database_url: str, redis_url: str = "", static_root: Path, **extra: str) -> dict[str, str]:
    """The README's production environment, for 127.0.0.1."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EVFLEET_", "DJANGO_", "DEBUG", "NUM_PROXIES", "PYTEST", "REDIS_URL", "DATABASE_URL"))
    }
    env.update(
        DJANGO_ENV="production",
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CSRF_TRUSTED_ORIGINS="https://127.0.0.1",
        DATABASE_URL=database_url,
        STATIC_ROOT=str(static_root),
        PYBAMM_DISABLE_TELEMETRY="true",
        **extra,
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def manage_steps(env: dict[str, str], *commands: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Several ``manage.py`` commands in one process (``call_command``), to pay Django's start-up once.

    Each command is written as on the command line (``"migrate --no-input"``); the first that fails stops
    the rest and fails the caller, as a shell script with ``set -e`` would.
    """
    script = "from django.core.management import call_command\n" + "".join(
        f"call_command(*{command.split()!r})\n" for command in commands
    )
    return manage(env, "shell", "-c", script, timeout=timeout)


@dataclass
class Gunicorn:
    """gunicorn serving ``config.wsgi`` in its own process group (so the master and its workers die together)."""

    env: dict[str, str]
    log_path: Path
    workers: int = 2
    preload: bool = False  # load the app once in the master: a killed worker is replaced at once
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> Gunicorn:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server owns it until it stops
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                f"--workers={self.workers}",
                f"--bind=127.0.0.1:{self.port}",
                "--timeout=30",
                "--graceful-timeout=5",
                *(["--preload"] if self.preload else []),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.request("GET", "/admin/login/", timeout=5)[0] in (200, 503):
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not start: {self.log_path.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout=15
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body, {**PROXY_HEADERS, **(headers or {})})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, payload=None, token: str = "", **kw) -> tuple[int, dict[str, str], object]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        status, response_headers, body = self.request(
            method, path, json.dumps(payload).encode() if payload is not None else None, headers, **kw
        )
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        return status, response_headers, parsed
