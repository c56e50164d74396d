"""The house's layers hold (pyproject.toml, ``[tool.importlinter]``): the contracts pass on the code as it is and
break when a lower app imports a higher one or a pure core imports Django, so `make lint` would fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = [
    "config",
    "jobs",
    "fleet",
    "batteries",
    "charging",
    "notifications",
    "csms",
    "timetable",
    "citydata",
    "console",
]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(  # noqa: S603  (our own tool, fixed arguments)
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def copy_of_the_code(tmp_path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layers_and_the_pure_cores_hold_today():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "reported"),
    [
        ("fleet/selectors.py", "from charging.selectors import active_plans", "fleet.selectors -> charging.selectors"),
        ("jobs/runs.py", "import fleet.models", "jobs.runs -> fleet.models"),
        ("config/api.py", "from fleet.scoping import restrict", "config.api -> fleet.scoping"),
        ("charging/optimizer/reasons.py", "import django.db", "charging.optimizer.reasons -> django"),
        ("batteries/forecast/types.py", "import batteries.models", "batteries.forecast.types -> batteries.models"),
    ],
)
def test_an_upward_import_breaks_the_contracts(copy_of_the_code, module, line, reported):
    with (copy_of_the_code / module).open("a") as source:
        source.write(f"\n{line}  # deliberately upward\n")

    result = lint_imports(copy_of_the_code)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout and reported in result.stdout, result.stdout
