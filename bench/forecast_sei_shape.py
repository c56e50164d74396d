"""A third fitted factor, the SEI's shape (``presets.sei_shape_input``, an option, off): does it close the field case?

    cd bench && ../.venv/bin/python forecast_sei_shape.py time --duties "LFP bus, Hermosillo" --tag T
    cd bench && ../.venv/bin/python forecast_sei_shape.py grid <reference files> [--duties ...] [--grid 7 7 7] \
        [--check-points 30] [--check-uncertainty 0.3] --tag T

Session 10's runs (reference files in bench/results/, in this order): forecast-reference-3y.json
forecast-reference-3y-b.json forecast-reference-3y-other.json forecast-reference-3y-other-2.json
forecast-reference-3y-nmc.json forecast-reference-3y-nmc-session7-loaded.json
forecast-reference-3y-nmc-plating-loaded.json forecast-reference-3y-diffusion-session8-loaded.json.

``grid``: per duty, the forecast model with the option on simulates a grid of members to 3 years - every
combination of (initial-rate calendar factor, cycling factor, SEI diffusivity factor) below - and each reference
of that duty (``forecast_reference.load_cases``: same, other and diffusion physics) weighs them by prior x the
likelihood of its first 180 days of monthly checks (0.3 pp, as ``forecast_reference.py compare``). Reported per
reference: the posterior's P10 / P50 / P90 and mean SoH at 3 years, the signed error of the P50 and of the mean
there and the largest over the months, beside today's two-factor calibration (``calibrate_pack``, option off)
and the sqrt(EFC) rule of thumb; the shape factor's posterior; and the smallest chi2 of the checks at each shape
level (how much 180 days separate shapes). ``time``: one member's 3-year trajectory at three shapes, and the
step control against monthly re-simulation at the extreme shapes.

Set before any field-case error was looked at (session 10):

* Axes: the SEI diffusivity factor s 0.05-20 (ln-spaced); the cycling factor and the *initial-rate* calendar
  factor f0 0.25-4 (``calibrate.FACTOR_GRID_2D``'s range). s also scales the new SEI's rate
  (``presets.sei_initial_rate_scale``: x0.095 at 0.05, x1.9 at 20), so the member's calendar factor is f0 /
  that scale: at f0 = 1 every shape starts at the prior's SEI rate (at mid SoC, initial thickness) and the
  calendar axis does not have to reach 10x to make up for a low s.
* Prior: (ln f0, ln cycling) as ``calibrate_pack``'s (the preset's sigma 0.45, correlation
  ``PRIOR_LOG_CORRELATION`` 0.5), ln s ~ N(0, 1.5) independent (P10-P90 s = 0.15-6.8). Its mean, s = 1, is
  today's model.
* The posterior is computed on a fine grid (``FINE_POINTS`` per axis over the same ranges), each month's SoH
  interpolated cubically in the three ln factors from the simulated grid (``calibrate_pack`` interpolates its
  5 x 5 grid bicubically the same way); the simulated grid's own posterior is reported beside it. The simulated
  grid's size (7 x 7 x 7, ``--grid``) was chosen after timing one member (0.09 s CPU for 3 years), before any
  field-case error was looked at.

For NMC the calendar factor also scales the positive-side lithium loss, so f0 / scale carries it along with the
SEI: at a low s the positive side's loss is scaled up with the SEI's rate constant (LFP has none).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.interpolate import RegularGridInterpolator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forecast_reference as fr  # noqa: E402
from machine_info import load_average, machine_info  # noqa: E402
from results_io import load_footer, write_results  # noqa: E402

from batteries.forecast import calibrate_pack, presets, simulate  # noqa: E402
from batteries.forecast.calibrate import FACTOR_GRID_2D, PRIOR_LOG_CORRELATION  # noqa: E402
from batteries.forecast.forecast import horizon_end, prepare, run_members  # noqa: E402
from batteries.forecast.trajectory import TrajectorySettings, add_months  # noqa: E402

SHAPE_RANGE = (0.05, 20.0)
SHAPE_PRIOR_LOG_SIGMA = 1.5
RATE_RANGE = (FACTOR_GRID_2D[0], FACTOR_GRID_2D[-1])
FINE_POINTS = 25
CHECK_UNCERTAINTY_PP = 0.3
#: Every member's steps capped as the P50's of a pack forecast (``forecast.PACK_SETTINGS``): each grid member can
#: be the posterior's median.
GRID_SETTINGS = TrajectorySettings(per_member_steps=True, max_jump_months=8)
HORIZON_MONTHS = 36
_DEFAULTS = dict(presets.PRESETS)


def use_sei_shape_input(on: bool) -> None:
    """Switch the option for this process (every chemistry, value 1.0); the built day models are dropped."""
    for chemistry, preset in _DEFAULTS.items():
        presets.PRESETS[chemistry] = presets.sei_shape_input(preset) if on else preset
    simulate.day_model.cache_clear()


def axis(span: tuple[float, float], n: int) -> np.ndarray:
    """``n`` ln factors evenly spaced over ``span``."""
    return np.linspace(math.log(span[0]), math.log(span[1]), n)


def member_factors(ln_f0: float, ln_cycling: float, ln_shape: float) -> tuple[float, float, float]:
    """(calendar, cycling, SEI diffusivity) factors the model takes for a grid point."""
    shape = math.exp(ln_shape)
    return math.exp(ln_f0) / presets.sei_initial_rate_scale(shape), math.exp(ln_cycling), shape


def monthly_soh(name: str, years: float, factors: list[tuple[float, float, float]]) -> tuple[np.ndarray, int, int]:
    """SoH at months 0..HORIZON_MONTHS of each member (NaN past a member's end), simulated days, stopped members."""
    job = fr.job_for(name, years)
    members, n_days = run_members(prepare(job), job.in_service_date, horizon_end(job), factors, GRID_SETTINGS)
    months = [add_months(fr.START, k) for k in range(HORIZON_MONTHS + 1)]
    soh = np.full((len(members), len(months)), np.nan)
    for i, member in enumerate(members):
        for k, date in enumerate(months):
            soh[i, k] = member.value_at(date, member.soh_pct)
    return soh, n_days, sum(1 for m in members if m.stopped is not None)


def log_prior(ln_f0: np.ndarray, ln_cycling: np.ndarray, ln_shape: np.ndarray, sigma: float) -> np.ndarray:
    rho = PRIOR_LOG_CORRELATION
    quadratic = (ln_f0**2 - 2 * rho * ln_f0 * ln_cycling + ln_cycling**2) / (sigma**2 * (1 - rho**2))
    return -0.5 * quadratic - 0.5 * (ln_shape / SHAPE_PRIOR_LOG_SIGMA) ** 2


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][min(int(np.searchsorted(cumulative, q * cumulative[-1])), len(values) - 1)])


