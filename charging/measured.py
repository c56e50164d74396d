"""What planning takes from the vehicles' measurements, and the record of where each planned value came from.

Each vehicle of a plan carries its *sources* (``PlannedCharge.sources``, shown by the plan API and page):

* ``arrival_soc``: how its arrival SoC was found -
  ``live`` (a reading after its last block returned: the bus is at the depot and says how full it is),
  ``predicted_from_live`` (a fresh reading while still on its blocks, minus the energy of what is left of
  them at its measured kWh/km), ``block_estimate`` (no usable reading: a full morning charge minus the day's
  blocks) or ``reported`` (a depot event's SoC: staff, a charger, or an arrival seen by telemetry);
* ``consumption``: the kWh/km its block energies were priced at - ``vehicle_median`` (its own duty days),
  ``model_median`` (its model's vehicles' days) or ``nominal`` (the model's figure).

Rules in docs/planning.md ("Measured values and their sources").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from fleet.models import BlockAssignment, Vehicle
from fleet.telemetry.selectors import LiveSoc, measured_consumption

ARRIVAL_LIVE = "live"
ARRIVAL_PREDICTED = "predicted_from_live"
ARRIVAL_BLOCK_ESTIMATE = "block_estimate"
ARRIVAL_REPORTED = "reported"
CONSUMPTION_VEHICLE = "vehicle_median"
CONSUMPTION_MODEL = "model_median"
CONSUMPTION_NOMINAL = "nominal"


def live_soc_max_age() -> dt.timedelta:
    """How old a reading taken on the road may be to plan from it (``EVFLEET_LIVE_SOC_MAX_AGE_MINUTES``)."""
    return dt.timedelta(minutes=settings.EVFLEET_LIVE_SOC_MAX_AGE_MINUTES)


@dataclass(frozen=True)
class Consumption:
    kwh_per_km: float
    source: dict


def vehicle_consumption(vehicle: Vehicle, *, until: dt.date) -> Consumption:
    """The kWh/km planning prices ``vehicle``'s blocks at, with its source (``fleet.telemetry.selectors.
    measured_consumption``: its own median, else its model's, else the nominal figure)."""
    measured = measured_consumption(vehicle, until=until)
    if measured is None:
        nominal = vehicle.model.consumption_kwh_per_km
        return Consumption(nominal, {"kind": CONSUMPTION_NOMINAL, "kwh_per_km": round(nominal, 4)})
    kind = CONSUMPTION_VEHICLE if measured.scope == "vehicle" else CONSUMPTION_MODEL
    return Consumption(
        measured.kwh_per_km,
        {
            "kind": kind,
            "kwh_per_km": round(measured.kwh_per_km, 4),
            "days": measured.days,
            "window_days": measured.window_days,
            "season": measured.season,
        },
    )


def block_energy_kwh(assignment: BlockAssignment, kwh_per_km: float) -> float:
    """A block's energy: its planned figure, else its distance at ``kwh_per_km``."""
    block = assignment.block
    if block.planned_energy_kwh is not None:
        return block.planned_energy_kwh
    return block.distance_km * kwh_per_km


def remaining_block_energy_kwh(assignments: list[BlockAssignment], kwh_per_km: float, *, at: dt.datetime) -> float:
    """Energy still to be used at ``at`` by these blocks: all of a block not yet started, none of a finished
    one, and of the block under way the share of its time still to run (the distance still to drive, for a
    bus that keeps to its timetable)."""
    total = 0.0
    for assignment in assignments:
        energy = block_energy_kwh(assignment, kwh_per_km)
        if at <= assignment.starts_at:
            total += energy
        elif at < assignment.ends_at:
            share = (assignment.ends_at - at) / (assignment.ends_at - assignment.starts_at)
            total += energy * share
    return total


def arrival_soc(
    *,
    day_blocks: list[BlockAssignment],
    live: LiveSoc | None,
    back_since: dt.datetime,
    now: dt.datetime,
    capacity_kwh: float,
    full_soc_pct: float,
    kwh_per_km: float,
) -> tuple[float, dict]:
    """The vehicle's SoC (% of the pack) when it arrives for the night, and its source.

    ``day_blocks``: its blocks before tonight's anchor, in order; ``back_since``: when the last of them
    returns (without blocks, when the night's reading window opens); ``live``: its last reported SoC.
    """
    if live is not None and live.recorded_at >= back_since:
        return live.soc_pct, {"kind": ARRIVAL_LIVE, "at": live.recorded_at.isoformat()}
    if live is not None and now - live.recorded_at <= live_soc_max_age():
        remaining_kwh = remaining_block_energy_kwh(day_blocks, kwh_per_km, at=live.recorded_at)
        predicted = live.soc_pct - remaining_kwh / capacity_kwh * 100.0
        return predicted, {
            "kind": ARRIVAL_PREDICTED,
            "at": live.recorded_at.isoformat(),
            "live_soc_pct": round(live.soc_pct, 2),
            "remaining_kwh": round(remaining_kwh, 2),
        }
    day_kwh = sum(block_energy_kwh(a, kwh_per_km) for a in day_blocks)
    return full_soc_pct - day_kwh / capacity_kwh * 100.0, {
        "kind": ARRIVAL_BLOCK_ESTIMATE,
        "blocks_kwh": round(day_kwh, 2),
    }


def reported_source(at: dt.datetime | None) -> dict:
    """The arrival SoC's source when a depot event reported it (at ``at``)."""
    return {"kind": ARRIVAL_REPORTED, "at": at.isoformat() if at is not None else None}


# --- How a source reads to people (the plan page, the API's ``label``) -------------------------------------


def _clock(iso: str | None, zone: dt.tzinfo) -> str:
    return dt.datetime.fromisoformat(iso).astimezone(zone).strftime("%H:%M") if iso else "?"


def _season_name(season: str) -> str:
    return {"winter": _("winter"), "spring": _("spring"), "summer": _("summer"), "autumn": _("autumn")}.get(
        season, season
    )


def arrival_source_label(source: dict | None, zone: dt.tzinfo) -> str:
    """E.g. "live 14:32", "predicted from live 14:32", "block estimate", "reported 22:05" (depot time)."""
    kind = (source or {}).get("kind")
    at = (source or {}).get("at")
    if kind == ARRIVAL_LIVE:
        return _("live %(time)s") % {"time": _clock(at, zone)}
    if kind == ARRIVAL_PREDICTED:
        return _("predicted from live %(time)s") % {"time": _clock(at, zone)}
    if kind == ARRIVAL_BLOCK_ESTIMATE:
        return _("block estimate")
    if kind == ARRIVAL_REPORTED:
        return _("reported %(time)s") % {"time": _clock(at, zone)}
    return _("not recorded")


def consumption_source_label(source: dict | None) -> str:
    """E.g. "1.12 kWh/km: vehicle's summer median over 14 days", "0.95 kWh/km: nominal"."""
    if not source or "kind" not in source:
        return _("not recorded")
    figure = f"{source.get('kwh_per_km', 0):.2f} kWh/km"
    kind, days, season = source["kind"], source.get("days"), source.get("season")
    if kind == CONSUMPTION_NOMINAL:
        return _("%(figure)s: nominal") % {"figure": figure}
    whose = _("vehicle's") if kind == CONSUMPTION_VEHICLE else _("model's")
    if season:
        return _("%(figure)s: %(whose)s %(season)s median over %(days)s days") % {
            "figure": figure,
            "whose": whose,
            "season": _season_name(season),
            "days": days,
        }
    return _("%(figure)s: %(whose)s median over %(days)s days") % {"figure": figure, "whose": whose, "days": days}
