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

Speed (see docs/optimizer.md): ``build_core(lazy=True)`` leaves most taper rows and the C-rate
hinges out, and ``LpModel.solve(lazy=core.lazy)`` adds back only those the solution needs,
re-solving from the previous basis with dual simplex (``LazyCuts``). At depot scale that is a
fraction of them, and the answer is exactly the full LP's.
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
# Models solved in one go (no lazy cuts) of at least this many columns use interior point. With
# lazy cuts it is always dual simplex, which restarts from the previous basis after each round;
# measured on the 1,000-bus night (bench/), the lazy simplex path is 5-8x faster than interior
# point (IPX, or HiPO from highspy-extras) on the full model, and interior point + crossover for
# the first lazy round alone is 3-5x slower than dual simplex at 1,000 and 3,000 buses.
IPM_MIN_COLUMNS = 100_000
# Lazy taper rows of the last slots of each window that go into the first model (see build_core).
TAPER_UPFRONT_SLOTS = 3


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

    def solve(
        self, *, time_limit_s: float | None = None, mip_rel_gap: float = 1e-4, lazy: LazyCuts | None = None
    ) -> LpSolution:
        """Solve with HiGHS. With ``lazy``, add the cuts the solution breaks and re-solve until none.

        Re-solves start from the previous basis (dual simplex: new rows keep it dual feasible),
        so each round costs a fraction of the first solve.
        """
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
        elif lazy is None and self.num_cols >= IPM_MIN_COLUMNS:
            # Interior point without crossover: the answer is not a vertex, which a charging plan
            # does not need. Only without lazy cuts: interior point cannot restart from a basis.
            h.setOptionValue("solver", "ipm")
            h.setOptionValue("run_crossover", "off")
        else:
            h.setOptionValue("solver", "simplex")
        if time_limit_s is not None:
            h.setOptionValue("time_limit", float(time_limit_s))
        h.passModel(lp)
        h.run()
        rounds = 0
        while lazy is not None and h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            if not lazy.add_broken(h, np.asarray(h.getSolution().col_value)):
                break
            rounds += 1
            if time_limit_s is not None:
                left = time_limit_s - (time.perf_counter() - started)
                if left <= 0:
                    break
                h.setOptionValue("time_limit", left)
            h.run()
        status = h.getModelStatus()
        info = h.getInfo()
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        x = np.asarray(h.getSolution().col_value) if has_solution else None
        return LpSolution(
            status=h.modelStatusToString(status),
            optimal=status == highspy.HighsModelStatus.kOptimal and (lazy is None or not lazy.pending(x)),
            x=x,
            objective=info.objective_function_value if has_solution else None,
            mip_dual_bound=info.mip_dual_bound if is_mip else None,
            seconds=time.perf_counter() - started,
            num_cols=h.getNumCol(),
            num_rows=h.getNumRow(),
            lazy_rounds=rounds,
        )


