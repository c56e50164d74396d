"""acnportal's own sorted schedulers (LLF, EDF) on the ACN-Data weeks of ``bench/bench_acn.py`` (issue 14).

Runs in acnportal's venv, not the project's (``make bench-peers`` creates it; by hand)::

    python3.11 -m venv /tmp/acnvenv && /tmp/acnvenv/bin/pip install -r bench/peers/requirements.txt
    /tmp/acnvenv/bin/python bench/peers/acnportal_llf.py --out bench/results/acnportal-<date>.json
    .venv/bin/python bench/bench_acn.py --peers bench/results/acnportal-<date>.json

Only ``bench/acn_week.py`` (standard library) is imported from the project: the same sessions, slots (15 min),
prices (SCE TOU-EV-4 summer) and site limits as ``bench_acn.py``, which checks the session count and energy
wanted written here against its own instance before it puts these figures in its table.

The network, as close to ours as acnportal models it: each station an ``EVSE`` of 0-32 A (continuous pilot) at
208 V (6.656 kW, our ``STATION_KW``), every station at phase angle 0 so that the one constraint, the sum of all
station currents <= limit kW / 208 V, is the aggregate site limit of our instance (acnportal's real
Caltech/JPL networks, three-phase transformers and per-pod cables, are not used: our instance has neither).
Each session an ``EV`` on its own station, its ``Battery`` of capacity = the energy wanted (empty on arrival,
at most 6.656 kW), ``requested_energy`` = that energy, leaving at its (known) departure slot: acnportal's
schedulers, like ours, know each departure and demand on arrival, nothing about later arrivals. The
simulator calls the sorted scheduler every period (``max_recompute = 1``) and on each plug-in/unplug.
Energy is what the batteries received (efficiency 1); cost = sum over periods of site kW x 0.25 h x price.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

import numpy as np  # noqa: E402
from acnportal import acnsim, algorithms  # noqa: E402

from bench.acn_week import (  # noqa: E402
    LIMITS_KW,
    NUM_SLOTS,
    SLOT_MINUTES,
    STATION_KW,
    STATION_VOLTS,
    WEEK_START,
    sessions,
    slot_prices,
    stations,
    week_sessions,
)

MAX_AMPS = STATION_KW * 1000 / STATION_VOLTS  # 32 A
SCHEDULERS = {
    "acnportal_llf": algorithms.least_laxity_first,
    "acnportal_edf": algorithms.earliest_deadline_first,
}


def network(station_ids: list[str], limit_kw: float) -> acnsim.ChargingNetwork:
    net = acnsim.ChargingNetwork()
    for station in station_ids:
        net.register_evse(acnsim.EVSE(station, max_rate=MAX_AMPS), STATION_VOLTS, 0)
    net.add_constraint(acnsim.Current(station_ids), limit_kw * 1000 / STATION_VOLTS, name="site")
    return net


def events(rows: list[dict]) -> acnsim.EventQueue:
    queue = acnsim.EventQueue()
    for w in week_sessions(rows):
        battery = acnsim.Battery(capacity=w.kwh, init_charge=0.0, max_power=STATION_KW)
        ev = acnsim.EV(w.arrival_slot, w.departure_slot, w.kwh, w.station, w.id, battery)
        queue.add_event(acnsim.PluginEvent(w.arrival_slot, ev))
    return queue


def run(site: str, limit_kw: float, sort_fn) -> dict:
    rows = sessions(site)
    wanted = week_sessions(rows)
    started = time.perf_counter()
    sim = acnsim.Simulator(
        network(stations(rows), limit_kw),
        algorithms.SortedSchedulingAlgo(sort_fn),
        events(rows),
        WEEK_START,
        period=SLOT_MINUTES,
        verbose=False,
    )
    sim.run()
    seconds = time.perf_counter() - started
    site_kw = sim.charging_rates.sum(axis=0) * STATION_VOLTS / 1000  # amps -> kW, per period
    # The simulator's record runs to the last unplug (period NUM_SLOTS at most), when nobody is charging.
    assert not site_kw[NUM_SLOTS:].any(), "charging after the horizon"
    site_kw = site_kw[:NUM_SLOTS]
    prices = np.array(slot_prices()[: len(site_kw)])
    hours = SLOT_MINUTES / 60
    delivered = sum(ev.energy_delivered for ev in sim.ev_history.values())
    return {
        "energy_kwh": round(float(delivered), 3),
        "undelivered_kwh": round(sum(w.kwh for w in wanted) - float(delivered), 3),
        "energy_from_rates_kwh": round(float(site_kw.sum() * hours), 3),
        "cost": round(float((site_kw * prices).sum() * hours), 3),
        "peak_kw": round(float(site_kw.max()), 3),
        # acnportal allows 1e-5 A over a limit (its violation_tolerance), i.e. ~2e-6 kW
        "max_over_limit_kw": round(max(0.0, float(site_kw.max()) - limit_kw), 6),
        "periods_over_limit_by_1w": int((site_kw > limit_kw + 1e-3).sum()),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", nargs="+", default=["caltech", "jpl"])
    parser.add_argument(
        "--limit-kw", nargs="+", default=[f"{k}={v:g}" for k, v in LIMITS_KW.items()], help="site=kW pairs"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    limits = {**LIMITS_KW, **{k: float(v) for k, v in (pair.split("=") for pair in args.limit_kw)}}
    out: dict = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            **{p: version(p) for p in ("acnportal", "numpy", "pandas")},
            "load_average_at_start": os.getloadavg(),
            "date": dt.date.today().isoformat(),
        },
        "sites": {},
    }
    for site in args.sites:
        wanted = week_sessions(sessions(site))
        result: dict = {
            "limit_kw": limits[site],
            "vehicles": len(wanted),
            "wanted_kwh": round(sum(w.kwh for w in wanted), 3),
            "load_start": os.getloadavg(),
        }
        for name, sort_fn in SCHEDULERS.items():
            result[name] = run(site, limits[site], sort_fn)
        result["load_end"] = os.getloadavg()
        out["sites"][site] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