def check_indices(early: list) -> list[int]:
    """Month indices (0 = the start) of the checks ``early``."""
    months = [add_months(fr.START, k) for k in range(HORIZON_MONTHS + 1)]
    return [months.index(m) for m, _ in early]


def log_posterior(
    grid: tuple[np.ndarray, ...], soh: np.ndarray, early: list, sigma: float, uncertainty_pp: float
) -> tuple[np.ndarray, np.ndarray]:
    """(chi2 of the checks ``early``, each ``uncertainty_pp``, unnormalised log posterior) at every point of
    ``grid``."""
    a, b, c = np.meshgrid(*grid, indexing="ij")
    observed = np.array([s for _, s in early])
    chi2 = (((soh[..., check_indices(early)] - observed) / uncertainty_pp) ** 2).sum(axis=-1)
    return chi2, log_prior(a, b, c, sigma) - 0.5 * chi2


def posterior(
    grid: tuple[np.ndarray, ...],
    soh: np.ndarray,
    ref: dict,
    early: list,
    sigma: float,
    levels: np.ndarray,
    uncertainty_pp: float = CHECK_UNCERTAINTY_PP,
) -> dict:
    """The posterior over the points of ``grid`` (ln f0, ln cycling, ln shape axes; ``soh`` [..., month]) given the
    checks ``early`` of reference ``ref``: SoH quantiles and errors, the shape's posterior, chi2 at each of the
    simulated shape ``levels`` (ln)."""
    a, b, c = np.meshgrid(*grid, indexing="ij")
    months = [add_months(fr.START, k) for k in range(HORIZON_MONTHS + 1)]
    chi2, log_w = log_posterior(grid, soh, early, sigma, uncertainty_pp)
    w = np.exp(log_w - log_w.max()).ravel()
    w /= w.sum()
    flat = soh.reshape(-1, len(months))
    truth = np.array([ref[m] for m in months])
    p50 = np.array([weighted_quantile(flat[:, k], w, 0.5) for k in range(len(months))])
    mean = w @ flat
    end = len(months) - 1
    best = int(np.argmax(log_w))
    shape_ln = c.ravel()
    # Per simulated shape level: the fine grid's nearest level's best chi2, and the mass of the levels nearest it.
    nearest = np.abs(grid[2][:, None] - levels[None, :]).argmin(axis=1)
    by_level = w.reshape(chi2.shape).sum(axis=(0, 1))
    per_level, mass, given = {}, {}, {}
    for k, level in enumerate(levels):
        label = f"{math.exp(level):.3g}"
        at_level = int(np.abs(grid[2] - level).argmin())
        per_level[label] = round(float(chi2[:, :, at_level].min()), 3)
        mass[label] = round(float(by_level[nearest == k].sum()), 3)
        # Were the shape known to be this level: the posterior's P50 error at 3 years (the shape's best case).
        slice_w = np.exp(log_w[:, :, at_level] - log_w[:, :, at_level].max()).ravel()
        given[label] = round(weighted_quantile(soh[:, :, at_level, end].ravel(), slice_w, 0.5) - truth[end], 2)
    fits = chi2.ravel() <= 1.0  # members the checks alone cannot reject (the 5 checks' chi2 <= 1)
    edges = w.reshape(chi2.shape)
    return {
        "p10_36": round(weighted_quantile(flat[:, end], w, 0.1), 3),
        "p50_36": round(float(p50[end]), 3),
        "p90_36": round(weighted_quantile(flat[:, end], w, 0.9), 3),
        "mean_36": round(float(mean[end]), 3),
        "p50_err_36": round(float(p50[end] - truth[end]), 2),
        "mean_err_36": round(float(mean[end] - truth[end]), 2),
        "p50_max_err": round(float(np.abs(p50 - truth).max()), 2),
        "mean_max_err": round(float(np.abs(mean - truth).max()), 2),
        "in_band_36": bool(
            weighted_quantile(flat[:, end], w, 0.1) <= truth[end] <= weighted_quantile(flat[:, end], w, 0.9)
        ),
        "shape_p10_p50_p90": [round(math.exp(weighted_quantile(shape_ln, w, q)), 3) for q in (0.1, 0.5, 0.9)],
        "shape_mass_by_level": mass,
        "best_chi2_by_shape": per_level,
        "p50_err_36_given_shape": given,
        "soh_36_range_chi2_le_1": [round(float(flat[fits, end].min()), 2), round(float(flat[fits, end].max()), 2)]
        if fits.any()
        else None,
        "map_factors": [round(math.exp(float(x.ravel()[best])), 3) for x in (a, b, c)],
        "map_chi2": round(float(chi2.ravel()[best]), 3),
        "edge_mass_f0_cycling": [
            round(float(edges[0].sum() + edges[-1].sum()), 3),
            round(float(edges[:, 0].sum() + edges[:, -1].sum()), 3),
        ],
    }


