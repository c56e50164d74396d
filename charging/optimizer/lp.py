"""The depot-night linear program, built in bulk with numpy and solved with HiGHS.

Variables exist only where they mean something: a vehicle gets a power variable for each slot
of its charging *window* (its whole stay in the relaxation, its connector window once assigned).
For vehicle v and window slot t (grid-side kW, battery-side kWh, slot length dt hours):

- ``p[v,t]`` power drawn, ``0 <= p <= max_kw[v]``
- ``e[v,t]`` battery energy at the end of slot t: ``e[v,t] = e[v,t-1] + efficiency * dt * p[v,t]``
- taper: ``p[v,t] <= a_k + b_k * e`` for each line k of the planning taper (``taper_lines``), at
  every energy of the slot: its end energy ``e[v,t]`` for a falling line, its start energy for a
  rising one; ``e <= max_kwh`` (SoC <= max)
- ``u[v]`` shortfall: ``e[v,last] + u[v] >= target_kwh[v]``, cost = priority-weighted penalty
- site: ``sum_v p[v,t] <= site_limit_kw[t]``
- demand, one peak per demand charge c: ``peak_c >= base_load[t] + sum_v p[v,t]`` on c's slots,
  ``peak_c >= month_peak_kw_c``, cost ``price_c * (peak_c - month_peak_kw_c)``
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
from enum import IntEnum
from typing import Any

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
# An LP started from a carried basis (sifting's later rounds): 4 = primal simplex. The basis is
# primal feasible and only the few added columns have a negative reduced cost, the case primal
# simplex is for (measured on the 3,000-bus night: see docs/optimizer.md).
SIMPLEX_STRATEGY_WARM = 4
# After a lazy round's cuts the basis stays dual feasible: 1 = dual simplex (HiGHS's default).
SIMPLEX_STRATEGY_LAZY = 1
# Lazy taper rows of the last slots of each window that go into the first model (see build_core).
TAPER_UPFRONT_SLOTS = 3


class Key(IntEnum):
    """What a column or row is, for recognising it in the next model of a sifting round.

    ``key(kind, first, second)``: ``first`` a vehicle, slot, line, group, charger or charge,
    ``second`` a slot (or 0). Sifting rebuilds the model with more slots each round and starts the
    new one from the old basis, matched through these keys (``sifting._carried_basis``).
    """

    P = 1  # power (vehicle, slot)
    E = 2  # energy (vehicle, slot)
    U = 3  # shortfall (vehicle)
    PEAK = 4  # peak (demand charge)
    HINGE_COL = 5  # high-SoC hinge (vehicle, slot)
    OCCUPANCY_COL = 6  # connector occupancy (vehicle, slot)
    C_RATE_COL = 7  # C-rate hinge (vehicle, slot)
    BALANCE = 11  # energy balance (vehicle, slot)
    TARGET = 12  # departure target (vehicle)
    TAPER = 13  # taper line (line, slot)
    SITE = 14  # site limit (slot)
    DEMAND = 15  # peak row (demand charge, slot)
    HINGE_ROW = 16  # (vehicle, slot)
    GROUP_POWER = 17  # (group, slot)
    OCCUPANCY_ROW = 18  # p <= max_kw * x (vehicle, slot)
    GROUP_COUNT = 19  # (group, slot)
    CHARGER = 20  # (charger, slot)
    C_RATE_ROW = 21  # (vehicle, slot)


def key(kind: Key, first: Any, second: Any = 0) -> np.ndarray:
    """Keys of columns or rows: kind in the high bits, then ``first`` (< 2**24), then ``second`` (< 2**16)."""
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    return np.asarray((np.int64(kind) << 40) | (first << 16) | second, dtype=np.int64)


@dataclass
class Windows:
    """Per vehicle: the slots ``[start, end)`` it may charge in, and its power bound (kW)."""

    start: np.ndarray
    end: np.ndarray
    max_kw: np.ndarray

    @property
    def length(self) -> np.ndarray:
        return np.asarray(np.maximum(self.end - self.start, 0))

    @classmethod
    def whole_stays(cls, va: VehicleArrays, compatible: list[np.ndarray], max_kw: np.ndarray) -> Windows:
        """Each vehicle's whole stay (empty without a compatible connector), at ``max_kw``."""
        has = np.array([c.size > 0 for c in compatible], dtype=bool)
        return cls(start=va.arrival_slot, end=np.where(has, va.departure_slot, va.arrival_slot), max_kw=max_kw)


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
        self.col_key: list[np.ndarray] = []  # -1: a column no later model needs to recognise
        self.row_key: list[np.ndarray] = []
        self.num_cols = 0
        self.num_rows = 0
        self.offset = 0.0

    def add_cols(
        self, cost: Any, lower: Any, upper: Any, *, integer: bool = False, keys: np.ndarray | None = None
    ) -> int:
        """Add a block of columns; returns the index of the first one. ``keys``: see ``Key``."""
        cost = np.asarray(cost, dtype=float)
        first = self.num_cols
        self.col_key.append(
            np.full(cost.shape, -1, dtype=np.int64) if keys is None else np.broadcast_to(keys, cost.shape)
        )
        self.cost.append(cost)
        self.col_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), cost.shape))
        self.col_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), cost.shape))
        self.integer.append(np.full(cost.shape, integer))
        self.num_cols += cost.size
        return first

    def add_rows(self, lower: Any, upper: Any, size: int, *, keys: np.ndarray | None = None) -> int:
        first = self.num_rows
        self.row_key.append(np.full(size, -1, dtype=np.int64) if keys is None else np.broadcast_to(keys, (size,)))
        self.row_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), (size,)))
        self.row_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (size,)))
        self.num_rows += size
        return first

    def add_entries(self, rows: Any, cols: Any, values: Any) -> None:
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        self.entries.append((rows, cols, np.broadcast_to(np.asarray(values, dtype=float), rows.shape)))

    def solve(
        self,
        *,
        time_limit_s: float | None = None,
        mip_rel_gap: float = 1e-4,
        lazy: LazyCuts | None = None,
        start: tuple[np.ndarray, np.ndarray] | None = None,
        max_nodes: int | None = None,
        basis: tuple[np.ndarray, np.ndarray] | None = None,
        keep_basis: bool = False,
    ) -> LpSolution:
        """Solve with HiGHS. With ``lazy``, add the cuts the solution breaks and re-solve until none.

        Re-solves start from the previous basis (dual simplex: new rows keep it dual feasible),
        so each round costs a fraction of the first solve. ``basis`` (column and row
        ``HighsBasisStatus`` codes) starts an LP from a basis (sifting's next round); with
        ``keep_basis`` the solution carries its final basis and the columns' and rows' keys.
        """
        started = time.perf_counter()
        h = highspy.Highs()  # type: ignore[no-untyped-call]
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
            if max_nodes is not None:
                h.setOptionValue("mip_max_nodes", int(max_nodes))
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
        if basis is not None:
            # Primal simplex: the carried basis is primal feasible (see ``sifting._carried_basis``);
            # only the added power columns price out.
            h.setOptionValue("simplex_strategy", SIMPLEX_STRATEGY_WARM)
            h.setBasis(_highs_basis(*basis))
        if start is not None and is_mip:
            # A partial MIP start (column indices, values): HiGHS fixes the integers given and
            # solves the LP for the rest, which becomes its first incumbent.
            index, value = start
            h.setSolution(int(index.size), np.asarray(index, dtype=np.int32), np.asarray(value, dtype=float))
        h.run()
        iterations = int(h.getInfo().simplex_iteration_count)
        if basis is not None:
            h.setOptionValue("simplex_strategy", SIMPLEX_STRATEGY_LAZY)  # added cuts: dual simplex again
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
            iterations += int(h.getInfo().simplex_iteration_count)
        status = h.getModelStatus()
        info = h.getInfo()
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        x = np.asarray(h.getSolution().col_value) if has_solution else None
        duals = info.dual_solution_status == 2 and has_solution  # kSolutionStatusFeasible
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
            simplex_iterations=iterations,
            mip_nodes=int(info.mip_node_count) if is_mip else 0,
            row_dual=np.asarray(h.getSolution().row_dual) if duals else None,
            basis=_read_basis(h) if keep_basis and has_solution and not is_mip else None,
            col_key=self._keys(self.col_key, lazy.added_col_keys if lazy is not None else []),
            row_key=self._keys(self.row_key, lazy.added_row_keys if lazy is not None else []),
        )

    @staticmethod
    def _keys(blocks: list[np.ndarray], added: list[np.ndarray]) -> np.ndarray:
        parts = [*blocks, *added]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


