"""The optimizer's output: a charging plan for one depot night, as plain JSON-ready dataclasses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class VehiclePlan:
    """What one vehicle does tonight.

    The vehicle is plugged into ``connector_id`` for slots ``[plug_in_slot, unplug_slot)`` (one
    connector, one contiguous window; ``None`` = never plugged in) and draws ``power_kw[t]`` from
    the grid in slot ``t`` (one entry per horizon slot, 0 outside the window).
    """

    vehicle_id: str
    connector_id: str | None
    plug_in_slot: int | None
    unplug_slot: int | None
    power_kw: list[float]
    departure_soc_pct: float = 0.0
    energy_delivered_kwh: float = 0.0  # grid side, this plan only (not what was delivered before)
    shortfall_kwh: float = 0.0  # battery side, below the required departure energy
    shortfall_reason: str | None = None


@dataclass
class PlanTotals:
    """Costs of the plan over the horizon, in MXN.

    ``peak_kw`` is the highest load (base load + charging) in the top-level ``demand_slots``;
    ``demand_peaks_kw`` the highest load in each of ``instance.demand_charges()``' slots, in that
    order, and ``demand_cost_mxn`` the sum of what each charge costs above its month's peak.
    """

    energy_kwh: float = 0.0
    energy_cost_mxn: float = 0.0
    demand_cost_mxn: float = 0.0
    wear_cost_mxn: float = 0.0
    peak_kw: float = 0.0
    demand_peaks_kw: list[float] = field(default_factory=list)
    shortfall_kwh: float = 0.0
    shortfall_penalty_mxn: float = 0.0
    # energy + demand + wear + shortfall penalty: what the LP minimises, and how plans are compared
    objective_mxn: float = 0.0


@dataclass
class SolverInfo:
    """How the plan was made.

    ``status`` says only what was shown: "Optimal" when the plan's objective meets a proven lower
    bound (within ``PROVEN_GAP``), else "Feasible, x % above the bound (... MXN)" (see
    ``solve.honest_status``); the baselines say "simulated". ``bound_mxn`` is the best proven
    lower bound on the objective: the LP relaxation's (``lp_bound_mxn``) or, when the exact MILP
    ran, its dual bound if higher. ``gap`` = (objective - bound_mxn) / max(|bound_mxn|, 1 MXN).
    ``optimal`` is True exactly when the status is "Optimal".
    """

    method: str
    status: str
    solve_time_s: float = 0.0
    lp_bound_mxn: float | None = None
    gap: float | None = None
    bound_mxn: float | None = None
    optimal: bool = False
    num_variables: int = 0
    num_constraints: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    vehicles: list[VehiclePlan]
    totals: PlanTotals
    solver: SolverInfo
    horizon_start: str = ""
    slot_minutes: int = 15

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            vehicles=[VehiclePlan(**v) for v in data["vehicles"]],
            totals=PlanTotals(**data.get("totals", {})),
            solver=SolverInfo(**data.get("solver", {"method": "unknown", "status": "unknown"})),
            horizon_start=data.get("horizon_start", ""),
            slot_minutes=data.get("slot_minutes", 15),
        )

    def vehicle(self, vehicle_id: str) -> VehiclePlan:
        return next(v for v in self.vehicles if v.vehicle_id == vehicle_id)


def load_plan(path: str | Path) -> Plan:
    with open(path, encoding="utf-8") as f:
        return Plan.from_dict(json.load(f))
