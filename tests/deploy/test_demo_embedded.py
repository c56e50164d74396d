"""``make demo`` on a fresh machine: with no server at all (the embedded SQLite database, tasks in-process) the demo
loads and its first night runs with no job failing, the vehicles with no home depot included.

The rest of the suite runs on PostgreSQL, so a PostgreSQL-only read slipped into the night once and ``make demo``
stopped at its second step (``fleet.telemetry_duty_cycles`` failed in every depot); this is its guard.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.deploy.production import manage_steps


@pytest.mark.slow
def test_the_demo_loads_and_runs_its_first_night_on_the_embedded_database(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EVFLEET_", "DJANGO_", "PYTEST", "REDIS_URL", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYBAMM_DISABLE_TELEMETRY="true",
    )

    night = manage_steps(env, "migrate --no-input --verbosity=0", "load_demo", "run_night --all-depots", timeout=900)

    assert re.search(r"job\(s\) x 4 depot\(s\) in [\d.]+ s, 0 failed\.", night.stdout), night.stdout[-3000:]
    assert "FAILED" not in night.stdout
    depotless = re.search(r"evfleet\.depotless\.battery_forecasts\s+(\d+)/(\d+) packs forecast", night.stdout)
    assert depotless and depotless[1] == depotless[2] == "10", night.stdout[-3000:]