def today_columns(name: str, years: float, ref: dict, early: list, observations: list, efc_per_day: float) -> dict:
    """Today's two-factor calibration (option off) and the sqrt(EFC) rule of thumb on the same checks."""
    row = fr._calibrated_columns(name, years, calibrate_pack(fr.job_for(name, years), observations), ref, "single")
    baseline = fr.sqrt_efc_curve(early, ref, efc_per_day)
    end = max(ref)
    row["sqrt_efc_err_36"] = round(baseline[end] - ref[end], 2)
    row["sqrt_efc_max_err_pp"] = round(max(abs(baseline[m] - s) for m, s in ref.items()), 2)
    return row


def cmd_grid(args: argparse.Namespace) -> None:
    started = load_average()
    _stored, cases = fr.load_cases(args.inputs, ["same", "other", "diffusion"], 180)
    duties = args.duties or list(dict.fromkeys(name for _p, name, *_ in cases))
    n_rate, n_cycling, n_shape = args.grid
    coarse = (axis(RATE_RANGE, n_rate), axis(RATE_RANGE, n_cycling), axis(SHAPE_RANGE, n_shape))
    fine = tuple(axis(RATE_RANGE if k < 2 else SHAPE_RANGE, FINE_POINTS) for k in range(3))
    rows = []
    for name in duties:
        mine = [case for case in cases if case[1] == name]
        if not mine:
            continue
        years = mine[0][4]
        use_sei_shape_input(False)
        today = {
            case[0]: today_columns(name, years, case[3], case[5], case[6], case[2]["energy_fraction_per_day"])
            for case in mine
        }
        use_sei_shape_input(True)
        points = [(x, y, z) for x in coarse[0] for y in coarse[1] for z in coarse[2]]
        t, cpu = time.perf_counter(), time.process_time()
        soh, n_days, stopped = monthly_soh(name, years, [member_factors(*p) for p in points])
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        print(
            f"{name}: {len(points)} members, {n_days} days, {wall:.0f} s ({cpu:.0f} CPU), {stopped} stopped", flush=True
        )
        grid_soh = soh.reshape(n_rate, n_cycling, n_shape, -1)
        # A member that stopped keeps its last SoH (flagged in the row): the cubic must not spread a NaN.
        filled = np.where(np.isnan(grid_soh), np.nanmin(grid_soh, axis=-1, keepdims=True), grid_soh)
        interpolate = RegularGridInterpolator(coarse, filled, method="cubic")
        fa, fb, fc = np.meshgrid(*fine, indexing="ij")
        fine_soh = interpolate(np.stack([fa.ravel(), fb.ravel(), fc.ravel()], axis=-1)).reshape(*fa.shape, -1)
        sigma = presets.get_preset(fr.DUTIES[name][0]).prior_log_sigma
        for physics, _name, _run, ref, _years, early, _obs in mine:
            row = {
                "physics": physics,
                "duty": name,
                "members": len(points),
                "simulated_days": n_days,
                "grid_s": round(wall, 1),
                "grid_cpu_s": round(cpu, 1),
                "stopped_members": stopped,
                "reference_soh_36": ref[max(ref)],
                **today[physics],
                "fine": posterior(fine, fine_soh, ref, early, sigma, coarse[2], args.check_uncertainty),
                "simulated": posterior(coarse, filled, ref, early, sigma, coarse[2], args.check_uncertainty),
            }
            if args.check_points and physics != "same":
                row["interpolation_check"] = interpolation_check(
                    name, years, fine, fine_soh, early, sigma, args.check_points, args.check_uncertainty
                )
            rows.append(row)
            print(json.dumps(row), flush=True)
    write(args, rows, started, coarse)


