"""The degradation state of the model cell and what it means for capacity.

The state that ageing changes is three numbers: cyclable lithium (lost to SEI and with lost active
material), SEI thickness, and the negative electrode's active material fraction. Everything else in the
single-particle model (particle concentrations) relaxes within a day, so a new simulation can start
from these three numbers plus the day's starting SoC. That is what lets the forecast extrapolate the
state over many days and restart PyBaMM from the extrapolated state ("cycle jumping").

Capacity is the electrode-SOH (eSOH) capacity: lithium moved between the two voltage cut-offs at
equilibrium, solved from tabulated open-circuit potentials (microseconds, no PyBaMM call).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from .presets import CellConstants


@dataclass(frozen=True)
class DegradationState:
    lithium_ah: float  # cyclable lithium in both electrodes, expressed in Ah
    sei_thickness_m: float
    eps_negative: float  # negative electrode active material volume fraction

    def as_array(self) -> np.ndarray:
        return np.array([self.lithium_ah, self.sei_thickness_m, self.eps_negative])

    @classmethod
    def from_array(cls, values: np.ndarray) -> DegradationState:
        return cls(float(values[0]), float(values[1]), float(values[2]))


def new_state(cell: CellConstants, sei_thickness_m: float) -> DegradationState:
    return DegradationState(cell.lithium_ah_new, sei_thickness_m, cell.eps_negative_new)


@dataclass(frozen=True)
class Window:
    """Stoichiometry window of the negative electrode between 0 % and 100 % SoC, and the capacity."""

    x0: float
    x100: float
    capacity_ah: float
    negative_capacity_ah: float

    def negative_stoichiometry(self, soc: float) -> float:
        return self.x0 + soc * (self.x100 - self.x0)


def _cell_voltage(cell: CellConstants, x: float, lithium_ah: float, q_n: float) -> float:
    y = (lithium_ah - x * q_n) / cell.positive_capacity_ah
    u_p = np.interp(y, cell.sto_grid, cell.ocp_positive)
    u_n = np.interp(x, cell.sto_grid, cell.ocp_negative)
    return float(u_p - u_n)


def electrode_window(cell: CellConstants, state: DegradationState) -> Window:
    """Solve the eSOH problem: negative stoichiometries at the lower/upper cut-off voltages."""
    q_n = cell.negative_capacity_ah(state.eps_negative)
    lo, hi = cell.sto_grid[0], cell.sto_grid[-1]
    # Keep the positive stoichiometry inside its grid too: y = (Li - x q_n) / q_p in [lo, hi].
    x_lo = max(lo, (state.lithium_ah - hi * cell.positive_capacity_ah) / q_n)
    x_hi = min(hi, (state.lithium_ah - lo * cell.positive_capacity_ah) / q_n)
    if x_hi <= x_lo:
        return Window(x_lo, x_lo, 0.0, q_n)

    def solve(voltage: float) -> float:
        f_lo = _cell_voltage(cell, x_lo, state.lithium_ah, q_n) - voltage
        f_hi = _cell_voltage(cell, x_hi, state.lithium_ah, q_n) - voltage
        if f_lo * f_hi > 0:  # cut-off not reachable inside the window: the window end limits
            return float(x_lo if abs(f_lo) < abs(f_hi) else x_hi)
        return float(brentq(lambda x: _cell_voltage(cell, x, state.lithium_ah, q_n) - voltage, x_lo, x_hi, xtol=1e-9))

    x0 = solve(cell.v_min)
    x100 = solve(cell.v_max)
    return Window(x0, x100, max(0.0, (x100 - x0) * q_n), q_n)


def capacity_ah(cell: CellConstants, state: DegradationState) -> float:
    return electrode_window(cell, state).capacity_ah
