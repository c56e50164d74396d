"""bench/forecast_field_case_bound.py: the error no forecaster can avoid when two truths agree over the checks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # the script imports its siblings

from bench.forecast_field_case_bound import bound_rows  # noqa: E402
from bench.forecast_reference import START, months_after  # noqa: E402


def _reference(path: Path, runs: dict[str, list[float]]) -> str:
    months = [months_after(START, k).isoformat() for k in range(37)]
    path.write_text(
        json.dumps({"runs": {key: {"months": months, "soh_pct": soh, "years": 3.0} for key, soh in runs.items()}})
    )
    return str(path)


def test_truths_alike_over_the_checks_but_apart_later_bound_every_forecast(tmp_path) -> None:
    linear = [100 - 0.25 * k for k in range(37)]  # 91.0 at 3 years
    alike_early = [100 - 0.25 * k + (0.05 if k else 0) - (0.08 * (k - 6) if k > 6 else 0) for k in range(37)]
    apart_early = [100 - 0.6 * k for k in range(37)]
    files = [
        _reference(tmp_path / "a.json", {"other|alike": linear, "other|told apart": linear}),
        _reference(tmp_path / "b.json", {"diffusion|alike": alike_early, "diffusion|told apart": apart_early}),
    ]

    rows = {row["duty"]: row for row in bound_rows(files)}

    alike, apart = rows["alike"], rows["told apart"]
    assert alike["checks"] == 5  # months 1-5: the first 180 days
    assert alike["indistinguishable"] and alike["max_apart_first_180_days_pp"] == 0.05
    assert alike["apart_at_end_pp"] == round(0.08 * 30 - 0.05, 2)
    assert alike["least_worse_error_pp"] == round(alike["apart_at_end_pp"] / 2, 2)
    assert not apart["indistinguishable"]  # 0.35-1.75 pp apart over the checks: a forecaster can tell