def interpolation_check(
    name: str, years: float, fine: tuple, fine_soh: np.ndarray, early: list, sigma: float, n: int, uncertainty: float
) -> dict:
    """``n`` fine-grid points drawn from the posterior (seeded), simulated exactly: the cubic interpolation's
    error at the checks and at 3 years, pp."""
    _chi2, log_w = log_posterior(fine, fine_soh, early, sigma, uncertainty)
    w = np.exp(log_w - log_w.max()).ravel()
    rng = np.random.default_rng(20261207)
    picks = rng.choice(w.size, size=n, replace=False, p=w / w.sum())
    index = np.unravel_index(picks, log_w.shape)
    points = list(zip(fine[0][index[0]], fine[1][index[1]], fine[2][index[2]], strict=True))
    exact, _days, _stopped = monthly_soh(name, years, [member_factors(*p) for p in points])
    interpolated = fine_soh[index]
    at = check_indices(early)
    return {
        "points": n,
        "max_err_at_checks_pp": round(float(np.abs(interpolated[:, at] - exact[:, at]).max()), 3),
        "max_err_36_pp": round(float(np.abs(interpolated[:, -1] - exact[:, -1]).max()), 3),
        "mean_err_36_pp": round(float((interpolated[:, -1] - exact[:, -1]).mean()), 3),
    }


