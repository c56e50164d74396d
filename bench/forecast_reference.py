"""Independent reference for the battery forecast: every day of a duty simulated in sequence.

    .venv/bin/python bench/forecast_reference.py simulate --years 3       # regenerate the references
    .venv/bin/python bench/forecast_reference.py compare                  # table: evfleet vs references
    .venv/bin/python bench/forecast_reference.py tune --days 365          # the diffusion truth's scales

``simulate`` runs, for each duty in ``DUTIES`` and for two physics, a day-by-day PyBaMM simulation and
stores the monthly SoH in bench/results/forecast-reference.json:

* **same physics** ("prior" and "calibrated" rows): the preset's own model, but none of the forecast's
  shortcuts - every calendar day is simulated (no representative days, no state extrapolation), at that
  day's temperature (monthly climate interpolated to the day, a seeded day-to-day weather noise of
  2.5 K, the diurnal swing folded in per day), with the duty's real current profile (stop-and-go legs in
  20-minute pieces whose current varies +-35 %, top-ups, CC then a stepped CV to the target), built by
  this file's own day builder on its own 72-segment model. Each day starts from the previous day's end
  (lithium inventory, SEI thickness, active material) at the charge target: the charger's CV phase ends
  every day at the same voltage.
* **other physics** ("cross-model" rows, the field case where the model is never the truth): the same
  day-by-day run with PyBaMM's "reaction limited" SEI and a throughput-only loss of active material
  (the previous release's parameterisation, tuned independently to 2 %/yr), with 1.3x its rates: an
  adversarial, almost linear-in-time truth.
* **diffusion** (the second other physics, field-shaped): PyBaMM's "solvent-diffusion limited" SEI (lithium
  lost ~ sqrt(t), no SoC dependence) with the OKane2022/Chen2020 solvent block and 38 kJ/mol, and a
  throughput-only loss of active material; its two scales set by ``tune`` (2.5 %/yr at one EFC a day and
  25 degC, 60 % of it SEI) before any comparison. See ``DIFFUSION_TRUTH``.

``compare`` forecasts each duty with evfleet (prior; calibrated on the reference's first 180 days of
monthly capacity checks, each duty alone with ``calibrate_pack`` and, "pooled", all duties of one
physics and chemistry together with ``calibrate_pooled`` - the fleet of one battery model on different
duties) and fits the sqrt(EFC) rule of thumb (SoH = 100 - a sqrt(EFC)) to the same checks, then writes
bench/results/forecast-reference-<date>[-tag].md/.json with the largest monthly error of each over the
horizon (and the pooled forecast's error at the horizon). ``--older-months N [N ...]`` adds, per N, the
field case of a fleet that already runs the cell: each duty calibrated by ``calibrate_pooled`` on its own
first 180 days plus every *other* duty of its physics and chemistry at its first N months of checks
(leave-one-out, ``older_pack_pools``), then forecast (a second table per N).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
from machine_info import load_average, machine_info  # noqa: E402  (bench/, next to this script)
from results_io import load_footer, write_results  # noqa: E402  (bench/, next to this script)

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batteries.forecast import (  # noqa: E402
    AgeingCalibration,
    BlockPlan,
    Climate,
    ForecastJob,
    ForecastRefused,
    HealthObservation,
    PackSpec,
    calibrate_pack,
    calibrate_pooled,
    forecast_pack,
)
from batteries.forecast import pooled as pooled_module  # noqa: E402
from batteries.forecast.duty import duty_profile  # noqa: E402
from batteries.forecast.presets import (  # noqa: E402
    AGEING_FACTOR,
    CYCLING_FACTOR,
    FARADAY,
    LAM_SELF_LIMIT_FACTOR,
    LAM_STRESS_FACTOR,
    SEI_DIFFUSIVITY_FACTOR,
    TEMPERATURE,
    add_lithium_losses,
    cell_constants,
    get_preset,
    parameter_values,
)
from batteries.forecast.state import DegradationState, electrode_window  # noqa: E402

_plain_pack_part = pooled_module.pack_part
_plain_fit_pooled = pooled_module.fit_pooled

RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE_FILE = RESULTS / "forecast-reference.json"
START = dt.date(2024, 1, 1)
HERMOSILLO = (17, 19, 22, 25, 29, 32, 32, 32, 31, 27, 21, 17)
NOGALES = (9, 11, 14, 17, 21, 26, 26, 25, 23, 18, 13, 9)
FLAT_22 = (22.0,) * 12  # 25 degC pack with the default 3 K self-heating
BUS = {"nominal_kwh": 350.0, "nominal_ah": 600.0, "cells_series": 200, "cells_parallel": 3}
CAR = {"nominal_kwh": 60.0, "nominal_ah": 170.0, "cells_series": 96, "cells_parallel": 4}

#: name -> (chemistry, pack kwargs, duty, climate monthly means)
DUTIES: dict[str, tuple[str, dict, BlockPlan, tuple[float, ...]]] = {
    "LFP bus, Hermosillo": ("LFP", BUS, BlockPlan(220, 1.1), HERMOSILLO),
    "LFP bus, Nogales": ("LFP", BUS, BlockPlan(220, 1.1), NOGALES),
    "LFP bus, 25 C": ("LFP", BUS, BlockPlan(220, 1.1), FLAT_22),
    "LFP bus, 95 % DoD": (
        "LFP",
        {**BUS, "usable_soc_min": 0.02, "usable_soc_max": 0.975},
        BlockPlan(0.95 * 350 / 1.1, 1.1, target_soc=0.975),
        HERMOSILLO,
    ),
    "LFP bus, 2 EFC/day, top-ups": ("LFP", BUS, BlockPlan(560, 1.1, top_ups_per_day=2, charge_c_rate=1.0), HERMOSILLO),
    # A reserve bus (0.13 EFC/day, sits at 95 % most of the day): mostly calendar ageing, the sibling that
    # shows a battery model's calendar factor (session 9, "older packs"; run under every truth).
    "LFP bus, reserve, 40 km/day": ("LFP", BUS, BlockPlan(40, 1.1), HERMOSILLO),
    # Lithium plating (NMC only): a 1C depot charge in a cool climate, where the graphite drops below 0 V vs Li.
    "NMC bus, Nogales, 1C charging": ("NMC", BUS, BlockPlan(220, 1.1, charge_c_rate=1.0), NOGALES),
    "NMC car, charged to 100 %": (
        "NMC",
        {**CAR, "usable_soc_max": 1.0},
        BlockPlan(300, 0.16, target_soc=1.0, charge_c_rate=0.12, operating_hours=6.0),
        HERMOSILLO,
    ),
}


def duty_of(name: str) -> tuple[str, dict, BlockPlan, tuple[float, ...]]:
    return DUTIES[name] if name in DUTIES else TUNING_DUTIES[name]


N_SEG = 72
PIECE_H = 1.0 / 3.0
WEATHER_SIGMA_K = 2.5
SELF_HEATING_K = 3.0
PACK_SWING_DAMPING = 0.5
DIURNAL_AMPLITUDE_C = 7.0


def job_for(name: str, years: float, calibration: AgeingCalibration | None = None) -> ForecastJob:
    chemistry, pack, duty, climate = DUTIES[name]
    return ForecastJob(
        name,
        PackSpec(chemistry, **pack),
        duty,
        Climate(climate),
        START,
        START,
        calibration or AgeingCalibration(),
        years,
    )


# --- the reference's own day: the real profile in 20-minute pieces -------------------------------------


def day_pieces(name: str, capacity_fraction: float, rng: random.Random, cut: float = 0.0) -> list[tuple[float, float]]:
    """(duration s, C-rate vs nameplate, + discharge) of one real day, at most N_SEG pieces."""
    chemistry, pack, duty, climate = duty_of(name)
    spec = PackSpec(chemistry, **pack)
    profile = duty_profile(spec, duty, Climate(climate))
    cap = capacity_fraction
    legs = profile.top_ups + 1
    start = profile.start_soc
    top = min(start, 0.90) if legs > 1 else start
    leg_dod = max(min(profile.energy_fraction / cap / legs, min(start, top) - spec.usable_soc_min - cut), 0.0)
    pieces: list[tuple[float, float]] = []
    # Charging between legs only (a one-leg day has none: the whole operating time is driving).
    topup_h = [(top - (start - leg_dod)) * cap / profile.charge_c_rate] if legs > 1 else []
    topup_h += [leg_dod * cap / profile.charge_c_rate] * max(legs - 2, 0)
    drive_h = max((profile.operating_hours - sum(topup_h)) / legs, 1.0)
    for k in range(legs):
        n = max(1, round(drive_h / PIECE_H))
        weights = [1.0 + 0.35 * (2 * rng.random() - 1) for _ in range(n)]
        total = sum(weights)
        for w in weights:  # stop-and-go: the leg's energy in pieces of varying current
            pieces.append((drive_h / n * 3600.0, leg_dod * cap * w / total / (drive_h / n)))
        if k < legs - 1:
            pieces.append((topup_h[k] * 3600.0, -profile.charge_c_rate))
    soc = (top if legs > 1 else start) - leg_dod
    charge = []
    for limit, share in ((0.80, 1.0), (0.90, 0.5), (0.97, 0.25), (1.0, 0.1)):
        target = min(limit, start) if limit < 1.0 else start
        delta = max(target - soc, 0.0)
        c = profile.charge_c_rate * share
        charge.append((delta * cap / c * 3600.0, -c))
        soc = max(soc, target)
    used = sum(d for d, _ in pieces) + sum(d for d, _ in charge)
    rest = max(86_400.0 - used, 0.0)
    full = min(profile.hours_full * 3600.0, rest)
    pieces += [(rest - full, 0.0), *charge, (full, 0.0)]
    if len(pieces) > N_SEG:
        raise ValueError(f"{name}: {len(pieces)} pieces > {N_SEG}")
    return pieces + [(0.0, 0.0)] * (N_SEG - len(pieces))


def day_temperature_k(name: str, date: dt.date, rng: random.Random, e_a: float) -> float:
    climate = duty_of(name)[3]
    # Monthly means at mid-month, linear in between (cyclic).
    x = date.month - 1 + (date.day - 15) / 30.0
    m0 = math.floor(x)
    air = climate[m0 % 12] + (x - m0) * (climate[(m0 + 1) % 12] - climate[m0 % 12])
    mean = air + SELF_HEATING_K + rng.gauss(0.0, WEATHER_SIGMA_K)
    swing = DIURNAL_AMPLITUDE_C * PACK_SWING_DAMPING * np.sin(np.linspace(0, 2 * np.pi, 24, endpoint=False))
    temps = mean + swing + 273.15
    rate = np.mean(np.exp(-e_a / (8.314462618 * temps)))
    return float(-e_a / (8.314462618 * math.log(rate)))


# --- the second other physics: a diffusion-limited SEI ("diffusion" rows) ----------------------------------
#
# PyBaMM's "solvent-diffusion limited" SEI (Ploehn et al. 2004; Single et al. 2018): the solvent diffuses
# through the SEI and reacts at once at the graphite, j = -F c_sol D_sol / L, so L^2 grows linearly in time
# and the lithium lost ~ sqrt(t) (at rest and in use alike): the textbook parabolic law behind "fast
# first, slower later" and the sqrt(t) / sqrt(EFC) rules. It is not evfleet's SEI: no reaction-limited
# start, no dependence on the anode potential (no SoC effect), its own Arrhenius energy. Parameters: the
# OKane2022 / Chen2020 solvent block (c_sol 2,636 mol/m3, D_sol 2.5e-22 m2/s x a scale), O'Kane 2022's
# SEI activation energy 38 kJ/mol as the whole apparent value (no Butler-Volmer term lowers it here), the
# same for both chemistries; loss of active material throughput-only (no C-rate stress) at 38 kJ/mol.
# The two scales were set by ``tune`` BEFORE any comparison with evfleet (docs/forecast.md, "Independent
# reference"): at one EFC a day and a 25 degC pack the first year loses 2.5 pp, 60 % of it SEI
# (calendar) and 40 % LAM (cycling) - round numbers in the field's 2-3 %/yr, chosen, not fitted.
OKANE_SOLVENT_DIFFUSIVITY = 2.5e-22
OKANE_SOLVENT_CONCENTRATION = 2636.0
DIFFUSION_TRUTH_EA = 38_000.0
TUNE_YEAR1_FADE_PP = 2.5
TUNE_CALENDAR_SHARE = 0.6
#: chemistry -> (D_sol scale, LAM rate [s^-1 per A/m2]) from ``tune --days 365`` (rounded; frozen before
#: any comparison: bench/results/forecast-reference-diffusion-tuning-2026-12-06-session8-loaded.json).
DIFFUSION_TRUTH: dict[str, tuple[float, float]] = {"LFP": (0.56, 2.81e-10), "NMC": (1.32, 8.91e-11)}
#: Tuning duties (one EFC a day is reached by scaling their throughput, see ``cmd_tune``): 25 degC pack.
TUNING_DUTIES: dict[str, tuple[str, dict, BlockPlan, tuple[float, ...]]] = {
    "LFP bus, 25 C (tuning)": ("LFP", BUS, BlockPlan(220, 1.1), FLAT_22),
    "NMC car, 25 C (tuning)": (
        "NMC",
        {**CAR, "usable_soc_max": 1.0},
        BlockPlan(300, 0.16, target_soc=1.0, charge_c_rate=0.12, operating_hours=6.0),
        FLAT_22,
    ),
}


def diffusion_truth_values(chemistry: str, d_scale: float | None = None, lam_k: float | None = None) -> dict:
    """PyBaMM parameter updates of the diffusion-limited truth (SEI option "solvent-diffusion limited")."""
    import pybamm

    frozen_scale, frozen_lam = DIFFUSION_TRUTH[chemistry]
    d_scale = frozen_scale if d_scale is None else d_scale
    lam_k = frozen_lam if lam_k is None else lam_k

    def lam_rate(current_density, temperature):  # throughput only, no C-rate stress
        arrhenius = pybamm.exp(DIFFUSION_TRUTH_EA / 8.314462618 * (1 / 298.15 - 1 / temperature))
        return -lam_k * pybamm.sqrt(current_density**2 + 1e-6) * arrhenius

    return {
        "SEI solvent diffusivity [m2.s-1]": OKANE_SOLVENT_DIFFUSIVITY * d_scale,
        "Bulk solvent concentration [mol.m-3]": OKANE_SOLVENT_CONCENTRATION,
        "SEI growth activation energy [J.mol-1]": DIFFUSION_TRUTH_EA,
        "Negative electrode current-driven LAM rate": lam_rate,
    }


class ReferenceModel:
    """A PyBaMM SPM with N_SEG input segments and either the preset's physics or the other physics."""

    def __init__(self, chemistry: str, physics: str, diffusion_scales: dict | None = None):
        import pybamm

        preset = get_preset(chemistry)
        self.preset = preset
        #: The same physics keeps the preset's LAM law, so its self-limiting option too (default off).
        self.lam_self_limit = physics == "same" and preset.lam_self_limit_loss > 0.0
        self.cell = cell_constants(chemistry)
        values = parameter_values(preset)
        if physics == "other":
            lam_k = preset.lam_rate_per_a_m2
            e_a = preset.activation_energy_j_mol

            def lam_rate(current_density, temperature):  # throughput only, no C-rate stress
                arrhenius = pybamm.exp(e_a / 8.314462618 * (1 / 298.15 - 1 / temperature))
                return -1.3 * lam_k * pybamm.sqrt(current_density**2 + 1e-6) * arrhenius

            values.update({"Negative electrode current-driven LAM rate": lam_rate}, check_already_exists=False)
            values.update(
                {
                    "SEI reaction exchange current density [A.m-2]": 1.3 * preset.sei_exchange_current_a_m2,
                    "SEI growth activation energy [J.mol-1]": preset.activation_energy_j_mol + 12_500.0,
                },
                check_already_exists=False,
            )
            sei = "reaction limited"
        elif physics == "diffusion":
            sei = "solvent-diffusion limited"
            values.update(diffusion_truth_values(chemistry, **(diffusion_scales or {})), check_already_exists=False)
        else:
            sei = "ec reaction limited"

        def current(t):
            total = 0
            for k in range(N_SEG):
                a = pybamm.InputParameter(f"s{k}")
                b = pybamm.InputParameter(f"e{k}")
                on = 0.5 * (pybamm.tanh((t - a) / 30.0) - pybamm.tanh((t - b) / 30.0))
                total = total + pybamm.InputParameter(f"i{k}") * on
            return total

        values.update(
            {
                "Current function [A]": current,
                TEMPERATURE: "[input]",
                "Initial temperature [K]": "[input]",
                "Initial concentration in negative electrode [mol.m-3]": "[input]",
                "Initial concentration in positive electrode [mol.m-3]": "[input]",
                "Initial SEI thickness [m]": "[input]",
                "Negative electrode active material volume fraction": "[input]",
                "Lower voltage cut-off [V]": self.cell.v_min - 0.4,
                "Upper voltage cut-off [V]": self.cell.v_max + 0.4,
            },
            check_already_exists=False,
        )
        model = pybamm.lithium_ion.SPM({"SEI": sei, "loss of active material": ("current-driven", "none")})
        # Same physics: the NMC preset's positive-side calendar lithium loss too (the other physics has none).
        self.lithium_losses = add_lithium_losses(model, preset) if physics == "same" else ()
        solver = pybamm.IDAKLUSolver(
            rtol=1e-6,
            atol=1e-8,
            output_variables=[
                "Total lithium in particles [mol]",
                "X-averaged negative SEI thickness [m]",
                "X-averaged negative electrode active material volume fraction",
                *self.lithium_losses,
            ],
            on_extrapolation="ignore",
            options={"compile": True},
        )
        self.sim = pybamm.Simulation(model, parameter_values=values, solver=solver)
        new = DegradationState(
            self.cell.lithium_ah_new,
            preset.sei_overrides.get("Initial SEI thickness [m]", 5e-9),
            self.cell.eps_negative_new,
        )
        self.new_state = new
        self.capacity_new_ah = electrode_window(self.cell, new).capacity_ah

    def soh(self, state: DegradationState) -> float:
        return 100.0 * electrode_window(self.cell, state).capacity_ah / self.capacity_new_ah

    def day(self, state: DegradationState, pieces: list[tuple[float, float]], temperature_k: float, start_soc: float):
        window = electrode_window(self.cell, state)
        x = window.negative_stoichiometry(start_soc)
        y = (state.lithium_ah - x * window.negative_capacity_ah) / self.cell.positive_capacity_ah
        inputs = {
            TEMPERATURE: temperature_k,
            "Initial temperature [K]": temperature_k,
            AGEING_FACTOR: 1.0,
            CYCLING_FACTOR: 1.0,
            LAM_STRESS_FACTOR: 1.0,
            "Initial concentration in negative electrode [mol.m-3]": x * self.cell.c_max_negative,
            "Initial concentration in positive electrode [mol.m-3]": float(np.clip(y, 1e-4, 1 - 1e-4))
            * self.cell.c_max_positive,
            "Initial SEI thickness [m]": state.sei_thickness_m,
            "Negative electrode active material volume fraction": state.eps_negative,
        }
        if self.lam_self_limit:
            inputs[LAM_SELF_LIMIT_FACTOR] = self.preset.lam_self_limit_factor(
                state.eps_negative, self.cell.eps_negative_new
            )
        if self.preset.sei_diffusivity_factor is not None:  # the SEI-shape option (parameter_values has its input)
            inputs[SEI_DIFFUSIVITY_FACTOR] = self.preset.sei_diffusivity_factor
        t = 0.0
        for k, (d, c) in enumerate(pieces):
            inputs[f"s{k}"] = t if k else -1e5
            t += d
            inputs[f"e{k}"] = t if k < N_SEG - 1 else 1e7
            inputs[f"i{k}"] = c * self.capacity_new_ah
        sol = self.sim.solve([0.0, 86_400.0], inputs=inputs)
        if sol.t[-1] < 86_399.0:  # stopped: check on a dense grid before believing it (see simulate.py)
            bounds = np.cumsum([d for d, _ in pieces])
            grid = np.unique(
                np.concatenate([np.arange(0.0, 86_401.0, 600.0), bounds[(bounds > 0) & (bounds < 86_400)]])
            )
            sol = self.sim.solve(grid, inputs=inputs)
        if sol.t[-1] < 86_399.0:
            return None
        li = sol["Total lithium in particles [mol]"].entries * FARADAY / 3600.0
        sei = sol["X-averaged negative SEI thickness [m]"].entries
        eps = sol["X-averaged negative electrode active material volume fraction"].entries
        for name in self.lithium_losses:
            lost = sol[name].entries
            li = li - (lost - lost[0])
        return DegradationState(
            state.lithium_ah + li[-1] - li[0],
            state.sei_thickness_m + sei[-1] - sei[0],
            state.eps_negative + eps[-1] - eps[0],
        )


