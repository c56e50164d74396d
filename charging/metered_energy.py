"""Energy a charging session actually drew, per interval of a slot grid: what the night's cost prices when
meter data exists (``charging.selectors.night_costs``).

A session carries its total (``energy_kwh``) and, when a charger reported them (OCPP MeterValues, stored by
the central system), its meter readings: ``[moment, kWh since the session started]`` pairs. Between readings
the energy is taken to grow linearly (from 0 at the start to the first reading, from the last reading to the
total at the end); a session without readings draws its total evenly over its duration, as its own price
assumes (``charging.sessions``). No Django here: plain values in, a list of kWh per slot out.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence


def meter_readings_json(
    readings: Sequence[tuple[dt.datetime, float]], *, started_at: dt.datetime, ended_at: dt.datetime
) -> list[list]:
    """Readings as ``ChargingSession.meter_readings`` stores them: inside the session, in time order, each
    moment once, never decreasing (a register read back lower is a glitch: the higher value stands)."""
    stored: list[list] = []
    highest = 0.0
    for moment, kwh in sorted(readings, key=lambda reading: reading[0]):
        if not (started_at <= moment <= ended_at) or (stored and stored[-1][0] == moment.isoformat()):
            continue
        highest = max(highest, float(kwh))
        stored.append([moment.isoformat(), round(highest, 4)])
    return stored


def _energy_curve(
    started_at: dt.datetime, ended_at: dt.datetime, energy_kwh: float, readings: Sequence[Sequence] | None
) -> tuple[list[float], list[float]]:
    """The session's cumulative energy as (seconds since its start, kWh) points."""
    times, kwh = [0.0], [0.0]
    for moment, value in readings or []:
        at = (dt.datetime.fromisoformat(moment) - started_at).total_seconds()
        if times[-1] < at < (ended_at - started_at).total_seconds():
            times.append(at)
            kwh.append(max(float(value), kwh[-1]))
    times.append((ended_at - started_at).total_seconds())
    kwh.append(max(float(energy_kwh), kwh[-1]))
    return times, kwh


def _energy_by(times: list[float], kwh: list[float], at: float) -> float:
    if at <= times[0]:
        return 0.0
    if at >= times[-1]:
        return kwh[-1]
    i = bisect.bisect_right(times, at)
    t0, t1, e0, e1 = times[i - 1], times[i], kwh[i - 1], kwh[i]
    return e0 + (e1 - e0) * (at - t0) / (t1 - t0) if t1 > t0 else e1


def session_kwh_by_slot(
    *,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    energy_kwh: float,
    readings: Sequence[Sequence] | None,
    grid_start: dt.datetime,
    slot_minutes: int,
    num_slots: int,
) -> list[float]:
    """kWh the session drew in each slot of the grid (``num_slots`` slots of ``slot_minutes`` from
    ``grid_start``); energy outside the grid is left out."""
    times, kwh = _energy_curve(started_at, ended_at, energy_kwh, readings)
    slot_s = slot_minutes * 60.0
    offset = (grid_start - started_at).total_seconds()
    by_slot = []
    for slot in range(num_slots):
        begins, ends = offset + slot * slot_s, offset + (slot + 1) * slot_s
        by_slot.append(_energy_by(times, kwh, ends) - _energy_by(times, kwh, begins))
    return by_slot
