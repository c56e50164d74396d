"""Chain a service day's trips into the fewest blocks (vehicle duties). Plain Python in, plain Python out.

The problem is a minimum vertex-disjoint path cover of the "can follow" graph: trip j can follow trip i when
j starts no earlier than i ends plus the minimum layover plus the deadhead from i's last stop to j's first,
and no later than ``max_wait_min`` after i ends. Without an energy limit the optimum is exactly
``n - maximum bipartite matching`` (each matched pair saves one block), found in polynomial time
(a unit-capacity max flow, ``scipy.sparse.csgraph.maximum_flow``). That count is also the lower bound
with an energy limit, together with ``ceil(sum of trip energy / limit)``.

With ``max_block_kwh`` set, a chain from the matching may exceed the limit. Then a MILP on HiGHS (via
``scipy.optimize.milp``) chooses the links with cumulative-energy variables along each chain; when it is too big
or runs out of time, the matching's chains are split greedily where they would exceed the limit. The result says
which method answered and how far its count is from the lower bound; ``optimal`` is claimed only when the
count equals the bound or HiGHS proved the MILP optimal.

Times are minutes after the service day's midnight (GTFS times past 24:00 stay above 1,440).
Energies are kWh, deadhead given by the caller as (minutes, kWh) between two stops.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, linear_sum_assignment, milp
from scipy.sparse.csgraph import maximum_flow

from timetable.sparse_rows import SparseRows

Deadhead = Callable[[str, str], tuple[float, float]]  # (from stop, to stop) -> (minutes, kWh)

MILP_MAX_LINKS = 20_000  # above this many possible links the MILP is skipped for the greedy split


@dataclass(frozen=True)
class Trip:
    trip_id: str
    start_min: float
    end_min: float
    start_stop: str
    end_stop: str
    energy_kwh: float = 0.0
    pull_out_kwh: float = 0.0  # depot -> first stop, if this trip starts a block
    pull_in_kwh: float = 0.0  # last stop -> depot, if this trip ends a block


@dataclass(frozen=True)
class Rules:
    min_layover_min: float = 5.0
    max_wait_min: float = 180.0
    max_block_kwh: float | None = None
    time_limit_s: float = 20.0


@dataclass(frozen=True)
class Blocking:
    """Blocks as tuples of trip ids in driving order, and how good the answer is."""

    blocks: tuple[tuple[str, ...], ...]
    lower_bound: int
    optimal: bool
    method: str  # "matching", "milp", "matching+split"
    over_limit: tuple[str, ...]  # trips whose energy alone (with pull-out and pull-in) exceeds the limit

    @property
    def count(self) -> int:
        return len(self.blocks)

    @property
    def gap_blocks(self) -> int:
        return self.count - self.lower_bound


def links(trips: Sequence[Trip], rules: Rules, deadhead: Deadhead) -> list[tuple[int, int, float]]:
    """Every (i, j, deadhead kWh) such that trip j may follow trip i in one block."""
    order = sorted(range(len(trips)), key=lambda k: trips[k].start_min)
    starts = [trips[k].start_min for k in order]
    result: list[tuple[int, int, float]] = []
    for i, trip in enumerate(trips):
        lo = bisect.bisect_left(starts, trip.end_min + rules.min_layover_min)
        hi = bisect.bisect_right(starts, trip.end_min + rules.max_wait_min)
        for pos in range(lo, hi):
            j = order[pos]
            if j == i:
                continue
            minutes, kwh = deadhead(trip.end_stop, trips[j].start_stop)
            if trip.end_min + rules.min_layover_min + minutes <= trips[j].start_min:
                result.append((i, j, kwh))
    return result


def chain_energy_kwh(chain: Sequence[int], trips: Sequence[Trip], link_kwh: dict[tuple[int, int], float]) -> float:
    energy = trips[chain[0]].pull_out_kwh + trips[chain[-1]].pull_in_kwh
    energy += sum(trips[k].energy_kwh for k in chain)
    energy += sum(link_kwh[(a, b)] for a, b in zip(chain, chain[1:], strict=False))
    return energy


def _chains(n: int, successor: dict[int, int]) -> list[list[int]]:
    has_predecessor = set(successor.values())
    chains = []
    for head in range(n):
        if head in has_predecessor:
            continue
        chain = [head]
        while chain[-1] in successor:
            chain.append(successor[chain[-1]])
        chains.append(chain)
    return chains


def _matching(n: int, edges: list[tuple[int, int, float]]) -> dict[int, int]:
    """A maximum matching of the split graph (trip i -> trip j), as a unit-capacity max flow (Dinic).

    scipy's ``maximum_bipartite_matching`` (Hopcroft-Karp) gives the same count but took seconds on
    timetable-shaped graphs where Dinic takes milliseconds (bench/bench_timetable.py)."""
    if not edges:
        return {}
    source, sink = 2 * n, 2 * n + 1
    heads = np.fromiter((e[0] for e in edges), dtype=np.int64, count=len(edges))
    tails = np.fromiter((e[1] for e in edges), dtype=np.int64, count=len(edges))
    rows = np.concatenate([np.full(n, source), heads, n + np.arange(n)])
    cols = np.concatenate([np.arange(n), n + tails, np.full(n, sink)])
    graph = sp.csr_array((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(2 * n + 2, 2 * n + 2))
    flow = maximum_flow(graph, source, sink, method="dinic").flow.tocoo()
    used = (flow.data > 0) & (flow.row < n) & (flow.col >= n) & (flow.col < 2 * n)
    return {int(i): int(j) - n for i, j in zip(flow.row[used], flow.col[used], strict=True)}


def _split(
    chain: list[int], trips: Sequence[Trip], link_kwh: dict[tuple[int, int], float], limit: float
) -> list[list[int]]:
    pieces: list[list[int]] = [[chain[0]]]
    for k in chain[1:]:
        if chain_energy_kwh([*pieces[-1], k], trips, link_kwh) <= limit + 1e-9:
            pieces[-1].append(k)
        else:
            pieces.append([k])
    return pieces


def _merge(
    pieces: list[list[int]], trips: Sequence[Trip], link_kwh: dict[tuple[int, int], float], limit: float
) -> list[list[int]]:
    """Join blocks end to start where a link allows it and the energy still fits (the fullest join first),
    until none can be joined: splitting chains where they run out of energy leaves pieces that often fit
    after another chain's piece (Cairns: 97 -> 86 blocks)."""
    preceders: dict[int, list[int]] = {}
    for i, j in link_kwh:
        preceders.setdefault(j, []).append(i)
    blocks = sorted((list(p) for p in pieces), key=lambda p: trips[p[0]].start_min)
    energy = [chain_energy_kwh(p, trips, link_kwh) for p in blocks]
    ending_at = {block[-1]: b for b, block in enumerate(blocks)}
    alive = [True] * len(blocks)
    joined = True
    while joined:
        joined = False
        for b, block in enumerate(blocks):
            if not alive[b]:
                continue
            best, best_kwh = -1, -math.inf
            for last in preceders.get(block[0], ()):
                a = ending_at.get(last, -1)
                if a < 0 or a == b:
                    continue
                kwh = energy[a] + energy[b] + link_kwh[(last, block[0])]
                kwh -= trips[last].pull_in_kwh + trips[block[0]].pull_out_kwh
                if best_kwh < kwh <= limit + 1e-9:
                    best, best_kwh = a, kwh
            if best >= 0:
                del ending_at[blocks[best][-1]]
                blocks[best] += block
                ending_at[block[-1]] = best
                energy[best], alive[b], joined = best_kwh, False, True
    return [block for block, kept in zip(blocks, alive, strict=True) if kept]