def simulate(
    name: str, physics: str, years: float, model: ReferenceModel | None = None, states: list | None = None
) -> dict:
    """Day-by-day run of duty ``name``; ``states`` (if given) collects each day's start state."""
    chemistry, pack, duty, climate = duty_of(name)
    model = model or ReferenceModel(chemistry, physics)
    e_a = DIFFUSION_TRUTH_EA if physics == "diffusion" else get_preset(chemistry).activation_energy_j_mol
    rng = random.Random(f"{name}:{physics}")
    profile = duty_profile(PackSpec(chemistry, **pack), duty, Climate(climate))
    state = model.new_state
    end = START + dt.timedelta(days=round(365.25 * years))
    date, months, soh, failed_days = START, [], [], 0
    started = time.perf_counter()
    while date <= end:
        if states is not None:
            states.append(state)
        if date.day == 1:
            months.append(date.isoformat())
            soh.append(round(model.soh(state), 4))
        cap = model.soh(state) / 100.0
        nxt = None
        for floor_raise in (0.0, 0.05, 0.10, 0.15):  # a day the cell cannot deliver is cut, as in the forecast
            pieces = day_pieces(name, cap, rng, cut=floor_raise)
            nxt = model.day(state, pieces, day_temperature_k(name, date, rng, e_a), profile.start_soc)
            if nxt is not None:
                break
            failed_days += 1
        if nxt is None:
            break
        state = nxt
        date += dt.timedelta(days=1)
    return {
        "months": months,
        "soh_pct": soh,
        "days": (date - START).days,
        "cut_days": failed_days,
        "seconds": round(time.perf_counter() - started, 1),
        "energy_fraction_per_day": profile.energy_fraction,
    }


