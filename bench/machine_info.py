"""What every benchmark records about the machine it ran on: its figures are only comparable with these."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    except OSError:
        return "unknown"


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: on a shared machine they say how much the figures were disturbed."""
    return [round(x, 2) for x in os.getloadavg()]


def machine_info(*packages: str, **extra) -> dict:
    """Platform, CPU, the versions of ``packages`` and ``extra`` facts, and the load average now."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        **{package: version(package) for package in packages},
        **extra,
        "load_average_at_start": load_average(),
    }