def _greedy(
    n: int,
    trips: Sequence[Trip],
    edges: list[tuple[int, int, float]],
    link_kwh: dict[tuple[int, int], float],
    limit: float,
) -> list[list[int]]:
    """First fit in start order: each trip joins the open block whose last trip it may follow with the least
    idle time and whose energy still fits; else it starts a block."""
    can_follow: dict[int, set[int]] = {}
    for i, j, _kwh in edges:
        can_follow.setdefault(j, set()).add(i)
    open_blocks: list[list[int]] = []
    energy: list[float] = []
    for k in sorted(range(n), key=lambda k: (trips[k].start_min, trips[k].end_min)):
        best, best_idle = -1, math.inf
        for b, block in enumerate(open_blocks):
            last = block[-1]
            if last not in can_follow.get(k, ()):
                continue
            added = link_kwh[(last, k)] + trips[k].energy_kwh - trips[last].pull_in_kwh + trips[k].pull_in_kwh
            idle = trips[k].start_min - trips[last].end_min
            if energy[b] + added <= limit + 1e-9 and idle < best_idle:
                best, best_idle = b, idle
        if best < 0:
            open_blocks.append([k])
            energy.append(trips[k].pull_out_kwh + trips[k].energy_kwh + trips[k].pull_in_kwh)
        else:
            last = open_blocks[best][-1]
            energy[best] += link_kwh[(last, k)] + trips[k].energy_kwh - trips[last].pull_in_kwh + trips[k].pull_in_kwh
            open_blocks[best].append(k)
    return open_blocks


