"""Which bus runs which block on one service day, by energy. Plain Python in, plain Python out (HiGHS MIP).

A bus may take a block when it is at the block's depot, can be charged there (a compatible connector) and the
energy it is expected to have at pull-out, less its reserve, covers the block. It may take several blocks
that do not overlap (with ``turnaround_min`` between them) whose energy together fits that budget: no charging
between blocks is counted, which is conservative for depots that top up at midday.

The MIP (``scipy.optimize.milp``, HiGHS) has a binary ``x[v, b]`` for every feasible pair, at most one bus per
block, each bus's energy budget as a knapsack row, and "no two overlapping blocks" rows per bus over the
maximal cliques of the blocks it could take together (two blocks whose energies cannot both fit are already
kept apart by the knapsack row, so only the short blocks need overlap rows). The objective, in order of weight:
1. cover as many blocks as possible (``COVER_WEIGHT`` per block);
2. wear: a block's depth of discharge on the bus (kWh / usable kWh) weighted up for lower SoH, so long blocks
   go to healthy, large packs (an exchange argument: the sum is least when the largest energies meet the
   smallest weights);
3. spread: every bus's day above ``SPREAD_DOD`` of its usable capacity costs extra, so wear is spread.
Pinned pairs are fixed to 1. Blocks left uncovered come back with a reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, linear_sum_assignment, milp

from timetable.sparse_rows import SparseRows

COVER_WEIGHT = 1_000.0
HEALTH_WEIGHT = 5.0  # a pack at 80 % SoH pays (1 + 5 x 0.2) = 2 x the wear weight of a new one
SPREAD_DOD = 0.6
SPREAD_WEIGHT = 2.0
MIP_REL_GAP = 1e-4  # HiGHS stops within 0.01 % of its bound (a block's cover weight is ~0.3 % of a 300-block day)
# Above this many feasible pairs the MIP keeps, for every block, its best-fitting buses (least energy to spare)
# and, for every bus, the blocks that fit it best: the full model of 300 blocks x 320 buses did not solve in 30 s.
MAX_FULL_PAIRS = 5_000
BEST_FIT_PER_BLOCK = 6
BEST_FIT_PER_BUS = 4


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
    status: str  # "optimal" (HiGHS proved it), "time limit (feasible)", "no feasible pair", ...
    objective: float | None
    solve_seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

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
    time_limit_s: float = 30.0,
) -> Assignment:
    """Assign ``duties`` to ``buses`` (see the module's docstring). Energies in kWh, times in minutes."""
    started = time.monotonic()
    bus_index = {b.vehicle_id: i for i, b in enumerate(buses)}
    duty_index = {d.block_id: k for k, d in enumerate(duties)}
    warnings: list[str] = []
    pinned: dict[int, int] = {}
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

    pairs: list[tuple[int, int]] = []
    for k, duty in enumerate(duties):
        if k in pinned:
            pairs.append((pinned[k], k))
            continue
        for v, bus in enumerate(buses):
            if v in over_pinned or bus.depot != duty.depot or not bus.can_charge:
                continue
            if duty.energy_kwh <= budget_kwh(bus) + 1e-9:
                pairs.append((v, k))
    reduced = len(pairs) > MAX_FULL_PAIRS
    if reduced:
        pairs = _best_fit(pairs, buses, duties, pinned)
    uncovered_reason = {k: _why_not(duties[k], buses) for k in range(len(duties))}
    if not pairs:
        return Assignment(
            assigned={},
            uncovered={duties[k].block_id: uncovered_reason[k] for k in range(len(duties))},
            status="no feasible pair",
            objective=None,
            solve_seconds=time.monotonic() - started,
            warnings=tuple(warnings),
        )

    n_pairs, n_bus = len(pairs), len(buses)
    # Variables: x (n_pairs binaries), then s_v >= 0 (energy share above SPREAD_DOD per bus).
    c = np.zeros(n_pairs + n_bus)
    for p, (v, k) in enumerate(pairs):
        c[p] = -COVER_WEIGHT + duties[k].energy_kwh * wear_weight(buses[v])
    c[n_pairs:] = SPREAD_WEIGHT
    constraint_rows = SparseRows()
    add = constraint_rows.add

    by_duty: dict[int, list[int]] = {}
    by_bus: dict[int, list[int]] = {}
    for p, (v, k) in enumerate(pairs):
        by_duty.setdefault(k, []).append(p)
        by_bus.setdefault(v, []).append(p)
    for ps in by_duty.values():
        if len(ps) > 1:
            add([(p, 1.0) for p in ps], -np.inf, 1.0)
    for v, ps in by_bus.items():
        bus = buses[v]
        energies = [duties[pairs[p][1]].energy_kwh for p in ps]
        budget = budget_kwh(bus)
        if v not in over_pinned:
            add([(p, e) for p, e in zip(ps, energies, strict=True)], -np.inf, budget)
        # Spread: s_v >= (sum energy) / usable - SPREAD_DOD.
        add(
            [(p, e / max(bus.usable_kwh, 1e-6)) for p, e in zip(ps, energies, strict=True)] + [(n_pairs + v, -1.0)],
            -np.inf,
            SPREAD_DOD,
        )
        smallest = min(energies)
        pairable = [p for p, e in zip(ps, energies, strict=True) if v in over_pinned or e + smallest <= budget + 1e-9]
        if len(pairable) > 1:
            col_of = {pairs[p][1]: p for p in pairable}
            for clique in _cliques(duties, sorted(col_of), turnaround_min):
                add([(col_of[k], 1.0) for k in clique], -np.inf, 1.0)

    lb = np.zeros(n_pairs + n_bus)
    ub = np.concatenate([np.ones(n_pairs), np.full(n_bus, np.inf)])
    for p, (v, k) in enumerate(pairs):
        if pinned.get(k) == v:
            lb[p] = 1.0
    integrality = np.concatenate([np.ones(n_pairs), np.zeros(n_bus)])
    constraints = [constraint_rows.constraint(n_pairs + n_bus)] if constraint_rows.count else []
    result = milp(
        c,
        constraints=constraints,
        bounds=Bounds(lb, ub),
        integrality=integrality,
        options={"time_limit": time_limit_s, "disp": False, "mip_rel_gap": MIP_REL_GAP},
    )
    if result.x is None:
        return Assignment(
            assigned={},
            uncovered={d.block_id: f"the optimiser found no plan ({result.message})" for d in duties},
            status=f"failed: {result.message}",
            objective=None,
            solve_seconds=time.monotonic() - started,
            warnings=tuple(warnings),
        )
    assigned: dict[str, str] = {}
    for p, (v, k) in enumerate(pairs):
        if result.x[p] > 0.5:
            assigned[duties[k].block_id] = buses[v].vehicle_id
    uncovered = {
        duties[k].block_id: uncovered_reason[k] or _busy_reason(duties[k], len(by_duty.get(k, [])))
        for k in range(len(duties))
        if duties[k].block_id not in assigned
    }
    status = f"optimal within {MIP_REL_GAP:.2%}" if result.status == 0 else "time limit (feasible)"
    if reduced:
        status += f" over each block's {BEST_FIT_PER_BLOCK} best-fitting buses"
    return Assignment(
        assigned=assigned,
        uncovered=uncovered,
        status=status,
        objective=float(result.fun),
        solve_seconds=time.monotonic() - started,
        warnings=tuple(warnings),
    )


def _best_fit(
    pairs: list[tuple[int, int]], buses: Sequence[Bus], duties: Sequence[Duty], pinned: dict[int, int]
) -> list[tuple[int, int]]:
    """The pairs where the bus has the least energy to spare among the block's candidates, or the block uses the
    most of the bus's among the bus's candidates (long blocks meet large budgets, short ones small)."""

    def slack(pair: tuple[int, int]) -> float:
        return budget_kwh(buses[pair[0]]) - duties[pair[1]].energy_kwh

    by_duty: dict[int, list[tuple[int, int]]] = {}
    by_bus: dict[int, list[tuple[int, int]]] = {}
    for pair in pairs:
        by_duty.setdefault(pair[1], []).append(pair)
        by_bus.setdefault(pair[0], []).append(pair)
    keep = {(v, k) for k, v in pinned.items()}
    # Plus the best one-block-per-bus assignment (Hungarian method): it keeps the reduced model at least as
    # good at covering blocks as that assignment, whatever the best-fit lists miss.
    infeasible = 1e9
    cost = np.full((len(buses), len(duties)), infeasible)
    for v, k in pairs:
        cost[v, k] = -COVER_WEIGHT + duties[k].energy_kwh * wear_weight(buses[v])
    rows, cols = linear_sum_assignment(cost)
    keep.update((int(v), int(k)) for v, k in zip(rows, cols, strict=True) if cost[v, k] < infeasible)
    for group in by_duty.values():
        keep.update(sorted(group, key=slack)[:BEST_FIT_PER_BLOCK])
    for group in by_bus.values():
        keep.update(sorted(group, key=slack)[:BEST_FIT_PER_BUS])
    return [pair for pair in pairs if pair in keep]


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
