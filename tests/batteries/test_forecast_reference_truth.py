"""The diffusion-limited truth of bench/forecast_reference.py (the field-shaped "other physics"): built as
documented - a solvent-diffusion-limited SEI (thickness squared linear in time, no SoC dependence) and a
loss of active material that needs current and does not see the C-rate."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # forecast_reference imports its siblings

from bench.forecast_reference import N_SEG, ReferenceModel  # noqa: E402


def _day(pieces: list[tuple[float, float]]) -> list[tuple[float, float]]:
    rest = 86_400.0 - sum(d for d, _ in pieces)
    return [*pieces, (rest, 0.0)] + [(0.0, 0.0)] * (N_SEG - len(pieces) - 1)


@pytest.fixture(scope="module")
def truth() -> ReferenceModel:
    return ReferenceModel("LFP", "diffusion")


def test_diffusion_truth_sei_grows_parabolically_and_ignores_the_state_of_charge(truth: ReferenceModel) -> None:
    rest = _day([])
    low, high, states = truth.new_state, truth.new_state, [truth.new_state]
    for _ in range(4):
        low = truth.day(low, rest, 298.15, 0.3)
        high = truth.day(high, rest, 298.15, 0.9)
        states.append(high)
    l0 = truth.new_state.sei_thickness_m
    squares = [s.sei_thickness_m**2 - l0**2 for s in states]
    # L^2 - L0^2 grows by the same amount each day (the parabolic law), the thickness itself by less and less.
    steps = [b - a for a, b in zip(squares, squares[1:], strict=False)]
    assert max(steps) / min(steps) == pytest.approx(1.0, abs=0.02)
    thick = [s.sei_thickness_m for s in states]
    assert thick[2] - thick[1] > 1.05 * (thick[4] - thick[3])
    # No dependence on the anode potential: parked at 30 % or 90 % SoC, the same lithium lost (evfleet's
    # EC-reaction-limited SEI loses more at 90 %).
    lost_low = truth.new_state.lithium_ah - low.lithium_ah
    lost_high = truth.new_state.lithium_ah - high.lithium_ah
    assert lost_high > 0
    assert lost_low == pytest.approx(lost_high, rel=0.02)


def test_diffusion_truth_loses_active_material_with_throughput_not_c_rate(truth: ReferenceModel) -> None:
    cap = truth.capacity_new_ah
    assert cap > 0
    # 60 % of the capacity out and back in, at 0.2C or at 1C (plus rest): the same throughput.
    slow = _day([(3 * 3600.0, 0.2), (3 * 3600.0, -0.2)])
    fast = _day([(0.6 * 3600.0, 1.0), (0.6 * 3600.0, -1.0)])
    lost = {}
    for name, pieces in (("rest", _day([])), ("slow", slow), ("fast", fast)):
        end = truth.day(truth.new_state, pieces, 298.15, 0.8)
        assert end is not None
        lost[name] = truth.new_state.eps_negative - end.eps_negative
    assert lost["slow"] > 0
    # At rest next to nothing (|i| is smoothed at 1e-3 A/m2 for the solver).
    assert lost["rest"] < 0.01 * lost["slow"]
    assert lost["fast"] == pytest.approx(lost["slow"], rel=0.03)
