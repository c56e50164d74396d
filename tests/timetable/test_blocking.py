"""The blocking core against brute force on small instances, and its bound on a larger one."""

from __future__ import annotations

import itertools
import random

import pytest

from timetable.blocking import Rules, Trip, chain_energy_kwh, chain_trips, links

STOPS = ("A", "B", "C")
STOP_KM = {("A", "B"): 4.0, ("A", "C"): 9.0, ("B", "C"): 6.0}


def deadhead(a: str, b: str) -> tuple[float, float]:
    if a == b:
        return 0.0, 0.0
    km = STOP_KM[tuple(sorted((a, b)))]
    return km * 2.0, km * 1.2  # 30 km/h, 1.2 kWh/km


def random_trips(rng: random.Random, n: int) -> list[Trip]:
    trips = []
    for k in range(n):
        start = rng.randrange(300, 900, 5)
        length = rng.randrange(20, 120, 5)
        trips.append(
            Trip(
                trip_id=f"t{k}",
                start_min=start,
                end_min=start + length,
                start_stop=rng.choice(STOPS),
                end_stop=rng.choice(STOPS),
                energy_kwh=length * 0.5,
                pull_out_kwh=rng.choice((2.0, 5.0)),
                pull_in_kwh=rng.choice((2.0, 5.0)),
            )
        )
    return trips


def brute_force_count(trips: list[Trip], rules: Rules) -> int:
    """Fewest blocks by trying every choice of successor for every trip."""
    edges = links(trips, rules, deadhead)
    link_kwh = {(i, j): kwh for i, j, kwh in edges}
    options = [[None] + [j for i2, j, _ in edges if i2 == i] for i in range(len(trips))]
    best = len(trips)
    for choice in itertools.product(*options):
        chosen = [j for j in choice if j is not None]
        if len(set(chosen)) != len(chosen):
            continue
        successor = {i: j for i, j in enumerate(choice) if j is not None}
        heads = [i for i in range(len(trips)) if i not in set(chosen)]
        chains = []
        for head in heads:
            chain = [head]
            while chain[-1] in successor:
                chain.append(successor[chain[-1]])
            chains.append(chain)
        if sum(len(c) for c in chains) != len(trips):
            continue  # a cycle (impossible in time order, kept for safety)
        if rules.max_block_kwh is not None and any(
            chain_energy_kwh(c, trips, link_kwh) > rules.max_block_kwh + 1e-9 for c in chains
        ):
            continue
        best = min(best, len(chains))
    return best


def assert_valid(result, trips: list[Trip], rules: Rules) -> None:
    by_id = {t.trip_id: k for k, t in enumerate(trips)}
    covered = [t for block in result.blocks for t in block]
    assert sorted(covered) == sorted(t.trip_id for t in trips)  # every trip exactly once
    allowed = {(i, j): kwh for i, j, kwh in links(trips, rules, deadhead)}
    for block in result.blocks:
        ks = [by_id[t] for t in block]
        assert all((a, b) in allowed for a, b in zip(ks, ks[1:], strict=False))
        if rules.max_block_kwh is not None and not set(block) & set(result.over_limit):
            assert chain_energy_kwh(ks, trips, allowed) <= rules.max_block_kwh + 1e-6


@pytest.mark.parametrize("seed", range(12))
def test_fewest_blocks_equal_brute_force_without_energy_limit(seed):
    trips = random_trips(random.Random(seed), 7)
    rules = Rules(min_layover_min=5, max_wait_min=240)
    result = chain_trips(trips, rules, deadhead)
    assert_valid(result, trips, rules)
    assert result.count == brute_force_count(trips, rules)
    assert result.optimal and result.count == result.lower_bound


@pytest.mark.parametrize("seed", range(12))
def test_fewest_blocks_equal_brute_force_with_an_energy_limit(seed):
    trips = random_trips(random.Random(100 + seed), 7)
    rules = Rules(min_layover_min=5, max_wait_min=240, max_block_kwh=110.0)
    result = chain_trips(trips, rules, deadhead)
    assert_valid(result, trips, rules)
    assert result.count == brute_force_count(trips, rules)
    assert result.lower_bound <= result.count
    assert result.optimal  # the MILP proves it on instances this small


def test_energy_limit_forces_more_blocks_than_the_matching_and_says_how():
    # Four back-to-back 60-minute trips: one block without a limit, two with a limit of two trips' energy.
    trips = [
        Trip(f"t{k}", 360 + 70 * k, 420 + 70 * k, "A", "A", energy_kwh=40.0, pull_out_kwh=1.0, pull_in_kwh=1.0)
        for k in range(4)
    ]
    unlimited = chain_trips(trips, Rules(), deadhead)
    assert unlimited.count == 1 and unlimited.method == "matching"
    limited = chain_trips(trips, Rules(max_block_kwh=85.0), deadhead)
    assert limited.count == 2 and limited.method == "milp" and limited.optimal


def test_a_trip_longer_than_a_charge_is_reported_and_runs_alone():
    trips = [Trip("long", 300, 900, "A", "A", energy_kwh=500.0), Trip("short", 950, 1000, "A", "A", energy_kwh=10.0)]
    result = chain_trips(trips, Rules(max_block_kwh=300.0), deadhead)
    assert result.over_limit == ("long",)
    assert ("long",) in result.blocks


def test_large_instance_reports_its_count_against_the_bound():
    trips = random_trips(random.Random(7), 400)
    rules = Rules(max_wait_min=120, max_block_kwh=160.0, time_limit_s=5)
    result = chain_trips(trips, rules, deadhead)
    assert_valid(result, trips, rules)
    assert result.lower_bound <= result.count
    # "optimal" is claimed only with a proof: the count meets the bound, or HiGHS proved the MILP.
    assert not result.optimal or result.count == result.lower_bound or result.method == "milp"
    assert result.method == "milp" or result.method.endswith("+joined")


def test_the_energy_priced_bound_never_exceeds_brute_force_and_beats_the_plain_bounds():
    """The Lagrangian bound (docs/timetable.md) is a lower bound: checked against the brute-force optimum; and
    it is worth having: on some instances it is above both the matching bound and sum(energy) / limit."""
    import math

    from timetable.blocking import _energy_priced, _matching

    stronger = 0
    for seed in range(30):
        trips = random_trips(random.Random(200 + seed), 7)
        rules = Rules(min_layover_min=5, max_wait_min=240, max_block_kwh=90.0)
        edges = links(trips, rules, deadhead)
        over = [k for k, t in enumerate(trips) if t.pull_out_kwh + t.energy_kwh + t.pull_in_kwh > 90.0]
        edges = [e for e in edges if e[0] not in over and e[1] not in over]
        usable = [k for k in range(len(trips)) if k not in over]
        link_kwh = {(i, j): kwh for i, j, kwh in edges}
        value, _plan = _energy_priced(trips, edges, 90.0, usable, link_kwh)
        bound = math.ceil(value - 1e-6) + len(over)
        optimum = brute_force_count(trips, rules)
        assert bound <= optimum
        plain = max(len(trips) - len(_matching(len(trips), edges)), math.ceil(sum(t.energy_kwh for t in trips) / 90))
        stronger += bound > plain
    assert stronger > 0
