"""Unscheduled arrivals: plans that keep headroom for vehicles not yet known, and an online simulator.

A re-plan knows only the vehicles already there. Left alone, it pushes their charging into the
cheapest slots of their stay, and the vehicles that turn up later (a visiting bus, a mini EV on an
outlet, a late bus) find those slots taken and the earlier, emptier ones gone: they leave short.
The policy here adds the *expected* arrivals to the instance before solving:

- ``learn_arrival_profile``: from the site's own session history (arrival, departure, energy), the
  mean number of arrivals per weekday and local hour, with the mean energy, stay and power of those
  sessions (an empty weekday-hour falls back to the same hour on any day, then to every session).
- ``with_expected_arrivals``: for every hour ahead (``lookahead_hours``), one aggregate *expected
  vehicle* with the hour's expected energy (arrivals x mean energy x ``scale``), power (arrivals x
  mean power) and mean stay, on a virtual connector of its own (so it takes site and demand
  headroom, never a real connector), at a priority below every real vehicle: the LP serves real
  vehicles first, and among plans that serve them, prefers one that leaves room for the expected
  ones, i.e. charges known vehicles earlier when later hours will be busy.
- ``solve_with_expected_arrivals``: solve that instance and return the plan of the real vehicles
  only, priced by the evaluator on the real instance.
- ``simulate_online``: replay a known night or week as if arrivals were unknown: re-plan at every
  arrival slot with only the vehicles arrived so far, carry out the plan until the next arrival;
  the result is one plan over the whole horizon, evaluated like any other (benchmark and tests).
  With ``every_slot``, re-plan at every slot a vehicle is there: a slot where the expected arrivals
  did not come is news too. Re-planning only at arrivals wastes the headroom a plan kept for slots
  1, 2, ... whenever nobody arrives then: it is carried out with that headroom idle until the next
  arrival (on the ACN JPL week, ~12 kWh of a saturated Monday; docs/optimizer.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo

import numpy as np

from .evaluate import finalize
from .instance import CONNECTOR_KINDS, Charger, Connector, Instance, Vehicle
from .plan import Plan, PlanTotals, SolverInfo, VehiclePlan
from .reasons import explain_shortfalls
from .replan import remaining_instance
from .solve import NIGHTLY_SEARCH, SearchLimits, solve

# Ids of the expected vehicles and of their virtual connectors and chargers.
EXPECTED_PREFIX = "expected:"
DEFAULT_LOOKAHEAD_HOURS = 24.0
# Reserve a quarter more than the mean expected energy: arrivals vary from day to day, and reserving too
# little costs undelivered energy while reserving too much costs only a little money (ACN-Data, re-planned
# every slot: JPL's last history week 4.3 kWh short of hindsight at 1.0, none at 1.25; docs/optimizer.md).
DEFAULT_SCALE = 1.25
# Hours with fewer expected battery kWh than this get no expected vehicle (keeps the LP small).
MIN_EXPECTED_KWH = 0.5

# Sessions are grouped by stay (upper bounds in hours, the last group open): long and short stays need
# different headroom (a car leaving at noon cannot wait for the evening's cheap energy).
STAY_GROUP_BOUNDS_H = (3.0, 6.0, 9.0, 12.0)


@dataclass(frozen=True)
class PastSession:
    """One charge from the site's history: when it arrived and left, grid kWh, its highest kW if known."""

    arrived_at: datetime  # timezone-aware
    departed_at: datetime
    energy_kwh: float
    max_kw: float | None = None


@dataclass(frozen=True)
class ExpectedGroup:
    """Arrivals of one weekday-hour with stays in one group: how many per such hour, and one's mean figures."""

    arrivals: float
    energy_kwh: float
    stay_hours: float
    max_kw: float  # 0 = unknown


@dataclass(frozen=True)
class ArrivalProfile:
    """Expected arrivals of vehicles the plan does not know, per weekday (0 = Monday) and local hour of ``zone``."""

    zone: tzinfo
    groups: tuple[tuple[tuple[ExpectedGroup, ...], ...], ...]  # [weekday][hour] -> groups by stay
    sessions: int = 0

    def at(self, moment: datetime) -> tuple[ExpectedGroup, ...]:
        """The groups expected in the hour containing ``moment``."""
        local = moment.astimezone(self.zone)
        return self.groups[local.weekday()][local.hour]


