"""Exact connector assignment as a MILP, for small depots (a few thousand binaries at most).

On top of the core LP (windows = whole stays), for each vehicle v, compatible connector c and
present slot t:

- ``z[v,c,t]`` in {0, 1}: v is plugged into c in slot t; ``sum_v z[v,c,t] <= 1`` (one vehicle per
  connector) and ``q[v,c,t] <= max_kw(v,c) * z[v,c,t]``, ``p[v,t] = sum_c q[v,c,t]``;
- ``s[v,c,t] >= z[v,c,t] - z[v,c,t-1]`` counts window starts and ``sum_{c,t} s[v,c,t] <= 1``: one
  connector, one contiguous window (``s`` can stay continuous: the ``z`` are integer);
- per charger and slot, ``sum q <= charger max_kw``;
- time-to-charge rows (``time_to_charge_cuts``): the hours a vehicle is plugged in are at least the
  hours its curve needs to reach its departure energy. Valid for every plan; they cut off the
  relaxation's "a quarter of a connector at a quarter of the power", which a taper makes far
  cheaper than real connector time. In the benchmark's per-charger exact MILP
  (``bench/exact_by_charger.py``) they took the 8-bus, 2-connector night from no plan serving every
  bus in 60 s to one 0.12 % above the bound; their effect on this model was not measured apart.
"""

from __future__ import annotations

import numpy as np

from .assignment import Assignment
from .instance import Instance
from .lp import INF, CoreIndex, LpModel, LpSolution, Windows, build_core
from .quantities import VehicleArrays, effective_max_kw, taper_limit_kw

# Grid steps of the time-to-charge curve (its lower convex hull gives the rows), and at most this many rows
# per vehicle (each row spans all the vehicle's binaries: many would slow the neighbourhood search).
TIME_TO_CHARGE_STEPS = 200
TIME_TO_CHARGE_MAX_ROWS = 6


def count_binaries(instance: Instance, compatible: list[np.ndarray]) -> int:
    stays = [max(v.departure_slot - v.arrival_slot, 0) for v in instance.vehicles]
    return int(sum(c.size * s for c, s in zip(compatible, stays, strict=True)))


