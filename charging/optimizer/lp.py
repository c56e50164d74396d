"""The depot-night linear program, built in bulk with numpy and solved with HiGHS.

Variables exist only where they mean something: a vehicle gets a power variable for each slot
of its charging *window* (its whole stay in the relaxation, its connector window once assigned).
For vehicle v and window slot t (grid-side kW, battery-side kWh, slot length dt hours):

- ``p[v,t]`` power drawn, ``0 <= p <= max_kw[v]``
- ``e[v,t]`` battery energy at the end of slot t: ``e[v,t] = e[v,t-1] + efficiency * dt * p[v,t]``
- taper: ``p[v,t] <= a_k + b_k * e[v,t]`` for each segment k of the concave taper (checked at the
  slot's end energy, where a decreasing curve is tightest); ``e <= max_kwh`` (SoC <= max)
- ``u[v]`` shortfall: ``e[v,last] + u[v] >= target_kwh[v]``, cost = priority-weighted penalty
- site: ``sum_v p[v,t] <= site_limit_kw[t]``
- demand: ``peak >= base_load[t] + sum_v p[v,t]`` on demand slots, ``peak >= month_peak_kw``,
  cost ``demand_charge * (peak - month_peak_kw)``
- wear hinges: ``h[v,t] >= e[v,t] - high_soc_kwh`` and ``c[v,t] >= p[v,t] - c_rate * capacity``.

Connector limits are added by the caller: aggregated per compatibility group in the relaxation
(``add_group_limits``), exactly per charger once each vehicle has a connector (``add_charger_limits``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from .instance import Instance
from .quantities import VehicleArrays, taper_lines

INF = highspy.kHighsInf
# Measured on the generated depots (bench/): dual simplex is faster than interior point up to a
# few hundred vehicles; at ~1,000 vehicles they are even, and interior point wins beyond.
IPM_MIN_COLUMNS = 100_000


@dataclass
class Windows:
    """Per vehicle: the slots ``[start, end)`` it may charge in, and its power bound (kW)."""

    start: np.ndarray
    end: np.ndarray
    max_kw: np.ndarray

    @property
    def length(self) -> np.ndarray:
        return np.maximum(self.end - self.start, 0)


class LpModel:
    """Columns, rows and matrix entries collected as numpy blocks, passed to HiGHS in one call."""

    def __init__(self) -> None:
        self.cost: list[np.ndarray] = []
        self.col_lower: list[np.ndarray] = []
        self.col_upper: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.row_lower: list[np.ndarray] = []
        self.row_upper: list[np.ndarray] = []
        self.entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.num_cols = 0
        self.num_rows = 0
        self.offset = 0.0

    def add_cols(self, cost, lower, upper, *, integer: bool = False) -> int:
        """Add a block of columns; returns the index of the first one."""
        cost = np.asarray(cost, dtype=float)
        first = self.num_cols
        self.cost.append(cost)
        self.col_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), cost.shape))
        self.col_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), cost.shape))
        self.integer.append(np.full(cost.shape, integer))
        self.num_cols += cost.size
        return first

    def add_rows(self, lower, upper, size: int) -> int:
        first = self.num_rows
        self.row_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), (size,)))
        self.row_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (size,)))
        self.num_rows += size
        return first

    def add_entries(self, rows, cols, values) -> None:
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        self.entries.append((rows, cols, np.broadcast_to(np.asarray(values, dtype=float), rows.shape)))

    def solve(self, *, time_limit_s: float | None = None, mip_rel_gap: float = 1e-4) -> LpSolution:
        started = time.perf_counter()
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.num_cols, self.num_rows
        lp.col_cost_ = np.concatenate(self.cost) if self.cost else np.zeros(0)
        lp.col_lower_ = np.concatenate(self.col_lower) if self.cost else np.zeros(0)
        lp.col_upper_ = np.concatenate(self.col_upper) if self.cost else np.zeros(0)
        lp.row_lower_ = np.concatenate(self.row_lower) if self.row_lower else np.zeros(0)
        lp.row_upper_ = np.concatenate(self.row_upper) if self.row_lower else np.zeros(0)
        lp.offset_ = self.offset
        rows = np.concatenate([r for r, _, _ in self.entries]) if self.entries else np.zeros(0, int)
        cols = np.concatenate([c for _, c, _ in self.entries]) if self.entries else np.zeros(0, int)
        vals = np.concatenate([v for _, _, v in self.entries]) if self.entries else np.zeros(0)
        matrix = sp.csc_matrix((vals, (rows, cols)), shape=(self.num_rows, self.num_cols))
        matrix.sum_duplicates()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = self.num_cols, self.num_rows
        lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
        lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
        lp.a_matrix_.value_ = matrix.data
        is_mip = any(block.any() for block in self.integer)
        if is_mip:
            integer = np.concatenate(self.integer)
            lp.integrality_ = [
                highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous for flag in integer
            ]
            h.setOptionValue("mip_rel_gap", mip_rel_gap)
        elif self.num_cols >= IPM_MIN_COLUMNS:
            # Interior point without crossover: several times faster than simplex at depot scale;
            # the answer is not a vertex, which a charging plan does not need.
            h.setOptionValue("solver", "ipm")
            h.setOptionValue("run_crossover", "off")
        if time_limit_s is not None:
            h.setOptionValue("time_limit", float(time_limit_s))
        h.passModel(lp)
        h.run()
        status = h.getModelStatus()
        info = h.getInfo()
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        x = np.asarray(h.getSolution().col_value) if has_solution else None
        return LpSolution(
            status=h.modelStatusToString(status),
            optimal=status == highspy.HighsModelStatus.kOptimal,
            x=x,
            objective=info.objective_function_value if has_solution else None,
            mip_dual_bound=info.mip_dual_bound if is_mip else None,
            seconds=time.perf_counter() - started,
            num_cols=self.num_cols,
            num_rows=self.num_rows,
        )


@dataclass
class LpSolution:
    status: str
    optimal: bool
    x: np.ndarray | None
    objective: float | None
    mip_dual_bound: float | None
    seconds: float
    num_cols: int
    num_rows: int


@dataclass
class CoreIndex:
    """Where the core variables live. Pairs are (vehicle, window slot), vehicle by vehicle.

    There is no power column: the power of pair k is ``(e[k] - e[k-1]) / gain`` (kW), where
    ``e[k-1]`` of a window's first pair is the vehicle's fixed initial-energy column.
    ``power_terms`` gives that expression as matrix entries for any row that needs power.
    """

    pair_vehicle: np.ndarray
    pair_slot: np.ndarray
    first_pair: np.ndarray  # per vehicle, index of its first pair (len = vehicles + 1)
    e_col: int  # battery energy at the end of each pair's slot (kWh)
    initial_col: int  # per vehicle, fixed at its initial energy (kWh)
    u_col: int
    peak_col: int | None
    gain: float  # battery kWh per kW held for one slot (efficiency x slot hours)

    @property
    def num_pairs(self) -> int:
        return self.pair_vehicle.size

    def previous_energy_cols(self, pairs: np.ndarray) -> np.ndarray:
        """The column of each pair's energy at the start of its slot."""
        first = pairs == self.first_pair[self.pair_vehicle[pairs]]
        return np.where(first, self.initial_col + self.pair_vehicle[pairs], self.e_col + pairs - 1)

    def power_terms(self, pairs: np.ndarray, weight=1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``weight * power`` of each pair as entries: (index into ``pairs``, column, value)."""
        weight = np.broadcast_to(np.asarray(weight, dtype=float), pairs.shape) / self.gain
        which = np.arange(pairs.size)
        return (
            np.concatenate([which, which]),
            np.concatenate([self.e_col + pairs, self.previous_energy_cols(pairs)]),
            np.concatenate([weight, -weight]),
        )

    def add_power_rows(self, model: LpModel, first_row: int, row_of_pair: np.ndarray, pairs: np.ndarray, weight=1.0):
        """Add ``weight * power[pair]`` to row ``first_row + row_of_pair[i]`` for each ``pairs[i]``."""
        which, cols, values = self.power_terms(pairs, weight)
        model.add_entries(first_row + row_of_pair[which], cols, values)


def build_core(instance: Instance, va: VehicleArrays, windows: Windows, model: LpModel) -> CoreIndex:
    """Add the energy, power, taper, target, site, demand and wear parts of the model."""
    dt = instance.slot_hours
    gain = instance.charging_efficiency * dt
    wear = instance.wear
    num_vehicles = len(instance.vehicles)
    length = windows.length
    first_pair = np.concatenate([[0], np.cumsum(length)])
    pair_vehicle = np.repeat(np.arange(num_vehicles), length)
    pair_k = np.arange(pair_vehicle.size) - first_pair[pair_vehicle]
    pair_slot = windows.start[pair_vehicle] + pair_k
    n = pair_vehicle.size
    pairs = np.arange(n)
    max_kw = windows.max_kw[pair_vehicle]

    # Energy cost of power, price * dt * (e[k] - e[k-1]) / gain, telescoped onto the energy columns.
    price_cost = np.asarray(instance.energy_price_mxn_per_kwh, dtype=float)[pair_slot] * dt / gain
    e_cost = price_cost.copy()
    later = pairs[pair_k > 0]
    np.subtract.at(e_cost, later - 1, price_cost[later])
    initial_cost = np.zeros(num_vehicles)
    firsts = first_pair[:-1][length > 0]
    initial_cost[pair_vehicle[firsts]] = -price_cost[firsts]
    initial_col = model.add_cols(initial_cost, va.initial_kwh, va.initial_kwh)
    # The battery cannot hold more than it could have been given by the end of the slot.
    reachable_kwh = np.minimum(va.initial_kwh[pair_vehicle] + gain * max_kw * (pair_k + 1), va.max_kwh[pair_vehicle])
    e_col = model.add_cols(e_cost, va.initial_kwh[pair_vehicle], np.maximum(reachable_kwh, va.initial_kwh[pair_vehicle]))
    shortfall_max = np.maximum(va.target_kwh - va.initial_kwh, 0.0)
    # A vehicle without a window leaves with its whole shortfall: fix it through its bounds.
    u_col = model.add_cols(va.penalty_mxn_per_kwh, np.where(length > 0, 0.0, shortfall_max), shortfall_max)
    core = CoreIndex(pair_vehicle, pair_slot, first_pair, e_col, initial_col, u_col, None, gain)
    previous = core.previous_energy_cols(pairs)

    # Power bounds, one ranged row per pair: 0 <= e[k] - e[k-1] <= gain * max_kw. With a C-rate
    # wear cost, power above the threshold goes through c[k] in [0, max_kw - threshold], priced
    # per kWh: 0 <= e[k] - e[k-1] - gain * c[k] <= gain * threshold, so c = max(0, p - threshold)
    # at the optimum without a row of its own.
    c_rate_kw = wear.c_rate_threshold_per_h * va.capacity_kwh[pair_vehicle]
    fast = (max_kw > c_rate_kw + 1e-9) if wear.high_c_rate_mxn_per_kwh > 0 else np.zeros(n, dtype=bool)
    row = model.add_rows(0.0, gain * np.where(fast, c_rate_kw, max_kw), n)
    model.add_entries(row + pairs, e_col + pairs, 1.0)
    model.add_entries(row + pairs, previous, -1.0)
    fast_pairs = pairs[fast]
    if fast_pairs.size:
        c_col = model.add_cols(
            np.full(fast_pairs.size, wear.high_c_rate_mxn_per_kwh * dt), 0.0, max_kw[fast] - c_rate_kw[fast]
        )
        model.add_entries(row + fast_pairs, c_col + np.arange(fast_pairs.size), -gain)

    # Departure target: e[last] + u >= target.
    with_window = np.flatnonzero(length > 0)
    row = model.add_rows(va.target_kwh[with_window], INF, with_window.size)
    model.add_entries(row + np.arange(with_window.size), e_col + first_pair[with_window + 1] - 1, 1.0)
    model.add_entries(row + np.arange(with_window.size), u_col + with_window, 1.0)

    _add_taper(instance, va, windows, model, core)

    # Site limit per slot.
    slots, slot_of_pair = np.unique(pair_slot, return_inverse=True)
    site = np.asarray(instance.site_limit_kw, dtype=float)
    row = model.add_rows(-INF, site[slots], slots.size)
    core.add_power_rows(model, row, slot_of_pair, pairs)

    core.peak_col = _add_demand(instance, model, core)
    _add_high_soc_wear(instance, va, windows, model, core, reachable_kwh)
    return core


def _add_taper(instance, va, windows, model, core: CoreIndex) -> None:
    """p[v,t] - b * e[v,t] <= a for every taper line that can bind within the vehicle's range.

    In energy terms (times gain): (1 - gain * b) * e[k] - e[k-1] <= gain * a.
    """
    line_vehicle, line_a, line_b = [], [], []
    for v, vehicle in enumerate(instance.vehicles):
        if windows.end[v] <= windows.start[v]:
            continue
        for a, b in taper_lines(vehicle):
            lowest_kw = min(a + b * va.initial_kwh[v], a + b * va.max_kwh[v])
            if lowest_kw < windows.max_kw[v]:  # a line that never goes below the bound is idle
                line_vehicle.append(v)
                line_a.append(a)
                line_b.append(b)
    if not line_vehicle:
        return
    line_vehicle = np.array(line_vehicle)
    count = windows.length[line_vehicle]
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    pair = np.repeat(core.first_pair[line_vehicle], count) + k
    a, b, v = np.repeat(line_a, count), np.repeat(line_b, count), np.repeat(line_vehicle, count)
    # Early in the window the battery cannot yet be high enough for the line to bind: skip those.
    gain = core.gain
    reachable_kwh = np.minimum(va.initial_kwh[v] + gain * windows.max_kw[v] * (k + 1), va.max_kwh[v])
    lowest_kw = np.minimum(a + b * va.initial_kwh[v], a + b * reachable_kwh)
    keep = lowest_kw < windows.max_kw[v]
    pair, a, b = pair[keep], a[keep], b[keep]
    row = model.add_rows(-INF, gain * a, pair.size)
    rows = row + np.arange(pair.size)
    model.add_entries(rows, core.e_col + pair, 1.0 - gain * b)
    model.add_entries(rows, core.previous_energy_cols(pair), -1.0)


def _add_demand(instance: Instance, model: LpModel, core: CoreIndex) -> int | None:
    if instance.demand_charge_mxn_per_kw <= 0:
        return None
    demand = np.array(instance.demand_mask())
    base = np.array(instance.base_load())
    floor_kw = max(instance.month_peak_kw, base[demand].max(initial=0.0))
    peak_col = model.add_cols([instance.demand_charge_mxn_per_kw], floor_kw, INF)
    model.offset -= instance.demand_charge_mxn_per_kw * instance.month_peak_kw
    in_demand = np.flatnonzero(demand[core.pair_slot])
    slots, slot_of_pair = np.unique(core.pair_slot[in_demand], return_inverse=True)
    row = model.add_rows(-INF, -base[slots], slots.size)
    core.add_power_rows(model, row, slot_of_pair, in_demand)
    model.add_entries(row + np.arange(slots.size), np.full(slots.size, peak_col), -1.0)
    return peak_col


def _add_high_soc_wear(instance, va, windows, model, core: CoreIndex, reachable_kwh: np.ndarray) -> None:
    """Hinges ``h >= e - threshold`` for time at high SoC, only where the battery can get there."""
    wear = instance.wear
    if wear.high_soc_mxn_per_kwh_h <= 0:
        return
    dt = instance.slot_hours
    length = windows.length
    high_soc_kwh = wear.high_soc_threshold_pct / 100.0 * va.capacity_kwh
    # Energy above the threshold before the window (constant) costs regardless of the plan.
    before = (windows.start - va.arrival_slot) * (length > 0) + (va.departure_slot - va.arrival_slot) * (length == 0)
    model.offset += (
        wear.high_soc_mxn_per_kwh_h
        * dt
        * float((np.maximum(va.initial_kwh - high_soc_kwh, 0.0) * np.maximum(before, 0)).sum())
    )
    pairs = np.flatnonzero(reachable_kwh > high_soc_kwh[core.pair_vehicle] + 1e-9)
    if not pairs.size:
        return
    v = core.pair_vehicle[pairs]
    # The window's last energy is held until departure: weight it by the slots left.
    is_last = pairs == core.first_pair[v + 1] - 1
    held_slots = np.where(is_last, 1 + va.departure_slot[v] - windows.end[v], 1)
    col = model.add_cols(wear.high_soc_mxn_per_kwh_h * dt * held_slots, 0.0, INF)
    row = model.add_rows(-INF, high_soc_kwh[v], pairs.size)
    k = np.arange(pairs.size)
    model.add_entries(row + k, core.e_col + pairs, 1.0)
    model.add_entries(row + k, col + k, -1.0)


def add_charger_limits(
    instance: Instance, core: CoreIndex, windows: Windows, charger_of_vehicle: np.ndarray, model: LpModel
) -> None:
    """Exact per-charger limits once every vehicle has a connector (``-1`` = none).

    Rows are only added for (charger, slot) pairs where the vehicles present could exceed it.
    """
    chargers = [ch.max_kw for ch in instance.chargers]
    has = charger_of_vehicle[core.pair_vehicle] >= 0
    pairs = np.flatnonzero(has)
    if not pairs.size:
        return
    charger = charger_of_vehicle[core.pair_vehicle[pairs]]
    key = charger * instance.num_slots + core.pair_slot[pairs]
    keys, key_of_pair = np.unique(key, return_inverse=True)
    possible_kw = np.bincount(key_of_pair, weights=windows.max_kw[core.pair_vehicle[pairs]])
    limit = np.asarray(chargers)[keys // instance.num_slots]
    binding = possible_kw > limit + 1e-9
    if not binding.any():
        return
    row_of_key = np.cumsum(binding) - 1
    row = model.add_rows(-INF, limit[binding], int(binding.sum()))
    keep = binding[key_of_pair]
    core.add_power_rows(model, row, row_of_key[key_of_pair[keep]], pairs[keep])


def add_group_limits(
    instance: Instance,
    core: CoreIndex,
    windows: Windows,
    groups: list[tuple[np.ndarray, int, float]],
    model: LpModel,
) -> None:
    """Aggregated connector limits for the relaxation (before connectors are assigned).

    Each group is (member vehicles, connector count, power capacity kW): the vehicles whose
    compatible connectors all lie in one set K share K's connectors and K's chargers. Per slot:
    ``sum p <= capacity`` and, with occupancy ``0 <= x <= 1`` and ``p <= max_kw * x``,
    ``sum x <= count``. Both are necessary for any assignment, so the LP stays a valid bound.
    """
    occupancy_col: dict[int, int] = {}  # pair -> x column, created once per pair
    for members, count, capacity_kw in groups:
        in_group = np.zeros(len(instance.vehicles), dtype=bool)
        in_group[members] = True
        pairs = np.flatnonzero(in_group[core.pair_vehicle])
        if not pairs.size:
            continue
        slots, slot_of_pair = np.unique(core.pair_slot[pairs], return_inverse=True)
        possible_kw = np.bincount(slot_of_pair, weights=windows.max_kw[core.pair_vehicle[pairs]])
        binding = np.flatnonzero(possible_kw > capacity_kw + 1e-9)
        if binding.size:
            keep = np.isin(slot_of_pair, binding)
            row_of_slot = np.full(slots.size, -1)
            row = model.add_rows(-INF, capacity_kw, binding.size)
            row_of_slot[binding] = row + np.arange(binding.size)
            core.add_power_rows(model, 0, row_of_slot[slot_of_pair[keep]], pairs[keep])
        present = np.bincount(slot_of_pair)
        crowded = np.flatnonzero(present > count)
        if not crowded.size:
            continue
        keep = np.isin(slot_of_pair, crowded)
        crowded_pairs = pairs[keep]
        new = np.array([q for q in crowded_pairs if q not in occupancy_col], dtype=int)
        if new.size:
            col = model.add_cols(np.zeros(new.size), 0.0, 1.0)
            occupancy_col.update(zip(new.tolist(), (col + np.arange(new.size)).tolist(), strict=True))
            # p <= max_kw * x
            row = model.add_rows(-INF, 0.0, new.size)
            k = np.arange(new.size)
            core.add_power_rows(model, row, k, new)
            model.add_entries(row + k, col + k, -windows.max_kw[core.pair_vehicle[new]])
        x_cols = np.array([occupancy_col[q] for q in crowded_pairs.tolist()])
        row_of_slot = np.full(slots.size, -1)
        row = model.add_rows(-INF, float(count), crowded.size)
        row_of_slot[crowded] = row + np.arange(crowded.size)
        model.add_entries(row_of_slot[slot_of_pair[keep]], x_cols, 1.0)


def power_matrix(core: CoreIndex, windows: Windows, x: np.ndarray, num_vehicles: int, num_slots: int) -> np.ndarray:
    """Grid power (kW) per vehicle and slot from a solution, clipped to the bounds the LP had."""
    power = np.zeros((num_vehicles, num_slots))
    pairs = np.arange(core.num_pairs)
    p = (x[core.e_col + pairs] - x[core.previous_energy_cols(pairs)]) / core.gain
    power[core.pair_vehicle, core.pair_slot] = np.clip(p, 0.0, windows.max_kw[core.pair_vehicle])
    return power
