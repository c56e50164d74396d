"""One depot night: the optimizer's input, parsed and validated.

The JSON format is documented in ``docs/optimizer.md`` (and, as a schema, in
``docs/optimizer-instance.schema.json``). Parsing is plain Python: every problem is reported
with the JSON path of the offending field, so a depot gateway or a service can show it as is.

Time is discrete: the horizon is ``num_slots`` slots of ``slot_minutes`` starting at
``horizon_start``. A vehicle is *present* in slots ``[arrival_slot, departure_slot)``; times given
as ISO datetimes are rounded inwards (arrival up, departure down) so that a vehicle is never
planned to charge in a slot it is only partly present for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .demand import PRIMARY_DEMAND_CHARGE_NAME, DemandCharge, DemandCharges

CONNECTOR_KINDS = ("AC", "DC", "pantograph")
# The fields of ``Instance`` that hold its demand charges (``DemandCharges.instance_fields``).
DEMAND_FIELDS = (
    "demand_charge_name",
    "demand_charge_mxn_per_kw",
    "demand_slots",
    "month_peak_kw",
    "demand_periods",
    "additional_demand_charges",
)


class InstanceError(ValueError):
    """An instance that cannot be planned as given; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid optimizer instance:\n  " + "\n  ".join(errors))


@dataclass(frozen=True)
class Connector:
    """One plug. ``max_kw`` is what the plug (cable, contactor) can carry on its own."""

    id: str
    max_kw: float


@dataclass(frozen=True)
class Charger:
    """A charging cabinet: its connectors share ``max_kw`` (the power electronics)."""

    id: str
    kind: str  # one of CONNECTOR_KINDS
    max_kw: float
    connectors: tuple[Connector, ...]


@dataclass(frozen=True)
class Vehicle:
    """One vehicle's stay at the depot and what it needs when it leaves.

    SoC percentages are of ``usable_capacity_kwh`` (nameplate x SoH x usable window), so 100 %
    is "as full as the depot is allowed to charge it".
    """

    id: str
    arrival_slot: int
    departure_slot: int  # exclusive: the last slot it can charge in is departure_slot - 1
    arrival_soc_pct: float
    required_soc_pct: float  # at departure
    usable_capacity_kwh: float
    max_charge_kw: float
    # (soc %, max kW) points from 0 to 100 %, piecewise linear, any shape; () = no taper
    taper: tuple[tuple[float, float], ...] = ()
    compatible_kinds: tuple[str, ...] | None = None  # None = any kind
    compatible_connector_ids: tuple[str, ...] | None = None  # None = any connector
    priority: int = 0  # higher = served first when the night cannot be fully served
    # Plugged in here at its arrival slot ("now" in a re-plan): its window starts there, and lasts as
    # long as it needs (staff unplug it then for the next bus).
    fixed_connector_id: str | None = None
    energy_delivered_kwh: float = 0.0  # grid-side energy already delivered since arrival
    max_soc_pct: float = 100.0
    # battery energy gained per kWh drawn from the grid; None = the instance's charging_efficiency
    charging_efficiency: float | None = None


@dataclass(frozen=True)
class WearWeights:
    """Small battery-wear costs that break ties towards gentle charging (see docs/optimizer.md).

    - ``high_soc_mxn_per_kwh_h``: per kWh held above ``high_soc_threshold_pct`` per hour of stay;
      makes the plan finish charging close to departure instead of parking buses full.
    - ``high_c_rate_mxn_per_kwh``: per kWh charged at a rate above ``c_rate_threshold_per_h``
      (power / usable capacity); prefers slower charging when it costs nothing else.
    """

    high_soc_threshold_pct: float = 80.0
    high_soc_mxn_per_kwh_h: float = 0.005
    c_rate_threshold_per_h: float = 0.5
    high_c_rate_mxn_per_kwh: float = 0.02


