"""Which bus runs which block on one service day, by energy. Plain Python in, plain Python out (HiGHS).

A bus may take a block when it is at the block's depot, can be charged there (a compatible connector) and the
energy it is expected to have at pull-out, less its reserve, covers the block. It may take several blocks
that do not overlap (with ``turnaround_min`` between them) whose energy together fits that budget: no charging
between blocks is counted, which is conservative for depots that top up at midday.

The objective, in order of weight:
1. cover as many blocks as possible (``COVER_WEIGHT`` per block);
2. wear: a block's depth of discharge on the bus (kWh / usable kWh) weighted up for lower SoH, so long blocks
   go to healthy, large packs (an exchange argument: the sum is least when the largest energies meet the
   smallest weights);
3. spread: every bus's day above ``SPREAD_DOD`` of its usable capacity costs extra, so wear is spread.
Pinned pairs are fixed. Blocks left uncovered come back with a reason.

How it is solved, fastest case first:
- A bus is *single* when no two of the blocks it could take fit it together (they overlap, or their energies
  add up to more than its budget); it then runs at most one block and its spread cost is that block's own.
  When every bus is single the problem is a rectangular assignment problem, solved exactly by the Hungarian
  method (``scipy.optimize.linear_sum_assignment``): no MIP at all.
- Otherwise the MIP has a binary ``x[v, b]`` for every feasible pair: at most one bus per block; a single bus
  takes at most one block (one row, tighter than a knapsack); a bus that can run two blocks has its energy
  budget as a knapsack row, "at most one of these" rows over the blocks that overlap one another (maximal
  cliques of the interval graph, over *all* its blocks, so long blocks sit in the rows of the short ones they
  overlap) and over its blocks of more than half its budget, and a spread variable. The LP relaxation of the
  whole model (60,000 columns at 300 blocks x 320 buses) took 22 s, so it is solved by column generation:
  an LP over a few columns per block and bus (and the Hungarian solution's), priced against all the others
  with the LP's duals (a sparse product), growing until no column prices out. That LP's value is a valid lower
  bound for the whole MIP. The Hungarian solution, repaired (blocks left over put on buses that can run them
  besides their own, with one ejection), is a feasible plan; a column whose
  reduced cost exceeds (that plan's cost - the bound) cannot be in any better plan (reduced-cost fixing), so
  the MIP runs on the generated columns plus those that survive the test: what it proves optimal is optimal
  for the whole model. The answer states the gap between the plan's cost and the bound on the wear and
  spread part (the cover part is counted exactly).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

COVER_WEIGHT = 1_000.0
HEALTH_WEIGHT = 5.0  # a pack at 80 % SoH pays (1 + 5 x 0.2) = 2 x the wear weight of a new one
SPREAD_DOD = 0.6
SPREAD_WEIGHT = 2.0
# The MIP stops within this much of its bound, in objective units: the wear of one 200 kWh block on a new
# 300 kWh pack is ~0.7, a block's cover weight 1,000, so every coverable block is covered exactly.
MIP_ABS_GAP = 0.05
# The column generation starts small - the Hungarian plan's columns, each block's cheapest bus, each bus's
# cheapest block - and lets pricing do the rest: on the 300 x 320 benchmark that reached the bound in 0.8 CPU
# seconds, against 1.4 starting from 10 per block and per bus.
COLUMNS_PER_BLOCK = 1
COLUMNS_PER_BUS = 1
COLUMNS_PER_BUS_PER_ROUND = 40  # pricing adds each bus's most negative columns
MAX_PRICING_ROUNDS = 40
MAX_MIP_COLUMNS = 3_000  # above this the MIP keeps the columns of least reduced cost (and proves nothing)
BOUND_SHARE_OF_TIME = 0.7  # the column generation may use this share of the time limit, the MIP the rest
# Primal simplex: added columns leave the previous basis primal feasible, so it goes on from there (half the
# CPU time of HiGHS's default choice on the 300 x 320 benchmark: 1.7 s against 3.3 s for the bound).
LP_OPTIONS: dict[str, Any] = {"simplex_strategy": 4}
DEFAULT_TIME_LIMIT_S = 4.0  # the services' budget: the issue's target is 5 s for 300 blocks on 320 buses


@dataclass(frozen=True)
class Bus:
    vehicle_id: str
    depot: str
    usable_kwh: float  # usable capacity now: nominal x SoH x usable window
    pull_out_kwh: float  # usable energy expected at pull-out (0 = at the window's floor)
    reserve_kwh: float
    soh_pct: float = 100.0
    can_charge: bool = True  # a compatible connector at its depot
    note: str = ""  # why it cannot run anything, if known


@dataclass(frozen=True)
class Duty:
    block_id: str
    depot: str
    start_min: float  # minutes from a common origin (e.g. the service day's midnight)
    end_min: float
    energy_kwh: float


@dataclass(frozen=True)
class Pin:
    block_id: str
    vehicle_id: str


@dataclass(frozen=True)
class Assignment:
    assigned: dict[str, str]  # block id -> vehicle id
    uncovered: dict[str, str]  # block id -> reason
    status: str  # "optimal (...)", "feasible (...)", "no feasible pair", ...
    objective: float | None
    solve_seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    bound: float | None = None  # a proven lower bound on the objective (None: not computed)
    method: str = ""  # "assignment" (Hungarian, exact), "column generation + MIP", ...

    @property
    def gap(self) -> float | None:
        """Objective - bound, in objective units (wear and spread: the cover part is exact)."""
        if self.objective is None or self.bound is None:
            return None
        return max(0.0, self.objective - self.bound)

    def budget_left_kwh(self, buses: Sequence[Bus], duties: Sequence[Duty]) -> dict[str, float]:
        """Every bus's energy above its reserve after its blocks (negative: stranded)."""
        energy = {d.block_id: d.energy_kwh for d in duties}
        left = {b.vehicle_id: b.pull_out_kwh - b.reserve_kwh for b in buses}
        for block_id, vehicle_id in self.assigned.items():
            left[vehicle_id] -= energy[block_id]
        return left


