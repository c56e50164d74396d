"""The ACN-Data week shared by bench/bench_acn.py and acnportal's peer run (bench/peers/acnportal_llf.py): sessions
rounded to slots alike, and the peer's figures refused when its instance is not ours."""

from __future__ import annotations

import datetime as dt

import pytest

from bench.acn_week import SLOT_MINUTES, STATION_KW, WEEK_START, week_sessions
from bench.bench_acn import peer_results, week_instance


def row(arrive_min: int, stay_min: int, kwh: float, station: str = "CA-1") -> dict:
    arrival = WEEK_START + dt.timedelta(minutes=arrive_min)
    return {"arrival": arrival, "departure": arrival + dt.timedelta(minutes=stay_min), "kwh": kwh, "station": station}


def test_week_sessions_round_the_stay_inwards_cap_the_energy_and_drop_empty_stays() -> None:
    rows = [
        row(7, 60, 3.0),  # 00:07-01:07 -> slots 1..4 (00:15-01:00)
        row(60, 30, 50.0, "CA-2"),  # 01:00-01:30, 50 kWh -> capped at 30 min of 6.656 kW
        row(100, 10, 1.0),  # 01:40-01:50: no whole slot
        row(200, 60, 0.0),  # nothing delivered
        row(-60, 120, 5.0),  # before the week: history
    ]
    sessions = week_sessions(rows)
    assert [(s.arrival_slot, s.departure_slot, s.station) for s in sessions] == [(1, 4, "CA-1"), (4, 6, "CA-2")]
    assert sessions[0].kwh == 3.0
    assert sessions[1].kwh == pytest.approx(STATION_KW * 2 * SLOT_MINUTES / 60)


def test_peer_figures_are_taken_only_for_the_same_instance() -> None:
    rows = [row(7, 60, 3.0), row(60, 30, 2.0, "CA-2")]
    instance = week_instance(rows, 40.0)
    figures = {"energy_kwh": 5.0, "cost": 1.0}
    peers = {"sites": {"caltech": {"vehicles": 2, "wanted_kwh": 5.0, "limit_kw": 40.0, "acnportal_llf": figures}}}
    assert peer_results(peers, "caltech", instance) == {"acnportal_llf": figures}
    peers["sites"]["caltech"]["wanted_kwh"] = 5.5
    with pytest.raises(SystemExit, match="5.5 kWh wanted"):
        peer_results(peers, "caltech", instance)
