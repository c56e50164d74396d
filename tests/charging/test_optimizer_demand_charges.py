"""Several demand charges priced together (GDMTH: capacity on punta demand + distribution on the month's maximum).

The top-level ``demand_charge_mxn_per_kw`` / ``demand_slots`` / ``month_peak_kw`` stay the first charge, so
instances stored before ``additional_demand_charges`` existed read and plan as they always did.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from charging.optimizer import (
    DemandCharge,
    DemandCharges,
    Instance,
    InstanceError,
    Plan,
    demand_charges_from_dict,
    evaluate,
    solve,
)
from charging.optimizer.lp import LpModel, build_core, power_matrix
from charging.optimizer.plan import PlanTotals, SolverInfo, VehiclePlan
from charging.optimizer.replan import remaining_instance
from charging.optimizer.sifting import solve_sifted

from .test_optimizer_lp import bus, night
from .test_optimizer_properties import PROPERTY_SETTINGS, nights
from .test_optimizer_sifting import relaxation_parts

EXAMPLE = Path(__file__).parent / "optimizer_fixtures" / "example_instance.json"
PUNTA = [True, True, False, False]


def distribution(mxn_per_kw=20.0, month_peak_kw=40.0, slots=None) -> dict:
    return {"name": "distribution", "mxn_per_kw": mxn_per_kw, "slots": slots, "month_peak_kw": month_peak_kw}


def test_both_charges_together_move_energy_as_neither_alone_would():
    # 100 kWh to deliver in 4 one-hour slots; punta (slots 0-1) is dearer energy (1.5 vs 1 MXN/kWh) and has a
    # capacity charge of 10 MXN/kW; a distribution charge of 20 MXN/kW counts every slot, with 40 kW already
    # paid this month.
    # - Capacity charge alone: all 100 kWh in slots 2-3, no punta demand.
    # - Distribution charge alone: 40 + 40 kW in slots 2-3 (free) and 20 kWh at the punta price, split any way.
    # - Both: 40 + 40 kW in slots 2-3 and the last 20 kWh spread evenly over punta, 10 + 10 kW: that sets a
    #   punta peak of 10 kW (100 MXN), where 10 kW more in slots 2-3 would raise the distribution peak by
    #   10 kW (200 MXN).
    price = (1.5, 1.5, 1.0, 1.0)
    capacity_only = night(price=price, demand_charge_mxn_per_kw=10, demand_slots=PUNTA)
    distribution_only = night(price=price, additional_demand_charges=[distribution()])
    both = night(
        price=price, demand_charge_mxn_per_kw=10, demand_slots=PUNTA, additional_demand_charges=[distribution()]
    )

    assert solve(capacity_only, "lp").vehicle("bus-1").power_kw[:2] == pytest.approx([0, 0], abs=1e-6)
    assert solve(distribution_only, "lp").totals.objective_mxn == pytest.approx(20 * 1.5 + 80 * 1.0)
    plan = solve(both, "lp")

    assert plan.vehicle("bus-1").power_kw == pytest.approx([10, 10, 40, 40], abs=1e-6)
    assert plan.totals.energy_cost_mxn == pytest.approx(20 * 1.5 + 80 * 1.0)
    assert plan.totals.demand_cost_mxn == pytest.approx(10 * 10 + 0)
    assert plan.totals.peak_kw == pytest.approx(10)  # the top-level (punta) charge's peak
    assert plan.totals.demand_peaks_kw == pytest.approx([10, 40])
    assert plan.solver.lp_bound_mxn == pytest.approx(plan.totals.objective_mxn)
    assert evaluate(both, plan).ok


def test_each_charge_pays_only_above_its_own_month_peak():
    # Distribution already at 60 kW this month: room for 60 kW in slots 2-3 for free, so no punta at all.
    instance = night(
        price=(1.5, 1.5, 1.0, 1.0),
        demand_charge_mxn_per_kw=10,
        demand_slots=PUNTA,
        additional_demand_charges=[distribution(month_peak_kw=60)],
    )
    plan = solve(instance, "lp")
    assert plan.vehicle("bus-1").power_kw[:2] == pytest.approx([0, 0], abs=1e-6)
    assert plan.totals.demand_cost_mxn == pytest.approx(0)
    assert plan.totals.demand_peaks_kw[0] == pytest.approx(0, abs=1e-6)
    assert plan.totals.demand_peaks_kw[1] <= 60 + 1e-6


def test_a_charges_new_peak_includes_the_base_load():
    # 30 kW of other loads in every slot: the distribution peak is 30 + charging, the 40 kW paid leave 10 kW
    # free per slot; the evaluator charges what goes above 40 kW.
    instance = night(price=(1, 1, 1, 1), base_load_kw=30.0, additional_demand_charges=[distribution(month_peak_kw=40)])
    plan = solve(instance, "lp")
    assert plan.vehicle("bus-1").power_kw == pytest.approx([25, 25, 25, 25], abs=1e-6)
    assert plan.totals.demand_peaks_kw == pytest.approx([55])
    assert plan.totals.demand_cost_mxn == pytest.approx(20 * 15)


def test_legacy_instance_reads_as_one_charge_and_plans_as_the_same_charge_written_the_new_way():
    legacy = json.loads(EXAMPLE.read_text())
    assert "additional_demand_charges" not in legacy
    instance = Instance.from_dict(legacy)
    assert instance.demand_charges() == (
        DemandCharge(
            "demand",
            legacy["demand_charge_mxn_per_kw"],
            tuple(legacy["demand_slots"]) if legacy.get("demand_slots") is not None else None,
            legacy.get("month_peak_kw", 0.0),
        ),
    )
    assert Instance.from_dict(instance.to_dict()) == instance

    moved = dict(legacy, demand_charge_mxn_per_kw=0.0, month_peak_kw=0.0)
    moved["additional_demand_charges"] = [
        {
            "name": "demand",
            "mxn_per_kw": legacy["demand_charge_mxn_per_kw"],
            "slots": legacy.get("demand_slots"),
            "month_peak_kw": legacy.get("month_peak_kw", 0.0),
        }
    ]
    old_way, new_way = solve(instance, "lp"), solve(Instance.from_dict(moved), "lp")
    assert [vp.power_kw for vp in new_way.vehicles] == [vp.power_kw for vp in old_way.vehicles]
    assert new_way.totals.demand_cost_mxn == old_way.totals.demand_cost_mxn
    assert new_way.totals.objective_mxn == old_way.totals.objective_mxn


def test_a_plan_stored_before_per_charge_peaks_still_loads():
    stored = solve(night(demand_charge_mxn_per_kw=10), "lp").to_dict()
    del stored["totals"]["demand_peaks_kw"]
    assert Plan.from_dict(stored).totals.demand_peaks_kw == []


def test_bad_demand_charges_are_reported_with_their_paths():
    data = night().to_dict()
    data["additional_demand_charges"] = [
        {"name": "distribution", "mxn_per_kw": -1, "slots": [True], "month_peak_kw": "high"},
        {"mxn_per_kw": 5},
        {"name": "distribution", "mxn_per_kw": 5},
        "punta",
    ]
    with pytest.raises(InstanceError) as error:
        Instance.from_dict(data)
    assert error.value.errors == [
        "additional_demand_charges[0].mxn_per_kw: must be >= 0, got -1",
        "additional_demand_charges[0].slots: must be null or a list of num_slots=4 booleans",
        "additional_demand_charges[0].month_peak_kw: must be a finite number, got 'high'",
        "additional_demand_charges[1].name: is required",
        "additional_demand_charges[2].name: duplicate demand charge name 'distribution'",
        "additional_demand_charges[3]: must be an object",
    ]


def test_replan_counts_tonights_past_load_in_each_charges_month_peak():
    # Punta charge on slots 2-3, distribution on every slot; the plan drew 30 kW in slot 0 and 70 kW in slot 1.
    instance = night(
        vehicles=[bus("bus-1", required_soc_pct=100)],
        demand_charge_mxn_per_kw=10,
        demand_slots=[False, True, True, False],
        month_peak_kw=5.0,
        additional_demand_charges=[distribution(month_peak_kw=50.0)],
        base_load_kw=[2.0, 1.0, 1.0, 1.0],
    )
    plan = Plan([VehiclePlan("bus-1", "c0-1", 0, 4, [30.0, 70.0, 0.0, 0.0])], PlanTotals(), SolverInfo("hand", "hand"))

    rest = remaining_instance(instance, plan, 2)

    assert rest.demand_slots == (True, False)
    assert rest.month_peak_kw == pytest.approx(71.0)  # slot 1 counts for punta: 70 kW + 1 kW base load
    (charge,) = rest.additional_demand_charges
    assert charge.slots is None and charge.month_peak_kw == pytest.approx(71.0)
    early = remaining_instance(instance, plan, 1)
    assert early.month_peak_kw == pytest.approx(5.0)  # slot 0 is not punta
    assert early.additional_demand_charges[0].month_peak_kw == pytest.approx(50.0)  # 32 kW < 50 kW paid


# ---- properties on random nights with two charges ----------------------------------------------------------


@st.composite
def two_charge_nights(draw) -> Instance:
    instance = draw(nights())
    n = instance.num_slots
    second = DemandCharge(
        name="distribution",
        mxn_per_kw=draw(st.sampled_from([3.0, 40.0])),
        slots=draw(st.none() | st.lists(st.booleans(), min_size=n, max_size=n).map(tuple)),
        month_peak_kw=draw(st.sampled_from([0.0, 25.0, 60.0])),
    )
    base_load = draw(st.none() | st.lists(st.sampled_from([0.0, 10.0, 35.0]), min_size=n, max_size=n).map(tuple))
    return dataclasses.replace(instance, additional_demand_charges=(second,), base_load_kw=base_load)


@PROPERTY_SETTINGS
@given(two_charge_nights())
def test_the_evaluator_prices_the_lp_optimum_at_the_lps_objective(instance):
    va, windows, limits = relaxation_parts(instance)
    model = LpModel()
    core = build_core(instance, va, windows, model)
    limits(core, model)
    solution = model.solve()
    assert solution.optimal
    power = power_matrix(core, windows, solution.x, len(instance.vehicles), instance.num_slots)
    plan = Plan(
        [VehiclePlan(v.id, None, None, None, power[i].tolist()) for i, v in enumerate(instance.vehicles)],
        PlanTotals(),
        SolverInfo("lp", "relaxed"),
    )
    totals = evaluate(instance, plan).totals
    scale = max(1.0, abs(solution.objective))
    assert totals.objective_mxn == pytest.approx(solution.objective, abs=1e-6 * scale)
    # The demand part alone: each charge's peak column prices what the evaluator measures.
    charges = instance.demand_charges()
    lp_demand_mxn = sum(
        c.mxn_per_kw * (solution.x[col] - c.month_peak_kw)
        for c, col in zip(charges, core.peak_cols, strict=True)
        if col is not None
    )
    assert totals.demand_cost_mxn == pytest.approx(lp_demand_mxn, abs=1e-6 * scale)
    assert len(totals.demand_peaks_kw) == len(charges)


@PROPERTY_SETTINGS
@given(two_charge_nights(), st.integers(0, 2**32 - 1))
def test_sifting_with_two_charges_reaches_the_full_lp_optimum(instance, seed):
    va, windows, limits = relaxation_parts(instance)
    start = np.random.default_rng(seed).random((len(instance.vehicles), instance.num_slots)) < 0.3
    result = solve_sifted(instance, va, windows, start, limits)
    assert result.solution.optimal
    model = LpModel()
    core = build_core(instance, va, windows, model)
    limits(core, model)
    full = model.solve()
    assert full.optimal
    assert result.solution.objective == pytest.approx(full.objective, abs=1e-6 * max(1.0, abs(full.objective)))


@PROPERTY_SETTINGS
@given(two_charge_nights())
def test_plans_with_two_charges_are_feasible_and_never_beat_the_bound(instance):
    plan = solve(instance, "auto")
    assert evaluate(instance, plan).ok
    assert plan.totals.objective_mxn >= plan.solver.lp_bound_mxn - 1e-6 * max(1.0, abs(plan.solver.lp_bound_mxn))


# ---- the rule as one object: DemandCharges -------------------------------------------------------------------


def test_demand_charges_bill_a_load_charge_by_charge():
    capacity = DemandCharge("capacity", 10.0, (True, True, False, False), month_peak_kw=30.0, periods=("punta",))
    charges = DemandCharges.of([DemandCharge("distribution", 20.0, None, month_peak_kw=40.0), capacity])

    assert charges.main == capacity  # the windowed charge leads, whatever order the tariff listed them in
    load_kw = [50.0, 20.0, 45.0, 10.0]
    lines = {line.name: line for line in charges.bill(load_kw)}
    # Capacity: 50 kW in punta, 30 paid -> 20 new kW at 10. Distribution: 50 kW anywhere, 40 paid -> 10 at 20.
    assert (lines["capacity"].added_kw, lines["capacity"].cost_mxn) == (20.0, 200.0)
    assert (lines["distribution"].peak_after_kw, lines["distribution"].cost_mxn) == (50.0, 200.0)
    assert charges.cost_mxn(load_kw) == 400.0
    assert charges.cost_mxn([10.0] * 4) == 0.0  # under both month peaks: nothing new to pay
    assert charges.month_peaks_after(charges.peaks_kw(load_kw)) == {"capacity": 50.0, "distribution": 50.0}
    assert charges.with_month_peaks({"distribution": 60.0}).cost_mxn(load_kw) == 200.0


def test_demand_charges_go_into_an_instance_and_come_back_from_its_json():
    charges = DemandCharges.of(
        [
            DemandCharge("distribution", 20.0, None, month_peak_kw=40.0),
            DemandCharge("capacity", 10.0, tuple(PUNTA), month_peak_kw=30.0, periods=("punta",)),
        ]
    )
    instance = dataclasses.replace(night(), **charges.instance_fields())

    assert instance.demand_charges() == charges
    assert Instance.from_dict(instance.to_dict()) == instance
    assert demand_charges_from_dict(instance.to_dict()) == charges


def test_an_instance_stored_before_charges_were_named_reads_back_with_the_names_given():
    legacy = night(demand_charge_mxn_per_kw=10, demand_slots=PUNTA, additional_demand_charges=[distribution()])
    stored = legacy.to_dict()
    for key in ("demand_charge_name", "demand_periods"):
        del stored[key]

    charges = demand_charges_from_dict(stored)
    assert charges.names() == ["demand", "distribution"]
    assert charges.named(["capacity", "distribution"]).names() == ["capacity", "distribution"]
    assert charges.named([]).names() == ["demand", "distribution"]  # no names known: kept as stored
    with pytest.raises(InstanceError, match="additional_demand_charges"):
        demand_charges_from_dict({**stored, "additional_demand_charges": "distribution"})
