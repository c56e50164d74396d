"""A stronger exact MILP for the scarce-night benchmark: plugged into a *charger*, not a connector.

``charging.optimizer.milp`` has one binary per (vehicle, connector, slot). The connectors of one charger
are identical, and so are chargers of one kind, so that model has many copies of every solution and
branch and bound proves little in a minute (``bench/results/optimizer-scarce-2026-12-06.md``). Here:

- ``z[v,k,t]`` in {0, 1}: vehicle v is plugged into charger k in slot t; at most (k's connectors)
  vehicles at once, ``q[v,k,t] <= kW(v,k) * z``, ``p[v,t] = sum_k q``, ``sum_v q[v,k,t] <=`` k's limit;
  one contiguous window per vehicle (``s >= z - z_prev``, ``sum s <= 1``), as in ``milp.py``.
  Exact when a charger's connectors are alike (same kW): intervals of which at most n overlap can be
  given n connectors so each vehicle keeps one (an interval graph is perfect; ``connector_windows``).
- The time-to-charge rows of ``milp.py`` (hours plugged in >= hours the curve needs for the energy).
- Symmetry breaking among identical chargers (same limit, same connectors): relabelled by the lowest
  vehicle index each holds, charger j of a class holds no vehicle below index j, so ``z[v, k_j, t] = 0``
  for j > v. Every solution has a relabelling that satisfies it; the MIP start is relabelled alike.

Bench only: the product keeps ``milp.py``, which also handles mixed connectors.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import version
from pathlib import Path

import highspy
import numpy as np

import charging.optimizer.lp as lp_module
from charging.optimizer.assignment import Assignment
from charging.optimizer.evaluate import finalize
from charging.optimizer.instance import Instance
from charging.optimizer.lp import INF, LpModel, Windows, _taper_rows, build_core, power_matrix
from charging.optimizer.milp import time_to_charge_cuts
from charging.optimizer.plan import Plan
from charging.optimizer.quantities import compatible_connectors, effective_max_kw, vehicle_arrays
from charging.optimizer.reasons import explain_shortfalls
from charging.optimizer.solve import _plan, _plan_assignment, _window_mask

# SCIP's venv (``make bench-scip-venv``): never the project's.
SCIP_PYTHON = Path(__file__).resolve().parents[1] / "var" / "scip-venv" / "bin" / "python"


class NotApplicable(ValueError):
    pass


def solve_by_charger(
    instance: Instance,
    *,
    time_limit_s: float,
    start: Plan | None = None,
    mip_rel_gap: float = 1e-6,
    occupancy_cuts: bool = True,
    highs_options: Mapping[str, object] | None = None,
    perspective_taper: bool = False,
    relax_only: bool = False,
    solver: str = "highs",
    scip_python: Path | None = None,
    scip_log: Path | None = None,
    solver_info: dict | None = None,
    on_launch: Callable[[], None] | None = None,
) -> tuple[Plan | None, float | None, bool, str]:
    """(plan or None, proven lower bound or None, proven optimal, solver status).

    ``solver``: "highs" (in this process) or "scip": the same model written as MPS with a full start
    (``start``'s windows, the rest from an LP with those fixed) and solved by ``bench/peers/scip_exact.py``
    in SCIP's own venv (``scip_python``, default ``SCIP_PYTHON``), the proof SCIP's; its best solution
    comes back column by column and becomes a plan here, checked like HiGHS's. ``solver_info`` (a dict)
    receives the solver's name, nodes, wall and CPU seconds. ``on_launch`` is called once SCIP is running
    (its files written): from then on this call only waits and reads, so a HiGHS solve in another
    thread may start (writing the MPS swaps ``highspy.Highs`` for a moment; see ``write_mps``).

    ``highs_options``: extra HiGHS options for the proof run (e.g. ``{"log_file": ...}``), set on top of
    ``LpModel.solve``'s own (``highs_with``). ``perspective_taper``: the taper rows again, scaled by
    the plugged-in indicator (``add_perspective_taper``). ``relax_only``: solve the LP relaxation
    (binaries relaxed to [0, 1]) and return its objective as the bound, no plan.
    """
    va, compatible = vehicle_arrays(instance), compatible_connectors(instance)
    connectors = instance.connectors()
    charger_of = np.array([next(k for k, ch in enumerate(instance.chargers) if ch is c[0]) for c in connectors])
    for ch in instance.chargers:
        if len({co.max_kw for co in ch.connectors}) > 1:
            raise NotApplicable(f"charger {ch.id} has connectors of different power")
    if any(v.fixed_connector_id is not None for v in instance.vehicles):
        raise NotApplicable("a vehicle is already plugged in")
    n_vehicles = len(instance.vehicles)
    chargers_of_vehicle = []
    for v in range(n_vehicles):
        ks = sorted(set(charger_of[compatible[v]].tolist()))
        for k in ks:
            if not set(np.flatnonzero(charger_of == k).tolist()) <= set(compatible[v].tolist()):
                raise NotApplicable("a vehicle may use only some connectors of a charger")
        chargers_of_vehicle.append(ks)
    kw = np.array(
        [[effective_max_kw(vehicle, ch, ch.connectors[0]) for ch in instance.chargers] for vehicle in instance.vehicles]
    ).reshape(n_vehicles, len(instance.chargers))
    best_kw = np.array([max((kw[v, k] for k in chargers_of_vehicle[v]), default=0.0) for v in range(n_vehicles)])
    windows = Windows.whole_stays(va, compatible, best_kw)
    model = LpModel()
    core = build_core(instance, va, windows, model)

    # Identical chargers: position of each charger within its class.
    classes: dict[tuple, list[int]] = {}
    for k, ch in enumerate(instance.chargers):
        classes.setdefault((ch.kind, ch.max_kw, tuple(co.max_kw for co in ch.connectors)), []).append(k)
    position = np.zeros(len(instance.chargers), dtype=int)
    for members in classes.values():
        for j, k in enumerate(members):
            position[k] = j

    pair_blocks, charger_blocks = [], []
    for v in range(n_vehicles):
        pairs = np.arange(core.first_pair[v], core.first_pair[v + 1])
        for k in chargers_of_vehicle[v]:
            pair_blocks.append(pairs)
            charger_blocks.append(np.full(pairs.size, k))
    trip_pair = np.concatenate(pair_blocks)
    trip_k = np.concatenate(charger_blocks)
    trip_v = core.pair_vehicle[trip_pair]
    trip_t = core.pair_slot[trip_pair]
    n = trip_pair.size
    trip_kw = kw[trip_v, trip_k]
    idx = np.arange(n)
    z_upper = np.where(position[trip_k] > trip_v, 0.0, 1.0)  # symmetry breaking
    z_block = len(model.col_lower)
    z = model.add_cols(np.zeros(n), 0.0, z_upper, integer=not relax_only)
    q = model.add_cols(np.zeros(n), 0.0, trip_kw)
    s = model.add_cols(np.zeros(n), 0.0, 1.0)

    row = model.add_rows(0.0, 0.0, core.num_pairs)  # p = sum_k q
    model.add_entries(row + np.arange(core.num_pairs), core.p_col + np.arange(core.num_pairs), 1.0)
    model.add_entries(row + trip_pair, q + idx, -1.0)
    row = model.add_rows(-INF, 0.0, n)  # q <= kW z
    model.add_entries(row + idx, q + idx, 1.0)
    model.add_entries(row + idx, z + idx, -trip_kw)
    key = trip_k * instance.num_slots + trip_t
    keys, key_of = np.unique(key, return_inverse=True)
    plugs = np.array([len(ch.connectors) for ch in instance.chargers])[keys // instance.num_slots]
    row = model.add_rows(-INF, plugs, keys.size)  # at most its connectors
    model.add_entries(row + key_of, z + idx, 1.0)
    limits = np.array([ch.max_kw for ch in instance.chargers])[keys // instance.num_slots]
    row = model.add_rows(-INF, limits, keys.size)  # its power
    model.add_entries(row + key_of, q + idx, 1.0)
    row = model.add_rows(0.0, INF, n)  # s >= z - z_prev
    model.add_entries(row + idx, s + idx, 1.0)
    model.add_entries(row + idx, z + idx, -1.0)
    continues = np.flatnonzero((idx > 0) & (np.roll(trip_v, 1) == trip_v) & (np.roll(trip_k, 1) == trip_k))
    model.add_entries(row + continues, z + continues - 1, 1.0)
    row = model.add_rows(-INF, 1.0, n_vehicles)  # one window
    model.add_entries(row + trip_v, s + idx, 1.0)

    if occupancy_cuts:
        hours = instance.slot_hours
        rows_v, rows_rhs, rows_slope = [], [], []
        for v in range(n_vehicles):
            if core.first_pair[v + 1] == core.first_pair[v]:
                continue
            for slope, rhs in time_to_charge_cuts(instance, va, v, best_kw[v]):
                rows_v.append(v)
                rows_slope.append(slope)
                rows_rhs.append(rhs)
        if rows_v:
            cut_v = np.array(rows_v)
            row = model.add_rows(np.array(rows_rhs), INF, cut_v.size)
            for j, v in enumerate(rows_v):
                mine = np.flatnonzero(trip_v == v)
                model.add_entries(np.full(mine.size, row + j), z + mine, hours)
                model.add_entries([row + j], [core.e_col + core.first_pair[v + 1] - 1], -rows_slope[j])

    if perspective_taper:
        add_perspective_taper(instance, va, windows, core, model, z, trip_pair)

    warm = None
    if start is not None and not relax_only:
        a = _plan_assignment(instance, start)
        on_charger = np.where(a.connector >= 0, charger_of[np.maximum(a.connector, 0)], -1)
        relabel = {}
        for members in classes.values():
            used = sorted(
                {k for k in on_charger.tolist() if k in members}, key=lambda k: np.flatnonzero(on_charger == k).min()
            )
            relabel.update(dict(zip(used, members, strict=False)))
        mapped = np.array([relabel.get(k, -1) for k in on_charger.tolist()])
        on = (mapped[trip_v] == trip_k) & (trip_t >= a.start[trip_v]) & (trip_t < a.end[trip_v])
        warm = (z + idx, on.astype(float))
    info = solver_info if solver_info is not None else {}
    if solver == "scip" and not relax_only:
        x, bound, proven, status = _solve_with_scip(
            model, z_block, warm, time_limit_s, mip_rel_gap, scip_python or SCIP_PYTHON, scip_log, info, on_launch
        )
    else:
        started, cpu = time.perf_counter(), time.process_time()
        with highs_with(highs_options or {}):
            solution = model.solve(time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, start=warm)
        info.update(
            solver=f"HiGHS {version('highspy')}",
            nodes=solution.mip_nodes,
            wall_s=round(time.perf_counter() - started, 2),
            cpu_s=round(time.process_time() - cpu, 2),
        )
        bound = (
            solution.mip_dual_bound
            if solution.mip_dual_bound is not None and np.isfinite(solution.mip_dual_bound)
            else None
        )
        if relax_only:
            return None, solution.objective if solution.optimal else None, False, solution.status
        x, proven, status = solution.x, solution.optimal, solution.status
    if x is None:
        return None, bound, False, status
    on = x[z : z + n] > 0.5
    assignment = connector_windows(instance, charger_of, on, trip_v, trip_k, trip_t)
    power = power_matrix(core, windows, x, n_vehicles, instance.num_slots)
    plan = _plan(instance, assignment, power * _window_mask(instance, assignment), "milp-by-charger", status)
    return explain_shortfalls(instance, finalize(instance, plan)), bound, proven, status


def _solve_with_scip(
    model: LpModel,
    z_block: int,
    warm: tuple[int | np.ndarray, np.ndarray] | None,
    time_limit_s: float,
    mip_rel_gap: float,
    python: Path,
    log: Path | None,
    info: dict,
    on_launch: Callable[[], None] | None = None,
) -> tuple[np.ndarray | None, float | None, bool, str]:
    """The model solved by SCIP in its own venv (``bench/peers/scip_exact.py``): (x, bound, proven, status).

    The start is complete: ``warm``'s binaries, the continuous columns from HiGHS with those binaries
    fixed (the LP HiGHS itself solves for a partial start). Seconds include writing and reading the files.
    """
    if not python.exists():
        raise NotApplicable(f"no SCIP venv at {python} (make bench-scip-venv)")
    started, cpu = time.perf_counter(), time.thread_time()  # this thread's: HiGHS may run in another meanwhile
    with tempfile.TemporaryDirectory(prefix="exact-scip-") as tmp:
        mps, sol, out = Path(tmp) / "model.mps", Path(tmp) / "start.sol", Path(tmp) / "result.json"
        write_mps(model, mps)
        command = [str(python), str(Path(__file__).parent / "peers" / "scip_exact.py"), "--mps", str(mps)]
        if warm is not None:
            x = _start_values(model, z_block, warm)
            if x is not None:
                sol.write_text(
                    "".join(f"c{i} {value!r}\n" for i, value in enumerate(x.tolist()) if value != 0.0) or "\n"
                )
                command += ["--start", str(sol)]
        command += ["--time-limit", str(time_limit_s), "--gap", str(mip_rel_gap), "--out", str(out)]
        if log is not None:
            command += ["--log", str(log)]
        with subprocess.Popen(command) as process:
            if on_launch is not None:
                on_launch()
            returncode = process.wait(timeout=time_limit_s + 600)
        if returncode:
            raise subprocess.CalledProcessError(returncode, command)
        result = json.loads(out.read_text())
    info.update(
        solver=result["solver"],
        nodes=result["nodes"],
        start_accepted=result["start_accepted"],
        wall_s=round(time.perf_counter() - started, 2),
        cpu_s=round(time.thread_time() - cpu + result["cpu_s"], 2),  # writing, reading and SCIP's process
        solver_wall_s=result["wall_s"],
        solver_cpu_s=result["cpu_s"],
    )
    x = np.array(result["values"], dtype=float) if result["values"] is not None else None
    bound = result["dual_bound"] if np.isfinite(result["dual_bound"]) else None
    return x, bound, bool(result["optimal"]), result["status"]


def write_mps(model: LpModel, path: Path) -> None:
    """``model`` as HiGHS would solve it, written by HiGHS's MPS writer (columns c0, c1, ...)."""

    class Highs(highspy.Highs):  # type: ignore[misc]
        def run(self):
            self.writeModel(str(path))
            return highspy.HighsStatus.kOk

    original = lp_module.highspy.Highs
    lp_module.highspy.Highs = Highs
    try:
        model.solve()
    finally:
        lp_module.highspy.Highs = original


def _start_values(model: LpModel, z_block: int, warm: tuple[int | np.ndarray, np.ndarray]) -> np.ndarray | None:
    """A full solution from a start's binaries: the LP with the binaries fixed at theirs (None if infeasible)."""
    _, values = warm
    lower, upper = model.col_lower[z_block], model.col_upper[z_block]
    fixed = np.minimum(values, upper)
    model.col_lower[z_block], model.col_upper[z_block] = fixed, fixed
    try:
        solution = model.solve()
    finally:
        model.col_lower[z_block], model.col_upper[z_block] = lower, upper
    return solution.x if solution.optimal else None


def add_perspective_taper(instance, va, windows, core, model, z, trip_pair) -> None:
    """The taper rows ``c p - b e <= a`` again with the plugged-in indicator ``y = sum_k z[v,k,t]``:
    ``c p - b e + (M - a) y <= M``, M the most ``-b e`` can be over the vehicle's energy range.

    Valid for every plan: plugged in (y = 1) it is the taper row itself; not plugged in (y = 0) the
    power is 0 and ``-b e <= M`` by M's definition. Tighter in the relaxation, where a vehicle
    half plugged in deep in its taper could otherwise draw the whole taper power on half a
    connector (the time-to-charge rows cut the same cheat off in aggregate only).
    """
    pair_k = np.arange(core.pair_vehicle.size) - core.first_pair[core.pair_vehicle]
    pair, a, b, c = _taper_rows(instance, va, windows, core.pair_vehicle, pair_k)
    if not pair.size:
        return
    v = core.pair_vehicle[pair]
    big_m = np.maximum(-b * va.initial_kwh[v], -b * va.max_kwh[v])
    row = model.add_rows(-INF, big_m, pair.size)
    rows = row + np.arange(pair.size)
    model.add_entries(rows, core.p_col + pair, c)
    model.add_entries(rows, core.e_col + pair, -b)
    # y: every z of the pair (one per charger of the vehicle).
    row_of_pair = np.full(core.pair_vehicle.size, -1)
    # a pair may carry several lines: one row each, every z of the pair in each.
    order = np.argsort(trip_pair, kind="stable")
    trips_sorted = trip_pair[order]
    for j, (q, coef) in enumerate(zip(pair.tolist(), (big_m - a).tolist(), strict=True)):
        lo, hi = np.searchsorted(trips_sorted, [q, q + 1])
        model.add_entries(np.full(hi - lo, row + j), z + order[lo:hi], coef)
    del row_of_pair


def connector_windows(instance, charger_of, on, trip_v, trip_k, trip_t) -> Assignment:
    """Each vehicle's window on its charger, given a connector of it: by start, the connector free first."""
    n_vehicles = len(instance.vehicles)
    result = Assignment(np.full(n_vehicles, -1), np.zeros(n_vehicles, int), np.zeros(n_vehicles, int))
    windows = []
    for v in range(n_vehicles):
        mine = np.flatnonzero(on & (trip_v == v))
        if mine.size:
            windows.append((int(trip_t[mine].min()), int(trip_t[mine].max()) + 1, v, int(trip_k[mine[0]])))
    free_at: dict[int, int] = {}
    for begin, end, v, k in sorted(windows):
        options = [c for c in np.flatnonzero(charger_of == k).tolist() if free_at.get(c, 0) <= begin]
        c = options[0]  # exists: at most len(connectors) windows overlap on k
        free_at[c] = end
        result.connector[v], result.start[v], result.end[v] = c, begin, end
    return result


@contextlib.contextmanager
def highs_with(options: Mapping[str, object]) -> Iterator[None]:
    """``LpModel.solve`` with extra HiGHS options, for the benchmark only: the product's solve takes
    no free-form options, and this keeps it so. The options win over the ones ``solve`` sets."""
    if not options:
        yield
        return

    class Highs(highspy.Highs):  # type: ignore[misc]
        def setOptionValue(self, name, value):  # noqa: N802 (HiGHS's name)
            return super().setOptionValue(name, options.get(name, value))

        def run(self):
            for name, value in options.items():
                super().setOptionValue(name, value)
            return super().run()

    original = lp_module.highspy.Highs
    lp_module.highspy.Highs = Highs
    try:
        yield
    finally:
        lp_module.highspy.Highs = original
