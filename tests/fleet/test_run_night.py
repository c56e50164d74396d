"""`manage.py run_night`: runs whatever overnight jobs the apps registered, per depot, in stage order."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from batteries.nightly import BATTERY_FORECASTS
from charging.nightly import CHARGING_PLANS
from fleet.nightly import TELEMETRY
from jobs import nightly
from jobs import registry as nightly_registry
from tests import factories as f

NIGHT = dt.date(2026, 11, 23)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # two_depots creates users; the production hasher (1M PBKDF2 rounds) would dominate these tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def registry(monkeypatch):
    """An empty job registry for the test: the apps' real jobs (charging plans, ...) stay out of it."""
    monkeypatch.setattr(nightly_registry, "NIGHTLY_JOBS", [])
    monkeypatch.setattr(nightly_registry, "discover", lambda: None)
    return nightly_registry.NIGHTLY_JOBS


def run_night(*args) -> str:
    out = StringIO()
    call_command("run_night", *args, stdout=out)
    return out.getvalue()


def test_with_no_jobs_registered_it_says_so(registry, two_depots):
    output = run_night("--all-depots", "--date", NIGHT.isoformat())

    assert "no nightly jobs registered" in output
    assert "Hermosillo (hmo), night of Mon 23 Nov 2026" in output
    assert "no jobs to run" in output


def test_registered_jobs_run_in_stage_order_for_every_depot(registry, two_depots):
    calls = []

    @nightly.nightly_job(stage=CHARGING_PLANS, name="test.plan")
    def plan(*, depot, night):
        calls.append(("plan", depot.code, night))
        return f"planned {depot.name}"

    @nightly.nightly_job(stage=TELEMETRY, name="test.aggregate")
    def aggregate(*, depot, night):
        calls.append(("aggregate", depot.code, night))

    output = run_night("--all-depots", "--date", NIGHT.isoformat())

    # Telemetry is aggregated before the plan that needs it, depot by depot.
    assert calls == [
        ("aggregate", "hmo", NIGHT),
        ("plan", "hmo", NIGHT),
        ("aggregate", "nog", NIGHT),
        ("plan", "nog", NIGHT),
    ]
    assert "planned Nogales" in output
    assert "2 job(s) x 2 depot(s)" in output and "0 failed" in output


def test_a_failing_job_does_not_stop_the_others_but_the_command_fails(registry, two_depots):
    planned = []

    @nightly.nightly_job(stage=BATTERY_FORECASTS, name="test.forecast")
    def forecast(*, depot, night):
        if depot.code == "hmo":
            raise RuntimeError("no observations for pack X")
        return "forecast 1 pack"

    @nightly.nightly_job(stage=CHARGING_PLANS, name="test.plan")
    def plan(*, depot, night):
        planned.append(depot.code)

    out = StringIO()
    with pytest.raises(CommandError, match="1 nightly job run"):
        call_command("run_night", "--all-depots", "--date", NIGHT.isoformat(), stdout=out)

    assert planned == ["hmo", "nog"]
    assert "FAILED test.forecast" in out.getvalue().replace("\x1b[31;1m", "").replace("\x1b[0m", "")
    assert "RuntimeError: no observations for pack X" in out.getvalue()


def test_one_depot_is_chosen_by_its_code(registry, two_depots):
    seen = []
    nightly.nightly_job(stage=TELEMETRY, name="test.seen")(lambda *, depot, night: seen.append(depot))

    run_night("--depot", "NOG", "--date", NIGHT.isoformat())

    assert seen == [two_depots["depot_b"]]


def test_an_unknown_or_ambiguous_depot_code_is_a_clear_error(registry, two_depots):
    with pytest.raises(CommandError, match="No depot with code 'xyz'. Known codes: hmo, nog"):
        run_night("--depot", "xyz")

    other = f.DepotFactory(organization=f.OrganizationFactory(slug="otra"), code="hmo", name="Otro Hermosillo")
    with pytest.raises(CommandError, match="used by several organisations; say which: .*otra/hmo"):
        run_night("--depot", "hmo")
    seen = []
    nightly.nightly_job(stage=TELEMETRY, name="test.seen")(lambda *, depot, night: seen.append(depot))
    run_night("--depot", "otra/hmo", "--date", NIGHT.isoformat())
    assert seen == [other]


def test_it_needs_a_choice_of_depots(registry, db):
    with pytest.raises(CommandError, match="one of the arguments --all-depots --depot is required"):
        call_command("run_night")


def test_registering_a_job_name_twice_keeps_the_latest(registry):
    nightly.nightly_job(stage=TELEMETRY, name="test.once")(lambda **kw: "first")
    nightly.nightly_job(stage=TELEMETRY, name="test.once")(lambda **kw: "second")

    jobs = nightly.registered_jobs()
    assert [job.name for job in jobs] == ["test.once"]
    assert jobs[0].run() == "second"
