"""Sifting: solve the depot LP on the slots that matter, prove the rest would not help.

A bus stays 9-13 hours but the optimal plan charges it in a handful of slots (on the 1,000-bus
benchmark night 16 % of (bus, slot) pairs carry power). So the LP is first solved with power
variables only on an *active* set of slots per vehicle (``build_core(active=...)``: power fixed
at zero elsewhere, the energy between two active slots held in one variable). From its duals the
reduced cost of every left-out power variable *in the full model* is computed exactly
(``full_reduced_costs``); if none is negative the restricted optimum is the full LP's optimum (same
objective, and the duals prove it), otherwise those slots become active and the LP is solved again.
It always ends: each round adds at least one slot.

Why the duals carry over: with power zero at a left-out slot, the full model's energy there equals
the last active slot's, so the full model's balance duals between two active slots follow from the
energy columns' zero reduced cost (``pi[t] = pi[t+1] - eta[t]``), the high-SoC hinge duals from
splitting the restricted hinge's dual over the slots it stands for (in proportion to their cost
weights, which keeps each in its range), and rows the restricted model has no reason to contain
(site, demand or charger limits of slots nobody uses) have dual zero, which is valid because the
restricted solution leaves them satisfied. ``tests/charging/test_optimizer_sifting.py`` checks the
reduced costs against HiGHS's own on the full model and the objective against the full LP.

The first active set matters for the number of rounds; ``initial_active`` takes it from a greedy
packing of the night (``_greedy_slots``), plus the last slots before departure (taper and wear
finish there), plus any hint (e.g. the slots the relaxed solution used, for the re-solve after
connector assignment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .instance import Instance
from .lp import AT_LOWER, AT_UPPER, BASIC, INF, CoreIndex, Key, LpModel, LpSolution, Windows, build_core, key
from .quantities import VehicleArrays, fastest_charge_kw, free_site_kw, taper_lines

# A left-out slot is added when its reduced cost is below this (MXN per kW of the slot): HiGHS's
# own dual feasibility tolerance, so "none below" means optimal as HiGHS understands it.
REDUCED_COST_TOLERANCE = 1e-7
# Slots before departure that are always active: charging finishes there (high-SoC wear) and the
# taper binds there.
LAST_SLOTS = 4
MAX_ROUNDS = 50
# A round starts from the last one's basis when that model had at least this share of its (vehicle,
# slot) pairs. From the greedy start the next round adds 10-90 % more pairs and the carried basis
# saves 60-95 % of its simplex iterations (3,000 buses: 26,900 -> 3,400); from a start of one slot
# per vehicle it adds 20x and primal simplex from that basis took more iterations than a cold start.
CARRY_MIN_SHARE = 0.25


@dataclass
class SiftResult:
    core: CoreIndex
    solution: LpSolution
    active: np.ndarray  # bool [vehicle, slot]
    rounds: int  # LP solves
    active_pairs: list[int]  # per round
    seconds: list[float]  # per round (LP solve only)
    iterations: list[int]  # simplex iterations per round (lazy re-solves included)


def window_mask(windows: Windows, num_slots: int) -> np.ndarray:
    slot = np.arange(num_slots)
    return (slot >= windows.start[:, None]) & (slot < windows.end[:, None])


def solve_sifted(
    instance: Instance,
    va: VehicleArrays,
    windows: Windows,
    active: np.ndarray,
    add_limits: Callable[[CoreIndex, LpModel], None] | None = None,
    *,
    time_limit_s: float | None = None,
    carry_basis: bool = True,
) -> SiftResult:
    """Solve the LP over ``windows`` by sifting from ``active``; the result is the full LP's optimum.

    Each round after the first starts from the last round's basis (``_carried_basis``; without
    ``carry_basis``, from scratch, which the tests and the benchmark compare with).

    ``add_limits(core, model)`` adds connector/charger rows (they must record ``LimitRows``).
    On a time limit or a solver failure the last restricted solution is returned (its plan is
    feasible for the full model: it only leaves power at zero).
    """
    in_window = window_mask(windows, instance.num_slots)
    # The departure target hangs on each window's last slot: it is always active.
    active = (active & in_window & (windows.max_kw[:, None] > 0)) | _last_slots(windows, instance.num_slots, 1)
    rounds, sizes, seconds, iterations = 0, list[int](), list[float](), list[int]()
    proven = False  # no left-out slot would lower the cost: the restricted optimum is the full LP's
    previous: tuple[CoreIndex, LpSolution] | None = None
    while True:
        model = LpModel()
        carried = previous[0].lazy if previous is not None else None
        core = build_core(instance, va, windows, model, lazy=True, active=active, carried=carried)
        if add_limits is not None:
            add_limits(core, model)
        left = None
        if time_limit_s is not None:
            left = max(time_limit_s - sum(seconds), 0.01)
        basis = None
        if previous is not None and carry_basis and previous[0].num_pairs >= CARRY_MIN_SHARE * core.num_pairs:
            basis = _carried_basis(instance, va, *previous, model)
        solution = model.solve(time_limit_s=left, lazy=core.lazy, basis=basis, keep_basis=True)
        rounds += 1
        sizes.append(core.num_pairs)
        seconds.append(solution.seconds)
        iterations.append(solution.simplex_iterations)
        if not solution.optimal or solution.row_dual is None:
            break
        worth = full_reduced_costs(instance, va, windows, core, solution.row_dual) < -REDUCED_COST_TOLERANCE
        if not worth.any():
            proven = True
            break
        if rounds >= MAX_ROUNDS or (time_limit_s is not None and sum(seconds) >= time_limit_s):
            break  # a feasible plan (it only leaves power at zero), but no proven bound
        active = active | worth
        previous = (core, solution)
    solution.optimal = proven
    return SiftResult(core, solution, active, rounds, sizes, seconds, iterations)


def _carried_basis(
    instance: Instance,
    va: VehicleArrays,
    old_core: CoreIndex,
    old: LpSolution,
    model: LpModel,
) -> tuple[np.ndarray, np.ndarray] | None:
    """A starting basis for the next round's ``model`` from the last round's optimal one.

    The new model holds every column and row of the old one (same keys: the active set only
    grows, and ``build_core(carried=...)`` puts the lazy rows the old one needed back in). Those keep
    their status; each new row gets exactly one new basic variable, chosen so the old solution
    (power zero at the added slots) stays feasible, so the basis is square, nonsingular and primal
    feasible, and only the added power columns price out:

    - a new pair's balance row: its energy column is basic (it holds the energy of the slot before);
    - a new high-SoC hinge: its column is basic if that energy is above the threshold, else its row;
    - a new occupancy row (``p <= max_kw * x``): the occupancy is basic if the pair charged, else
      the row; every other new row (site, demand, group, charger, taper): its slack is basic.
    """
    if old.basis is None or old.x is None or old.col_key is None or old.row_key is None:
        return None
    col_key, row_key = np.concatenate(model.col_key), np.concatenate(model.row_key)
    col = _match(old.col_key, old.basis[0], col_key, AT_LOWER)
    row = _match(old.row_key, old.basis[1], row_key, BASIC)
    new_row = _match(old.row_key, np.zeros(old.row_key.size, dtype=np.int8), row_key, 1).astype(bool)
    energy, power = _energy_and_power(instance, va, old_core, old.x)
    high_soc_kwh = instance.wear.high_soc_threshold_pct / 100.0 * va.capacity_kwh
    kind, vehicle, slot = row_key >> 40, (row_key >> 16) & (2**24 - 1), row_key & (2**16 - 1)

    def pair_with(rows: np.ndarray, column_kind: Key) -> None:
        """Rows ``rows`` nonbasic, their (vehicle, slot)'s ``column_kind`` basic. A balance row is an
        equality (either bound); hinge and occupancy rows have only an upper one."""
        row[rows] = AT_LOWER if column_kind == Key.E else AT_UPPER
        col[_positions(col_key, key(column_kind, vehicle[rows], slot[rows]))] = BASIC

    pair_with(np.flatnonzero(new_row & (kind == Key.BALANCE)), Key.E)
    hinge = np.flatnonzero(new_row & (kind == Key.HINGE_ROW))
    pair_with(hinge[energy[vehicle[hinge], slot[hinge]] > high_soc_kwh[vehicle[hinge]] + 1e-9], Key.HINGE_COL)
    occupancy = np.flatnonzero(new_row & (kind == Key.OCCUPANCY_ROW))
    pair_with(occupancy[power[vehicle[occupancy], slot[occupancy]] > 0], Key.OCCUPANCY_COL)
    return col, row


def _match(old_key: np.ndarray, old_status: np.ndarray, new_key: np.ndarray, default: int) -> np.ndarray:
    """``old_status`` of each new key found among ``old_key`` (>= 0), ``default`` elsewhere."""
    status = np.full(new_key.size, default, dtype=np.int8)
    order = np.argsort(old_key, kind="stable")
    position = np.minimum(np.searchsorted(old_key[order], new_key), max(old_key.size - 1, 0))
    found = (new_key >= 0) & (old_key.size > 0) & (old_key[order][position] == new_key)
    status[found] = old_status[order[position[found]]]
    return status


def _positions(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index of each ``wanted`` key in ``keys`` (each present once)."""
    order = np.argsort(keys, kind="stable")
    return order[np.searchsorted(keys[order], wanted)]


