"""What every database-backed benchmark does first: its own PostgreSQL database, Django set up, migrated.

A benchmark measures on PostgreSQL (the production database), in a database of its own so that its fill never
touches a developer's data: ``DATABASE_URL`` when it names a PostgreSQL database, else the script's default.
"""

from __future__ import annotations

import os


def prepare_database(default_url: str, *, fresh: bool = False, refuse: tuple[str, ...] = ()) -> str:
    """Create the benchmark's database if missing (dropped first when ``fresh``), set Django up on it and
    migrate. ``refuse``: database names the script must not fill (another tool's database); the default is taken
    instead. Returns the database URL used."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")) or url.rsplit("/", 1)[1] in refuse:
        url = default_url
    os.environ["DATABASE_URL"] = url
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or fresh:
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url