def solve_milp(
    instance: Instance,
    va: VehicleArrays,
    compatible: list[np.ndarray],
    *,
    time_limit_s: float | None,
    start: Assignment | None = None,
    mip_rel_gap: float | None = None,
    free: np.ndarray | None = None,
    max_nodes: int | None = None,
) -> tuple[LpSolution, CoreIndex, Windows, Assignment | None]:
    """Solve the exact MILP; returns (solution, core index, windows, assignment or None).

    ``start``: connector windows (e.g. the heuristic's) given to HiGHS as a MIP start: every ``z``
    set from them, HiGHS completes the continuous part, so the MILP's incumbent is never worse
    than that plan's re-solve. ``mip_rel_gap``: HiGHS's stopping gap (default 1e-4).
    ``free`` (bool [vehicle, slot], with ``start``): only those ``z`` are free, the others are fixed
    at ``start``'s - a neighbourhood of it (``solve``'s large-neighbourhood search). The bound of
    such a solve is not a bound of the night.
    """
    connectors = instance.connectors()
    charger_index = {ch.id: k for k, ch in enumerate(instance.chargers)}
    num_vehicles = len(instance.vehicles)
    best_kw = np.array(
        [
            max((effective_max_kw(vehicle, *connectors[c]) for c in compatible[v]), default=0.0)
            for v, vehicle in enumerate(instance.vehicles)
        ]
    )
    windows = Windows.whole_stays(va, compatible, best_kw)
    model = LpModel()
    core = build_core(instance, va, windows, model)

    # One (vehicle, connector, slot) triple per binary, pair by pair.
    pair_blocks: list[np.ndarray] = []
    conn_blocks: list[np.ndarray] = []
    for v in range(num_vehicles):
        pairs = np.arange(core.first_pair[v], core.first_pair[v + 1])
        for c in compatible[v]:
            pair_blocks.append(pairs)
            conn_blocks.append(np.full(pairs.size, c))
    if not pair_blocks:
        return model.solve(time_limit_s=time_limit_s), core, windows, None
    trip_pair = np.concatenate(pair_blocks)
    trip_conn = np.concatenate(conn_blocks)
    trip_vehicle = core.pair_vehicle[trip_pair]
    trip_slot = core.pair_slot[trip_pair]
    n = trip_pair.size
    trip_kw = np.array(
        [effective_max_kw(instance.vehicles[v], *connectors[c]) for v, c in zip(trip_vehicle, trip_conn, strict=True)]
    )
    # A vehicle already plugged in is on its connector at arrival; its one window starts there but
    # may end before departure (staff unplug it for the next bus).
    fixed = np.array([instance.vehicles[v].fixed_connector_id is not None for v in trip_vehicle], dtype=bool)
    at_arrival = trip_slot == va.arrival_slot[trip_vehicle]
    k = np.arange(n)
    z_lower, z_upper = np.where(fixed & at_arrival, 1.0, 0.0), np.ones(n)
    on = np.zeros(n, dtype=bool)
    if start is not None:
        on = (start.connector[trip_vehicle] == trip_conn) & (trip_slot >= start.start[trip_vehicle])
        on &= trip_slot < start.end[trip_vehicle]
        if free is not None:
            held = ~free[trip_vehicle, trip_slot]
            z_lower = np.where(held, on, z_lower)
            z_upper = np.where(held, on, z_upper)
    z_col = model.add_cols(np.zeros(n), z_lower, z_upper, integer=True)
    q_col = model.add_cols(np.zeros(n), 0.0, trip_kw)
    s_col = model.add_cols(np.zeros(n), 0.0, 1.0)

    # p = sum_c q
    row = model.add_rows(0.0, 0.0, core.num_pairs)
    model.add_entries(row + np.arange(core.num_pairs), core.p_col + np.arange(core.num_pairs), 1.0)
    model.add_entries(row + trip_pair, q_col + k, -1.0)
    # q <= kw * z
    row = model.add_rows(-INF, 0.0, n)
    model.add_entries(row + k, q_col + k, 1.0)
    model.add_entries(row + k, z_col + k, -trip_kw)
    # one vehicle per connector and slot
    key = trip_conn * instance.num_slots + trip_slot
    keys, key_of = np.unique(key, return_inverse=True)
    row = model.add_rows(-INF, 1.0, keys.size)
    model.add_entries(row + key_of, z_col + k, 1.0)
    # per charger and slot
    charger = np.array([charger_index[connectors[c][0].id] for c in trip_conn], dtype=int)
    key = charger * instance.num_slots + trip_slot
    keys, key_of = np.unique(key, return_inverse=True)
    limits = np.array([ch.max_kw for ch in instance.chargers])[keys // instance.num_slots]
    row = model.add_rows(-INF, limits, keys.size)
    model.add_entries(row + key_of, q_col + k, 1.0)
    # starts: s - z + z_prev >= 0 (triples of one (v, c) are consecutive slots)
    row = model.add_rows(0.0, INF, n)
    model.add_entries(row + k, s_col + k, 1.0)
    model.add_entries(row + k, z_col + k, -1.0)
    continues = np.flatnonzero(
        (k > 0) & (np.roll(trip_vehicle, 1) == trip_vehicle) & (np.roll(trip_conn, 1) == trip_conn)
    )
    model.add_entries(row + continues, z_col + continues - 1, 1.0)
    # at most one window per vehicle
    row = model.add_rows(-INF, 1.0, num_vehicles)
    model.add_entries(row + trip_vehicle, s_col + k, 1.0)

    # hours plugged in >= slope * departure energy + rhs (not in a neighbourhood: most z are fixed there)
    hours = instance.slot_hours
    for v in range(num_vehicles):
        if core.first_pair[v + 1] == core.first_pair[v] or free is not None:
            continue
        mine = np.flatnonzero(trip_vehicle == v)
        for slope, rhs in time_to_charge_cuts(instance, va, v, float(best_kw[v])):
            row = model.add_rows(rhs, INF, 1)
            model.add_entries(np.full(mine.size, row), z_col + mine, hours)
            model.add_entries([row], [core.e_col + core.first_pair[v + 1] - 1], -slope)

    warm = (z_col + k, on.astype(float)) if start is not None else None
    solution = model.solve(
        time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap if mip_rel_gap is not None else 1e-4,
        start=warm,
        max_nodes=max_nodes,
    )
    if solution.x is None:
        return solution, core, windows, None
    z = solution.x[z_col : z_col + n] > 0.5
    assignment = Assignment(np.full(num_vehicles, -1), np.zeros(num_vehicles, int), np.zeros(num_vehicles, int))
    for v in range(num_vehicles):
        mine = np.flatnonzero(z & (trip_vehicle == v))
        if mine.size:
            assignment.connector[v] = trip_conn[mine[0]]
            assignment.start[v] = trip_slot[mine].min()
            assignment.end[v] = trip_slot[mine].max() + 1
    return solution, core, windows, assignment


def time_to_charge_cuts(
    instance: Instance,
    va: VehicleArrays,
    v: int,
    max_kw: float,
    steps: int = TIME_TO_CHARGE_STEPS,
    max_rows: int = TIME_TO_CHARGE_MAX_ROWS,
) -> list[tuple[float, float]]:
    """Rows ``hours plugged in >= slope * e_end + rhs`` valid for every plan of vehicle v, as (slope, rhs).

    At the most its curve allows (``max_kw``, the taper), the vehicle needs T(E) hours to reach battery
    energy E; a plan's power never exceeds the curve anywhere in a slot, so a plan plugged in for fewer
    hours ends below E. T is computed on a grid from below (each step at its faster end, and T(e) >=
    T(grid[i]) on a step), and only the lower convex hull of those points is used: the rows stay valid
    for curves that rise as well as fall.
    """
    vehicle = instance.vehicles[v]
    e0, e1 = float(va.initial_kwh[v]), float(va.max_kwh[v])
    if e1 <= e0 + 1e-9 or max_kw <= 0:
        return []
    grid = np.linspace(e0, e1, steps + 1)
    rate = np.array([float(va.efficiency[v]) * min(max_kw, taper_limit_kw(vehicle, float(e))) for e in grid])
    faster_end = np.maximum(rate[:-1], rate[1:])
    reachable = np.flatnonzero(np.cumsum(faster_end <= 1e-9) == 0)  # steps before the curve reaches 0 kW
    if reachable.size == 0:
        return []
    hours_at = np.concatenate([[0.0], np.cumsum(np.diff(grid)[reachable] / faster_end[reachable])])
    # T(e) >= hours_at[i] for e >= grid[i]: the points (grid[i + 1], hours_at[i]) lie under T.
    points = [(float(grid[0]), 0.0)] + [(float(grid[i + 1]), float(hours_at[i])) for i in range(reachable.size)]
    hull: list[tuple[float, float]] = []
    for point in points:
        while len(hull) >= 2 and _turn(hull[-2], hull[-1], point) <= 0:
            hull.pop()
        hull.append(point)
    cuts = []
    for (xa, ya), (xb, yb) in zip(hull, hull[1:], strict=False):
        slope = (yb - ya) / (xb - xa)
        if slope > 1e-12:
            cuts.append((slope, ya - slope * xa))
    # Each hull edge's line is under every point, so any subset of them is valid: keep a spread of them,
    # the last (steepest, near full) always.
    if len(cuts) > max_rows:
        keep = np.unique(np.linspace(len(cuts) - 1, 0, max_rows).round().astype(int))
        cuts = [cuts[i] for i in keep]
    return cuts


def _turn(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    """Cross product of o->a and o->b: > 0 for a left (counter-clockwise) turn."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