def cmd_simulate(args: argparse.Namespace) -> None:
    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    names = args.duties or list(DUTIES)
    for physics in args.physics:
        for name in names:
            run = simulate(name, physics, args.years)
            stored["runs"][f"{physics}|{name}"] = {**run, "years": args.years}
            print(
                f"{physics:6s} {name:32s} {run['days']} days in {run['seconds']} s, SoH {run['soh_pct'][-1]}",
                flush=True,
            )
            stored["machine"] = machine_info("pybamm", load_average=load_average())
            out.write_text(json.dumps(stored, indent=1))


def _year_one_fade(model, k_sei: float, li_per_m: float, li_lam_per_efc: float, eps_per_efc: float, base_lam: float):
    """fade(D scale, LAM rate): pp lost after a year at one EFC a day, extrapolated from the tuning runs."""
    s0 = model.new_state

    def fade(d_scale: float, lam_k: float) -> float:
        thickness = math.sqrt(s0.sei_thickness_m**2 + d_scale * k_sei * 365.25)
        m = lam_k / base_lam
        state = DegradationState(
            s0.lithium_ah - li_per_m * (thickness - s0.sei_thickness_m) - m * li_lam_per_efc * 365.25,
            thickness,
            s0.eps_negative - m * eps_per_efc * 365.25,
        )
        return 100.0 - model.soh(state)

    return fade


