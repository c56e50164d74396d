"""The depot charging optimizer: plain Python (numpy + HiGHS) in, plain Python out; no Django.

Public API (see docs/optimizer.md)::

    from charging.optimizer import Instance, solve, evaluate, replan, generate_instance

    instance = Instance.from_dict(json_data)   # or load_instance(path); raises InstanceError
    plan = solve(instance, method="auto")      # Plan; plan.to_dict() is JSON-ready
    report = evaluate(instance, plan)          # costs + constraint violations of any plan
    plan2 = replan(instance, plan, now_slot=12)  # freeze the past, re-solve the rest
"""

from .baselines import earliest_deadline_first, least_laxity_first, uncontrolled
from .demand import DemandCharge, DemandChargeLine, DemandCharges
from .evaluate import Evaluation, Violation, evaluate
from .generate import generate_instance
from .instance import (
    Charger,
    Connector,
    Instance,
    InstanceError,
    Vehicle,
    WearWeights,
    demand_charges_from_dict,
    load_instance,
)
from .plan import Plan, PlanTotals, SolverInfo, VehiclePlan, load_plan
from .replan import replan
from .solve import METHODS, NIGHTLY_SEARCH, REPLAN_SEARCH, SearchLimits, solve

__all__ = [
    "METHODS",
    "NIGHTLY_SEARCH",
    "REPLAN_SEARCH",
    "Charger",
    "Connector",
    "DemandCharge",
    "DemandChargeLine",
    "DemandCharges",
    "Evaluation",
    "Instance",
    "InstanceError",
    "Plan",
    "PlanTotals",
    "SearchLimits",
    "SolverInfo",
    "Vehicle",
    "VehiclePlan",
    "Violation",
    "WearWeights",
    "earliest_deadline_first",
    "evaluate",
    "demand_charges_from_dict",
    "generate_instance",
    "least_laxity_first",
    "load_instance",
    "load_plan",
    "replan",
    "solve",
    "uncontrolled",
]
