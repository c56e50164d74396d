"""Realistic random depot nights, for demos, tests and benchmarks (figures: docs/DOMAIN notes).

A summer weeknight at a Hermosillo-like bus depot (UTC-7): 12 m e-buses (~350 kWh LFP, usable
window 85 % of nameplate, SoH 85-100 %) arrive 18:00-23:00 with 25-60 % SoC and leave 04:30-07:00
needing 85-98 %; DC chargers with two 150 kW connectors sharing 240 kW; a grid connection well
below installed power, less a base load; a GDMTH-like tariff (base / intermedia / punta, punta
18:00-22:00) with a capacity charge on punta demand. Prices are illustrative.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from .instance import Instance

PRICE_MXN_PER_KWH = {"base": 1.10, "intermedia": 1.85, "punta": 2.35}
PUNTA_DEMAND_CHARGE_MXN_PER_KW = 380.0
CONNECTOR_KW = 150.0
CHARGER_KW = 240.0  # two connectors share one cabinet
BUS_NAMEPLATE_KWH = 350.0


def tariff_period(hour: float) -> str:
    """Summer weekday periods (illustrative): punta 18-22 h, base 0-6 h, intermedia otherwise."""
    if 18 <= hour < 22:
        return "punta"
    if hour < 6:
        return "base"
    return "intermedia"


def generate_instance_dict(
    *,
    vehicles: int,
    connectors: int,
    seed: int = 0,
    slot_minutes: int = 15,
    horizon_start: str = "2025-07-15T12:00:00-07:00",
    hours: int = 24,
    all_back_at: str | None = None,
) -> dict[str, Any]:
    """A JSON-ready instance (see docs/optimizer.md); same arguments, same instance.

    ``all_back_at`` ("HH:MM" on the first day) brings every bus back at that time, e.g. "17:00"
    for a night where every bus waits for a connector at once."""
    rng = np.random.default_rng(seed)
    start = datetime.fromisoformat(horizon_start)
    num_slots = hours * 60 // slot_minutes
    slot_hours = np.array([(start + timedelta(minutes=slot_minutes * t)).hour for t in range(num_slots)])
    slot_hours = slot_hours + np.array(
        [(start + timedelta(minutes=slot_minutes * t)).minute / 60 for t in range(num_slots)]
    )
    periods = [tariff_period(h) for h in slot_hours]

    chargers: list[dict[str, Any]] = []
    for k in range(math.ceil(connectors / 2)):
        count = min(2, connectors - 2 * k)
        chargers.append(
            {
                "id": f"dc-{k + 1:03d}",
                "kind": "DC",
                "max_kw": CHARGER_KW if count == 2 else CONNECTOR_KW,
                "connectors": [{"id": f"dc-{k + 1:03d}-{j + 1}", "max_kw": CONNECTOR_KW} for j in range(count)],
            }
        )

    evening = start.replace(hour=18, minute=0)
    morning = start.replace(hour=4, minute=30) + timedelta(days=1)
    fleet = []
    need_kwh = 0.0
    for i in range(vehicles):
        capacity = round(BUS_NAMEPLATE_KWH * 0.85 * rng.uniform(0.85, 1.0), 1)
        arrival = evening + timedelta(minutes=int(rng.integers(0, 5 * 60)))
        if all_back_at is not None:
            hour, minute = (int(x) for x in all_back_at.split(":"))
            arrival = start.replace(hour=hour, minute=minute)
        departure = morning + timedelta(minutes=int(rng.integers(0, 150)))
        arrival_soc = round(float(rng.uniform(25, 60)), 1)
        required = round(float(rng.uniform(85, 98)), 1)
        need_kwh += (required - arrival_soc) / 100 * capacity
        fleet.append(
            {
                "id": f"bus-{i + 1:04d}",
                "arrival_time": arrival.isoformat(),
                "departure_time": departure.isoformat(),
                "arrival_soc_pct": arrival_soc,
                "required_soc_pct": required,
                "usable_capacity_kwh": capacity,
                "max_charge_kw": CONNECTOR_KW,
                "taper": [[0, 150.0], [80, 150.0], [100, 30.0]],
                "compatible_kinds": ["DC"],
                "priority": 1 if rng.random() < 0.1 else 0,
            }
        )

    # The grid connection fits the night's energy over ~7 off-punta hours, with some margin,
    # but stays well below the installed charger power (which is why planning matters).
    installed_kw = sum(float(ch["max_kw"]) for ch in chargers)
    needed_kw = need_kwh / 0.95 / 7.0
    grid_kw = float(np.clip(1.25 * needed_kw, 0.25 * installed_kw, 0.7 * installed_kw))
    base_load = [grid_kw * (0.15 if 18 <= h < 23 else 0.05 if h < 6 else 0.10) for h in slot_hours]
    return {
        "horizon_start": start.isoformat(),
        "num_slots": num_slots,
        "slot_minutes": slot_minutes,
        "site_limit_kw": [round(grid_kw - b, 1) for b in base_load],
        "base_load_kw": [round(b, 1) for b in base_load],
        "energy_price_mxn_per_kwh": [PRICE_MXN_PER_KWH[p] for p in periods],
        "demand_charge_mxn_per_kw": PUNTA_DEMAND_CHARGE_MXN_PER_KW,
        "demand_slots": [p == "punta" for p in periods],
        "month_peak_kw": round(0.5 * grid_kw, 1),
        "charging_efficiency": 0.95,
        "chargers": chargers,
        "vehicles": fleet,
    }


def generate_instance(
    *, vehicles: int, connectors: int, seed: int = 0, slot_minutes: int = 15, all_back_at: str | None = None
) -> Instance:
    """``generate_instance_dict`` parsed into an ``Instance``."""
    return Instance.from_dict(
        generate_instance_dict(
            vehicles=vehicles, connectors=connectors, seed=seed, slot_minutes=slot_minutes, all_back_at=all_back_at
        )
    )
