"""Deploy smoke test: the README's production steps, run as an operator would, then gunicorn answering.

Production settings (``DJANGO_ENV=production``) on a fresh database (PostgreSQL when ``DATABASE_URL`` names
one, as in CI; otherwise a SQLite file), ``migrate``, ``collectstatic``, ``check --deploy``, a superuser, then
gunicorn on a free loopback port: the admin login page, the API docs (Swagger UI and ReDoc), a token and an
API read all answer 200, and every static file those pages link is served (by WhiteNoise, from the manifest).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from pathlib import Path

import psycopg
import pytest

from tests.deploy.production import Gunicorn, manage_steps, production_env

pytestmark = pytest.mark.deploy

SUPERUSER, PASSWORD = "smoke-admin", secrets.token_urlsafe(16)


@contextlib.contextmanager
def fresh_database(tmp_path: Path):
    """A new, empty database for the deployment: its own on the CI PostgreSQL server, else a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'smoke.sqlite3'}"
        return
    server, _, _name = url.rpartition("/")
    name = f"evfleet_smoke_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def static_links(html: str) -> list[str]:
    return sorted(set(re.findall(r"""(?:href|src)=["'](/static/[^"'?#]+)""", html)))


def test_a_production_deployment_starts_and_serves_the_admin_the_docs_and_the_api(tmp_path):
    started = time.monotonic()
    with fresh_database(tmp_path) as database_url:
        env = production_env(database_url=database_url, static_root=tmp_path / "static")
        steps = manage_steps(
            {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
            "migrate --no-input --verbosity=0",
            "collectstatic --no-input",
            "check --deploy --fail-level=WARNING",
            f"createsuperuser --no-input --username={SUPERUSER} --email=smoke@example.org",
        )
        server = Gunicorn(env, tmp_path / "gunicorn.log", workers=1).start()
        try:
            login_status, _, login_page = server.request("GET", "/admin/login/")
            docs_status, _, docs_page = server.request("GET", "/api/docs/")
            redoc_status, _, redoc_page = server.request("GET", "/api/redoc/")
            schema_status, _, _ = server.request("GET", "/api/schema/")
            token_status, _, token = server.json(
                "POST", "/api/v1/auth/token/", {"username": SUPERUSER, "password": PASSWORD}
            )
            depots_status, _, depots = server.json("GET", "/api/v1/depots/", token=f"Token {token['token']}")
            pages = [page.decode() for page in (login_page, docs_page, redoc_page)]
            links = sorted({link for page in pages for link in static_links(page)})
            manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())["paths"]
            statics = {link: server.request("GET", link)[0] for link in links}
            plain_http, plain_headers, _ = server.request(
                "GET", "/api/v1/depots/", headers={"X-Forwarded-Proto": "http"}
            )
        finally:
            server.stop()
    took_s = time.monotonic() - started

    collected = next(line for line in steps.stdout.splitlines() if "static files copied" in line)
    print(f"\nsmoke: {len(statics)} static files served, {collected}; {took_s:.1f} s")
    assert (login_status, docs_status, redoc_status, schema_status) == (200, 200, 200, 200)
    assert token_status == 200, token
    assert depots_status == 200 and depots["results"] == [], depots  # a fresh deployment has no depots yet
    assert any("/static/admin/css/" in link for link in links)
    assert any("swagger-ui" in link for link in links) and any("redoc" in link for link in links)
    assert all(re.search(r"\.[0-9a-f]{12}\.", link) for link in links), links  # names from the manifest
    assert statics == dict.fromkeys(links, 200)
    assert "vendor/chartjs/chart.umd.min.js" in manifest  # the vendored chart library, without its source map
    assert plain_http == 301 and plain_headers["Location"].startswith("https://")