def budget_kwh(bus: Bus) -> float:
    return bus.pull_out_kwh - bus.reserve_kwh


def wear_weight(bus: Bus) -> float:
    return (1.0 + HEALTH_WEIGHT * max(0.0, 100.0 - bus.soh_pct) / 100.0) / max(bus.usable_kwh, 1e-6)


def _cliques(duties: Sequence[Duty], members: list[int], turnaround_min: float) -> list[list[int]]:
    """Maximal sets of mutually overlapping blocks among ``members`` (interval graph: a sweep over starts)."""
    events: list[tuple[float, int, int]] = []
    for k in members:
        events.append((duties[k].start_min, 1, k))
        events.append((duties[k].end_min + turnaround_min, 0, k))  # ends sort before starts at one time
    events.sort()
    active: set[int] = set()
    cliques: list[list[int]] = []
    grew = False
    for _t, kind, k in events:
        if kind == 1:
            active.add(k)
            grew = True
        else:
            if grew and len(active) > 1:
                cliques.append(sorted(active))
            grew = False
            active.discard(k)
    return cliques


def assign(
    buses: Sequence[Bus],
    duties: Sequence[Duty],
    *,
    pins: Sequence[Pin] = (),
    turnaround_min: float = 30.0,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> Assignment:
    """Assign ``duties`` to ``buses`` (see the module's docstring). Energies in kWh, times in minutes.

    Past ``time_limit_s`` the answer is the best plan found, with the bound proven so far (a plan is always
    returned: the Hungarian one at worst)."""
    started = time.monotonic()
    bus_index = {b.vehicle_id: i for i, b in enumerate(buses)}
    duty_index = {d.block_id: k for k, d in enumerate(duties)}
    warnings: list[str] = []
    pinned: dict[int, int] = {}  # block -> bus
    for pin in pins:
        if pin.block_id in duty_index and pin.vehicle_id in bus_index:
            pinned[duty_index[pin.block_id]] = bus_index[pin.vehicle_id]
        else:
            warnings.append(f"pin {pin.block_id} -> {pin.vehicle_id} ignored: block or bus not in this run")
    pinned_energy: dict[int, float] = {}
    for k, v in pinned.items():
        pinned_energy[v] = pinned_energy.get(v, 0.0) + duties[k].energy_kwh
    over_pinned = {v for v, e in pinned_energy.items() if e > budget_kwh(buses[v]) + 1e-9}
    for v in sorted(over_pinned):
        warnings.append(
            f"{buses[v].vehicle_id}: its pinned blocks need {pinned_energy[v]:.0f} kWh, "
            f"more than its {budget_kwh(buses[v]):.0f} kWh above reserve (kept because pinned)"
        )
    uncovered_reason = {k: _why_not(duties[k], buses) for k in range(len(duties))}
    day = _Day(buses, duties, pinned, over_pinned, turnaround_min)
    if not day.feasible.any():
        return Assignment(
            assigned={},
            uncovered={duties[k].block_id: uncovered_reason[k] for k in range(len(duties))},
            status="no feasible pair",
            objective=None,
            solve_seconds=time.monotonic() - started,
            warnings=tuple(warnings),
        )

    incumbent = day.hungarian()
    bound: float | None
    if not day.multi.any():
        # Every bus runs at most one block: the Hungarian solution is optimal for the whole problem.
        objective = day.objective(incumbent)
        solution, bound = incumbent, objective
        status, method = "optimal (one block per bus: an assignment problem, solved exactly)", "assignment"
    else:
        solution, objective, proven, status = day.solve(
            incumbent, bound_by=started + BOUND_SHARE_OF_TIME * time_limit_s, deadline=started + time_limit_s
        )
        method, bound = "column generation + MIP", proven
    assigned = {duties[k].block_id: buses[v].vehicle_id for k, v in solution.items()}
    candidates = day.feasible.sum(axis=0)
    uncovered = {
        duties[k].block_id: uncovered_reason[k] or _busy_reason(duties[k], int(candidates[k]))
        for k in range(len(duties))
        if k not in solution
    }
    return Assignment(
        assigned=assigned,
        uncovered=uncovered,
        status=status,
        objective=objective,
        solve_seconds=time.monotonic() - started,
        warnings=tuple(warnings),
        bound=bound,
        method=method,
    )


class _Day:
    """One day's instance as arrays: ``feasible[v, k]`` (bus v may take block k), the costs, which buses can run
    two blocks, and the MIP over every feasible pair (built only when some bus can)."""

    def __init__(
        self,
        buses: Sequence[Bus],
        duties: Sequence[Duty],
        pinned: dict[int, int],
        over_pinned: set[int],
        turnaround_min: float,
    ) -> None:
        self.buses, self.duties, self.pinned, self.turnaround_min = buses, duties, pinned, turnaround_min
        self.energy = np.array([d.energy_kwh for d in duties], dtype=float)
        self.budget = np.array([budget_kwh(b) for b in buses], dtype=float)
        self.usable = np.array([max(b.usable_kwh, 1e-6) for b in buses], dtype=float)
        depots = {name: i for i, name in enumerate(sorted({b.depot for b in buses} | {d.depot for d in duties}))}
        bus_depot = np.array([depots[b.depot] for b in buses], dtype=int)
        duty_depot = np.array([depots[d.depot] for d in duties], dtype=int)
        chargeable = np.array([b.can_charge for b in buses], dtype=bool)
        feasible = (
            (bus_depot[:, None] == duty_depot[None, :])
            & chargeable[:, None]
            & (self.energy[None, :] <= self.budget[:, None] + 1e-9)
        )
        feasible[sorted(over_pinned), :] = False
        for k, v in pinned.items():
            feasible[:, k] = False
            feasible[v, k] = True
        self.feasible = feasible
        wear = np.array([wear_weight(b) for b in buses], dtype=float)
        self.pair_cost = -COVER_WEIGHT + self.energy[None, :] * wear[:, None]  # before the spread term
        one_block_spread = SPREAD_WEIGHT * np.maximum(0.0, self.energy[None, :] / self.usable[:, None] - SPREAD_DOD)
        self.single_cost = self.pair_cost + one_block_spread
        multi = self._can_take_two()
        multi[sorted(over_pinned)] = False  # their pinned blocks are fixed; they get nothing else
        self.multi = multi
        self.over_pinned = over_pinned

    def _can_take_two(self) -> np.ndarray:
        """Per bus: are there two blocks it may take that do not overlap and fit its budget together?"""
        n_bus = len(self.buses)
        if not self.duties:
            return np.zeros(n_bus, dtype=bool)
        order = np.argsort([d.start_min for d in self.duties], kind="stable")
        starts = np.array([self.duties[k].start_min for k in order])
        ends = np.array([d.end_min for d in self.duties])
        following = np.searchsorted(starts, ends + self.turnaround_min, side="left")  # first block after k
        energy_in_order = np.where(self.feasible[:, order], self.energy[order][None, :], np.inf)
        least_after = np.minimum.accumulate(energy_in_order[:, ::-1], axis=1)[:, ::-1]
        least_after = np.hstack([least_after, np.full((n_bus, 1), np.inf)])
        pairs = self.feasible & (self.energy[None, :] + least_after[:, following] <= self.budget[:, None] + 1e-9)
        result: np.ndarray = pairs.any(axis=1)
        return result

    def objective(self, solution: dict[int, int]) -> float:
        """The objective of ``solution`` (block -> bus), as the MIP counts it."""
        total = 0.0
        load: dict[int, float] = {}
        for k, v in solution.items():
            total += float(self.single_cost[v, k])
            load[v] = load.get(v, 0.0) + float(self.energy[k])
        for v, kwh in load.items():
            if not self.multi[v]:
                continue  # one block (or only pinned ones, fixed): its blocks' own spread is all the model has
            # A bus's spread is f(its day's depth of discharge), f convex with f(0) = 0: each block's own
            # f(depth) is in its cost; the day adds f(sum) - sum f(each) >= 0 (the spread column).
            own = sum(float(self.single_cost[v, k] - self.pair_cost[v, k]) for k, w in solution.items() if w == v)
            total += SPREAD_WEIGHT * max(0.0, float(kwh / self.usable[v]) - SPREAD_DOD) - own
        return float(total)

    def hungarian(self) -> dict[int, int]:
        """The best plan with at most one block per bus (pins fixed first): exact for that problem, and a
        feasible plan for the whole one."""
        solution = dict(self.pinned)
        free_buses = np.array([v for v in range(len(self.buses)) if v not in set(self.pinned.values())], dtype=int)
        free_duties = np.array([k for k in range(len(self.duties)) if k not in self.pinned], dtype=int)
        if len(free_buses) and len(free_duties):
            sub = np.ix_(free_buses, free_duties)
            cost = np.where(self.feasible[sub], self.single_cost[sub], 0.0)  # 0: not assigned (costs are < 0)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                v, k = int(free_buses[r]), int(free_duties[c])
                if self.feasible[v, k]:
                    solution[k] = v
        return self._fill(solution)

    def _fill(self, solution: dict[int, int]) -> dict[int, int]:
        """Cover blocks left over, largest first: on a bus that can run one besides its own (no overlap, energy
        fits), else on a bus whose only block can move to such a bus (one ejection). Pins stay. The incumbent
        then covers what a hurried answer can (the Hungarian plan alone leaves long blocks to pairs of short
        ones it cannot form)."""
        runs: dict[int, list[int]] = {}
        for k, v in solution.items():
            runs.setdefault(v, []).append(k)

        def fits(k: int, v: int) -> bool:
            mine = runs.get(v, [])
            a = self.duties[k]
            apart = all(
                a.start_min >= self.duties[m].end_min + self.turnaround_min
                or self.duties[m].start_min >= a.end_min + self.turnaround_min
                for m in mine
            )
            return bool(
                self.feasible[v, k]
                and apart
                and sum(self.energy[m] for m in mine) + self.energy[k] <= self.budget[v] + 1e-9
            )

        def move(k: int, v: int) -> None:
            old = solution.get(k)
            if old is not None:
                runs[old].remove(k)
            solution[k] = v
            runs.setdefault(v, []).append(k)

        def cheapest_first(k: int) -> list[int]:
            buses = np.flatnonzero(self.feasible[:, k])
            return [int(v) for v in buses[np.argsort(self.single_cost[buses, k])]]

        for k in sorted(set(range(len(self.duties))) - set(solution), key=lambda k: -self.energy[k]):
            placed = next((v for v in cheapest_first(k) if self.multi[v] and fits(k, v)), None)
            if placed is not None:
                move(k, placed)
                continue
            for v in cheapest_first(k):
                mine = runs.get(v, [])
                if len(mine) != 1 or mine[0] in self.pinned:
                    continue
                other = mine[0]
                runs[v] = []  # as if empty while looking for a new home for its block
                home = next((w for w in cheapest_first(other) if w != v and self.multi[w] and fits(other, w)), None)
                runs[v] = mine
                if home is not None and self.energy[k] <= self.budget[v] + 1e-9:
                    move(other, home)
                    move(k, v)
                    break
        return solution

    def _model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, sp.csc_array, np.ndarray, np.ndarray]:
        """The MIP over every feasible pair: (pair bus, pair block, costs, constraint matrix, row upper bounds,
        column lower bounds). Columns: x pairs, then one spread column per bus that can run two blocks."""
        pair_bus, pair_duty = np.nonzero(self.feasible)
        n_pairs = len(pair_bus)
        multi_buses = np.flatnonzero(self.multi)
        spread_col = np.full(len(self.buses), -1, dtype=int)
        spread_col[multi_buses] = n_pairs + np.arange(len(multi_buses))
        n_cols = n_pairs + len(multi_buses)
        # Every pair pays its block's own spread; a bus's spread column pays what running several adds. Exact
        # for whole plans, and a much tighter LP than one spread column per bus (which a block split in halves
        # over two buses escapes).
        cost = np.concatenate([self.single_cost[pair_bus, pair_duty], np.full(len(multi_buses), SPREAD_WEIGHT)])
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        upper: list[np.ndarray] = []
        n_rows = 0

        def add(r: np.ndarray, c: np.ndarray, v: np.ndarray, ub: np.ndarray) -> None:
            nonlocal n_rows
            rows.append(r + n_rows)
            cols.append(c)
            vals.append(v)
            upper.append(ub)
            n_rows += len(ub)

        pair_ids = np.arange(n_pairs)
        add(pair_duty, pair_ids, np.ones(n_pairs), np.ones(len(self.duties)))  # at most one bus per block
        single = ~self.multi[pair_bus] & ~np.isin(pair_bus, sorted(self.over_pinned))
        single_buses = np.unique(pair_bus[single])
        row_of = np.searchsorted(single_buses, pair_bus[single])
        add(row_of, pair_ids[single], np.ones(int(single.sum())), np.ones(len(single_buses)))  # one block each
        in_multi = self.multi[pair_bus]
        multi_row = np.searchsorted(multi_buses, pair_bus[in_multi])
        energy = self.energy[pair_duty[in_multi]]
        add(multi_row, pair_ids[in_multi], energy, self.budget[multi_buses])  # energy budget
        add(  # spread: sum of min(depth of discharge, SPREAD_DOD) - s_v <= SPREAD_DOD (see ``objective``)
            np.concatenate([multi_row, np.arange(len(multi_buses))]),
            np.concatenate([pair_ids[in_multi], spread_col[multi_buses]]),
            np.concatenate(
                [np.minimum(energy / self.usable[pair_bus[in_multi]], SPREAD_DOD), -np.ones(len(multi_buses))]
            ),
            np.full(len(multi_buses), SPREAD_DOD),
        )
        col_of = np.full(self.feasible.shape, -1, dtype=int)
        col_of[pair_bus, pair_duty] = pair_ids
        clique_rows: list[int] = []
        clique_cols: list[int] = []
        count = 0
        for v in multi_buses:
            blocks = [int(k) for k in np.flatnonzero(self.feasible[v])]
            groups = _cliques(self.duties, blocks, self.turnaround_min)
            big = [k for k in blocks if self.energy[k] > self.budget[v] / 2 + 1e-9]
            if len(big) > 1:
                groups.append(big)  # no two of them fit its budget together
            for group in groups:
                clique_rows += [count] * len(group)
                clique_cols += [int(col_of[v, k]) for k in group]
                count += 1
        add(
            np.array(clique_rows, dtype=int),
            np.array(clique_cols, dtype=int),
            np.ones(len(clique_rows)),
            np.ones(count),
        )
        matrix = sp.csc_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_cols)
        )
        lower = np.zeros(n_cols)
        for block, bus in self.pinned.items():
            lower[col_of[bus, block]] = 1.0
        return pair_bus, pair_duty, cost, matrix, np.concatenate(upper), lower

    def solve(
        self, incumbent: dict[int, int], *, bound_by: float, deadline: float
    ) -> tuple[dict[int, int], float, float | None, str]:
        """Column generation for the LP bound, reduced-cost fixing against ``incumbent``, then the MIP on what
        is left, started from ``incumbent``. Returns (solution, objective, proven bound, status)."""
        pair_bus, pair_duty, cost, matrix, row_upper, lower = self._model()
        n_pairs, n_cols = len(pair_bus), len(cost)
        upper = np.concatenate([np.ones(n_pairs), np.full(n_cols - n_pairs, np.inf)])
        col_of = np.full(self.feasible.shape, -1, dtype=int)
        col_of[pair_bus, pair_duty] = np.arange(n_pairs)
        in_master = np.zeros(n_cols, dtype=bool)
        in_master[n_pairs:] = True
        in_master[lower > 0] = True
        for k, v in incumbent.items():
            in_master[col_of[v, k]] = True
        by_cost = np.where(self.feasible, self.single_cost, np.inf)
        few = min(COLUMNS_PER_BLOCK, by_cost.shape[0])
        cheapest_buses = np.argpartition(by_cost, few - 1, axis=0)[:few]
        chosen = col_of[cheapest_buses, np.arange(by_cost.shape[1])[None, :]]
        in_master[chosen[chosen >= 0]] = True
        few = min(COLUMNS_PER_BUS, by_cost.shape[1])
        cheapest_blocks = np.argpartition(by_cost, few - 1, axis=1)[:, :few]
        chosen = col_of[np.arange(by_cost.shape[0])[:, None], cheapest_blocks]
        in_master[chosen[chosen >= 0]] = True

        # The LP, grown column by column; HiGHS re-solves from the previous basis (a few pivots per round).
        lp = _quiet_highs()
        for option, setting in LP_OPTIONS.items():
            lp.setOptionValue(option, setting)
        n_rows = len(row_upper)
        lp.addRows(n_rows, np.full(n_rows, -highspy.kHighsInf), row_upper, 0, np.zeros(n_rows, dtype=np.int32), [], [])
        order: list[np.ndarray] = []

        def add_columns(h: Any, columns: np.ndarray) -> None:
            part = matrix[:, columns]
            h.addCols(
                len(columns),
                cost[columns],
                lower[columns],
                np.where(np.isfinite(upper[columns]), upper[columns], highspy.kHighsInf),
                part.nnz,
                part.indptr[:-1].astype(np.int32),
                part.indices.astype(np.int32),
                part.data,
            )

        add_columns(lp, np.flatnonzero(in_master))
        lp_bound = -np.inf
        reduced = np.zeros(n_cols)
        finite = np.isfinite(upper)
        for _round in range(MAX_PRICING_ROUNDS):
            # HiGHS's clock runs across re-solves of one model: the limit is its time so far plus what is left.
            lp.setOptionValue("time_limit", lp.getRunTime() + max(0.05, bound_by - time.monotonic()))
            lp.run()
            if lp.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                break
            duals = np.asarray(lp.getSolution().row_dual)
            reduced = cost - matrix.T @ duals
            # Lagrangian bound, valid whether or not the pricing has finished: c x >= y b + sum d_j x_j.
            lp_bound = max(
                lp_bound,
                float(
                    duals @ row_upper
                    + np.sum(np.minimum(reduced[finite] * lower[finite], reduced[finite] * upper[finite]))
                    + (np.sum(reduced[~finite] * lower[~finite]) if np.all(reduced[~finite] >= -1e-9) else -np.inf)
                ),
            )
            pricing_out = np.flatnonzero(~in_master & (reduced < -1e-7))
            if len(pricing_out) == 0 or time.monotonic() > bound_by:
                break
            # Each bus's most negative columns (not just the fleet's: those would all be the best buses').
            ranked = pricing_out[np.lexsort((reduced[pricing_out], pair_bus[pricing_out]))]
            first_of_bus = np.searchsorted(pair_bus[ranked], pair_bus[ranked], side="left")
            best = ranked[np.arange(len(ranked)) - first_of_bus < COLUMNS_PER_BUS_PER_ROUND]
            in_master[best] = True
            add_columns(lp, best)
            order.append(best)

        best_known = self.objective(incumbent)
        # Reduced-cost fixing: a column whose reduced cost exceeds (incumbent - bound) is in no better plan.
        keep = (reduced <= best_known - lp_bound + 1e-6) | (lower > 0)
        keep[n_pairs:] = True
        for k, v in incumbent.items():
            keep[col_of[v, k]] = True
        exact = True
        if keep.sum() > MAX_MIP_COLUMNS:
            exact = False
            keep[np.flatnonzero(keep)[np.argsort(reduced[keep])[MAX_MIP_COLUMNS:]]] = False
            keep[n_pairs:] = True
            for k, v in incumbent.items():
                keep[col_of[v, k]] = True
        columns = np.flatnonzero(keep)
        why = "" if exact else f"; MIP over the {MAX_MIP_COLUMNS:,} columns of least reduced cost"
        solution, objective, bound = incumbent, best_known, lp_bound
        remaining = deadline - time.monotonic()
        if remaining > 0.1 and best_known - lp_bound > MIP_ABS_GAP:
            mip = _quiet_highs()
            mip.addRows(
                n_rows, np.full(n_rows, -highspy.kHighsInf), row_upper, 0, np.zeros(n_rows, dtype=np.int32), [], []
            )
            add_columns(mip, columns)
            binaries = np.flatnonzero(columns < n_pairs).astype(np.int32)
            mip.changeColsIntegrality(
                len(binaries), binaries, np.full(len(binaries), highspy.HighsVarType.kInteger, dtype=np.uint8)
            )
            mip.setOptionValue("time_limit", float(remaining))
            mip.setOptionValue("mip_abs_gap", MIP_ABS_GAP)
            mip.setOptionValue("mip_rel_gap", 0.0)
            start = highspy.HighsSolution()
            start.col_value = list(self._column_values(incumbent, columns, pair_bus, pair_duty, n_pairs))
            start.value_valid = True
            mip.setSolution(start)
            mip.run()
            info = mip.getInfo()
            values = np.asarray(mip.getSolution().col_value)
            if len(values) == len(columns) and info.objective_function_value < best_known - 1e-9:
                picked = columns[(columns < n_pairs) & (values > 0.5)]
                solution = {int(pair_duty[p]): int(pair_bus[p]) for p in picked}
                objective = self.objective(solution)
            if exact and np.isfinite(info.mip_dual_bound):
                # Every plan better than the incumbent lies in these columns: their bound holds for all.
                bound = max(bound, min(best_known, float(info.mip_dual_bound)))
        if not np.isfinite(bound):
            return solution, objective, None, "feasible (no bound proven within the time limit)"
        bound = min(bound, objective)
        gap = objective - bound
        if gap <= MIP_ABS_GAP + 1e-9:
            status = f"optimal (within {MIP_ABS_GAP} of the bound)"
        else:
            # The cover part is counted exactly; the gap is in wear and spread, so say it against those.
            wear_and_spread = objective + COVER_WEIGHT * len(solution)
            share = f", {gap / wear_and_spread:.1%} of the wear and spread cost" if wear_and_spread > 1e-9 else ""
            why += "; time limit" if time.monotonic() >= deadline - 0.05 else ""
            status = f"within {gap:.2f} of the bound{share} ({why.lstrip('; ') or 'MIP gap'})"
            if gap > wear_and_spread:
                status = "feasible (at the time limit the bound was still far: no useful gap)"
        return solution, objective, bound, status

    def _column_values(
        self, solution: dict[int, int], columns: np.ndarray, pair_bus: np.ndarray, pair_duty: np.ndarray, n_pairs: int
    ) -> np.ndarray:
        """``solution`` as values of ``columns`` (its spread columns at what the plan adds)."""
        chosen = set(solution.items())
        multi_buses = np.flatnonzero(self.multi)
        depth: dict[int, list[float]] = {}
        for k, v in solution.items():
            depth.setdefault(v, []).append(float(self.energy[k] / self.usable[v]))
        values = np.zeros(len(columns))
        for i, c in enumerate(columns):
            if c < n_pairs:
                values[i] = 1.0 if (int(pair_duty[c]), int(pair_bus[c])) in chosen else 0.0
            else:
                d = depth.get(int(multi_buses[c - n_pairs]), [])
                values[i] = max(0.0, sum(min(x, SPREAD_DOD) for x in d) - SPREAD_DOD)
        return values


