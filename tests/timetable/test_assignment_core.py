"""The assignment core: energy-feasible, prefers healthy packs for long blocks, keeps pins, explains gaps."""

from __future__ import annotations

import pytest

from timetable.assignment import Bus, Duty, Pin, assign, naive_assign


def bus(vid: str, usable: float, soh: float = 100.0, soc_share: float = 1.0, depot: str = "H") -> Bus:
    return Bus(
        vehicle_id=vid,
        depot=depot,
        usable_kwh=usable,
        pull_out_kwh=usable * soc_share,
        reserve_kwh=0.1 * usable,
        soh_pct=soh,
    )


def stranded(assigned: dict[str, str], buses: list[Bus], duties: list[Duty]) -> list[str]:
    left = {b.vehicle_id: b.pull_out_kwh - b.reserve_kwh for b in buses}
    energy = {d.block_id: d.energy_kwh for d in duties}
    for block, vehicle in assigned.items():
        left[vehicle] -= energy[block]
    return sorted(v for v, kwh in left.items() if kwh < 0)


def test_naive_first_free_bus_strands_the_worn_pack_and_the_optimiser_does_not():
    # Fleet order puts the worn bus first; the long block leaves first.
    buses = [bus("B1-worn", usable=240.0, soh=80.0), bus("B2", usable=300.0), bus("B3", usable=300.0)]
    duties = [
        Duty("long", "H", 300, 1200, 250.0),
        Duty("mid", "H", 330, 1100, 180.0),
        Duty("short", "H", 360, 900, 120.0),
    ]
    naive = naive_assign(buses, duties)
    assert naive["long"] == "B1-worn"
    assert stranded(naive, buses, duties) == ["B1-worn"]

    result = assign(buses, duties)
    assert result.status.startswith("optimal")
    assert set(result.assigned) == {"long", "mid", "short"}
    assert stranded(result.assigned, buses, duties) == []
    assert result.assigned["short"] == "B1-worn"  # the worn pack gets the shortest block


def test_two_short_blocks_share_a_bus_when_they_do_not_overlap_and_fit_its_energy():
    buses = [bus("B1", usable=300.0)]
    duties = [Duty("am", "H", 360, 540, 100.0), Duty("pm", "H", 900, 1100, 100.0), Duty("mid", "H", 500, 880, 50.0)]
    result = assign(buses, duties)
    assert result.assigned == {"am": "B1", "pm": "B1"}
    assert "overlapping" in result.uncovered["mid"]


def test_pins_are_kept_and_uncovered_blocks_say_why():
    buses = [bus("B1", usable=300.0), bus("B2", usable=300.0, soc_share=0.3)]
    duties = [Duty("a", "H", 300, 900, 200.0), Duty("b", "H", 310, 950, 400.0), Duty("c", "X", 300, 900, 10.0)]
    result = assign(buses, duties, pins=[Pin("a", "B2")])
    assert result.assigned["a"] == "B2"  # kept although B2 has not the energy: a warning says so
    assert any("B2" in w for w in result.warnings)
    assert "needs 400 kWh" in result.uncovered["b"]
    assert result.uncovered["c"] == "no bus at this depot"


def test_a_bus_that_cannot_be_charged_at_its_depot_gets_nothing():
    buses = [Bus("B1", "H", 300, 300, 30, can_charge=False, note="B1: no compatible connector")]
    result = assign(buses, [Duty("a", "H", 300, 900, 50.0)])
    assert result.assigned == {}
    assert "no compatible connector" in result.uncovered["a"]


def brute_force_objective(buses: list[Bus], duties: list[Duty], turnaround: float = 30.0) -> float:
    """The objective of every plan (each block to a bus or to nobody), the least that is feasible."""
    import itertools

    from timetable.assignment import COVER_WEIGHT, SPREAD_DOD, SPREAD_WEIGHT, budget_kwh, wear_weight

    best = 0.0
    for choice in itertools.product(range(len(buses) + 1), repeat=len(duties)):
        total, feasible = 0.0, True
        for v, bus in enumerate(buses):
            mine = [d for d, c in zip(duties, choice, strict=True) if c == v]
            if not mine:
                continue
            energy = sum(d.energy_kwh for d in mine)
            ordered = sorted(mine, key=lambda d: d.start_min)
            overlap = any(b.start_min < a.end_min + turnaround for a, b in zip(ordered, ordered[1:], strict=False))
            if overlap or energy > budget_kwh(bus) + 1e-9:
                feasible = False
                break
            total += sum(-COVER_WEIGHT + d.energy_kwh * wear_weight(bus) for d in mine)
            total += SPREAD_WEIGHT * max(0.0, energy / bus.usable_kwh - SPREAD_DOD)
        if feasible:
            best = min(best, total)
    return best


def test_assign_matches_brute_force_on_random_small_days():
    import random

    rng = random.Random(18)
    multi_days = 0
    for _ in range(25):
        buses = [
            bus(f"B{v}", usable=rng.uniform(150, 300), soh=rng.uniform(75, 100), soc_share=rng.uniform(0.5, 1.0))
            for v in range(3)
        ]
        duties = []
        for k in range(5):
            start = rng.choice((rng.uniform(300, 420), rng.uniform(900, 1000), rng.uniform(300, 600)))
            duties.append(Duty(f"D{k}", "H", start, start + rng.uniform(120, 700), rng.uniform(20, 200)))
        result = assign(buses, duties)
        multi_days += result.method != "assignment"
        assert result.objective == pytest.approx(brute_force_objective(buses, duties), abs=0.06)
        assert result.status.startswith("optimal")
        assert stranded(result.assigned, buses, duties) == []
    assert multi_days > 5  # the MIP path was exercised, not only the Hungarian one


def test_out_of_time_the_answer_is_a_feasible_plan_and_claims_no_optimality():
    import random

    rng = random.Random(5)
    buses = [bus(f"B{v}", usable=rng.uniform(200, 300), soh=rng.uniform(78, 100)) for v in range(40)]
    duties = [Duty(f"L{k}", "H", 300 + k, 1100 + k, rng.uniform(120, 230)) for k in range(25)]
    duties += [Duty(f"AM{k}", "H", 330 + k, 600, rng.uniform(40, 90)) for k in range(10)]
    duties += [Duty(f"PM{k}", "H", 930 + k, 1200, rng.uniform(40, 90)) for k in range(10)]
    hurried = assign(buses, duties, time_limit_s=1e-4)
    assert not hurried.status.startswith("optimal") and hurried.method == "column generation + MIP"
    assert stranded(hurried.assigned, buses, duties) == []
    settled = assign(buses, duties, time_limit_s=60)
    assert settled.bound is not None and settled.objective is not None
    assert settled.objective <= hurried.objective + 1e-6  # more time never gives a worse plan
    assert settled.bound <= settled.objective + 1e-6
    # 40 buses, 45 blocks: one block per bus covers 40; the hurried answer's repair (a short block moved onto a
    # bus with the other peak's, its bus given a long one) and the settled MIP both cover all 45.
    assert len(hurried.assigned) == 45 and len(settled.assigned) == 45