class LazyCuts:
    """Taper rows and C-rate hinges that are left out of the first solve and added when needed.

    At depot scale most of them never bind: the site limit spreads the night's energy so thinly
    that few buses charge near full power or in the taper.

    - Taper: the rows of the last ``TAPER_UPFRONT_SLOTS`` slots of each window are in the first
      model (charging finishes close to departure, so that is where the taper binds); the others
      are added when the solution breaks them.
    - C-rate: the power starts bounded by the threshold, without the hinge. A vertex of the model
      with the hinge and no bound would often charge at full power in the cheapest slots at no
      cost difference worth a hinge, and each added hinge is a row and a column every later round
      pays for. The bound is lifted (and the hinge added) only where the reduced cost of power held
      at the threshold says more power would pay even with the hinge's cost; where it does not,
      the duals of the bounded model are feasible for the full one, so its optimum is the full
      model's.

    A solution of the smaller model that breaks no left-out taper row and needs no lifted bound is
    optimal for the full model, so the bound and the plan are exactly those of the full LP
    (``tests/charging/test_optimizer_properties.py`` compares the two).
    """

    # Broken by more than this (kW): solvers stop at ~1e-7 relative, the evaluator at 1e-6.
    TOLERANCE_KW = 1e-9

    def __init__(
        self, core: CoreIndex, taper: tuple[np.ndarray, np.ndarray, np.ndarray], c_rate, c_rate_cost: float, c_max_kw
    ):
        self.p_col, self.e_col = core.p_col, core.e_col
        self.pair_vehicle = core.pair_vehicle
        self.num_vehicles = core.first_pair.size - 1
        self.taper_pair, self.taper_a, self.taper_b = taper
        self.taper_added = np.zeros(self.taper_pair.size, dtype=bool)
        self.c_pair, self.c_limit_kw = c_rate
        self.c_max_kw = c_max_kw  # the power bound those pairs get back with their hinge
        self.c_added = np.zeros(self.c_pair.size, dtype=bool)
        self.c_cost = c_rate_cost
        self.clean = False  # the last solution checked broke nothing
        self.added_rows = 0
        self.added_cols = 0

    def _broken(self, x: np.ndarray, reduced_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, e = x[self.p_col + self.taper_pair], x[self.e_col + self.taper_pair]
        taper = ~self.taper_added & (p - self.taper_b * e > self.taper_a * (1 + 1e-9) + self.TOLERANCE_KW)
        # Power held at the C-rate threshold whose reduced cost says more would pay even with the
        # hinge's cost: there the full model's dual is infeasible (beyond HiGHS's tolerance, 1e-7).
        fast = ~self.c_added & (reduced_cost[self.p_col + self.c_pair] < -self.c_cost - 1e-7)
        return np.flatnonzero(taper), np.flatnonzero(fast)

    def pending(self, x: np.ndarray | None) -> bool:
        """Whether the last solution checked (``x``) still broke something (e.g. on a time limit)."""
        return x is not None and not self.clean

    def add_broken(self, h: highspy.Highs, x: np.ndarray) -> bool:
        """Add what the solution ``x`` of ``h`` breaks to the model; returns whether anything was added."""
        taper, fast = self._broken(x, np.asarray(h.getSolution().col_dual))
        self.clean = not (taper.size or fast.size)
        if taper.size:
            # Past one broken slot the vehicle is in its taper: add its later rows too.
            vehicle = self.pair_vehicle[self.taper_pair]
            first_broken = np.full(self.num_vehicles, np.iinfo(np.int64).max)
            np.minimum.at(first_broken, vehicle[taper], self.taper_pair[taper])
            taper = np.flatnonzero(~self.taper_added & (self.taper_pair >= first_broken[vehicle]))
            self.taper_added[taper] = True
            pair = self.taper_pair[taper]
            n = pair.size
            starts = np.arange(0, 2 * n, 2, dtype=np.int32)
            index = np.empty(2 * n, dtype=np.int32)
            index[0::2], index[1::2] = self.p_col + pair, self.e_col + pair
            value = np.empty(2 * n)
            value[0::2], value[1::2] = 1.0, -self.taper_b[taper]
            h.addRows(n, np.full(n, -INF), self.taper_a[taper], 2 * n, starts, index, value)
            self.added_rows += n
        if fast.size:
            self.c_added[fast] = True
            n = fast.size
            # The power bound goes back to the vehicle's, above the threshold through the hinge.
            p_cols = (self.p_col + self.c_pair[fast]).astype(np.int32)
            h.changeColsBounds(n, p_cols, np.zeros(n), self.c_max_kw[fast])
            first_col = h.getNumCol()
            h.addCols(
                n,
                np.full(n, self.c_cost),
                np.zeros(n),
                np.full(n, INF),
                0,
                np.zeros(0, np.int32),
                np.zeros(0, np.int32),
                np.zeros(0),
            )
            # p - c <= threshold
            starts = np.arange(0, 2 * n, 2, dtype=np.int32)
            index = np.empty(2 * n, dtype=np.int32)
            index[0::2], index[1::2] = self.p_col + self.c_pair[fast], first_col + np.arange(n)
            value = np.tile([1.0, -1.0], n)
            h.addRows(n, np.full(n, -INF), self.c_limit_kw[fast], 2 * n, starts, index, value)
            self.added_rows += n
            self.added_cols += n
        return bool(taper.size or fast.size)


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
    lazy_rounds: int = 0


@dataclass
class CoreIndex:
    """Where the core variables live. Pairs are (vehicle, window slot), vehicle by vehicle."""

    pair_vehicle: np.ndarray
    pair_slot: np.ndarray
    first_pair: np.ndarray  # per vehicle, index of its first pair (len = vehicles + 1)
    p_col: int
    e_col: int
    u_col: int
    peak_col: int | None
    lazy: LazyCuts | None = None  # what build_core(lazy=True) left out

    @property
    def num_pairs(self) -> int:
        return self.pair_vehicle.size


def build_core(
    instance: Instance, va: VehicleArrays, windows: Windows, model: LpModel, *, lazy: bool = False
) -> CoreIndex:
    """Add the power, energy, taper, target, site, demand and wear parts of the model.

    With ``lazy``, taper rows and C-rate hinges are not added but kept in ``core.lazy``: pass it
    to ``model.solve(lazy=...)``, which adds those the solution breaks (see ``LazyCuts``).
    """
    dt = instance.slot_hours
    gain = instance.charging_efficiency * dt
    num_vehicles = len(instance.vehicles)
    length = windows.length
    first_pair = np.concatenate([[0], np.cumsum(length)])
    pair_vehicle = np.repeat(np.arange(num_vehicles), length)
    pair_k = np.arange(pair_vehicle.size) - first_pair[pair_vehicle]
    pair_slot = windows.start[pair_vehicle] + pair_k
    n = pair_vehicle.size
    price = np.asarray(instance.energy_price_mxn_per_kwh, dtype=float)

    p_upper = windows.max_kw[pair_vehicle].copy()
    if lazy and instance.wear.high_c_rate_mxn_per_kwh > 0:
        # Lazy C-rate hinges: the power starts bounded by the threshold (see ``LazyCuts``).
        c_rate_kw = instance.wear.c_rate_threshold_per_h * va.capacity_kwh[pair_vehicle]
        p_upper = np.where(p_upper > c_rate_kw + 1e-9, c_rate_kw, p_upper)  # the pairs ``_add_wear`` returns
    p_col = model.add_cols(price[pair_slot] * dt, 0.0, p_upper)
    e_col = model.add_cols(np.zeros(n), va.initial_kwh[pair_vehicle], va.max_kwh[pair_vehicle])
    shortfall_max = np.maximum(va.target_kwh - va.initial_kwh, 0.0)
    # A vehicle without a window leaves with its whole shortfall: fix it through its bounds.
    u_col = model.add_cols(va.penalty_mxn_per_kwh, np.where(length > 0, 0.0, shortfall_max), shortfall_max)

    # Energy balance, one equality row per pair: e[t] - e[t-1] - gain * p[t] = 0 (initial energy
    # on the right-hand side for the first slot of the window).
    rhs = np.where(pair_k == 0, va.initial_kwh[pair_vehicle], 0.0)
    row = model.add_rows(rhs, rhs, n)
    pairs = np.arange(n)
    model.add_entries(row + pairs, e_col + pairs, 1.0)
    model.add_entries(row + pairs, p_col + pairs, -gain)
    later = pairs[pair_k > 0]
    model.add_entries(row + later, e_col + later - 1, -1.0)

    # Departure target: e[last] + u >= target.
    with_window = np.flatnonzero(length > 0)
    row = model.add_rows(va.target_kwh[with_window], INF, with_window.size)
    model.add_entries(row + np.arange(with_window.size), e_col + first_pair[with_window + 1] - 1, 1.0)
    model.add_entries(row + np.arange(with_window.size), u_col + with_window, 1.0)

    taper = _taper_rows(instance, va, windows, first_pair)
    # Lazy: only the rows of the last slots of each window go in at once. The high-SoC wear makes
    # charging finish close to departure, so that is where the taper binds (see ``LazyCuts``).
    taper_now = taper[0] >= first_pair[pair_vehicle[taper[0]] + 1] - TAPER_UPFRONT_SLOTS if lazy else slice(None)
    _add_taper(model, tuple(part[taper_now] for part in taper), p_col, e_col)

    # Site limit per slot.
    slots, slot_of_pair = np.unique(pair_slot, return_inverse=True)
    site = np.asarray(instance.site_limit_kw, dtype=float)
    row = model.add_rows(-INF, site[slots], slots.size)
    model.add_entries(row + slot_of_pair, p_col + pairs, 1.0)

    peak_col = _add_demand(instance, model, pair_slot, p_col)
    c_rate = _add_wear(instance, va, windows, model, first_pair, pair_vehicle, pair_slot, p_col, e_col, lazy=lazy)
    core = CoreIndex(pair_vehicle, pair_slot, first_pair, p_col, e_col, u_col, peak_col)
    if lazy:
        c_max_kw = windows.max_kw[pair_vehicle[c_rate[0]]]
        core.lazy = LazyCuts(core, taper, c_rate, instance.wear.high_c_rate_mxn_per_kwh * dt, c_max_kw)
        core.lazy.taper_added[taper_now] = True
    return core


def _taper_rows(instance, va, windows, first_pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair, a, b) of every row p[v,t] - b * e[v,t] <= a of a taper line that can bind."""
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
        return np.zeros(0, dtype=int), np.zeros(0), np.zeros(0)
    line_vehicle = np.array(line_vehicle)
    count = windows.length[line_vehicle]
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    pair = np.repeat(first_pair[line_vehicle], count) + k
    a, b, v = np.repeat(line_a, count), np.repeat(line_b, count), np.repeat(line_vehicle, count)
    # Early in the window the battery cannot yet be high enough for the line to bind: skip those.
    gain = instance.charging_efficiency * instance.slot_hours
    reachable_kwh = np.minimum(va.initial_kwh[v] + gain * windows.max_kw[v] * (k + 1), va.max_kwh[v])
    lowest_kw = np.minimum(a + b * va.initial_kwh[v], a + b * reachable_kwh)
    keep = lowest_kw < windows.max_kw[v]
    return pair[keep], a[keep], b[keep]


def _add_taper(model: LpModel, taper, p_col: int, e_col: int) -> None:
    pair, a, b = taper
    if not pair.size:
        return
    row = model.add_rows(-INF, a, pair.size)
    rows = row + np.arange(pair.size)
    model.add_entries(rows, p_col + pair, 1.0)
    model.add_entries(rows, e_col + pair, -b)


def _add_demand(instance: Instance, model: LpModel, pair_slot: np.ndarray, p_col: int) -> int | None:
    if instance.demand_charge_mxn_per_kw <= 0:
        return None
    demand = np.array(instance.demand_mask())
    base = np.array(instance.base_load())
    floor_kw = max(instance.month_peak_kw, base[demand].max(initial=0.0))
    peak_col = model.add_cols([instance.demand_charge_mxn_per_kw], floor_kw, INF)
    model.offset -= instance.demand_charge_mxn_per_kw * instance.month_peak_kw
    in_demand = np.flatnonzero(demand[pair_slot])
    slots, slot_of_pair = np.unique(pair_slot[in_demand], return_inverse=True)
    row = model.add_rows(-INF, -base[slots], slots.size)
    model.add_entries(row + slot_of_pair, p_col + in_demand, 1.0)
    model.add_entries(row + np.arange(slots.size), np.full(slots.size, peak_col), -1.0)
    return peak_col


def _add_wear(instance, va, windows, model, first_pair, pair_vehicle, pair_slot, p_col, e_col, *, lazy: bool):
    """Hinge variables for time at high SoC and for high C-rate, only where they can be non-zero.

    Returns the C-rate hinges as (pairs, threshold kW); with ``lazy`` they are not added.
    """
    no_c_rate = (np.zeros(0, dtype=int), np.zeros(0))
    wear = instance.wear
    dt = instance.slot_hours
    length = windows.length
    high_soc_kwh = wear.high_soc_threshold_pct / 100.0 * va.capacity_kwh
    if wear.high_soc_mxn_per_kwh_h > 0:
        # Energy above the threshold before the window (constant) costs regardless of the plan.
        before = (windows.start - va.arrival_slot) * (length > 0) + (va.departure_slot - va.arrival_slot) * (
            length == 0
        )
        model.offset += (
            wear.high_soc_mxn_per_kwh_h
            * dt
            * float((np.maximum(va.initial_kwh - high_soc_kwh, 0.0) * np.maximum(before, 0)).sum())
        )
        # Only where the battery can be above the threshold by the end of the slot.
        k = np.arange(pair_vehicle.size) - first_pair[pair_vehicle]
        reachable_kwh = np.minimum(
            va.initial_kwh[pair_vehicle] + instance.charging_efficiency * dt * windows.max_kw[pair_vehicle] * (k + 1),
            va.max_kwh[pair_vehicle],
        )
        pairs = np.flatnonzero(reachable_kwh > high_soc_kwh[pair_vehicle] + 1e-9)
        if pairs.size:
            v = pair_vehicle[pairs]
            # The window's last energy is held until departure: weight it by the slots left.
            is_last = pairs == first_pair[v + 1] - 1
            held_slots = np.where(is_last, 1 + va.departure_slot[v] - windows.end[v], 1)
            col = model.add_cols(wear.high_soc_mxn_per_kwh_h * dt * held_slots, 0.0, INF)
            row = model.add_rows(-INF, high_soc_kwh[v], pairs.size)
            k = np.arange(pairs.size)
            model.add_entries(row + k, e_col + pairs, 1.0)
            model.add_entries(row + k, col + k, -1.0)
    if wear.high_c_rate_mxn_per_kwh <= 0:
        return no_c_rate
    c_rate_kw = wear.c_rate_threshold_per_h * va.capacity_kwh
    pairs = np.flatnonzero((windows.max_kw > c_rate_kw + 1e-9)[pair_vehicle])
    if lazy:
        return pairs, c_rate_kw[pair_vehicle[pairs]]
    if pairs.size:
        v = pair_vehicle[pairs]
        col = model.add_cols(np.full(pairs.size, wear.high_c_rate_mxn_per_kwh * dt), 0.0, INF)
        row = model.add_rows(-INF, c_rate_kw[v], pairs.size)
        k = np.arange(pairs.size)
        model.add_entries(row + k, p_col + pairs, 1.0)
        model.add_entries(row + k, col + k, -1.0)
    return no_c_rate


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
    model.add_entries(row + row_of_key[key_of_pair[keep]], core.p_col + pairs[keep], 1.0)


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
            model.add_entries(row_of_slot[slot_of_pair[keep]], core.p_col + pairs[keep], 1.0)
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
            model.add_entries(row + k, core.p_col + new, 1.0)
            model.add_entries(row + k, col + k, -windows.max_kw[core.pair_vehicle[new]])
        x_cols = np.array([occupancy_col[q] for q in crowded_pairs.tolist()])
        row_of_slot = np.full(slots.size, -1)
        row = model.add_rows(-INF, float(count), crowded.size)
        row_of_slot[crowded] = row + np.arange(crowded.size)
        model.add_entries(row_of_slot[slot_of_pair[keep]], x_cols, 1.0)


def power_matrix(core: CoreIndex, windows: Windows, x: np.ndarray, num_vehicles: int, num_slots: int) -> np.ndarray:
    """Grid power (kW) per vehicle and slot from a solution, clipped to the bounds the LP had."""
    power = np.zeros((num_vehicles, num_slots))
    p = x[core.p_col : core.p_col + core.num_pairs]
    power[core.pair_vehicle, core.pair_slot] = np.clip(p, 0.0, windows.max_kw[core.pair_vehicle])
    return power