def write(args: argparse.Namespace, rows: list, started: list, coarse: tuple) -> None:
    levels = [f"{math.exp(level):.3g}" for level in coarse[2]]
    stem = f"forecast-sei-shape-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else "")
    settings = {
        "shape_range": SHAPE_RANGE,
        "shape_prior_log_sigma": SHAPE_PRIOR_LOG_SIGMA,
        "rate_range": RATE_RANGE,
        "grid": args.grid,
        "grid_ln_axes": [[round(x, 3) for x in ax] for ax in coarse],
        "fine_points": FINE_POINTS,
        "check_uncertainty_pp": args.check_uncertainty,
        "sei_initial_reaction_share": presets.SEI_INITIAL_REACTION_SHARE,
        "grid_settings": repr(GRID_SETTINGS),
        "references": args.inputs,
    }
    out = {"machine": machine_info("pybamm", load_average=load_average()), "load_average_at_start": started}
    lines = [
        "# Fitted SEI shape: grid posterior on 180 days of checks (bench/forecast_sei_shape.py grid)",
        "",
        f"Grid {args.grid[0]} x {args.grid[1]} x {args.grid[2]} (initial-rate calendar f0, cycling "
        f"{RATE_RANGE[0]:g}-{RATE_RANGE[1]:g}; SEI diffusivity factor s {SHAPE_RANGE[0]:g}-{SHAPE_RANGE[1]:g}), "
        "each member simulated to 3 years with the option on; posterior = prior (ln f0, ln cycling as in "
        "calibrate_pack; "
        f"ln s ~ N(0, {SHAPE_PRIOR_LOG_SIGMA})) x likelihood of the reference's monthly checks of the first 180 days "
        f"({args.check_uncertainty} pp), on a {FINE_POINTS}^3 grid interpolated cubically in the ln factors "
        "(*sim.*: on the simulated grid alone). Errors: forecast - reference, pp; *at 36*: at 3 years, *max*: largest "
        "over the months. *today*: calibrate_pack's two factors (option off) at 3 years (max). Baseline: sqrt(EFC) "
        "rule fitted to the same checks. Shape posterior: s at P10/P50/P90. chi2 per shape level: smallest over "
        "(f0, cycling) at each simulated s (5 checks).",
        "",
        "| physics | duty | ref. SoH 36 | P10 / P50 / P90 at 36 | P50 err at 36 (max) | mean err at 36 (max) | "
        "sim. P50 err at 36 | today at 36 (max) | baseline at 36 (max) | in band | s P10 / P50 / P90 | "
        "best chi2 by s | MAP f0 / cyc / s (chi2) | grid s (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, s = r["fine"], r["simulated"]
        chi2 = ", ".join(f"{k}: {v}" for k, v in f["best_chi2_by_shape"].items())
        lines.append(
            f"| {r['physics']} | {r['duty']} | {r['reference_soh_36']} | {f['p10_36']} / {f['p50_36']} / "
            f"{f['p90_36']} | {f['p50_err_36']:+.2f} ({f['p50_max_err']}) | {f['mean_err_36']:+.2f} "
            f"({f['mean_max_err']}) | {s['p50_err_36']:+.2f} | {r.get('single_end_err_pp', '-')} "
            f"({r.get('single_max_err_pp', '-')}) | {r['sqrt_efc_err_36']:+.2f} ({r['sqrt_efc_max_err_pp']}) | "
            f"{'yes' if f['in_band_36'] else 'no'} | {' / '.join(str(x) for x in f['shape_p10_p50_p90'])} | "
            f"{chi2} | {' / '.join(str(x) for x in f['map_factors'])} ({f['map_chi2']}) | "
            f"{r['grid_s']} ({r['grid_cpu_s']}) |"
        )
    lines += [
        "",
        "Were the shape known (fine grid, posterior of f0 and cycling at one simulated s): P50 error at 3 years, pp; "
        "and the range of 3-year SoH over every fine-grid member the checks alone do not reject (chi2 <= 1):",
        "",
        "| physics | duty | " + "".join(f"s = {k} | " for k in levels) + "SoH at 36, chi2 <= 1 (ref.) |",
        "|---|---|" + "---|" * (len(levels) + 1),
    ]
    for r in rows:
        given = r["fine"]["p50_err_36_given_shape"]
        fits = r["fine"]["soh_36_range_chi2_le_1"] or ["-", "-"]
        lines.append(
            f"| {r['physics']} | {r['duty']} | " + " | ".join(f"{v:+.2f}" for v in given.values()) + " |"
            f" {fits[0]}-{fits[1]} ({r['reference_soh_36']}) |"
        )
    lines += [
        "",
        "Posterior mass by shape level (fine grid, binned to the nearest simulated s) and on the f0 / cycling edges:",
        "",
    ]
    for r in rows:
        lines.append(
            f"* {r['physics']} | {r['duty']}: {r['fine']['shape_mass_by_level']}; edges "
            f"{r['fine']['edge_mass_f0_cycling']}; stopped members {r['stopped_members']}"
            + (f"; interpolation vs exact: {r['interpolation_check']}" if "interpolation_check" in r else "")
        )
    write_results(stem, {**out, "settings": settings, "rows": rows}, lines + load_footer(started, out["machine"]))


def cmd_time(args: argparse.Namespace) -> None:
    """Per duty, one member's 3-year trajectory at s = 0.05, 1, 20 (f0 = cycling = 1), timed after a warm-up; the
    same members with monthly re-simulation (every step one month, tolerance 0.02 pp) against the grid's step
    control; the option at s = 1 against the option off; and the SEI's own shape (cycling factor 1e-3)."""
    started = load_average()
    rows = []
    for name in args.duties or ["LFP bus, Hermosillo"]:
        use_sei_shape_input(False)
        (today,), _ = monthly_soh_plain(name)
        use_sei_shape_input(True)
        monthly_soh(name, 1.0, [member_factors(0.0, 0.0, 0.0)])  # build and compile outside the timings
        fine = TrajectorySettings(per_member_steps=True, first_jump_months=1, max_jump_months=1, tol_pp=0.02)
        job = fr.job_for(name, 3.0)
        for shape in (0.05, 1.0, 20.0):
            factors = member_factors(0.0, 0.0, math.log(shape))
            t, cpu = time.perf_counter(), time.process_time()
            soh, n_days, _ = monthly_soh(name, 3.0, [factors])
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            (member,), _ = run_members(prepare(job), job.in_service_date, horizon_end(job), [factors], fine)
            monthly = np.array(
                [member.value_at(add_months(fr.START, k), member.soh_pct) for k in range(HORIZON_MONTHS + 1)]
            )
            sei_only, _days, _stopped = monthly_soh(name, 3.0, [(factors[0], 1e-3, factors[2])])
            lost, sei_lost = 100 - soh[0], 100 - sei_only[0]
            row = {
                "duty": name,
                "shape": shape,
                "factors": [round(x, 4) for x in factors],
                "s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "days": n_days,
                "lost_6m_1y_3y": [round(lost[k], 3) for k in (6, 12, 36)],
                "ratio_3y_6m": round(lost[36] / lost[6], 2),
                "sei_only_lost_6m_1y_3y": [round(sei_lost[k], 3) for k in (6, 12, 36)],
                "sei_only_ratio_3y_6m": round(sei_lost[36] / sei_lost[6], 2),
                "vs_monthly_steps_max_pp": round(float(np.abs(soh[0] - monthly).max()), 3),
                "vs_option_off_max_pp": round(float(np.abs(soh[0] - today).max()), 4) if shape == 1.0 else None,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    stem = f"forecast-sei-shape-{dt.date.today().isoformat()}-time" + (f"-{args.tag}" if args.tag else "")
    out = {"machine": machine_info("pybamm", load_average=load_average()), "load_average_at_start": started}
    lines = [
        "# One member at three SEI shapes (bench/forecast_sei_shape.py time)",
        "",
        "f0 = cycling = 1 (every shape at the prior's initial SEI rate); SoH lost from new, pp; ratio = loss at 3 "
        "years / loss at 6 months (linear 6, sqrt(t) 2.45). *SEI only*: cycling factor 1e-3. *vs monthly*: largest "
        "difference from the same member re-simulated every month; *vs off*: s = 1 against the option off.",
        "",
        "| duty | s | lost 6 mo / 1 y / 3 y | ratio | SEI only: lost | SEI only: ratio | vs monthly | vs off | "
        "s (CPU), days |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        off = "-" if r["vs_option_off_max_pp"] is None else r["vs_option_off_max_pp"]
        lines.append(
            f"| {r['duty']} | {r['shape']} | {' / '.join(str(x) for x in r['lost_6m_1y_3y'])} | {r['ratio_3y_6m']} | "
            f"{' / '.join(str(x) for x in r['sei_only_lost_6m_1y_3y'])} | {r['sei_only_ratio_3y_6m']} | "
            f"{r['vs_monthly_steps_max_pp']} | {off} "
            f"| {r['s']} ({r['cpu_s']}), {r['days']} |"
        )
    write_results(stem, {**out, "rows": rows}, lines + load_footer(started, out["machine"]))


def monthly_soh_plain(name: str) -> tuple[np.ndarray, int]:
    """The option-off model's prior member (1, 1) on the grid's steps, for the s = 1 identity check."""
    job = fr.job_for(name, 3.0)
    (member,), n_days = run_members(prepare(job), job.in_service_date, horizon_end(job), [(1.0, 1.0)], GRID_SETTINGS)
    return np.array(
        [[member.value_at(add_months(fr.START, k), member.soh_pct) for k in range(HORIZON_MONTHS + 1)]]
    ), n_days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    timing = sub.add_parser("time")
    timing.add_argument("--duties", nargs="*")
    timing.add_argument("--tag", default="")
    grid = sub.add_parser("grid")
    grid.add_argument("inputs", nargs="+", help="reference files (forecast_reference.py compare's)")
    grid.add_argument("--duties", nargs="*", help="default: every duty of the references")
    grid.add_argument("--grid", type=int, nargs=3, default=[7, 7, 7], help="points: f0, cycling, shape")
    grid.add_argument("--tag", default="")
    grid.add_argument(
        "--check-uncertainty",
        type=float,
        default=CHECK_UNCERTAINTY_PP,
        help="the checks' uncertainty in the likelihood, pp (0.3 as compare; another value is a sensitivity)",
    )
    grid.add_argument(
        "--check-points", type=int, default=0, help="per field reference: posterior draws simulated exactly"
    )
    args = parser.parse_args()
    {"time": cmd_time, "grid": cmd_grid}[args.command](args)


if __name__ == "__main__":
    main()
