"""The PyBaMM side: one built model per chemistry, and "simulate these days from these states".

The model is built and discretised once per chemistry (cached in-process). Everything that changes
between packs, seasons and extrapolation steps is a ``pybamm.InputParameter``: the segment currents
and boundaries of the day, the temperature, the ageing rate factor and the initial state
(particle concentrations, SEI thickness, active material fraction). A batch of days is one IDAKLU call
with a list of input dicts.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import numpy as np

from . import presets
from .duty import N_SEGMENTS, SECONDS_PER_DAY, RepresentativeDay
from .presets import (
    AGEING_FACTOR,
    CYCLING_FACTOR,
    FARADAY,
    LAM_SELF_LIMIT_FACTOR,
    LAM_STRESS_FACTOR,
    SEI_DIFFUSIVITY_FACTOR,
    TEMPERATURE,
    CellConstants,
    ChemistryPreset,
    add_lithium_losses,
    cell_constants,
    get_preset,
)
from .state import DegradationState, Window, electrode_window

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

log = logging.getLogger(__name__)

#: PyBaMM's SEI growth option (docs/forecast.md, "SEI model": why this one).
SEI_OPTION = "ec reaction limited"
#: Width [s] of the tanh ramps between segments: smooth for the solver, short against the segments.
RAMP_S = 60.0
#: Time [s] after departure at which the pack's DC resistance is read.
RESISTANCE_PROBE_S = 1800.0
#: The simulation's voltage events sit this far outside the cell's cut-offs [V]. The cut-offs define
#: 0 % and 100 % SoC (the eSOH window); under load, and at the end of a stepped-CV charge to 100 %, the
#: terminal voltage passes them briefly without the duty failing. A day that still reaches the widened
#: limits is re-solved on a dense grid before it counts as not completed.
VOLTAGE_EVENT_MARGIN_V = 0.4
#: Output grid of the re-solve check [s].
DENSE_STEP_S = 600.0
#: The re-solve check stops the integration only at the segment boundaries (True) rather than at every
#: output point too (False, until 2026-12-06): same verdicts on every re-solved day measured, 3x cheaper.
DENSE_STOPS_AT_BOUNDARIES = True
#: Longest solver step [s]. With output only at the day's ends, IDA's steps grew to hours across the quiet
#: legs and stepped over a 30-40 min top-up (the current is smooth, its error test never saw it): a day with
#: two 1C top-ups aged 20 % too little (lithium and active material lost, against the dense re-solve).
#: At 600 s the difference is <= 0.1 %, for 0-20 % more CPU per day (docs/forecast.md, "Speed").
MAX_STEP_S = 600.0
#: Solve a batch by calling the IDAKLU solver that PyBaMM has set up directly (``_DirectIdaklu``), not through
#: ``Simulation.solve``: the same C solve with the same inputs, initial state and outputs, without PyBaMM's
#: per-solve Python (input checks and stacking, ``Solution`` objects, output post-processing), which was ~17 % of a
#: group run's CPU. Outcomes identical (docs/forecast.md, "Speed", session 10). False: every batch through PyBaMM.
DIRECT_SOLVE = True
#: Radial mesh points per particle (PyBaMM's default is 20). At 10: ~17 % less CPU per simulated day, and the
#: forecasts agree with the default mesh's within 0.01 pp - at 3 years against the stored references (whose
#: model keeps 20) and at 10 years in bench_forecast's one-pack cases (docs/forecast.md, "Speed").
PARTICLE_POINTS = 10

_C_NEG = "Initial concentration in negative electrode [mol.m-3]"
_C_POS = "Initial concentration in positive electrode [mol.m-3]"
_L_SEI = "Initial SEI thickness [m]"
_EPS_NEG = "Negative electrode active material volume fraction"
_OUT_LITHIUM = "Total lithium in particles [mol]"
_OUT_SEI = "X-averaged negative SEI thickness [m]"
_OUT_EPS = "X-averaged negative electrode active material volume fraction"
_OUT_V = "Voltage [V]"
_OUT_OCV = "Bulk open-circuit voltage [V]"
_OUT_I = "Current [A]"


@dataclass(frozen=True)
class DayOutcome:
    """What one simulated day did to the state. ``delta`` is (lithium Ah, SEI m, eps) per day.

    ``resistance_ohm_ah`` is the model cell's DC resistance x its capacity (so it compares across
    cell sizes), measured 30 min into the first leg.
    """

    ok: bool
    delta: np.ndarray
    resistance_ohm_ah: float
    message: str = ""


def _step_input(k: int, what: str) -> str:
    """Input names of the day's current: the first segment's current, then at each later segment boundary
    ``k`` (1..N_SEGMENTS-1) its time and the change of current there."""
    return f"Step {k} {what}"


def _boundaries(inputs: dict[str, float]) -> tuple[float, ...]:
    """The day's segment boundaries [s] (its current's steps) from its inputs."""
    return tuple(inputs[_step_input(k, "time [s]")] for k in range(1, N_SEGMENTS))


class DayModel:
    """A built PyBaMM SPM for one chemistry that simulates representative days in batches."""

    #: The LAM's C-rate stress factor this model's inputs carry (a battery model's, see ``with_lam_stress``).
    lam_stress: float = 1.0

    def __init__(
        self, chemistry: str, rtol: float = 1e-6, atol: float = 1e-8, solver_options: dict[str, Any] | None = None
    ):
        import pybamm

        self.chemistry = chemistry
        self.preset = get_preset(chemistry)
        self.cell: CellConstants = cell_constants(chemistry)
        from .presets import parameter_values

        values = parameter_values(self.preset)

        def current(t: Any) -> Any:
            # A smoothed step at each boundary (one tanh per boundary, not a window of two per segment: the
            # same function, half the terms and inputs the solver evaluates and PyBaMM converts per day).
            total = pybamm.InputParameter(_step_input(0, "current [A]"))
            for k in range(1, N_SEGMENTS):
                at = pybamm.InputParameter(_step_input(k, "time [s]"))
                jump = pybamm.InputParameter(_step_input(k, "current [A]"))
                total = total + jump * 0.5 * (1.0 + pybamm.tanh((t - at) / RAMP_S))
            return total

        values.update(
            {
                "Current function [A]": current,
                TEMPERATURE: "[input]",
                "Initial temperature [K]": "[input]",
                _C_NEG: "[input]",
                _C_POS: "[input]",
                _L_SEI: "[input]",
                _EPS_NEG: "[input]",
                "Lower voltage cut-off [V]": self.cell.v_min - VOLTAGE_EVENT_MARGIN_V,
                "Upper voltage cut-off [V]": self.cell.v_max + VOLTAGE_EVENT_MARGIN_V,
            },
            check_already_exists=False,
        )
        model = pybamm.lithium_ion.SPM({"SEI": SEI_OPTION, "loss of active material": ("current-driven", "none")})
        #: NMC: the positive electrode's calendar lithium loss and lithium plating (presets.add_lithium_losses);
        #: LFP: none.
        self.lithium_losses = add_lithium_losses(model, self.preset)
        self._output_names = [_OUT_LITHIUM, _OUT_SEI, _OUT_EPS, _OUT_V, _OUT_OCV, _OUT_I, *self.lithium_losses]
        #: The direct solve path (``_direct_solver``): None until PyBaMM has set its solver up, False if unavailable.
        self._direct: _DirectIdaklu | bool | None = None
        solver = pybamm.IDAKLUSolver(
            rtol=rtol,
            atol=atol,
            output_variables=self._output_names,
            on_extrapolation="ignore",
            # Ahead-of-time compile the model's casadi functions with the system C compiler (cached on
            # disk under $PYBAMM_CASADI_AOT_CACHE): ~5x less CPU per simulated day than casadi's virtual
            # machine. Without a compiler PyBaMM logs a warning and keeps the virtual machine.
            options={"compile": True, "dt_max": MAX_STEP_S, **(solver_options or {})},
        )
        var_pts = {**model.default_var_pts, "r_n": PARTICLE_POINTS, "r_p": PARTICLE_POINTS}
        self.sim = pybamm.Simulation(model, parameter_values=values, solver=solver, var_pts=var_pts)
        # Reference capacity of the model cell: the eSOH capacity when new (the pack's nameplate).
        self._windows: dict[tuple[float, float], Window] = {}
        self.capacity_new_ah = self.window(self.new_state()).capacity_ah

    def window(self, state: DegradationState) -> Window:
        """The state's eSOH window (memoised: a trajectory asks for the same state several times)."""
        key = (state.lithium_ah, state.eps_negative)  # SEI thickness does not enter the eSOH problem
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) > 100_000:
                self._windows.clear()
            window = self._windows[key] = electrode_window(self.cell, state)
        return window

    def soh_pct(self, state: DegradationState) -> float:
        return 100.0 * self.window(state).capacity_ah / self.capacity_new_ah

    def new_state(self) -> DegradationState:
        return DegradationState(
            self.cell.lithium_ah_new,
            self.preset.sei_overrides.get(_L_SEI, 5e-9),
            self.cell.eps_negative_new,
        )

    def inputs(
        self,
        state: DegradationState,
        day: RepresentativeDay,
        rate_factor: float,
        cycling_factor: float | None = None,
        sei_diffusivity_factor: float | None = None,
    ) -> dict[str, float]:
        """PyBaMM inputs for ``day`` starting from ``state`` at the day's start SoC. ``rate_factor``
        multiplies the SEI rate, ``cycling_factor`` the loss of active material (None: the same); the
        LAM's C-rate stress factor is ``self.lam_stress`` (``with_lam_stress``). ``sei_diffusivity_factor``: the
        SEI's shape (None: the preset's), only for a preset with that option on (``presets.sei_shape_input``)."""
        cell = self.cell
        window = self.window(state)
        x = window.negative_stoichiometry(day.start_soc)
        y = (state.lithium_ah - x * window.negative_capacity_ah) / cell.positive_capacity_ah
        values = {
            TEMPERATURE: day.temperature_k,
            "Initial temperature [K]": day.temperature_k,
            AGEING_FACTOR: rate_factor,
            CYCLING_FACTOR: rate_factor if cycling_factor is None else cycling_factor,
            LAM_STRESS_FACTOR: self.lam_stress,
            _C_NEG: x * cell.c_max_negative,
            _C_POS: float(np.clip(y, 1e-4, 1 - 1e-4)) * cell.c_max_positive,
            _L_SEI: state.sei_thickness_m,
            _EPS_NEG: state.eps_negative,
        }
        if self.preset.lam_self_limit_loss > 0.0:
            # Self-limiting LAM (option): the factor at the day's start; eps moves ~1e-5 of itself in a day.
            values[LAM_SELF_LIMIT_FACTOR] = self.preset.lam_self_limit_factor(state.eps_negative, cell.eps_negative_new)
        if self.preset.sei_diffusivity_factor is not None:
            values[SEI_DIFFUSIVITY_FACTOR] = (
                self.preset.sei_diffusivity_factor if sei_diffusivity_factor is None else sei_diffusivity_factor
            )
        elif sei_diffusivity_factor is not None:  # a shape the model cannot take must not vanish silently
            raise ValueError(f"{self.chemistry}: the SEI's shape is not an input here (presets.sei_shape_input)")
        bounds = day.boundaries_s()
        previous = 0.0
        for k, (_, c_rate) in enumerate(day.segments):
            amps = c_rate * self.capacity_new_ah
            values[_step_input(k, "current [A]")] = amps - previous
            if k:
                values[_step_input(k, "time [s]")] = bounds[k]
            previous = amps
        return values

    def with_lam_stress(self, lam_stress: float) -> DayModel:
        """This model (the same built simulation) with another LAM C-rate stress factor in its inputs."""
        if lam_stress == self.lam_stress:
            return self
        other = copy.copy(self)
        other.lam_stress = float(lam_stress)
        return other

    def run(self, inputs_list: list[dict[str, float]]) -> list[DayOutcome]:
        """Simulate one day per input dict (one batched IDAKLU call); never raises for a failed day.

        A day that ends early (a voltage event) or fails is solved again alone with a dense output grid
        (the segment boundaries and every ``DENSE_STEP_S``): with output only at the day's ends the
        solver's long steps can trip an event on a day that completes. Only the re-solve's verdict counts.
        """
        if not inputs_list:
            return []
        outcomes = self._solve(inputs_list, dense=False)
        # The days to re-solve, batched by their output grid (the segment boundaries): one IDAKLU call per grid
        # instead of one per day - the same solves (each input is its own integration), a third of the days a
        # group run simulates are re-solved and PyBaMM's per-call overhead was ~1 ms each (docs/forecast.md,
        # "Speed").
        again: dict[tuple[float, ...], list[int]] = {}
        for n, outcome in enumerate(outcomes):
            if not outcome.ok:
                again.setdefault(_boundaries(inputs_list[n]), []).append(n)
        for indices in again.values():
            for n, outcome in zip(indices, self._solve([inputs_list[n] for n in indices], dense=True), strict=True):
                outcomes[n] = outcome
        return outcomes

    def _solve(self, inputs_list: list[dict[str, float]], dense: bool) -> list[DayOutcome]:
        t_interp = np.array([0.0, RESISTANCE_PROBE_S, SECONDS_PER_DAY])
        if dense:  # the days share their segment boundaries (``run``)
            bounds = list(_boundaries(inputs_list[0]))
            grid = np.arange(0.0, SECONDS_PER_DAY + 1.0, DENSE_STEP_S)
            inner = [b for b in bounds if 0.0 < b < SECONDS_PER_DAY]
            # The solver stops at the segment boundaries (the current's steps) and reports every DENSE_STEP_S;
            # its steps are at most MAX_STEP_S either way. Stopping at every grid point too (t_eval = the whole
            # grid) restarted the integration 145 times a day for the same verdict at 3x the CPU
            # (docs/forecast.md, "Speed").
            t_eval = np.unique(
                np.concatenate([[0.0, SECONDS_PER_DAY], inner] if DENSE_STOPS_AT_BOUNDARIES else [grid, inner])
            )
            t_interp = np.unique(np.concatenate([grid, t_eval, t_interp]))
        else:
            t_eval = np.array([0.0, SECONDS_PER_DAY])
        probe = int(np.searchsorted(t_interp, RESISTANCE_PROBE_S))
        direct = self._direct_solver() if DIRECT_SOLVE else None
        if direct is not None:
            outcomes = direct.solve(inputs_list, t_eval, t_interp, probe, self._outcome)
            if outcomes is not None:
                return outcomes
        try:
            solutions = self.sim.solve(t_eval, inputs=inputs_list, t_interp=t_interp)
            if not isinstance(solutions, list):
                solutions = [solutions]
        except Exception as exc:  # a batch fails as a whole: retry one by one to isolate the bad day
            if len(inputs_list) == 1:
                log.info("day simulation failed (dense grid: %s): %s", dense, exc)
                return [DayOutcome(False, np.zeros(3), float("nan"), f"solver failed: {exc}")]
            return [outcome for one in inputs_list for outcome in self._solve([one], dense)]
        return [
            self._outcome(float(sol.t[-1]), str(sol.termination), partial(_entries, sol), probe) for sol in solutions
        ]

    def _direct_solver(self) -> _DirectIdaklu | None:
        """The direct path, once PyBaMM has set its solver up (its first solve); None where it does not apply."""
        if self._direct is None and getattr(self.sim.solver, "_setup", None):
            try:
                self._direct = _DirectIdaklu(self.sim, self._output_names)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                log.warning("solving through PyBaMM's Simulation.solve (direct IDAKLU path unavailable: %s)", exc)
                self._direct = False
        return self._direct if isinstance(self._direct, _DirectIdaklu) else None

    def _outcome(self, t_end: float, termination: str, series: Callable[[str], np.ndarray], probe: int) -> DayOutcome:
        """A day's outcome from its end time, PyBaMM's termination text and its output series (by name)."""
        if t_end < SECONDS_PER_DAY - 1.0:
            # A voltage limit stopped the day: the pack could not do its duty.
            return DayOutcome(False, np.zeros(3), float("nan"), f"day stopped early: {termination}")
        lithium = series(_OUT_LITHIUM) * FARADAY / 3600.0
        sei = series(_OUT_SEI)
        eps = series(_OUT_EPS)
        delta = np.array([lithium[-1] - lithium[0], sei[-1] - sei[0], eps[-1] - eps[0]])
        for name in self.lithium_losses:
            lost = series(name)
            delta[0] -= lost[-1] - lost[0]
        if not np.all(np.isfinite(delta)):
            return DayOutcome(False, np.zeros(3), float("nan"), "solver failed: non-finite state change")
        current = series(_OUT_I)[probe]
        ocv, voltage = series(_OUT_OCV)[probe], series(_OUT_V)[probe]
        resistance = (ocv - voltage) / current * self.capacity_new_ah if abs(current) > 1e-9 else float("nan")
        return DayOutcome(True, delta, float(resistance) if math.isfinite(resistance) else float("nan"))