_STATUS = list(highspy.HighsBasisStatus.__members__.values())  # indexed by code (kLower = 0, ...)
BASIC = int(highspy.HighsBasisStatus.kBasic)
AT_LOWER = int(highspy.HighsBasisStatus.kLower)
AT_UPPER = int(highspy.HighsBasisStatus.kUpper)


def _highs_basis(col_status: np.ndarray, row_status: np.ndarray) -> highspy.HighsBasis:
    basis = highspy.HighsBasis()
    basis.col_status = [_STATUS[s] for s in col_status.tolist()]
    basis.row_status = [_STATUS[s] for s in row_status.tolist()]
    # "Alien": HiGHS checks it and completes or repairs it if it is not a nonsingular square basis.
    basis.alien = True
    basis.valid = True
    return basis


def _read_basis(h: highspy.Highs) -> tuple[np.ndarray, np.ndarray] | None:
    basis = h.getBasis()
    if not basis.valid:
        return None
    return (
        np.array([s.value for s in basis.col_status], dtype=np.int8),
        np.array([s.value for s in basis.row_status], dtype=np.int8),
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
        self,
        core: CoreIndex,
        taper: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        c_rate: tuple[np.ndarray, np.ndarray],
        c_rate_cost: float,
        c_max_kw: np.ndarray,
        taper_key: np.ndarray,
    ) -> None:
        self.p_col, self.e_col = core.p_col, core.e_col
        self.pair_vehicle = core.pair_vehicle
        self.taper_key = taper_key  # per taper row (``Key.TAPER``)
        self.c_vehicle, self.c_slot = core.pair_vehicle[c_rate[0]], core.pair_slot[c_rate[0]]  # per C-rate pair
        # Keys of what ``add_broken`` appended to the model, in order (``LpSolution.col_key``).
        self.added_row_keys: list[np.ndarray] = []
        self.added_col_keys: list[np.ndarray] = []
        self.num_vehicles = core.first_pair.size - 1
        self.taper_pair, self.taper_a, self.taper_b, self.taper_c = taper
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
        taper = ~self.taper_added & (
            self.taper_c * p - self.taper_b * e > self.taper_a * (1 + 1e-9) + self.TOLERANCE_KW
        )
        # Power held at the C-rate threshold whose reduced cost says more would pay even with the
        # hinge's cost: there the full model's dual is infeasible (beyond HiGHS's tolerance, 1e-7).
        fast = ~self.c_added & (reduced_cost[self.p_col + self.c_pair] < -self.c_cost - 1e-7)
        return np.flatnonzero(taper), np.flatnonzero(fast)

    def pending(self, x: np.ndarray | None) -> bool:
        """Whether the last solution checked (``x``) still broke something (e.g. on a time limit)."""
        return x is not None and not self.clean

    def lift_now(self, model: LpModel, lift: np.ndarray) -> None:
        """Put the C-rate hinges of ``lift`` (mask over the C-rate pairs, whose power bound the
        caller left at the vehicle's) into ``model`` before it is solved."""
        pairs = np.flatnonzero(lift & ~self.c_added)
        if not pairs.size:
            return
        self.c_added[pairs] = True
        v, slot = self.c_vehicle[pairs], self.c_slot[pairs]
        col = model.add_cols(np.full(pairs.size, self.c_cost), 0.0, INF, keys=key(Key.C_RATE_COL, v, slot))
        row = model.add_rows(-INF, self.c_limit_kw[pairs], pairs.size, keys=key(Key.C_RATE_ROW, v, slot))
        k = np.arange(pairs.size)
        model.add_entries(row + k, self.p_col + self.c_pair[pairs], 1.0)
        model.add_entries(row + k, col + k, -1.0)

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
            value[0::2], value[1::2] = self.taper_c[taper], -self.taper_b[taper]
            h.addRows(n, np.full(n, -INF), self.taper_a[taper], 2 * n, starts, index, value)
            self.added_row_keys.append(self.taper_key[taper])
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
            self.added_col_keys.append(key(Key.C_RATE_COL, self.c_vehicle[fast], self.c_slot[fast]))
            self.added_row_keys.append(key(Key.C_RATE_ROW, self.c_vehicle[fast], self.c_slot[fast]))
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
    simplex_iterations: int = 0  # over every run of the solve (HiGHS counts per run)
    mip_nodes: int = 0  # branch-and-bound nodes HiGHS explored (a MIP)
    row_dual: np.ndarray | None = None  # with an optimal solution (HiGHS: reduced cost = c - A^T y)
    basis: tuple[np.ndarray, np.ndarray] | None = None  # column and row statuses, with ``keep_basis``
    col_key: np.ndarray | None = None  # per column (``Key``; -1 none)
    row_key: np.ndarray | None = None


