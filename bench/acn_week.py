"""The ACN-Data test week of ``bench_acn.py``: sessions, slots, prices and site limits, in the standard library only.

One home for the set-up shared by ``bench/bench_acn.py`` (the project's venv) and
``bench/peers/acnportal_llf.py`` (acnportal's own venv, which has none of the project's packages), so both
read the same sessions, round them to the same slots and price them alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
PACIFIC = dt.timezone(dt.timedelta(hours=-7))  # PDT: the whole of May-July 2019
WEEK_START = dt.datetime(2019, 7, 8, tzinfo=PACIFIC)
HISTORY_START = WEEK_START - dt.timedelta(weeks=8)
SLOT_MINUTES = 15
NUM_SLOTS = 8 * 24 * 60 // SLOT_MINUTES  # the week plus a day for cars still there on Sunday night
STATION_KW = 6.656  # 32 A at 208 V, the Level-2 stations
STATION_VOLTS = 208.0
# The sites' limits (a transformer): where the limit binds on weekdays, so the timing of charging matters, and
# hindsight still delivers (nearly) every session's energy: uncontrolled charging peaks at 73 and 263 kW.
LIMITS_KW = {"caltech": 40.0, "jpl": 90.0}


def data_file(site: str) -> Path:
    return DATA / f"acn-{site}-2019-05-13-2019-07-14.csv.gz"


def sessions(site: str) -> list[dict]:
    with gzip.open(data_file(site), "rt") as f:
        return [
            {
                "arrival": dt.datetime.fromisoformat(r["arrival"]),
                "departure": dt.datetime.fromisoformat(r["departure"]),
                "kwh": float(r["delivered_energy_kwh"]),
                "station": r["station_id"],
            }
            for r in csv.DictReader(f)
        ]


def tou_price(moment: dt.datetime) -> float:
    """SCE TOU-EV-4, summer 2019 ($/kWh): weekdays 0.05623 / 0.0925 (8-12, 18-23) / 0.26668 (12-18)."""
    if moment.weekday() >= 5:
        return 0.05623
    h = moment.hour
    return 0.26668 if 12 <= h < 18 else 0.0925 if 8 <= h < 12 or 18 <= h < 23 else 0.05623


def slot_prices() -> tuple[float, ...]:
    slot = dt.timedelta(minutes=SLOT_MINUTES)
    return tuple(tou_price(WEEK_START + t * slot) for t in range(NUM_SLOTS))


def stations(rows: list[dict]) -> list[str]:
    """Every station seen at the site in the history and the test week (each one connector)."""
    return sorted({r["station"] for r in rows})


@dataclass(frozen=True)
class WeekSession:
    """One session of the test week: a vehicle on its own station wanting ``kwh`` within slots [arrival, departure)."""

    id: str
    arrival_slot: int
    departure_slot: int
    kwh: float
    station: str


def week_sessions(rows: list[dict]) -> list[WeekSession]:
    """The test week's sessions in slots: arrival rounded up to a slot start, departure down (capped at the horizon),
    the energy ACN delivered capped at what ``STATION_KW`` can give in the rounded stay; empty stays dropped."""
    slot = dt.timedelta(minutes=SLOT_MINUTES)
    week = [r for r in rows if WEEK_START <= r["arrival"] < WEEK_START + dt.timedelta(days=7)]
    out = []
    for k, r in enumerate(sorted(week, key=lambda r: r["arrival"])):
        arrival = -(-(r["arrival"] - WEEK_START) // slot)  # rounded up to a slot start
        departure = min((r["departure"] - WEEK_START) // slot, NUM_SLOTS)
        if departure <= arrival or r["kwh"] <= 0:
            continue
        kwh = min(r["kwh"], STATION_KW * (departure - arrival) * SLOT_MINUTES / 60)
        out.append(WeekSession(f"s{k:04d}", arrival, departure, kwh, r["station"]))
    return out
