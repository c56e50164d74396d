"""Unscheduled arrivals (issue 14, point 7): re-planning at each arrival with future arrivals unknown.

The story: a site where cars that stay all day arrive at 07:00 and cars that stay two hours arrive at
11:00, energy cheap from 11:00 to 14:00. Re-planning with only the cars present, the 07:00 cars are
planned into the cheap hours; when the 11:00 cars arrive, the morning hours that could have carried
the 07:00 cars' energy are gone, and someone leaves short. Keeping headroom for the arrivals the
site's history expects charges the 07:00 cars earlier and serves (nearly) everyone, like hindsight.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from charging.optimizer import Charger, Connector, Instance, Plan, Vehicle, WearWeights, evaluate, solve
from charging.optimizer.baselines import least_laxity_first
from charging.optimizer.online import (
    DEFAULT_SCALE,
    EXPECTED_PREFIX,
    ArrivalProfile,
    ExpectedGroup,
    PastSession,
    learn_arrival_profile,
    simulate_online,
    solve_with_expected_arrivals,
    with_expected_arrivals,
)

ZONE = dt.timezone(dt.timedelta(hours=-7))
MONDAY = dt.datetime(2026, 6, 1, tzinfo=ZONE)
SLOT_MINUTES = 15
PER_HOUR = 60 // SLOT_MINUTES
STATIONS = 8
SITE_LIMIT_KW = 20.0
CAR_KW = 7.0


def _day_sessions(rng: np.random.Generator, day: dt.datetime) -> list[tuple[dt.datetime, dt.datetime, float]]:
    """(arrival, departure, kWh): three cars arriving 07:00-08:00 and leaving at 14:00, three arriving 11:00-12:00
    for two hours, each at a random quarter-hour of its hour."""

    def at(hour: int) -> dt.datetime:
        return day + dt.timedelta(hours=hour, minutes=15 * int(rng.integers(0, 4)))

    early = [(a, day + dt.timedelta(hours=14), float(rng.uniform(18, 22))) for a in (at(7) for _ in range(3))]
    late = [(a, a + dt.timedelta(hours=2), float(rng.uniform(11, 13))) for a in (at(11) for _ in range(3))]
    return early + late


def _history(seed: int, weeks: int = 4) -> list[PastSession]:
    rng = np.random.default_rng(seed)
    start = MONDAY - dt.timedelta(weeks=weeks)
    return [
        PastSession(a, d, kwh, CAR_KW)
        for day in range(7 * weeks)
        if (start + dt.timedelta(days=day)).weekday() < 5
        for a, d, kwh in _day_sessions(rng, start + dt.timedelta(days=day))
    ]


def _week(seed: int, days: int = 5) -> Instance:
    """Monday to Friday, each car on its own station (in turn), energy cheap 11:00-14:00."""
    rng = np.random.default_rng(seed)
    num_slots = days * 24 * PER_HOUR
    vehicles = []
    for day in range(days):
        for k, (a, d, kwh) in enumerate(_day_sessions(rng, MONDAY + dt.timedelta(days=day))):
            vehicles.append(
                Vehicle(
                    id=f"d{day}-{k}",
                    arrival_slot=int((a - MONDAY).total_seconds() // (SLOT_MINUTES * 60)),
                    departure_slot=int((d - MONDAY).total_seconds() // (SLOT_MINUTES * 60)),
                    arrival_soc_pct=0.0,
                    required_soc_pct=100.0,
                    usable_capacity_kwh=kwh,
                    max_charge_kw=CAR_KW,
                    compatible_connector_ids=(f"st{k}",),
                )
            )
    hour = np.arange(num_slots) // PER_HOUR % 24
    return Instance(
        horizon_start=MONDAY,
        num_slots=num_slots,
        slot_minutes=SLOT_MINUTES,
        site_limit_kw=(SITE_LIMIT_KW,) * num_slots,
        energy_price_mxn_per_kwh=tuple(np.where((hour >= 11) & (hour < 14), 1.0, 3.0).tolist()),
        chargers=tuple(Charger(f"st{k}", "AC", CAR_KW, (Connector(f"st{k}", CAR_KW),)) for k in range(STATIONS)),
        vehicles=tuple(vehicles),
        charging_efficiency=1.0,
        wear=WearWeights(high_soc_mxn_per_kwh_h=0.0, high_c_rate_mxn_per_kwh=0.0),
    )


def test_arrival_profile_counts_arrivals_per_weekday_and_hour():
    profile = learn_arrival_profile(_history(seed=1, weeks=4), ZONE)
    (late,) = profile.at(MONDAY + dt.timedelta(hours=11, minutes=30))
    assert late.arrivals == pytest.approx(3.0)
    assert 11 <= late.energy_kwh <= 13 and late.stay_hours == pytest.approx(2.0) and late.max_kw == CAR_KW
    (early,) = profile.at(MONDAY + dt.timedelta(hours=7))
    assert early.arrivals == pytest.approx(3.0) and 6 < early.stay_hours <= 7
    assert profile.at(MONDAY + dt.timedelta(hours=9)) == ()
    assert profile.at(MONDAY + dt.timedelta(days=5, hours=11)) == ()  # Saturday: nobody
    assert profile.sessions == 4 * 5 * 6


def test_expected_vehicles_take_site_headroom_never_a_real_connector():
    week = _week(seed=2, days=1)
    profile = learn_arrival_profile(_history(seed=1), ZONE)
    # The remainder at 08:00: the three morning cars only; the 11:00 cars not yet known.
    now = 8 * PER_HOUR
    morning = [v for v in week.vehicles if v.arrival_slot < now]
    rest = replace(
        week,
        horizon_start=MONDAY + dt.timedelta(hours=8),
        num_slots=week.num_slots - now,
        site_limit_kw=week.site_limit_kw[now:],
        energy_price_mxn_per_kwh=week.energy_price_mxn_per_kwh[now:],
        vehicles=tuple(replace(v, arrival_slot=0, departure_slot=v.departure_slot - now) for v in morning),
    )
    padded = with_expected_arrivals(rest, profile)
    expected = [v for v in padded.vehicles if v.id.startswith(EXPECTED_PREFIX)]
    at_eleven = [v for v in expected if v.arrival_slot == 3 * PER_HOUR]
    # three cars of ~12 kWh, a quarter more for safety (DEFAULT_SCALE)
    assert len(at_eleven) == 1 and at_eleven[0].usable_capacity_kwh == pytest.approx(DEFAULT_SCALE * 3 * 12, rel=0.1)
    assert all(v.priority < min(m.priority for m in morning) for v in expected)
    real_connectors = {co.id for _ch, co in rest.connectors()}
    for v in padded.vehicles:
        used = {co.id for _ch, co in padded.compatible_connectors(v)}
        assert used <= real_connectors if not v.id.startswith(EXPECTED_PREFIX) else used == {v.id}

    plan = solve_with_expected_arrivals(rest, profile)
    assert [vp.vehicle_id for vp in plan.vehicles] == [v.id for v in morning]
    assert evaluate(rest, plan).ok and plan.totals.shortfall_kwh == pytest.approx(0, abs=1e-6)
    assert not plan.solver.optimal and "expected arrivals" in plan.solver.status
    # Headroom: the morning cars charge ~36 kWh before 11:00, where the plain plan waits for the cheap hours.
    before_eleven = slice(0, 3 * PER_HOUR)
    reserved_kwh = sum(sum(vp.power_kw[before_eleven]) for vp in plan.vehicles) / PER_HOUR
    plain_kwh = sum(sum(vp.power_kw[before_eleven]) for vp in solve(rest, "lp").vehicles) / PER_HOUR
    assert plain_kwh < 5 and reserved_kwh > plain_kwh + 25


def test_reserve_policy_delivers_what_plain_replanning_leaves_short():
    week = _week(seed=3)
    profile = learn_arrival_profile(_history(seed=4), ZONE)
    hindsight = solve(week, "lp")
    plain = simulate_online(week, lambda rest: solve(rest, "lp"), name="plain")
    reserve = simulate_online(week, lambda rest: solve_with_expected_arrivals(rest, profile), name="reserve")
    llf = least_laxity_first(week)
    for plan in (hindsight, plain.plan, reserve.plan, llf):
        assert evaluate(week, plan).ok
    delivered = {
        name: plan.totals.energy_kwh
        for name, plan in (("hindsight", hindsight), ("plain", plain.plan), ("reserve", reserve.plan))
    }
    assert hindsight.totals.shortfall_kwh == pytest.approx(0, abs=1e-6)
    # Plain re-planning leaves over a third of the two-hour cars' energy short (~170 of 476 kWh); the reserve
    # (a quarter above the mean, the default) delivers nearly what hindsight does, at ~10 % more cost here:
    # energy is three times dearer outside the cheap hours, and the reserve sometimes buys it for arrivals
    # that turn out smaller than expected.
    assert delivered["plain"] < delivered["hindsight"] - 100
    assert delivered["reserve"] > delivered["plain"] + 100
    assert delivered["reserve"] >= 0.99 * delivered["hindsight"]
    assert reserve.plan.totals.energy_cost_mxn <= 1.12 * hindsight.totals.energy_cost_mxn
    # Least laxity first ignores prices: it charges on arrival, at the dear price.
    assert llf.totals.energy_cost_mxn > reserve.plan.totals.energy_cost_mxn
    assert len(reserve.replan_seconds) == len({v.arrival_slot for v in week.vehicles})


def test_headroom_kept_for_arrivals_that_do_not_come_is_used_when_replanning_every_slot():
    """The reserve keeps slots 1-2 for an arrival the profile expects at 00:15; nobody comes. Re-planning only at
    arrivals carries out the plan made at slot 0 until the next arrival (slot 4): slots 1-2 stay idle, car A gets
    slots 0 and 3 only, and at slot 4 a car needing the whole site for its stay (B) arrives: someone leaves 5 kWh
    short. Re-planning every slot (a slot without the expected arrival is news too) gives A those slots."""
    site_kw, num_slots = 10.0, 8

    def car(vid: str, arrival: int) -> Vehicle:
        # 10 kWh at 10 kW: four of the 15-min slots at the whole site's limit
        return Vehicle(vid, arrival, num_slots, 0.0, 100.0, 10.0, site_kw, compatible_connector_ids=(vid,))

    night = Instance(
        horizon_start=MONDAY,
        num_slots=num_slots,
        slot_minutes=SLOT_MINUTES,
        site_limit_kw=(site_kw,) * num_slots,
        energy_price_mxn_per_kwh=tuple(1.0 + 0.1 * t for t in range(num_slots)),  # earlier is cheaper
        chargers=tuple(Charger(c, "AC", site_kw, (Connector(c, site_kw),)) for c in ("A", "B")),
        vehicles=(car("A", 0), car("B", 4)),
        charging_efficiency=1.0,
        wear=WearWeights(high_soc_mxn_per_kwh_h=0.0, high_c_rate_mxn_per_kwh=0.0),
    )
    # Four arrivals expected between 00:00 and 01:00 (half an hour, 2.5 kWh each at 10 kW); none after.
    expected = ExpectedGroup(arrivals=4.0, energy_kwh=2.5, stay_hours=0.5, max_kw=site_kw)
    profile = ArrivalProfile(ZONE, tuple(tuple((expected,) if h == 0 else () for h in range(24)) for _ in range(7)))

    def policy(rest: Instance) -> Plan:
        return solve_with_expected_arrivals(rest, profile, scale=1.0)

    assert solve(night, "lp").totals.shortfall_kwh == pytest.approx(0, abs=1e-6)  # hindsight: A in 0-3, B in 4-7
    at_arrivals = simulate_online(night, policy)
    every_slot = simulate_online(night, policy, every_slot=True)
    for run in (at_arrivals, every_slot):
        assert evaluate(night, run.plan).ok
    assert at_arrivals.plan.totals.shortfall_kwh == pytest.approx(5.0, abs=1e-3)
    assert sum(at_arrivals.plan.vehicles[0].power_kw[1:3]) == pytest.approx(0, abs=1e-6)  # the kept headroom, idle
    assert every_slot.plan.totals.shortfall_kwh == pytest.approx(0, abs=1e-6)
    assert len(at_arrivals.replan_seconds) == 2 and len(every_slot.replan_seconds) == num_slots