def _energy_and_power(
    instance: Instance, va: VehicleArrays, core: CoreIndex, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """[vehicle, slot] energy (kWh, end of slot) and power (kW) of a restricted solution ``x``."""
    num_vehicles, num_slots = len(instance.vehicles), instance.num_slots
    pair_index = np.full((num_vehicles, num_slots), -1)
    pair_index[core.pair_vehicle, core.pair_slot] = np.arange(core.num_pairs)
    owner = np.maximum.accumulate(pair_index, axis=1)  # the latest pair at or before each slot
    e = x[core.e_col : core.e_col + core.num_pairs]
    energy = np.where(owner >= 0, e[np.maximum(owner, 0)], va.initial_kwh[:, None])
    power = np.zeros((num_vehicles, num_slots))
    power[core.pair_vehicle, core.pair_slot] = x[core.p_col : core.p_col + core.num_pairs]
    return energy, power


def _last_slots(windows: Windows, num_slots: int, count: int) -> np.ndarray:
    slot = np.arange(num_slots)
    return np.asarray((slot >= np.maximum(windows.end - count, windows.start)[:, None]) & (slot < windows.end[:, None]))


def full_reduced_costs(
    instance: Instance,
    va: VehicleArrays,
    windows: Windows,
    core: CoreIndex,
    row_dual: np.ndarray,
    *,
    left_out_only: bool = True,
) -> np.ndarray:
    """Reduced cost in the full model of each left-out power variable (``inf`` where none).

    [vehicle, slot]; see the module docstring for why the restricted duals extend to the full model.
    With ``left_out_only=False`` also the active pairs' (less their taper and C-rate rows' duals),
    which the tests compare with HiGHS's.
    """
    num_vehicles, num_slots = len(instance.vehicles), instance.num_slots
    dt = instance.slot_hours
    gain = va.efficiency[:, None] * dt
    y = row_dual
    n = core.num_pairs
    if n == 0:
        return np.full((num_vehicles, num_slots), INF)
    slot = np.arange(num_slots)
    in_window = window_mask(windows, num_slots)
    pair_index = np.full((num_vehicles, num_slots), -1)
    pair_index[core.pair_vehicle, core.pair_slot] = np.arange(n)

    pi_pair = y[core.balance_row + np.arange(n)]
    eta_pair = np.zeros(n)
    if core.hinge_pair is not None and core.hinge_pair.size:
        eta_pair[core.hinge_pair] = y[core.hinge_row + np.arange(core.hinge_pair.size)]

    # Hinge cost weight of each slot: 1, the window's last slot also holds its energy to departure.
    weight = in_window.astype(float)
    last = np.flatnonzero(windows.end > windows.start)
    weight[last, windows.end[last] - 1] += va.departure_slot[last] - windows.end[last]

    # The active pair each slot's energy belongs to (the latest at or before it), -1 before the first.
    owner = np.maximum.accumulate(np.where(in_window, pair_index, -1), axis=1)
    owned = in_window & (owner >= 0)
    eta_full = np.zeros((num_vehicles, num_slots))
    assert core.held_slots is not None
    eta_full[owned] = eta_pair[owner[owned]] * weight[owned] / core.held_slots[owner[owned]]
    # Before the first active slot the energy is the arrival energy: its hinge is fixed by it.
    wear = instance.wear
    high_soc_kwh = wear.high_soc_threshold_pct / 100.0 * va.capacity_kwh
    above = (va.initial_kwh > high_soc_kwh + 1e-9)[:, None] & in_window & ~owned
    eta_full[above] = -wear.high_soc_mxn_per_kwh_h * dt * weight[above]

    # Balance duals of left-out slots: pi[t] = pi[next active] - sum of eta from t up to it.
    suffix = np.cumsum(eta_full[:, ::-1], axis=1)[:, ::-1]  # sum over t' >= t
    suffix = np.concatenate([suffix, np.zeros((num_vehicles, 1))], axis=1)
    next_slot = np.where(pair_index >= 0, slot, num_slots)
    next_slot = np.minimum.accumulate(next_slot[:, ::-1], axis=1)[:, ::-1]
    next_pair = np.take_along_axis(pair_index, np.minimum(next_slot, num_slots - 1), axis=1)
    rows = np.arange(num_vehicles)[:, None]
    has_next = in_window & (next_slot < num_slots) & (next_pair >= 0)
    pi_full = np.zeros((num_vehicles, num_slots))
    pi_full[has_next] = (pi_pair[np.maximum(next_pair, 0)] - (suffix[:, :-1] - suffix[rows, next_slot]))[has_next]

    # Power in slot t is in the slot's site row and in the row of every demand charge counting t.
    slot_dual = np.zeros(num_slots)
    assert core.site_row is not None and core.demand_rows is not None
    for per_slot_rows in (core.site_row, *core.demand_rows):
        present = per_slot_rows >= 0
        slot_dual[present] += y[per_slot_rows[present]]
    price = np.asarray(instance.energy_price_mxn_per_kwh, dtype=float)
    reduced = price[None, :] * dt + gain * pi_full - slot_dual[None, :]
    for limit in core.extra_rows:
        member = limit.key_of_vehicle >= 0
        power_dual = np.where(limit.power >= 0, y[np.maximum(limit.power, 0)], 0.0)
        reduced[member] -= power_dual[limit.key_of_vehicle[member]]
        if limit.count is not None:
            count_dual = np.where(limit.count >= 0, y[np.maximum(limit.count, 0)], 0.0)
            max_kw = np.maximum(windows.max_kw[member], 1e-9)[:, None]
            reduced[member] -= count_dual[limit.key_of_vehicle[member]] / max_kw
    candidate = in_window & has_next & (windows.max_kw[:, None] > 0)
    if left_out_only:
        candidate &= pair_index < 0
    return np.where(candidate, reduced, INF)


def initial_active(
    instance: Instance,
    va: VehicleArrays,
    windows: Windows,
    hint: np.ndarray | None = None,
) -> np.ndarray:
    """A first active set: the slots a greedy fill of the night gives each vehicle, the slot
    before each of them, the last ``LAST_SLOTS`` before departure, and ``hint`` if given.

    The greedy (``_greedy_slots``) packs each vehicle's energy into its cheapest slots, the latest
    first among equal prices, under what is left of the site limit. The LP's optimum is highly
    degenerate (any packing of the cheap hours that keeps the high-SoC energy late is optimal), so
    a packing that respects the site limit usually holds one of the optimal solutions, and pricing
    adds the few slots it misses.
    """
    num_slots = instance.num_slots
    in_window = window_mask(windows, num_slots)
    active = _last_slots(windows, num_slots, LAST_SLOTS)
    if hint is not None:
        active |= hint & in_window
    greedy = _greedy_slots(instance, va, windows)
    active |= greedy
    active[:, :-1] |= greedy[:, 1:]  # the slot before: room for the taper to spread the energy
    return np.asarray(active & in_window)


def _greedy_slots(instance: Instance, va: VehicleArrays, windows: Windows) -> np.ndarray:
    """Slots each vehicle charges in when vehicles, earliest departure first, take their cheapest
    slots (latest first among equal costs) under the site limit that is left, at the power the
    vehicle and its taper allow.

    In a demand charge's slots only the headroom below its current peak counts as free capacity
    (the smallest headroom where several charges count the slot)."""
    num_vehicles, num_slots = len(instance.vehicles), instance.num_slots
    price = np.asarray(instance.energy_price_mxn_per_kwh, dtype=float)
    capacity = free_site_kw(instance)
    slot = np.arange(num_slots)
    order_key = price - 1e-6 * slot / num_slots  # cheapest, then latest
    chosen = np.zeros((num_vehicles, num_slots), dtype=bool)
    for v in np.argsort(windows.end, kind="stable"):
        start, end, max_kw = windows.start[v], windows.end[v], windows.max_kw[v]
        need_kwh = va.target_kwh[v] - va.initial_kwh[v]
        if end <= start or max_kw <= 0 or need_kwh <= 0:
            continue
        lines = taper_lines(instance.vehicles[v])
        gain = va.efficiency[v] * instance.slot_hours
        candidates = start + np.argsort(order_key[start:end], kind="stable")
        count = min(max(int(np.ceil(need_kwh / (gain * max_kw))), 1), candidates.size)
        while True:
            take = np.sort(candidates[:count])
            limit = np.minimum(capacity[take], max_kw)
            power = fastest_charge_kw(limit, lines, va.initial_kwh[v], va.target_kwh[v], gain)
            if power.sum() * gain >= need_kwh - 1e-6 or count == candidates.size:
                break
            count += 1
        capacity[take] -= power
        chosen[v, take[power > 0]] = True
    return chosen
