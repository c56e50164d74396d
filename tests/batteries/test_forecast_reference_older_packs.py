"""The "older packs" column of bench/forecast_reference.py compare: which checks each leave-one-out pool
gets (a new pack's own first 180 days, its siblings' first N months; never its own later checks, never
another physics or chemistry)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # forecast_reference imports its siblings

from bench.forecast_reference import START, months_after, older_pack_pools  # noqa: E402


def _monthly(months: int, soh0: float) -> dict[dt.date, float]:
    """A reference's monthly SoH from START (month 0) to ``months``, distinct per duty."""
    return {months_after(START, k): soh0 - 0.1 * k for k in range(months + 1)}


def test_months_after_crosses_years() -> None:
    assert months_after(dt.date(2024, 1, 1), 12) == dt.date(2025, 1, 1)
    assert months_after(dt.date(2024, 1, 1), 18) == dt.date(2025, 7, 1)
    assert months_after(dt.date(2024, 11, 1), 2) == dt.date(2025, 1, 1)


def test_pool_is_own_first_days_plus_other_duties_first_months_only() -> None:
    cases = [
        ("other", "LFP", "a", _monthly(36, 100.0)),
        ("other", "LFP", "b", _monthly(36, 99.0)),
        ("other", "LFP", "c", _monthly(36, 98.0)),
        ("other", "NMC", "car", _monthly(36, 97.0)),
        ("same", "LFP", "a", _monthly(36, 96.0)),
    ]
    pools = older_pack_pools(cases, calibration_days=180, older_months=12)

    pool = pools[("other", "a")]
    names = [name for name, _checks in pool]
    assert names == ["a", "b", "c"]  # itself first; no other chemistry, no other physics
    own = pool[0][1]
    # Its own first 180 days only: five monthly checks (Feb..Jun 2024), not month 0, never later.
    assert [d for d, _ in own] == [months_after(START, k) for k in range(1, 6)]
    assert [s for _, s in own] == [100.0 - 0.1 * k for k in range(1, 6)]
    for _name, checks in pool[1:]:  # siblings: months 1..12, their own values
        assert [d for d, _ in checks] == [months_after(START, k) for k in range(1, 13)]
    assert pool[1][1][-1][1] == 99.0 - 1.2

    # One of a chemistry: alone; another physics: its own pool, never mixed.
    assert [name for name, _ in pools[("other", "car")]] == ["car"]
    assert [name for name, _ in pools[("same", "a")]] == ["a"]
    assert pools[("same", "a")][0][1][0][1] == 96.0 - 0.1


def test_longer_older_span_adds_only_sibling_checks() -> None:
    cases = [("diffusion", "LFP", "a", _monthly(36, 100.0)), ("diffusion", "LFP", "b", _monthly(36, 99.0))]
    short = older_pack_pools(cases, 180, 12)[("diffusion", "a")]
    long = older_pack_pools(cases, 180, 24)[("diffusion", "a")]
    assert short[0] == long[0]  # the new pack's own checks do not grow with the siblings' span
    assert len(short[1][1]) == 12 and len(long[1][1]) == 24