def _quiet_highs() -> Any:
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    return h


def _why_not(duty: Duty, buses: Sequence[Bus]) -> str:
    """Why no bus at all can take ``duty`` ("" when some can)."""
    here = [b for b in buses if b.depot == duty.depot]
    if not here:
        return "no bus at this depot"
    chargeable = [b for b in here if b.can_charge]
    if not chargeable:
        notes = sorted({b.note for b in here if b.note})
        return "no bus here can be charged at the depot" + (f" ({'; '.join(notes)})" if notes else "")
    best = max(chargeable, key=budget_kwh)
    if duty.energy_kwh > budget_kwh(best) + 1e-9:
        return (
            f"needs {duty.energy_kwh:.0f} kWh above reserve; the best bus ({best.vehicle_id}) has "
            f"{budget_kwh(best):.0f} kWh at pull-out above its reserve"
        )
    return ""


def _busy_reason(duty: Duty, candidates: int) -> str:
    return (
        f"all {candidates} buses with enough energy are on overlapping blocks or have spent their energy "
        "on other blocks"
    )


def naive_assign(buses: Sequence[Bus], duties: Sequence[Duty], *, turnaround_min: float = 30.0) -> dict[str, str]:
    """What a dispatcher without energy figures does: blocks by departure, each to the first free bus of its
    depot in fleet order. For comparison only (tests and benchmarks)."""
    free_at: dict[str, float] = {b.vehicle_id: -np.inf for b in buses}
    assigned: dict[str, str] = {}
    for duty in sorted(duties, key=lambda d: d.start_min):
        for bus in buses:
            if bus.depot == duty.depot and free_at[bus.vehicle_id] <= duty.start_min:
                assigned[duty.block_id] = bus.vehicle_id
                free_at[bus.vehicle_id] = duty.end_min + turnaround_min
                break
    return assigned