@dataclass
class CoreIndex:
    """Where the core variables and rows live. Pairs are (vehicle, slot), vehicle by vehicle.

    A vehicle's pairs are every slot of its window, or with ``build_core(active=...)`` only the
    active ones (see ``sifting``); ``held_slots`` is then how many slots each pair's energy is held
    for (up to the next active pair, or departure), which weighs its high-SoC hinge.
    """

    pair_vehicle: np.ndarray
    pair_slot: np.ndarray
    first_pair: np.ndarray  # per vehicle, index of its first pair (len = vehicles + 1)
    p_col: int
    e_col: int
    u_col: int
    peak_cols: list[int | None]  # per ``instance.demand_charges()``, None for a charge without a price
    lazy: LazyCuts | None = None  # what build_core(lazy=True) left out
    # Rows, for reading duals (``sifting.full_reduced_costs``):
    balance_row: int = 0  # pair q's energy balance is row balance_row + q
    target_row: np.ndarray | None = None  # per vehicle, its departure-target row (-1 without pairs)
    hinge_pair: np.ndarray | None = None  # pairs with a high-SoC hinge ...
    hinge_row: int = 0  # ... whose rows are hinge_row + k, k = index into hinge_pair
    held_slots: np.ndarray | None = None  # per pair
    site_row: np.ndarray | None = None  # per slot, -1 without a row
    demand_rows: np.ndarray | None = None  # [demand charge, slot], -1 without a row
    extra_rows: list[LimitRows] = None  # type: ignore[assignment]  # group / charger limits: see ``LimitRows``

    @property
    def num_pairs(self) -> int:
        return self.pair_vehicle.size