def _milp(
    trips: Sequence[Trip], edges: list[tuple[int, int, float]], limit: float, time_limit_s: float
) -> tuple[dict[int, int], bool, float] | None:
    """Links chosen, proven optimal?, upper bound on the number of links (from HiGHS's dual bound)."""
    n, m = len(trips), len(edges)
    if m == 0:
        return {}, True, 0.0
    big_m = limit + max((t.energy_kwh + t.pull_out_kwh for t in trips), default=0.0) + max(e[2] for e in edges)
    # Variables: x_e (m binaries), then cumulative energy e_j (n continuous) on arriving at the end of trip j.
    c = np.concatenate([-np.ones(m), np.zeros(n)])
    constraint_rows = SparseRows()
    add = constraint_rows.add

    out_edges: list[list[int]] = [[] for _ in range(n)]
    in_edges: list[list[int]] = [[] for _ in range(n)]
    for k, (i, j, _kwh) in enumerate(edges):
        out_edges[i].append(k)
        in_edges[j].append(k)
    for v in range(n):
        if len(out_edges[v]) > 1:
            add([(k, 1.0) for k in out_edges[v]], -np.inf, 1.0)
        if len(in_edges[v]) > 1:
            add([(k, 1.0) for k in in_edges[v]], -np.inf, 1.0)
        # Last trip of its block: the pull-in must fit too (relaxed by big M when it has a successor).
        add([(m + v, 1.0)] + [(k, -big_m) for k in out_edges[v]], -np.inf, limit - trips[v].pull_in_kwh)
    for k, (i, j, kwh) in enumerate(edges):
        # e_j >= e_i + deadhead + E_j when the link is used.
        add([(m + j, 1.0), (m + i, -1.0), (k, -big_m)], kwh + trips[j].energy_kwh - big_m, np.inf)
    lb = np.concatenate([np.zeros(m), [t.pull_out_kwh + t.energy_kwh for t in trips]])
    ub = np.concatenate([np.ones(m), np.full(n, limit)])
    integrality = np.concatenate([np.ones(m), np.zeros(n)])
    result = milp(
        c,
        constraints=constraint_rows.constraint(m + n),
        bounds=Bounds(lb, ub),
        integrality=integrality,
        options={"time_limit": time_limit_s, "disp": False},
    )
    if result.x is None:
        return None
    chosen = {edges[k][0]: edges[k][1] for k in range(m) if result.x[k] > 0.5}
    dual = getattr(result, "mip_dual_bound", None)
    best_links = -float(dual) if dual is not None and np.isfinite(dual) else float(m)
    return chosen, result.status == 0, best_links


LAGRANGIAN_MAX_TRIPS = 3_000  # a dense n x n assignment per multiplier: above this the bound is skipped
# Multipliers tried, x 1 / limit: a grid (each gives a plan too, split where it exceeds the limit: on the
# 1,000-trip benchmark lam = 0.5 / limit gave chains that all fit, 81 blocks = the bound), then golden-section
# steps towards the best bound.
LAGRANGIAN_GRID = (0.0, 0.25, 0.5, 0.75)
LAGRANGIAN_STEPS = 5