def learn_arrival_profile(sessions: Iterable[PastSession], zone: tzinfo) -> ArrivalProfile:
    """Mean arrivals per weekday, hour and stay group over the days the history spans (first to last arrival)."""
    rows = [s for s in sessions if s.departed_at > s.arrived_at]
    cells: dict[tuple[int, int, int], list[PastSession]] = {}
    days_of_weekday = [0] * 7
    if rows:
        local = [s.arrived_at.astimezone(zone) for s in rows]
        day, last = min(local).date(), max(local).date()
        while day <= last:
            days_of_weekday[day.weekday()] += 1
            day += timedelta(days=1)
        for session, at in zip(rows, local, strict=True):
            stay_h = (session.departed_at - session.arrived_at).total_seconds() / 3600.0
            stay_group = sum(stay_h > bound for bound in STAY_GROUP_BOUNDS_H)
            cells.setdefault((at.weekday(), at.hour, stay_group), []).append(session)

    def group(d: int, members: list[PastSession]) -> ExpectedGroup:
        powers = [s.max_kw for s in members if s.max_kw is not None and s.max_kw > 0]
        return ExpectedGroup(
            arrivals=len(members) / max(days_of_weekday[d], 1),
            energy_kwh=sum(s.energy_kwh for s in members) / len(members),
            stay_hours=sum((s.departed_at - s.arrived_at).total_seconds() for s in members) / 3600.0 / len(members),
            max_kw=sum(powers) / len(powers) if powers else 0.0,
        )

    groups = tuple(
        tuple(
            tuple(group(d, cells[(d, h, g)]) for g in range(len(STAY_GROUP_BOUNDS_H) + 1) if (d, h, g) in cells)
            for h in range(24)
        )
        for d in range(7)
    )
    return ArrivalProfile(zone=zone, groups=groups, sessions=len(rows))


