"""Small depot nights whose best plan can be worked out by hand.

One-hour slots, efficiency 1 and no wear costs keep the arithmetic obvious: a bus at 50 % of
200 kWh that must leave at 100 % needs 100 kWh.
"""

from __future__ import annotations

import pytest

from charging.optimizer import Instance, InstanceError, evaluate, solve


def night(*, vehicles=None, slots=4, price=(2.0, 2.0, 1.0, 1.0), site_kw=1000.0, chargers=None, **extra) -> Instance:
    data = {
        "horizon_start": "2025-07-15T22:00:00-07:00",
        "num_slots": slots,
        "slot_minutes": 60,
        "site_limit_kw": site_kw,
        "energy_price_mxn_per_kwh": list(price),
        "charging_efficiency": 1.0,
        "wear": {"high_soc_mxn_per_kwh_h": 0, "high_c_rate_mxn_per_kwh": 0},
        "chargers": chargers
        or [
            {"id": f"c{i}", "kind": "DC", "max_kw": 150, "connectors": [{"id": f"c{i}-1", "max_kw": 150}]}
            for i in range(4)
        ],
        "vehicles": vehicles or [bus("bus-1")],
        **extra,
    }
    return Instance.from_dict(data)


def bus(vehicle_id: str, **overrides) -> dict:
    return {
        "id": vehicle_id,
        "arrival_slot": 0,
        "departure_slot": 4,
        "arrival_soc_pct": 50,
        "required_soc_pct": 100,
        "usable_capacity_kwh": 200,
        "max_charge_kw": 100,
        **overrides,
    }


def test_charges_in_the_cheap_period():
    plan = solve(night(), "lp")
    power = plan.vehicle("bus-1").power_kw
    assert power[0] == pytest.approx(0, abs=1e-6) and power[1] == pytest.approx(0, abs=1e-6)
    assert power[2] + power[3] == pytest.approx(100)
    assert plan.totals.energy_cost_mxn == pytest.approx(100)
    assert plan.vehicle("bus-1").departure_soc_pct == pytest.approx(100)
    assert plan.totals.shortfall_kwh == 0
    assert evaluate(night(), plan).ok


def test_site_limit_pushes_energy_into_dear_hours():
    instance = night(site_kw=40)
    plan = solve(instance, "lp")
    power = plan.vehicle("bus-1").power_kw
    assert power[2] == pytest.approx(40) and power[3] == pytest.approx(40)
    assert plan.totals.energy_cost_mxn == pytest.approx(80 * 1 + 20 * 2)
    assert evaluate(instance, plan).ok


def test_demand_charge_flattens_the_profile():
    instance = night(price=(1, 1, 1, 1), demand_charge_mxn_per_kw=10)
    plan = solve(instance, "lp")
    assert plan.vehicle("bus-1").power_kw == pytest.approx([25, 25, 25, 25])
    assert plan.totals.peak_kw == pytest.approx(25)
    assert plan.totals.demand_cost_mxn == pytest.approx(250)


def test_demand_only_counts_in_flagged_slots():
    # Punta in the two cheap hours: charging there would set a peak worth 10 MXN/kW.
    instance = night(demand_charge_mxn_per_kw=10, demand_slots=[False, False, True, True])
    plan = solve(instance, "lp")
    assert plan.vehicle("bus-1").power_kw[:2] == pytest.approx([50, 50]) or sum(
        plan.vehicle("bus-1").power_kw[:2]
    ) == pytest.approx(100)
    assert plan.totals.demand_cost_mxn == pytest.approx(0)


def test_month_peak_so_far_is_free_to_use():
    # Up to 40 kW is already paid this month: fill the cheap hours to 40 kW, the rest at 2 MXN.
    instance = night(demand_charge_mxn_per_kw=10, month_peak_kw=40)
    plan = solve(instance, "lp")
    power = plan.vehicle("bus-1").power_kw
    assert power[2] == pytest.approx(40) and power[3] == pytest.approx(40)
    assert plan.totals.demand_cost_mxn == pytest.approx(0)
    assert plan.totals.energy_cost_mxn == pytest.approx(120)


def test_efficiency_and_time_at_high_soc_make_it_charge_late():
    data = night().to_dict()
    data["charging_efficiency"] = 0.9
    data["energy_price_mxn_per_kwh"] = [1, 1, 1, 1]
    data["wear"] = {"high_soc_threshold_pct": 50, "high_soc_mxn_per_kwh_h": 0.01, "high_c_rate_mxn_per_kwh": 0}
    instance = Instance.from_dict(data)
    plan = solve(instance, "lp")
    power = plan.vehicle("bus-1").power_kw
    # 100 kWh into the battery takes 100 / 0.9 kWh from the grid, as late as possible.
    assert power == pytest.approx([0, 0, 100 / 0.9 - 100, 100])
    assert plan.totals.energy_kwh == pytest.approx(100 / 0.9)