@dataclass
class LimitRows:
    """Per-slot rows on the power of sets of vehicles, for reading their duals.

    Set ``k`` (a charger, or a connector group of the relaxation) holds the vehicles with
    ``key_of_vehicle == k``; ``power[k, t]`` is the row ``sum p <= limit`` of slot t and, for
    groups, ``count[k, t]`` the row ``sum x <= connectors`` over occupancies ``p <= max_kw * x``.
    -1 where there is no row.
    """

    key_of_vehicle: np.ndarray
    power: np.ndarray
    count: np.ndarray | None = None


def build_core(
    instance: Instance,
    va: VehicleArrays,
    windows: Windows,
    model: LpModel,
    *,
    lazy: bool = False,
    active: np.ndarray | None = None,
    carried: LazyCuts | None = None,
) -> CoreIndex:
    """Add the power, energy, taper, target, site, demand and wear parts of the model.

    With ``lazy``, taper rows and C-rate hinges are not added but kept in ``core.lazy``: pass it
    to ``model.solve(lazy=...)``, which adds those the solution breaks (see ``LazyCuts``).
    ``carried`` (the ``core.lazy`` of an earlier model of the same night) puts in at once the lazy
    rows and hinges that model had needed, so a basis carried over from it fits (``sifting``).

    ``active`` (bool [vehicle, slot], inside the windows, every non-empty window's last slot
    included) restricts the power variables to those slots: the model is then the full one with
    power fixed at zero elsewhere, with the energy between two active slots held in one variable
    (see ``sifting``, which prices the others and adds those worth it).
    """
    dt = instance.slot_hours
    num_vehicles = len(instance.vehicles)
    length = windows.length
    if active is None:
        first_pair = np.concatenate([[0], np.cumsum(length)])
        pair_vehicle = np.repeat(np.arange(num_vehicles), length)
        pair_k = np.arange(pair_vehicle.size) - first_pair[pair_vehicle]
        pair_slot = windows.start[pair_vehicle] + pair_k
    else:
        pair_vehicle, pair_slot = np.nonzero(active)
        count = np.bincount(pair_vehicle, minlength=num_vehicles)
        first_pair = np.concatenate([[0], np.cumsum(count)])
        pair_k = np.arange(pair_vehicle.size) - first_pair[pair_vehicle]
    has_pairs = first_pair[1:] > first_pair[:-1]
    n = pair_vehicle.size
    gain = va.efficiency[pair_vehicle] * dt  # per pair
    is_last = np.zeros(n, dtype=bool)
    is_last[first_pair[1:][has_pairs] - 1] = True
    # Slots each pair's end energy is held for: to the next pair, the last one until departure.
    held_slots = np.where(is_last, va.departure_slot[pair_vehicle] - pair_slot, np.roll(pair_slot, -1) - pair_slot)
    price = np.asarray(instance.energy_price_mxn_per_kwh, dtype=float)

    lifted = np.zeros(n, dtype=bool)  # C-rate bounds an earlier model lifted
    if carried is not None:
        lifted = np.isin(
            key(Key.P, pair_vehicle, pair_slot), key(Key.P, carried.c_vehicle, carried.c_slot)[carried.c_added]
        )
    p_upper = windows.max_kw[pair_vehicle].copy()
    if lazy and instance.wear.high_c_rate_mxn_per_kwh > 0:
        # Lazy C-rate hinges: the power starts bounded by the threshold (see ``LazyCuts``).
        c_rate_kw = instance.wear.c_rate_threshold_per_h * va.capacity_kwh[pair_vehicle]
        bounded = (p_upper > c_rate_kw + 1e-9) & ~lifted  # the pairs ``_add_wear`` returns, less the lifted
        p_upper = np.where(bounded, c_rate_kw, p_upper)
    p_col = model.add_cols(price[pair_slot] * dt, 0.0, p_upper, keys=key(Key.P, pair_vehicle, pair_slot))
    e_col = model.add_cols(
        np.zeros(n), va.initial_kwh[pair_vehicle], va.max_kwh[pair_vehicle], keys=key(Key.E, pair_vehicle, pair_slot)
    )
    shortfall_max = np.maximum(va.target_kwh - va.initial_kwh, 0.0)
    # A vehicle without pairs leaves with its whole shortfall: fix it through its bounds.
    u_col = model.add_cols(
        va.penalty_mxn_per_kwh,
        np.where(has_pairs, 0.0, shortfall_max),
        shortfall_max,
        keys=key(Key.U, np.arange(num_vehicles)),
    )

    # Energy balance, one equality row per pair: e[t] - e[t-1] - gain * p[t] = 0 (initial energy
    # on the right-hand side for the first pair of the vehicle).
    rhs = np.where(pair_k == 0, va.initial_kwh[pair_vehicle], 0.0)
    balance_row = model.add_rows(rhs, rhs, n, keys=key(Key.BALANCE, pair_vehicle, pair_slot))
    pairs = np.arange(n)
    model.add_entries(balance_row + pairs, e_col + pairs, 1.0)
    model.add_entries(balance_row + pairs, p_col + pairs, -gain)
    later = pairs[pair_k > 0]
    model.add_entries(balance_row + later, e_col + later - 1, -1.0)

    # Departure target: e[last] + u >= target.
    with_pairs = np.flatnonzero(has_pairs)
    row = model.add_rows(va.target_kwh[with_pairs], INF, with_pairs.size, keys=key(Key.TARGET, with_pairs))
    target_row = np.full(num_vehicles, -1)
    target_row[with_pairs] = row + np.arange(with_pairs.size)
    model.add_entries(row + np.arange(with_pairs.size), e_col + first_pair[with_pairs + 1] - 1, 1.0)
    model.add_entries(row + np.arange(with_pairs.size), u_col + with_pairs, 1.0)

    *taper_parts, taper_line = _taper_rows(instance, va, windows, pair_vehicle, pair_k)
    taper = (taper_parts[0], taper_parts[1], taper_parts[2], taper_parts[3])
    taper_key = key(Key.TAPER, taper_line, pair_slot[taper[0]])
    # Lazy: only the rows of the last slots of each vehicle go in at once. The high-SoC wear makes
    # charging finish close to departure, so that is where the taper binds (see ``LazyCuts``).
    taper_now = np.ones(taper[0].size, dtype=bool)
    if lazy:
        taper_now = taper[0] >= first_pair[pair_vehicle[taper[0]] + 1] - TAPER_UPFRONT_SLOTS
        if carried is not None:
            taper_now |= np.isin(taper_key, carried.taper_key[carried.taper_added])
    pair_t, a_t, b_t, c_t = taper
    _add_taper(
        model, (pair_t[taper_now], a_t[taper_now], b_t[taper_now], c_t[taper_now]), p_col, e_col, taper_key[taper_now]
    )

    # Site limit per slot.
    slots, slot_of_pair = np.unique(pair_slot, return_inverse=True)
    site = np.asarray(instance.site_limit_kw, dtype=float)
    row = model.add_rows(-INF, site[slots], slots.size, keys=key(Key.SITE, slots))
    site_row = np.full(instance.num_slots, -1)
    site_row[slots] = row + np.arange(slots.size)
    model.add_entries(row + slot_of_pair, p_col + pairs, 1.0)

    peak_cols, demand_rows = _add_demand(instance, model, pair_slot, p_col)
    core = CoreIndex(pair_vehicle, pair_slot, first_pair, p_col, e_col, u_col, peak_cols)
    core.balance_row, core.target_row, core.held_slots = balance_row, target_row, held_slots
    core.site_row, core.demand_rows, core.extra_rows = site_row, demand_rows, []
    c_rate = _add_wear(instance, va, windows, model, core, pair_k, lazy=lazy)
    if lazy:
        c_max_kw = windows.max_kw[pair_vehicle[c_rate[0]]]
        core.lazy = LazyCuts(core, taper, c_rate, instance.wear.high_c_rate_mxn_per_kwh * dt, c_max_kw, taper_key)
        core.lazy.taper_added[taper_now] = True
        if lifted.any():
            core.lazy.lift_now(model, lifted[c_rate[0]])
    return core


