"""Usable pack capacity from charging telemetry: pure functions. ``batteries.telemetry_capacity`` records the
result as a health observation of the pack (battery health is the battery app's; fleet only measures).

The rule (also in docs/telemetry.md): a **charging segment** is a run of readings that report
``charging_state`` ac/dc (or, for vehicles that never report it, a negative current at standstill) with no
gap longer than 5 minutes. A segment counts when

* it has at least 20 readings with both SoC and current,
* SoC rises monotonically: no reading more than 3 SoC points below the highest before it (noise allowed),
* its fitted SoC span is at least 40 %.

Charge into the pack, Ah(t) = integral of -I dt (trapezoid; current positive = discharge), is exact to the
current sensor; SoC is the noisy one. So SoC is regressed on Ah (least squares), never Ah on SoC (that would
bias the slope by the SoC noise): capacity = 100 / slope, with the slope's standard error carried through.
Segments combine by inverse-variance weighting. The reported uncertainty (1 sigma, %) adds an assumed 1 %
current-sensor calibration error in quadrature, which no amount of averaging removes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_GAP_S = 300.0
MIN_SAMPLES = 20
MIN_SOC_SPAN_PCT = 40.0
MAX_SOC_DROP_PCT = 3.0
CURRENT_SENSOR_ERROR = 0.01  # relative, 1 sigma (assumed)
STANDSTILL_KMH = 1.0
CHARGING_CODES = (1, 2)  # ChargingState.AC, ChargingState.DC


@dataclass(frozen=True)
class SegmentFit:
    start: int
    stop: int  # exclusive
    capacity_ah: float
    sigma_ah: float
    soc_span_pct: float


@dataclass(frozen=True)
class CapacityEstimate:
    capacity_ah: float
    uncertainty_pct: float  # 1 sigma, statistical and sensor calibration
    segments: list[SegmentFit]

    @property
    def soc_span_pct(self) -> float:
        return sum(segment.soc_span_pct for segment in self.segments)


def charging_runs(
    t_s: np.ndarray, charging_state: np.ndarray, current_a: np.ndarray, speed_kmh: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """``(start, stop)`` index ranges of uninterrupted charging (see the module's rule)."""
    known_state = ~np.isnan(charging_state)
    if known_state.any():
        charging = np.isin(charging_state, CHARGING_CODES)
    else:
        standstill = np.ones(len(t_s), dtype=bool) if speed_kmh is None else ~(speed_kmh > STANDSTILL_KMH)
        charging = (current_a < 0) & standstill
    breaks = np.ones(len(t_s), dtype=bool)
    breaks[1:] = (~charging[1:]) | (~charging[:-1]) | (np.diff(t_s) > MAX_GAP_S)
    runs, start = [], None
    for index in range(len(t_s)):
        if not charging[index]:
            if start is not None:
                runs.append((start, index))
            start = None
        elif breaks[index]:
            if start is not None:
                runs.append((start, index))
            start = index
    if start is not None:
        runs.append((start, len(t_s)))
    return runs


def fit_segment(t_s: np.ndarray, soc_pct: np.ndarray, current_a: np.ndarray) -> tuple[float, float, float] | None:
    """(capacity Ah, its 1-sigma, fitted SoC span %) of one charging run, or None if it does not qualify."""
    present = ~(np.isnan(soc_pct) | np.isnan(current_a))
    t, soc, current = t_s[present], soc_pct[present], current_a[present]
    if len(t) < MIN_SAMPLES:
        return None
    if (np.maximum.accumulate(soc) - soc).max() > MAX_SOC_DROP_PCT:
        return None  # not a monotone charge (e.g. the plug came out and the bus drove)
    charge_in = -current
    ah = np.concatenate(([0.0], np.cumsum((charge_in[1:] + charge_in[:-1]) / 2.0 * np.diff(t)) / 3600.0))
    spread = ah - ah.mean()
    sxx = float(spread @ spread)
    if sxx <= 0:
        return None
    slope = float(spread @ (soc - soc.mean())) / sxx  # % per Ah
    if slope <= 0:
        return None
    residuals = soc - (soc.mean() + slope * spread)
    slope_se = float(np.sqrt((residuals @ residuals) / (len(t) - 2) / sxx))
    span = slope * float(ah[-1] - ah[0])
    if span < MIN_SOC_SPAN_PCT:
        return None
    capacity = 100.0 / slope
    return capacity, 100.0 * slope_se / slope**2, span


def estimate_capacity(
    *,
    t_s: np.ndarray,
    soc_pct: np.ndarray,
    current_a: np.ndarray,
    charging_state: np.ndarray,
    speed_kmh: np.ndarray | None = None,
) -> CapacityEstimate | None:
    """The pack's usable capacity (Ah) from every qualifying charging segment, or None if there is none."""
    fits = []
    for start, stop in charging_runs(t_s, charging_state, current_a, speed_kmh):
        fit = fit_segment(t_s[start:stop], soc_pct[start:stop], current_a[start:stop])
        if fit:
            fits.append(SegmentFit(start, stop, *fit))
    if not fits:
        return None
    weights = np.array([1.0 / max(fit.sigma_ah, 1e-9) ** 2 for fit in fits])
    capacity = float(np.average([fit.capacity_ah for fit in fits], weights=weights))
    statistical = float(np.sqrt(1.0 / weights.sum())) / capacity
    uncertainty = 100.0 * float(np.hypot(statistical, CURRENT_SENSOR_ERROR))
    return CapacityEstimate(capacity_ah=capacity, uncertainty_pct=uncertainty, segments=fits)
