"""``solve``: from an instance to a plan, by the method asked for.

- ``lp`` (the fast default path): the LP relaxation with connectors aggregated per compatibility
  group gives a lower bound; ``assignment.greedy_assign`` turns it into one connector window per
  vehicle; if the relaxed power already fits those windows and every charger limit, it is optimal
  as is, otherwise the LP is solved again on the windows with exact charger limits.
- ``milp``: the exact time-indexed MILP (``milp.py``), for small depots.
- ``auto``: ``lp``, then a large-neighbourhood search on the windows when ``lp`` left a gap and the
  depot is small enough, then (only within a caller's ``time_limit_s``) ``milp`` too when the
  depot is small; keeps the cheapest plan. Without ``time_limit_s`` everything stops on work
  limits (passes, HiGHS nodes), so the same night gives the same plan however loaded the machine.
- ``uncontrolled`` / ``edf``: the baselines.

Every plan is priced by the evaluator; ``solver.gap`` compares it with the relaxation bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from .assignment import Assignment, assign_connectors, capacity_assign, compatible_connectors, group_limits
from .baselines import earliest_deadline_first, uncontrolled
from .evaluate import Evaluation, evaluate, finalize
from .instance import Instance
from .lp import CoreIndex, LpModel, Windows, add_charger_limits, add_group_limits, power_matrix
from .milp import count_binaries, solve_milp
from .plan import Plan, PlanTotals, SolverInfo, VehiclePlan
from .quantities import VehicleArrays, best_max_kw, connector_max_kw, vehicle_arrays
from .reasons import explain_shortfalls
from .reassign import reassign_chargers
from .sifting import SiftResult, initial_active, solve_sifted

METHODS = ("auto", "lp", "milp", "uncontrolled", "edf")
# "auto" tries the exact MILP when it has at most this many binaries.
AUTO_MILP_MAX_BINARIES = 3_000
# Without a time limit from the caller, the search and the MILP stop on work limits, not on the
# clock: HiGHS is deterministic for one model and one node limit, so a night gives the same plan on
# a quiet and on a loaded machine (on a loaded one, later). With ``time_limit_s`` they stop on it too.
AUTO_MILP_MAX_NODES = 200  # ``milp`` without a time limit
# Nights with scarce connectors (a gap after the heuristic) and at most this many binaries get a
# large-neighbourhood search on their windows (``_neighbourhood_search``) before the exact MILP.
LNS_MAX_BINARIES = 40_000
# Another pass only after one that gained at least this share of the objective.
LNS_MIN_PASS_GAIN = 5e-4
LNS_BAND_SLOTS = 12  # 3 hours of 15-minute slots free at a time
LNS_SUB_TIME_LIMIT_S = 2.0  # with a time limit from the caller
# A plan within this relative gap of the bound is not worth a MILP.
GAP_GOOD_ENOUGH = 1e-4
# Nor worth the neighbourhood search: within 0.5 % of the bound a plan is within 0.5 % of the optimum (issue 14
# asks for 1 %), and the search's sub-MILPs grow with the night - on 40 buses on 10 connectors, whose heuristic
# plan is 0.47 % above the bound, it had not finished after 7 minutes (docs/optimizer.md, "Connectors").
SEARCH_WORTH_GAP = 5e-3


@dataclass(frozen=True)
class SearchLimits:
    """Work limits of ``auto``'s neighbourhood search: at most ``max_passes`` passes over the
    neighbourhoods, each sub-MILP stopped at ``sub_max_nodes`` HiGHS nodes; ``group`` vehicles
    (consecutive by arrival) have their whole stay free at a time. Work, not seconds, so a night
    gives the same plan on a quiet and on a loaded machine."""

    max_passes: int
    sub_max_nodes: int
    group: int = 2


# The nightly plan: the full search. Groups of 4 buses, not 2: on 12 buses on 3 connectors pairs left
# the plan 1.6 % above the bound and groups of 4 reach 0.34 % (docs/optimizer.md, "Connectors").
NIGHTLY_SEARCH = SearchLimits(max_passes=3, sub_max_nodes=20, group=4)
# A re-plan during the night (an arrival, a fault, staff): it runs while buses wait, several times a
# night, so one pass of smaller sub-MILPs (its quality cost on the scarce nights: docs/optimizer.md).
REPLAN_SEARCH = SearchLimits(max_passes=1, sub_max_nodes=5, group=4)
# When the relaxed power breaks charger limits for at most this many vehicles, only they are
# re-solved (the others keep their relaxed power); above it, the whole night is.
REPAIR_MAX_VEHICLES = 200


def solve(
    instance: Instance,
    method: str = "auto",
    *,
    time_limit_s: float | None = None,
    windows_hint: Mapping[str, tuple[str, int, int]] | None = None,
    search: SearchLimits = NIGHTLY_SEARCH,
) -> Plan:
    """Plan the night. ``method`` is one of ``METHODS``; never raises for an unservable night.

    ``windows_hint`` (vehicle id -> (connector id, plug-in slot, unplug slot)), e.g. the windows of
    the plan being re-planned, is tried as a second connector assignment when the greedy one
    leaves a gap to the bound: a re-plan then never does worse than carrying on with the windows
    it had (where they are still possible). ``search``: the neighbourhood search's work limits
    (``auto``/``milp``); re-plans pass ``REPLAN_SEARCH``.
    Returns a ``Plan`` whose vehicles leave short (with a reason) when the night cannot serve them.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "uncontrolled":
        return uncontrolled(instance)
    if method == "edf":
        return earliest_deadline_first(instance)
    started = time.perf_counter()
    va = vehicle_arrays(instance)
    compatible = compatible_connectors(instance)
    bound_mxn, relaxed_power, relax_size, relax_note = _relaxation(instance, va, compatible, time_limit_s)

    plan = _heuristic_plan(instance, va, compatible, relaxed_power, bound_mxn, time_limit_s, windows_hint)
    plan.solver.num_variables, plan.solver.num_constraints = relax_size
    plan.solver.notes.insert(0, relax_note)
    binaries = count_binaries(instance, compatible)
    small = binaries <= AUTO_MILP_MAX_BINARIES
    gap = _gap(plan.totals.objective_mxn, bound_mxn)
    worth_searching = gap is not None and gap > (GAP_GOOD_ENOUGH if method == "milp" else SEARCH_WORTH_GAP)
    if method in ("auto", "milp") and worth_searching and binaries <= LNS_MAX_BINARIES:
        plan = _neighbourhood_search(instance, va, compatible, plan, bound_mxn, time_limit_s, search)
        gap = _gap(plan.totals.objective_mxn, bound_mxn)
    milp_bound: float | None = None
    # ``auto`` runs the exact MILP only within a time limit from the caller: its root node alone (cut
    # rounds, heuristics) takes 10-15 s on the 8-bus, 2-connector night, and no work limit bounds it.
    timed_auto = method == "auto" and time_limit_s is not None
    if method == "milp" or (timed_auto and small and gap is not None and gap > GAP_GOOD_ENOUGH):
        # The heuristic's plan first: the MILP starts from its connector windows, and it is the
        # answer whenever the MILP cannot beat it in time (a time limit never returns less).
        heuristic = plan
        exact, milp_bound = _milp_plan(
            instance,
            va,
            compatible,
            time_limit_s,
            start=_plan_assignment(instance, heuristic),
            max_nodes=AUTO_MILP_MAX_NODES if time_limit_s is None else None,
        )
        if exact is not None and exact.totals.objective_mxn < heuristic.totals.objective_mxn - 1e-9:
            plan = exact
        else:
            plan = heuristic
            plan.solver.notes.append(
                "milp found no better plan in time; kept the plan it started from"
                if exact is None or not exact.solver.optimal
                else "milp: the plan it started from is as good as the milp's"
            )
    finish_status(plan, bound_mxn, milp_bound)
    plan.solver.solve_time_s = time.perf_counter() - started
    return plan