def cmd_tune(args: argparse.Namespace) -> None:
    """Set the diffusion truth's two scales from short runs of the tuning duties (no evfleet involved).

    Per chemistry, two runs of ``--days`` days of its tuning duty (25 degC pack): SEI only (LAM 0) and LAM
    only (SEI 1e-9 x). The SEI run gives K in L^2 = L0^2 + K t (exact for this law at a constant
    temperature; D_sol scales K) and the lithium per metre of SEI; the LAM run the active material and
    lithium lost per EFC (throughput-only: linear in it). From these the state after a year at one EFC a
    day is extrapolated for any (D scale, LAM rate), and the two are solved for: calendar-only fade
    TUNE_CALENDAR_SHARE x TUNE_YEAR1_FADE_PP, total TUNE_YEAR1_FADE_PP."""
    from scipy.optimize import brentq

    out: dict = {"target_year1_pp": TUNE_YEAR1_FADE_PP, "calendar_share": TUNE_CALENDAR_SHARE, "runs": {}}
    for name in args.duties or list(TUNING_DUTIES):
        chemistry, pack, duty, climate = duty_of(name)
        base_lam = get_preset(chemistry).lam_rate_per_a_m2
        efc = duty_profile(PackSpec(chemistry, **pack), duty, Climate(climate)).energy_fraction
        runs = {}
        for part, scales in (("sei", {"d_scale": 1.0, "lam_k": 0.0}), ("lam", {"d_scale": 1e-9, "lam_k": base_lam})):
            t = time.perf_counter()
            model = ReferenceModel(chemistry, "diffusion", scales)
            states: list[DegradationState] = []
            simulate(name, "diffusion", args.days / 365.25, model=model, states=states)
            runs[part] = states
            print(f"{name} {part}: {len(states)} days in {time.perf_counter() - t:.0f} s", flush=True)
        s0, sei = model.new_state, runs["sei"]
        days = np.arange(len(sei), dtype=float)
        growth = np.array([st.sei_thickness_m**2 - s0.sei_thickness_m**2 for st in sei])
        k_sei = float(days @ growth / (days @ days))  # m2/day at D scale 1
        li_per_m = (s0.lithium_ah - sei[-1].lithium_ah) / (sei[-1].sei_thickness_m - s0.sei_thickness_m)
        lam = runs["lam"]
        n = len(lam) - 1
        eps_per_efc = (s0.eps_negative - lam[-1].eps_negative) / n / efc
        li_lam_per_efc = (s0.lithium_ah - lam[-1].lithium_ah) / n / efc
        fade = _year_one_fade(model, k_sei, li_per_m, li_lam_per_efc, eps_per_efc, base_lam)
        calendar = TUNE_CALENDAR_SHARE * TUNE_YEAR1_FADE_PP
        d_scale = math.exp(brentq(lambda x: fade(math.exp(x), 0.0) - calendar, -30.0, 10.0))  # noqa: B023
        lam_k = base_lam * brentq(lambda m: fade(d_scale, m * base_lam) - TUNE_YEAR1_FADE_PP, 0.0, 100.0)  # noqa: B023
        own = _year_one_fade(model, k_sei, li_per_m, li_lam_per_efc * efc, eps_per_efc * efc, base_lam)
        row = {
            "chemistry": chemistry,
            "days": args.days,
            "efc_per_day": efc,
            "sei_fade_pp_at_scale_1_in_run": round(
                100.0 - model.soh(DegradationState(sei[-1].lithium_ah, sei[-1].sei_thickness_m, s0.eps_negative)), 4
            ),
            "d_scale": d_scale,
            "lam_k": lam_k,
            "check_year1_pp": [round(fade(d_scale, 0.0), 3), round(fade(d_scale, lam_k), 3)],
            # The same extrapolation at the tuning duty's own EFC a day (to check against a full-year run).
            "predicted_year1_pp_at_duty_efc": round(own(d_scale, lam_k), 3),
        }
        print(json.dumps(row), flush=True)
        out["runs"][name] = row
    out["machine"] = machine_info("pybamm", load_average=load_average())
    path = RESULTS / f"forecast-reference-diffusion-tuning-{dt.date.today().isoformat()}-{args.tag}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