def with_expected_arrivals(
    instance: Instance,
    profile: ArrivalProfile,
    *,
    lookahead_hours: float = DEFAULT_LOOKAHEAD_HOURS,
    scale: float = DEFAULT_SCALE,
    expected_penalty_mxn_per_kwh: float | None = None,
) -> Instance:
    """The instance plus one aggregate expected vehicle per hour ahead (see the module docstring).

    Slot 0 is "now": its arrivals are known, so expected ones start at slot 1. The first hour counts
    only its remaining slots; an expected vehicle whose stay runs past the horizon keeps the share of
    its energy that falls inside. Real vehicles that could use any connector are restricted to the
    real ones. ``scale`` multiplies the expected energy (1 = the mean; more = a safer reserve).
    ``expected_penalty_mxn_per_kwh`` sets the expected vehicles' shortfall penalty (default: the
    instance's rule for the lowest priority level).
    """
    per_hour = 60 // instance.slot_minutes
    end = min(instance.num_slots, 1 + round(lookahead_hours * per_hour))
    real_ids = tuple(co.id for _ch, co in instance.connectors())
    fallback_kw = max((co.max_kw for _ch, co in instance.connectors()), default=0.0)
    lowest = min((v.priority for v in instance.vehicles), default=0)
    chargers: list[Charger] = []
    expected: list[Vehicle] = []
    t = 1
    while t < end:
        start = instance.slot_start(t).astimezone(profile.zone)
        left_in_hour = per_hour - (start.minute // instance.slot_minutes) % per_hour
        slots = min(left_in_hour, end - t)
        for g, expected_group in enumerate(profile.at(start)):
            count = expected_group.arrivals * slots / per_hour
            stay = max(1, round(expected_group.stay_hours * per_hour))
            inside = min(stay, instance.num_slots - t)
            kwh = count * expected_group.energy_kwh * scale * inside / stay
            kw = expected_group.max_kw if expected_group.max_kw > 0 else fallback_kw
            power_kw = count * kw * max(scale, 1.0)
            if kwh < MIN_EXPECTED_KWH or power_kw <= 0:
                continue
            key = f"{EXPECTED_PREFIX}{t}:{g}"
            chargers.append(Charger(key, CONNECTOR_KINDS[0], power_kw, (Connector(key, power_kw),)))
            expected.append(
                Vehicle(
                    id=key,
                    arrival_slot=t,
                    departure_slot=t + inside,
                    arrival_soc_pct=0.0,
                    required_soc_pct=100.0,
                    usable_capacity_kwh=kwh,
                    max_charge_kw=power_kw,
                    compatible_connector_ids=(key,),
                    priority=lowest - 1,
                    charging_efficiency=1.0,
                )
            )
        t += slots
    if not expected:
        return instance
    real = tuple(
        v
        if v.compatible_connector_ids is not None or v.fixed_connector_id is not None
        else replace(v, compatible_connector_ids=real_ids)
        for v in instance.vehicles
    )
    penalties = instance.shortfall_penalty_mxn_per_kwh
    if expected_penalty_mxn_per_kwh is not None:
        penalties = (*penalties, (lowest - 1, expected_penalty_mxn_per_kwh))
    return replace(
        instance,
        chargers=(*instance.chargers, *chargers),
        vehicles=(*real, *expected),
        shortfall_penalty_mxn_per_kwh=penalties,
    )


def solve_with_expected_arrivals(
    instance: Instance,
    profile: ArrivalProfile,
    *,
    method: str = "lp",
    time_limit_s: float | None = None,
    windows_hint: Mapping[str, tuple[str, int, int]] | None = None,
    search: SearchLimits = NIGHTLY_SEARCH,
    lookahead_hours: float = DEFAULT_LOOKAHEAD_HOURS,
    scale: float = DEFAULT_SCALE,
    expected_penalty_mxn_per_kwh: float | None = None,
) -> Plan:
    """Solve with headroom for expected arrivals; the plan of the real vehicles, priced on ``instance``.

    The status never says "Optimal": the plan is optimal for the instance with the expected
    vehicles, a different question from the real instance's.
    """
    started = time.perf_counter()
    padded = with_expected_arrivals(
        instance,
        profile,
        lookahead_hours=lookahead_hours,
        scale=scale,
        expected_penalty_mxn_per_kwh=expected_penalty_mxn_per_kwh,
    )
    if padded is instance:
        return solve(instance, method, time_limit_s=time_limit_s, windows_hint=windows_hint, search=search)
    plan = solve(padded, method, time_limit_s=time_limit_s, windows_hint=windows_hint, search=search)
    expected = [v for v in padded.vehicles if v.id.startswith(EXPECTED_PREFIX)]
    reserved_kwh = sum(v.usable_capacity_kwh for v in expected)
    real = Plan(
        vehicles=[
            replace(vp, power_kw=list(vp.power_kw), shortfall_reason=None)
            for vp in plan.vehicles
            if not vp.vehicle_id.startswith(EXPECTED_PREFIX)
        ],
        totals=PlanTotals(),
        solver=SolverInfo(
            method=plan.solver.method,
            status=f"Feasible (headroom kept for {reserved_kwh:.1f} kWh of expected arrivals)",
            notes=[
                *plan.solver.notes,
                f"with {len(expected)} expected vehicles ({reserved_kwh:.1f} kWh): {plan.solver.status}",
            ],
            num_variables=plan.solver.num_variables,
            num_constraints=plan.solver.num_constraints,
        ),
        horizon_start=plan.horizon_start,
        slot_minutes=plan.slot_minutes,
    )
    real = explain_shortfalls(instance, finalize(instance, real))
    real.solver.solve_time_s = time.perf_counter() - started
    return real


@dataclass
class OnlineRun:
    """An online replay: the plan carried out, and each re-plan's time and number of vehicles."""

    plan: Plan
    replan_seconds: list[float] = field(default_factory=list)
    replan_vehicles: list[int] = field(default_factory=list)


Policy = Callable[[Instance], Plan]


def simulate_online(instance: Instance, policy: Policy, *, name: str = "online", every_slot: bool = False) -> OnlineRun:
    """Replay ``instance`` with arrivals unknown until they happen (see the module docstring).

    At each slot where a vehicle arrives (with ``every_slot``, at each slot where one is there),
    ``policy`` plans the remainder (slot 0 = now) for the vehicles arrived so far (energy carried out
    so far counted, plugged-in vehicles kept on their connector, horizon cut at their last departure);
    its first slots are carried out until the next re-plan. Vehicles run out of the policy's horizon
    only at their departure, so the result is one plan over ``instance``'s horizon, finalised by the
    evaluator.
    """
    started = time.perf_counter()
    n = len(instance.vehicles)
    index = {v.id: i for i, v in enumerate(instance.vehicles)}
    arrival = np.array([v.arrival_slot for v in instance.vehicles])
    departure = np.array([v.departure_slot for v in instance.vehicles])
    power = np.zeros((n, instance.num_slots))
    connector: list[str | None] = [None] * n
    events = sorted({int(a) for a, d in zip(arrival, departure, strict=True) if a < d and a < instance.num_slots})
    if every_slot:
        events = sorted(
            {t for a, d in zip(arrival, departure, strict=True) for t in range(int(a), min(int(d), instance.num_slots))}
        )
    run = OnlineRun(plan=Plan([], PlanTotals(), SolverInfo(method=name, status="simulated")))

    def carried_out(known: np.ndarray) -> Plan:
        return Plan(
            vehicles=[
                VehiclePlan(
                    vehicle_id=instance.vehicles[i].id,
                    connector_id=connector[i],
                    plug_in_slot=int(arrival[i]) if connector[i] is not None else None,
                    unplug_slot=int(departure[i]) if connector[i] is not None else None,
                    power_kw=power[i].tolist(),
                )
                for i in known
            ],
            totals=PlanTotals(),
            solver=SolverInfo(method=name, status="simulated"),
            horizon_start=instance.horizon_start.isoformat(),
            slot_minutes=instance.slot_minutes,
        )

    for k, now in enumerate(events):
        until = events[k + 1] if k + 1 < len(events) else instance.num_slots
        arrived = np.flatnonzero(arrival <= now)
        if not np.any(departure[arrived] > now):
            continue
        known = replace(instance, vehicles=tuple(instance.vehicles[i] for i in arrived))
        remainder = remaining_instance(known, carried_out(arrived), now)
        remainder = truncated(remainder, max(v.departure_slot for v in remainder.vehicles))
        tick = time.perf_counter()
        plan = policy(remainder)
        run.replan_seconds.append(time.perf_counter() - tick)
        run.replan_vehicles.append(len(remainder.vehicles))
        for vp in plan.vehicles:
            i = index[vp.vehicle_id]
            if vp.connector_id is not None and connector[i] is None:
                connector[i] = vp.connector_id
            span = min(until, now + remainder.num_slots) - now
            power[i, now : now + span] = vp.power_kw[:span]
    result = carried_out(np.arange(n))
    result.solver.notes.append(
        f"{len(run.replan_seconds)} re-plans, longest {max(run.replan_seconds, default=0.0):.3f} s, "
        f"up to {max(run.replan_vehicles, default=0)} vehicles"
    )
    run.plan = explain_shortfalls(instance, finalize(instance, result))
    run.plan.solver.solve_time_s = time.perf_counter() - started
    return run


def truncated(instance: Instance, num_slots: int) -> Instance:
    """The instance's first ``num_slots`` slots (at least 1); vehicles' departures capped there."""
    keep = max(1, min(num_slots, instance.num_slots))
    if keep == instance.num_slots:
        return instance

    def head(series: tuple[bool, ...] | None) -> tuple[bool, ...] | None:
        return series[:keep] if series is not None else None

    return replace(
        instance,
        num_slots=keep,
        site_limit_kw=instance.site_limit_kw[:keep],
        energy_price_mxn_per_kwh=instance.energy_price_mxn_per_kwh[:keep],
        demand_slots=head(instance.demand_slots),
        base_load_kw=instance.base_load_kw[:keep] if instance.base_load_kw is not None else None,
        additional_demand_charges=tuple(replace(c, slots=head(c.slots)) for c in instance.additional_demand_charges),
        vehicles=tuple(replace(v, departure_slot=min(v.departure_slot, keep)) for v in instance.vehicles),
    )
