"""The demo deployment: Transporte Urbano de Sonora, four depots in Sonora (see DOMAIN.md and README).

``data`` declares it, ``plan`` draws its random parts from a fixed seed, ``build`` writes it through the
services. ``manage.py load_demo`` is a thin wrapper around ``build_demo``.
"""

from console.demo.build import DemoReport, DepotSummary, StepResult, build_demo
from console.demo.data import SERVICE_DAYS, ZONE

__all__ = ["SERVICE_DAYS", "ZONE", "DemoReport", "DepotSummary", "StepResult", "build_demo"]