def _neighbourhood_search(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    plan: Plan,
    bound_mxn: float | None,
    budget_s: float | None,
    limits: SearchLimits = NIGHTLY_SEARCH,
) -> Plan:
    """Large-neighbourhood search on the connector windows, for nights with scarce connectors.

    The exact MILP with most connector-slot binaries fixed at the incumbent's windows, started from
    them (so never worse). Two kinds of neighbourhood, in turn: a band of ``LNS_BAND_SLOTS`` slots
    of every vehicle (re-sequences the buses around one time of the night), and the whole stay of
    ``limits.group`` vehicles consecutive by arrival (moves a bus to another connector or time).
    Passes repeat, at most ``limits.max_passes``, while a pass gains ``LNS_MIN_PASS_GAIN`` of the
    objective; sub-MILPs stop at ``limits.sub_max_nodes`` nodes. Those are work limits, so the result
    does not depend on the machine's load. ``budget_s`` (the caller's time limit, or None) also
    stops the search on the clock.
    """
    started = time.perf_counter()
    present = va.departure_slot > va.arrival_slot
    if not present.any():
        return plan
    num_vehicles, num_slots = len(instance.vehicles), instance.num_slots
    first, last = int(va.arrival_slot[present].min()), int(va.departure_slot[present].max())
    neighbourhoods = []
    step = max(LNS_BAND_SLOTS // 2, 1)
    for band_start in range(first, max(last - step, first + 1), step):
        free = np.zeros((num_vehicles, num_slots), dtype=bool)
        free[:, band_start : band_start + LNS_BAND_SLOTS] = True
        neighbourhoods.append(free)
    by_arrival = np.flatnonzero(present)[np.argsort(va.arrival_slot[present], kind="stable")]
    group = limits.group
    for k in range(0, max(by_arrival.size - group // 2, 1), max(group // 2, 1)):
        free = np.zeros((num_vehicles, num_slots), dtype=bool)
        free[by_arrival[k : k + group]] = True
        neighbourhoods.append(free)
    improved_by = 0.0
    passes = 0
    done = False
    while not done and passes < limits.max_passes:
        passes += 1
        before = plan.totals.objective_mxn
        for free in neighbourhoods:
            left = None if budget_s is None else budget_s - (time.perf_counter() - started)
            gap = _gap(plan.totals.objective_mxn, bound_mxn)
            if (left is not None and left <= 0.05) or (gap is not None and gap <= GAP_GOOD_ENOUGH):
                done = True
                break
            candidate, _ = _milp_plan(
                instance,
                va,
                compatible,
                None if left is None else min(left, LNS_SUB_TIME_LIMIT_S),
                start=_plan_assignment(instance, plan),
                free=free,
                max_nodes=limits.sub_max_nodes,
            )
            if candidate is not None and candidate.totals.objective_mxn < plan.totals.objective_mxn - 1e-6:
                candidate.solver.notes = plan.solver.notes
                candidate.solver.num_variables = plan.solver.num_variables
                candidate.solver.num_constraints = plan.solver.num_constraints
                plan = candidate
        improved_by += before - plan.totals.objective_mxn
        if plan.totals.objective_mxn >= before - LNS_MIN_PASS_GAIN * max(abs(before), 1.0):
            break
    if improved_by > 0:
        plan.solver.notes.append(
            f"neighbourhood search on the windows: {improved_by:,.2f} MXN better in {passes} pass(es) "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return plan


# A plan within this relative gap of a proven lower bound is reported "Optimal".
PROVEN_GAP = 1e-6


def finish_status(plan: Plan, lp_bound_mxn: float | None, milp_bound_mxn: float | None = None) -> None:
    """Set the plan's bound, gap and an honest status from the proven lower bounds.

    The solver's own word on the last solve (e.g. "Optimal" for a window re-solve, which is optimal
    only for its windows) moves to the notes.
    """
    solver = plan.solver
    bounds = [b for b in (lp_bound_mxn, milp_bound_mxn) if b is not None and np.isfinite(b)]
    bound = max(bounds) if bounds else None
    solver.lp_bound_mxn = lp_bound_mxn
    solver.bound_mxn = bound
    solver.gap = _gap(plan.totals.objective_mxn, bound)
    if solver.status:
        solver.notes.append(f"last solve: {solver.status}")
    solver.status, solver.optimal = honest_status(solver.gap, bound)


def honest_status(gap: float | None, bound_mxn: float | None) -> tuple[str, bool]:
    """("Optimal", True) when the gap to a proven bound is closed, else ("Feasible, ...", False)."""
    if gap is None or bound_mxn is None:
        return "Feasible (no bound: the relaxation did not finish)", False
    if gap <= PROVEN_GAP:
        return "Optimal", True
    percent = gap * 100
    shown = f"{percent:.2f}" if percent >= 0.01 else f"{percent:.1g}"
    return f"Feasible, {shown} % above the bound ({bound_mxn:,.2f} MXN)", False


def _heuristic_plan(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    relaxed_power: np.ndarray,
    bound_mxn: float | None,
    time_limit_s: float | None,
    windows_hint: Mapping[str, tuple[str, int, int]] | None,
) -> Plan:
    """The relaxation-driven assignment re-solved, and the other assignments while there is a gap."""
    assignment = assign_connectors(instance, va, compatible, relaxed_power)
    plan = _resolve(instance, va, assignment, relaxed_power, time_limit_s)
    # Other connector assignments, tried only while the plan is not already at the bound; the
    # cheapest re-solved plan wins.
    others: list[tuple[str, Callable[[], Assignment]]] = [
        ("windows built against the site limit", lambda: capacity_assign(instance, va, compatible))
    ]
    preplaced = _hinted_windows(instance, va, compatible, windows_hint)
    if preplaced:
        others.append(
            (
                f"{len(preplaced)} connector window(s) kept from the previous plan",
                lambda: assign_connectors(instance, va, compatible, relaxed_power, preplaced),
            )
        )
    for label, make in others:
        gap = _gap(plan.totals.objective_mxn, bound_mxn)
        if gap is not None and gap <= GAP_GOOD_ENOUGH:
            break
        other = _resolve(instance, va, make(), relaxed_power, time_limit_s)
        if other.totals.objective_mxn < plan.totals.objective_mxn - 1e-9:
            other.solver.notes.append(
                f"assignment: {label} ({other.totals.objective_mxn:,.2f} MXN against "
                f"{plan.totals.objective_mxn:,.2f} MXN for the best one before it)"
            )
            plan = other
    gap = _gap(plan.totals.objective_mxn, bound_mxn)
    if gap is not None and gap > GAP_GOOD_ENOUGH:
        plan = _reassigned(instance, va, compatible, plan, relaxed_power, time_limit_s)
    return plan


def _reassigned(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    plan: Plan,
    relaxed_power: np.ndarray,
    time_limit_s: float | None,
) -> Plan:
    """``reassign.reassign_chargers`` on the plan's windows, the whole night re-solved once on the
    windows it found; the cheaper of the two plans."""
    found = reassign_chargers(
        instance,
        va,
        compatible,
        _plan_assignment(instance, plan),
        np.array([vp.power_kw for vp in plan.vehicles], dtype=float).reshape(len(plan.vehicles), -1),
        relaxed_power,
        # The small instances of a few buses: one LP on every window slot beats sifting's rounds.
        lambda part, part_va, assignment, power: _resolve(part, part_va, assignment, power, time_limit_s, sift=False),
        budget_s=time_limit_s,
    )
    if not found.moves:
        return plan
    other = _resolve(instance, va, found.assignment, relaxed_power, time_limit_s)
    if other.totals.objective_mxn >= plan.totals.objective_mxn - 1e-9:
        return plan
    other.solver.notes[:0] = plan.solver.notes
    other.solver.notes.append(
        f"buses re-placed between chargers: {found.moves} move(s) in {found.sweeps} sweep(s), "
        f"{found.sub_solves} small re-solves ({found.seconds:.1f} s): {other.totals.objective_mxn:,.2f} MXN "
        f"against {plan.totals.objective_mxn:,.2f} MXN"
    )
    return other


def _gap(objective_mxn: float, bound_mxn: float | None) -> float | None:
    if bound_mxn is None:
        return None
    # Never negative: a plan cannot beat the bound beyond solver tolerance.
    return max(0.0, (objective_mxn - bound_mxn) / max(abs(bound_mxn), 1.0))


def _relaxation(
    instance: Instance, va: VehicleArrays, compatible: list[np.ndarray], time_limit_s: float | None
) -> tuple[float | None, np.ndarray, tuple[int, int], str]:
    """Solve the aggregated relaxation by sifting (``sifting``).

    Returns (bound MXN, relaxed power [vehicle, slot], restricted model size, a note on the sifting).
    """
    windows = Windows.whole_stays(va, compatible, best_max_kw(instance, compatible))
    groups = group_limits(instance, compatible)

    def connector_groups(core: CoreIndex, model: LpModel) -> None:
        add_group_limits(instance, core, windows, groups, model)

    result = solve_sifted(
        instance,
        va,
        windows,
        initial_active(instance, va, windows),
        connector_groups,
        time_limit_s=time_limit_s,
    )
    solution = result.solution
    power = np.zeros((len(instance.vehicles), instance.num_slots))
    if solution.x is not None:
        power = power_matrix(result.core, windows, solution.x, len(instance.vehicles), instance.num_slots)
    bound = solution.objective if solution.optimal else None
    return bound, power, (solution.num_cols, solution.num_rows), _sifting_note("relaxation", result, windows)


def _sifting_note(what: str, result: SiftResult, windows: Windows) -> str:
    return (
        f"{what}: {result.rounds} LP round(s) on {result.active_pairs[-1]:,} of {int(windows.length.sum()):,} "
        f"(vehicle, slot) pairs ({', '.join(f'{s:.2f}' for s in result.seconds)} s; "
        f"{', '.join(f'{i:,}' for i in result.iterations)} simplex iterations)"
    )


def _hinted_windows(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    hint: Mapping[str, tuple[str, int, int]] | None,
) -> dict[int, tuple[int, int, int]]:
    """The hint's windows that are still possible: compatible connector (not faulted since), inside
    the stay, not overlapping an earlier one on the same connector. As (connector index, start, end)."""
    if not hint:
        return {}
    index = {co.id: c for c, (_, co) in enumerate(instance.connectors())}
    taken: dict[int, list[tuple[int, int]]] = {}
    windows = {}
    for v, vehicle in enumerate(instance.vehicles):
        if vehicle.id not in hint:
            continue
        connector_id, start, end = hint[vehicle.id]
        c = index.get(connector_id, -1)
        start, end = max(int(start), int(va.arrival_slot[v])), min(int(end), int(va.departure_slot[v]))
        if c < 0 or c not in compatible[v] or end <= start:
            continue
        if vehicle.fixed_connector_id is not None and start != va.arrival_slot[v]:
            continue  # plugged in now: its window starts now
        if any(start < e and s < end for s, e in taken.get(c, [])):
            continue
        taken.setdefault(c, []).append((start, end))
        windows[v] = (c, start, end)
    return windows


def _resolve(
    instance: Instance,
    va: VehicleArrays,
    assignment: Assignment,
    relaxed_power: np.ndarray,
    time_limit_s: float | None,
    *,
    sift: bool = True,
) -> Plan:
    """The plan for a connector assignment: the relaxed power if it fits, else the LP again
    (``sift=False``: the LP with every window slot from the start, for small instances)."""
    started = time.perf_counter()
    # If the relaxed power already fits the windows and the chargers, it is optimal: no re-solve.
    candidate = _plan(instance, assignment, relaxed_power, "lp", "Optimal (the relaxation fits the assignment)")
    evaluation = evaluate(instance, candidate)
    power = None
    if evaluation.ok:
        # Only solver dust (below the evaluator's tolerance) can lie outside the windows.
        power, status = relaxed_power * _window_mask(instance, assignment), candidate.solver.status
    else:
        power, status = _repair_chargers(instance, assignment, relaxed_power, evaluation, time_limit_s, sift=sift)
    if power is None:
        power, status = _window_lp(instance, va, assignment, time_limit_s, relaxed_power, sift=sift)
        if power is None:  # only on a time limit: keep the relaxed profile clipped to windows
            power = relaxed_power * _window_mask(instance, assignment)
    plan = _plan(instance, assignment, power, "lp", status)
    plan.solver.solve_time_s = time.perf_counter() - started
    return explain_shortfalls(instance, finalize(instance, plan))


def _window_lp(
    instance: Instance,
    va: VehicleArrays,
    assignment: Assignment,
    time_limit_s: float | None,
    relaxed_power: np.ndarray,
    *,
    sift: bool = True,
) -> tuple[np.ndarray | None, str]:
    """The LP again, on the assigned windows with exact per-charger limits: (power, status).
    ``sift=False``: every window slot active from the first round (one LP solve on a small instance)."""
    connectors = instance.connectors()
    charger_index = {ch.id: k for k, ch in enumerate(instance.chargers)}
    assigned = assignment.connector >= 0
    windows = Windows(
        start=assignment.start,
        end=np.where(assigned, assignment.end, assignment.start),
        max_kw=np.where(assigned, np.minimum(va.max_kw, connector_max_kw(instance)[assignment.connector]), 0.0),
    )
    charger_of_vehicle = np.array(
        [charger_index[connectors[c][0].id] if c >= 0 else -1 for c in assignment.connector], dtype=int
    )

    def charger_limits(core: CoreIndex, model: LpModel) -> None:
        add_charger_limits(instance, core, windows, charger_of_vehicle, model)

    # The relaxed plan's charging slots are where this LP will charge too, mostly.
    if sift:
        start = initial_active(instance, va, windows, hint=relaxed_power > 1e-9)
    else:
        start = np.ones((len(instance.vehicles), instance.num_slots), dtype=bool)
    result = solve_sifted(instance, va, windows, start, charger_limits, time_limit_s=time_limit_s)
    solution = result.solution
    if solution.x is None:
        return None, f"re-solve failed ({solution.status}); relaxed power clipped to windows"
    power = power_matrix(result.core, windows, solution.x, len(instance.vehicles), instance.num_slots)
    return power, f"{solution.status} ({_sifting_note('window re-solve', result, windows)})"


def _repair_chargers(
    instance: Instance,
    assignment: Assignment,
    relaxed_power: np.ndarray,
    evaluation: Evaluation,
    time_limit_s: float | None,
    *,
    sift: bool = True,
) -> tuple[np.ndarray | None, str]:
    """When the relaxed power breaks only a few charger limits, re-solve just their vehicles.

    The other vehicles keep their relaxed power: the small LP sees the site limit less their load
    and their load added to the base load (for the peak), so it optimises the same objective over
    the freed vehicles. ``solver.gap`` still measures the result against the full relaxation.
    Returns ``(None, "")`` when a full re-solve is the better tool.
    """
    kinds = {v.kind for v in evaluation.violations}
    chargers = {v.subject for v in evaluation.violations if v.kind == "charger_power"}
    connectors = instance.connectors()
    freed = np.array([c >= 0 and connectors[c][0].id in chargers for c in assignment.connector.tolist()], dtype=bool)
    if kinds != {"charger_power"} or freed.sum() > REPAIR_MAX_VEHICLES:
        return None, ""
    others_kw = (relaxed_power * ~freed[:, None]).sum(axis=0)
    index = np.flatnonzero(freed)
    part = replace(
        instance,
        vehicles=tuple(instance.vehicles[v] for v in index),
        site_limit_kw=tuple(np.maximum(np.asarray(instance.site_limit_kw) - others_kw, 0.0).tolist()),
        base_load_kw=tuple((np.asarray(instance.base_load()) + others_kw).tolist()),
    )
    part_assignment = Assignment(assignment.connector[index], assignment.start[index], assignment.end[index])
    part_power, status = _window_lp(
        part, vehicle_arrays(part), part_assignment, time_limit_s, relaxed_power[index], sift=sift
    )
    if part_power is None:
        return None, ""
    power = relaxed_power * _window_mask(instance, assignment)
    power[index] = part_power
    return power, f"{status} (relaxation, {index.size} vehicles re-solved for charger limits)"


def _milp_plan(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    time_limit_s: float | None,
    *,
    start: Assignment | None = None,
    mip_rel_gap: float | None = None,
    free: np.ndarray | None = None,
    max_nodes: int | None = None,
) -> tuple[Plan | None, float | None]:
    """The exact MILP's plan (None when it found none) and its proven lower bound (None without one,
    or for a neighbourhood: ``free``)."""
    solution, core, windows, assignment = solve_milp(
        instance,
        va,
        compatible,
        time_limit_s=time_limit_s,
        start=start,
        mip_rel_gap=mip_rel_gap,
        free=free,
        max_nodes=max_nodes,
    )
    bound = solution.mip_dual_bound if solution.mip_dual_bound is not None and solution.x is not None else None
    if free is not None:
        bound = None
    if bound is not None and not np.isfinite(bound):
        bound = None
    if solution.x is None or assignment is None:
        return None, bound
    power = power_matrix(core, windows, solution.x, len(instance.vehicles), instance.num_slots)
    plan = _plan(instance, assignment, power * _window_mask(instance, assignment), "milp", solution.status)
    plan.solver.num_variables, plan.solver.num_constraints = solution.num_cols, solution.num_rows
    plan.solver.optimal = solution.optimal
    if bound is not None:
        plan.solver.notes.append(f"milp dual bound {bound:.4f} MXN")
    return explain_shortfalls(instance, finalize(instance, plan)), bound


def _plan_assignment(instance: Instance, plan: Plan) -> Assignment:
    """A plan's connector windows as an ``Assignment`` (the MILP's warm start)."""
    index = {co.id: c for c, (_, co) in enumerate(instance.connectors())}
    n = len(instance.vehicles)
    result = Assignment(np.full(n, -1), np.zeros(n, int), np.zeros(n, int))
    for v, vp in enumerate(plan.vehicles):
        if vp.connector_id is not None and vp.plug_in_slot is not None and vp.unplug_slot is not None:
            result.connector[v], result.start[v], result.end[v] = (
                index[vp.connector_id],
                vp.plug_in_slot,
                vp.unplug_slot,
            )
    return result


def _window_mask(instance: Instance, assignment: Assignment) -> np.ndarray:
    slot = np.arange(instance.num_slots)
    return (assignment.connector[:, None] >= 0) & (slot >= assignment.start[:, None]) & (slot < assignment.end[:, None])


def _plan(instance: Instance, assignment: Assignment, power: np.ndarray, method: str, status: str) -> Plan:
    connectors = instance.connectors()
    vehicles = []
    for v, vehicle in enumerate(instance.vehicles):
        c = int(assignment.connector[v])
        plugged = c >= 0 and assignment.end[v] > assignment.start[v]
        vehicles.append(
            VehiclePlan(
                vehicle_id=vehicle.id,
                connector_id=connectors[c][1].id if plugged else None,
                plug_in_slot=int(assignment.start[v]) if plugged else None,
                unplug_slot=int(assignment.end[v]) if plugged else None,
                power_kw=power[v].tolist(),
            )
        )
    return Plan(
        vehicles=vehicles,
        totals=PlanTotals(),
        solver=SolverInfo(method=method, status=status),
        horizon_start=instance.horizon_start.isoformat(),
        slot_minutes=instance.slot_minutes,
    )