@dataclass(frozen=True)
class Instance:
    """A depot night. Per-slot lists all have ``num_slots`` entries.

    - ``site_limit_kw``: what charging may draw in each slot (grid limit minus base load).
    - ``energy_price_mxn_per_kwh``: grid energy price per slot.
    - ``demand_charge_mxn_per_kw``: paid on the new monthly peak above ``month_peak_kw``, measured
      as ``base_load_kw + charging`` over the slots flagged in ``demand_slots`` (e.g. punta).
    - ``demand_charge_name`` / ``demand_periods``: the top-level charge's name and the tariff periods its
      slots come from (for people; an instance stored before they existed reads "demand" and none).
    - ``additional_demand_charges``: more such charges, each with its own slots and month peak
      (GDMTH has two); ``demand_charges()`` lists them all, the top-level one first, as the one
      ``DemandCharges`` object every price of demand is read from (``charging/optimizer/demand.py``).
    - ``charging_efficiency``: battery energy gained per kWh drawn from the grid.
    """

    horizon_start: datetime
    num_slots: int
    slot_minutes: int
    site_limit_kw: tuple[float, ...]
    energy_price_mxn_per_kwh: tuple[float, ...]
    chargers: tuple[Charger, ...]
    vehicles: tuple[Vehicle, ...]
    demand_charge_mxn_per_kw: float = 0.0
    demand_slots: tuple[bool, ...] | None = None  # None = every slot counts for the demand charge
    month_peak_kw: float = 0.0
    base_load_kw: tuple[float, ...] | None = None  # None = no base load counted in the peak
    charging_efficiency: float = 0.95
    wear: WearWeights = field(default_factory=WearWeights)
    additional_demand_charges: tuple[DemandCharge, ...] = ()
    # Shortfall penalty, MXN per battery kWh a vehicle leaves without, per priority level
    # ((priority, MXN per kWh) pairs); a level not listed gets the default rule
    # (``quantities.shortfall_penalty_mxn_per_kwh``). JSON: a number (every level) or an object
    # {"<priority>": MXN per kWh}.
    shortfall_penalty_mxn_per_kwh: tuple[tuple[int, float], ...] = ()
    # The same number for every level (JSON: a number), applied before the per-level ones.
    shortfall_penalty_all_mxn_per_kwh: float | None = None
    demand_charge_name: str = PRIMARY_DEMAND_CHARGE_NAME
    demand_periods: tuple[str, ...] = ()

    # ---- derived quantities used by every module -------------------------------------------
    @property
    def slot_hours(self) -> float:
        return self.slot_minutes / 60.0

    def slot_start(self, slot: int) -> datetime:
        return self.horizon_start + timedelta(minutes=self.slot_minutes * slot)

    def connectors(self) -> list[tuple[Charger, Connector]]:
        """Every connector with its charger, in input order (the order plans index them)."""
        return [(ch, co) for ch in self.chargers for co in ch.connectors]

    def compatible_connectors(self, vehicle: Vehicle) -> list[tuple[Charger, Connector]]:
        """Connectors this vehicle can use: the fixed one if plugged in, else by kind and id."""
        found = []
        for ch, co in self.connectors():
            if vehicle.fixed_connector_id is not None:
                if co.id == vehicle.fixed_connector_id:
                    found.append((ch, co))
                continue
            if vehicle.compatible_kinds is not None and ch.kind not in vehicle.compatible_kinds:
                continue
            if vehicle.compatible_connector_ids is not None and co.id not in vehicle.compatible_connector_ids:
                continue
            found.append((ch, co))
        return found

    def efficiency(self, vehicle: Vehicle) -> float:
        """Battery kWh gained per grid kWh for this vehicle (its own, else the instance's)."""
        return vehicle.charging_efficiency if vehicle.charging_efficiency is not None else self.charging_efficiency

    def initial_energy_kwh(self, vehicle: Vehicle) -> float:
        """Battery energy (kWh) when planning starts: arrival energy plus delivered x efficiency."""
        return (
            vehicle.arrival_soc_pct / 100.0 * vehicle.usable_capacity_kwh
            + vehicle.energy_delivered_kwh * self.efficiency(vehicle)
        )

    def demand_mask(self) -> list[bool]:
        """The slots of the top-level demand charge (where ``PlanTotals.peak_kw`` is measured)."""
        return list(self.demand_slots) if self.demand_slots is not None else [True] * self.num_slots

    def demand_charges(self) -> DemandCharges:
        """Every demand charge the plan pays: the top-level one (when it has a price), then the others."""
        return DemandCharges.from_instance_fields(**{name: getattr(self, name) for name in DEMAND_FIELDS})

    def base_load(self) -> list[float]:
        return list(self.base_load_kw) if self.base_load_kw is not None else [0.0] * self.num_slots

    # ---- (de)serialisation -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Instance:
        """Parse and validate the JSON form; raises ``InstanceError`` listing every problem."""
        return _Parser(data).parse()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (slots, not times), which ``from_dict`` reads back unchanged."""
        return {
            "horizon_start": self.horizon_start.isoformat(),
            "num_slots": self.num_slots,
            "slot_minutes": self.slot_minutes,
            "site_limit_kw": list(self.site_limit_kw),
            "energy_price_mxn_per_kwh": list(self.energy_price_mxn_per_kwh),
            "demand_charge_name": self.demand_charge_name,
            "demand_charge_mxn_per_kw": self.demand_charge_mxn_per_kw,
            "demand_periods": list(self.demand_periods),
            "demand_slots": list(self.demand_slots) if self.demand_slots is not None else None,
            "month_peak_kw": self.month_peak_kw,
            "base_load_kw": list(self.base_load_kw) if self.base_load_kw is not None else None,
            "additional_demand_charges": [
                {
                    "name": c.name,
                    "mxn_per_kw": c.mxn_per_kw,
                    "slots": list(c.slots) if c.slots is not None else None,
                    "month_peak_kw": c.month_peak_kw,
                    "periods": list(c.periods),
                }
                for c in self.additional_demand_charges
            ],
            "charging_efficiency": self.charging_efficiency,
            "shortfall_penalty_mxn_per_kwh": self._penalty_to_json(),
            "wear": asdict(self.wear),
            "chargers": [
                {
                    "id": ch.id,
                    "kind": ch.kind,
                    "max_kw": ch.max_kw,
                    "connectors": [{"id": co.id, "max_kw": co.max_kw} for co in ch.connectors],
                }
                for ch in self.chargers
            ],
            "vehicles": [_vehicle_to_dict(v) for v in self.vehicles],
        }

    def _penalty_to_json(self) -> float | dict[str, float] | None:
        if self.shortfall_penalty_mxn_per_kwh:
            levels = {str(p): v for p, v in self.shortfall_penalty_mxn_per_kwh}
            return levels
        return self.shortfall_penalty_all_mxn_per_kwh


def demand_charges_from_dict(data: Mapping[str, Any]) -> DemandCharges:
    """The demand charges of an instance's JSON form (a stored plan's) without reading the rest: the
    top-level fields and ``additional_demand_charges``, in ``Instance.demand_charges()``'s order. Reads
    instances stored before ``demand_charge_name`` existed too (see ``DemandCharges.named``). Raises
    ``InstanceError`` listing every problem."""
    parser = _Parser(data)
    num_slots = data.get("num_slots")
    if not isinstance(num_slots, int) or isinstance(num_slots, bool) or num_slots < 1:
        raise InstanceError([f"num_slots: must be a positive integer, got {num_slots!r}"])
    fields = parser.demand_fields(num_slots)
    if parser.errors:
        raise InstanceError(parser.errors)
    return DemandCharges.from_instance_fields(**fields)


def load_instance(path: str | Path) -> Instance:
    """Read and validate an instance JSON file."""
    with open(path, encoding="utf-8") as f:
        return Instance.from_dict(json.load(f))


def _vehicle_to_dict(v: Vehicle) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": v.id,
        "arrival_slot": v.arrival_slot,
        "departure_slot": v.departure_slot,
        "arrival_soc_pct": v.arrival_soc_pct,
        "required_soc_pct": v.required_soc_pct,
        "usable_capacity_kwh": v.usable_capacity_kwh,
        "max_charge_kw": v.max_charge_kw,
        "taper": [list(p) for p in v.taper],
        "priority": v.priority,
        "energy_delivered_kwh": v.energy_delivered_kwh,
        "max_soc_pct": v.max_soc_pct,
    }
    if v.compatible_kinds is not None:
        d["compatible_kinds"] = list(v.compatible_kinds)
    if v.compatible_connector_ids is not None:
        d["compatible_connector_ids"] = list(v.compatible_connector_ids)
    if v.fixed_connector_id is not None:
        d["fixed_connector_id"] = v.fixed_connector_id
    if v.charging_efficiency is not None:
        d["charging_efficiency"] = v.charging_efficiency
    return d


class _Parser:
    """Collects every error instead of stopping at the first, each with its JSON path."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def number(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: Any = ...,
        lo: float | None = None,
        hi: float | None = None,
    ) -> Any:
        if key not in obj or obj[key] is None:
            if default is ...:
                self.fail(f"{path}.{key}", "is required")
                return 0.0
            return default
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(f"{path}.{key}", f"must be a finite number, got {value!r}")
            return 0.0
        if lo is not None and value < lo:
            self.fail(f"{path}.{key}", f"must be >= {lo}, got {value}")
        if hi is not None and value > hi:
            self.fail(f"{path}.{key}", f"must be <= {hi}, got {value}")
        return float(value)

    def per_slot(
        self, key: str, num_slots: int, *, default: Any = ..., lo: float | None = None
    ) -> tuple[float, ...] | None:
        """A per-slot series: a list of ``num_slots`` numbers, or one number for every slot."""
        if key not in self.data or self.data[key] is None:
            if default is ...:
                self.fail(key, "is required")
                return (0.0,) * num_slots
            return default  # type: ignore[no-any-return]
        value = self.data[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value] * num_slots
        if not isinstance(value, list) or len(value) != num_slots:
            self.fail(key, f"must be a number or a list of num_slots={num_slots} numbers")
            return (0.0,) * num_slots
        out = []
        for i, x in enumerate(value):
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                self.fail(f"{key}[{i}]", f"must be a finite number, got {x!r}")
                x = 0.0
            elif lo is not None and x < lo:
                self.fail(f"{key}[{i}]", f"must be >= {lo}, got {x}")
            out.append(float(x))
        return tuple(out)

    def slot_of(
        self,
        obj: Mapping[str, Any],
        name: str,
        path: str,
        start: datetime,
        slot_minutes: int,
        num_slots: int,
        rounding: Callable[[float], int],
    ) -> int:
        """``<name>_slot`` (int) or ``<name>_time`` (ISO datetime), clamped to the horizon."""
        if obj.get(f"{name}_slot") is not None:
            slot = obj[f"{name}_slot"]
            if isinstance(slot, bool) or not isinstance(slot, int):
                self.fail(f"{path}.{name}_slot", f"must be an integer, got {slot!r}")
                return 0
            return max(0, min(num_slots, slot))
        if obj.get(f"{name}_time") is not None:
            when = _parse_datetime(obj[f"{name}_time"])
            if when is None:
                self.fail(f"{path}.{name}_time", f"must be an ISO 8601 datetime, got {obj[f'{name}_time']!r}")
                return 0
            if (when.tzinfo is None) != (start.tzinfo is None):
                self.fail(f"{path}.{name}_time", "must have a UTC offset exactly when horizon_start has one")
                return 0
            slots = (when - start) / timedelta(minutes=slot_minutes)
            return max(0, min(num_slots, int(rounding(slots - 1e-9 if rounding is math.ceil else slots + 1e-9))))
        self.fail(path, f"needs {name}_slot or {name}_time")
        return 0

    def parse(self) -> Instance:
        d = self.data
        if not isinstance(d, Mapping):
            raise InstanceError(["(root): must be a JSON object"])
        start = _parse_datetime(d.get("horizon_start"))
        if start is None:
            self.fail("horizon_start", f"must be an ISO 8601 datetime, got {d.get('horizon_start')!r}")
            start = datetime(2000, 1, 1)
        slot_minutes = d.get("slot_minutes", 15)
        if (
            not isinstance(slot_minutes, int)
            or isinstance(slot_minutes, bool)
            or slot_minutes <= 0
            or 60 % slot_minutes
        ):
            self.fail("slot_minutes", f"must be a whole divisor of 60 (15, 5, ...), got {slot_minutes!r}")
            slot_minutes = 15
        num_slots = d.get("num_slots")
        if not isinstance(num_slots, int) or isinstance(num_slots, bool) or not 1 <= num_slots <= 10_000:
            self.fail("num_slots", f"must be an integer in 1..10000, got {num_slots!r}")
            raise InstanceError(self.errors)

        site_limit = self.per_slot("site_limit_kw", num_slots, lo=0)
        price = self.per_slot("energy_price_mxn_per_kwh", num_slots)
        base_load = self.per_slot("base_load_kw", num_slots, default=None, lo=0)
        demand = self.demand_fields(num_slots)

        wear_in = d.get("wear") or {}
        defaults = WearWeights()
        wear = WearWeights(
            **{k: self.number(wear_in, k, "wear", default=getattr(defaults, k), lo=0) for k in asdict(defaults)}
        )

        chargers = self.chargers(d.get("chargers"))
        known_connectors = {co.id for ch in chargers for co in ch.connectors}
        vehicles = self.vehicles(d.get("vehicles"), start, slot_minutes, num_slots, known_connectors)

        instance = Instance(
            horizon_start=start,
            num_slots=num_slots,
            slot_minutes=slot_minutes,
            site_limit_kw=site_limit or (),
            energy_price_mxn_per_kwh=price or (),
            chargers=chargers,
            vehicles=vehicles,
            base_load_kw=base_load,
            charging_efficiency=self.number(d, "charging_efficiency", "(root)", default=0.95, lo=0.01, hi=1),
            wear=wear,
            **demand,
            **self.shortfall_penalty(d.get("shortfall_penalty_mxn_per_kwh")),
        )
        if self.errors:
            raise InstanceError(self.errors)
        return instance

    def shortfall_penalty(self, raw: Any) -> dict[str, Any]:
        """Null, a number (every priority level) or {"<priority>": number} (those levels)."""
        path = "shortfall_penalty_mxn_per_kwh"
        if raw is None:
            return {}
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return {"shortfall_penalty_all_mxn_per_kwh": self.number({path: raw}, path, "(root)", lo=0)}
        if not isinstance(raw, Mapping):
            self.fail(path, "must be null, a number or an object {priority: MXN per kWh}")
            return {}
        levels = []
        for key in raw:
            try:
                priority = int(key)
            except (TypeError, ValueError):
                self.fail(f"{path}.{key}", "keys must be integer priority levels")
                continue
            levels.append((priority, self.number(raw, key, path, lo=0)))
        return {"shortfall_penalty_mxn_per_kwh": tuple(sorted(levels))}

    def slot_flags(self, value: Any, path: str, num_slots: int) -> tuple[bool, ...] | None:
        """Null, or one boolean per slot."""
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != num_slots or not all(isinstance(x, bool) for x in value):
            self.fail(path, f"must be null or a list of num_slots={num_slots} booleans")
            return None
        return tuple(value)

    def demand_fields(self, num_slots: int) -> dict[str, Any]:
        """The top-level charge's fields and the additional charges, as ``Instance`` keyword arguments."""
        d = self.data
        name = d.get("demand_charge_name", PRIMARY_DEMAND_CHARGE_NAME)
        if not isinstance(name, str) or not name:
            self.fail("demand_charge_name", f"must be a non-empty string, got {name!r}")
            name = PRIMARY_DEMAND_CHARGE_NAME
        price = self.number(d, "demand_charge_mxn_per_kw", "(root)", default=0.0, lo=0)
        additional = self.demand_charges(d.get("additional_demand_charges"), num_slots)
        # Only a priced top-level charge is one of the night's charges (``Instance.demand_charges()``).
        if price > 0 and any(c.name == name for c in additional):
            self.fail("demand_charge_name", f"{name!r} is also the name of an additional demand charge")
        return {
            "demand_charge_name": name,
            "demand_charge_mxn_per_kw": price,
            "demand_slots": self.slot_flags(d.get("demand_slots"), "demand_slots", num_slots),
            "month_peak_kw": self.number(d, "month_peak_kw", "(root)", default=0.0, lo=0),
            "demand_periods": self.names(d.get("demand_periods"), "demand_periods"),
            "additional_demand_charges": additional,
        }

    def names(self, value: Any, path: str) -> tuple[str, ...]:
        """Null, or a list of strings (tariff period names)."""
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.fail(path, "must be null or a list of strings")
            return ()
        return tuple(value)

    def demand_charges(self, raw: Any, num_slots: int) -> tuple[DemandCharge, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.fail("additional_demand_charges", "must be a list")
            return ()
        out, seen = [], set()
        for i, c in enumerate(raw):
            path = f"additional_demand_charges[{i}]"
            if not isinstance(c, Mapping):
                self.fail(path, "must be an object")
                continue
            name = c.get("name")
            if not isinstance(name, str) or not name:
                self.fail(f"{path}.name", "is required")
                name = ""
            elif name in seen:
                self.fail(f"{path}.name", f"duplicate demand charge name {name!r}")
            seen.add(name)
            out.append(
                DemandCharge(
                    name=name,
                    mxn_per_kw=self.number(c, "mxn_per_kw", path, lo=0),
                    slots=self.slot_flags(c.get("slots"), f"{path}.slots", num_slots),
                    month_peak_kw=self.number(c, "month_peak_kw", path, default=0.0, lo=0),
                    periods=self.names(c.get("periods"), f"{path}.periods"),
                )
            )
        return tuple(out)

    def chargers(self, raw: Any) -> tuple[Charger, ...]:
        if not isinstance(raw, list):
            self.fail("chargers", "must be a list")
            return ()
        out, seen = [], set()
        for i, c in enumerate(raw):
            path = f"chargers[{i}]"
            if not isinstance(c, Mapping):
                self.fail(path, "must be an object")
                continue
            kind = c.get("kind")
            if kind not in CONNECTOR_KINDS:
                self.fail(f"{path}.kind", f"must be one of {CONNECTOR_KINDS}, got {kind!r}")
            connectors = []
            for j, co in enumerate(c.get("connectors") or []):
                cpath = f"{path}.connectors[{j}]"
                cid = str(co.get("id", "")) if isinstance(co, Mapping) else ""
                if not cid:
                    self.fail(f"{cpath}.id", "is required")
                elif cid in seen:
                    self.fail(f"{cpath}.id", f"duplicate connector id {cid!r}")
                seen.add(cid)
                connectors.append(
                    Connector(cid, self.number(co if isinstance(co, Mapping) else {}, "max_kw", cpath, lo=0))
                )
            if not connectors:
                self.fail(f"{path}.connectors", "needs at least one connector")
            out.append(
                Charger(
                    str(c.get("id", f"charger-{i}")),
                    str(kind),
                    self.number(c, "max_kw", path, lo=0),
                    tuple(connectors),
                )
            )
        return tuple(out)

    def vehicles(
        self, raw: Any, start: datetime, slot_minutes: int, num_slots: int, known_connectors: set[str]
    ) -> tuple[Vehicle, ...]:
        if not isinstance(raw, list):
            self.fail("vehicles", "must be a list")
            return ()
        out, seen = [], set()
        for i, v in enumerate(raw):
            path = f"vehicles[{i}]"
            if not isinstance(v, Mapping):
                self.fail(path, "must be an object")
                continue
            vid = str(v.get("id", ""))
            if not vid:
                self.fail(f"{path}.id", "is required")
            elif vid in seen:
                self.fail(f"{path}.id", f"duplicate vehicle id {vid!r}")
            seen.add(vid)
            path = f"vehicles[{i}] ({vid})"
            arrival = self.slot_of(v, "arrival", path, start, slot_minutes, num_slots, math.ceil)
            departure = self.slot_of(v, "departure", path, start, slot_minutes, num_slots, math.floor)
            capacity = self.number(v, "usable_capacity_kwh", path, lo=1e-6)
            arrival_soc = self.number(v, "arrival_soc_pct", path, lo=0, hi=100)
            max_soc = self.number(v, "max_soc_pct", path, default=100.0, lo=0, hi=100)
            required = self.required_soc(v, path, arrival_soc, capacity)
            if required > max_soc + 1e-9:
                self.fail(path, f"required departure SoC {required:.2f} % is above max_soc_pct {max_soc}")
            if arrival_soc > max_soc + 1e-9:
                self.fail(f"{path}.arrival_soc_pct", f"is above max_soc_pct {max_soc}")
            max_kw = self.number(v, "max_charge_kw", path, lo=0)
            kinds = _str_tuple(v.get("compatible_kinds"))
            if kinds is not None and not set(kinds) <= set(CONNECTOR_KINDS):
                self.fail(f"{path}.compatible_kinds", f"must be a subset of {CONNECTOR_KINDS}")
            ids = _str_tuple(v.get("compatible_connector_ids"))
            fixed = v.get("fixed_connector_id")
            for cid in (ids or ()) + ((str(fixed),) if fixed is not None else ()):
                if cid not in known_connectors:
                    self.fail(path, f"refers to unknown connector {cid!r}")
            priority = v.get("priority", 0)
            if isinstance(priority, bool) or not isinstance(priority, int):
                self.fail(f"{path}.priority", f"must be an integer, got {priority!r}")
                priority = 0
            out.append(
                Vehicle(
                    id=vid,
                    arrival_slot=arrival,
                    departure_slot=max(arrival, departure),
                    arrival_soc_pct=arrival_soc,
                    required_soc_pct=required,
                    usable_capacity_kwh=capacity,
                    max_charge_kw=max_kw,
                    taper=self.taper(v.get("taper"), f"{path}.taper"),
                    compatible_kinds=kinds,
                    compatible_connector_ids=ids,
                    priority=priority,
                    fixed_connector_id=str(fixed) if fixed is not None else None,
                    energy_delivered_kwh=self.number(v, "energy_delivered_kwh", path, default=0.0, lo=0),
                    max_soc_pct=max_soc,
                    charging_efficiency=self.number(v, "charging_efficiency", path, default=None, lo=0.01, hi=1),
                )
            )
        return tuple(out)

    def required_soc(self, v: Mapping[str, Any], path: str, arrival_soc: float, capacity: float) -> float:
        """``required_soc_pct`` or ``required_energy_kwh`` (battery-side, added to the arrival SoC)."""
        if v.get("required_soc_pct") is not None:
            return float(self.number(v, "required_soc_pct", path, lo=0, hi=100))
        if v.get("required_energy_kwh") is not None:
            energy = self.number(v, "required_energy_kwh", path, lo=0)
            return arrival_soc + 100.0 * energy / capacity if capacity > 0 else 0.0
        self.fail(path, "needs required_soc_pct or required_energy_kwh")
        return 0.0

    def taper(self, raw: Any, path: str) -> tuple[tuple[float, float], ...]:
        """Points (soc %, max kW), sorted, extended flat to 0 % and 100 %. Any shape: a curve that is
        not concave is planned conservatively (``quantities.conservative_taper``)."""
        if raw is None or raw == []:
            return ()
        if not isinstance(raw, list) or not all(
            isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, int | float) for x in p) for p in raw
        ):
            self.fail(path, "must be a list of [soc_pct, max_kw] pairs")
            return ()
        points = sorted((float(s), float(k)) for s, k in raw)
        if points[0][0] < 0 or points[-1][0] > 100 or any(k < 0 for _, k in points):
            self.fail(path, "SoC must be within 0..100 % and power >= 0")
            return ()
        if len({s for s, _ in points}) != len(points):
            self.fail(path, "has two points at the same SoC")
            return ()
        if points[0][0] > 0:
            points.insert(0, (0.0, points[0][1]))
        if points[-1][0] < 100:
            points.append((100.0, points[-1][1]))
        return tuple(points)


def _str_tuple(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        return (str(value),)
    return tuple(str(x) for x in value)


def _parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