# --- compare ------------------------------------------------------------------------------------------


def sqrt_efc_fit(days: list[int], soh: list[float], efc_per_day: float) -> float:
    """Least-squares a in SoH = 100 - a sqrt(EFC)."""
    x = np.sqrt(np.asarray(days, dtype=float) * efc_per_day)
    y = 100.0 - np.asarray(soh)
    return float(x @ y / (x @ x)) if x @ x > 0 else 0.0


def sqrt_efc_curve(early: list[tuple[dt.date, float]], ref: dict, efc_per_day: float) -> dict[dt.date, float]:
    """The rule of thumb fitted to the checks ``early`` (month, SoH): its SoH at each month of ``ref``."""
    a = sqrt_efc_fit([(m - START).days for m, _ in early], [s for _, s in early], efc_per_day)
    return {m: 100 - a * math.sqrt((m - START).days * efc_per_day) for m in ref}


def _worst(result, ref: dict) -> float:
    errors = [abs(p.soh_pct - ref[p.date]) for p in result.points if p.date in ref]
    return round(max(errors), 2)


def _calibrated_columns(name: str, years: float, calibration: AgeingCalibration, ref: dict, prefix: str) -> dict:
    """Forecast with ``calibration``: its largest monthly error, its error at the horizon, and whether
    the P10-P90 band holds the reference at the horizon."""
    cycling = calibration.cycling_factor or calibration.rate_factor
    row: dict = {f"{prefix}_factors": f"{calibration.rate_factor:.3f} / {cycling:.3f}"}
    try:
        result = forecast_pack(job_for(name, years, calibration))
    except ForecastRefused as refused:
        row[f"{prefix}_max_err_pp"] = f"refused: {refused.reason}"
        return row
    row[f"{prefix}_max_err_pp"] = _worst(result, ref)
    end = [p for p in result.points if p.date in ref][-1]
    row[f"{prefix}_end_err_pp"] = round(end.soh_pct - ref[end.date], 2)
    row[f"{prefix}_in_band_at_end"] = bool(end.soh_p10_pct <= ref[end.date] <= end.soh_p90_pct)
    return row


