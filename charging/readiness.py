"""When a vehicle counts as ready, in one place: the plan, its page, the dashboard, reports and alerts read it.

A vehicle is ready when its plan leaves it short of its required departure energy by no more than
``READY_SHORTFALL_KWH`` (solver round-off, not a real gap); a ready-or-not traffic light shows the short
ones amber when they miss the required SoC by less than ``AMBER_SHORT_PCT`` points, red otherwise. A
delivered charge reached its required SoC when it ends within ``REACHED_SOC_TOLERANCE_PCT`` of it.
"""

READY_SHORTFALL_KWH = 0.05
AMBER_SHORT_PCT = 5.0
REACHED_SOC_TOLERANCE_PCT = 0.05


def is_ready(shortfall_kwh: float) -> bool:
    return shortfall_kwh <= READY_SHORTFALL_KWH


def readiness_level(*, shortfall_kwh: float, required_soc_pct: float, departure_soc_pct: float) -> str:
    """ "green" (ready), "amber" (short by less than AMBER_SHORT_PCT points of SoC) or "red"."""
    if is_ready(shortfall_kwh):
        return "green"
    return "amber" if required_soc_pct - departure_soc_pct < AMBER_SHORT_PCT else "red"