def _taper_rows(
    instance: Instance, va: VehicleArrays, windows: Windows, pair_vehicle: np.ndarray, pair_k: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pair, a, b, c, line) of every row ``c * p[v,t] - b * e[v,t] <= a`` of a taper line that can bind.

    ``line`` numbers the lines of the night (not of the pairs), so it names a row across models.

    The line must hold over the whole slot: at its end energy ``e[v,t]`` for a falling line
    (``c = 1``), at its start energy ``e[v,t] - gain * p[v,t]`` for a rising one (``c = 1 + b * gain``).
    """
    lines_of: dict[int, list[tuple[float, float]]] = {}
    for v, vehicle in enumerate(instance.vehicles):
        if windows.end[v] <= windows.start[v]:
            continue
        for a, b in taper_lines(vehicle):
            lowest_kw = min(a + b * va.initial_kwh[v], a + b * va.max_kwh[v])
            if lowest_kw < windows.max_kw[v]:  # a line that never goes below the bound is idle
                lines_of.setdefault(v, []).append((a, b))
    if not lines_of:
        return np.zeros(0, dtype=int), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
    # One row per (pair, line): lines of a vehicle repeated over its pairs.
    line_vehicle = np.array([v for v, lines in lines_of.items() for _ in lines])
    line_a = np.array([a for lines in lines_of.values() for a, _ in lines])
    line_b = np.array([b for lines in lines_of.values() for _, b in lines])
    pair, line = _pairs_of_lines(pair_vehicle, line_vehicle)
    a, b, v, k = line_a[line], line_b[line], pair_vehicle[pair], pair_k[pair]
    # Early on the battery cannot yet be high enough for the line to bind: skip those. ``k`` pairs
    # came before this one, so at most k + 1 slots of charging.
    gain = va.efficiency[v] * instance.slot_hours
    reachable_kwh = np.minimum(va.initial_kwh[v] + gain * windows.max_kw[v] * (k + 1), va.max_kwh[v])
    lowest_kw = np.minimum(a + b * va.initial_kwh[v], a + b * reachable_kwh)
    keep = lowest_kw < windows.max_kw[v]
    return pair[keep], a[keep], b[keep], 1.0 + np.maximum(b[keep], 0.0) * gain[keep], line[keep]


def _pairs_of_lines(pair_vehicle: np.ndarray, line_vehicle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (pair, line) with the same vehicle. Both inputs are sorted by vehicle."""
    num = max(int(pair_vehicle.max(initial=-1)), int(line_vehicle.max(initial=-1))) + 1
    pairs_per = np.bincount(pair_vehicle, minlength=num)
    first_pair = np.concatenate([[0], np.cumsum(pairs_per)])
    count = pairs_per[line_vehicle]  # rows per line
    line = np.repeat(np.arange(line_vehicle.size), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return first_pair[line_vehicle][line] + k, line


def _add_taper(
    model: LpModel,
    taper: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    p_col: int,
    e_col: int,
    keys: np.ndarray,
) -> None:
    pair, a, b, c = taper
    if not pair.size:
        return
    row = model.add_rows(-INF, a, pair.size, keys=keys)
    rows = row + np.arange(pair.size)
    model.add_entries(rows, p_col + pair, c)
    model.add_entries(rows, e_col + pair, -b)


def _add_demand(
    instance: Instance, model: LpModel, pair_slot: np.ndarray, p_col: int
) -> tuple[list[int | None], np.ndarray]:
    """A peak column and its rows per demand charge; returns (peak columns, rows [charge, slot] or -1).

    The peak starts at the month's peak so far, or at the base load's own peak in the charge's slots
    when that is higher (charging cannot lower it); only the part above the month's peak costs.
    """
    charges = instance.demand_charges()
    demand_rows = np.full((len(charges), instance.num_slots), -1)
    peak_cols: list[int | None] = []
    base = np.array(instance.base_load())
    for c, charge in enumerate(charges):
        if charge.mxn_per_kw <= 0:
            peak_cols.append(None)
            continue
        demand = np.array(charge.mask(instance.num_slots))
        floor_kw = charge.paid_floor_kw(base)
        peak_col = model.add_cols([charge.mxn_per_kw], floor_kw, INF, keys=key(Key.PEAK, [c]))
        peak_cols.append(peak_col)
        model.offset -= charge.mxn_per_kw * charge.month_peak_kw
        in_demand = np.flatnonzero(demand[pair_slot])
        slots, slot_of_pair = np.unique(pair_slot[in_demand], return_inverse=True)
        row = model.add_rows(-INF, -base[slots], slots.size, keys=key(Key.DEMAND, c, slots))
        demand_rows[c, slots] = row + np.arange(slots.size)
        model.add_entries(row + slot_of_pair, p_col + in_demand, 1.0)
        model.add_entries(row + np.arange(slots.size), np.full(slots.size, peak_col), -1.0)
    return peak_cols, demand_rows


def _add_wear(
    instance: Instance,
    va: VehicleArrays,
    windows: Windows,
    model: LpModel,
    core: CoreIndex,
    pair_k: np.ndarray,
    *,
    lazy: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Hinge variables for time at high SoC and for high C-rate, only where they can be non-zero.

    Sets ``core.hinge_pair`` / ``core.hinge_row``. Returns the C-rate hinges as (pairs, threshold
    kW); with ``lazy`` they are not added.
    """
    no_c_rate = (np.zeros(0, dtype=int), np.zeros(0))
    wear = instance.wear
    dt = instance.slot_hours
    pair_vehicle, first_pair = core.pair_vehicle, core.first_pair
    high_soc_kwh = wear.high_soc_threshold_pct / 100.0 * va.capacity_kwh
    core.hinge_pair = np.zeros(0, dtype=int)
    if wear.high_soc_mxn_per_kwh_h > 0:
        # Energy above the threshold before the first pair (constant) costs regardless of the plan.
        has_pairs = first_pair[1:] > first_pair[:-1]
        first_slot = core.pair_slot[np.minimum(first_pair[:-1], max(core.num_pairs - 1, 0))] if core.num_pairs else 0
        before = np.where(has_pairs, first_slot - va.arrival_slot, va.departure_slot - va.arrival_slot)
        model.offset += (
            wear.high_soc_mxn_per_kwh_h
            * dt
            * float((np.maximum(va.initial_kwh - high_soc_kwh, 0.0) * np.maximum(before, 0)).sum())
        )
        # Only where the battery can be above the threshold by the end of the slot.
        reachable_kwh = np.minimum(
            va.initial_kwh[pair_vehicle]
            + va.efficiency[pair_vehicle] * dt * windows.max_kw[pair_vehicle] * (pair_k + 1),
            va.max_kwh[pair_vehicle],
        )
        pairs = np.flatnonzero(reachable_kwh > high_soc_kwh[pair_vehicle] + 1e-9)
        core.hinge_pair = pairs
        if pairs.size:
            v = pair_vehicle[pairs]
            # A pair's end energy is held until the next pair (the last one's until departure).
            held_slots = core.held_slots if core.held_slots is not None else np.ones(core.num_pairs)
            slot = core.pair_slot[pairs]
            col = model.add_cols(
                wear.high_soc_mxn_per_kwh_h * dt * held_slots[pairs], 0.0, INF, keys=key(Key.HINGE_COL, v, slot)
            )
            row = model.add_rows(-INF, high_soc_kwh[v], pairs.size, keys=key(Key.HINGE_ROW, v, slot))
            core.hinge_row = row
            k = np.arange(pairs.size)
            model.add_entries(row + k, core.e_col + pairs, 1.0)
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
        model.add_entries(row + k, core.p_col + pairs, 1.0)
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
    charger_slot, of_pair = np.unique(charger * instance.num_slots + core.pair_slot[pairs], return_inverse=True)
    possible_kw = np.bincount(of_pair, weights=windows.max_kw[core.pair_vehicle[pairs]])
    limit = np.asarray(chargers)[charger_slot // instance.num_slots]
    binding = possible_kw > limit + 1e-9
    if not binding.any():
        return
    row_of_key = np.cumsum(binding) - 1
    bound_charger, bound_slot = charger_slot[binding] // instance.num_slots, charger_slot[binding] % instance.num_slots
    row = model.add_rows(-INF, limit[binding], int(binding.sum()), keys=key(Key.CHARGER, bound_charger, bound_slot))
    keep = binding[of_pair]
    model.add_entries(row + row_of_key[of_pair[keep]], core.p_col + pairs[keep], 1.0)
    power_rows = np.full((len(chargers), instance.num_slots), -1)
    power_rows[bound_charger, bound_slot] = row + np.arange(int(binding.sum()))
    core.extra_rows.append(LimitRows(np.asarray(charger_of_vehicle), power_rows))


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
    for group, (members, count, capacity_kw) in enumerate(groups):
        in_group = np.zeros(len(instance.vehicles), dtype=bool)
        in_group[members] = True
        pairs = np.flatnonzero(in_group[core.pair_vehicle])
        if not pairs.size:
            continue
        rows = LimitRows(
            np.where(in_group, 0, -1),
            np.full((1, instance.num_slots), -1),
            np.full((1, instance.num_slots), -1),
        )
        core.extra_rows.append(rows)
        slots, slot_of_pair = np.unique(core.pair_slot[pairs], return_inverse=True)
        possible_kw = np.bincount(slot_of_pair, weights=windows.max_kw[core.pair_vehicle[pairs]])
        binding = np.flatnonzero(possible_kw > capacity_kw + 1e-9)
        if binding.size:
            keep = np.isin(slot_of_pair, binding)
            row_of_slot = np.full(slots.size, -1)
            row = model.add_rows(-INF, capacity_kw, binding.size, keys=key(Key.GROUP_POWER, group, slots[binding]))
            row_of_slot[binding] = row + np.arange(binding.size)
            rows.power[0, slots[binding]] = row + np.arange(binding.size)
            model.add_entries(row_of_slot[slot_of_pair[keep]], core.p_col + pairs[keep], 1.0)
        present = np.bincount(slot_of_pair)
        crowded = np.flatnonzero(present > count)
        if not crowded.size:
            continue
        keep = np.isin(slot_of_pair, crowded)
        crowded_pairs = pairs[keep]
        new = np.array([q for q in crowded_pairs if q not in occupancy_col], dtype=int)
        if new.size:
            new_vehicle, new_slot = core.pair_vehicle[new], core.pair_slot[new]
            col = model.add_cols(np.zeros(new.size), 0.0, 1.0, keys=key(Key.OCCUPANCY_COL, new_vehicle, new_slot))
            occupancy_col.update(zip(new.tolist(), (col + np.arange(new.size)).tolist(), strict=True))
            # p <= max_kw * x
            row = model.add_rows(-INF, 0.0, new.size, keys=key(Key.OCCUPANCY_ROW, new_vehicle, new_slot))
            k = np.arange(new.size)
            model.add_entries(row + k, core.p_col + new, 1.0)
            model.add_entries(row + k, col + k, -windows.max_kw[core.pair_vehicle[new]])
        x_cols = np.array([occupancy_col[q] for q in crowded_pairs.tolist()])
        row_of_slot = np.full(slots.size, -1)
        row = model.add_rows(-INF, float(count), crowded.size, keys=key(Key.GROUP_COUNT, group, slots[crowded]))
        row_of_slot[crowded] = row + np.arange(crowded.size)
        assert rows.count is not None
        rows.count[0, slots[crowded]] = row + np.arange(crowded.size)
        model.add_entries(row_of_slot[slot_of_pair[keep]], x_cols, 1.0)


def power_matrix(core: CoreIndex, windows: Windows, x: np.ndarray, num_vehicles: int, num_slots: int) -> np.ndarray:
    """Grid power (kW) per vehicle and slot from a solution, clipped to the bounds the LP had."""
    power = np.zeros((num_vehicles, num_slots))
    p = x[core.p_col : core.p_col + core.num_pairs]
    power[core.pair_vehicle, core.pair_slot] = np.clip(p, 0.0, windows.max_kw[core.pair_vehicle])
    return power
