"""The house's layers hold (pyproject.toml, ``[tool.importlinter]``): the contracts pass on the code as it is and
break when a lower app imports a higher one or a pure core imports Django, so `make lint` would fail. Two rules
import-linter cannot see are read from the source: the console reads other apps through their selectors, and
tasks are queued through the task outbox. Each rule is shown to hold today and to catch a planted breach."""

from __future__ import annotations

import ast
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


def copy_with_a_line_added(tmp_path: Path, module: str, line: str, *, packages: list[str] = PACKAGES) -> int:
    """Copy ``packages`` (without caches and migrations) and pyproject.toml under ``tmp_path``, then append
    ``line`` to ``module`` (relative to the root) in the copy. Returns the line's number there, for the report
    that should name it. Every "this rule catches a breach" test below plants its breach this way."""
    for package in packages:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    number = len(target.read_text().splitlines()) + 2  # after the blank line written first
    with target.open("a") as source:
        source.write(f"\n{line}  # deliberately breaking the rule\n")
    return number


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
def test_an_upward_import_breaks_the_contracts(tmp_path, module, line, reported):
    copy_with_a_line_added(tmp_path, module, line)

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout and reported in result.stdout, result.stdout


# --- The console reads other apps through their selectors -------------------------------------------------------
#
# import-linter sees every import, including those made only for type checking, and its ``exclude_type_checking_
# imports`` switch is global (it would loosen the layer contracts too); nor can it tell registering an admin for a
# model from querying it. So this rule is read from the source with ``ast``: in ``console`` (but its demo builder),
# no run-time import of another app's models, but for the admin registrations listed here, and nowhere a
# ``<Model>.objects`` on another app's model.

APPS_READ_THROUGH_SELECTORS = {
    "jobs",
    "fleet",
    "batteries",
    "charging",
    "notifications",
    "csms",
    "timetable",
    "citydata",
}
# module (relative to the root) -> the apps whose model classes it may import, to register admins with them
ADMIN_REGISTRATION_IMPORTS = {
    "console/admin/registry.py": {"fleet"},  # the composed Depot and Vehicle admins replace fleet's
    "console/admin/jobs.py": {"jobs"},  # JobRun's admin
}
EXEMPT = ("console/demo/",)  # the demo builder: it writes a whole fleet through the apps' services


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _models_app(module: str) -> str | None:
    """``charging.models`` / ``charging.models.x`` -> ``charging`` when it is an app read through selectors."""
    app, _dot, rest = module.partition(".")
    if app in APPS_READ_THROUGH_SELECTORS and (rest == "models" or rest.startswith("models.")):
        return app
    return None


class _ModelReads(ast.NodeVisitor):
    def __init__(self, path: str):
        self.path = path
        self.allowed = ADMIN_REGISTRATION_IMPORTS.get(path, set())
        self.model_names: set[str] = set()  # names bound to another app's models (run time or types)
        self.problems: list[str] = []
        self.type_checking = 0

    def visit_If(self, node: ast.If) -> None:
        if _type_checking_only(node):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _imported(self, node: ast.stmt, app: str | None, names: list[str]) -> None:
        if app is None:
            return
        self.model_names.update(names)
        if not self.type_checking and app not in self.allowed:
            self.problems.append(f"{self.path}:{node.lineno} imports {app}.models (read through {app}.selectors)")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._imported(node, _models_app(alias.name), [alias.asname or alias.name.partition(".")[0]])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or node.module is None:
            return
        if node.module in APPS_READ_THROUGH_SELECTORS:  # from charging import models
            for alias in node.names:
                if alias.name == "models":
                    self._imported(node, node.module, [alias.asname or "models"])
            return
        self._imported(node, _models_app(node.module), [alias.asname or alias.name for alias in node.names])

    def visit_Attribute(self, node: ast.Attribute) -> None:
        target = node.value
        while isinstance(target, ast.Attribute):  # charging.models.Alert.objects
            target = target.value
        if node.attr == "objects" and isinstance(target, ast.Name) and target.id in self.model_names:
            self.problems.append(
                f"{self.path}:{node.lineno} queries {ast.unparse(node.value)} (use its app's selectors)"
            )
        self.generic_visit(node)


def console_model_reads(root: Path) -> list[str]:
    problems = []
    for source in sorted((root / "console").rglob("*.py")):
        path = source.relative_to(root).as_posix()
        if path.startswith(EXEMPT) or "/migrations/" in path:
            continue
        visitor = _ModelReads(path)
        visitor.visit(ast.parse(source.read_text(), filename=path))
        problems.extend(visitor.problems)
    return problems


def test_the_console_reads_other_apps_through_their_selectors_today():
    assert console_model_reads(ROOT) == []


@pytest.mark.parametrize(
    ("module", "code", "reported"),
    [
        ("console/dashboard.py", "from charging.models import Alert", "console/dashboard.py:{line} imports charging"),
        ("console/admin/jobs.py", "import batteries.models", "console/admin/jobs.py:{line} imports batteries"),
        ("console/management/commands/run_night.py", "from fleet import models", "run_night.py:{line} imports fleet"),
        # Registering the admin is allowed; querying the model it registers is not.
        ("console/admin/registry.py", "DEPOTS = Depot.objects.count()", "registry.py:{line} queries Depot"),
        ("console/admin/jobs.py", "RUNS = JobRun.objects.all()", "jobs.py:{line} queries JobRun"),
    ],
)
def test_a_direct_read_of_another_apps_models_is_caught(tmp_path, module, code, reported):
    line = copy_with_a_line_added(tmp_path, module, code, packages=["console"])

    problems = console_model_reads(tmp_path)

    assert any(reported.format(line=line) in problem for problem in problems), problems


# --- Tasks are queued through the task outbox -------------------------------------------------------------------
#
# A task sent straight to Celery (``.delay``, ``.apply_async``, ``send_task``) is lost, or raises in its
# caller, while Redis is away; through ``jobs.outbox.outbox_task_send`` it is a row of the caller's transaction,
# sent when Redis answers (docs/operations.md). The outbox is the one module that publishes.

DIRECT_SENDS = {"delay", "apply_async", "send_task"}
PUBLISHERS = {"jobs/outbox.py"}


def direct_task_sends(root: Path, packages: list[str] = PACKAGES) -> list[str]:
    problems = []
    for package in packages:
        for source in sorted((root / package).rglob("*.py")):
            path = source.relative_to(root).as_posix()
            if path in PUBLISHERS or "/migrations/" in path:
                continue
            for node in ast.walk(ast.parse(source.read_text(), filename=path)):
                sends = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                if sends and node.func.attr in DIRECT_SENDS:
                    problems.append(f"{path}:{node.lineno} sends {ast.unparse(node.func)} (use jobs.outbox)")
    return problems


def test_no_app_sends_a_task_but_through_the_outbox_today():
    assert direct_task_sends(ROOT) == []


@pytest.mark.parametrize(
    ("module", "code", "reported"),
    [
        ("notifications/services.py", "delivery_send_task.delay(1)", "delivery_send_task.delay"),
        ("citydata/services.py", "deliver_notification.apply_async(args=[1])", "deliver_notification.apply_async"),
        ("charging/tasks.py", "app.send_task('charging.tasks.replan_depot_task')", "app.send_task"),
    ],
)
def test_a_task_sent_past_the_outbox_is_caught(tmp_path, module, code, reported):
    package = module.partition("/")[0]
    line = copy_with_a_line_added(tmp_path, module, code, packages=[package])

    problems = direct_task_sends(tmp_path, [package])

    assert problems == [f"{module}:{line} sends {reported} (use jobs.outbox)"]