#: IDA's return flag when a root (here: a voltage event) stopped the integration.
_IDA_ROOT_RETURN = 2


class _DirectIdaklu:
    """PyBaMM's set-up IDAKLU solver called directly for a batch of days, as ``Simulation.solve`` calls it.

    The same C call (``IDAKLUSolver._integrate``) with what PyBaMM would give it: the inputs in the model's order
    (sorted names), the initial state from the model's own initial-conditions function, its time derivative from
    the model's right-hand side (an ODE: no algebraic states, identity mass matrix), the same ``t_eval`` and
    ``t_interp``; the outputs are read from the same rows PyBaMM's ``OutputAssembly`` reads, and a voltage event
    is named as ``IDAKLUSolver`` names it (the event whose function is nearest zero at the stop). What it leaves
    out is PyBaMM's per-solve Python around that call. A batch with anything PyBaMM treats specially (a failure, a
    stop at the start or within a second of the day's end) is handed back (None) and goes through PyBaMM whole.
    Built from PyBaMM internals of the pinned release; ``DIRECT_SOLVE = False`` and the tests compare the paths.
    """

    def __init__(self, sim: Any, output_names: list[str]) -> None:
        import casadi
        import pybamm

        solver, model = sim.solver, sim.built_model
        setup = solver._setup
        if model.len_alg or not model.is_standard_form_dae or model.discontinuity_events_eval:
            raise ValueError("not an ODE without discontinuities")
        if setup["number_of_sensitivity_parameters"] or not solver.output_variables:
            raise ValueError("sensitivities, or no output variables")
        assembly = setup["output_assembly"]
        if assembly._time_integrals or assembly._sparse:
            raise ValueError("outputs PyBaMM post-processes")
        rows = dict(zip(assembly._names, assembly._rows, strict=True))
        self._rows = {name: rows[name] for name in output_names}
        self._events = [event.name for event in model.events if event.event_type == pybamm.EventType.TERMINATION]
        if len(self._events) != setup["num_of_events"]:
            raise ValueError("events do not match the solver's")
        self._input_names = sorted(
            {p.name for p in model.input_parameters} | {p.name for p in model.required_input_parameters}
        )
        self._ida = setup["solver"]
        self._root = setup["rootfn_casadi"]
        self._initial = model.initial_conditions_eval
        self._rhs = model.rhs_eval
        self._n_states = model.len_rhs_and_alg
        self._mapped: dict[int, tuple[Any, Any]] = {}  # batch size -> (initial states, right-hand side) over a batch
        self._dm = casadi.DM

    def solve(
        self,
        inputs_list: list[dict[str, float]],
        t_eval: np.ndarray,
        t_interp: np.ndarray,
        probe: int,
        outcome: Callable[[float, str, Callable[[str], np.ndarray], int], DayOutcome],
    ) -> list[DayOutcome] | None:
        try:
            inputs = np.array([[values[name] for name in self._input_names] for values in inputs_list], dtype=float)
        except KeyError:
            return None  # PyBaMM's input handling (and its error)
        try:
            y0, ydot0 = self._initial_states(float(t_eval[0]), inputs)
            solutions = self._ida.solve(t_eval, t_interp, y0, ydot0, inputs, logger=None, pbar=np.empty((0, 0)))
        except Exception:  # PyBaMM's own path raises, or retries day by day, as it always did
            return None
        outcomes = []
        for sol, row in zip(solutions, inputs, strict=True):
            t = np.asarray(sol.t)
            if sol.flag < 0 or t.size <= 1:
                return None
            if sol.flag == _IDA_ROOT_RETURN:
                if t[-1] >= SECONDS_PER_DAY - 1.0:
                    return None
                values = np.asarray(self._root(float(t[-1]), np.asarray(sol.y_term).reshape(-1), row)).reshape(-1)
                event = self._events[int(np.nanargmin(np.abs(values)))]
                outcomes.append(outcome(float(t[-1]), f"event: {event}", _no_series, probe))
                continue
            data = np.asarray(sol.y).reshape(t.size, -1)
            outcomes.append(outcome(float(t[-1]), "final time", partial(self._column, data), probe))
        return outcomes

    def _initial_states(self, t0: float, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each day's initial state and its time derivative (one row a day), from the model's own functions
        evaluated over the batch at once (casadi's ``map``: the same function on each column, the same numbers as
        one call a day, a fifth of the per-call overhead)."""
        n = len(inputs)
        functions = self._mapped.get(n)
        if functions is None:
            functions = self._mapped[n] = (self._initial.map(n), self._rhs.map(n))
        initial, rhs = functions
        stacked = self._dm(inputs.T)
        y0 = initial(t0, self._dm(np.zeros((self._n_states, n))), stacked).full()
        ydot0 = rhs(t0, y0, stacked).full()
        return np.ascontiguousarray(y0.T), np.ascontiguousarray(ydot0.T)

    def _column(self, data: np.ndarray, name: str) -> np.ndarray:
        return data[:, self._rows[name]].reshape(-1)


def _entries(solution: Any, name: str) -> np.ndarray:
    return np.asarray(solution[name].entries)


def _no_series(name: str) -> np.ndarray:
    raise AssertionError(f"a day stopped early has no {name} to read")


@cache
def day_model(chemistry: str) -> DayModel:
    """The built model of a chemistry, shared by every forecast in this process."""
    return DayModel(chemistry)


@contextlib.contextmanager
def presets_changed(change: Callable[[ChemistryPreset], ChemistryPreset]) -> Iterator[None]:
    """Every chemistry's preset changed by ``change`` for the duration - a model option or variant, for benchmarks
    and tests (``presets.lam_self_limited``, ``presets.sei_shape_input``) - with the built day models dropped on
    the way in and out, so that no forecast mixes a changed preset with a model built before."""
    saved = dict(presets.PRESETS)
    for chemistry, preset in saved.items():
        presets.PRESETS[chemistry] = change(preset)
    day_model.cache_clear()
    try:
        yield
    finally:
        presets.PRESETS.update(saved)
        day_model.cache_clear()
