"""The tests' battery packs, one home: the 12 m e-bus pack the forecast tests simulate (350 kWh, 600 Ah,
200 cells in series x 3 in parallel, as the demo's MODEL T-class buses) in either chemistry.

Django-free (the forecast core's tests run without Django)."""

from __future__ import annotations

import os

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from batteries.forecast import PackSpec  # noqa: E402


def bus_pack(chemistry: str = "LFP", **overrides) -> PackSpec:
    """The e-bus pack; ``overrides`` any other ``PackSpec`` field (usable window, warranty floor...)."""
    return PackSpec(chemistry, nominal_kwh=350, nominal_ah=600, cells_series=200, cells_parallel=3, **overrides)