def _energy_priced(
    trips: Sequence[Trip],
    edges: list[tuple[int, int, float]],
    limit: float,
    usable: list[int],
    link_kwh: dict[tuple[int, int], float],
) -> tuple[float, list[list[int]]]:
    """A lower bound on the number of blocks that counts the energy limit, and the best plan met on the way.

    For any plan whose blocks p all keep energy(p) <= limit, and any multiplier lam >= 0,
    ``blocks = sum_p 1 >= sum_p (1 + lam * (energy(p) - limit))``. The right side is a min-cost path cover
    with no energy limit at all: every block costs (1 - lam * limit) plus lam x its pull-out and pull-in, every
    link lam x its deadhead, every trip lam x its energy - that is, a min-cost bipartite matching of the links
    (Hungarian method). Its value at any lam bounds the count from below (concave in lam); lam = 0 gives the
    plain matching bound. Each lam's matching, its chains split where they exceed the limit, is also a plan: a
    positive lam prefers chains with less energy. (The over-limit trips are left out: each is a block.)"""
    index = {trip: i for i, trip in enumerate(usable)}
    n = len(usable)
    heads = np.array([index[i] for i, j, _kwh in edges], dtype=int)
    tails = np.array([index[j] for i, j, _kwh in edges], dtype=int)
    deadhead = np.array([kwh for _i, _j, kwh in edges], dtype=float)
    pull_in = np.array([trips[k].pull_in_kwh for k in usable])
    pull_out = np.array([trips[k].pull_out_kwh for k in usable])
    fixed = float(sum(trips[k].energy_kwh for k in usable) + pull_in.sum() + pull_out.sum())
    best_bound = -math.inf
    best_plan: list[list[int]] = []

    def value(lam: float) -> float:
        nonlocal best_bound, best_plan
        weight = -(1.0 - lam * limit) + lam * (deadhead - pull_in[heads] - pull_out[tails])
        useful = weight < 0
        cost = np.zeros((n, n))
        cost[heads[useful], tails[useful]] = weight[useful]
        rows, cols = linear_sum_assignment(cost)
        matched = cost[rows, cols] < 0
        successor = {usable[int(r)]: usable[int(c)] for r, c in zip(rows[matched], cols[matched], strict=True)}
        plan = [piece for c in _chains(len(trips), successor) for piece in _split(c, trips, link_kwh, limit)]
        if not best_plan or len(plan) < len(best_plan):
            best_plan = plan
        bound = (1.0 - lam * limit) * n + lam * fixed + float(cost[rows, cols].sum())
        best_bound = max(best_bound, bound)
        return bound

    values = [(lam / limit, value(lam / limit)) for lam in LAGRANGIAN_GRID]
    # Golden-section search for the best bound, between the grid's neighbours of its best point.
    top = max(range(len(values)), key=lambda i: values[i][1])
    low = values[max(top - 1, 0)][0]
    high = values[top + 1][0] if top + 1 < len(values) else 2.0 / limit
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = value(a), value(b)
    for _ in range(LAGRANGIAN_STEPS):
        if len(best_plan) <= math.ceil(best_bound - 1e-6) + len(trips) - n:
            break  # the plan meets the bound: optimal
        if fa < fb:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = value(b)
        else:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = value(a)
    return best_bound, best_plan


def chain_trips(trips: Sequence[Trip], rules: Rules, deadhead: Deadhead) -> Blocking:
    """The fewest blocks covering ``trips`` under ``rules`` (see the module's docstring for the method)."""
    n = len(trips)
    if n == 0:
        return Blocking(blocks=(), lower_bound=0, optimal=True, method="matching", over_limit=())
    limit = rules.max_block_kwh
    over_limit: set[int] = set()
    if limit is not None:
        over_limit = {k for k, t in enumerate(trips) if t.pull_out_kwh + t.energy_kwh + t.pull_in_kwh > limit}
    edges = [e for e in links(trips, rules, deadhead) if e[0] not in over_limit and e[1] not in over_limit]
    link_kwh = {(i, j): kwh for i, j, kwh in edges}
    successor = _matching(n, edges)
    lower_bound = n - len(successor)
    if limit is not None:
        energy_bound = math.ceil(sum(t.energy_kwh for t in trips) / limit - 1e-9)
        lower_bound = max(lower_bound, energy_bound)
    chains = _chains(n, successor)
    method = "matching"
    proven = False
    if limit is not None and any(len(c) > 1 and chain_energy_kwh(c, trips, link_kwh) > limit + 1e-9 for c in chains):
        solved = None
        if len(edges) <= MILP_MAX_LINKS:
            solved = _milp(trips, edges, limit, rules.time_limit_s)
        candidates = [
            ("matching+split", [piece for c in chains for piece in _split(c, trips, link_kwh, limit)]),
            ("greedy", _greedy(n, trips, edges, link_kwh, limit)),
        ]
        usable = [k for k in range(n) if k not in over_limit]
        if 0 < len(usable) <= LAGRANGIAN_MAX_TRIPS:
            bound, priced_plan = _energy_priced(trips, edges, limit, usable, link_kwh)
            lower_bound = max(lower_bound, math.ceil(bound - 1e-6) + len(over_limit))
            candidates.append(("energy-priced matching+split", priced_plan))
        if solved is not None:
            chosen, proven, best_links = solved
            candidates.insert(0, ("milp", _chains(n, chosen)))
            lower_bound = max(lower_bound, n - math.floor(best_links + 1e-6))
        candidates = [(method, chains) for method, chains in candidates if method == "milp"] + [
            (f"{method}+joined", _merge(chains, trips, link_kwh, limit))
            for method, chains in candidates
            if method != "milp"
        ]
        method, chains = min(candidates, key=lambda mc: len(mc[1]))
        proven = proven and method == "milp"
    blocks = tuple(tuple(trips[k].trip_id for k in c) for c in sorted(chains, key=lambda c: trips[c[0]].start_min))
    return Blocking(
        blocks=blocks,
        lower_bound=lower_bound,
        optimal=proven or len(blocks) == lower_bound,
        method=method,
        over_limit=tuple(trips[k].trip_id for k in sorted(over_limit)),
    )