def months_after(start: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` calendar months after ``start`` (the 1st here)."""
    index = start.year * 12 + start.month - 1 + months
    return start.replace(year=index // 12, month=index % 12 + 1)


def older_pack_pools(
    cases: list[tuple[str, str, str, dict[dt.date, float]]],
    calibration_days: int,
    older_months: int,
) -> dict[tuple[str, str], list[tuple[str, list[tuple[dt.date, float]]]]]:
    """Leave-one-out pools of the "older packs" column: a new pack calibrated with its fleet's older packs.

    ``cases``: (physics, chemistry, duty, reference month -> SoH %). For each case, the pool is the duty
    itself at its checks of the first ``calibration_days`` (first in the list), then every *other* duty of
    the same physics and chemistry at its monthly checks of the first ``older_months`` months (checks
    after START up to START + ``older_months`` months). Never the duty's own later checks, never another
    physics or chemistry. A duty with no sibling gets a pool of itself alone."""
    pools: dict[tuple[str, str], list[tuple[str, list[tuple[dt.date, float]]]]] = {}
    until = months_after(START, older_months)
    for physics, chemistry, name, ref in cases:
        own = [(m, s) for m, s in sorted(ref.items()) if 0 < (m - START).days <= calibration_days]
        pool = [(name, own)]
        for other_physics, other_chemistry, other, other_ref in cases:
            if other_physics == physics and other_chemistry == chemistry and other != name:
                pool.append((other, [(m, s) for m, s in sorted(other_ref.items()) if START < m <= until]))
        pools[(physics, name)] = pool
    return pools


_PARTS: dict = {}


def _pack_part_once(job: ForecastJob, observations):
    """``pooled.pack_part`` remembered by (job, observations): a sibling's N-month part enters the pool of
    every other duty, and a duty's 180-day part every N; the part is a deterministic simulation, so the
    pooled fits are those of plain ``calibrate_pooled``, without simulating the same response again."""
    key = (repr(job), tuple(observations))
    if key not in _PARTS:
        _PARTS[key] = _plain_pack_part(job, observations)
    part, aside = _PARTS[key]
    return part, list(aside)


def _older_columns(args: argparse.Namespace, cases: list, rows_by_case: dict) -> None:
    """The ``--older-months`` columns (see ``older_pack_pools``): each duty calibrated by
    ``calibrate_pooled`` over its own first checks and its siblings' first N months, then forecast."""
    pooled_module.pack_part = _pack_part_once
    if args.pack_spread_sensitivity is not None:  # a sensitivity, never the result: the spread is set
        pooled_module.fit_pooled = functools.partial(_plain_fit_pooled, offset_log_sigma=args.pack_spread_sensitivity)
    try:
        _older_fits(args, cases, rows_by_case)
    finally:
        pooled_module.pack_part = _plain_pack_part
        pooled_module.fit_pooled = _plain_fit_pooled


def _older_fits(args: argparse.Namespace, cases: list, rows_by_case: dict) -> None:
    years_of = {(physics, name): years for physics, name, _run, _ref, years, _early, _obs in cases}
    table = [(physics, DUTIES[name][0], name, ref) for physics, name, _run, ref, _years, _early, _obs in cases]
    for n in args.older_months:
        pools = older_pack_pools(table, args.calibration_days, n)
        for (physics, name), pool in pools.items():
            ref = rows_by_case[(physics, name)][1]
            members = [
                (job_for(member, years_of[(physics, member)]), [HealthObservation(m, s, 0.3) for m, s in checks])
                for member, checks in pool
            ]
            t, cpu = time.perf_counter(), time.process_time()
            fit = calibrate_pooled(members)
            row = rows_by_case[(physics, name)][0]
            prefix = f"older{n}"
            row[f"{prefix}_packs"] = len(pool)
            row[f"{prefix}_pack_spread_ln"] = args.pack_spread_sensitivity or pooled_module.PACK_OFFSET_LOG_SIGMA
            row[f"{prefix}_checks"] = sum(len(checks) for _member, checks in pool)
            row[f"{prefix}_fit_s"] = round(time.perf_counter() - t, 1)
            row[f"{prefix}_fit_cpu_s"] = round(time.process_time() - cpu, 1)
            row[f"{prefix}_group_factors"] = (
                f"{fit.group.rate_factor:.3f} / {fit.group.cycling_factor or fit.group.rate_factor:.3f}"
            )
            row[f"{prefix}_pool_factors"] = {
                pid: f"{c.rate_factor:.3f} / {c.cycling_factor or c.rate_factor:.3f}" for pid, c in fit.packs.items()
            }
            if name not in fit.packs:  # no usable check of its own: nothing to report as its pooled fit
                row[f"{prefix}_max_err_pp"] = "no fit"
            else:
                row.update(_calibrated_columns(name, years_of[(physics, name)], fit.packs[name], ref, prefix))
            print(f"older {n} months {physics} {name}: {len(pool)} packs, {row[f'{prefix}_fit_s']} s", flush=True)


def load_cases(paths: list[str], physics_kept: list[str], calibration_days: int) -> tuple[dict, list[tuple]]:
    """The stored references of ``paths`` (several files: runs made in parallel; later ones win) as (stored,
    cases), one case per run of a kept physics: (physics, duty, run, month -> SoH %, years, the first
    ``calibration_days`` days' checks as (month, SoH), the same as 0.3 pp ``HealthObservation``s)."""
    stored: dict = {"runs": {}}
    for path in paths:
        part = json.loads(Path(path).read_text())
        stored["runs"].update(part["runs"])
        stored["machine"] = part.get("machine")
    cases = []
    for key, run in stored["runs"].items():
        physics, name = key.split("|", 1)
        if physics not in physics_kept:
            continue
        months = [dt.date.fromisoformat(m) for m in run["months"]]
        ref = dict(zip(months, run["soh_pct"], strict=True))
        years = min(run["years"], (months[-1] - START).days / 365.25)
        early = [(m, s) for m, s in ref.items() if 0 < (m - START).days <= calibration_days]
        observations = [HealthObservation(m, s, 0.3) for m, s in early]
        cases.append((physics, name, run, ref, years, early, observations))
    return stored, cases


def cmd_compare(args: argparse.Namespace) -> None:
    stored, cases = load_cases(args.inputs or [str(REFERENCE_FILE)], args.physics, args.calibration_days)
    started_load = load_average()

    # Pooled: the duties of one physics and chemistry are packs of one battery model (the same cell) on
    # different duties, calibrated together on the same first 180 days each.
    groups: dict[tuple[str, str], list] = {}
    for physics, name, _run, _ref, years, _early, observations in cases:
        groups.setdefault((physics, DUTIES[name][0]), []).append((job_for(name, years), observations))
    pooled: dict[tuple[str, str], AgeingCalibration] = {}
    group_size: dict[tuple[str, str], int] = {}
    for (physics, _chemistry), members in groups.items():
        t = time.perf_counter()
        fit = calibrate_pooled(members)
        print(f"pooled {physics} {_chemistry}: {len(members)} packs in {time.perf_counter() - t:.1f} s", flush=True)
        for job, _obs in members:
            pooled[(physics, job.pack_id)] = fit.packs[job.pack_id]
            group_size[(physics, job.pack_id)] = len(members)

    rows = []
    for physics, name, run, ref, years, early, observations in cases:
        row: dict = {"physics": physics, "duty": name, "years": round(years, 2)}
        t, cpu = time.perf_counter(), time.process_time()
        try:
            prior = forecast_pack(job_for(name, years))
            row["forecast_s"] = round(time.perf_counter() - t, 2)
            row["forecast_cpu_s"] = round(time.process_time() - cpu, 2)
            row["prior_max_err_pp"] = _worst(prior, ref)  # other physics too: what the uncalibrated forecast says
            end = [p for p in prior.points if p.date in ref][-1]
            row["prior_end_err_pp"] = round(end.soh_pct - ref[end.date], 2)
        except ForecastRefused as refused:  # a failure to report, not to hide
            row["forecast_s"] = row["forecast_cpu_s"] = "-"
            row["prior_max_err_pp"] = f"refused: {refused.reason}"
        row.update(_calibrated_columns(name, years, calibrate_pack(job_for(name, years), observations), ref, "single"))
        row["pooled_packs"] = group_size[(physics, name)]
        row.update(_calibrated_columns(name, years, pooled[(physics, name)], ref, "pooled"))
        baseline = sqrt_efc_curve(early, ref, run["energy_fraction_per_day"])
        row["sqrt_efc_max_err_pp"] = round(max(abs(baseline[m] - s) for m, s in ref.items()), 2)
        row["reference_end_soh_pct"] = run["soh_pct"][-1]
        rows.append(row)
        print(row, flush=True)
    rows_by_case = {(r["physics"], r["duty"]): (r, c[3]) for r, c in zip(rows, cases, strict=True)}
    _older_columns(args, cases, rows_by_case)
    today = dt.date.today().isoformat()
    stem = f"forecast-reference-{today}" + (f"-{args.tag}" if args.tag else "")
    out = {
        "machine": machine_info("pybamm", load_average=load_average()),
        "load_average_at_start": started_load,
        "reference_machine": stored.get("machine"),
        "rows": rows,
    }
    lines = [
        f"# Forecast vs independent day-by-day reference ({today})",
        "",
        "Largest absolute SoH error over every month of the horizon, percentage points. *same*: the reference",
        "uses evfleet's physics without its shortcuts (every day, daily temperature, real current profile);",
        "*other*: reaction-limited SEI, throughput-only LAM, 1.3x rates (the field case, linear in time);",
        "*diffusion*: solvent-diffusion-limited SEI (sqrt(t)), throughput-only LAM, tuned to 2.5 %/yr at one",
        "EFC a day and 25 C before comparing (the field case, field-shaped). Calibrated on the",
        f"reference's monthly SoH of its first {args.calibration_days} days (0.3 pp uncertainty), two factors "
        "(calendar/SEI and",
        "cycling/LAM, MAP in log space, Laplace posterior for the band): *single*, each duty alone",
        "(`calibrate_pack`); *pooled*, the duties of one physics and chemistry together as packs of one battery",
        "model (`calibrate_pooled`: shared factors plus a 0.25 ln pack offset, the preset's prior split between",
        "them; a chemistry with one duty is fitted alone). *at 3 y*: signed error at the horizon (forecast -",
        "reference). Baseline: SoH = 100 - a sqrt(EFC) fitted to the same checks. Targets: prior and",
        "calibrated <= 0.5 pp (same physics), <= 1 pp at the horizon (other/diffusion), evfleet calibrated <=",
        "baseline. *in band*: the reference's SoH at the horizon lies inside the calibrated forecast's",
        "P10-P90 (single / pooled). *forecast s*: the prior forecast (3 members) to the horizon, wall (CPU).",
        "",
        "| physics | duty | years | prior (at 3 y) | single | single at 3 y | pooled (packs) | pooled at 3 y "
        "| sqrt(EFC) baseline | calendar / cycling, single | calendar / cycling, pooled | in band | "
        "ref. SoH at end | forecast s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['physics']} | {r['duty']} | {r['years']} | {r.get('prior_max_err_pp', '-')} "
            f"({r.get('prior_end_err_pp', '-')}) | "
            f"{r['single_max_err_pp']} | {r.get('single_end_err_pp', '-')} | {r['pooled_max_err_pp']} "
            f"({r['pooled_packs']}) | {r.get('pooled_end_err_pp', '-')} | {r['sqrt_efc_max_err_pp']} | "
            f"{r['single_factors']} | {r['pooled_factors']} | {r.get('single_in_band_at_end', '-')} / "
            f"{r.get('pooled_in_band_at_end', '-')} | {r['reference_end_soh_pct']} | "
            f"{r['forecast_s']} ({r['forecast_cpu_s']}) |"
        )
    for n in args.older_months:
        lines += [
            "",
            f"**With the fleet's older packs, {n} months** (leave-one-out): each duty calibrated by",
            f"`calibrate_pooled` on its own first {args.calibration_days} days plus every *other* duty of the same",
            f"physics and chemistry at its first {n} months of monthly checks (0.3 pp; never the duty's own later",
            "checks, never another physics),",
            "then forecast with its own pooled fit. *alone*: the single column above. *group*: the battery model's",
            "shared factors of that pool. Same references, so the older packs' checks share the new pack's",
            "calendar dates and the truths have no cell-to-cell spread: a best case for pooling.",
            f"Pack spread of the hierarchy: {args.pack_spread_sensitivity or pooled_module.PACK_OFFSET_LOG_SIGMA} ln"
            + (" (**a sensitivity, not the set value**)." if args.pack_spread_sensitivity is not None else "."),
            "",
            f"| physics | duty | packs (checks) | alone, max (at 3 y) | older {n} mo, max | at 3 y | in band | "
            "calendar / cycling, own | group | sqrt(EFC) baseline | fit s (CPU) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        p = f"older{n}"
        for r in rows:
            lines.append(
                f"| {r['physics']} | {r['duty']} | {r[p + '_packs']} ({r[p + '_checks']}) | "
                f"{r['single_max_err_pp']} ({r.get('single_end_err_pp', '-')}) | {r[p + '_max_err_pp']} | "
                f"{r.get(p + '_end_err_pp', '-')} | {r.get(p + '_in_band_at_end', '-')} | "
                f"{r.get(p + '_factors', '-')} | {r[p + '_group_factors']} | {r['sqrt_efc_max_err_pp']} | "
                f"{r[p + '_fit_s']} ({r[p + '_fit_cpu_s']}) |"
            )
    write_results(stem, out, lines + load_footer(started_load, out["machine"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate")
    sim.add_argument("--years", type=float, default=3.0)
    sim.add_argument("--duties", nargs="*")
    sim.add_argument("--physics", nargs="*", default=["same", "other"], help="same, other and/or diffusion")
    sim.add_argument("--out", default=str(REFERENCE_FILE), help="results file (runs are added to it)")
    tune = sub.add_parser("tune", help="set the diffusion truth's scales (short runs, before comparing)")
    tune.add_argument("--days", type=int, default=60)
    tune.add_argument("--duties", nargs="*")
    tune.add_argument("--tag", default="loaded")
    compare = sub.add_parser("compare")
    compare.add_argument("inputs", nargs="*", help="reference files (default: bench/results/forecast-reference.json)")
    compare.add_argument(
        "--physics", nargs="*", default=["same", "other", "diffusion"], help="which references to compare"
    )
    compare.add_argument("--tag", default="", help="suffix of the result files (e.g. pooled-loaded)")
    compare.add_argument(
        "--calibration-days",
        type=int,
        default=180,
        help="capacity checks of the first N days calibrate (180; the whole run for an in-sample diagnostic)",
    )
    compare.add_argument(
        "--older-months",
        type=int,
        nargs="*",
        default=[],
        help="leave-one-out columns: each duty pooled with its siblings' first N months of checks (e.g. 12 24)",
    )
    compare.add_argument(
        "--pack-spread-sensitivity",
        type=float,
        default=None,
        help="older-packs columns only: another pack spread (ln) than the hierarchy's set value (a sensitivity)",
    )
    args = parser.parse_args()
    {"simulate": cmd_simulate, "tune": cmd_tune, "compare": cmd_compare}[args.command](args)


if __name__ == "__main__":
    main()