def test_taper_limits_power_near_full():
    # 150 kW up to 80 %, falling to 30 kW at 100 %: the last 10 % of 200 kWh cannot go in at 100 kW.
    vehicle = bus("bus-1", max_charge_kw=150, taper=[[80, 150], [100, 30]], arrival_soc_pct=10, required_soc_pct=100)
    instance = night(vehicles=[vehicle], price=(1, 1, 1, 1))
    plan = solve(instance, "lp")
    assert evaluate(instance, plan).ok
    assert plan.vehicle("bus-1").departure_soc_pct == pytest.approx(100, abs=1e-4)
    taper_slot = [p for p in plan.vehicle("bus-1").power_kw if p > 1e-6]
    assert max(taper_slot) <= 150 + 1e-6


def test_unservable_night_serves_priority_first_and_explains():
    # 100 kW for 4 hours = 400 kWh; three buses need 100 kWh each plus one that needs 200 kWh.
    vehicles = [
        bus("low-early", departure_slot=2, max_charge_kw=150),
        bus("high-late", priority=1, max_charge_kw=150),
        bus("low-late", max_charge_kw=150),
    ]
    instance = night(vehicles=vehicles, site_kw=50)
    plan = solve(instance, "lp")
    assert not evaluate(instance, plan).violations
    assert plan.vehicle("high-late").shortfall_kwh == pytest.approx(0, abs=1e-6)
    # 200 kWh available: high-late takes 100, low-early (earlier departure) gets the first 2 hours.
    assert plan.vehicle("low-early").shortfall_kwh == pytest.approx(0, abs=1e-6)
    assert plan.vehicle("low-late").shortfall_kwh == pytest.approx(100, abs=1e-6)
    assert plan.vehicle("low-late").shortfall_reason == "grid limit"
    assert plan.totals.shortfall_kwh == pytest.approx(100, abs=1e-6)


def test_earliest_departure_served_first_among_equals():
    vehicles = [bus("late"), bus("early", departure_slot=3)]
    instance = night(vehicles=vehicles, site_kw=25)  # 100 kWh in the night, 75 before "early" leaves
    plan = solve(instance, "lp")
    assert plan.vehicle("early").power_kw == pytest.approx([25, 25, 25, 0])
    assert plan.vehicle("early").shortfall_kwh == pytest.approx(25)
    assert plan.vehicle("late").shortfall_kwh == pytest.approx(75)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"compatible_kinds": ["AC"]}, "no compatible connector"),
        ({"departure_slot": 1, "max_charge_kw": 50}, "not enough time"),
        ({"max_charge_kw": 150, "taper": [[0, 150], [50, 150], [100, 10]], "departure_slot": 2}, "taper"),
    ],
)
def test_shortfall_reasons(overrides, reason):
    instance = night(vehicles=[bus("bus-1", **overrides)])
    plan = solve(instance, "lp")
    assert plan.vehicle("bus-1").shortfall_kwh > 1
    assert plan.vehicle("bus-1").shortfall_reason == reason


def test_already_delivered_energy_counts():
    instance = night(vehicles=[bus("bus-1", energy_delivered_kwh=60)])
    plan = solve(instance, "lp")
    assert plan.vehicle("bus-1").energy_delivered_kwh == pytest.approx(40)
    assert plan.vehicle("bus-1").departure_soc_pct == pytest.approx(100)


def test_arrival_and_departure_times_round_inwards():
    data = night().to_dict()
    vehicle = data["vehicles"][0]
    del vehicle["arrival_slot"], vehicle["departure_slot"]
    vehicle["arrival_time"] = "2025-07-15T22:10:00-07:00"  # partly present in slot 0: starts at 1
    vehicle["departure_time"] = "2025-07-16T01:50:00-07:00"  # leaves during slot 3: ends at 3
    parsed = Instance.from_dict(data).vehicles[0]
    assert (parsed.arrival_slot, parsed.departure_slot) == (1, 3)


def test_invalid_instance_lists_every_problem():
    data = night().to_dict()
    data["vehicles"][0]["taper"] = [[0, 50], [50, 50], [80, -150]]  # negative power
    data["vehicles"][0]["compatible_connector_ids"] = ["nope"]
    data["energy_price_mxn_per_kwh"] = [1, 2]
    with pytest.raises(InstanceError) as error:
        Instance.from_dict(data)
    text = str(error.value)
    assert "power >= 0" in text
    assert "unknown connector 'nope'" in text
    assert "energy_price_mxn_per_kwh" in text
    assert len(error.value.errors) == 3


def test_instance_round_trips_through_its_json_form():
    instance = night(demand_charge_mxn_per_kw=10, demand_slots=[True, False, False, True])
    assert Instance.from_dict(instance.to_dict()) == instance
