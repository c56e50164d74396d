"""The command line, the documented JSON format, and re-planning from "now"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from charging.optimizer import Instance, evaluate, generate_instance, load_instance, replan, solve
from charging.optimizer.cli import main
from charging.optimizer.generate import generate_instance_dict

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path(__file__).parent / "optimizer_fixtures" / "example_instance.json"
SCHEMA = json.loads((ROOT / "docs" / "optimizer-instance.schema.json").read_text())


def test_schema_accepts_the_example_and_generated_instances():
    jsonschema.validate(json.loads(EXAMPLE.read_text()), SCHEMA)
    jsonschema.validate(generate_instance_dict(vehicles=3, connectors=2, seed=0), SCHEMA)
    jsonschema.validate(load_instance(EXAMPLE).to_dict(), SCHEMA)


def test_schema_rejects_what_the_parser_rejects():
    broken = json.loads(EXAMPLE.read_text())
    broken["chargers"][0]["kind"] = "steam"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_cli_round_trip(tmp_path, capsys):
    instance_path = tmp_path / "night.json"
    assert main(["generate", "--vehicles", "6", "--connectors", "4", "--seed", "5", "-o", str(instance_path)]) == 0
    capsys.readouterr()
    assert main(["solve", str(instance_path), "--method", "lp"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["vehicles"]) == 6 and plan["solver"]["method"] == "lp"
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    assert main(["evaluate", str(instance_path), str(plan_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["violation_counts"] == {}
    assert report["totals"]["objective_mxn"] == pytest.approx(plan["totals"]["objective_mxn"])


def test_cli_reports_an_invalid_instance_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"horizon_start": "yesterday", "num_slots": 4}))
    assert main(["solve", str(path)]) == 2
    assert "horizon_start: must be an ISO 8601 datetime" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "charging.optimizer", "solve", str(EXAMPLE), "--method", "edf"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["solver"]["method"] == "edf"


def test_cli_stdout_is_the_json_result_only(tmp_path):
    # The MILP path creates HiGHS solvers, whose banner is printed from C++ on file descriptor 1.
    path = tmp_path / "night.json"
    path.write_text(json.dumps(generate_instance_dict(vehicles=5, connectors=2, seed=3)))
    result = subprocess.run(
        [sys.executable, "-m", "charging.optimizer", "solve", str(path), "--method", "milp", "--time-limit", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    plan = json.loads(result.stdout)  # the whole of stdout, nothing before or after
    assert len(plan["vehicles"]) == 5 and plan["solver"]["status"]
    assert "HiGHS" in result.stderr  # the banner went to stderr


def test_replan_keeps_the_past_and_finishes_the_night():
    instance = generate_instance(vehicles=12, connectors=8, seed=4)
    plan = solve(instance, "lp")
    now = 40  # 22:00
    result = replan(instance, plan, now)
    remainder, new_plan = result.instance, result.plan
    assert remainder.num_slots == instance.num_slots - now
    assert remainder.horizon_start == instance.slot_start(now)
    assert evaluate(remainder, new_plan).ok
    by_id = {v.id: v for v in instance.vehicles}
    for vehicle, vp in zip(remainder.vehicles, new_plan.vehicles, strict=True):
        old = plan.vehicle(vehicle.id)
        # The energy delivered before now is carried over, not delivered again.
        assert vehicle.energy_delivered_kwh == pytest.approx(
            by_id[vehicle.id].energy_delivered_kwh + sum(old.power_kw[:now]) * instance.slot_hours
        )
        if old.connector_id and old.plug_in_slot <= now < old.unplug_slot:
            assert vp.connector_id in (old.connector_id, None)  # stays where it is plugged in
    # Nothing changed, so the rest of the old plan is still (about) as good.
    assert new_plan.totals.shortfall_kwh <= plan.totals.shortfall_kwh + 1e-6


def test_replan_with_a_measured_soc():
    instance = Instance.from_dict(json.loads(EXAMPLE.read_text()))
    plan = solve(instance, "lp")
    result = replan(instance, plan, 5, soc_now_pct={"bus-0003": 70.0})
    bus = next(v for v in result.instance.vehicles if v.id == "bus-0003")
    assert bus.arrival_soc_pct == 70.0 and bus.energy_delivered_kwh == 0.0
    assert bus.fixed_connector_id == "dc-001-2"
    assert evaluate(result.instance, result.plan).ok
