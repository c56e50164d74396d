"""Instance format additions (issue 14): per-vehicle efficiency, a settable shortfall penalty."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from charging.optimizer import Instance, InstanceError, evaluate, solve
from charging.optimizer.generate import generate_instance_dict
from charging.optimizer.quantities import vehicle_arrays

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path(__file__).parent / "optimizer_fixtures" / "example_instance.json"
SCHEMA = json.loads((ROOT / "docs" / "optimizer-instance.schema.json").read_text())


def test_an_instance_written_before_these_fields_still_parses_with_the_old_meaning():
    instance = Instance.from_dict(json.loads(EXAMPLE.read_text()))
    assert all(v.charging_efficiency is None for v in instance.vehicles)
    assert instance.shortfall_penalty_mxn_per_kwh == () and instance.shortfall_penalty_all_mxn_per_kwh is None
    va = vehicle_arrays(instance)
    assert (va.efficiency == instance.charging_efficiency).all()


def test_a_vehicle_with_a_lower_efficiency_draws_more_from_the_grid_for_the_same_energy():
    data = generate_instance_dict(vehicles=2, connectors=2, seed=1)
    data["vehicles"][1] = {**data["vehicles"][0], "id": "twin", "charging_efficiency": 0.80}
    instance = Instance.from_dict(data)
    plan = solve(instance, "lp")
    assert evaluate(instance, plan).ok and plan.totals.shortfall_kwh == pytest.approx(0, abs=1e-6)
    first, twin = plan.vehicles
    # same battery energy gained: grid energy in the ratio of the efficiencies
    assert twin.energy_delivered_kwh == pytest.approx(first.energy_delivered_kwh * 0.95 / 0.80, rel=1e-6)
    assert Instance.from_dict(instance.to_dict()) == instance
    jsonschema.validate(instance.to_dict(), SCHEMA)


def test_the_shortfall_penalty_can_be_set_for_every_level_or_per_level():
    data = generate_instance_dict(vehicles=4, connectors=2, seed=1)
    data["vehicles"][0]["priority"] = 2
    data["shortfall_penalty_mxn_per_kwh"] = 50
    every = Instance.from_dict(data)
    assert vehicle_arrays(every).penalty_mxn_per_kwh.tolist() == [50.0] * 4
    data["shortfall_penalty_mxn_per_kwh"] = {"2": 500, "0": 20}
    levels = Instance.from_dict(data)
    penalty = vehicle_arrays(levels).penalty_mxn_per_kwh
    priorities = [v.priority for v in levels.vehicles]
    assert [p for p, pr in zip(penalty, priorities, strict=True) if pr == 2] == [500.0]
    assert all(p == 20.0 for p, pr in zip(penalty, priorities, strict=True) if pr == 0)
    for instance in (every, levels):
        assert Instance.from_dict(instance.to_dict()) == instance
        jsonschema.validate(instance.to_dict(), SCHEMA)


def test_a_penalty_below_the_price_of_energy_lets_the_plan_skip_charging():
    # A penalty is a price: below what a kWh costs, leaving short is the cheaper plan.
    data = generate_instance_dict(vehicles=2, connectors=2, seed=1)
    data["shortfall_penalty_mxn_per_kwh"] = 0.01
    plan = solve(Instance.from_dict(data), "lp")
    assert plan.totals.energy_kwh == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("bad", ["lots", {"high": 5}, {"1": -3}])
def test_a_bad_penalty_is_reported_with_its_path(bad):
    data = generate_instance_dict(vehicles=2, connectors=2, seed=1)
    data["shortfall_penalty_mxn_per_kwh"] = bad
    with pytest.raises(InstanceError) as error:
        Instance.from_dict(data)
    assert "shortfall_penalty_mxn_per_kwh" in str(error.value)
